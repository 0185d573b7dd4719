"""Who wrote a message, and who may see it, is bound by the encryption (issue 13, finding 8).

Each test plays an attacker who has the database and no key (or, for the notes, the receipt
too): it changes rows with plain SQL, as a rogue database administrator would, and checks what
the reporter and the staff then see, what is recorded, and what the stored rows give up to the
crypto primitives used directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import threading

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal import crypto
from portal.crypto import Argon2Cost
from portal.models import (
    Attachment,
    AuditEvent,
    Case,
    CaseAccess,
    Message,
    StaffUser,
    Visibility,
)
from portal.services.attachments import store as attachments
from portal.services.audit.chain import Action
from portal.services.casework import cases, content
from portal.services.reporting import followup, intake
from tests.support.factories import DatabaseUnderTest, Portal
from tests.support.pages import login, open_followup

NOTE = "Internal: the manager named in this concern is a friend of the CFO, marker 4471."
REPLY = "Thank you, we are looking into it, marker 8810."
REPORTER_TEXT = "More detail from the reporter, marker 5532."
NOW = dt.datetime(2026, 11, 3, 9, 30, 15, 123456, tzinfo=dt.UTC)


def _sql(db: Session, statement: str, **params: object) -> None:
    """What an attacker with the database and no key does: plain SQL, then commit."""
    db.execute(text(statement), params)
    db.commit()
    db.expire_all()


def _case_with_thread(portal: Portal) -> tuple[intake.Submitted, StaffUser, bytes]:
    gen = portal.staff("gen")
    submitted = portal.submit()
    key = portal.private_key(gen)
    db = portal.session
    cases.add_message(
        db, portal.settings, gen, key, submitted.handle, NOTE, Visibility.INTERNAL, NOW
    )
    cases.add_message(
        db, portal.settings, gen, key, submitted.handle, REPLY, Visibility.REPORTER, NOW
    )
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    followup.add_message(db, portal.settings, reporter, REPORTER_TEXT, NOW.date())
    db.commit()
    return submitted, gen, key


def _row(db: Session, case_id: str, visibility: str, author: str) -> Message:
    return db.scalars(
        select(Message).where(
            Message.case_id == case_id,
            Message.visibility == visibility,
            Message.author == author,
        )
    ).one()


def _reporter_texts(portal: Portal, receipt: str) -> list[str]:
    db = portal.session
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, receipt)
    return [entry.text for entry in followup.view(db, reporter).thread]


def _staff_texts(portal: Portal, user: StaffUser, key: bytes, handle: str) -> list[str]:
    detail = cases.open_case(portal.session, portal.settings, user, key, handle, NOW.date())
    return [entry.text for entry in detail.thread]


def _refused(portal: Portal, user: StaffUser, key: bytes, handle: str) -> int:
    detail = cases.open_case(portal.session, portal.settings, user, key, handle, NOW.date())
    return detail.refused_messages


def _staff_page(app: Flask, user: StaffUser, handle: str) -> str:
    client = app.test_client()
    login(client, user)
    response = client.get(f"/staff/cases/{handle}")
    assert response.status_code == 200, response.text
    return response.text


# --- columns changed with SQL ------------------------------------------------------------------


def test_a_note_made_reporter_visible_is_not_shown_and_the_staff_page_flags_it(
    portal: Portal, db: Session, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    submitted, gen, key = _case_with_thread(portal)
    note = _row(db, submitted.case_id, "internal", "staff")
    _sql(db, "UPDATE messages SET visibility = 'reporter' WHERE id = :id", id=note.id)

    assert NOTE not in _reporter_texts(portal, submitted.receipt)
    assert REPLY in _reporter_texts(portal, submitted.receipt)
    # The reporter's page says a message could not be verified, and shows no note.
    client = app.test_client()
    open_followup(client, submitted.receipt)
    page = client.get("/followup/case").text
    assert "marker 4471" not in page and 'id="messages-refused"' in page

    assert NOTE not in _staff_texts(portal, gen, key, submitted.handle)
    assert _refused(portal, gen, key, submitted.handle) == 1
    db.commit()
    caplog.clear()
    staff_page = _staff_page(app, gen, submitted.handle)
    # Logged, with the case and a count, and nothing of the message.
    assert f"case {submitted.handle}: 1 messages or files do not verify" in caplog.text
    assert "4471" not in caplog.text
    assert 'id="messages-refused"' in staff_page and "could not be verified" in staff_page
    assert "marker 4471" not in staff_page
    # Recorded, as a count, with nothing of the message in the chain.
    events = db.scalars(
        select(AuditEvent).where(
            AuditEvent.case_id == submitted.case_id,
            AuditEvent.action == Action.CASE_MESSAGES_REFUSED.value,
        )
    ).all()
    assert events and all('"count":1' in e.detail.replace(" ", "") for e in events)
    assert all("4471" not in e.detail for e in events)


@pytest.mark.parametrize(
    ("which", "change"),
    [
        # A reporter message made "written by" an ombudsperson ...
        (("reporter", "reporter"), "author = 'staff', author_staff_id = :staff"),
        # ... a staff reply given to another author, or to the system ...
        (("reporter", "staff"), "author_staff_id = :other"),
        (("reporter", "staff"), "author = 'system'"),
        (("reporter", "staff"), "author = 'reporter', author_staff_id = NULL, created_at = NULL"),
        # ... or moved in time.
        (("reporter", "reporter"), "created_on = '2026-01-02'"),
        (("reporter", "staff"), "created_at = '2026-01-02 08:00:00'"),
        (("internal", "staff"), "author_staff_id = :other"),
    ],
)
def test_a_changed_author_or_time_is_refused(
    portal: Portal, db: Session, which: tuple[str, str], change: str
) -> None:
    submitted, gen, key = _case_with_thread(portal)
    other = portal.staff("other")
    row = _row(db, submitted.case_id, *which)
    body = {"reporter": REPORTER_TEXT, "staff": REPLY}[which[1]] if which[0] == "reporter" else NOTE
    _sql(
        db,
        f"UPDATE messages SET {change} WHERE id = :id",  # noqa: S608  # the attack, from the test
        id=row.id,
        staff=gen.id,
        other=other.id,
    )

    assert body not in _staff_texts(portal, gen, key, submitted.handle)
    assert _refused(portal, gen, key, submitted.handle) == 1
    assert body not in _reporter_texts(portal, submitted.receipt)


def test_ciphertext_moved_between_rows_or_cases_is_refused(
    portal: Portal, db: Session, app: Flask
) -> None:
    submitted, gen, key = _case_with_thread(portal)
    reply = _row(db, submitted.case_id, "reporter", "staff")
    mine = _row(db, submitted.case_id, "reporter", "reporter")
    # Swap two rows' ciphertexts within the case.
    _sql(
        db,
        "UPDATE messages SET ciphertext = CASE WHEN id = :a THEN :cb ELSE :ca END"
        " WHERE id IN (:a, :b)",
        a=reply.id,
        b=mine.id,
        ca=reply.ciphertext,
        cb=mine.ciphertext,
    )
    assert _refused(portal, gen, key, submitted.handle) == 2
    assert _reporter_texts(portal, submitted.receipt) == []
    db.commit()
    # The page is still shown (no error), with the line that says so.
    assert "could not be verified" in _staff_page(app, gen, submitted.handle)

    # A row of another case given this one's ciphertext, with the same columns.
    second = portal.submit()
    cases.add_message(
        db, portal.settings, gen, key, second.handle, "second case", Visibility.REPORTER, NOW
    )
    db.commit()
    target = _row(db, second.case_id, "reporter", "staff")
    note = _row(db, submitted.case_id, "internal", "staff")
    _sql(
        db,
        "UPDATE messages SET ciphertext = :blob, visibility = 'internal' WHERE id = :id",
        blob=note.ciphertext,
        id=target.id,
    )
    assert NOTE not in _staff_texts(portal, gen, key, second.handle)
    assert _refused(portal, gen, key, second.handle) == 1


# --- the staff-only key ------------------------------------------------------------------------


def _attacker_reads(db: Session, case_id: str, receipt: str, cost: Argon2Cost) -> list[str]:
    """Everything a receipt plus a copy of the database decrypts of a case's messages, with the
    primitives used directly and every associated data the code could have used."""
    case = db.get_one(Case, case_id)
    private = crypto.derive_reporter_private_key(
        crypto.normalise_receipt(receipt), case.reporter_salt, Argon2Cost.decode(case.reporter_kdf)
    )
    keys = [crypto.unseal(private, case.reporter_sealed_key)]
    # Every sealed copy of any key in the case: none is sealed to the reporter.
    for access in db.scalars(select(CaseAccess).where(CaseAccess.case_id == case_id)):
        # (getattr: the same attack runs against the code before the staff-only key existed.)
        for sealed in (access.sealed_key, getattr(access, "sealed_staff_key", None)):
            if sealed is None:
                continue
            with contextlib.suppress(crypto.DecryptionFailed):
                keys.append(crypto.unseal(private, sealed))
    found = []
    for message in db.scalars(select(Message).where(Message.case_id == case_id)):
        ads = [crypto.case_item_ad(case_id, content.MESSAGE, message.id)]
        bound = hasattr(content, "message_ad")
        for visibility, author in itertools.product(["reporter", "internal"], ["staff", "system"]):
            if not bound:
                break
            ads.append(
                content.message_ad(
                    content.MessageColumns(
                        case_id,
                        message.id,
                        visibility,
                        author,
                        message.author_staff_id,
                        message.created_on,
                        message.created_at,
                    )
                )
            )
        for key, ad in itertools.product(keys, ads):
            with contextlib.suppress(crypto.DecryptionFailed):
                found.append(crypto.decrypt(key, message.ciphertext, ad).decode())
    return found


def test_a_receipt_and_a_database_copy_read_no_internal_note(portal: Portal, db: Session) -> None:
    submitted, gen, key = _case_with_thread(portal)
    read = _attacker_reads(db, submitted.case_id, submitted.receipt, portal.settings.kdf_cost)
    assert any(REPLY in found for found in read)  # the attacker's method works ...
    assert not any(NOTE in found for found in read)  # ... and reads no note
    # The note is still there for its holders.
    assert NOTE in _staff_texts(portal, gen, key, submitted.handle)


def test_a_colleague_granted_the_case_reads_the_notes(portal: Portal, db: Session) -> None:
    from portal.services.casework import access

    submitted, gen, key = _case_with_thread(portal)
    colleague = portal.staff("colleague", queues=("hr",))
    access.grant(db, gen, key, submitted.handle, colleague.id, NOW)
    db.commit()
    assert NOTE in _staff_texts(portal, colleague, portal.private_key(colleague), submitted.handle)


# --- cases from before the binding ---------------------------------------------------------------


def _make_legacy(portal: Portal, submitted: intake.Submitted, gen: StaffUser, key: bytes) -> None:
    """Turn a case into what the previous version stored: no staff-only key, thread version 0,
    every message under the case key bound to the case and row only."""
    db = portal.session
    case, case_key = cases.unlock(db, gen, key, submitted.handle)
    for message in db.scalars(select(Message).where(Message.case_id == case.id)).all():
        if message.visibility == "internal":
            body = content.MessageBody(1, NOTE)
        elif message.author == "staff":
            body = content.MessageBody(2, REPLY)
        else:
            body = content.MessageBody(3, REPORTER_TEXT)
        blob = content.seal_message(case_key, case.id, message.id, body)
        _sql(
            db,
            "UPDATE messages SET ciphertext = :b, ad_version = 0 WHERE id = :id",
            b=blob,
            id=message.id,
        )
    _sql(db, "UPDATE case_access SET sealed_staff_key = NULL WHERE case_id = :c", c=case.id)
    _sql(db, "UPDATE cases SET thread_version = 0, staff_key_tag = NULL WHERE id = :c", c=case.id)


def test_legacy_messages_are_read_and_migrated_when_a_holder_opens_the_case(
    portal: Portal, db: Session
) -> None:
    submitted, gen, key = _case_with_thread(portal)
    second = portal.staff("second")  # another holder of the same queue
    access_row = CaseAccess(
        case_id=submitted.case_id,
        staff_id=second.id,
        sealed_key=crypto.seal(second.public_key, cases.unlock(db, gen, key, submitted.handle)[1]),
    )
    db.add(access_row)
    db.commit()
    _make_legacy(portal, submitted, gen, key)
    # Before any holder opens it: the reporter still reads the legacy replies (unverified), and
    # the receipt still reads the legacy note, as it did before.
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    before = followup.view(db, reporter).thread
    assert [e.text for e in before] == [REPLY, REPORTER_TEXT]
    assert not any(e.verified for e in before)
    db.rollback()

    detail = cases.open_case(db, portal.settings, gen, key, submitted.handle, NOW.date())
    db.commit()
    assert [e.text for e in detail.thread] == [NOTE, REPLY, REPORTER_TEXT]
    assert all(e.verified for e in detail.thread) and detail.refused_messages == 0
    rows = db.scalars(select(Message).where(Message.case_id == submitted.case_id)).all()
    assert {r.ad_version for r in rows} == {content.MESSAGE_BOUND}
    assert db.get_one(Case, submitted.case_id).thread_version == 1
    # Every holder got the new staff-only key; the receipt no longer reads the note.
    holders = db.scalars(select(CaseAccess).where(CaseAccess.case_id == submitted.case_id)).all()
    assert len(holders) == 2 and all(h.sealed_staff_key is not None for h in holders)
    assert NOTE in _staff_texts(portal, second, portal.private_key(second), submitted.handle)
    read = _attacker_reads(db, submitted.case_id, submitted.receipt, portal.settings.kdf_cost)
    assert not any(NOTE in found for found in read)
    assert _reporter_texts(portal, submitted.receipt) == [REPLY, REPORTER_TEXT]


@pytest.mark.parametrize("also_clear", ["", "thread_version", "thread_version,staff_keys"])
def test_setting_a_row_back_to_legacy_is_refused(
    portal: Portal, db: Session, also_clear: str
) -> None:
    submitted, gen, key = _case_with_thread(portal)
    case, case_key = cases.unlock(db, gen, key, submitted.handle)
    reply = _row(db, submitted.case_id, "reporter", "staff")
    note = _row(db, submitted.case_id, "internal", "staff")
    # The version column alone set back: the bound ciphertext does not open as legacy.
    _sql(db, "UPDATE messages SET ad_version = 0 WHERE id = :id", id=reply.id)
    # A forged legacy row made with the case key (a reporter with database access), put in
    # place of the note: it claims to be an ombudsperson's reply.
    forged = content.seal_message(
        case_key, case.id, note.id, content.MessageBody(1, "Forged: drop the concern.")
    )
    _sql(
        db,
        "UPDATE messages SET ciphertext = :b, ad_version = 0, visibility = 'reporter'"
        " WHERE id = :id",
        b=forged,
        id=note.id,
    )
    if "thread_version" in also_clear:
        _sql(
            db, "UPDATE cases SET thread_version = 0, staff_key_tag = NULL WHERE id = :c", c=case.id
        )
    if "staff_keys" in also_clear:
        _sql(db, "UPDATE case_access SET sealed_staff_key = NULL WHERE case_id = :c", c=case.id)

    texts = _reporter_texts(portal, submitted.receipt)
    assert REPLY not in texts and "Forged: drop the concern." not in texts
    assert texts == [REPORTER_TEXT]
    assert _staff_texts(portal, gen, key, submitted.handle) == [REPORTER_TEXT]
    assert _refused(portal, gen, key, submitted.handle) == 2
    db.commit()
    # Opening it again does not "migrate" the forged row into a verified one.
    assert db.scalars(select(Message.ad_version).where(Message.id == note.id)).one() == 0


def test_legacy_rows_of_an_unmigrated_case_are_shown_as_unverified(
    portal: Portal, db: Session
) -> None:
    submitted, gen, key = _case_with_thread(portal)
    _make_legacy(portal, submitted, gen, key)
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    entries = followup.view(db, reporter).thread
    assert entries and all(not entry.verified for entry in entries)


def test_every_sign_of_binding_cleared_still_shows_no_forged_row_as_verified(
    portal: Portal, db: Session
) -> None:
    """The strongest downgrade: every bound row set back to legacy, the case's version and
    every staff-only key cleared, and a forged legacy reply (made with the case key) added. The
    case then looks as if never migrated; a holder's open must not seal it as verified."""
    submitted, gen, key = _case_with_thread(portal)
    case, case_key = cases.unlock(db, gen, key, submitted.handle)
    note = _row(db, submitted.case_id, "internal", "staff")
    forged = content.seal_message(
        case_key, case.id, note.id, content.MessageBody(1, "Forged: drop the concern.")
    )
    _sql(
        db,
        "UPDATE messages SET ciphertext = :b, visibility = 'reporter' WHERE id = :id",
        b=forged,
        id=note.id,
    )
    _sql(db, "UPDATE messages SET ad_version = 0 WHERE case_id = :c", c=case.id)
    _sql(db, "UPDATE cases SET thread_version = 0, staff_key_tag = NULL WHERE id = :c", c=case.id)
    _sql(db, "UPDATE case_access SET sealed_staff_key = NULL WHERE case_id = :c", c=case.id)

    detail = cases.open_case(db, portal.settings, gen, key, submitted.handle, NOW.date())
    db.commit()
    shown = {entry.text: entry.verified for entry in detail.thread}
    assert shown == {"Forged: drop the concern.": False}
    assert detail.refused_messages == 2
    # Not migrated: the forged row is not sealed in the bound format.
    assert db.scalars(select(Message.ad_version).where(Message.id == note.id)).one() == 0
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    assert all(not entry.verified for entry in followup.view(db, reporter).thread)


