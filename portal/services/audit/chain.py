"""The append-only, hash-chained audit log (DESIGN.md invariant 6).

Every staff action appends one event in the same transaction as the action itself, so an action
that is committed is always logged. Each event's ``hash`` is an HMAC (under the instance's audit
key) over the previous event's hash and this event's fields: editing, deleting or reordering an
event breaks every link after it, and ``verify`` names the first broken one.

Reporter-originated events (concerns received, reporter messages) are never written as they
happen: an entry placed between timed staff events would narrow the time of a submission. They
enter the chain once a day as counts for a whole past day, with no case identifiers, appended
lazily before the first staff event of a later day (``roll_up_reporter_days``).

The head (count and last hash) is sealed with the same key (``crypto.audit_head_mac``) in the
same transaction as every append, so cutting the tail and moving the head back needs the key:
with the database alone, ``verify`` reports the log truncated. What the database cannot show is
a rollback of rows and head together to an older copy; anchors catch that. An anchor
(``SEQ:HASH:DAY:MAC``) is a MACed statement of the head on a day; the portal publishes one in
the admins' daily digest and in every backup's manifest, and ``verify`` checks the chain
against one given (issue 13, finding 11).

Nothing here holds case content or reporter data: ``detail`` carries codes and counts only.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.db import AUDIT_KEY
from portal.i18n.wording import N_
from portal.models import AuditEvent, AuditHead, Case, Message, MessageAuthor, StaffUser

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
    CASE_REGRANT_REFUSED = "case.regrant_refused"  # the key fingerprint typed did not match
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
    # Four eyes: a change that gives access, asked for by one admin, decided by another.
    STAFF_ACCESS_REQUESTED = "staff.access_requested"
    STAFF_ACCESS_APPROVED = "staff.access_approved"
    STAFF_ACCESS_REJECTED = "staff.access_rejected"
    STAFF_ACCESS_WITHDRAWN = "staff.access_withdrawn"
    STAFF_ACCESS_EXPIRED = "staff.access_expired"
    STAFF_PASSWORD_RESET = "staff.password_reset"  # noqa: S105  # nosec B105  # an event name
    CONFIG_CHANGED = "config.changed"
    CONFIG_EXPORTED = "config.exported"
    CONFIG_IMPORTED = "config.imported"
    AUDIT_EXPORTED = "audit.exported"
    # The head had no seal (an installation upgraded from before the seal): sealed from here on.
    AUDIT_HEAD_SEALED = "audit.head_sealed"
    # The head's seal did not match when an event was appended: the head had been rewritten
    # without the key. Kept in the chain, so a later append cannot launder the cut.
    AUDIT_HEAD_MISMATCH = "audit.head_mismatch"
    BACKUP_CREATED = "backup.created"
    BACKUP_RESTORED = "backup.restored"
    INSIGHTS_EXPORTED = "insights.exported"
    # the system
    NOTIFICATIONS_SENT = "system.notifications_sent"
    SIGNALS_RAISED = "system.signals_raised"
    INSIGHTS_REFRESHED = "system.insights_refreshed"
    REMINDERS_SENT = "system.reminders_sent"
    AUDIT_DIGEST_SENT = "system.audit_digest_sent"
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


def _head_fields(head: AuditHead) -> bytes:
    through = head.reporter_days_through.isoformat() if head.reporter_days_through else ""
    return json.dumps([head.seq, head.hash.hex(), through], separators=(",", ":")).encode()


def _seal(session: Session, head: AuditHead) -> None:
    head.mac = crypto.audit_head_mac(_key(session), _head_fields(head))


def _seal_ok(key: bytes, head: AuditHead) -> bool:
    return head.mac is not None and crypto.constant_time_equal(
        head.mac, crypto.audit_head_mac(key, _head_fields(head))
    )


def _head(session: Session, now: dt.datetime) -> AuditHead:
    # FOR UPDATE: on PostgreSQL, concurrent appenders queue here instead of forking the chain
    # (and the primary key on seq refuses a fork in any case).
    head = session.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    if head is None:
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS, reporter_days_through=None)
        _seal(session, head)
        session.add(head)
        session.flush()
    elif not _seal_ok(_key(session), head):
        # Never extend a head whose seal does not match without saying so in the chain:
        # otherwise the next append would seal a cut log as if it were whole.
        action = Action.AUDIT_HEAD_SEALED if head.mac is None else Action.AUDIT_HEAD_MISMATCH
        _append(
            session,
            head,
            at=now,
            action=action,
            actor=None,
            case=None,
            target=None,
            detail={"head_seq": head.seq},
        )
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
    _seal(session, head)
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
    head = _head(session, now)
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
    head = head or _head(session, dt.datetime.combine(today, dt.time(), dt.UTC))
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
        _seal(session, head)
        day += dt.timedelta(days=1)
        added += 1
    if head.reporter_days_through != through and added == 0:
        head.reporter_days_through = through
        _seal(session, head)
    session.flush()
    return added


# --- anchors ------------------------------------------------------------------------------------


class Anchor(NamedTuple):
    """A point of the chain noted outside the database: event ``seq`` has hash ``hash``. Made
    by the portal it also carries the UTC day of that event and a MAC under the audit key
    (``SEQ:HASH:DAY:MAC``); noted by hand from an older version, only ``SEQ:HASH``."""

    seq: int
    hash: str  # hex
    day: dt.date | None = None
    mac: str | None = None  # hex

    def text(self) -> str:
        if self.day is None or self.mac is None:
            return f"{self.seq}:{self.hash}"
        return f"{self.seq}:{self.hash}:{self.day.isoformat()}:{self.mac}"


class AnchorMalformed(ValueError):
    """Not ``SEQ:HASH`` nor ``SEQ:HASH:DAY:MAC``."""


def _hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)


def parse_anchor(text: str) -> Anchor:
    parts = [p.strip().lower() for p in text.strip().split(":")]
    if len(parts) not in (2, 4) or not parts[0].isdigit() or not _hex(parts[1], 64):
        raise AnchorMalformed(text)
    if len(parts) == 2:
        return Anchor(int(parts[0]), parts[1])
    try:
        day = dt.date.fromisoformat(parts[2])
    except ValueError as exc:
        raise AnchorMalformed(text) from exc
    if not _hex(parts[3], 2 * crypto.AUDIT_ANCHOR_MAC_BYTES):
        raise AnchorMalformed(text)
    return Anchor(int(parts[0]), parts[1], day, parts[3])


def _anchor_mac(key: bytes, seq: int, hash_hex: str, day: dt.date) -> str:
    fields = json.dumps([seq, hash_hex, day.isoformat()], separators=(",", ":")).encode()
    return crypto.audit_anchor_mac(key, fields).hex()


def _make_anchor(key: bytes, seq: int, head_hash: bytes, day: dt.date) -> Anchor:
    return Anchor(seq, head_hash.hex(), day, _anchor_mac(key, seq, head_hash.hex(), day))


def _anchor_genuine(key: bytes, anchor: Anchor) -> bool:
    if anchor.day is None or anchor.mac is None:
        return True  # noted by hand: nothing to authenticate, the chain still must hold it
    return crypto.constant_time_equal(
        bytes.fromhex(anchor.mac),
        bytes.fromhex(_anchor_mac(key, anchor.seq, anchor.hash, anchor.day)),
    )


class HeadUnsealed(RuntimeError):
    """The head's seal does not match: no anchor is published for a head that may be cut."""


