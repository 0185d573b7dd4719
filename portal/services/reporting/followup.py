"""The reporter's side after submission: unlock a case with the receipt, read it, write back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.crypto import Argon2Cost
from portal.db import mark_reporter_write
from portal.errors import MalformedReceipt, UnknownReceipt
from portal.i18n import labels as i18n
from portal.models import Case, Category, MessageAuthor, Visibility
from portal.services.attachments import store as attachments
from portal.services.casework import content, thread, workflow
from portal.services.casework.text import clean_text
from portal.services.configuration import taxonomy
from portal.settings import Settings


@dataclass(frozen=True)
class ReporterKey:
    """What a reporter's follow-up session holds: the case id and the receipt-derived private
    key. Never the receipt itself."""

    case_id: str
    private_key: bytes


@dataclass(frozen=True)
class ReporterCaseView:
    status: str  # the status code
    status_label: str
    received_on: dt.date
    category_label: str
    site_label: str | None
    department_label: str | None
    description: str
    happened: str
    is_anonymous: bool
    contact: content.Contact | None
    thread: list[thread.ThreadEntry]
    attachments: list[attachments.AttachmentInfo]  # names are shown; reporters download none
    refused_messages: int = 0  # messages and files that did not verify: not shown


def unlock(session: Session, settings: Settings, pepper: bytes, receipt: str) -> ReporterKey:
    """Turn a receipt into a reporter key. Unknown receipts cost the same Argon2 work as known
    ones, so timing does not reveal whether a case exists."""
    try:
        normalised = crypto.normalise_receipt(receipt)
    except crypto.MalformedSecret as exc:
        raise MalformedReceipt(str(exc)) from exc
    case = session.scalar(
        select(Case).where(Case.lookup_id == crypto.receipt_lookup_id(pepper, normalised))
    )
    if case is None:
        crypto.burn_receipt_time(settings.kdf_cost)
        raise UnknownReceipt
    private_key = crypto.derive_reporter_private_key(
        normalised, case.reporter_salt, Argon2Cost.decode(case.reporter_kdf)
    )
    if not crypto.constant_time_equal(crypto.public_key_of(private_key), case.reporter_public_key):
        raise UnknownReceipt
    # A yes/no for the insights' follow-up rate; the caller commits. Never when, nor how often.
    case.reporter_returned = True
    mark_reporter_write(session)
    return ReporterKey(case.id, private_key)


def _case_and_key(session: Session, key: ReporterKey) -> tuple[Case, bytes]:
    case = session.get(Case, key.case_id)
    if case is None:
        raise UnknownReceipt
    try:
        return case, crypto.unseal(key.private_key, case.reporter_sealed_key)
    except crypto.DecryptionFailed as exc:
        raise UnknownReceipt from exc


def view(session: Session, key: ReporterKey) -> ReporterCaseView:
    case, case_key = _case_and_key(session, key)
    report = content.open_report(case_key, case.id, case.report_ciphertext)
    contact = (
        content.open_contact(case_key, case.id, case.contact_ciphertext)
        if case.contact_ciphertext is not None
        else None
    )
    category = session.get(Category, case.category_id)
    # The case key only: internal notes are under the staff-only key, which the reporter never
    # holds, and are not even selected.
    messages = thread.read(session, case, thread.CaseKeys(case_key), include_internal=False)
    files, refused_files = attachments.list_checked(
        session, case.id, case_key, legacy_ok=not thread.is_bound(session, case)
    )
    return ReporterCaseView(
        status=case.status,
        status_label=i18n.shown(workflow.status_of(session, case)),
        received_on=case.received_on,
        category_label=i18n.shown(category) if category else "",
        site_label=taxonomy.unit_label(session, case.site_id),
        department_label=taxonomy.unit_label(session, case.department_id),
        description=report.description,
        happened=report.happened,
        is_anonymous=case.is_anonymous,
        contact=contact,
        thread=messages.entries,
        refused_messages=messages.refused + refused_files,
        attachments=[a for a in files if a.author is MessageAuthor.REPORTER],
    )


def add_message(
    session: Session,
    settings: Settings,
    key: ReporterKey,
    text: str,
    today: dt.date,
    files: Sequence[attachments.PreparedFile] = (),
) -> None:
    """Add a reporter message, with the files sent with it (already prepared). A message may
    be empty when it carries files."""
    body = clean_text(text, "text", settings.message_max_chars, required=not files)
    case, case_key = _case_and_key(session, key)
    message = thread.append(
        session,
        case,
        thread.CaseKeys(case_key),
        author=MessageAuthor.REPORTER,
        visibility=Visibility.REPORTER,
        text=body,
        today=today,
    )
    attachments.store(
        session,
        case.id,
        case_key,
        files,
        author=MessageAuthor.REPORTER,
        today=today,
        message_id=message.id,
    )
    case.reporter_wrote_on = today
    mark_reporter_write(session)
    workflow.after_reporter_message(session, case)
    session.flush()
