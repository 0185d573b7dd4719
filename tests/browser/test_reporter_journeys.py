"""A reporter's journeys in a real browser, with JavaScript off and on (DESIGN.md invariant 7):
raise a concern, keep the receipt, come back with it and read the case. No console errors, and
no request leaves for another origin."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from portal.models import Case
from tests.browser.conftest import SQLITE_ONLY, NewTab
from tests.support.factories import Portal

pytestmark = SQLITE_ONLY

DESCRIPTION = "My manager shouts at me in front of the team every Monday."
RECEIPT = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$")
#: Whether the element is what one sees (and clicks) at its own centre, not something over it.
NOT_OBSCURED = """element => {
    const box = element.getBoundingClientRect();
    const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
    return top !== null && element.contains(top);
}"""


def raise_concern(page: Page) -> str:
    """From the front page to the receipt, by links, labels and buttons; returns the receipt."""
    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="Raise a concern").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Raise a concern")
    page.get_by_label("Harassment, bullying or sexual harassment").check()
    page.get_by_label("What happened?").fill(DESCRIPTION)
    page.get_by_label("When did it happen?").select_option("ongoing")
    expect(page.get_by_label("No, stay anonymous")).to_be_checked()
    page.get_by_role("button", name="Send my concern").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern was received")
    receipt = page.locator("#receipt").inner_text().strip()
    assert RECEIPT.match(receipt), receipt
    return receipt


def follow_up(page: Page, receipt: str) -> None:
    """From the receipt page to the case, typing the receipt and pressing Enter."""
    page.get_by_role("link", name="Go to follow-up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Follow up on your concern")
    page.get_by_label("Your receipt").fill(receipt)
    page.get_by_label("Your receipt").press("Enter")
    expect(page).to_have_url(re.compile(r"/followup/case$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern")
    expect(page.get_by_text(DESCRIPTION)).to_be_visible()
    expect(page.get_by_text("Not given: anonymous")).to_be_visible()


@pytest.mark.parametrize("javascript", [False, True], ids=["no-javascript", "javascript"])
def test_anonymous_concern_and_follow_up(portal: Portal, new_tab: NewTab, javascript: bool) -> None:
    portal.staff("olivia")  # an ombudsperson in a queue opens the channel
    tab = new_tab(javascript=javascript)
    receipt = raise_concern(tab.page)
    follow_up(tab.page, receipt)
    tab.assert_clean()


def test_keyboard_only_concern(portal: Portal, new_tab: NewTab) -> None:
    """The form is reachable and sendable with the keyboard alone: quick exit, skip link, Tab,
    arrows, typing, Enter; no mouse click anywhere."""
    portal.staff("olivia")
    tab = new_tab(javascript=False)
    page = tab.page
    page.goto("/report")
    # The quick exit comes first: a frightened reporter must reach it with one key.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Leave this site quickly")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    # Shown where it is not covered by the sticky quick exit (WCAG 2.4.11, focus not obscured).
    assert page.get_by_role("link", name="Skip to content").evaluate(NOT_OBSCURED)
    page.keyboard.press("Enter")
    # The first radio of the category group is the next stop after the skip target.
    page.keyboard.press("Tab")
    while not page.evaluate("document.activeElement.name === 'category'"):
        page.keyboard.press("Tab")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(page.get_by_label("What happened?")).to_be_focused()
    page.keyboard.type(DESCRIPTION)
    page.keyboard.press("Tab")
    expect(page.get_by_label("When did it happen?")).to_be_focused()
    page.keyboard.press("ArrowDown")  # "Choose…" to "It is still going on"
    while not page.evaluate("document.activeElement.type === 'submit'"):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern was received")
    follow_up(page, page.locator("#receipt").inner_text().strip())
    tab.assert_clean()


def test_the_receipt_prints_without_the_forms_and_menus(portal: Portal, new_tab: NewTab) -> None:
    """A reporter may print the receipt page: the receipt is on paper; the quick exit, menus and
    forms (the practice check) are not."""
    portal.staff("olivia")
    tab = new_tab(javascript=False)
    receipt = raise_concern(tab.page)
    tab.page.emulate_media(media="print")
    expect(tab.page.locator("#receipt")).to_have_text(receipt)
    expect(tab.page.locator("#receipt")).to_be_visible()
    expect(tab.page.get_by_role("link", name="Leave this site quickly")).to_be_hidden()
    for form in tab.page.locator("main form").all():
        expect(form).to_be_hidden()
    tab.assert_clean()


@pytest.mark.parametrize("javascript", [False, True], ids=["no-javascript", "javascript"])
def test_reloading_the_receipt_page_sends_nothing_again(
    portal: Portal, new_tab: NewTab, app: Flask, javascript: bool
) -> None:
    """The receipt page is reached by a redirect (post/redirect/get): reloading it asks nothing,
    sends no second concern and shows the receipt no more."""
    portal.staff("olivia")
    tab = new_tab(javascript=javascript)
    receipt = raise_concern(tab.page)
    expect(tab.page).to_have_url(re.compile(r"/report/receipt$"))
    response = tab.page.reload()
    assert response is not None and response.status == 410
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("This receipt is not shown again")
    expect(tab.page.locator("#receipt")).to_have_count(0)
    assert receipt not in tab.page.content()
    with app.extensions["portal"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1
    assert tab.foreign_requests == []
