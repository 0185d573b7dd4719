"""The ombudsperson's side: list, open and act on cases they hold a sealed key for."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import NoAccess
from portal.i18n import labels as i18n
from portal.models import (
    Case,
    CaseAccess,
    CaseTag,
    Category,
    MessageAuthor,
    Outcome,
    Priority,
    Queue,
    Role,
    StaffUser,
    Tag,
    Visibility,
    WorkflowStatus,
)
from portal.services.attachments import store as attachments
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import content, deadlines, thread, workflow
from portal.services.casework.deadlines import DeadlineState
from portal.services.casework.text import clean_text
from portal.services.configuration import policy, taxonomy
from portal.settings import Settings

log = logging.getLogger(__name__)

#: Kept here for callers of the first version; the workflow owns it now.
ACKNOWLEDGEMENT_TEXT = workflow.ACKNOWLEDGEMENT_TEXT

#: Deadline states a list can be filtered by: those of a deadline still pending.
PENDING_STATES = (DeadlineState.DUE, DeadlineState.DUE_SOON, DeadlineState.OVERDUE)


@dataclass(frozen=True)
class CaseRow:
    handle: str
    category_label: str
    status_code: str
    status_label: str
    priority: Priority
    reporter_at_risk: bool
    tags: list[str]  # labels, in alphabetical order
    received_on: dt.date
    # The next pending deadline; None once the case is closed (nothing is due any more).
    deadline: deadlines.Deadline | None
    closed_on: dt.date | None
    reporter_wrote_on: dt.date | None
    held_on: dt.date | None = None  # on legal hold since that day (``services.hold``)


@dataclass(frozen=True)
class QueueCases:
    queue: Queue
    rows: list[CaseRow]


@dataclass(frozen=True)
class CaseFilter:
    """The list's filters (from the query string). Each narrows the cases the user already
    holds a key for; none widens them."""

    status: str | None = None  # a WorkflowStatus code
    priority: Priority | None = None
    deadline: DeadlineState | None = None  # one of PENDING_STATES: open cases only


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
    status: WorkflowStatus
    outcome: Outcome | None
    org_category: Category | None  # the organisation's view, beside the reporter's choice
    tags: list[Tag]
    attachments: list[attachments.AttachmentInfo]
    # Messages and files whose ciphertext does not verify against their columns: not shown
    # (see ``thread``); and internal notes this holder has no staff-only key for.
    refused_messages: int = 0
    withheld_notes: int = 0


def may_handle_cases(user: StaffUser) -> bool:
    return user.active and Role.OMBUDSPERSON in user.roles


def tag_labels(session: Session, case_ids: list[str]) -> dict[str, list[str]]:
    """The tag labels of each case, alphabetically (one query for a whole list)."""
    out: dict[str, list[str]] = {case_id: [] for case_id in case_ids}
    if not case_ids:
        return out
    stmt = (
        select(CaseTag.case_id, Tag.label)
        .join(Tag, Tag.id == CaseTag.tag_id)
        .where(CaseTag.case_id.in_(case_ids))
    )
    for case_id, label in session.execute(stmt):
        out[case_id].append(label)
    for labels in out.values():
        labels.sort(key=str.casefold)
    return out


def list_for(
    session: Session,
    settings: Settings,
    user: StaffUser,
    today: dt.date,
    flt: CaseFilter | None = None,
) -> list[QueueCases]:
    """Cases shared with ``user``, grouped by queue; day then random order. No decryption.
    Filters only narrow the cases joined through the user's own sealed keys."""
    if not may_handle_cases(user):
        return []
    flt = flt or CaseFilter()
    stmt = (
        select(Case, Queue, Category, WorkflowStatus)
        .join(CaseAccess, CaseAccess.case_id == Case.id)
        .join(Queue, Queue.id == Case.queue_id)
        .join(Category, Category.id == Case.category_id)
        .outerjoin(WorkflowStatus, WorkflowStatus.code == Case.status)
        .where(CaseAccess.staff_id == user.id)
        .order_by(Queue.name, Case.received_on.desc(), Case.sort_key)
    )
    if flt.status is not None:
        stmt = stmt.where(Case.status == flt.status)
    if flt.priority is not None:
        stmt = stmt.where(Case.priority == flt.priority.value)
    if flt.deadline is not None:
        stmt = stmt.where(Case.closed_on.is_(None))
    due_soon = policy.current(session).due_soon_days
    found = list(session.execute(stmt))
    tags = tag_labels(session, [case.id for case, *_ in found])
    groups: dict[int, QueueCases] = {}
    for case, queue, category, status in found:
        deadline = (
            None if workflow.is_closed(case) else deadlines.next_deadline(case, today, due_soon)
        )
        if flt.deadline is not None and (deadline is None or deadline.state != flt.deadline):
            continue
        group = groups.setdefault(queue.id, QueueCases(queue, []))
        group.rows.append(
            CaseRow(
                handle=case.handle,
                category_label=i18n.shown(category),
                status_code=case.status,
                status_label=i18n.shown(status) if status is not None else case.status,
                priority=Priority(case.priority),
                reporter_at_risk=case.reporter_at_risk,
                tags=tags[case.id],
                received_on=case.received_on,
                deadline=deadline,
                closed_on=case.closed_on,
                reporter_wrote_on=case.reporter_wrote_on,
                held_on=case.held_on,
            )
        )
    return list(groups.values())


