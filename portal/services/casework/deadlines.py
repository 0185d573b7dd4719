"""Deadline arithmetic (EU 2019/1937 art. 9(1)(b) and (f)).

Acknowledge within ``acknowledge_days`` of receipt; give feedback within ``feedback_months`` of
the acknowledgement, or of the end of the acknowledgement period if none was sent. Both due days
are computed from the policy when a case arrives and stored on it (``Case.acknowledge_due_on``,
``Case.feedback_due_on``), so a later policy change does not move the deadlines of cases already
received, and lists and reminders can select on them in SQL.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from dataclasses import dataclass

from portal.models import Case
from portal.services.configuration.policy import PolicyValues


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day of the month ``months`` later, clamped to the month's last day (31 Jan + 1 month
    = 28 or 29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class DeadlineState(enum.StrEnum):
    DUE = "due"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    MET = "met"
    ENDED = "ended"  # the case was closed before this fell due, without it being done


class DeadlineKind(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class Deadline:
    kind: DeadlineKind
    due_on: dt.date
    state: DeadlineState
    done_on: dt.date | None


def acknowledge_due(received_on: dt.date, policy: PolicyValues) -> dt.date:
    return received_on + dt.timedelta(days=policy.acknowledge_days)


def feedback_due(
    received_on: dt.date, acknowledged_on: dt.date | None, policy: PolicyValues
) -> dt.date:
    start = acknowledged_on or acknowledge_due(received_on, policy)
    return add_months(start, policy.feedback_months)


def feedback_due_after_acknowledgement(case: Case, acknowledged_on: dt.date) -> dt.date:
    """The feedback deadline once the acknowledgement is sent: the same number of months the
    case was given when it arrived, counted from the acknowledgement instead of from the end of
    the acknowledgement period."""
    months = _months_between(case.acknowledge_due_on, case.feedback_due_on)
    return add_months(acknowledged_on, months)


def _months_between(start: dt.date, end: dt.date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    return max(1, months)


def _state(due: dt.date, done: dt.date | None, today: dt.date, due_soon_days: int) -> DeadlineState:
    if done is not None:
        return DeadlineState.MET if done <= due else DeadlineState.OVERDUE
    if today > due:
        return DeadlineState.OVERDUE
    if (due - today).days <= due_soon_days:
        return DeadlineState.DUE_SOON
    return DeadlineState.DUE


def _acknowledgement_state(case: Case, today: dt.date, due_soon_days: int) -> DeadlineState:
    due, closed = case.acknowledge_due_on, case.closed_on
    if case.acknowledged_on is None and closed is not None:
        # Closed without an acknowledgement: nothing is pending any more; it was late only if
        # the case stayed open past the due day.
        return DeadlineState.OVERDUE if closed > due else DeadlineState.ENDED
    return _state(due, case.acknowledged_on, today, due_soon_days)


def deadlines(case: Case, today: dt.date, due_soon_days: int) -> tuple[Deadline, Deadline]:
    """Both deadlines of a case, from the due days it carries. ``closed_on`` is set exactly
    while the case is closed (reopening clears it)."""
    ack_due = case.acknowledge_due_on
    fb_due = case.feedback_due_on
    # A case closed without a reply has had its feedback in the closing decision.
    fb_done = case.feedback_on or case.closed_on
    return (
        Deadline(
            DeadlineKind.ACKNOWLEDGE,
            ack_due,
            _acknowledgement_state(case, today, due_soon_days),
            case.acknowledged_on,
        ),
        Deadline(
            DeadlineKind.FEEDBACK,
            fb_due,
            _state(fb_due, fb_done, today, due_soon_days),
            fb_done,
        ),
    )


def next_deadline(case: Case, today: dt.date, due_soon_days: int) -> Deadline:
    """The deadline a list should show: the acknowledgement until it is sent (while the case is
    open), then the feedback one."""
    ack, feedback = deadlines(case, today, due_soon_days)
    return ack if ack.done_on is None and case.closed_on is None else feedback
