"""Batched new-case notifications and deadline reminders, by e-mail, naming no case.

Two threats shape what these mails say and when they leave:

* A mail can be read by people who should not learn about a case: a shared mailbox, a mail
  administrator, a phone's lock screen. So the mails carry counts and the portal's address only:
  no handle, category, queue, date or text.
* A mail's time is visible to many (mail server logs, the mailbox). If a notice left as soon as a
  concern arrived, its time would give away the submission's time, which the portal otherwise
  keeps to the day (DESIGN.md invariant 3). So new-case notices go out in batches, at most once
  per ``notify_interval_hours`` however often the command runs, and every run that is due moves
  the batch clock, whether or not anything was waiting: the batches keep a fixed rhythm that the
  arrival of a concern does not change.

Deadline reminders are about the portal's own deadlines, not about arrivals; they go out at most
once per UTC day unless forced.

The admins' daily digest carries the audit log's anchor (``audit.current_anchor``): a copy of
the chain's head kept outside the database, in every admin's mailbox, so that a database put
back to an older copy fails ``portal audit verify --anchor`` (issue 13, finding 11).

Both take a ``Mailer``; the caller commits. A message the mailer could not hand over leaves its
case-access rows unmarked, so those cases are counted again in the next batch.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from portal.i18n import labels as i18n
from portal.models import (
    Case,
    CaseAccess,
    JobRun,
    Queue,
    Role,
    StaffRole,
    StaffUser,
    StatusKind,
    WorkflowStatus,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases, deadlines
from portal.services.casework.deadlines import DeadlineKind, DeadlineState
from portal.services.configuration import policy
from portal.services.notifications.mail import Delivery, Mailer, compose
from portal.settings import Settings

NOTIFY_JOB = "notify"
SLA_JOB = "sla-check"
AUDIT_DIGEST_JOB = "audit-digest"


class Texts(Protocol):
    """Where the wording comes from: Flask-Babel's gettext and ngettext in the command, plain
    English elsewhere (services do not import Flask)."""

    def gettext(self, string: str, **variables: Any) -> str: ...

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str: ...


class EnglishTexts:
    """Plain English with Flask-Babel's formatting rules (``%(name)s``; ``num`` for plurals)."""

    def gettext(self, string: str, **variables: Any) -> str:
        return string % variables if variables else string

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        return (singular if num == 1 else plural) % variables


@dataclass(frozen=True)
class Notice:
    """One message to one staff member, with the access rows it tells them about."""

    staff_id: int
    email: str
    message: EmailMessage
    case_ids: tuple[str, ...] = ()


@dataclass
class RunResult:
    """What a run did. ``due`` is False when the job ran too recently: nothing was sent or
    changed. In a dry run ``notices`` are what a real run would send, and nothing is delivered."""

    due: bool
    last_run_at: dt.datetime | None
    notices: list[Notice] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def sent(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.ok]

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]


# --- job bookkeeping ----------------------------------------------------------------------------


def last_run(session: Session, name: str) -> dt.datetime | None:
    return session.scalar(select(JobRun.last_run_at).where(JobRun.name == name))


def claim(session: Session, name: str, now: dt.datetime, ran_before: dt.datetime | None) -> bool:
    """Move the job's clock to ``now`` if its last run was at or before ``ran_before`` (None:
    unconditionally). One conditional UPDATE, so two runs started together (cron on two app
    servers) cannot both claim the same batch: PostgreSQL re-checks the condition after the
    first commits, SQLite lets one writer at a time. Flushed before anything is sent."""
    stmt = update(JobRun).where(JobRun.name == name).values(last_run_at=now)
    if ran_before is not None:
        stmt = stmt.where(JobRun.last_run_at <= ran_before)
    result = cast(
        CursorResult[Any], session.execute(stmt, execution_options={"synchronize_session": False})
    )
    if result.rowcount == 1:
        return True
    if session.scalar(select(JobRun.name).where(JobRun.name == name)) is not None:
        return False
    # The first run ever: a concurrent first run fails on the primary key instead of sending.
    session.add(JobRun(name=name, last_run_at=now))
    session.flush()
    return True


