"""Staff accounts, their key material, roles, queue memberships and server-side sessions."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.types import Blob, UTCDateTime


class Role(enum.StrEnum):
    OMBUDSPERSON = "ombudsperson"
    ADMIN = "admin"
    MANAGEMENT = "management"
    CUSTODIAN = "custodian"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # The public name reporters see when they choose whom to exclude.
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[Blob]
    password_salt: Mapped[Blob]
    password_kdf: Mapped[str] = mapped_column(String(64))  # Argon2 costs used with that salt
    key_by_password: Mapped[Blob]
    key_by_recovery: Mapped[Blob]
    active: Mapped[bool] = mapped_column(default=True)
    # The TOTP secret, sealed to the user's own public key: only their unlocked private key
    # reads it, so a database copy plus the instance secrets cannot mint codes.
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The last accepted TOTP time step: a code is accepted once (no replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Set by an admin reset: the next log-in must choose a new password.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # When the one-time password of a new or reset account stops logging in (it was mailed to
    # the owner, and should not stay usable in a mailbox). Cleared by the password change.
    one_time_password_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    role_rows: Mapped[list[StaffRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(r.role) for r in self.role_rows)


class StaffRole(Base):
    __tablename__ = "staff_roles"

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class QueueMembership(Base):
    __tablename__ = "queue_memberships"

    queue_id: Mapped[int] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    # False for members the reporter cannot exclude (e.g. the board queue's chair).
    excludable: Mapped[bool] = mapped_column(default=True)


class SessionStage(enum.StrEnum):
    TOTP = "totp"  # password checked; a current code is still needed
    ENROL = "enrol"  # password checked; the account has no second factor yet
    NEW_PASSWORD = "new_password"  # noqa: S105  # nosec B105  # a stage name: must choose a new password
    FULL = "full"


class StaffSession(Base):
    """A staff login. The row alone cannot unlock anything: the private key in it is encrypted
    under a random key that only the session cookie carries, and the row is found by the digest
    of the cookie's id, so a copy of this table cannot be replayed as a cookie."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_public_id", "public_id", unique=True),)

    id_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    # A random name for the session on the account page (revoking it), not derived from the id.
    public_id: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16), default=SessionStage.FULL.value)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    wrapped_private_key: Mapped[Blob]
    # During enrolment (stage ENROL): the TOTP secret being set up, sealed to the user's public
    # key like ``StaffUser.totp_sealed``, so it never sits in a cookie or in the clear.
    pending_totp: Mapped[bytes | None] = mapped_column(LargeBinary)


class AccessChange(enum.StrEnum):
    """A change to an account that gives access to cases, identities or the power to approve
    such changes: it takes effect only when a second admin approves it (four eyes)."""

    ROLE = "role"  # the account gets ``role`` (ombudsperson, custodian or admin)
    JOIN_QUEUE = "join_queue"  # the account joins ``queue_id`` (``excludable`` or not)
    NOT_EXCLUDABLE = "not_excludable"  # a member becomes one reporters cannot exclude


class RequestState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"  # by another admin
    WITHDRAWN = "withdrawn"  # by the admin who asked, or because the membership ended
    EXPIRED = "expired"  # nobody approved it in time
    # Made by the operator at the server (`portal staff ...`, `portal create-staff`): the
    # break-glass path, applied at once, recorded here so the queue's members see it too.
    AT_SERVER = "at_server"


class AccessRequest(Base):
    """One change that gives access, asked for by one admin and decided by another; kept after
    the decision, so a queue's members can see who joined and who let them in."""

    __tablename__ = "staff_access_requests"
    __table_args__ = (
        Index("ix_staff_access_requests_state", "state"),
        Index("ix_staff_access_requests_queue_id", "queue_id"),
        Index("ix_staff_access_requests_target_id", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    change: Mapped[str] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(32))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    excludable: Mapped[bool] = mapped_column(default=True)
    # None: the operator at the server (state AT_SERVER), or an account since deleted.
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default=RequestState.PENDING.value)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
