"""Attachments in a real browser: a reporter with JavaScript off attaches a photo carrying GPS
and camera data to a concern; an ombudsperson logs in (password, then second factor), opens the
case and downloads the file, which is the cleaned photo: same pixels, none of the metadata."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from playwright.sync_api import FilePayload, expect
from sqlalchemy import select

from portal.models import Case
from portal.services.attachments import sanitize
from tests.browser.conftest import SQLITE_ONLY, NewTab
from tests.support.factories import PASSWORD, Portal
from tests.support.pages import next_code
from tests.support.samples import AUTHOR, jpeg_with_gps

pytestmark = SQLITE_ONLY

DESCRIPTION = "The loading dock's fire exit is chained shut; photo attached."
PHOTO = "loading-dock.jpg"


def test_reporter_attaches_without_javascript_and_staff_download_the_cleaned_file(
    app: Flask, portal: Portal, new_tab: NewTab, tmp_path: Path
) -> None:
    olivia = portal.staff("olivia")
    photo = jpeg_with_gps()
    assert AUTHOR.encode() in photo

    reporter = new_tab(javascript=False)
    page = reporter.page
    page.goto("/report")
    expect(page.locator("#files-warning")).to_contain_text("faces, name badges")
    page.get_by_label("Harassment, bullying or sexual harassment").check()
    page.get_by_label("What happened?").fill(DESCRIPTION)
    page.get_by_label("When did it happen?").select_option("ongoing")
    page.get_by_label("Choose files").set_input_files(
        [FilePayload(name=PHOTO, mimeType="image/jpeg", buffer=photo)]
    )
    page.get_by_role("button", name="Send my concern").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your concern was received")
    reporter.assert_clean()

    staff = new_tab(javascript=False)
    page = staff.page
    page.goto("/staff/login")
    page.get_by_label("E-mail").fill(olivia.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Code from your authenticator app").fill(next_code(app, olivia))
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))
    portal.session.expire_all()
    handle = portal.session.scalars(select(Case.handle)).one()
    page.goto(f"/staff/cases/{handle}")
    expect(page.locator("#attachments")).to_contain_text(PHOTO)
    with page.expect_download() as info:
        page.locator("#attachments").get_by_role("link", name=PHOTO).click()
    download = info.value
    saved = tmp_path / "downloaded.jpg"
    download.save_as(saved)

    assert download.suggested_filename == PHOTO
    assert saved.read_bytes() == sanitize.clean_attachment(PHOTO, "image/jpeg", photo).data
    assert AUTHOR.encode() not in saved.read_bytes()
    staff.assert_clean()
