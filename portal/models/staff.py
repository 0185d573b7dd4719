"""Staff accounts, their key material, roles, queue memberships and server-side sessions."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, LargeBinary, String
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


class StaffSession(Base):
    """A staff login. The row alone cannot unlock anything: the private key in it is encrypted
    under a random key that only the session cookie carries, and the row is found by the digest
    of the cookie's id, so a copy of this table cannot be replayed as a cookie."""

    __tablename__ = "staff_sessions"

    id_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    wrapped_private_key: Mapped[Blob]
