"""Abuse control as a person meets it in a real browser, with JavaScript off and on: the
honeypot is nowhere to be seen, a wrong access code and the per-client limit both keep what was
typed, and the right code sends the concern."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.services.reporting import access_code
from portal.services.reporting.throttle import MemoryThrottle, SubmissionLimits
from portal.settings import TEST_ARGON2, Settings
from tests.browser.conftest import SQLITE_ONLY, NewTab
from tests.support.factories import Portal

pytestmark = SQLITE_ONLY

CODE = "blue-heron-42"
DESCRIPTION = "The forklift brakes failed again this morning."


def fill_concern(page: Page, code: str) -> None:
    page.get_by_label("Harassment, bullying or sexual harassment").check()
    page.get_by_label("What happened?").fill(DESCRIPTION)
    page.get_by_label("When did it happen?").select_option("ongoing")
    page.get_by_label("Access code").fill(code)


@pytest.mark.parametrize("javascript", [False, True], ids=["no-javascript", "javascript"])
def test_access_code_honeypot_and_limit_in_the_browser(
    app: Flask, portal: Portal, settings: Settings, new_tab: NewTab, javascript: bool
) -> None:
    portal.staff("olivia")
    state = app.extensions["portal"]
    state.settings = settings.replace(
        report_access_code_hash=access_code.hash_code(CODE, TEST_ARGON2)
    )
    state.submission_limits = SubmissionLimits(
        MemoryThrottle(3600), 100, MemoryThrottle(600, key_rotation_seconds=600), 2
    )
    tab = new_tab(javascript=javascript)
    page = tab.page
    page.goto("/report")
    honeypot = page.locator("#website")
    expect(honeypot).not_to_be_in_viewport()
    box = honeypot.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 0  # off screen, not merely small

    fill_concern(page, "red-heron-42")
    page.get_by_role("button", name="Send my concern").click()
    expect(page.get_by_text("That access code is not right.")).to_be_visible()
    expect(page.get_by_label("What happened?")).to_have_value(DESCRIPTION)
    expect(page.get_by_label("Access code")).to_have_value("")

    page.get_by_label("Access code").fill(CODE)
    page.get_by_role("button", name="Send my concern").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern was received")

    page.goto("/report")  # the wrong code and the concern used this client's two
    fill_concern(page, CODE)
    page.get_by_role("button", name="Send my concern").click()
    expect(page.get_by_text("please send it again in 10 minutes")).to_be_visible()
    expect(page.get_by_label("What happened?")).to_have_value(DESCRIPTION)
    # The browser reports the 400 and the 429 themselves as console errors; nothing else.
    assert tab.foreign_requests == []
    assert [
        e for e in tab.console_errors if "status of 400" not in e and "status of 429" not in e
    ] == []
