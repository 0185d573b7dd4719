"""Attachments end to end: reporters attach files to a concern and to a follow-up message; the
portal cleans them, encrypts them in chunks under the case key and stores them in the database;
holders of the case key download them through an audited route with safe headers.

What is asserted is what is stored and logged, not only what is shown: no file name, content or
metadata in any column of any row, no temporary file, no file name in the logs.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import werkzeug.formparser
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from portal.db import Base
from portal.models import (
    Attachment,
    AttachmentChunk,
    AuditEvent,
    Case,
    MessageAuthor,
    Role,
    StaffUser,
)
from portal.services.attachments import sanitize
from portal.services.attachments import store as attachments
from portal.services.attachments.sanitize import core as sanitize_core
from portal.services.attachments.sanitize import detect as sanitize_detect
from portal.services.audit.chain import Action
from portal.services.configuration import policy
from portal.services.reporting import followup
from portal.settings import ATTACHMENT_TYPE_GROUPS, Settings, SettingsError, validate
from portal.web.staff.views import content_disposition
from tests.support.factories import DatabaseUnderTest, Portal, cheap_settings
from tests.support.pages import (
    csrf_token,
    login,
    open_followup,
    receipt_of,
    receipt_page_after,
    report_form,
)
from tests.support.samples import AUTHOR, COMPANY, docx_sample, jpeg_with_gps

#: Small enough to test the size limit cheaply, above Werkzeug's 500 KB spooling threshold.
MAX_BYTES = 700 * 1024
MAX_COUNT = 2
PHOTO_NAME = "holiday-photo-of-the-loading-dock.jpg"
DOCX_NAME = "minutes-from-the-board-meeting.docx"
TEXT_NAME = "what-the-supervisor-said.txt"
TEXT = "The supervisor told me to sign the checklist without looking. Unusual phrase: zorblax.\n"
DESCRIPTION = "Safety checks are signed without being done; see the attached photo."


@pytest.fixture
def settings(database: DatabaseUnderTest, tmp_path: Path) -> Settings:
    return cheap_settings(
        tmp_path / "instance",
        database.url,
        attachment_max_bytes=MAX_BYTES,
        attachment_max_count=MAX_COUNT,
    )


@pytest.fixture(autouse=True)
def holder(portal: Portal) -> StaffUser:
    """An ombudsperson of the general queue, where the tests' concerns go (and without whom
    the report form would say the channel is not open)."""
    return portal.staff("holder")


def _file(data: bytes, name: str, content_type: str | None = None) -> FileStorage:
    """A chosen file; without a content type it is guessed from the name, as browsers do."""
    return FileStorage(io.BytesIO(data), filename=name, content_type=content_type)


def send_multipart(client: FlaskClient, url: str, data: dict[str, object]) -> TestResponse:
    """Post a multipart form encoded in memory: Werkzeug's test client would otherwise write a
    body over 500 KB to a temporary file of its own (and leave it for the garbage collector)."""
    boundary, body = encode_multipart(data)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def post_report(client: FlaskClient, files: list[FileStorage], **fields: object) -> TestResponse:
    token = csrf_token(client.get("/report").text)
    data: dict[str, object] = {
        "csrf_token": token,
        **report_form(category="other", description=DESCRIPTION),
        **fields,
        "files": files,
    }
    return send_multipart(client, "/report", data)


def post_followup(
    client: FlaskClient, text: str, files: list[FileStorage], **fields: object
) -> TestResponse:
    token = csrf_token(client.get("/followup/case").text)
    data = {"csrf_token": token, "text": text, **fields, "files": files}
    return send_multipart(client, "/followup/case", data)


def stored_values(db: Session) -> Iterator[bytes]:
    """Every value of every column of every row of every table, as bytes."""
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)):
            for value in row:
                if value is None:
                    continue
                yield value if isinstance(value, bytes) else str(value).encode()


def assert_stored_nowhere(db: Session, needles: list[bytes]) -> None:
    db.expire_all()
    values = list(stored_values(db))
    for needle in needles:
        assert not any(needle in value for value in values), needle


def only_case(db: Session) -> Case:
    return db.scalars(select(Case)).one()


def case_key_of(portal: Portal, case: Case, receipt: str) -> bytes:
    key = followup.unlock(portal.session, portal.settings, portal.secrets.pepper, receipt)
    return followup._case_and_key(portal.session, key)[1]


def staff_client(app: Flask, user: StaffUser) -> FlaskClient:
    client = app.test_client()
    login(client, user)
    return client


def attachment_links(html: str, handle: str) -> list[str]:
    import re

    return sorted(set(re.findall(rf'href="(/staff/cases/{handle}/attachments/[0-9a-f]+)"', html)))


# --- the forms, without JavaScript ---------------------------------------------------------------


def test_report_form_is_a_plain_multipart_form_with_the_warning_before_sending(
    client: FlaskClient,
) -> None:
    page = client.get("/report").text

    assert 'enctype="multipart/form-data"' in page
    assert 'type="file"' in page and 'name="files"' in page and "multiple" in page
    assert "<script" not in page
    # Limits and what cleaning cannot remove are said before anything is sent.
    assert "up to 2 files, each at most 700 KB" in page
    assert "faces, name badges" in page
    assert "location (GPS)" in page
    # Without the admin's switch, there is no way to send a file uncleaned.
    assert 'name="keep_uncleaned"' not in page


def test_report_with_files_stores_them_cleaned_and_encrypted(
    client: FlaskClient, db: Session, portal: Portal, holder: StaffUser
) -> None:
    photo = jpeg_with_gps()
    assert AUTHOR.encode() in photo and b"SpyCam" in photo

    posted = post_report(
        client,
        [_file(photo, PHOTO_NAME, "image/jpeg"), _file(TEXT.encode(), TEXT_NAME, "text/plain")],
    )

    receipt_page_after(client, posted)
    assert len(db.scalars(select(Attachment)).all()) == 2
    cleaned_photo = sanitize.clean_attachment(PHOTO_NAME, "image/jpeg", photo).data
    assert_stored_nowhere(
        db,
        [
            PHOTO_NAME.encode(),
            b"holiday-photo",
            TEXT_NAME.encode(),
            b"zorblax",
            TEXT.encode()[:40],
            AUTHOR.encode(),
            b"SpyCam",
            b"image/jpeg",
            b"text/plain",
            # Any piece of the cleaned photo, too: the content is stored encrypted only.
            cleaned_photo[100:132],
            cleaned_photo[-64:-32],
        ],
    )


def test_docx_creator_is_gone_from_the_stored_and_the_downloaded_file(
    client: FlaskClient, db: Session, app: Flask, holder: StaffUser
) -> None:
    receipt_page_after(
        client,
        post_report(
            client, [_file(docx_sample(), DOCX_NAME, sanitize_core.FileKind.DOCX.info.mime)]
        ),
    )
    assert_stored_nowhere(db, [DOCX_NAME.encode(), AUTHOR.encode(), COMPANY.encode()])

    staff = staff_client(app, holder)
    handle = only_case(db).handle
    (link,) = attachment_links(staff.get(f"/staff/cases/{handle}").text, handle)
    downloaded = staff.get(link)

    assert downloaded.status_code == 200
    with zipfile.ZipFile(io.BytesIO(downloaded.data)) as archive:
        for name in archive.namelist():
            assert AUTHOR.encode() not in archive.read(name), name
            assert COMPANY.encode() not in archive.read(name), name
        assert b"The evidence paragraph" in archive.read("word/document.xml")


# --- staff download ----------------------------------------------------------------------------


def test_staff_download_is_the_cleaned_file_with_safe_headers_and_an_audit_event(
    client: FlaskClient, db: Session, app: Flask, holder: StaffUser
) -> None:
    photo = jpeg_with_gps()
    receipt_page_after(client, post_report(client, [_file(photo, PHOTO_NAME, "image/jpeg")]))
    staff = staff_client(app, holder)
    case = only_case(db)

    page = staff.get(f"/staff/cases/{case.handle}").text
    (link,) = attachment_links(page, case.handle)
    response = staff.get(link)

    assert PHOTO_NAME in page
    assert response.status_code == 200
    assert response.data == sanitize.clean_attachment(PHOTO_NAME, "image/jpeg", photo).data
    assert AUTHOR.encode() not in response.data and b"SpyCam" not in response.data
    with Image.open(io.BytesIO(response.data)) as image:
        assert image.size == (64, 48) and not image.getexif()
    headers = response.headers
    assert headers["Content-Disposition"] == (
        f"attachment; filename=\"{PHOTO_NAME}\"; filename*=UTF-8''{PHOTO_NAME}"
    )
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Length"] == str(len(response.data))
    db.expire_all()
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == Action.ATTACHMENT_DECRYPTED.value)
    ).one()
    assert event.case_handle == case.handle and event.actor_id == holder.id
    assert json.loads(event.detail) == {"attachment": link.rsplit("/", 1)[1]}
    assert PHOTO_NAME not in event.detail
    # The case's own history shows the download.
    assert "Attachment decrypted" in staff.get(f"/staff/cases/{case.handle}").text


def test_file_names_are_sent_with_rfc_5987_encoding() -> None:
    header = content_disposition("Bericht über München (2).pdf")

    assert header == (
        'attachment; filename="Bericht uber Munchen (2).pdf"; '
        "filename*=UTF-8''Bericht%20%C3%BCber%20M%C3%BCnchen%20%282%29.pdf"
    )
    assert content_disposition('报告".pdf').startswith('attachment; filename="_.pdf"')


def test_staff_without_the_key_cannot_download(
    client: FlaskClient, db: Session, app: Flask, portal: Portal, holder: StaffUser
) -> None:
    outsider = portal.staff("outsider", queues=("hr",))
    admin = portal.staff("admin", roles=(Role.ADMIN,), queues=())
    receipt_page_after(client, post_report(client, [_file(TEXT.encode(), TEXT_NAME)]))
    case = only_case(db)
    (link,) = attachment_links(
        staff_client(app, holder).get(f"/staff/cases/{case.handle}").text, case.handle
    )
    portal.submit(category_code="harassment")  # a case of the hr queue, which the outsider holds
    other = db.scalars(select(Case).where(Case.id != case.id)).one()

    assert staff_client(app, outsider).get(link).status_code == 404
    # Another case's handle the outsider does holds does not open this case's attachment.
    moved = link.replace(case.handle, other.handle)
    assert staff_client(app, outsider).get(moved).status_code == 404
    assert staff_client(app, admin).get(link).status_code == 403
    assert app.test_client().get(link).status_code == 302  # to the log-in page
    db.expire_all()
    assert not db.scalars(
        select(AuditEvent).where(AuditEvent.action == Action.ATTACHMENT_DECRYPTED.value)
    ).all()


# --- chunks cannot be moved, reordered or cut off -----------------------------------------------


def _two_cases_with_files(
    portal: Portal,
) -> tuple[tuple[Case, bytes, str], tuple[Case, bytes, str]]:
    out = []
    for n in range(2):
        submitted = portal.submit(description=f"Case {n}")
        case = portal.session.get_one(Case, submitted.case_id)
        key = case_key_of(portal, case, submitted.receipt)
        data = (f"file {n} ".encode() * 200_000)[: attachments.CHUNK_BYTES * 2 + 10]
        (attachment_id,) = attachments.store(
            portal.session,
            case.id,
            key,
            [attachments.PreparedFile(f"f{n}.txt", "text/plain", data, cleaned=True)],
            author=MessageAuthor.REPORTER,
            today=case.received_on,
        )
        portal.session.commit()
        out.append((case, key, attachment_id))
    return out[0], out[1]


def _read(portal: Portal, case: Case, key: bytes, attachment_id: str) -> bytes:
    portal.session.expire_all()
    info = attachments.open_one(portal.session, case.id, key, attachment_id)
    return b"".join(attachments.read_chunks(portal.session, case.id, key, info))


def _chunk(db: Session, attachment_id: str, seq: int) -> bytes:
    return db.scalars(
        select(AttachmentChunk.ciphertext).where(
            AttachmentChunk.attachment_id == attachment_id, AttachmentChunk.seq == seq
        )
    ).one()


def _set_chunk(db: Session, attachment_id: str, seq: int, blob: bytes) -> None:
    db.execute(
        update(AttachmentChunk)
        .where(AttachmentChunk.attachment_id == attachment_id, AttachmentChunk.seq == seq)
        .values(ciphertext=blob)
    )
    db.commit()


def test_a_stored_file_reads_back_whole_in_three_chunks(portal: Portal, db: Session) -> None:
    (case, key, attachment_id), _other = _two_cases_with_files(portal)

    data = _read(portal, case, key, attachment_id)

    assert len(data) == attachments.CHUNK_BYTES * 2 + 10 and data.startswith(b"file 0 ")
    assert (
        len(
            db.scalars(
                select(AttachmentChunk.seq).where(AttachmentChunk.attachment_id == attachment_id)
            ).all()
        )
        == 3
    )


@pytest.mark.parametrize("where", ["other case", "same case, other place"])
def test_a_chunk_moved_elsewhere_does_not_decrypt(portal: Portal, db: Session, where: str) -> None:
    (case, key, attachment_id), (_case_b, _key_b, other_id) = _two_cases_with_files(portal)
    if where == "other case":
        _set_chunk(db, attachment_id, 1, _chunk(db, other_id, 1))
    else:
        first, second = _chunk(db, attachment_id, 0), _chunk(db, attachment_id, 1)
        _set_chunk(db, attachment_id, 0, second)
        _set_chunk(db, attachment_id, 1, first)

    with pytest.raises(attachments.AttachmentDamaged):
        _read(portal, case, key, attachment_id)


def test_a_file_cut_short_or_lengthened_is_refused(portal: Portal, db: Session) -> None:
    (case, key, attachment_id), _other = _two_cases_with_files(portal)
    last = _chunk(db, attachment_id, 2)
    db.execute(
        cast(Table, AttachmentChunk.__table__)
        .delete()
        .where(AttachmentChunk.attachment_id == attachment_id, AttachmentChunk.seq == 2)
    )
    db.commit()

    with pytest.raises(attachments.AttachmentDamaged):
        _read(portal, case, key, attachment_id)

    # The last chunk back, one place early (as if the file had two chunks), still fails:
    # its associated data says "last" at place 2 only.
    _set_chunk(db, attachment_id, 1, last)
    db.add(
        AttachmentChunk(attachment_id=attachment_id, seq=2, ciphertext=_chunk(db, attachment_id, 0))
    )
    db.commit()
    with pytest.raises(attachments.AttachmentDamaged):
        _read(portal, case, key, attachment_id)


def test_metadata_moved_to_another_attachment_does_not_decrypt(portal: Portal, db: Session) -> None:
    (case, key, attachment_id), (_case_b, _key_b, other_id) = _two_cases_with_files(portal)
    foreign = db.get_one(Attachment, other_id).meta_ciphertext
    db.execute(
        update(Attachment).where(Attachment.id == attachment_id).values(meta_ciphertext=foreign)
    )
    db.commit()

    with pytest.raises(attachments.AttachmentDamaged):
        _read(portal, case, key, attachment_id)


def test_a_damaged_download_is_refused_without_naming_the_file(
    client: FlaskClient,
    db: Session,
    app: Flask,
    holder: StaffUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receipt_page_after(client, post_report(client, [_file(TEXT.encode(), TEXT_NAME)]))
    case = only_case(db)
    staff = staff_client(app, holder)
    (link,) = attachment_links(staff.get(f"/staff/cases/{case.handle}").text, case.handle)
    attachment_id = link.rsplit("/", 1)[1]
    _set_chunk(db, attachment_id, 0, b"\0" * 64)
    caplog.set_level(logging.DEBUG)

    response = staff.get(link)

    # One chunk: its damage is found before the first byte, and nothing is sent.
    assert response.status_code == 302 and response.location == f"/staff/cases/{case.handle}"
    assert "This attachment is damaged" in staff.get(response.location).text
    assert TEXT_NAME not in caplog.text
    assert attachment_id in caplog.text


# --- limits: refused with the text kept ----------------------------------------------------------


def _refused(response: TestResponse) -> str:
    assert response.status_code == 400, response.status_code
    page = response.text
    assert DESCRIPTION in page  # what was typed is kept
    assert "Nothing was sent yet" in page
    assert "choose them again" in page
    return page


def test_a_file_over_the_size_limit_is_refused_and_the_text_kept(
    client: FlaskClient, db: Session
) -> None:
    page = _refused(post_report(client, [_file(b"a" * (MAX_BYTES + 1), "long-notes.txt")]))

    assert "“long-notes.txt” was not accepted: it is larger than 700 KB." in page
    assert db.scalars(select(Case)).all() == []


def test_too_many_files_are_refused_and_the_text_kept(client: FlaskClient, db: Session) -> None:
    files = [_file(b"note %d" % n, f"note-{n}.txt") for n in range(MAX_COUNT + 1)]

    page = _refused(post_report(client, files))

    assert "You chose 3 files; at most 2 can be sent at once." in page
    assert db.scalars(select(Case)).all() == []


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("archive.zip", b"PK\x05\x06" + b"\0" * 18, "this kind of file is not accepted."),
        ("photo.png", jpeg_with_gps(), "its name or type does not match what is inside it."),
        ("macro.exe", b"MZ\x90\x00" + bytes(range(256)), "this kind of file is not accepted."),
        ("empty.txt", b"", "the file is empty."),
    ],
)
def test_a_file_of_a_refused_type_is_named_with_the_reason(
    client: FlaskClient, db: Session, name: str, data: bytes, reason: str
) -> None:
    page = _refused(post_report(client, [_file(b"fine", "fine.txt"), _file(data, name)]))

    assert f"“{name}” was not accepted: {reason}" in page
    assert "fine.txt" not in page  # only the refused file is named; nothing was sent
    assert db.scalars(select(Case)).all() == []
    assert db.scalars(select(Attachment)).all() == []


def test_a_type_left_out_of_the_settings_is_refused(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    app.extensions["portal"].settings = app.extensions["portal"].settings.replace(
        attachment_types="images,pdf"
    )

    page = _refused(post_report(client, [_file(b"plain words", "words.txt")]))

    assert "“words.txt” was not accepted: this kind of file is not accepted here." in page
    assert "Accepted: JPEG pictures, PNG pictures, WebP pictures, GIF pictures, PDF." in page


def test_a_request_over_the_body_cap_gets_the_413_page(app: Flask, client: FlaskClient) -> None:
    cap = app.config["MAX_CONTENT_LENGTH"]
    assert (
        cap
        == Settings()
        .replace(attachment_max_bytes=MAX_BYTES, attachment_max_count=2)
        .max_request_bytes
    )
    token = csrf_token(client.get("/report").text)

    response = send_multipart(
        client,
        "/report",
        {"csrf_token": token, **report_form(), "files": [_file(b"a" * cap, "big.txt")]},
    )

    assert response.status_code == 413
    assert "Too much was sent" in response.text
    assert "Attachments: at most 2 files, each up to 700 KB." in response.text


# --- files that cannot be cleaned ----------------------------------------------------------------

BROKEN_PDF = b"%PDF-1.7\n" + b"this is not really a pdf at all " * 10


def test_an_uncleanable_file_is_refused_when_the_policy_says_so(client: FlaskClient) -> None:
    page = _refused(post_report(client, [_file(BROKEN_PDF, "scan.pdf", "application/pdf")]))

    assert "“scan.pdf” was not accepted: it could not be read" in page
    assert "send it as it is" not in page


def test_keep_as_is_needs_the_ticked_warning_and_is_stored_flagged(
    client: FlaskClient, db: Session, app: Flask, holder: StaffUser
) -> None:
    policy.update(db, attachments_keep_uncleaned=True)
    db.commit()
    form = client.get("/report").text
    assert 'name="keep_uncleaned"' in form

    unticked = _refused(post_report(client, [_file(BROKEN_PDF, "scan.pdf", "application/pdf")]))
    assert "You may send it as it is: tick the box" in unticked
    # A wrong type is never sent as it is, ticked or not.
    wrong = _refused(
        post_report(
            client, [_file(b"MZ\x90\x00" + bytes(range(256)), "tool.exe")], keep_uncleaned="y"
        )
    )
    assert "You may send it as it is" not in wrong

    ticked = post_report(
        client, [_file(BROKEN_PDF, "scan.pdf", "application/pdf")], keep_uncleaned="y"
    )

    receipt_page_after(client, ticked)
    staff = staff_client(app, holder)
    case = only_case(db)
    page = staff.get(f"/staff/cases/{case.handle}").text
    assert "scan.pdf" in page and "not cleaned" in page
    (link,) = attachment_links(page, case.handle)
    download = staff.get(link)
    assert download.data == BROKEN_PDF
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert_stored_nowhere(db, [b"scan.pdf", b"this is not really a pdf"])


# --- follow-up ---------------------------------------------------------------------------------


def test_reporter_adds_a_file_at_follow_up_and_staff_see_it_with_the_message(
    client: FlaskClient, db: Session, app: Flask, portal: Portal, holder: StaffUser
) -> None:
    receipt = portal.submit(description=DESCRIPTION).receipt
    open_followup(client, receipt)
    page = client.get("/followup/case").text
    assert 'enctype="multipart/form-data"' in page and 'name="files"' in page

    sent = post_followup(
        client, "Here is the photo I mentioned.", [_file(jpeg_with_gps(), PHOTO_NAME)]
    )

    assert sent.status_code == 302 and sent.location == "/followup/case?sent=1"
    shown = client.get("/followup/case").text
    assert "Files you sent:" in shown and PHOTO_NAME in shown
    assert "/attachments/" not in shown  # reporters see names; they download nothing
    staff_page = staff_client(app, holder).get(f"/staff/cases/{only_case(db).handle}").text
    message_at = staff_page.index("Here is the photo I mentioned.")
    assert staff_page.index(PHOTO_NAME, message_at) < staff_page.index("</li>", message_at)
    assert_stored_nowhere(db, [PHOTO_NAME.encode(), AUTHOR.encode()])


def test_a_file_may_be_sent_without_text_but_not_nothing(
    client: FlaskClient, portal: Portal
) -> None:
    open_followup(client, portal.submit().receipt)

    nothing = post_followup(client, "", [])
    only_file = post_followup(client, "", [_file(TEXT.encode(), TEXT_NAME)])

    assert nothing.status_code == 400 and "Write a message first." in nothing.text
    assert only_file.status_code == 302
    assert TEXT_NAME in client.get("/followup/case").text


def test_a_refused_follow_up_file_keeps_the_message(client: FlaskClient, portal: Portal) -> None:
    open_followup(client, portal.submit().receipt)

    response = post_followup(
        client, "My long answer that must not be lost.", [_file(b"\0\1\2garbage", "thing.bin")]
    )

    assert response.status_code == 400
    assert "My long answer that must not be lost." in response.text
    assert "“thing.bin” was not accepted" in response.text
    assert "choose them again" in response.text


# --- no temporary file, no file name in the logs -------------------------------------------------


def _no_temporary_files(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a temporary file was created")

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", refuse)
    monkeypatch.setattr(werkzeug.formparser, "TemporaryFile", refuse, raising=False)


def test_the_temporary_file_guard_catches_werkzeugs_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_temporary_files(monkeypatch)
    stream = werkzeug.formparser.default_stream_factory(600 * 1024, "text/plain", "x.txt")

    with pytest.raises(AssertionError, match="temporary file"):
        stream.write(b"a" * 600 * 1024)
    stream.close()


def test_uploads_over_500_kb_never_touch_a_temporary_file(
    client: FlaskClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = ("A line of notes about what happened on the night shift.\n" * 11_000).encode()
    assert 500 * 1024 < len(big) <= MAX_BYTES
    token = csrf_token(client.get("/report").text)
    _no_temporary_files(monkeypatch)

    posted = send_multipart(
        client,
        "/report",
        {
            "csrf_token": token,
            **report_form(category="other", description=DESCRIPTION),
            "files": [_file(big, "notes.txt")],
        },
    )

    assert posted.status_code == 303, posted.text
    assert len(db.scalars(select(AttachmentChunk)).all()) == 3


def test_no_file_name_reaches_the_logs(
    client: FlaskClient,
    app: Flask,
    db: Session,
    portal: Portal,
    holder: StaffUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    names = ["secret-name-one.txt", "secret-name-two.pdf", "secret-name-three.txt"]

    receipt = receipt_of(
        receipt_page_after(client, post_report(client, [_file(TEXT.encode(), names[0])])).text
    )
    post_report(client, [_file(BROKEN_PDF, names[1])])  # refused
    open_followup(client, receipt)
    post_followup(client, "more", [_file(b"more words", names[2])])
    staff = staff_client(app, holder)
    handle = only_case(db).handle
    for link in attachment_links(staff.get(f"/staff/cases/{handle}").text, handle):
        staff.get(link)

    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for name in names:
        assert name not in logged
        assert name.split(".")[0] not in logged


# --- settings and policy -------------------------------------------------------------------------


def test_setting_groups_name_every_type_the_cleaner_knows() -> None:
    named = {kind for group in ATTACHMENT_TYPE_GROUPS.values() for kind in group}

    assert named == {kind.value for kind in sanitize_core.FileKind}
    assert Settings().attachment_type_names == named


@pytest.mark.parametrize(
    "changes",
    [
        {"attachment_types": "images,exe"},
        {"attachment_max_bytes": 0},
        {"attachment_max_bytes": 65 * 1024 * 1024},
        {"attachment_max_count": -1},
        {"attachment_max_count": 21},
        {"attachment_types": " , "},
    ],
)
def test_bad_attachment_settings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        validate(Settings().replace(**changes))


def test_attachments_can_be_turned_off(app: Flask, client: FlaskClient) -> None:
    app.extensions["portal"].settings = app.extensions["portal"].settings.replace(
        attachment_max_count=0
    )
    validate(app.extensions["portal"].settings)

    assert 'name="files"' not in client.get("/report").text


def test_the_keep_as_is_switch_is_an_audited_policy_change(
    app: Flask, db: Session, portal: Portal
) -> None:
    admin = portal.staff("admin", roles=(Role.ADMIN,), queues=())
    console = staff_client(app, admin)
    values = {
        name: str(value)
        for name, value in policy.values(db).__dict__.items()
        if name in policy.LIMITS
    }
    token = csrf_token(console.get("/staff/admin/config/policy").text)

    response = console.post(
        "/staff/admin/config/policy",
        data={"csrf_token": token, **values, "attachments_keep_uncleaned": "y"},
    )

    assert response.status_code == 302
    db.expire_all()
    assert policy.values(db).attachments_keep_uncleaned is True
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == Action.CONFIG_CHANGED.value)
    ).one()
    assert json.loads(event.detail)["fields"] == ["attachments_keep_uncleaned"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/scan 1.PDF", "scan 1.pdf"),
        ("C:\\Users\\jane.doe\\Minutes.DOC", "Minutes.doc"),
        ("no extension", "no extension"),
        ("<script>.pdf", "script.pdf"),
        (".", "attachment"),
        ("report.p$d!f", "report.pdf"),
    ],
)
def test_a_file_kept_as_is_gets_a_safe_name_with_its_own_extension(
    name: str, expected: str
) -> None:
    assert sanitize_detect.safe_filename_as_is(name) == expected
