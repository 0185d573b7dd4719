"""Shared arrangements for the API tests: quarters of cases, their releases, tokens."""

from __future__ import annotations

import datetime as dt

from portal.models import Role, StaffUser
from portal.services.accounts import api_tokens
from portal.services.insights import store as insights_store
from tests.support import insights_helpers
from tests.support.factories import Portal

#: A day after 2025-Q1 ended: its volume and progress releases exist as of 2025-05-01.
TODAY = dt.date(2025, 5, 15)
QUARTER = "2025-Q1"
SECRET_TEXT = "The warehouse lead keeps the overtime money: a free text nobody may publish."


def ombudsperson(portal: Portal) -> StaffUser:
    return portal.staff("ombuds", queues=("general", "hr", "ethics", "safety", "board"))


def released_quarter(portal: Portal) -> list[str]:
    """Nine cases in 2025-Q1 (some in small groups, so some cells are hidden) and two in
    2025-Q2 (below the threshold, not yet complete). Returns the handles."""
    handles = []
    for i, (category, site) in enumerate(
        [
            ("harassment", "hq"),
            ("harassment", "hq"),
            ("harassment", "hq"),
            ("harassment", "plant-north"),
            ("harassment", None),
            ("harassment", "hq"),
            ("other", "hq"),
            ("other", None),
            ("safety", "remote"),
        ]
    ):
        submitted = portal.submit(
            today=dt.date(2025, 1 + i % 3, 10),
            category_code=category,
            site_code=site,
            description=SECRET_TEXT,
        )
        handles.append(submitted.handle)
    handles.append(portal.submit(today=dt.date(2025, 4, 2), description=SECRET_TEXT).handle)
    insights_store.refresh(portal.session, TODAY, insights_helpers.KEY)
    portal.session.commit()
    return handles


def manager(portal: Portal, name: str = "manager") -> StaffUser:
    return portal.staff(name, roles=(Role.MANAGEMENT,), queues=())


def token_for(portal: Portal, user: StaffUser, now: dt.datetime, days: int = 30) -> str:
    new = api_tokens.create(portal.session, portal.settings, user, "BI tool", days, now)
    portal.session.commit()
    return new.value
