"""Receiving a concern: validate, route, encrypt, store; return the receipt (shown once)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.db import mark_reporter_write
from portal.errors import InvalidInput
from portal.i18n.wording import N_
from portal.models import Case, CaseAccess, MessageAuthor, OrgUnitKind, StatusKind
from portal.services.attachments import store as attachments
from portal.services.casework import content, deadlines, thread, workflow
from portal.services.casework.text import clean_text
from portal.services.configuration import policy, taxonomy
from portal.services.reporting import routing
from portal.settings import Settings

ONGOING = "ongoing"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Concern:
    """What the reporter typed or chose, as received from a form or a script."""

    category_code: str
    description: str
    happened: str  # "YYYY-MM" or "ongoing"
    site_code: str | None = None
    department_code: str | None = None
    contact_name: str | None = None  # both None for an anonymous concern
    contact_details: str | None = None
    excluded_staff_ids: Collection[int] = ()
    # Already cleaned (or kept as is with consent) by ``attachments.prepare``.
    attachments: Sequence[attachments.PreparedFile] = ()


@dataclass(frozen=True)
class Submitted:
    case_id: str
    handle: str
    receipt: str  # show once; it is not stored anywhere
    queue_slug: str


def _check_month(value: str, today: dt.date) -> str:
    if value == ONGOING:
        return value
    match = _MONTH.match(value or "")
    if not match:
        raise InvalidInput("happened", N_("Choose a month, or “ongoing”."))
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12 or year < 1950:
        raise InvalidInput("happened", N_("Choose a month, or “ongoing”."))
    if (year, month) > (today.year, today.month):
        raise InvalidInput("happened", N_("That month is in the future."))
    return value


def _new_handle(session: Session) -> str:
    while True:
        handle = crypto.new_handle()
        if session.scalar(select(Case.id).where(Case.handle == handle)) is None:
            return handle


def submit(
    session: Session, settings: Settings, pepper: bytes, concern: Concern, today: dt.date
) -> Submitted:
    """Store a concern. Either everything is flushed and a receipt returned, or an error is
    raised before anything was added to the session."""
    category = taxonomy.category_by_code(session, concern.category_code)
    site_id = (
        taxonomy.unit_by_code(session, OrgUnitKind.SITE, concern.site_code).id
        if concern.site_code
        else None
    )
    department_id = (
        taxonomy.unit_by_code(session, OrgUnitKind.DEPARTMENT, concern.department_code).id
        if concern.department_code
        else None
    )
    description = clean_text(concern.description, "description", settings.description_max_chars)
    happened = _check_month(concern.happened, today)
    named = concern.contact_name is not None or concern.contact_details is not None
    contact = None
    if named:
        contact = content.Contact(
            name=clean_text(concern.contact_name, "contact_name", settings.contact_field_max_chars),
            details=clean_text(
                concern.contact_details, "contact_details", settings.contact_field_max_chars
            ),
        )
    excluded = frozenset(int(i) for i in concern.excluded_staff_ids)
    routed = routing.route(session, category, site_id, department_id, excluded, description)

    receipt = crypto.new_receipt()
    normalised = crypto.normalise_receipt(receipt)
    salt = crypto.new_salt()
    reporter_public = crypto.public_key_of(
        crypto.derive_reporter_private_key(normalised, salt, settings.kdf_cost)
    )
    case_key = crypto.new_key()
    # The internal notes' own key: sealed to the staff holders below, never to the reporter.
    staff_key = crypto.new_key()
    case_id = crypto.random_id()
    rules = policy.values(session)
    report = content.Report(description, happened, tuple(sorted(excluded)))
    case = Case(
        id=case_id,
        handle=_new_handle(session),
        sort_key=crypto.random_sort_key(),
        queue_id=routed.queue.id,
        category_id=category.id,
        site_id=site_id,
        department_id=department_id,
        is_anonymous=contact is None,
        status=workflow.status_of_kind(session, StatusKind.NEW).code,
        priority=routed.priority.value,
        received_on=today,
        acknowledge_due_on=deadlines.acknowledge_due(today, rules),
        feedback_due_on=deadlines.feedback_due(today, None, rules),
        lookup_id=crypto.receipt_lookup_id(pepper, normalised),
        reporter_salt=salt,
        reporter_kdf=settings.kdf_cost.encode(),
        reporter_public_key=reporter_public,
        reporter_sealed_key=crypto.seal(reporter_public, case_key),
        report_ciphertext=content.seal_report(case_key, case_id, report),
        contact_ciphertext=(
            content.seal_contact(case_key, case_id, contact) if contact is not None else None
        ),
    )
    case.thread_version = thread.THREAD_BOUND
    case.staff_key_tag = crypto.staff_key_tag(case_key, case_id, staff_key)
    session.add(case)
    mark_reporter_write(session)  # its commit checkpoints the WAL (portal.db)
    for member in routed.recipients:
        session.add(
            CaseAccess(
                case_id=case_id,
                staff_id=member.id,
                sealed_key=crypto.seal(member.public_key, case_key),
                sealed_staff_key=crypto.seal(member.public_key, staff_key),
            )
        )
    session.flush()
    attachments.store(
        session,
        case_id,
        case_key,
        concern.attachments,
        author=MessageAuthor.REPORTER,
        today=today,
    )
    return Submitted(case_id, case.handle, receipt, routed.queue.slug)