def _recipients(session: Session, staff_ids: Iterable[int]) -> list[StaffUser]:
    """Those of ``staff_ids`` who may handle cases now: disabled accounts and people no longer
    ombudspersons get nothing. Sorted by e-mail, so output does not follow any case order."""
    ids = set(staff_ids)
    if not ids:
        return []
    users = session.scalars(select(StaffUser).where(StaffUser.id.in_(ids)))
    return sorted((u for u in users if cases.may_handle_cases(u)), key=lambda u: u.email)


def link_lines(settings: Settings, texts: Texts) -> list[str]:
    if settings.portal_url:
        url = settings.portal_url.rstrip("/") + "/staff/"
        return [texts.gettext("Log in to the portal to see them: %(url)s", url=url)]
    return [texts.gettext("Log in to the portal to see them.")]


def deliver(mailer: Mailer, notices: Sequence[Notice]) -> list[Delivery]:
    deliveries = mailer.deliver([n.message for n in notices]) if notices else []
    if len(deliveries) != len(notices):  # pragma: no cover - a broken Mailer implementation
        raise RuntimeError("the mailer did not report on every message")
    return deliveries


# --- new-case notifications ---------------------------------------------------------------------


def pending_new_cases(session: Session, today: dt.date) -> dict[int, list[str]]:
    """Case ids each staff member holds a key to but has not been told about, by staff id:
    only cases received before ``today`` (UTC).

    A day's concerns are told together, in the first batch after the day has ended. If a batch
    told of the cases that had arrived so far today, the stored ``notified`` flags would split
    today's cases into those before and those after the batch, whose time is on record: a copy
    of the database would place a submission within hours (issue 13, finding 10). This way a
    flag is a function of the day received and of the batches' days, nothing finer."""
    pending: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(
        select(CaseAccess.staff_id, CaseAccess.case_id)
        .join(Case, Case.id == CaseAccess.case_id)
        .where(CaseAccess.notified.is_(False), Case.received_on < today)
    )
    for staff_id, case_id in rows:
        pending[staff_id].append(case_id)
    return pending


def _new_case_message(
    settings: Settings, to: str, count: int, now: dt.datetime, texts: Texts
) -> EmailMessage:
    hours = settings.notify_interval_hours
    lines = [
        texts.ngettext(
            "%(num)d new case is waiting for you in the ombuds portal.",
            "%(num)d new cases are waiting for you in the ombuds portal.",
            count,
        ),
        "",
        *link_lines(settings, texts),
        "",
        texts.ngettext(
            "This notice names no case on purpose. Notices are sent together, at most once every"
            " %(num)d hour, so that their time says nothing about when a concern was raised.",
            "This notice names no case on purpose. Notices are sent together, at most once every"
            " %(num)d hours, so that their time says nothing about when a concern was raised.",
            hours,
        ),
    ]
    subject = texts.gettext("New cases in the ombuds portal")
    return compose(settings, to, subject, "\n".join(lines) + "\n", now)


def new_case_notices(
    session: Session, settings: Settings, now: dt.datetime, texts: Texts
) -> list[Notice]:
    """One notice per active ombudsperson with cases they have not been told about."""
    pending = pending_new_cases(session, now.astimezone(dt.UTC).date())
    return [
        Notice(
            user.id,
            user.email,
            _new_case_message(settings, user.email, len(pending[user.id]), now, texts),
            tuple(pending[user.id]),
        )
        for user in _recipients(session, pending)
    ]


def next_batch_at(settings: Settings, last_run_at: dt.datetime | None) -> dt.datetime | None:
    if last_run_at is None:
        return None
    return last_run_at + dt.timedelta(hours=settings.notify_interval_hours)


