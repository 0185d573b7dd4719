"""Cases, the sealed copies of their keys, and their messages.

Rows written by reporter actions carry day-precision dates only; ids are random and the case and
message tables have no SQLite rowid, so neither the values nor the physical order number cases
in arrival order (DESIGN.md invariant 3).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Date, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import Blob, RandomId, UTCDateTime

_NO_ROWID = {"sqlite_with_rowid": False}


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


#: The columns the insights refresh reads, in the order of the index that covers them.
INSIGHT_COLUMNS = (
    "received_on",
    "category_id",
    "org_category_id",
    "queue_id",
    "site_id",
    "department_id",
    "is_anonymous",
    "reporter_returned",
    "acknowledged_on",
    "acknowledge_due_on",
    "closed_on",
    "outcome_id",
    "feedback_on",
    "feedback_due_on",
)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue_day", "queue_id", "received_on", "sort_key"),
        # Insights read one quarter at a time, and only these columns: a covering index lets
        # them scan the index alone instead of fetching ~1 KB rows in random id order.
        Index("ix_cases_insights", *INSIGHT_COLUMNS),
        _NO_ROWID,
    )

    id: Mapped[RandomId]
    handle: Mapped[str] = mapped_column(String(16), unique=True)
    # Lists sort by day, then by this random key: never by arrival.
    sort_key: Mapped[int] = mapped_column(BigInteger)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    is_anonymous: Mapped[bool]
    status: Mapped[str] = mapped_column(String(32))  # a WorkflowStatus code
    received_on: Mapped[dt.date] = mapped_column(Date)
    # The two legal deadlines, fixed from the policy when the case arrived; the feedback one
    # moves to N months after the acknowledgement once it is sent (art. 9(1)(f)).
    acknowledge_due_on: Mapped[dt.date] = mapped_column(Date)
    feedback_due_on: Mapped[dt.date] = mapped_column(Date)
    acknowledged_on: Mapped[dt.date | None] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    # First reporter-visible staff reply (feedback, art. 9(1)(f)), and the day the reporter last
    # wrote, so the list can show who is waiting for whom without decrypting anything.
    feedback_on: Mapped[dt.date | None] = mapped_column(Date)
    reporter_wrote_on: Mapped[dt.date | None] = mapped_column(Date)
    # Whether the reporter ever came back with the receipt (a yes/no, never when or how often):
    # the insights' anonymous follow-up rate.
    reporter_returned: Mapped[bool] = mapped_column(default=False)

    # Triage (ISO 37002 8.3). The reporter's category above is never overwritten; the
    # organisation's own view of it sits beside it.
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL.value)
    reporter_at_risk: Mapped[bool] = mapped_column(default=False)
    # No foreign keys on these two: SQLite can add and drop plain columns in place, while a
    # constrained column would force a rebuild of this table (see migration 0002).
    org_category_id: Mapped[int | None]
    outcome_id: Mapped[int | None]

    # Receipt-derived material: the lookup id (HMAC under the pepper), the salt for the
    # reporter's key, the reporter's public key and the case key sealed to it.
    lookup_id: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    reporter_salt: Mapped[Blob]
    reporter_kdf: Mapped[str] = mapped_column(String(64))  # Argon2 costs used with that salt
    reporter_public_key: Mapped[Blob]
    reporter_sealed_key: Mapped[Blob]

    # Ciphertext under the case key: what the reporter wrote (with the month, exclusions) ...
    report_ciphertext: Mapped[Blob]
    # ... and, for a named report, the contact details, kept apart so they can be shown only
    # where needed.
    contact_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)

    # Retention (``services.retention``): the day the holders were warned that this closed case
    # will be purged. A warning older than ``closed_on`` (the case was reopened and closed
    # again since) does not count.
    purge_warned_on: Mapped[dt.date | None] = mapped_column(Date)
    # Legal hold (``services.hold``): the day a hold was placed, while the case is on hold. The
    # retention job never warns about or deletes a held case. A day, like every date here; the
    # reason is an encrypted internal note in the thread, never a column.
    held_on: Mapped[dt.date | None] = mapped_column(Date)
    # The thread's format (``services.thread``): 0 for a case whose messages were written before
    # they were bound to their columns and internal notes had their own key; 1 once a staff
    # holder opened it and every message was sealed again in the bound format. A case at 1 (or
    # with any bound message, or any sealed staff-only key) refuses every legacy message.
    thread_version: Mapped[int] = mapped_column(default=0)
    # ``crypto.staff_key_tag`` of the staff-only key: a holder accepts the staff-only key they
    # unseal only if it matches, so a key sealed to them by someone without the case key (a
    # database administrator forging notes) is refused.
    staff_key_tag: Mapped[bytes | None] = mapped_column(LargeBinary)


class CaseAccess(Base):
    """Access to a case is exactly a copy of its key sealed to one staff member's public key."""

    __tablename__ = "case_access"
    __table_args__ = (_NO_ROWID,)

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    sealed_key: Mapped[Blob]
    # The case's staff-only key (internal notes), sealed to the same public key; never sealed to
    # the reporter. None for a copy made before that key existed, until the case is migrated.
    sealed_staff_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Whether this holder has been told of the case in a batched new-case notification. A batch
    # tells only of cases received before its own UTC day, so this says nothing finer than the
    # day about when the case arrived (services.notify.pending_new_cases).
    notified: Mapped[bool] = mapped_column(default=False)


