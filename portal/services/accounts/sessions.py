"""Server-side staff sessions: the cookie, its row, the private key it unlocks."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.models import SessionStage, StaffSession, StaffUser
from portal.settings import Settings


class SessionInvalid(Exception):
    """The session cookie is unknown, expired or does not unlock its key."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session_ad(id_digest: bytes) -> bytes:
    return b"portal-staff-session|" + id_digest


#: Stages between the password and a finished log-in; each lapses after
#: ``staff_login_step_minutes`` and reaches only its own page (and log-out).
PENDING_STAGES = frozenset({SessionStage.TOTP, SessionStage.ENROL, SessionStage.NEW_PASSWORD})


@dataclass(frozen=True)
class ActiveSession:
    """A session presented with its cookie: the row, its user, the unlocked private key."""

    row: StaffSession
    user: StaffUser
    private_key: bytes

    @property
    def stage(self) -> SessionStage:
        return SessionStage(self.row.stage)


def start_session(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    now: dt.datetime,
    stage: SessionStage = SessionStage.FULL,
    *,
    pending_totp: bytes | None = None,
) -> str:
    """Create a session; return the cookie value (id and key). Only the cookie can unlock the
    private key kept in the row."""
    token = crypto.random_token()
    session_key = crypto.new_key()
    digest = crypto.token_digest(token)
    session.add(
        StaffSession(
            id_digest=digest,
            public_id=crypto.random_id(),
            stage=stage.value,
            staff_id=user.id,
            created_at=now,
            last_seen_at=now,
            wrapped_private_key=crypto.encrypt(session_key, private_key, _session_ad(digest)),
            pending_totp=pending_totp,
        )
    )
    session.flush()
    return f"{token}.{_b64(session_key)}"


def is_expired(row: StaffSession, settings: Settings, now: dt.datetime) -> bool:
    """A finished log-in ends after idle time; a log-in between its steps lapses a fixed time
    after the step began (a new row is made at each step), however often its page is loaded."""
    if SessionStage(row.stage) in PENDING_STAGES:
        return now - row.created_at > dt.timedelta(minutes=settings.staff_login_step_minutes)
    return now - row.last_seen_at > dt.timedelta(minutes=settings.staff_session_idle_minutes)


def resume(session: Session, settings: Settings, cookie: str, now: dt.datetime) -> ActiveSession:
    """The session a cookie names, at whatever stage; SessionInvalid if it is unknown, expired,
    of a disabled account, or the cookie's key does not unlock it."""
    token, _, key_text = cookie.partition(".")
    try:
        session_key = _unb64(key_text)
    except ValueError as exc:
        raise SessionInvalid from exc
    digest = crypto.token_digest(token)
    row = session.get(StaffSession, digest)
    if row is None:
        raise SessionInvalid
    user = session.get(StaffUser, row.staff_id)
    if is_expired(row, settings, now) or user is None or not user.active:
        session.delete(row)
        session.flush()
        raise SessionInvalid
    try:
        private_key = crypto.decrypt(session_key, row.wrapped_private_key, _session_ad(digest))
    except crypto.DecryptionFailed as exc:
        raise SessionInvalid from exc
    row.last_seen_at = now
    session.flush()
    return ActiveSession(row, user, private_key)


def resume_session(
    session: Session, settings: Settings, cookie: str, now: dt.datetime
) -> tuple[StaffUser, bytes]:
    """A finished log-in only: a session still between its steps is refused like no session."""
    active = resume(session, settings, cookie, now)
    if active.stage != SessionStage.FULL:
        raise SessionInvalid
    return active.user, active.private_key


def end_session(session: Session, cookie: str) -> None:
    token = cookie.partition(".")[0]
    session.execute(
        delete(StaffSession).where(StaffSession.id_digest == crypto.token_digest(token))
    )
    session.flush()


def delete_expired_sessions(
    session: Session, settings: Settings, user: StaffUser, now: dt.datetime
) -> int:
    rows = session.scalars(select(StaffSession).where(StaffSession.staff_id == user.id))
    expired = [row for row in rows if is_expired(row, settings, now)]
    for row in expired:
        session.delete(row)
    session.flush()
    return len(expired)


def revoke_all_sessions(session: Session, user: StaffUser) -> int:
    """End every session of ``user`` (password change, reset): their cookies stop working."""
    result = session.execute(delete(StaffSession).where(StaffSession.staff_id == user.id))
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
