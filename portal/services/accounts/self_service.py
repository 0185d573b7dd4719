"""One's own account: the list of one's sessions, revoking them, changing one's password."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import InvalidCredentials, InvalidInput, UnknownSession
from portal.i18n.wording import N_
from portal.models import SessionStage, StaffSession, StaffUser
from portal.services.accounts import passwords
from portal.services.accounts import sessions as staff_sessions
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.settings import Settings


@dataclass(frozen=True)
class SessionInfo:
    """What the account page shows of a session. Nothing else is kept: no address, no browser."""

    public_id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    stage: SessionStage
    current: bool


def sessions_of(
    session: Session, settings: Settings, user: StaffUser, current_public_id: str, now: dt.datetime
) -> list[SessionInfo]:
    """The user's live sessions, most recently used first."""
    rows = session.scalars(
        select(StaffSession)
        .where(StaffSession.staff_id == user.id)
        .order_by(StaffSession.last_seen_at.desc(), StaffSession.public_id)
    )
    return [
        SessionInfo(
            public_id=row.public_id,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            stage=SessionStage(row.stage),
            current=row.public_id == current_public_id,
        )
        for row in rows
        if not staff_sessions.is_expired(row, settings, now)
    ]


def revoke_session(
    session: Session, user: StaffUser, public_id: str, current_public_id: str, now: dt.datetime
) -> bool:
    """End one of the user's own sessions; True if it was the current one. Another user's
    session, or one that no longer exists, is UnknownSession (the same for both)."""
    row = session.scalar(
        select(StaffSession).where(
            StaffSession.public_id == public_id, StaffSession.staff_id == user.id
        )
    )
    if row is None:
        raise UnknownSession(public_id)
    current = row.public_id == current_public_id
    session.delete(row)
    audit.record(session, Action.SESSION_REVOKED, now, actor=user, count=1, current=current)
    session.flush()
    return current


def revoke_other_sessions(
    session: Session, user: StaffUser, current_public_id: str, now: dt.datetime
) -> int:
    rows = list(
        session.scalars(
            select(StaffSession).where(
                StaffSession.staff_id == user.id, StaffSession.public_id != current_public_id
            )
        )
    )
    for row in rows:
        session.delete(row)
    audit.record(session, Action.SESSION_REVOKED, now, actor=user, count=len(rows), current=False)
    session.flush()
    return len(rows)


def key_fingerprint(user: StaffUser) -> str:
    """The fingerprint of the user's current public key, shown on their own account page. A
    colleague types it to re-grant cases after a password reset (``access.grant``)."""
    return crypto.key_fingerprint(user.public_key)


@dataclass(frozen=True)
class PasswordChanged:
    recovery_key: str | None  # a new one, to show once, when the change was forced by a reset
    sessions_revoked: int


def change_password(
    session: Session,
    settings: Settings,
    user: StaffUser,
    private_key: bytes,
    *,
    current: str,
    new: str,
    confirm: str,
    now: dt.datetime,
) -> PasswordChanged:
    """Re-wrap the private key under a new password (new salt, current Argon2 costs, new hash):
    the key pair is unchanged, so every sealed case key still opens. Every session of the user
    ends, this one included. After an admin reset the recovery key was typed in front of the
    admin (or replaced unseen), so a new one is made as well.

    Raises InvalidInput for a new password that is refused and InvalidCredentials for a wrong
    current password; in both cases nothing changes."""
    passwords.check_new_password(settings, new, "new")
    if new != confirm:
        raise InvalidInput("confirm", N_("The two new passwords are not the same."))
    if new == current:
        raise InvalidInput("new", N_("Choose a password different from the current one."))
    if not crypto.verify_password(user.password_hash, current, settings.password_cost):
        raise InvalidCredentials
    if crypto.public_key_of(private_key) != user.public_key:  # pragma: no cover - defensive
        raise InvalidCredentials
    forced = user.must_change_password
    user.password_salt, user.key_by_password = crypto.wrap_with_password(
        private_key, new, settings.kdf_cost
    )
    user.password_kdf = settings.kdf_cost.encode()
    user.password_hash = crypto.hash_password(new, settings.password_cost)
    recovery = None
    if forced:
        recovery, user.key_by_recovery = crypto.wrap_with_new_recovery_key(private_key)
        user.must_change_password = False
        user.one_time_password_expires_at = None
    revoked = staff_sessions.revoke_all_sessions(session, user)
    audit.record(
        session,
        Action.PASSWORD_CHANGED,
        now,
        actor=user,
        forced=forced,
        new_recovery_key=recovery is not None,
        sessions_revoked=revoked,
    )
    session.flush()
    return PasswordChanged(recovery, revoked)
