"""Retention: closed cases are purged after a period, their holders warned beforehand.

A closed case is kept ``retention_days`` after the day it was closed: its outcome's own period
(``retention_days`` of the outcome in the taxonomy file), else the policy's (default 730 days).
``retention_warning_days`` (default 30) before that, every active ombudsperson holding its key
is told by mail, in counts only like every other notice (no handle, category, queue, date or
text: see ``services.notify``), and the case list shows which cases will go. A case is purged
only once it has been warned about *and* the warning period has run since, so a purge that was
not running for a while, or a shortened period, never deletes a case without notice. Reopening
a case stops it: its ``closed_on`` is cleared, and a warning older than a later closing does not
count, so a re-closed case is warned about again.

Purging deletes, in one transaction, every row that holds the case's content or a copy of its
key: the case row (report and contact ciphertext, receipt lookup id, reporter salt, public key
and sealed key), messages and notes, attachments and their chunks, the staff's sealed keys
(``case_access``), pending re-grants, recusals and tag links. What stays is a ``RetainedCase``
stub with only the coarse attributes the insights count (received day, category, queue, site,
department, named or not, came back or not, the deadline days, closed day, outcome), under a new
random id, so that recomputed insight figures do not change (docs/insights.md). The audit log
keeps its rows (they name the case id and handle of staff actions, never content); the stub
shares neither (a unique closing day and outcome can still match it to a ``case.closed`` event:
docs/insights.md).

On SQLite every connection runs with ``PRAGMA secure_delete=ON`` (``portal.db``): deleted
content is overwritten in the database file. On PostgreSQL deleted tuples stay in the table
files until ``VACUUM`` reuses the space; ``portal purge`` runs it afterwards (docs/operations.md).

One audit event per run (``system.retention``) with counts only: no handle, no outcome, no
queue, because a handle would link the purge day to that case's history in the log.

A case on legal hold (``services.hold``) is never warned about nor purged, whatever its period:
the run counts, and reports, the held cases whose period is over ("kept on hold"). Placing or
lifting a hold clears the case's warning, so a case whose period ran out during the hold is
warned about again after the lift, and purged no sooner than the whole warning period later.
``purge`` itself reads the hold again, with the rows locked, so a hold placed on another app
server while a run is under way still wins.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.models import (
    Attachment,
    AttachmentChunk,
    Case,
    CaseAccess,
    CaseRecusal,
    CaseTag,
    Message,
    Outcome,
    PendingRegrant,
    Queue,
    RetainedCase,
    StaffUser,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.configuration import policy
from portal.services.notifications.mail import Delivery, Mailer, compose
from portal.services.notifications.notify import Notice, Texts, _holders, deliver, link_lines
from portal.settings import Settings

#: Cases deleted per statement, so that an ``IN`` list stays small on both databases.
BATCH = 200

#: The tables that hold a purged case's content or keys, child tables first. Every table with a
#: foreign key to ``cases`` (or to ``attachments``) is here; tests check that none is missed.
PURGED_TABLES = (
    "attachment_chunks",
    "attachments",
    "messages",
    "case_access",
    "pending_regrants",
    "case_recusals",
    "case_tags",
    "cases",
)


@dataclass(frozen=True)
class Due:
    """A closed case and the days that matter for its retention."""

    case: Case
    purge_on: dt.date  # the first day it may be purged (end of its retention period)
    warn_on: dt.date  # the first day its holders are warned

    @property
    def warned(self) -> bool:
        """Warned since it was last closed."""
        warned_on = self.case.purge_warned_on
        closed_on = self.case.closed_on
        return warned_on is not None and closed_on is not None and warned_on >= closed_on


def periods(session: Session) -> tuple[dict[int, int], int]:
    """Retention days per outcome id (those that set their own) and the policy's default."""
    own = {
        o.id: o.retention_days
        for o in session.scalars(select(Outcome).where(Outcome.retention_days.is_not(None)))
        if o.retention_days is not None
    }
    return own, policy.values(session).retention_days


def closed_cases(session: Session, today: dt.date) -> list[Due]:
    """Closed cases whose warning day has come, with their purge and warning days."""
    own, default = periods(session)
    warning = policy.values(session).retention_warning_days
    # Nothing closed after this day can be due for a warning, whatever its outcome's period.
    shortest = min([default, *own.values()])
    horizon = today - dt.timedelta(days=shortest - warning)
    found = []
    for case in session.scalars(
        select(Case).where(Case.closed_on.is_not(None), Case.closed_on <= horizon)
    ):
        if case.closed_on is None:  # selected so; narrows the type
            continue
        days = own.get(case.outcome_id, default) if case.outcome_id is not None else default
        purge_on = case.closed_on + dt.timedelta(days=days)
        warn_on = purge_on - dt.timedelta(days=warning)
        if warn_on <= today:
            found.append(Due(case, purge_on, warn_on))
    found.sort(key=lambda d: (d.purge_on, d.case.sort_key))
    return found


