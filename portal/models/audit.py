"""The append-only, hash-chained audit log of staff actions, and bookkeeping of periodic jobs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime


class AuditEvent(Base):
    """One staff action (or one day's count of reporter events). Each row's ``hash`` is a keyed
    hash over its fields and the previous row's hash, so removing, reordering or editing a row
    breaks the chain from that row on. No case content and no reporter data is ever stored here;
    ``case_id`` names the case a staff member acted on, never a reporter event."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_case_seq", "case_id", "seq"),
        Index("ix_audit_events_actor_seq", "actor_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # No foreign keys: the log outlives purged cases, and staff rows are never deleted.
    actor_id: Mapped[int | None]
    actor_email: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    case_id: Mapped[str | None] = mapped_column(String(32))
    case_handle: Mapped[str | None] = mapped_column(String(16))
    target_staff_id: Mapped[int | None]
    # Canonical JSON of small, content-free facts (a status code, a queue slug, counts).
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(Base):
    """The chain's tip (one row, id 1): appending locks and moves it, so concurrent writers on
    several app servers cannot fork the chain. ``reporter_days_through`` is the last day whose
    reporter-event counts have entered the chain. ``mac`` seals the row with the audit key."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    reporter_days_through: Mapped[dt.date | None] = mapped_column(Date)
    # HMAC under the audit key (which is never in the database) over the three fields above:
    # cutting the log's tail and moving the head back needs the key (issue 13, finding 11).
    # NULL only on an installation upgraded from before the seal, until its next event.
    mac: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class JobRun(Base):
    """When a periodic job (new-case notification batch, deadline reminders) last ran, so that
    running it more often than its interval does nothing."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
