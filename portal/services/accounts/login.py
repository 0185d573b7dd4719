"""Staff log-in in steps: password, then the second factor (or its enrolment), then, after an
admin reset, a new password. Each step is a server-side session of its own stage; passing a
step replaces the session with a new one (new cookie) of the next stage.

Failed steps are recorded in the audit log against the account the e-mail belongs to, if any;
what was typed is never stored. Throttling is the web layer's (it holds the client's key).

An account that many log-ins failed for recently is not locked (anyone could lock a colleague
out that way, issue 13 finding 12): its password is accepted only together with a current code,
in one step (``check_password_and_code``) whose every failure looks the same, so guesses made
there learn nothing about the password alone. A browser that finished a log-in to an account
holds a device cookie for it (``device_cookie``), which the web layer uses to let its owner in
even when the account's hard bound on failures is reached.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import InvalidCredentials, InvalidInput, WrongCode
from portal.i18n.wording import N_
from portal.models import SessionStage, StaffUser
from portal.services.accounts import accounts as staff
from portal.services.accounts import second_factor
from portal.services.accounts import sessions as staff_sessions
from portal.services.accounts.sessions import ActiveSession, SessionInvalid
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.settings import Settings


@dataclass(frozen=True)
class Step:
    """Where a log-in stands after a step: the new cookie and the stage it opens."""

    cookie: str
    stage: SessionStage
    user: StaffUser


def _fresh_stage(user: StaffUser) -> SessionStage:
    return SessionStage.TOTP if user.totp_sealed is not None else SessionStage.ENROL


def _after_second_factor(user: StaffUser) -> SessionStage:
    return SessionStage.NEW_PASSWORD if user.must_change_password else SessionStage.FULL


def check_password(
    session: Session, settings: Settings, email: str, password: str, now: dt.datetime
) -> Step:
    """First step. Unknown, disabled and wrong all raise the same InvalidCredentials after the
    same work (no enumeration); the failure is audited against the account, if there is one."""
    lapsed = False
    try:
        user, private_key = staff.authenticate(session, settings, email, password)
        # A one-time password past its time is refused like a wrong one, to whoever typed it.
        lapsed = staff.one_time_password_lapsed(user, now)
        if lapsed:
            raise InvalidCredentials
    except InvalidCredentials:
        target = staff.find_account(session, email)
        if lapsed:
            audit.record(
                session,
                Action.LOGIN_FAILED,
                now,
                target=target,
                factor="password",
                one_time_password_lapsed=True,
            )
        else:
            audit.record(session, Action.LOGIN_FAILED, now, target=target, factor="password")
        raise
    staff_sessions.delete_expired_sessions(session, settings, user, now)
    stage = _fresh_stage(user)
    pending = (
        second_factor.seal_totp_secret(user, crypto.new_totp_secret())
        if stage == SessionStage.ENROL
        else None
    )
    cookie = staff_sessions.start_session(
        session, user, private_key, now, stage, pending_totp=pending
    )
    return Step(cookie, stage, user)


def check_password_and_code(
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    code_text: str,
    now: dt.datetime,
) -> Step:
    """Password and second factor in one step, for an account under guessing: only a right
    pair passes, and a wrong password, a right password with a wrong code and an account
    without a second factor all raise (InvalidCredentials or WrongCode, which the web layer
    answers alike) after about the same work (a right password costs a second Argon2id, to
    unwrap the key, so a wrong one burns that time too). Audited like the two steps."""
    code = normalise_code(code_text)
    try:
        user, private_key = staff.authenticate(session, settings, email, password)
    except InvalidCredentials:
        crypto.burn_password_time(settings.password_cost)
        audit.record(
            session,
            Action.LOGIN_FAILED,
            now,
            target=staff.find_account(session, email),
            factor="password",
        )
        raise
    if user.totp_sealed is None:
        # No second factor yet: nothing to pair the password with while it is being guessed.
        audit.record(session, Action.LOGIN_FAILED, now, target=user, factor="totp")
        raise WrongCode
    secret = second_factor.open_totp_secret(private_key, user.totp_sealed)
    _accept(session, user, secret, code, now, "totp")
    staff_sessions.delete_expired_sessions(session, settings, user, now)
    stage = _after_second_factor(user)
    cookie = staff_sessions.start_session(session, user, private_key, now, stage)
    audit.record(
        session,
        Action.LOGIN,
        now,
        actor=user,
        must_change_password=user.must_change_password,
        together=True,
    )
    return Step(cookie, stage, user)


# --- device cookies -----------------------------------------------------------------------------

_DEVICE_PURPOSE = "portal-staff-device"


def _device_mac(key: bytes, user_id: int, nonce: str) -> str:
    return crypto.keyed_digest(key, f"{_DEVICE_PURPOSE}|{user_id}|{nonce}")[:32]


def device_cookie(key: bytes, user: StaffUser) -> str:
    """A cookie value that proves this browser finished a log-in to ``user`` before: the
    account id, a random nonce and a MAC under ``key`` (a subkey of the instance's secret key).
    Nothing is stored: no table records devices, and the value holds no client metadata."""
    nonce = crypto.random_id()
    return f"{user.id}.{nonce}.{_device_mac(key, user.id, nonce)}"


def device_nonce(key: bytes, cookie: str, user: StaffUser | None) -> str | None:
    """The cookie's nonce (to count its own failures) if it is genuine and for ``user``."""
    parts = cookie.split(".")
    if user is None or len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) != user.id:
        return None
    nonce, mac = parts[1], parts[2]
    expected = _device_mac(key, user.id, nonce)
    if not crypto.constant_time_equal(mac.encode(), expected.encode()):
        return None
    return nonce


