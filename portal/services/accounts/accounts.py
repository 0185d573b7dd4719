"""Staff accounts: creation, log-in by password, queues, a password reset by an admin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.crypto import Argon2Cost
from portal.errors import InvalidCredentials, InvalidInput, StaffExists, UnknownQueue
from portal.i18n.wording import N_
from portal.models import (
    Case,
    CaseAccess,
    PendingRegrant,
    Queue,
    QueueMembership,
    Role,
    StaffRole,
    StaffUser,
)
from portal.services.accounts import passwords
from portal.services.accounts.sessions import revoke_all_sessions
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework.text import has_control_characters
from portal.settings import Settings

#: How long the one-time password of a new or reset account logs in: long enough for a mail to
#: be read after a weekend, short enough not to stay usable in a mailbox.
ONE_TIME_PASSWORD_HOURS = 72


def give_one_time_password(user: StaffUser, now: dt.datetime) -> None:
    """Mark the password ``user`` was just given as a one-time password: it must be changed at
    the next log-in and stops logging in after ``ONE_TIME_PASSWORD_HOURS``."""
    user.must_change_password = True
    user.one_time_password_expires_at = now + dt.timedelta(hours=ONE_TIME_PASSWORD_HOURS)


def one_time_password_lapsed(user: StaffUser, now: dt.datetime) -> bool:
    expires = user.one_time_password_expires_at
    return user.must_change_password and expires is not None and now >= expires


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
    require_role: bool = True,
    shared_password: crypto.SharedPasswordKeys | None = None,
) -> CreatedStaff:
    """``not_excludable_in`` names queues the user joins as a member the reporter cannot
    exclude (e.g. the board queue's chair); they are joined even if not in ``queue_slugs``.
    ``require_role=False`` lets the console create an account whose only roles still wait for
    a second admin's approval. ``shared_password`` (``portal demo`` only: accounts whose
    password is published) gives the password's hash and wrapping key computed once for all."""
    email = normalise_email(email)
    if (
        "@" not in email
        or len(email) > 254
        or any(ch.isspace() for ch in email)
        or has_control_characters(email)
    ):
        raise InvalidInput("email", N_("That is not an e-mail address."))
    name = display_name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name", N_("The public name must be 1 to 200 characters."))
    passwords.check_new_password(settings, password, "password")
    role_set = sorted(set(roles))
    if not role_set and require_role:
        raise InvalidInput("role", N_("Give at least one role."))
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise StaffExists(email)
    fixed = set(not_excludable_in)
    queues = []
    for slug in dict.fromkeys([*queue_slugs, *not_excludable_in]):
        queue = session.scalar(select(Queue).where(Queue.slug == slug))
        if queue is None:
            raise UnknownQueue(slug)
        queues.append(queue)

    if shared_password is None:
        keys = crypto.new_staff_keys(password, settings.kdf_cost)
        password_hash = crypto.hash_password(password, settings.password_cost)
        kdf_cost = settings.kdf_cost
    else:
        if not shared_password.holds(password):
            raise ValueError("shared_password was made for another password")
        keys = shared_password.new_staff_keys()
        password_hash = shared_password.password_hash
        kdf_cost = shared_password.kdf_cost
    user = StaffUser(
        email=email,
        display_name=name,
        password_hash=password_hash,
        public_key=keys.public_key,
        password_salt=keys.password_salt,
        password_kdf=kdf_cost.encode(),
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


def find_account(session: Session, email: str) -> StaffUser | None:
    """The account an e-mail belongs to (enabled or not), for recording a failed log-in against
    it; never shown to whoever typed the e-mail."""
    email = normalise_email(email)
    if has_control_characters(email):
        return None
    return session.scalar(select(StaffUser).where(StaffUser.email == email))


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


# --- password reset by an admin ----------------------------------------------------------------


@dataclass(frozen=True)
class PasswordReset:
    temporary_password: str  # show once, to the admin, to hand over in person
    kept_access: bool  # the recovery key re-wrapped the same private key
    pending_regrants: int  # cases whose sealed copy was lost and await a colleague's re-grant
    second_factor_reset: bool
    sessions_revoked: int


@dataclass(frozen=True)
class AccessSummary:
    cases: int  # sealed copies the account holds now
    sole_holder: int  # of those, cases nobody else holds a copy of
    pending_regrants: int


def access_summary(session: Session, user: StaffUser) -> AccessSummary:
    """What a reset without the recovery key would cost: counts only, no handles."""
    held = list(session.scalars(select(CaseAccess.case_id).where(CaseAccess.staff_id == user.id)))
    others = (
        set(
            session.scalars(
                select(CaseAccess.case_id).where(
                    CaseAccess.case_id.in_(held), CaseAccess.staff_id != user.id
                )
            )
        )
        if held
        else set()
    )
    pending = session.scalar(
        select(func.count()).select_from(PendingRegrant).where(PendingRegrant.staff_id == user.id)
    )
    return AccessSummary(len(held), len(set(held) - others), pending or 0)


def reset_password(
    session: Session,
    settings: Settings,
    user: StaffUser,
    now: dt.datetime,
    *,
    actor: StaffUser | None,
    recovery_key: str | None = None,
    reset_second_factor: bool = False,
) -> PasswordReset:
    """Give ``user`` a temporary password (shown once) that must be changed at the next log-in,
    and end all their sessions.

    With their recovery key (typed by the admin with the user present), the same private key is
    re-wrapped under the temporary password: case access is kept, and so is the second factor
    unless ``reset_second_factor``. Without it, the old private key is out of reach: the account
    gets a new key pair, every sealed case key addressed to the old one is deleted and recorded
    as awaiting re-grant by a colleague, and the TOTP secret (sealed to the old key) is cleared.
    A recovery key that does not open this account's key changes nothing."""
    private_key: bytes | None = None
    if recovery_key and recovery_key.strip():
        try:
            private_key = crypto.unwrap_with_recovery(recovery_key, user.key_by_recovery)
        except crypto.MalformedSecret as exc:
            raise InvalidInput(
                "recovery_key",
                N_("A recovery key has 32 letters and digits, in eight groups of four."),
            ) from exc
        except crypto.DecryptionFailed as exc:
            raise InvalidInput(
                "recovery_key",
                N_("That recovery key does not open this account's key. Nothing was changed."),
            ) from exc

    temporary = crypto.new_temporary_password(settings.staff_password_min_chars)
    pending = 0
    kept = private_key is not None
    if private_key is None:
        private_key, user.public_key = crypto.new_keypair()
        # Nobody sees this recovery key: the forced password change makes the one the user
        # keeps. The column needs a wrapping in the meantime.
        _, user.key_by_recovery = crypto.wrap_with_new_recovery_key(private_key)
        pending = _move_access_to_pending(session, user)
        user.totp_sealed = None
    elif reset_second_factor:
        user.totp_sealed = None
    user.password_salt, user.key_by_password = crypto.wrap_with_password(
        private_key, temporary, settings.kdf_cost
    )
    user.password_kdf = settings.kdf_cost.encode()
    user.password_hash = crypto.hash_password(temporary, settings.password_cost)
    give_one_time_password(user, now)
    revoked = revoke_all_sessions(session, user)
    second_factor_reset = user.totp_sealed is None
    audit.record(
        session,
        Action.STAFF_PASSWORD_RESET,
        now,
        actor=actor,
        target=user,
        kept_access=kept,
        pending=pending,
        second_factor_reset=second_factor_reset,
        sessions_revoked=revoked,
    )
    session.flush()
    return PasswordReset(temporary, kept, pending, second_factor_reset, revoked)


def _move_access_to_pending(session: Session, user: StaffUser) -> int:
    case_ids = list(
        session.scalars(select(CaseAccess.case_id).where(CaseAccess.staff_id == user.id))
    )
    already = set(
        session.scalars(select(PendingRegrant.case_id).where(PendingRegrant.staff_id == user.id))
    )
    session.execute(delete(CaseAccess).where(CaseAccess.staff_id == user.id))
    for case_id in case_ids:
        if case_id not in already:
            session.add(PendingRegrant(case_id=case_id, staff_id=user.id))
    session.flush()
    return len(case_ids)


@dataclass(frozen=True)
class PendingRegrantRow:
    handle: str
    queue_name: str
    staff_email: str
    staff_name: str
    holders: int  # colleagues who hold the case key and could re-grant it


def pending_regrants(session: Session) -> list[PendingRegrantRow]:
    """Every case awaiting re-grant, for the admin console: metadata only, no content."""
    holders = (
        select(CaseAccess.case_id, func.count().label("n")).group_by(CaseAccess.case_id).subquery()
    )
    stmt = (
        select(Case.handle, Queue.name, StaffUser.email, StaffUser.display_name, holders.c.n)
        .select_from(PendingRegrant)
        .join(Case, Case.id == PendingRegrant.case_id)
        .join(Queue, Queue.id == Case.queue_id)
        .join(StaffUser, StaffUser.id == PendingRegrant.staff_id)
        .outerjoin(holders, holders.c.case_id == Case.id)
        .order_by(Queue.name, StaffUser.email, Case.handle)
    )
    return [
        PendingRegrantRow(handle, queue, email, name, n or 0)
        for handle, queue, email, name, n in session.execute(stmt)
    ]


def all_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))
