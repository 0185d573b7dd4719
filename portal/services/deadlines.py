"""Deadline arithmetic (EU 2019/1937 art. 9(1)(b) and (f)).

Acknowledge within ``acknowledge_days`` of receipt; give feedback within ``feedback_months`` of
the acknowledgement, or of the end of the acknowledgement period if none was sent.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from dataclasses import dataclass

from portal.models import Case, CaseStatus
from portal.settings import Settings


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


class DeadlineKind(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class Deadline:
    kind: DeadlineKind
    due_on: dt.date
    state: DeadlineState
    done_on: dt.date | None


def acknowledge_due(received_on: dt.date, settings: Settings) -> dt.date:
    return received_on + dt.timedelta(days=settings.acknowledge_days)


def feedback_due(
    received_on: dt.date, acknowledged_on: dt.date | None, settings: Settings
) -> dt.date:
    start = acknowledged_on or acknowledge_due(received_on, settings)
    return add_months(start, settings.feedback_months)


def _state(due: dt.date, done: dt.date | None, today: dt.date, settings: Settings) -> DeadlineState:
    if done is not None:
        return DeadlineState.MET if done <= due else DeadlineState.OVERDUE
    if today > due:
        return DeadlineState.OVERDUE
    if (due - today).days <= settings.due_soon_days:
        return DeadlineState.DUE_SOON
    return DeadlineState.DUE


def deadlines(case: Case, today: dt.date, settings: Settings) -> tuple[Deadline, Deadline]:
    ack_due = acknowledge_due(case.received_on, settings)
    fb_due = feedback_due(case.received_on, case.acknowledged_on, settings)
    # A case closed without a reply has had its feedback in the closing decision.
    fb_done = case.feedback_on or (case.closed_on if case.status == CaseStatus.CLOSED else None)
    return (
        Deadline(
            DeadlineKind.ACKNOWLEDGE,
            ack_due,
            _state(ack_due, case.acknowledged_on, today, settings),
            case.acknowledged_on,
        ),
        Deadline(DeadlineKind.FEEDBACK, fb_due, _state(fb_due, fb_done, today, settings), fb_done),
    )


def next_deadline(case: Case, today: dt.date, settings: Settings) -> Deadline:
    """The deadline a list should show: the first not yet met, else the feedback one."""
    ack, feedback = deadlines(case, today, settings)
    return ack if ack.done_on is None else feedback
