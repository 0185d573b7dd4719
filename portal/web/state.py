"""Per-request helpers over the application state (``portal.app.PortalState``): the request's
database session, settings, secrets, policy and clock."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from flask import current_app, g
from sqlalchemy.orm import Session

from portal.instance import InstanceSecrets
from portal.services.configuration import policy as policy_service
from portal.services.configuration.policy import PolicyValues
from portal.settings import Settings

if TYPE_CHECKING:  # the type only: portal.app builds the web layer, never the reverse
    from portal.app import PortalState


def state() -> PortalState:
    """The state of the application serving this request or command (``create_app`` put it
    there)."""
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