@dataclass(frozen=True)
class Plan:
    """What a run would do on ``today``."""

    to_warn: list[Due]
    to_purge: list[Due]
    # On legal hold with their period over: kept only because of the hold.
    held: list[Due] = field(default_factory=list)


def plan(session: Session, today: dt.date) -> Plan:
    warning = dt.timedelta(days=policy.values(session).retention_warning_days)
    to_warn: list[Due] = []
    to_purge: list[Due] = []
    held: list[Due] = []
    for due in closed_cases(session, today):
        if due.case.held_on is not None:
            # Neither warned about nor purged while the hold lasts.
            if due.purge_on <= today:
                held.append(due)
        elif not due.warned:
            to_warn.append(due)
        elif due.purge_on <= today:
            warned_on = due.case.purge_warned_on
            # The holders always get the whole warning period, even if the job did not run.
            if warned_on is not None and warned_on + warning <= today:
                to_purge.append(due)
    return Plan(to_warn, to_purge, held)


@dataclass(frozen=True)
class Pending:
    """A warned case as its holder sees it above the case list."""

    handle: str
    purge_on: dt.date  # the first day the job may delete it


def pending_for(session: Session, user: StaffUser) -> list[Pending]:
    """The closed cases ``user`` holds whose holders have been warned of their purge (none on
    legal hold: those are not purged)."""
    own, default = periods(session)
    warning = dt.timedelta(days=policy.values(session).retention_warning_days)
    rows = session.scalars(
        select(Case)
        .join(CaseAccess, CaseAccess.case_id == Case.id)
        .where(
            CaseAccess.staff_id == user.id,
            Case.closed_on.is_not(None),
            Case.purge_warned_on >= Case.closed_on,
            Case.held_on.is_(None),
        )
    )
    found = []
    for case in rows:
        if case.closed_on is None or case.purge_warned_on is None:  # selected so
            continue
        days = own.get(case.outcome_id, default) if case.outcome_id is not None else default
        purge_on = max(case.closed_on + dt.timedelta(days=days), case.purge_warned_on + warning)
        found.append((purge_on, case.sort_key, Pending(case.handle, purge_on)))
    return [pending for _day, _key, pending in sorted(found)]


# --- the warning ---------------------------------------------------------------------------------


def _warning_message(
    settings: Settings, to: str, count: int, days: int, now: dt.datetime, texts: Texts
) -> EmailMessage:
    lines = [
        texts.ngettext(
            "%(num)d closed case you hold in the ombuds portal will be deleted for good under"
            " the retention policy, in %(days)d days or later.",
            "%(num)d closed cases you hold in the ombuds portal will be deleted for good under"
            " the retention policy, in %(days)d days or later.",
            count,
            days=days,
        ),
        texts.gettext(
            "Your case list shows which. A case that must be kept longer has to be placed on"
            " legal hold, or reopened, before then."
        ),
        "",
        *link_lines(settings, texts),
        "",
        texts.gettext("This notice names no case on purpose."),
    ]
    subject = texts.gettext("Closed cases will be deleted from the ombuds portal")
    return compose(settings, to, subject, "\n".join(lines) + "\n", now)


def warning_notices(
    session: Session, settings: Settings, now: dt.datetime, due: Sequence[Due], texts: Texts
) -> list[Notice]:
    """One message per active ombudsperson holding a key to one of ``due``, counts only."""
    days = policy.values(session).retention_warning_days
    held: dict[int, tuple[StaffUser, set[str]]] = {}
    for case_id, users in _holders(session, {d.case.id for d in due}).items():
        for user in users:
            held.setdefault(user.id, (user, set()))[1].add(case_id)
    notices = []
    for user, case_ids in sorted(held.values(), key=lambda pair: pair[0].email):
        message = _warning_message(settings, user.email, len(case_ids), days, now, texts)
        notices.append(Notice(user.id, user.email, message, tuple(sorted(case_ids))))
    return notices


# --- the run -------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What a run did (or, in a dry run, would do). Counts only: nothing here is content."""

    warned: int = 0
    purged: int = 0
    held: int = 0  # closed cases past their period, kept because they are on legal hold
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_queue: Counter[str] = field(default_factory=Counter)
    notices: list[Notice] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]


def _counts(session: Session, purge: Sequence[Due]) -> tuple[Counter[str], Counter[str]]:
    outcomes = {o.id: o.code for o in session.scalars(select(Outcome))}
    queues = {q.id: q.slug for q in session.scalars(select(Queue))}
    by_outcome: Counter[str] = Counter()
    by_queue: Counter[str] = Counter()
    for due in purge:
        outcome_id = due.case.outcome_id
        by_outcome[outcomes.get(outcome_id, "none") if outcome_id is not None else "none"] += 1
        by_queue[queues.get(due.case.queue_id, "?")] += 1
    return by_outcome, by_queue


