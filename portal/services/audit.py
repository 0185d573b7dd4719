"""The append-only, hash-chained audit log (DESIGN.md invariant 6).

Every staff action appends one event in the same transaction as the action itself, so an action
that is committed is always logged. Each event's ``hash`` is an HMAC (under the instance's audit
key) over the previous event's hash and this event's fields: editing, deleting or reordering an
event breaks every link after it, and ``verify`` names the first broken one.

Reporter-originated events (concerns received, reporter messages) are never written as they
happen: an entry placed between timed staff events would narrow the time of a submission. They
enter the chain once a day as counts for a whole past day, with no case identifiers, appended
lazily before the first staff event of a later day (``roll_up_reporter_days``).

Nothing here holds case content or reporter data: ``detail`` carries codes and counts only.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.db import AUDIT_KEY
from portal.models import AuditEvent, AuditHead, Case, Message, MessageAuthor, StaffUser
from portal.services.wording import N_

HEAD_ID = 1
GENESIS = bytes(32)


class Action(enum.StrEnum):
    # log-in and account
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    TOTP_ENROLLED = "account.totp_enrolled"
    PASSWORD_CHANGED = "account.password_changed"  # noqa: S105  # nosec B105  # an event name
    SESSION_REVOKED = "account.session_revoked"
    API_TOKEN_CREATED = "account.api_token_created"  # noqa: S105  # nosec B105  # an event name
    API_TOKEN_REVOKED = "account.api_token_revoked"  # noqa: S105  # nosec B105  # an event name
    # cases
    CASE_VIEWED = "case.viewed"
    CASE_ACKNOWLEDGED = "case.acknowledged"
    CASE_STATUS_CHANGED = "case.status_changed"
    CASE_CLOSED = "case.closed"
    CASE_REOPENED = "case.reopened"
    CASE_REPLIED = "case.replied"
    CASE_NOTE_ADDED = "case.note_added"
    CASE_TRIAGED = "case.triaged"
    CASE_GRANTED = "case.granted"
    CASE_REGRANTED = "case.regranted"
    CASE_TRANSFERRED = "case.transferred"
    CASE_RECUSED = "case.recused"
    CASE_HOLD_PLACED = "case.hold_placed"
    CASE_HOLD_LIFTED = "case.hold_lifted"
    CASE_MESSAGES_REFUSED = "case.messages_refused"
    ATTACHMENT_DECRYPTED = "case.attachment_decrypted"
    # administration
    STAFF_CREATED = "staff.created"
    STAFF_DISABLED = "staff.disabled"
    STAFF_ENABLED = "staff.enabled"
    STAFF_ROLES_CHANGED = "staff.roles_changed"
    STAFF_QUEUES_CHANGED = "staff.queues_changed"
    STAFF_PASSWORD_RESET = "staff.password_reset"  # noqa: S105  # nosec B105  # an event name
    CONFIG_CHANGED = "config.changed"
    CONFIG_EXPORTED = "config.exported"
    CONFIG_IMPORTED = "config.imported"
    AUDIT_EXPORTED = "audit.exported"
    BACKUP_CREATED = "backup.created"
    BACKUP_RESTORED = "backup.restored"
    INSIGHTS_EXPORTED = "insights.exported"
    # the system
    NOTIFICATIONS_SENT = "system.notifications_sent"
    SIGNALS_RAISED = "system.signals_raised"
    INSIGHTS_REFRESHED = "system.insights_refreshed"
    REMINDERS_SENT = "system.reminders_sent"
    RETENTION_RUN = "system.retention"
    REPORTER_DAY = "reporter.day_counts"


class AuditKeyMissing(RuntimeError):
    """The session was not made by the app's session factory, which carries the audit key."""


def _key(session: Session) -> bytes:
    key = session.info.get(AUDIT_KEY)
    if not isinstance(key, bytes):
        raise AuditKeyMissing("this database session carries no audit key")
    return key


def _payload(event: AuditEvent) -> bytes:
    """Canonical bytes of an event's fields (everything but the two hashes)."""
    fields = [
        event.seq,
        event.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        event.actor_id,
        event.actor_email,
        event.action,
        event.case_id,
        event.case_handle,
        event.target_staff_id,
        event.detail,
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def _head(session: Session) -> AuditHead:
    # FOR UPDATE: on PostgreSQL, concurrent appenders queue here instead of forking the chain
    # (and the primary key on seq refuses a fork in any case).
    head = session.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    if head is None:
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS, reporter_days_through=None)
        session.add(head)
        session.flush()
    return head


def _append(
    session: Session,
    head: AuditHead,
    *,
    at: dt.datetime,
    action: Action,
    actor: StaffUser | None,
    case: Case | None,
    target: StaffUser | None,
    detail: Mapping[str, object],
) -> AuditEvent:
    event = AuditEvent(
        seq=head.seq + 1,
        at=at.astimezone(dt.UTC),
        actor_id=actor.id if actor is not None else None,
        actor_email=actor.email if actor is not None else "",
        action=action.value,
        case_id=case.id if case is not None else None,
        case_handle=case.handle if case is not None else None,
        target_staff_id=target.id if target is not None else None,
        detail=json.dumps(dict(detail), ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        prev_hash=head.hash,
    )
    event.hash = crypto.chain_hash(_key(session), head.hash, _payload(event))
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    session.flush()
    return event


def record(
    session: Session,
    action: Action,
    now: dt.datetime,
    *,
    actor: StaffUser | None = None,
    case: Case | None = None,
    target: StaffUser | None = None,
    **detail: str | int | bool | list[str] | None,
) -> AuditEvent:
    """Append one staff (or system) event. Call it in the transaction of the action; the caller
    commits both together. ``detail`` must hold codes and counts, never text someone wrote."""
    head = _head(session)
    roll_up_reporter_days(session, now.date(), head)
    return _append(
        session, head, at=now, action=action, actor=actor, case=case, target=target, detail=detail
    )


def _reporter_counts(session: Session, day: dt.date) -> tuple[int, int]:
    concerns = session.scalar(select(func.count()).select_from(Case).where(Case.received_on == day))
    messages = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.author == MessageAuthor.REPORTER.value, Message.created_on == day)
    )
    return concerns or 0, messages or 0