def normalise_code(text: str) -> str:
    code = "".join(ch for ch in text if not ch.isspace())
    if len(code) != crypto.TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        raise InvalidInput("code", N_("A code has 6 digits."))
    return code


def _advance(session: Session, active: ActiveSession, now: dt.datetime) -> Step:
    """Replace the session with one of the next stage: a new id and key at each step, so a
    cookie seen before the second factor is worth nothing after it."""
    stage = _after_second_factor(active.user)
    session.delete(active.row)
    session.flush()
    cookie = staff_sessions.start_session(session, active.user, active.private_key, now, stage)
    audit.record(
        session,
        Action.LOGIN,
        now,
        actor=active.user,
        must_change_password=active.user.must_change_password,
    )
    return Step(cookie, stage, active.user)


def _move_step(session: Session, user: StaffUser, step: int) -> bool:
    """Compare-and-set of the last accepted step: of two requests racing with the same code,
    only one moves it on (the other's UPDATE matches no row once the first has committed)."""
    result = session.execute(
        update(StaffUser)
        .where(
            StaffUser.id == user.id,
            or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0)) == 1


def _accept(
    session: Session, user: StaffUser, secret: str, code: str, now: dt.datetime, factor: str
) -> None:
    step = crypto.totp_matching_step(secret, code, now, user.totp_last_step)
    moved = step is not None and _move_step(session, user, step)
    if not moved:
        audit.record(session, Action.LOGIN_FAILED, now, target=user, factor=factor)
        raise WrongCode
    user.totp_last_step = step
    session.flush()


def check_code(session: Session, active: ActiveSession, code_text: str, now: dt.datetime) -> Step:
    """Second step for an enrolled account: a current code, never one accepted before."""
    if active.stage != SessionStage.TOTP or active.user.totp_sealed is None:
        raise SessionInvalid
    code = normalise_code(code_text)
    secret = second_factor.open_totp_secret(active.private_key, active.user.totp_sealed)
    _accept(session, active.user, secret, code, now, "totp")
    return _advance(session, active, now)


@dataclass(frozen=True)
class Enrolment:
    secret: str
    grouped: str  # for typing into an app by hand
    uri: str  # otpauth:// for the QR code


def enrolment(settings: Settings, active: ActiveSession) -> Enrolment:
    """The secret being enrolled in this session (made at the password step, kept sealed in
    the session row), as text and as an otpauth URI naming the organisation as issuer."""
    if active.stage != SessionStage.ENROL or active.row.pending_totp is None:
        raise SessionInvalid
    secret = second_factor.open_totp_secret(active.private_key, active.row.pending_totp)
    return Enrolment(
        secret=secret,
        grouped=crypto.group_totp_secret(secret),
        uri=crypto.totp_uri(secret, active.user.email, settings.organisation_name),
    )


def confirm_enrolment(
    session: Session, settings: Settings, active: ActiveSession, code_text: str, now: dt.datetime
) -> Step:
    """Second step for an account without a second factor: a current code of the new secret
    proves the app holds it; only then is the secret stored (sealed) on the account."""
    if active.user.totp_sealed is not None:
        # Enrolled meanwhile in another browser: this pending secret must not replace it.
        raise SessionInvalid
    pending = active.row.pending_totp
    secret = enrolment(settings, active).secret
    code = normalise_code(code_text)
    _accept(session, active.user, secret, code, now, "totp_enrolment")
    active.user.totp_sealed = pending
    audit.record(session, Action.TOTP_ENROLLED, now, actor=active.user)
    return _advance(session, active, now)


def log_out(session: Session, active: ActiveSession, cookie: str, now: dt.datetime) -> None:
    audit.record(session, Action.LOGOUT, now, actor=active.user, stage=active.stage.value)
    staff_sessions.end_session(session, cookie)
