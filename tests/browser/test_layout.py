"""The reporter pages read well on a 360 px wide phone: nothing scrolls sideways, and every
control of the form is visible."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SQLITE_ONLY, NewTab
from tests.conftest import Portal

pytestmark = SQLITE_ONLY

PHONE = {"width": 360, "height": 740}


@pytest.mark.parametrize("path", ["/", "/report", "/followup"])
def test_no_horizontal_scroll_at_360_px(portal: Portal, new_tab: NewTab, path: str) -> None:
    portal.staff("olivia")
    tab = new_tab(javascript=False, **PHONE)
    tab.page.goto(path)
    assert tab.page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    tab.assert_clean()


def test_report_form_controls_visible_at_360_px(portal: Portal, new_tab: NewTab) -> None:
    portal.staff("olivia")
    tab = new_tab(javascript=False, **PHONE)
    page = tab.page
    page.goto("/report")
    controls = page.locator(
        "form input:not([type=hidden]), form select, form textarea, form button"
    )
    assert controls.count() > 5
    for control in controls.all():
        control.scroll_into_view_if_needed()
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
    tab.assert_clean()
