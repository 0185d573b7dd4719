"""axe-core in the real browser on every reporter page: no serious or critical violation.

axe comes from the PyPI package axe-playwright-python, which ships axe.min.js, so the scan needs
no network. Playwright evaluates it through the DevTools protocol, which the portal's strict
Content-Security-Policy does not apply to; the pages themselves keep JavaScript off."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import SQLITE_ONLY, NewTab
from tests.browser.test_reporter_journeys import raise_concern
from tests.conftest import Portal

pytestmark = SQLITE_ONLY

AXE = Axe()
#: WCAG 2.0 to 2.2, levels A and AA.
OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


def serious_violations(page: Page) -> list[str]:
    response: dict[str, Any] = AXE.run(page, options=OPTIONS).response
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1280, 360], ids=["desktop", "phone"])
def test_reporter_pages_have_no_serious_violations(
    portal: Portal, new_tab: NewTab, width: int
) -> None:
    portal.staff("olivia")
    tab = new_tab(width=width)
    page = tab.page
    found: dict[str, list[str]] = {}

    page.goto("/")
    found["front page"] = serious_violations(page)
    receipt = raise_concern(page)
    found["receipt"] = serious_violations(page)
    page.goto("/report")
    found["report form"] = serious_violations(page)
    page.goto("/followup")
    found["follow-up log-in"] = serious_violations(page)
    page.get_by_label("Your receipt").fill(receipt)
    page.get_by_role("button", name="Open my case").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern")
    found["follow-up case"] = serious_violations(page)

    assert {name: v for name, v in found.items() if v} == {}
    tab.assert_clean()