def notify_new_cases(
    session: Session,
    settings: Settings,
    mailer: Mailer,
    now: dt.datetime,
    texts: Texts | None = None,
    *,
    dry_run: bool = False,
) -> RunResult:
    """Send the batch of new-case notices if the interval has passed since the last batch.

    A dry run reports whether a batch is due and what it would send now, and changes nothing."""
    texts = texts or EnglishTexts()
    previous = last_run(session, NOTIFY_JOB)
    next_at = next_batch_at(settings, previous)
    due = next_at is None or now >= next_at
    if dry_run:
        return RunResult(due, previous, new_case_notices(session, settings, now, texts))
    ran_before = now - dt.timedelta(hours=settings.notify_interval_hours)
    if not due or not claim(session, NOTIFY_JOB, now, ran_before):
        return RunResult(False, previous)
    notices = new_case_notices(session, settings, now, texts)
    deliveries = deliver(mailer, notices)
    for notice, delivery in zip(notices, deliveries, strict=True):
        if delivery.ok:
            session.execute(
                update(CaseAccess)
                .where(
                    CaseAccess.staff_id == notice.staff_id,
                    CaseAccess.case_id.in_(notice.case_ids),
                )
                .values(notified=True),
                execution_options={"synchronize_session": False},
            )
    result = RunResult(True, previous, notices, deliveries)
    if notices:
        audit.record(
            session,
            Action.NOTIFICATIONS_SENT,
            now,
            recipients=len(result.sent),
            failed=len(result.failed),
        )
    session.flush()
    return result


# --- deadline reminders -------------------------------------------------------------------------


@dataclass(frozen=True)
class DueDeadline:
    """One deadline of an open case that is due soon or overdue, for the operator's listing."""

    queue_name: str
    queue_slug: str
    case_id: str
    handle: str
    kind: DeadlineKind
    due_on: dt.date
    state: DeadlineState
    holders: int  # active ombudspersons who hold the case key and will be reminded


ATTENTION = (DeadlineState.DUE_SOON, DeadlineState.OVERDUE)


def due_deadlines(session: Session, today: dt.date) -> list[DueDeadline]:
    """Open deadlines (not yet met) of open cases that are due soon or overdue, by queue, then due
    day, then the cases' random order. Selected from the stored due days; nothing decrypted."""
    due_soon = policy.current(session).due_soon_days
    closed = select(WorkflowStatus.code).where(WorkflowStatus.kind == StatusKind.CLOSED.value)
    # Nothing due after this day can be "due soon"; the rest is decided by services.deadlines.
    horizon = today + dt.timedelta(days=due_soon)
    stmt = (
        select(Case, Queue)
        .join(Queue, Queue.id == Case.queue_id)
        .where(
            Case.status.not_in(closed),
            (
                (Case.acknowledged_on.is_(None) & (Case.acknowledge_due_on <= horizon))
                | (Case.feedback_on.is_(None) & (Case.feedback_due_on <= horizon))
            ),
        )
    )
    found: list[tuple[Case, Queue, deadlines.Deadline]] = []
    for case, queue in session.execute(stmt):
        for deadline in deadlines.deadlines(case, today, due_soon):
            if deadline.done_on is None and deadline.state in ATTENTION:
                found.append((case, queue, deadline))
    holders = _holders(session, {case.id for case, _, _ in found})
    found.sort(key=lambda f: (f[1].name, f[2].due_on, f[0].sort_key, f[2].kind.value))
    return [
        DueDeadline(
            i18n.shown(queue, "name"),
            queue.slug,
            case.id,
            case.handle,
            deadline.kind,
            deadline.due_on,
            deadline.state,
            len(holders.get(case.id, ())),
        )
        for case, queue, deadline in found
    ]


