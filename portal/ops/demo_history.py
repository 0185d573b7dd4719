"""Demo history for `portal demo`: six past quarters of concerns, so that the insights pages
have figures to show. Each case goes through the real intake service (encrypted, routed,
sealed to the queue's ombudspersons), with a cheap key derivation so that a few hundred take
seconds; their receipts are not shown. How they were handled (acknowledged, closed, outcome)
is then set directly on the case, without audit events: this is made-up history, not work
anyone did."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.crypto import Argon2Cost
from portal.models import Case, Category, OrgUnit, OrgUnitKind, Outcome
from portal.services.insights import calendar as insights_calendar
from portal.services.insights import store as insights_store
from portal.services.reporting import intake
from portal.settings import Settings

QUARTERS = 6
#: Relative weights of the demo taxonomy's categories (codes missing here are not used).
WEIGHTS = {
    "harassment": 9,
    "discrimination": 4,
    "retaliation": 3,
    "dismissal": 6,
    "pay": 7,
    "safety": 8,
    "fraud": 3,
    "conflict_of_interest": 2,
    "executive_conduct": 1,
    "privacy": 2,
    "feedback": 10,
    "other": 2,
}
TEXTS = (
    "A concern raised for the demo history; it describes nothing real.",
    "Demo history: a made-up concern so that the insights have figures to show.",
)
CHEAP = Argon2Cost(time_cost=1, memory_kib=8, parallelism=1)


def load(
    session: Session, settings: Settings, pepper: bytes, today: dt.date, *, insights_key: bytes
) -> int:
    """Create the history and compute the insight releases; returns the number of cases.
    ``insights_key`` orders complements (``insights.release_key``)."""
    rng = random.Random(2026)  # noqa: S311  # nosec B311  # repeatable made-up demo data, not a secret
    cheap = settings.with_argon2(CHEAP)
    codes = [c for c in session.scalars(select(Category.code)) if c in WEIGHTS]
    sites = list(session.scalars(select(OrgUnit.code).where(OrgUnit.kind == OrgUnitKind.SITE)))
    departments = list(
        session.scalars(select(OrgUnit.code).where(OrgUnit.kind == OrgUnitKind.DEPARTMENT))
    )
    outcomes = list(session.scalars(select(Outcome).order_by(Outcome.position)))
    quarter = insights_calendar.Quarter.of(today)
    for _ in range(QUARTERS):
        quarter = _previous(quarter)
    count = 0
    for _ in range(QUARTERS):
        days = (quarter.end - quarter.start).days
        for _ in range(rng.randint(35, 60)):
            received = quarter.start + dt.timedelta(days=rng.randrange(days))
            named = rng.random() < 0.4
            submitted = intake.submit(
                session,
                cheap,
                pepper,
                intake.Concern(
                    category_code=rng.choices(codes, [WEIGHTS[c] for c in codes])[0],
                    description=rng.choice(TEXTS),
                    happened="ongoing",
                    site_code=rng.choice([*sites, None]),
                    department_code=rng.choice([*departments, None]),
                    contact_name="Demo Reporter" if named else None,
                    contact_details="demo@example.org" if named else None,
                ),
                received,
            )
            case = session.get_one(Case, submitted.case_id)  # in the session: no query
            _handle(case, rng, outcomes, today)
            count += 1
        quarter = quarter.next()
    session.flush()
    insights_store.refresh(session, today, insights_key)
    return count


def _previous(quarter: insights_calendar.Quarter) -> insights_calendar.Quarter:
    if quarter.number == 1:
        return insights_calendar.Quarter(quarter.year - 1, 4)
    return insights_calendar.Quarter(quarter.year, quarter.number - 1)


def _handle(case: Case, rng: random.Random, outcomes: list[Outcome], today: dt.date) -> None:
    received = case.received_on
    case.reporter_returned = case.is_anonymous and rng.random() < 0.3
    ack = received + dt.timedelta(days=rng.choice([1, 2, 2, 3, 4, 5, 6, 8, 11]))
    if ack >= today:
        return
    case.acknowledged_on = ack
    case.status = "investigating"
    closed = received + dt.timedelta(days=int(rng.gammavariate(2.0, 22.0)) + 5)
    if closed < today and rng.random() < 0.9 and outcomes:
        case.closed_on = closed
        case.feedback_on = closed
        outcome = rng.choices(outcomes, [3 if o.substantiated else 4 for o in outcomes])[0]
        case.outcome_id = outcome.id
        case.status = "closed"