def run(
    session: Session,
    settings: Settings,
    mailer: Mailer,
    now: dt.datetime,
    texts: Texts,
    *,
    dry_run: bool = False,
) -> RunResult:
    """Warn about the cases whose warning day has come, purge those whose period and warning
    have both run out, and record one audit event. In a dry run nothing is sent or changed.
    The caller commits."""
    today = now.astimezone(dt.UTC).date()
    todo = plan(session, today)
    to_purge, held = todo.to_purge, len(todo.held)
    if not dry_run and to_purge:
        # A hold placed on another app server since the plan was read wins (and is counted).
        free = not_held(session, [due.case.id for due in to_purge])
        held += len(to_purge) - len(free)
        to_purge = [due for due in to_purge if due.case.id in free]
    by_outcome, by_queue = _counts(session, to_purge)
    notices = warning_notices(session, settings, now, todo.to_warn, texts)
    result = RunResult(
        warned=len(todo.to_warn),
        purged=len(to_purge),
        held=held,
        by_outcome=by_outcome,
        by_queue=by_queue,
        notices=notices,
    )
    if dry_run or not (todo.to_warn or to_purge):
        return result
    result.deliveries = deliver(mailer, notices)
    # A case counts as warned once every holder's message was handed over (or it has no active
    # holder left to tell); otherwise the next run tries again, and the purge waits.
    failed_cases = {
        case_id
        for notice, delivery in zip(notices, result.deliveries, strict=True)
        if not delivery.ok
        for case_id in notice.case_ids
    }
    warned = 0
    for due in todo.to_warn:
        if due.case.id not in failed_cases:
            due.case.purge_warned_on = today
            warned += 1
    result.warned = warned
    # Recorded before the rows go: the record rolls up reporter-day counts, which must still
    # see every case of the days it counts.
    audit.record(
        session,
        Action.RETENTION_RUN,
        now,
        warned=warned,
        recipients=sum(d.ok for d in result.deliveries),
        failed=len(result.failed),
        purged=len(to_purge),
        held=held,
    )
    purge(session, [due.case for due in to_purge])
    return result


def not_held(session: Session, case_ids: Sequence[str]) -> set[str]:
    """Those of ``case_ids`` not on legal hold, read from the database, not from the objects
    already loaded. On PostgreSQL the rows are locked until the transaction ends: a hold placed
    meanwhile either committed first and is seen here, or waits for this transaction and then
    finds the case gone. SQLite has one writer at a time: in a run, ``purge`` reads the holds
    again after the audit event was written, when no other connection can commit any more."""
    free: set[str] = set()
    for start in range(0, len(case_ids), BATCH):
        batch = list(case_ids[start : start + BATCH])
        free.update(
            session.scalars(
                select(Case.id).where(Case.id.in_(batch), Case.held_on.is_(None)).with_for_update()
            )
        )
    return free


def purge(session: Session, doomed: Iterable[Case]) -> int:
    """Replace each case by its insight stub and delete every row holding its content or keys.
    A case on legal hold is left as it is, whoever asks. Returns how many were purged."""
    cases = list(doomed)
    for case in cases:
        if case.closed_on is None:
            raise ValueError("only closed cases are purged")
    free = not_held(session, [case.id for case in cases])
    cases = [case for case in cases if case.id in free]
    for case in cases:
        session.add(
            RetainedCase(
                id=crypto.random_id(),
                received_on=case.received_on,
                category_id=case.org_category_id
                if case.org_category_id is not None
                else case.category_id,
                queue_id=case.queue_id,
                site_id=case.site_id,
                department_id=case.department_id,
                is_anonymous=case.is_anonymous,
                reporter_returned=case.reporter_returned,
                acknowledged_on=case.acknowledged_on,
                acknowledge_due_on=case.acknowledge_due_on,
                closed_on=case.closed_on,
                outcome_id=case.outcome_id,
                feedback_on=case.feedback_on,
                feedback_due_on=case.feedback_due_on,
            )
        )
    session.flush()
    ids = [case.id for case in cases]
    for case in cases:
        session.expunge(case)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        attachments = select(Attachment.id).where(Attachment.case_id.in_(batch))
        for statement in (
            delete(AttachmentChunk).where(AttachmentChunk.attachment_id.in_(attachments)),
            delete(Attachment).where(Attachment.case_id.in_(batch)),
            delete(Message).where(Message.case_id.in_(batch)),
            delete(CaseAccess).where(CaseAccess.case_id.in_(batch)),
            delete(PendingRegrant).where(PendingRegrant.case_id.in_(batch)),
            delete(CaseRecusal).where(CaseRecusal.case_id.in_(batch)),
            delete(CaseTag).where(CaseTag.case_id.in_(batch)),
            delete(Case).where(Case.id.in_(batch)),
        ):
            session.execute(statement, execution_options={"synchronize_session": False})
    session.flush()
    return len(ids)


def summary(counter: Counter[str]) -> list[tuple[str, int]]:
    """Sorted (code, count) pairs for printing."""
    return sorted(counter.items())