def _holders(session: Session, case_ids: set[str]) -> dict[str, list[StaffUser]]:
    """The active ombudspersons holding a key to each case."""
    if not case_ids:
        return {}
    rows = session.execute(
        select(CaseAccess.case_id, CaseAccess.staff_id).where(CaseAccess.case_id.in_(case_ids))
    ).all()
    users = {u.id: u for u in _recipients(session, (staff_id for _, staff_id in rows))}
    holders: dict[str, list[StaffUser]] = defaultdict(list)
    for case_id, staff_id in rows:
        if staff_id in users:
            holders[case_id].append(users[staff_id])
    return holders


@dataclass(frozen=True)
class ReminderCounts:
    due_soon: int  # cases with a deadline due soon and none overdue
    overdue: int  # cases with at least one overdue deadline


def reminder_counts(
    session: Session, listing: Sequence[DueDeadline]
) -> list[tuple[StaffUser, ReminderCounts]]:
    """Per active ombudsperson holding a key to a listed case: how many of those cases are due
    soon and how many overdue (each case counted once, as overdue if any deadline is)."""
    overdue_cases = {d.case_id for d in listing if d.state == DeadlineState.OVERDUE}
    case_ids = {d.case_id for d in listing}
    per_user: dict[int, tuple[StaffUser, set[str]]] = {}
    for case_id, users in _holders(session, case_ids).items():
        for user in users:
            per_user.setdefault(user.id, (user, set()))[1].add(case_id)
    result = []
    for user, held in sorted(per_user.values(), key=lambda pair: pair[0].email):
        overdue = len(held & overdue_cases)
        result.append((user, ReminderCounts(len(held) - overdue, overdue)))
    return result


def _reminder_message(
    settings: Settings,
    to: str,
    counts: ReminderCounts,
    due_soon_days: int,
    now: dt.datetime,
    texts: Texts,
) -> EmailMessage:
    lines = []
    if counts.due_soon and due_soon_days == 0:
        lines.append(
            texts.ngettext(
                "%(num)d of your cases has a deadline due today.",
                "%(num)d of your cases have a deadline due today.",
                counts.due_soon,
            )
        )
    elif counts.due_soon:
        within = texts.ngettext("%(num)d day", "%(num)d days", due_soon_days)
        lines.append(
            texts.ngettext(
                "%(num)d of your cases has a deadline within %(within)s.",
                "%(num)d of your cases have a deadline within %(within)s.",
                counts.due_soon,
                within=within,
            )
        )
    if counts.overdue:
        lines.append(
            texts.ngettext(
                "%(num)d of your cases is overdue.",
                "%(num)d of your cases are overdue.",
                counts.overdue,
            )
        )
    lines += [
        "",
        *link_lines(settings, texts),
        "",
        texts.gettext(
            "This reminder names no case on purpose: the case list in the portal shows which"
            " deadlines are due."
        ),
    ]
    subject = texts.gettext("Case deadlines in the ombuds portal")
    return compose(settings, to, subject, "\n".join(lines) + "\n", now)


@dataclass
class ReminderRun(RunResult):
    listing: list[DueDeadline] = field(default_factory=list)


def remind_deadlines(
    session: Session,
    settings: Settings,
    mailer: Mailer,
    now: dt.datetime,
    texts: Texts | None = None,
    *,
    force: bool = False,
    dry_run: bool = False,
    listing: list[DueDeadline] | None = None,
) -> ReminderRun:
    """List the deadlines that need attention (or take ``listing`` from ``due_deadlines``) and
    remind their holders, once per UTC day (``force``: again). A dry run lists and shows the
    reminders, and changes nothing."""
    texts = texts or EnglishTexts()
    today = now.astimezone(dt.UTC).date()
    midnight = dt.datetime.combine(today, dt.time(), dt.UTC)
    previous = last_run(session, SLA_JOB)
    due = force or previous is None or previous < midnight
    if listing is None:
        listing = due_deadlines(session, today)
    run = ReminderRun(due, previous, listing=listing)
    if not due:
        return run
    if not dry_run and not claim(
        session, SLA_JOB, now, None if force else midnight - dt.timedelta(microseconds=1)
    ):
        run.due = False
        return run
    due_soon_days = policy.current(session).due_soon_days
    run.notices = [
        Notice(
            user.id,
            user.email,
            _reminder_message(settings, user.email, counts, due_soon_days, now, texts),
        )
        for user, counts in reminder_counts(session, listing)
    ]
    if dry_run:
        return run
    run.deliveries = deliver(mailer, run.notices)
    if run.notices:
        audit.record(
            session,
            Action.REMINDERS_SENT,
            now,
            recipients=len(run.sent),
            failed=len(run.failed),
            forced=force,
        )
    session.flush()
    return run


