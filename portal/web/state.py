"""Per-application state (settings, secrets, database, throttles) and per-request helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.instance import InstanceSecrets
from portal.services import policy as policy_service
from portal.services.mail import Mailer
from portal.services.policy import PolicyValues
from portal.services.throttle import SubmissionLimits, Throttle
from portal.settings import Settings


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class PortalState:
    settings: Settings
    secrets: InstanceSecrets | None
    engine: Engine
    sessions: sessionmaker[Session]
    followup_throttle: Throttle
    login_throttle: Throttle
    api_throttle: Throttle  # failed bearer tokens on the insights API, per client
    submission_limits: SubmissionLimits  # concerns and reporter messages, total and per client
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    # Sends mail from a request (a reset's one-time password to its owner); None when no SMTP
    # server is configured, and then what needs it is refused rather than shown to an admin.
    mailer: Mailer | None = None


def state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    return value


def settings() -> Settings:
    return state().settings


def secrets() -> InstanceSecrets:
    value = state().secrets
    if value is None:  # the before_request guard answers 503 before any view runs
        raise RuntimeError("instance secrets are missing")
    return value


def db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = state().sessions()
    session: Session = g.db
    return session


def policy() -> PolicyValues:
    """The organisation's policy (deadlines, threshold), read once per request."""
    if "policy" not in g:
        g.policy = policy_service.values(db())
    values: PolicyValues = g.policy
    return values


def now() -> dt.datetime:
    return state().clock()


def today() -> dt.date:
    """The UTC day: reporter events are stored with nothing finer."""
    return now().date()


def close_db(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.close()
