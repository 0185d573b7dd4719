"""Deadline arithmetic across month ends and leap years, and the state shown in lists."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from portal.models import Case
from portal.services.casework import cases
from portal.services.casework.deadlines import (
    DeadlineKind,
    DeadlineState,
    add_months,
    deadlines,
    feedback_due,
    feedback_due_after_acknowledgement,
    next_deadline,
)
from portal.services.configuration import policy
from portal.services.configuration.policy import PolicyValues
from tests.support.factories import Portal

POLICY = PolicyValues()
DUE_SOON = POLICY.due_soon_days


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),  # leap year
        (dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28)),
        (dt.date(2027, 11, 30), 3, dt.date(2028, 2, 29)),
        (dt.date(2026, 10, 15), 3, dt.date(2027, 1, 15)),
        (dt.date(2026, 12, 31), 12, dt.date(2027, 12, 31)),
    ],
)
def test_add_months_clamps_to_month_end(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2200, 1, 1)), st.integers(0, 48))
def test_add_months_properties(day: dt.date, months: int) -> None:
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day <= day.day
    assert result >= day


def test_feedback_counts_from_acknowledgement_or_day_seven() -> None:
    received = dt.date(2026, 1, 24)
    assert feedback_due(received, None, POLICY) == dt.date(2026, 4, 30)  # 31 Jan + 3 months
    assert feedback_due(received, dt.date(2026, 1, 26), POLICY) == dt.date(2026, 4, 26)


def _case(received: dt.date, **fields: object) -> Case:
    """A case as intake stores it, then as acknowledging moves its feedback deadline."""
    values: dict[str, object] = {
        "status": "new",
        "received_on": received,
        "acknowledge_due_on": received + dt.timedelta(days=7),
        "feedback_due_on": feedback_due(received, None, POLICY),
    }
    values.update(fields)
    case = Case(**values)
    if case.acknowledged_on is not None:
        case.feedback_due_on = feedback_due_after_acknowledgement(case, case.acknowledged_on)
    return case


@pytest.mark.parametrize(
    ("received", "acknowledged", "months", "expected"),
    [
        (dt.date(2026, 1, 24), dt.date(2026, 1, 30), 3, dt.date(2026, 4, 30)),
        (dt.date(2027, 11, 25), dt.date(2027, 11, 30), 3, dt.date(2028, 2, 29)),  # leap year
        (dt.date(2026, 2, 20), dt.date(2026, 2, 27), 1, dt.date(2026, 3, 27)),
        (dt.date(2026, 12, 30), dt.date(2027, 1, 6), 3, dt.date(2027, 4, 6)),
    ],
)
def test_acknowledging_moves_feedback_deadline_by_the_case_s_own_months(
    received: dt.date, acknowledged: dt.date, months: int, expected: dt.date
) -> None:
    policy = PolicyValues(feedback_months=months)
    case = Case(
        received_on=received,
        acknowledge_due_on=received + dt.timedelta(days=7),
        feedback_due_on=feedback_due(received, None, policy),
    )
    assert feedback_due_after_acknowledgement(case, acknowledged) == expected


@pytest.mark.parametrize(
    ("today", "state"),
    [
        (dt.date(2026, 3, 2), DeadlineState.DUE),
        (dt.date(2026, 3, 6), DeadlineState.DUE_SOON),
        (dt.date(2026, 3, 8), DeadlineState.DUE_SOON),  # the due day itself
        (dt.date(2026, 3, 9), DeadlineState.OVERDUE),
    ],
)
def test_acknowledgement_state(today: dt.date, state: DeadlineState) -> None:
    shown = next_deadline(_case(dt.date(2026, 3, 1)), today, DUE_SOON)
    assert shown.kind is DeadlineKind.ACKNOWLEDGE
    assert shown.due_on == dt.date(2026, 3, 8)
    assert shown.state is state


def test_after_acknowledgement_the_feedback_deadline_shows() -> None:
    case = _case(
        dt.date(2026, 3, 1),
        status="acknowledged",
        acknowledged_on=dt.date(2026, 3, 10),
    )
    ack, feedback = deadlines(case, dt.date(2026, 3, 20), DUE_SOON)
    assert ack.state is DeadlineState.OVERDUE, "acknowledged on day 9: late"
    assert feedback.due_on == dt.date(2026, 6, 10)
    assert next_deadline(case, dt.date(2026, 3, 20), DUE_SOON) == feedback


def test_feedback_met_by_reply_or_closing() -> None:
    received = dt.date(2026, 3, 1)
    replied = _case(received, acknowledged_on=received, feedback_on=dt.date(2026, 4, 1))
    closed = _case(received, status="closed", closed_on=dt.date(2026, 3, 3))
    assert deadlines(replied, dt.date(2026, 9, 1), DUE_SOON)[1].state is DeadlineState.MET
    assert deadlines(closed, dt.date(2026, 9, 1), DUE_SOON)[1].state is DeadlineState.MET


# --- through the services: what intake stores, what acknowledging moves, what lists show -------

ACK_AT = dt.time(9, 30)


@pytest.mark.parametrize(
    ("received", "ack_due", "feedback_due"),
    [
        (dt.date(2028, 1, 31), dt.date(2028, 2, 7), dt.date(2028, 5, 7)),
        (dt.date(2028, 1, 24), dt.date(2028, 1, 31), dt.date(2028, 4, 30)),  # 31 Jan → 30 Apr
        (dt.date(2027, 11, 23), dt.date(2027, 11, 30), dt.date(2028, 2, 29)),  # into a leap Feb
        (dt.date(2026, 11, 23), dt.date(2026, 11, 30), dt.date(2027, 2, 28)),  # common Feb
        (dt.date(2028, 2, 22), dt.date(2028, 2, 29), dt.date(2028, 5, 29)),  # leap day itself
        (dt.date(2027, 12, 28), dt.date(2028, 1, 4), dt.date(2028, 4, 4)),  # across the year
    ],
)
def test_intake_stores_both_deadlines_across_month_ends_and_leap_years(
    portal: Portal, db: Session, received: dt.date, ack_due: dt.date, feedback_due: dt.date
) -> None:
    portal.staff("olga")
    case = db.get_one(Case, portal.submit(today=received).case_id)
    assert (case.acknowledge_due_on, case.feedback_due_on) == (ack_due, feedback_due)


@pytest.mark.parametrize(
    ("received", "acknowledged", "feedback_due"),
    [
        (dt.date(2028, 1, 31), dt.date(2028, 1, 31), dt.date(2028, 4, 30)),
        (dt.date(2027, 11, 25), dt.date(2027, 11, 30), dt.date(2028, 2, 29)),
        (dt.date(2028, 2, 28), dt.date(2028, 2, 29), dt.date(2028, 5, 29)),
        (dt.date(2028, 11, 28), dt.date(2028, 11, 30), dt.date(2029, 2, 28)),
        (dt.date(2026, 12, 30), dt.date(2027, 1, 6), dt.date(2027, 4, 6)),
    ],
)
def test_acknowledging_moves_the_stored_feedback_deadline(
    portal: Portal, db: Session, received: dt.date, acknowledged: dt.date, feedback_due: dt.date
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit(today=received)
    when = dt.datetime.combine(acknowledged, ACK_AT, dt.UTC)
    cases.acknowledge(db, olga, portal.private_key(olga), submitted.handle, when)
    case = db.get_one(Case, submitted.case_id)
    assert case.feedback_due_on == feedback_due
    ack, feedback = cases.open_case(
        db, portal.settings, olga, portal.private_key(olga), submitted.handle, acknowledged
    ).deadlines
    assert ack.state is DeadlineState.MET and ack.done_on == acknowledged
    assert feedback.due_on == feedback_due and feedback.state is DeadlineState.DUE


def test_a_one_month_policy_from_the_end_of_january(portal: Portal, db: Session) -> None:
    policy.update(db, feedback_months=1)
    db.commit()
    olga = portal.staff("olga")
    submitted = portal.submit(today=dt.date(2028, 1, 24))
    case = db.get_one(Case, submitted.case_id)
    assert (case.acknowledge_due_on, case.feedback_due_on) == (
        dt.date(2028, 1, 31),
        dt.date(2028, 2, 29),
    )
    when = dt.datetime.combine(dt.date(2028, 1, 31), ACK_AT, dt.UTC)
    cases.acknowledge(db, olga, portal.private_key(olga), submitted.handle, when)
    assert case.feedback_due_on == dt.date(2028, 2, 29)


@pytest.mark.parametrize(
    ("today", "state"),
    [
        (dt.date(2028, 2, 4), DeadlineState.DUE),
        (dt.date(2028, 2, 5), DeadlineState.DUE_SOON),  # due_soon_days = 2
        (dt.date(2028, 2, 7), DeadlineState.DUE_SOON),
        (dt.date(2028, 2, 8), DeadlineState.OVERDUE),
    ],
)
def test_the_list_shows_the_state_with_the_policy_s_due_soon_days(
    portal: Portal, db: Session, today: dt.date, state: DeadlineState
) -> None:
    olga = portal.staff("olga")
    portal.submit(today=dt.date(2028, 1, 31))
    [group] = cases.list_for(db, portal.settings, olga, today)
    [row] = group.rows
    assert row.deadline is not None
    assert (row.deadline.kind, row.deadline.due_on) == (
        DeadlineKind.ACKNOWLEDGE,
        dt.date(2028, 2, 7),
    )
    assert row.deadline.state is state


def test_due_soon_days_come_from_the_policy(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    portal.submit(today=dt.date(2028, 1, 31))
    policy.update(db, due_soon_days=5)
    db.commit()
    [group] = cases.list_for(db, portal.settings, olga, dt.date(2028, 2, 2))
    assert group.rows[0].deadline is not None
    assert group.rows[0].deadline.state is DeadlineState.DUE_SOON


def test_closed_cases_have_no_pending_deadline() -> None:
    received = dt.date(2026, 3, 1)
    closed_early = _case(received, status="closed", closed_on=dt.date(2026, 3, 3))
    closed_late = _case(received, status="closed", closed_on=dt.date(2026, 3, 20))
    ack, _ = deadlines(closed_early, dt.date(2026, 9, 1), DUE_SOON)
    assert ack.state is DeadlineState.ENDED
    ack, _ = deadlines(closed_late, dt.date(2026, 9, 1), DUE_SOON)
    assert ack.state is DeadlineState.OVERDUE, "it stayed open past the day without one"
    shown = next_deadline(closed_early, dt.date(2026, 9, 1), DUE_SOON)
    assert (shown.kind, shown.state) == (DeadlineKind.FEEDBACK, DeadlineState.MET)