# --- the admins' daily digest: the audit log's anchor -------------------------------------------


def _active_admins(session: Session) -> list[StaffUser]:
    stmt = (
        select(StaffUser)
        .join(StaffRole, StaffRole.staff_id == StaffUser.id)
        .where(StaffUser.active, StaffRole.role == Role.ADMIN.value)
        .order_by(StaffUser.email)
    )
    return list(session.scalars(stmt))


def _audit_digest_message(
    settings: Settings, to: str, anchor: audit.Anchor | None, now: dt.datetime, texts: Texts
) -> EmailMessage:
    if anchor is None:
        subject = texts.gettext("The ombuds portal's audit log does not verify")
        lines = [
            texts.gettext(
                "The head of the audit log does not match its seal: events may have been cut"
                " from the log. No anchor is published for it."
            ),
            "",
            texts.gettext(
                "Run `portal audit verify` on the server with the anchor of an earlier digest."
            ),
        ]
    else:
        subject = texts.gettext("Audit log anchor of the ombuds portal")
        lines = [
            texts.gettext(
                "The audit log's anchor of %(day)s (event %(seq)d):",
                day=(anchor.day or now.date()).isoformat(),
                seq=anchor.seq,
            ),
            "",
            anchor.text(),
            "",
            texts.gettext(
                "Keep this mail. `portal audit verify --anchor` with the anchor above proves"
                " that the log still holds every event up to this one: a log cut short, or a"
                " database put back to an older copy, fails that check."
            ),
        ]
    return compose(settings, to, subject, "\n".join(lines) + "\n", now)


def send_audit_digest(
    session: Session,
    settings: Settings,
    mailer: Mailer,
    now: dt.datetime,
    texts: Texts | None = None,
    *,
    force: bool = False,
) -> RunResult:
    """Mail every active admin the audit log's current anchor, at most once per UTC day
    (``force``: again). A head whose seal does not match gets a warning instead of an anchor.
    Appends ``system.audit_digest_sent`` after the anchor was taken."""
    texts = texts or EnglishTexts()
    today = now.astimezone(dt.UTC).date()
    midnight = dt.datetime.combine(today, dt.time(), dt.UTC)
    previous = last_run(session, AUDIT_DIGEST_JOB)
    due = force or previous is None or previous < midnight
    if not due or not claim(
        session, AUDIT_DIGEST_JOB, now, None if force else midnight - dt.timedelta(microseconds=1)
    ):
        return RunResult(False, previous)
    try:
        anchor: audit.Anchor | None = audit.current_anchor(session)
    except audit.HeadUnsealed:
        anchor = None
    notices = [
        Notice(user.id, user.email, _audit_digest_message(settings, user.email, anchor, now, texts))
        for user in _active_admins(session)
    ]
    result = RunResult(True, previous, notices, deliver(mailer, notices))
    if notices:
        audit.record(
            session,
            Action.AUDIT_DIGEST_SENT,
            now,
            recipients=len(result.sent),
            failed=len(result.failed),
            anchor_seq=anchor.seq if anchor is not None else None,
        )
    session.flush()
    return result