def _first_reporter_day(session: Session) -> dt.date | None:
    first_case = session.scalar(select(func.min(Case.received_on)))
    first_message = session.scalar(
        select(func.min(Message.created_on)).where(Message.author == MessageAuthor.REPORTER.value)
    )
    days = [d for d in (first_case, first_message) if d is not None]
    return min(days) if days else None


def roll_up_reporter_days(session: Session, today: dt.date, head: AuditHead | None = None) -> int:
    """Append one count event for every whole day before ``today`` not yet in the chain, zero
    days included (so the absence of an entry says nothing). Returns how many were added."""
    head = head or _head(session)
    through = head.reporter_days_through
    if through is None:
        first = _first_reporter_day(session)
        through = (first or today) - dt.timedelta(days=1)
        through = min(through, today - dt.timedelta(days=1))
    day = through + dt.timedelta(days=1)
    added = 0
    while day < today:
        concerns, messages = _reporter_counts(session, day)
        # Stamped at midnight after the day it counts: the time says nothing about any event.
        _append(
            session,
            head,
            at=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC),
            action=Action.REPORTER_DAY,
            actor=None,
            case=None,
            target=None,
            detail={"day": day.isoformat(), "concerns": concerns, "reporter_messages": messages},
        )
        head.reporter_days_through = day
        day += dt.timedelta(days=1)
        added += 1
    if head.reporter_days_through != through and added == 0:
        head.reporter_days_through = through
    session.flush()
    return added


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str  # hex, to note down outside the system as an anchor
    broken_seq: int | None = None
    reason: str = ""


def verify(session: Session, expect: tuple[int, str] | None = None) -> Verification:
    """Walk the whole chain; report the first broken link. ``expect`` is an anchor noted earlier
    (sequence number and hash): it must still be in the chain, which catches a truncated log."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    result = session.scalars(stmt)
    try:
        return _walk(session, result, expect)
    finally:
        result.close()  # a server-side cursor on PostgreSQL, even when we stop early


def _walk(
    session: Session, rows: Iterator[AuditEvent], expect: tuple[int, str] | None
) -> Verification:
    key = _key(session)
    prev = GENESIS
    expected_seq = 1
    checked = 0
    anchor_seen = expect is None
    for event in rows:
        if event.seq != expected_seq:
            return _broken(
                checked, session, expected_seq, N_("event %(seq)d is missing", seq=expected_seq)
            )
        if event.prev_hash != prev:
            return _broken(
                checked, session, event.seq, N_("it does not follow the event before it")
            )
        if not crypto.constant_time_equal(
            event.hash, crypto.chain_hash(key, event.prev_hash, _payload(event))
        ):
            return _broken(checked, session, event.seq, N_("its content does not match its hash"))
        if expect is not None and event.seq == expect[0]:
            if event.hash.hex() != expect[1].lower():
                return _broken(checked, session, event.seq, N_("it differs from the anchor given"))
            anchor_seen = True
        prev = event.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditHead, HEAD_ID)
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    if head_seq != checked or head_hash != prev:
        return _broken(
            checked, session, checked + 1, N_("the log ends before the recorded head: rows removed")
        )
    if not anchor_seen and expect is not None:
        return _broken(checked, session, expect[0], N_("the anchor's event is not in the log"))
    return Verification(True, checked, head_seq, head_hash.hex())


def _broken(checked: int, session: Session, seq: int, reason: str) -> Verification:
    head = session.get(AuditHead, HEAD_ID)
    return Verification(
        False,
        checked,
        head.seq if head else 0,
        (head.hash if head else GENESIS).hex(),
        broken_seq=seq,
        reason=reason,
    )


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    action: str | None = None  # an Action value, or a prefix ending in "." ("case.")
    actor_id: int | None = None
    case_handle: str | None = None
    on_day: dt.date | None = None
    before_seq: int | None = None  # for paging backwards from the newest
    limit: int = 100


def events(session: Session, flt: Filter) -> list[AuditEvent]:
    """Newest first, filtered; for the admin console."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(max(1, min(flt.limit, 500)))
    if flt.action:
        if flt.action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(flt.action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == flt.action)
    if flt.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == flt.actor_id)
    if flt.case_handle:
        stmt = stmt.where(AuditEvent.case_handle == flt.case_handle)
    if flt.on_day is not None:
        start = dt.datetime.combine(flt.on_day, dt.time(), dt.UTC)
        stmt = stmt.where(AuditEvent.at >= start, AuditEvent.at < start + dt.timedelta(days=1))
    if flt.before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < flt.before_seq)
    return list(session.scalars(stmt))


def case_history(session: Session, case: Case) -> list[AuditEvent]:
    """The case's own history, oldest first, for its case page."""
    stmt = select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq)
    return list(session.scalars(stmt))


def detail_of(event: AuditEvent) -> dict[str, object]:
    value = json.loads(event.detail)
    return value if isinstance(value, dict) else {}


def iter_all(session: Session) -> Iterator[AuditEvent]:
    """Every event, oldest first, streaming (for exports)."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    result = session.scalars(stmt)
    try:
        yield from result
    finally:
        result.close()
