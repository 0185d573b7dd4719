"""The ombudsperson's side: list, open and act on cases they hold a sealed key for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.models import (
    Case,
    CaseAccess,
    CaseStatus,
    Category,
    MessageAuthor,
    Queue,
    Role,
    StaffUser,
    Visibility,
)
from portal.services import content, deadlines, policy, taxonomy, thread
from portal.services.errors import InvalidTransition, NoAccess
from portal.services.text import clean_text
from portal.settings import Settings

#: What the reporter reads at follow-up once the case is acknowledged (art. 9(1)(b)).
ACKNOWLEDGEMENT_TEXT = (
    "Your concern has been received and is being looked at by an ombudsperson. "
    "We will reply here; please check back with your receipt."
)


@dataclass(frozen=True)
class CaseRow:
    handle: str
    category_label: str
    status: CaseStatus
    received_on: dt.date
    deadline: deadlines.Deadline
    reporter_wrote_on: dt.date | None


@dataclass(frozen=True)
class QueueCases:
    queue: Queue
    rows: list[CaseRow]


@dataclass(frozen=True)
class CaseDetail:
    case: Case
    queue: Queue
    category_label: str
    site_label: str | None
    department_label: str | None
    report: content.Report
    contact: content.Contact | None
    thread: list[thread.ThreadEntry]
    deadlines: tuple[deadlines.Deadline, deadlines.Deadline]


def may_handle_cases(user: StaffUser) -> bool:
    return user.active and Role.OMBUDSPERSON in user.roles


def list_for(
    session: Session, settings: Settings, user: StaffUser, today: dt.date
) -> list[QueueCases]:
    """Cases shared with ``user``, grouped by queue; day then random order. No decryption."""
    if not may_handle_cases(user):
        return []
    stmt = (
        select(Case, Queue, Category.label)
        .join(CaseAccess, CaseAccess.case_id == Case.id)
        .join(Queue, Queue.id == Case.queue_id)
        .join(Category, Category.id == Case.category_id)
        .where(CaseAccess.staff_id == user.id)
        .order_by(Queue.name, Case.received_on.desc(), Case.sort_key)
    )
    due_soon = policy.current(session).due_soon_days
    groups: dict[int, QueueCases] = {}
    for case, queue, label in session.execute(stmt):
        group = groups.setdefault(queue.id, QueueCases(queue, []))
        group.rows.append(
            CaseRow(
                handle=case.handle,
                category_label=label,
                status=CaseStatus(case.status),
                received_on=case.received_on,
                deadline=deadlines.next_deadline(case, today, due_soon),
                reporter_wrote_on=case.reporter_wrote_on,
            )
        )
    return list(groups.values())


def unlock(
    session: Session, user: StaffUser, private_key: bytes, handle: str
) -> tuple[Case, bytes]:
    """The case and its key, if ``user`` holds a sealed copy; otherwise NoAccess (the same for a
    case that does not exist, so handles cannot be probed)."""
    if not crypto.is_handle(handle):
        raise NoAccess(handle)
    case = session.scalar(select(Case).where(Case.handle == handle))
    if case is None or not may_handle_cases(user):
        raise NoAccess(handle)
    access = session.get(CaseAccess, (case.id, user.id))
    if access is None:
        raise NoAccess(handle)
    try:
        return case, crypto.unseal(private_key, access.sealed_key)
    except crypto.DecryptionFailed as exc:
        raise NoAccess(handle) from exc


def open_case(
    session: Session,
    settings: Settings,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    today: dt.date,
) -> CaseDetail:
    case, case_key = unlock(session, user, private_key, handle)
    queue = session.get_one(Queue, case.queue_id)
    category = session.get_one(Category, case.category_id)
    return CaseDetail(
        case=case,
        queue=queue,
        category_label=category.label,
        site_label=taxonomy.unit_label(session, case.site_id),
        department_label=taxonomy.unit_label(session, case.department_id),
        report=content.open_report(case_key, case.id, case.report_ciphertext),
        contact=(
            content.open_contact(case_key, case.id, case.contact_ciphertext)
            if case.contact_ciphertext is not None
            else None
        ),
        thread=thread.read(session, case, case_key, include_internal=True),
        deadlines=deadlines.deadlines(case, today, policy.current(session).due_soon_days),
    )


def acknowledge(
    session: Session, user: StaffUser, private_key: bytes, handle: str, now: dt.datetime
) -> None:
    case, case_key = unlock(session, user, private_key, handle)
    if case.acknowledged_on is not None:
        raise InvalidTransition("This case was already acknowledged.")
    if case.status == CaseStatus.CLOSED:
        raise InvalidTransition("A closed case cannot be acknowledged.")
    case.acknowledged_on = now.date()
    case.feedback_due_on = deadlines.feedback_due_after_acknowledgement(case, now.date())
    if case.status == CaseStatus.NEW:
        case.status = CaseStatus.ACKNOWLEDGED.value
    thread.append(
        session,
        case,
        case_key,
        author=MessageAuthor.SYSTEM,
        visibility=Visibility.REPORTER,
        text=ACKNOWLEDGEMENT_TEXT,
        today=now.date(),
        now=now,
        staff=user,
    )


def set_status(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    status: CaseStatus,
    now: dt.datetime,
) -> None:
    case, _ = unlock(session, user, private_key, handle)
    current = CaseStatus(case.status)
    if status == current:
        raise InvalidTransition("The case already has that status.")
    if status == CaseStatus.NEW:
        raise InvalidTransition("A case cannot go back to “new”.")
    if current == CaseStatus.NEW and status != CaseStatus.CLOSED and case.acknowledged_on is None:
        # Moving a case on implies it was received: acknowledge it so the reporter is told.
        acknowledge(session, user, private_key, handle, now)
    case.status = status.value
    case.closed_on = now.date() if status == CaseStatus.CLOSED else None
    session.flush()


def add_message(
    session: Session,
    settings: Settings,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    text: str,
    visibility: Visibility,
    now: dt.datetime,
) -> None:
    body = clean_text(text, "text", settings.message_max_chars)
    case, case_key = unlock(session, user, private_key, handle)
    thread.append(
        session,
        case,
        case_key,
        author=MessageAuthor.STAFF,
        visibility=visibility,
        text=body,
        today=now.date(),
        now=now,
        staff=user,
    )
    if visibility == Visibility.REPORTER and case.feedback_on is None:
        case.feedback_on = now.date()
    session.flush()
