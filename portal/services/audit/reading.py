"""Reading the audit log in the console: filters, rows for display, the CSV export and the
anchor of a verification. The log itself (appending, verifying) is ``services/audit.py``."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import InvalidInput
from portal.i18n.wording import N_
from portal.models import AuditEvent, StaffUser
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action, Filter

#: Groups offered by the action filter: an action code prefix ending in ".".
GROUPS = ("account.", "case.", "staff.", "config.", "audit.", "system.", "reporter.")
#: The most rows one CSV export holds (docs/limits.md); narrow the filter for more.
EXPORT_MAX_ROWS = 100_000
_BATCH = 500


def normalise_handle(text: str | None) -> str | None:
    """A case handle as typed (any case, spaces around) or None; InvalidInput if malformed."""
    handle = (text or "").strip().upper()
    if not handle:
        return None
    if not crypto.is_handle(handle):
        raise InvalidInput("case", N_("A case handle looks like ABCD-1234."))
    return handle


def parse_anchor(text: str | None) -> audit.Anchor | None:
    """An anchor as ``portal audit verify``, the digest or a backup print it (``SEQ:HASH`` or
    ``SEQ:HASH:DAY:MAC``), or None."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        return audit.parse_anchor(value)
    except audit.AnchorMalformed:
        raise InvalidInput(
            "expect",
            N_("Give the anchor as SEQ:HASH, as the verification printed it."),
        ) from None


@dataclass(frozen=True)
class ReporterDay:
    """A day's count of reporter events: the only trace reporters leave in the log."""

    day: str
    concerns: int
    reporter_messages: int


@dataclass(frozen=True)
class EventRow:
    seq: int
    at: dt.datetime
    actor: str  # the e-mail recorded with the event; "" for the system
    action: str
    case_handle: str | None
    target: str | None  # the e-mail of the staff account acted on
    detail: dict[str, object]
    detail_json: str  # as stored and hashed
    reporter_day: ReporterDay | None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def rows(session: Session, events: Iterable[AuditEvent]) -> list[EventRow]:
    events = list(events)
    target_ids = {e.target_staff_id for e in events if e.target_staff_id is not None}
    emails = {
        staff_id: email
        for staff_id, email in session.execute(
            select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(target_ids))
        )
    }
    out = []
    for event in events:
        detail = audit.detail_of(event)
        reporter_day = None
        if event.action == Action.REPORTER_DAY:
            reporter_day = ReporterDay(
                str(detail.get("day", "")),
                _int(detail.get("concerns")),
                _int(detail.get("reporter_messages")),
            )
        out.append(
            EventRow(
                seq=event.seq,
                at=event.at,
                actor=event.actor_email,
                action=event.action,
                case_handle=event.case_handle,
                target=emails.get(event.target_staff_id) if event.target_staff_id else None,
                detail=detail,
                detail_json=event.detail,
                reporter_day=reporter_day,
            )
        )
    return out


def page(session: Session, flt: Filter, size: int) -> tuple[list[EventRow], int | None]:
    """One page, newest first, and the ``before`` value of the next (older) page, if any."""
    events = audit.events(session, replace(flt, limit=size + 1))
    more = len(events) > size
    events = events[:size]
    return rows(session, events), (events[-1].seq if more and events else None)


def _all_matching(session: Session, flt: Filter) -> Iterator[AuditEvent]:
    before = flt.before_seq
    count = 0
    while count < EXPORT_MAX_ROWS:
        batch = audit.events(
            session, replace(flt, before_seq=before, limit=min(_BATCH, EXPORT_MAX_ROWS - count))
        )
        if not batch:
            return
        yield from batch
        count += len(batch)
        before = batch[-1].seq


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with one of these is a formula to a spreadsheet (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass(frozen=True)
class CsvExport:
    text: str
    rows: int
    truncated: bool


def export_csv(
    session: Session, flt: Filter, *, actor: StaffUser | None, now: dt.datetime
) -> CsvExport:
    """The filtered log as CSV, newest first, and an AUDIT_EXPORTED event naming the filter."""
    events = list(_all_matching(session, flt))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["seq", "time_utc", "actor", "action", "case", "target", "detail"])
    for row in rows(session, events):
        writer.writerow(
            [
                _cell(v)
                for v in (
                    row.seq,
                    row.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                    row.actor,
                    row.action,
                    row.case_handle,
                    row.target,
                    row.detail_json,
                )
            ]
        )
    truncated = len(events) >= EXPORT_MAX_ROWS
    audit.record(
        session,
        Action.AUDIT_EXPORTED,
        now,
        actor=actor,
        rows=len(events),
        truncated=truncated,
        filter_action=flt.action,
        filter_actor_id=flt.actor_id,
        filter_case=flt.case_handle,
        filter_day=flt.on_day.isoformat() if flt.on_day else None,
    )
    return CsvExport(buffer.getvalue(), len(events), truncated)
