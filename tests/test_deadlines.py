"""Deadline arithmetic across month ends and leap years, and the state shown in lists."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.models import Case, CaseStatus
from portal.services.deadlines import (
    DeadlineKind,
    DeadlineState,
    add_months,
    deadlines,
    feedback_due,
    feedback_due_after_acknowledgement,
    next_deadline,
)
from portal.services.policy import PolicyValues

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
        "status": CaseStatus.NEW.value,
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
        status=CaseStatus.ACKNOWLEDGED.value,
        acknowledged_on=dt.date(2026, 3, 10),
    )
    ack, feedback = deadlines(case, dt.date(2026, 3, 20), DUE_SOON)
    assert ack.state is DeadlineState.OVERDUE, "acknowledged on day 9: late"
    assert feedback.due_on == dt.date(2026, 6, 10)
    assert next_deadline(case, dt.date(2026, 3, 20), DUE_SOON) == feedback


def test_feedback_met_by_reply_or_closing() -> None:
    received = dt.date(2026, 3, 1)
    replied = _case(received, acknowledged_on=received, feedback_on=dt.date(2026, 4, 1))
    closed = _case(received, status=CaseStatus.CLOSED.value, closed_on=dt.date(2026, 3, 3))
    assert deadlines(replied, dt.date(2026, 9, 1), DUE_SOON)[1].state is DeadlineState.MET
    assert deadlines(closed, dt.date(2026, 9, 1), DUE_SOON)[1].state is DeadlineState.MET
