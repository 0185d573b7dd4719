"""A concern from raising to answer, in a real browser on both sides: the reporter (with
JavaScript off and on) and an ombudsperson who logs in with password and code. The reporter
side never needs a script (DESIGN.md invariant 7); named contact details are stored only as
ciphertext (invariant 4) and reach the ombudsperson who holds the case key."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Case
from tests.browser.conftest import SQLITE_ONLY, NewTab, log_in
from tests.browser.test_reporter_journeys import DESCRIPTION, RECEIPT, follow_up, raise_concern
from tests.support.admin_helpers import fresh, tables_containing
from tests.support.factories import Portal

pytestmark = SQLITE_ONLY

JAVASCRIPT = pytest.mark.parametrize(
    "javascript", [False, True], ids=["no-javascript", "javascript"]
)
#: A name and a contact that appear nowhere else (non-ASCII, so UTF-8 storage is looked at too).
NAME = "Zofia Wiśniewska-Quist"
SURNAME = "Wiśniewska"
CONTACT = "zofia.quist@mail.example"
REPLY = "Thank you for telling us. Could you say which team you work in?"
NOTE = "Check the rota of the Monday meetings first."
ANSWER = "I work in the warehouse team, early shift."


def open_only_case(page: Page) -> str:
    """From the case list to the one case listed; returns its handle."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Cases shared with you")
    link = page.locator("table.cases").get_by_role("link")
    expect(link).to_have_count(1)
    handle = link.inner_text().strip()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case {handle}")
    expect(page.locator("#description")).to_have_text(DESCRIPTION)
    return handle


@JAVASCRIPT
def test_named_concern_is_stored_encrypted_and_shown_to_its_ombudsperson(
    app: Flask, portal: Portal, db: Session, new_tab: NewTab, javascript: bool
) -> None:
    olivia = portal.staff("olivia")
    reporter = new_tab(javascript=javascript)
    page = reporter.page
    page.goto("/report")
    page.get_by_label("Harassment, bullying or sexual harassment").check()
    page.get_by_label("What happened?").fill(DESCRIPTION)
    page.get_by_label("When did it happen?").select_option("ongoing")
    page.get_by_label("Yes, give my name and contact details to the ombudsperson only").check()
    page.get_by_label("Your name").fill(NAME)
    page.get_by_label("How to reach you (e-mail or phone)").fill(CONTACT)
    page.get_by_role("button", name="Send my concern").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern was received")
    assert RECEIPT.match(page.locator("#receipt").inner_text().strip())
    reporter.assert_clean()

    # Stored, but only as ciphertext: neither the name, a part of it nor the contact is in any
    # column of any table (text or UTF-8 bytes); the case has its sealed contact.
    for needle in (NAME, SURNAME, CONTACT):
        assert tables_containing(db, needle) == [], needle
    stored = fresh(db).scalars(select(Case)).one()
    assert stored.contact_ciphertext and not stored.is_anonymous

    # The ombudsperson of the queue holds the case key and reads the name on the case page.
    staff = new_tab()
    log_in(staff.page, app, olivia)
    open_only_case(staff.page)
    expect(staff.page.locator("#contact")).to_have_text(f"{NAME} — {CONTACT}")
    staff.assert_clean()


@JAVASCRIPT
def test_reply_through_the_anonymous_channel_and_the_answer(
    app: Flask, portal: Portal, new_tab: NewTab, javascript: bool
) -> None:
    olivia = portal.staff("olivia")
    reporter = new_tab(javascript=javascript)
    receipt = raise_concern(reporter.page)

    # The ombudsperson logs in, acknowledges, replies and keeps a note to herself.
    staff = new_tab()
    page = staff.page
    log_in(page, app, olivia)
    handle = open_only_case(page)
    expect(page.locator("#contact")).to_have_count(0)
    page.get_by_role("button", name="Acknowledge receipt").click()
    expect(page.get_by_text("Acknowledged; the reporter will see it at follow-up.")).to_be_visible()
    expect(page.locator("#case-status")).to_have_text("Acknowledged")
    for text, who in ((REPLY, "Reply: the reporter sees it"), (NOTE, "Internal note")):
        page.get_by_label("Message", exact=True).fill(text)
        page.get_by_label(who).check()
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page).to_have_url(re.compile(rf"/staff/cases/{handle}"))
    thread = page.locator("ol.thread")
    expect(thread.locator(".entry-staff", has_text=REPLY)).to_have_count(1)
    expect(thread.locator(".visibility-internal", has_text=NOTE)).to_have_count(1)

    # The reporter comes back with the receipt, reads the reply (not the note) and answers.
    follow_up(reporter.page, receipt)
    rpage = reporter.page
    expect(rpage.locator("#case-status")).to_have_text("Acknowledged")
    reply = rpage.locator("ol.thread .entry", has_text=REPLY)
    expect(reply).to_have_count(1)
    expect(reply.locator(".meta")).to_contain_text("Ombudsperson")
    expect(rpage.get_by_text(NOTE)).to_have_count(0)
    expect(rpage.get_by_text("Olivia")).to_have_count(0)  # staff stay unnamed to the reporter
    rpage.get_by_label("Add information or reply").fill(ANSWER)
    rpage.get_by_role("button", name="Send message").click()
    expect(rpage.get_by_role("status")).to_have_text("Your message was added.")
    expect(rpage.locator("ol.thread .entry-reporter", has_text=ANSWER)).to_have_count(1)
    reporter.assert_clean()

    # The ombudsperson sees the answer, marked as the reporter's.
    page.reload()
    answer = page.locator("ol.thread .entry-reporter", has_text=ANSWER)
    expect(answer).to_have_count(1)
    expect(answer.locator(".meta")).to_contain_text("Reporter")
    staff.assert_clean()


HOLD_REASON = "The employment tribunal asked for this case to be kept (claim 2026/0415)."


def test_legal_hold_placed_refused_when_empty_and_lifted(
    app: Flask, portal: Portal, db: Session, new_tab: NewTab
) -> None:
    """An ombudsperson places a hold from the case page: an empty reason is refused with the
    message at the field, a reason places it, the case list marks the case, and the hold is
    lifted again. The reason is stored only as ciphertext (an internal note)."""
    olivia = portal.staff("olivia")
    raise_concern(new_tab(javascript=False).page)
    staff = new_tab()
    page = staff.page
    log_in(page, app, olivia)
    handle = open_only_case(page)
    place = page.get_by_role("button", name="Place a legal hold")
    place.click()
    expect(page.locator("#hold-panel")).to_contain_text("Give the reason for the legal hold")
    expect(page.locator("#case-hold")).to_have_count(0)
    # The refusal is a 400 page, which the browser's console reports; nothing else may be there.
    assert [e for e in staff.console_errors if "400" not in e or "/hold" not in e] == []
    staff.console_errors.clear()
    page.get_by_label("Reason for the legal hold").fill(HOLD_REASON)
    place.click()
    expect(page.locator("#case-hold")).to_contain_text("On hold since")
    note = page.locator("ol.thread .visibility-internal", has_text=HOLD_REASON)
    expect(note).to_have_count(1)
    assert tables_containing(db, HOLD_REASON) == []
    page.get_by_role("link", name="Cases").click()
    row = page.locator("table.cases tr", has_text=handle)
    expect(row.locator(".hold-marker")).to_have_text("On hold")
    row.get_by_role("link", name=handle).click()
    page.get_by_role("button", name="Lift the legal hold").click()
    expect(page.locator("#case-hold")).to_have_count(0)
    expect(page.get_by_role("button", name="Place a legal hold")).to_be_visible()
    staff.assert_clean()