def current_anchor(session: Session) -> Anchor:
    """The anchor of the sealed head, to publish (digest, backup manifest). Refuses a head
    whose seal does not match, so that a cut log is never blessed with a fresh anchor. The
    day is that of the head's event, not of the call: an anchor says nothing else."""
    key = _key(session)
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        return _make_anchor(key, 0, GENESIS, dt.date(1970, 1, 1))
    if not _seal_ok(key, head):
        raise HeadUnsealed("the audit head's seal does not match: run `portal audit verify`")
    event = session.get(AuditEvent, head.seq) if head.seq else None
    day = event.at.astimezone(dt.UTC).date() if event is not None else dt.date(1970, 1, 1)
    return _make_anchor(key, head.seq, head.hash, day)


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str  # hex, to note down outside the system as an anchor
    broken_seq: int | None = None
    reason: str = ""
    #: The log was cut short, or the database is older than an anchor: events are missing
    #: after ``checked`` rather than altered.
    truncated: bool = False
    #: When ``ok``: the MACed anchor of the head, to note down (``SEQ:HASH:DAY:MAC``).
    anchor: str = ""


def verify(session: Session, expect: tuple[int, str] | Anchor | None = None) -> Verification:
    """Walk the whole chain up to its sealed head; report the first broken link. ``expect`` is
    an anchor noted or published earlier: it must be genuine and its event must still be in
    the chain with the same hash, which catches a database rolled back to an older copy."""
    if expect is not None and not isinstance(expect, Anchor):
        expect = Anchor(expect[0], expect[1])
    stmt = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    result = session.scalars(stmt)
    try:
        return _walk(session, result, expect)
    finally:
        result.close()  # a server-side cursor on PostgreSQL, even when we stop early


