"""What management may see: published insight releases, systemic-signal alerts, API tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base


class InsightRelease(Base):
    """One period's published figures, already protected.

    ``payload`` is the JSON of exactly what management may see (hidden cells are null), so that
    the stored copy holds no small count either. A ``volume`` release is computed once, when its
    quarter has ended, and never changes; a ``progress`` release (outcomes, deadlines, durations)
    is recomputed once a month, as of the first day of the month.
    """

    __tablename__ = "insight_releases"
    __table_args__ = (UniqueConstraint("period", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7))  # "2026-Q3"
    kind: Mapped[str] = mapped_column(String(16))
    as_of: Mapped[dt.date] = mapped_column(Date)
    threshold: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)


class SignalAlert(Base):
    """A systemic signal raised once to a queue: "several concerns about this category in this
    unit this quarter". Holds no case, only the group that crossed the configured count."""

    __tablename__ = "signal_alerts"
    __table_args__ = (UniqueConstraint("queue_id", "period", "category_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    threshold: Mapped[int] = mapped_column(Integer)
    raised_on: Mapped[dt.date] = mapped_column(Date)
    notified: Mapped[bool] = mapped_column(default=False)


class ApiToken(Base):
    """A personal token for the insights API (BI tools). Only a SHA-256 of the token is kept:
    the token is 32 random bytes, so a slow hash adds nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_on: Mapped[dt.date] = mapped_column(Date)
    expires_on: Mapped[dt.date] = mapped_column(Date)
    last_used_on: Mapped[dt.date | None] = mapped_column(Date)