def test_two_holders_opening_a_legacy_case_at_once_make_one_staff_only_key(
    app: Flask, portal: Portal, db: Session, database: DatabaseUnderTest
) -> None:
    """The second open waits for the first's row lock, then finds the case migrated and uses
    the key the first made: a note the first wrote in the same transaction stays readable.
    SQLite has one writer at a time: there the later writer fails instead of overwriting."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: two migrations cannot overlap")
    submitted, gen, key = _case_with_thread(portal)
    second_user = portal.staff("second")
    case_key = cases.unlock(db, gen, key, submitted.handle)[1]
    db.add(
        CaseAccess(
            case_id=submitted.case_id,
            staff_id=second_user.id,
            sealed_key=crypto.seal(second_user.public_key, case_key),
        )
    )
    db.commit()
    _make_legacy(portal, submitted, gen, key)
    second_key = portal.private_key(second_user)
    sessions = app.extensions["portal"].sessions
    first, second = sessions(), sessions()
    seen: dict[str, list[str]] = {}

    def second_opens() -> None:
        try:
            user = second.get_one(StaffUser, second_user.id)
            detail = cases.open_case(
                second, portal.settings, user, second_key, submitted.handle, NOW.date()
            )
            second.commit()
            seen["second"] = [entry.text for entry in detail.thread]
        finally:
            second.close()

    try:
        user = first.get_one(StaffUser, gen.id)
        cases.add_message(
            first,
            portal.settings,
            user,
            key,
            submitted.handle,
            "Note of the first.",
            Visibility.INTERNAL,
            NOW,
        )
        worker = threading.Thread(target=second_opens)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "the second open did not wait for the first migration"
        first.commit()
    finally:
        first.close()
    worker.join(20)
    assert "Note of the first." in seen["second"] and NOTE in seen["second"]
    db.expire_all()
    texts = _staff_texts(portal, gen, key, submitted.handle)
    assert "Note of the first." in texts and _refused(portal, gen, key, submitted.handle) == 0


# --- attachments: who sent a file is bound too ---------------------------------------------------

FILE = attachments.PreparedFile("minutes.txt", "text/plain", b"the minutes, marker 7719", True)


def _case_with_file(portal: Portal) -> tuple[intake.Submitted, StaffUser, bytes, str]:
    gen = portal.staff("gen")
    submitted = portal.submit(attachments=[FILE])
    (row,) = portal.session.scalars(
        select(Attachment).where(Attachment.case_id == submitted.case_id)
    ).all()
    return submitted, gen, portal.private_key(gen), row.id


def _reporter_files(portal: Portal, receipt: str) -> tuple[list[str], int]:
    db = portal.session
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, receipt)
    view = followup.view(db, reporter)
    return [a.filename for a in view.attachments], view.refused_messages


@pytest.mark.parametrize("change", ["author = 'staff'", "created_on = '2026-01-02'"])
def test_a_file_given_to_another_author_or_day_is_refused(
    portal: Portal, db: Session, change: str
) -> None:
    submitted, gen, key, file_id = _case_with_file(portal)
    assert _reporter_files(portal, submitted.receipt) == (["minutes.txt"], 0)
    _sql(db, f"UPDATE attachments SET {change} WHERE id = :id", id=file_id)  # noqa: S608

    detail = cases.open_case(db, portal.settings, gen, key, submitted.handle, NOW.date())
    assert detail.attachments == [] and detail.refused_messages == 1
    with pytest.raises(attachments.AttachmentDamaged):
        cases.open_attachment(db, gen, key, submitted.handle, file_id, NOW)
    db.rollback()
    assert _reporter_files(portal, submitted.receipt) == ([], 1)


def test_a_legacy_file_is_migrated_on_open_and_a_downgraded_one_refused(
    portal: Portal, db: Session
) -> None:
    submitted, gen, key, file_id = _case_with_file(portal)
    case, case_key = cases.unlock(db, gen, key, submitted.handle)
    row = db.get_one(Attachment, file_id)
    bound = crypto.bound_ad(
        "attachment", 1, [case.id, file_id, row.author, row.created_on.isoformat()]
    )
    meta = crypto.decrypt(case_key, row.meta_ciphertext, bound)
    legacy = crypto.encrypt(case_key, meta, crypto.case_item_ad(case.id, "attachment", file_id))
    # First a downgrade in a migrated case: the version set back with a legacy ciphertext.
    _sql(
        db,
        "UPDATE attachments SET meta_ciphertext = :b, ad_version = 0 WHERE id = :id",
        b=legacy,
        id=file_id,
    )
    assert _reporter_files(portal, submitted.receipt) == ([], 1)
    assert _refused(portal, gen, key, submitted.handle) == 1
    db.rollback()

    # Then the same row in a case from before the binding: listed, and migrated on open.
    _sql(db, "UPDATE case_access SET sealed_staff_key = NULL WHERE case_id = :c", c=case.id)
    _sql(db, "UPDATE cases SET thread_version = 0, staff_key_tag = NULL WHERE id = :c", c=case.id)
    assert _reporter_files(portal, submitted.receipt) == (["minutes.txt"], 0)
    detail = cases.open_case(db, portal.settings, gen, key, submitted.handle, NOW.date())
    db.commit()
    assert [a.filename for a in detail.attachments] == ["minutes.txt"]
    assert db.get_one(Attachment, file_id).ad_version == 1
    info, chunks = cases.open_attachment(db, gen, key, submitted.handle, file_id, NOW)
    assert info.filename == "minutes.txt"
    assert b"".join(chunks) == FILE.data


def test_a_staff_only_key_sealed_by_someone_without_the_case_key_is_refused(
    portal: Portal, db: Session
) -> None:
    """A sealed box says nothing of who sealed it: with the database alone, an attacker can
    seal a key of their own to every holder and write "internal notes" under it, bound to any
    columns they like. The staff-only key must match its case (a tag under the case key)."""
    submitted, gen, key = _case_with_thread(portal)
    note = _row(db, submitted.case_id, "internal", "staff")
    mine = crypto.new_key()
    forged = content.seal_bound_message(
        mine,
        content.MessageColumns(
            submitted.case_id,
            note.id,
            "internal",
            "staff",
            note.author_staff_id,
            note.created_on,
            note.created_at,
        ),
        content.MessageBody(1, "Forged note: the reporter is known to be unreliable."),
    )
    _sql(db, "UPDATE messages SET ciphertext = :b WHERE id = :id", b=forged, id=note.id)
    for holder in db.scalars(select(CaseAccess).where(CaseAccess.case_id == submitted.case_id)):
        public = db.get_one(StaffUser, holder.staff_id).public_key
        _sql(
            db,
            "UPDATE case_access SET sealed_staff_key = :s WHERE case_id = :c AND staff_id = :u",
            s=crypto.seal(public, mine),
            c=submitted.case_id,
            u=holder.staff_id,
        )

    detail = cases.open_case(db, portal.settings, gen, key, submitted.handle, NOW.date())
    assert not any("Forged note" in entry.text for entry in detail.thread)
    assert detail.withheld_notes == 1
    assert [e.text for e in detail.thread] == [REPLY, REPORTER_TEXT]
    # With the tag removed as well, the case still refuses the key (and migrates nothing).
    _sql(db, "UPDATE cases SET staff_key_tag = NULL WHERE id = :c", c=submitted.case_id)
    detail = cases.open_case(db, portal.settings, gen, key, submitted.handle, NOW.date())
    assert not any("Forged note" in entry.text for entry in detail.thread)