def _walk(session: Session, rows: Iterator[AuditEvent], expect: Anchor | None) -> Verification:
    key = _key(session)
    if expect is not None and not _anchor_genuine(key, expect):
        return _broken(
            0, session, expect.seq, N_("the anchor given was not made with this audit key")
        )
    prev = GENESIS
    expected_seq = 1
    checked = 0
    last_at: dt.datetime | None = None
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
        if expect is not None and event.seq == expect.seq and event.hash.hex() != expect.hash:
            return _broken(checked, session, event.seq, N_("it differs from the anchor given"))
        if event.action == Action.AUDIT_HEAD_MISMATCH:
            return _broken(
                checked,
                session,
                event.seq,
                N_(
                    "truncated: when this event was appended, the head's seal did not match"
                    " (the head had been moved without the audit key)"
                ),
                truncated=True,
            )
        prev = event.hash
        last_at = event.at
        expected_seq += 1
        checked += 1
    # An anchor beyond the end is the plainest evidence: say it first.
    if expect is not None and expect.seq > checked:
        return _broken(
            checked,
            session,
            expect.seq,
            N_(
                "truncated: the log ends at event %(end)d, before the anchor's event %(seq)d:"
                " events were cut, or an older copy of the database was put back",
                end=checked,
                seq=expect.seq,
            ),
            truncated=True,
        )
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        if checked:
            return _broken(checked, session, checked, N_("the log's head is missing"))
        head_seq, head_hash = 0, GENESIS
    else:
        head_seq, head_hash = head.seq, head.hash
        if head.mac is None:
            return _broken(
                checked,
                session,
                head_seq,
                N_(
                    "the head is not sealed yet: an installation upgraded from an older version"
                    " seals it with its next event"
                ),
            )
        if not _seal_ok(key, head):
            return _broken(
                checked,
                session,
                head_seq,
                N_(
                    "truncated: the head's seal does not match, the head was rewritten without"
                    " the audit key (events cut or moved back)"
                ),
                truncated=True,
            )
    if head_seq > checked:
        return _broken(
            checked,
            session,
            checked + 1,
            N_(
                "truncated: the log ends at event %(end)d, its sealed head says %(head)d",
                end=checked,
                head=head_seq,
            ),
            truncated=True,
        )
    if head_seq != checked or head_hash != prev:
        return _broken(
            checked, session, head_seq + 1, N_("events follow the sealed head: an older head")
        )
    day = last_at.astimezone(dt.UTC).date() if last_at is not None else dt.date(1970, 1, 1)
    anchor = _make_anchor(key, head_seq, head_hash, day).text()
    return Verification(True, checked, head_seq, head_hash.hex(), anchor=anchor)


def _broken(
    checked: int, session: Session, seq: int, reason: str, *, truncated: bool = False
) -> Verification:
    head = session.get(AuditHead, HEAD_ID)
    return Verification(
        False,
        checked,
        head.seq if head else 0,
        (head.hash if head else GENESIS).hex(),
        broken_seq=seq,
        reason=reason,
        truncated=truncated,
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