def unlock(
    session: Session, user: StaffUser, private_key: bytes, handle: str, *, lock: bool = False
) -> tuple[Case, bytes]:
    """The case and its key, if ``user`` holds a sealed copy; otherwise NoAccess (the same for a
    case that does not exist, so handles cannot be probed).

    ``lock`` takes the case's row lock (PostgreSQL; SQLite has one writer at a time) for an
    action that must not cross the retention job: if a purge is deleting the case, this waits
    for it and then finds no case, instead of updating a row that has gone."""
    if not crypto.is_handle(handle):
        raise NoAccess(handle)
    query = select(Case).where(Case.handle == handle)
    case = session.scalar(query.with_for_update() if lock else query)
    if case is None or not may_handle_cases(user):
        raise NoAccess(handle)
    access = session.get(CaseAccess, (case.id, user.id))
    if access is None:
        raise NoAccess(handle)
    try:
        return case, crypto.unseal(private_key, access.sealed_key)
    except crypto.DecryptionFailed as exc:
        raise NoAccess(handle) from exc


def unlock_keys(
    session: Session, user: StaffUser, private_key: bytes, handle: str, *, lock: bool = False
) -> tuple[Case, thread.CaseKeys]:
    """Like ``unlock``, with the case's staff-only key too (internal notes). A case from before
    that key existed is migrated here (``thread.keys_for_holder``), in the caller's
    transaction."""
    case, case_key = unlock(session, user, private_key, handle, lock=lock)
    access = session.get_one(CaseAccess, (case.id, user.id))
    return case, thread.keys_for_holder(session, case, access, private_key, case_key)


def tags_of(session: Session, case: Case) -> list[Tag]:
    stmt = select(Tag).join(CaseTag, CaseTag.tag_id == Tag.id).where(CaseTag.case_id == case.id)
    return sorted(session.scalars(stmt), key=lambda t: t.label.casefold())


