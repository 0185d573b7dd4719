"""The reporter pages read well on a 360 px wide phone: nothing scrolls sideways, and every
control of the form is visible. Nor do the staff log-in and case pages, or the admin console,
scroll sideways."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from portal.models import Role, Visibility
from portal.services.casework import cases
from tests.browser.conftest import SQLITE_ONLY, NewTab, enter_code, enter_password, log_in
from tests.support.factories import Portal

pytestmark = SQLITE_ONLY

PHONE = {"width": 360, "height": 740}
REPORTER = Visibility.REPORTER
#: The admin console's pages without an id in their path.
ADMIN_PAGES = [
    "/staff/admin/",
    "/staff/admin/staff",
    "/staff/admin/staff/new",
    "/staff/admin/audit",
    "/staff/admin/config",
    "/staff/admin/config/queues",
    "/staff/admin/config/rules",
    "/staff/admin/config/policy",
    "/staff/admin/taxonomy",
    "/staff/admin/routing-test",
]


def page_width(page: Page) -> int:
    """How wide the page's content is: more than the viewport means it scrolls sideways."""
    width: int = page.evaluate("document.scrollingElement.scrollWidth")
    return width


@pytest.mark.parametrize("path", ["/", "/report", "/followup"])
def test_no_horizontal_scroll_at_360_px(portal: Portal, new_tab: NewTab, path: str) -> None:
    portal.staff("olivia")
    tab = new_tab(javascript=False, **PHONE)
    tab.page.goto(path)
    assert page_width(tab.page) <= PHONE["width"]
    tab.assert_clean()


def test_report_form_controls_visible_at_360_px(portal: Portal, new_tab: NewTab) -> None:
    portal.staff("olivia")
    tab = new_tab(javascript=False, **PHONE)
    page = tab.page
    page.goto("/report")
    # Every control a person uses; the honeypot (aria-hidden, off screen on purpose) is not one.
    controls = page.locator(
        "form input:not([type=hidden]), form select, form textarea, form button"
    ).filter(has_not=page.locator("xpath=ancestor::*[@aria-hidden='true']"))
    assert controls.count() > 5
    for control in controls.all():
        control.scroll_into_view_if_needed()
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
    tab.assert_clean()


def test_staff_pages_do_not_scroll_sideways_at_360_px(
    app: Flask, portal: Portal, db: Session, new_tab: NewTab
) -> None:
    """An ombudsperson on a phone: the log-in steps, the case list and a case page with a long
    thread and the forms below it fit the width."""
    olivia = portal.staff("olivia")
    case = portal.submit(description="A long account of what happened. " * 40)
    secret = portal.private_key(olivia)
    reply = "A reply with a long unbroken word: " + "x" * 120
    now = dt.datetime.now(dt.UTC)
    cases.add_message(db, portal.settings, olivia, secret, case.handle, reply, REPORTER, now)
    db.commit()
    tab = new_tab(javascript=False, **PHONE)
    page = tab.page
    widths = {}
    page.goto("/staff/login")
    widths["log-in"] = page_width(page)
    enter_password(page, olivia)
    widths["second factor"] = page_width(page)
    enter_code(page, app, olivia)
    widths["case list"] = page_width(page)
    page.get_by_role("link", name=case.handle).click()
    expect(page.get_by_text(reply)).to_be_visible()
    widths["case page"] = page_width(page)
    assert {name: w for name, w in widths.items() if w > PHONE["width"]} == {}
    tab.assert_clean()


def test_admin_pages_do_not_scroll_sideways_at_360_px(
    app: Flask, portal: Portal, new_tab: NewTab
) -> None:
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    portal.staff("olivia")  # a second row in the staff list, and an event in the audit log
    tab = new_tab(javascript=False, **PHONE)
    page = tab.page
    log_in(page, app, root)
    widths = {}
    for path in ADMIN_PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        widths[path] = page_width(page)
    assert {path: w for path, w in widths.items() if w > PHONE["width"]} == {}
    tab.assert_clean()
