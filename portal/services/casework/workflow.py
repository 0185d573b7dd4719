"""The configurable case workflow: statuses (by kind) and outcomes from the taxonomy, and the
rules for moving a case between them.

The rules depend only on a status's *kind*, never on its code, so an organisation can name and
add statuses freely (ISO 37002: receive → assess → address → conclude):

- a case may move between any two active statuses, but never back to the kind ``new``;
- moving to the kind ``closed`` needs an active outcome; it sets ``closed_on``;
- leaving ``closed`` (reopening) needs a stated reason, which is kept only as an encrypted
  internal note in the case's thread, never in the clear and never in the audit log; reopening
  clears ``closed_on`` and the outcome;
- acknowledging moves a case of kind ``new`` to the status of kind ``acknowledged``, if the
  workflow has one, and tells the reporter (EU 2019/1937 art. 9(1)(b)); moving a case that was
  never acknowledged to an acknowledged or open status acknowledges it first.

Every transition is audited in the same transaction; the detail holds status and outcome codes
only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import InvalidTransition, TaxonomyError
from portal.i18n import labels as i18n
from portal.i18n.wording import N_
from portal.models import (
    Case,
    MessageAuthor,
    Outcome,
    StaffUser,
    StatusKind,
    Visibility,
    WorkflowStatus,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import deadlines, thread
from portal.services.casework.text import clean_text

#: What the reporter reads at follow-up once the case is acknowledged (art. 9(1)(b)).
#: Stored in English like any message; the pages show it in the reader's language
#: (``portal.web.labels.thread_text``).
ACKNOWLEDGEMENT_TEXT = N_(
    "Your concern has been received and is being looked at by an ombudsperson. "
    "We will reply here; please check back with your receipt."
)
#: The internal note that keeps the reason for reopening, encrypted like every note.
REOPEN_NOTE_PREFIX = "Reason for reopening: "
REOPEN_REASON_MAX_CHARS = 1000

#: A reporter's message moves a case waiting for them back to work, when the workflow has both
#: statuses (the default taxonomy does). These are the two codes that behaviour looks for.
AWAITING_REPORTER = "awaiting_reporter"
RESUMED = "investigating"


def status_of_kind(session: Session, kind: StatusKind) -> WorkflowStatus:
    """The active status of a kind that has exactly one (new, closed) or the first one."""
    row = session.scalar(
        select(WorkflowStatus)
        .where(WorkflowStatus.kind == kind.value, WorkflowStatus.active)
        .order_by(WorkflowStatus.position)
        .limit(1)
    )
    if row is None:
        raise TaxonomyError(f"the workflow has no active status of kind {kind.value!r}")
    return row


def _optional_status_of_kind(session: Session, kind: StatusKind) -> WorkflowStatus | None:
    try:
        return status_of_kind(session, kind)
    except TaxonomyError:
        return None


def status_by_code(session: Session, code: str) -> WorkflowStatus | None:
    """The status with this code, active or not (a case keeps the code it has)."""
    return session.scalar(select(WorkflowStatus).where(WorkflowStatus.code == code))


def status_of(session: Session, case: Case) -> WorkflowStatus:
    row = status_by_code(session, case.status)
    if row is None:  # the taxonomy refuses to drop a status in use; this is a broken database
        raise TaxonomyError(f"case status {case.status!r} is not in the workflow")
    return row


def is_closed(case: Case) -> bool:
    """Whether the case is closed. ``closed_on`` is set exactly while its status is of kind
    closed, so lists and reminders can select on it in SQL (``Case.closed_on.is_(None)``)."""
    return case.closed_on is not None


def targets(session: Session, case: Case) -> list[WorkflowStatus]:
    """The statuses a case may be moved to now, in workflow order (for the status form)."""
    return [
        s
        for s in session.scalars(
            select(WorkflowStatus).where(WorkflowStatus.active).order_by(WorkflowStatus.position)
        )
        if s.code != case.status and s.kind != StatusKind.NEW
    ]


def outcome_by_code(session: Session, code: str) -> Outcome | None:
    return session.scalar(select(Outcome).where(Outcome.code == code))


# --- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """A permitted transition, as decided by ``check``: ``outcome`` is set exactly when it
    closes the case, ``reason`` exactly when it reopens it."""

    target: WorkflowStatus
    outcome: Outcome | None
    reason: str | None
    acknowledges_first: bool


def check(
    current: WorkflowStatus,
    target: WorkflowStatus | None,
    *,
    acknowledged: bool,
    outcome: Outcome | None,
    outcome_given: bool,
    reason: str | None,
) -> Move:
    """Decide whether a case in ``current`` may move to ``target``; raise InvalidTransition with
    the field to mark and a message for the person, or return what the move does."""
    if target is None or not target.active:
        raise InvalidTransition(N_("That status is not offered. Choose another."), field="status")
    if target.code == current.code:
        raise InvalidTransition(N_("The case already has that status."), field="status")
    if target.kind == StatusKind.NEW:
        raise InvalidTransition(
            N_("A case cannot go back to “%(status)s”.", status=i18n.shown(target)), field="status"
        )
    closes = target.kind == StatusKind.CLOSED
    reopens = current.kind == StatusKind.CLOSED
    if closes:
        if not outcome_given:
            raise InvalidTransition(N_("Choose an outcome to close the case."), field="outcome")
        if outcome is None or not outcome.active:
            raise InvalidTransition(
                N_("That outcome is not offered. Choose another."), field="outcome"
            )
    elif outcome_given:
        raise InvalidTransition(
            N_("An outcome is recorded only when closing the case."), field="outcome"
        )
    if reopens and reason is None:
        raise InvalidTransition(N_("Give the reason for reopening the case."), field="reason")
    if not reopens and reason is not None:
        raise InvalidTransition(
            N_("A reason is asked for only when reopening a closed case."), field="reason"
        )
    acknowledges_first = not acknowledged and target.kind in (
        StatusKind.ACKNOWLEDGED,
        StatusKind.OPEN,
    )
    return Move(
        target=target,
        outcome=outcome if closes else None,
        reason=reason if reopens else None,
        acknowledges_first=acknowledges_first,
    )


# --- the actions (on a case already unlocked by its holder) -------------------------------------


def _moved(before: str, after: str | None = None) -> dict[str, Any]:
    """Audit detail of a move: status codes only ("from" is a Python keyword, hence a dict)."""
    return {"from": before} if after is None else {"from": before, "to": after}


def acknowledge(
    session: Session, user: StaffUser, case: Case, keys: thread.CaseKeys, now: dt.datetime
) -> None:
    """Send the acknowledgement: the reporter reads it at follow-up, the feedback deadline now
    counts from today, and a case of kind new moves to the acknowledged status if there is one."""
    if case.acknowledged_on is not None:
        raise InvalidTransition(N_("This case was already acknowledged."), field="status")
    if is_closed(case):
        raise InvalidTransition(N_("A closed case cannot be acknowledged."), field="status")
    before = case.status
    case.acknowledged_on = now.date()
    case.feedback_due_on = deadlines.feedback_due_after_acknowledgement(case, now.date())
    if status_of(session, case).kind == StatusKind.NEW:
        acknowledged = _optional_status_of_kind(session, StatusKind.ACKNOWLEDGED)
        if acknowledged is not None:
            case.status = acknowledged.code
    thread.append(
        session,
        case,
        keys,
        author=MessageAuthor.SYSTEM,
        visibility=Visibility.REPORTER,
        text=ACKNOWLEDGEMENT_TEXT,
        today=now.date(),
        now=now,
        staff=user,
    )
    audit.record(
        session,
        Action.CASE_ACKNOWLEDGED,
        now,
        actor=user,
        case=case,
        **_moved(before, case.status),
    )
    session.flush()


def transition(
    session: Session,
    user: StaffUser,
    case: Case,
    keys: thread.CaseKeys,
    target_code: str,
    now: dt.datetime,
    *,
    outcome_code: str | None = None,
    reason: str | None = None,
    reason_max_chars: int = REOPEN_REASON_MAX_CHARS,
) -> WorkflowStatus:
    """Move the case to ``target_code`` by the rules above; return the new status."""
    current = status_of(session, case)
    target = status_by_code(session, target_code)
    outcome = outcome_by_code(session, outcome_code) if outcome_code else None
    reason_text = None
    if reason is not None and reason.strip():
        reason_text = clean_text(reason, "reason", reason_max_chars)
    move = check(
        current,
        target,
        acknowledged=case.acknowledged_on is not None,
        outcome=outcome,
        outcome_given=bool(outcome_code),
        reason=reason_text,
    )
    target, outcome = move.target, move.outcome
    if move.reason is not None:
        # Reopened first, so that a case closed before it was ever acknowledged is now
        # acknowledged like any case that goes back to work.
        case.closed_on = None
        case.outcome_id = None
    if move.acknowledges_first:
        # Moving a case on implies it was received: acknowledge it so the reporter is told.
        acknowledge(session, user, case, keys, now)
        if case.status == target.code:  # acknowledging was the whole move
            return target
    before = case.status
    case.status = target.code
    if outcome is not None:
        case.closed_on = now.date()
        case.outcome_id = outcome.id
        audit.record(
            session,
            Action.CASE_CLOSED,
            now,
            actor=user,
            case=case,
            outcome=outcome.code,
            **_moved(before),
        )
    elif move.reason is not None:
        thread.append(
            session,
            case,
            keys,
            author=MessageAuthor.STAFF,
            visibility=Visibility.INTERNAL,
            text=REOPEN_NOTE_PREFIX + move.reason,
            today=now.date(),
            now=now,
            staff=user,
        )
        # The reason is in the encrypted note only: the chain records that it happened.
        audit.record(session, Action.CASE_REOPENED, now, actor=user, case=case, to=target.code)
    else:
        audit.record(
            session,
            Action.CASE_STATUS_CHANGED,
            now,
            actor=user,
            case=case,
            **_moved(before, target.code),
        )
    session.flush()
    return target


def after_reporter_message(session: Session, case: Case) -> None:
    """A reporter wrote: a case waiting for them goes back to work. A reporter event, so it is
    not audited as it happens (it enters the chain in the day's counts)."""
    if case.status != AWAITING_REPORTER:
        return
    resumed = status_by_code(session, RESUMED)
    if resumed is not None and resumed.active and resumed.kind == StatusKind.OPEN:
        case.status = resumed.code
