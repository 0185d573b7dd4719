"""Staff accounts, log-in and server-side sessions."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.models import (
    Queue,
    QueueMembership,
    Role,
    SessionStage,
    StaffRole,
    StaffSession,
    StaffUser,
)
from portal.services.errors import InvalidCredentials, InvalidInput, StaffExists, UnknownQueue
from portal.services.text import has_control_characters
from portal.settings import Argon2Cost, Settings


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class CreatedStaff:
    user: StaffUser
    recovery_key: str  # show once; only its wrapping of the private key is stored


def create_staff(
    session: Session,
    settings: Settings,
    *,
    email: str,
    display_name: str,
    roles: Iterable[Role],
    queue_slugs: Iterable[str],
    password: str,
    now: dt.datetime,
    not_excludable_in: Iterable[str] = (),
) -> CreatedStaff:
    """``not_excludable_in`` names queues the user joins as a member the reporter cannot
    exclude (e.g. the board queue's chair); they are joined even if not in ``queue_slugs``."""
    email = normalise_email(email)
    if (
        "@" not in email
        or len(email) > 254
        or any(ch.isspace() for ch in email)
        or has_control_characters(email)
    ):
        raise InvalidInput("email", "That is not an e-mail address.")
    name = display_name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name", "The public name must be 1 to 200 characters.")
    if len(password) < settings.staff_password_min_chars:
        raise InvalidInput(
            "password",
            f"The password needs at least {settings.staff_password_min_chars} characters.",
        )
    role_set = sorted(set(roles))
    if not role_set:
        raise InvalidInput("role", "Give at least one role.")
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise StaffExists(email)
    fixed = set(not_excludable_in)
    queues = []
    for slug in dict.fromkeys([*queue_slugs, *not_excludable_in]):
        queue = session.scalar(select(Queue).where(Queue.slug == slug))
        if queue is None:
            raise UnknownQueue(slug)
        queues.append(queue)

    keys = crypto.new_staff_keys(password, settings.kdf_cost)
    user = StaffUser(
        email=email,
        display_name=name,
        password_hash=crypto.hash_password(password, settings.password_cost),
        public_key=keys.public_key,
        password_salt=keys.password_salt,
        password_kdf=settings.kdf_cost.encode(),
        key_by_password=keys.key_by_password,
        key_by_recovery=keys.key_by_recovery,
        active=True,
        created_at=now,
        role_rows=[StaffRole(role=r.value) for r in role_set],
    )
    session.add(user)
    session.flush()
    for queue in queues:
        session.add(
            QueueMembership(queue_id=queue.id, staff_id=user.id, excludable=queue.slug not in fixed)
        )
    session.flush()
    return CreatedStaff(user, keys.recovery_key)


def authenticate(
    session: Session, settings: Settings, email: str, password: str
) -> tuple[StaffUser, bytes]:
    """Check a password and unlock the private key. Unknown and disabled accounts cost the same
    time and raise the same error as a wrong password: no account enumeration."""
    email = normalise_email(email)
    user = (
        None
        if has_control_characters(email)
        else session.scalar(select(StaffUser).where(StaffUser.email == email))
    )
    if user is None or not user.active:
        crypto.burn_password_time(settings.password_cost)
        raise InvalidCredentials
    if not crypto.verify_password(user.password_hash, password, settings.password_cost):
        raise InvalidCredentials
    try:
        private_key = crypto.unwrap_with_password(
            password, user.password_salt, user.key_by_password, Argon2Cost.decode(user.password_kdf)
        )
    except crypto.DecryptionFailed as exc:  # pragma: no cover - hash and key disagree
        raise InvalidCredentials from exc
    return user, private_key


# --- sessions ----------------------------------------------------------------------------------


class SessionInvalid(Exception):
    """The session cookie is unknown, expired or does not unlock its key."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session_ad(id_digest: bytes) -> bytes:
    return b"portal-staff-session|" + id_digest


def start_session(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    now: dt.datetime,
    stage: SessionStage = SessionStage.FULL,
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
        )
    )
    session.flush()
    return f"{token}.{_b64(session_key)}"


def resume_session(
    session: Session, settings: Settings, cookie: str, now: dt.datetime
) -> tuple[StaffUser, bytes]:
    token, _, key_text = cookie.partition(".")
    try:
        session_key = _unb64(key_text)
    except ValueError as exc:
        raise SessionInvalid from exc
    digest = crypto.token_digest(token)
    row = session.get(StaffSession, digest)
    if row is None:
        raise SessionInvalid
    idle = dt.timedelta(minutes=settings.staff_session_idle_minutes)
    user = session.get(StaffUser, row.staff_id)
    if now - row.last_seen_at > idle or user is None or not user.active:
        session.delete(row)
        session.flush()
        raise SessionInvalid
    try:
        private_key = crypto.decrypt(session_key, row.wrapped_private_key, _session_ad(digest))
    except crypto.DecryptionFailed as exc:
        raise SessionInvalid from exc
    row.last_seen_at = now
    session.flush()
    return user, private_key


def end_session(session: Session, cookie: str) -> None:
    token = cookie.partition(".")[0]
    session.execute(
        delete(StaffSession).where(StaffSession.id_digest == crypto.token_digest(token))
    )
    session.flush()


def queues_of(session: Session, user: StaffUser) -> list[Queue]:
    stmt = (
        select(Queue)
        .join(QueueMembership, QueueMembership.queue_id == Queue.id)
        .where(QueueMembership.staff_id == user.id)
        .order_by(Queue.name)
    )
    return list(session.scalars(stmt))


def count_staff(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StaffUser)) or 0