def open_case(
    session: Session,
    settings: Settings,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    today: dt.date,
) -> CaseDetail:
    """Decrypt a case for its page. Reading alone records nothing: ``view_case`` is the audited
    entry point for showing it, and the only one the web uses
    (tests/invariants/matrix/test_audit_view_sweep.py checks that every answer carrying case
    plaintext recorded a view)."""
    case, keys = unlock_keys(session, user, private_key, handle)
    case_key = keys.case
    queue = session.get_one(Queue, case.queue_id)
    messages = thread.read(session, case, keys, include_internal=True)
    files, refused_files = attachments.list_checked(
        session, case.id, case_key, legacy_ok=not thread.is_bound(session, case)
    )
    category = session.get_one(Category, case.category_id)
    return CaseDetail(
        case=case,
        queue=queue,
        category_label=i18n.shown(category),
        site_label=taxonomy.unit_label(session, case.site_id),
        department_label=taxonomy.unit_label(session, case.department_id),
        report=content.open_report(case_key, case.id, case.report_ciphertext),
        contact=(
            content.open_contact(case_key, case.id, case.contact_ciphertext)
            if case.contact_ciphertext is not None
            else None
        ),
        thread=messages.entries,
        deadlines=deadlines.deadlines(case, today, policy.current(session).due_soon_days),
        status=workflow.status_of(session, case),
        outcome=session.get(Outcome, case.outcome_id) if case.outcome_id is not None else None,
        org_category=(
            session.get(Category, case.org_category_id)
            if case.org_category_id is not None
            else None
        ),
        tags=tags_of(session, case),
        attachments=files,
        refused_messages=messages.refused + refused_files,
        withheld_notes=messages.withheld,
    )


def view_case(
    session: Session,
    settings: Settings,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    now: dt.datetime,
) -> CaseDetail:
    """Open a case to show it, and record the view in the audit chain (DESIGN.md invariant 6).
    The caller commits, so the page is shown only if the trace is kept."""
    detail = open_case(session, settings, user, private_key, handle, now.date())
    audit.record(session, Action.CASE_VIEWED, now, actor=user, case=detail.case)
    if detail.refused_messages:
        # A count only: nothing of the refused rows' content is read, logged or recorded.
        log.warning(
            "case %s: %d messages or files do not verify against their columns; not shown",
            detail.case.handle,
            detail.refused_messages,
        )
        audit.record(
            session,
            Action.CASE_MESSAGES_REFUSED,
            now,
            actor=user,
            case=detail.case,
            count=detail.refused_messages,
        )
    return detail


def open_attachment(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    attachment_id: str,
    now: dt.datetime,
) -> tuple[attachments.AttachmentInfo, Iterator[bytes]]:
    """An attachment of a case the user holds, and its plaintext chunk by chunk. The download
    is recorded in the audit chain (invariant 6); the caller commits before sending anything.
    An attachment of another case, or none, is NoAccess like a case one does not hold."""
    case, keys = unlock_keys(session, user, private_key, handle)
    case_key = keys.case
    try:
        info = attachments.open_one(
            session,
            case.id,
            case_key,
            attachment_id,
            legacy_ok=not thread.is_bound(session, case),
        )
    except attachments.NoSuchAttachment as exc:
        raise NoAccess(handle) from exc
    audit.record(
        session, Action.ATTACHMENT_DECRYPTED, now, actor=user, case=case, attachment=info.id
    )
    return info, attachments.read_chunks(session, case.id, case_key, info)


def acknowledge(
    session: Session, user: StaffUser, private_key: bytes, handle: str, now: dt.datetime
) -> None:
    case, keys = unlock_keys(session, user, private_key, handle)
    workflow.acknowledge(session, user, case, keys, now)


def set_status(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    status: str,
    now: dt.datetime,
    *,
    outcome: str | None = None,
    reason: str | None = None,
) -> WorkflowStatus:
    """Move a case to the status with code ``status`` (see ``workflow`` for the rules): closing
    needs an ``outcome`` code, reopening a ``reason``."""
    case, keys = unlock_keys(session, user, private_key, handle)
    return workflow.transition(
        session, user, case, keys, status, now, outcome_code=outcome, reason=reason
    )


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
    case, keys = unlock_keys(session, user, private_key, handle)
    thread.append(
        session,
        case,
        keys,
        author=MessageAuthor.STAFF,
        visibility=visibility,
        text=body,
        today=now.date(),
        now=now,
        staff=user,
    )
    if visibility == Visibility.REPORTER and case.feedback_on is None:
        case.feedback_on = now.date()
    action = Action.CASE_REPLIED if visibility == Visibility.REPORTER else Action.CASE_NOTE_ADDED
    audit.record(session, action, now, actor=user, case=case)
    session.flush()