class PendingRegrant(Base):
    """A staff member lost their key (password reset without the recovery key) and needs a
    colleague who holds the case key to seal it again to their new public key."""

    __tablename__ = "pending_regrants"
    __table_args__ = (_NO_ROWID,)

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CaseRecusal(Base):
    """A staff member stepped away from a case (conflict of interest). A recusal is final for
    that case: no grant or transfer seals its key to them again. Kept apart from the audit log,
    so that the rule holds whatever happens to the log (retention, purging)."""

    __tablename__ = "case_recusals"
    __table_args__ = (_NO_ROWID,)

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )


class CaseTag(Base):
    __tablename__ = "case_tags"
    __table_args__ = (_NO_ROWID,)

    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class MessageAuthor(enum.StrEnum):
    REPORTER = "reporter"
    STAFF = "staff"
    SYSTEM = "system"


class Visibility(enum.StrEnum):
    REPORTER = "reporter"  # the reporter sees it at follow-up
    INTERNAL = "internal"  # staff notes; never shown to the reporter


class Message(Base):
    """One entry of a case's thread. The body and its place in the thread are inside the
    ciphertext; in the clear a reporter's message has only its day, a staff one its exact time.
    The clear columns are bound to the ciphertext as associated data: a row whose visibility,
    author or times were changed does not decrypt, and is refused."""

    __tablename__ = "messages"
    __table_args__ = (_NO_ROWID,)

    id: Mapped[RandomId]
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(16))
    author_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    visibility: Mapped[str] = mapped_column(String(16))
    created_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ciphertext: Mapped[Blob]
    # 0: legacy, under the case key bound to the case and row only; 1: bound to every column
    # above (``content.message_ad``), internal notes under the staff-only key. A row claiming 1
    # must verify; a row at 0 is refused in a case that has been migrated.
    ad_version: Mapped[int] = mapped_column(default=0)


class RetainedCase(Base):
    """What stays of a purged case: only the coarse attributes the insights count (see
    ``INSIGHT_COLUMNS``), so that recomputed figures do not change when a case is purged.

    No content, no key, no receipt material, no handle, and not the case's id: ``id`` is new and
    random, so nothing in the audit log (which names case ids and handles) points at a row here.
    ``category_id`` is the category the insights counted (the organisation's, else the
    reporter's). No foreign keys: taxonomy rows are deactivated, never deleted.
    """

    __tablename__ = "retained_cases"
    __table_args__ = (_NO_ROWID,)

    id: Mapped[RandomId]
    received_on: Mapped[dt.date] = mapped_column(Date, index=True)
    category_id: Mapped[int]
    queue_id: Mapped[int]
    site_id: Mapped[int | None]
    department_id: Mapped[int | None]
    is_anonymous: Mapped[bool]
    reporter_returned: Mapped[bool]
    acknowledged_on: Mapped[dt.date | None] = mapped_column(Date)
    acknowledge_due_on: Mapped[dt.date] = mapped_column(Date)
    closed_on: Mapped[dt.date] = mapped_column(Date)
    outcome_id: Mapped[int | None]
    feedback_on: Mapped[dt.date | None] = mapped_column(Date)
    feedback_due_on: Mapped[dt.date] = mapped_column(Date)
