"""Personal API tokens for the insights API (BI tools).

A token is 32 random bytes shown once, when it is made; the database keeps only its SHA-256
(``crypto.token_digest``), so a copy of the table lets nobody call the API. Each token belongs
to one staff user and reads exactly what that user could read on the insights pages, no more:
it stops working when the user is disabled or loses the management role, and when it expires.

Limits are explicit so that tokens stay few and short-lived: a name of 1 to 80 characters, at
most ``MAX_ACTIVE`` unexpired tokens per user, a lifetime of at most ``api_token_max_days``.
Use is recorded by day only (``last_used_on``), which is enough to spot a forgotten token and
does not turn the table into a log of when a manager looks at the figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import ApiTokenNotPermitted, InvalidApiToken, InvalidInput, UnknownApiToken
from portal.i18n.wording import N_
from portal.models import ApiToken, StaffUser
from portal.services.accounts.permissions import Permission, can
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework.text import has_control_characters
from portal.settings import Settings

NAME_MAX_CHARS = 80
MAX_ACTIVE = 10
#: Whatever the setting says, a token never lives longer than this.
HARD_MAX_DAYS = 365


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``value`` is shown to its owner once and never again."""

    id: int
    name: str
    value: str
    expires_on: dt.date


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_on: dt.date
    expires_on: dt.date
    last_used_on: dt.date | None
    expired: bool


def _active_count(session: Session, user: StaffUser, today: dt.date) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(ApiToken)
            .where(ApiToken.staff_id == user.id, ApiToken.expires_on > today)
        )
        or 0
    )


def create(
    session: Session,
    settings: Settings,
    user: StaffUser,
    name: str,
    days: int,
    now: dt.datetime,
) -> NewToken:
    """Make a token for ``user``. ``days`` is its lifetime: it works until the end of the day
    before ``expires_on`` (UTC). Raises InvalidInput (field ``name`` or ``days``, or ``""`` for
    the limit on the number of tokens)."""
    if not can(user, Permission.INSIGHTS_READ):
        raise ApiTokenNotPermitted(user.id)
    name = " ".join(name.split())  # one line: no newlines or runs of spaces in a list
    if has_control_characters(name):
        raise InvalidInput("name", N_("A token's name cannot contain control characters."))
    if not name:
        raise InvalidInput("name", N_("Give the token a name, e.g. the tool that will use it."))
    if len(name) > NAME_MAX_CHARS:
        raise InvalidInput(
            "name",
            N_(
                "A token's name is at most %(limit)d characters (%(given)d given).",
                limit=NAME_MAX_CHARS,
                given=len(name),
            ),
        )
    longest = min(settings.api_token_max_days, HARD_MAX_DAYS)
    if not 1 <= days <= longest:
        raise InvalidInput("days", N_("A token lives from 1 to %(longest)d days.", longest=longest))
    today = now.date()
    if _active_count(session, user, today) >= MAX_ACTIVE:
        raise InvalidInput(
            "",
            N_(
                "You already have %(count)d tokens that have not expired."
                " Revoke one you no longer use first.",
                count=MAX_ACTIVE,
            ),
        )
    value = crypto.new_api_token()
    row = ApiToken(
        staff_id=user.id,
        name=name,
        token_hash=crypto.token_digest(value),
        created_on=today,
        expires_on=today + dt.timedelta(days=days),
        last_used_on=None,
    )
    session.add(row)
    session.flush()
    # The name is text the user typed: the audit log keeps codes and counts only.
    audit.record(
        session,
        Action.API_TOKEN_CREATED,
        now,
        actor=user,
        token_id=row.id,
        days=days,
        expires_on=row.expires_on.isoformat(),
    )
    return NewToken(row.id, name, value, row.expires_on)


def tokens_of(session: Session, user: StaffUser, today: dt.date) -> list[TokenInfo]:
    """The user's tokens, newest first (expired ones too, until revoked)."""
    rows = session.scalars(
        select(ApiToken)
        .where(ApiToken.staff_id == user.id)
        .order_by(ApiToken.created_on.desc(), ApiToken.id.desc())
    )
    return [
        TokenInfo(
            id=row.id,
            name=row.name,
            created_on=row.created_on,
            expires_on=row.expires_on,
            last_used_on=row.last_used_on,
            expired=row.expires_on <= today,
        )
        for row in rows
    ]


def revoke(session: Session, user: StaffUser, token_id: int, now: dt.datetime) -> None:
    """Delete one of the user's own tokens. Another user's token, or one that no longer
    exists, is UnknownApiToken (the same for both)."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.staff_id == user.id)
    )
    if row is None:
        raise UnknownApiToken(token_id)
    session.delete(row)
    audit.record(session, Action.API_TOKEN_REVOKED, now, actor=user, token_id=token_id)
    session.flush()


def looks_like_token(value: str) -> bool:
    return (
        value.startswith(crypto.API_TOKEN_PREFIX)
        and len(value) < 100
        and value.isascii()
        and value.isprintable()
    )


def authenticate(session: Session, value: str, today: dt.date) -> StaffUser:
    """The staff user a bearer token stands for.

    Raises InvalidApiToken for anything that is not a live token of an active account, and
    ApiTokenNotPermitted when the owner may no longer read insights. The lookup is by the
    token's SHA-256 (a unique index): timing can at most reveal a prefix of the hash of a guess,
    which says nothing about any real token; the final comparison is constant-time anyway."""
    if not looks_like_token(value):
        raise InvalidApiToken()
    digest = crypto.token_digest(value)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or not crypto.constant_time_equal(row.token_hash, digest):
        raise InvalidApiToken()
    if row.expires_on <= today:
        raise InvalidApiToken()
    user = session.get(StaffUser, row.staff_id)
    if user is None or not user.active:
        raise InvalidApiToken()
    if not can(user, Permission.INSIGHTS_READ):
        raise ApiTokenNotPermitted(user.id)
    if row.last_used_on != today:
        row.last_used_on = today  # day granularity: at most one write a day per token
        session.flush()
    return user
