"""The organisation's case-handling policy (one row): deadlines, the anonymity threshold and
the insight rules (whole numbers within limits), and switches such as whether an attachment
that cannot be cleaned may be sent as it is."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from portal.errors import InvalidInput
from portal.i18n.wording import N_
from portal.models import Policy

POLICY_ID = 1
#: The anonymity threshold may never go below this (DESIGN.md invariant 5).
MIN_THRESHOLD = 3
#: Smallest and largest retention period, in days (the policy's and each outcome's).
RETENTION_DAYS = (30, 36_500)


@dataclass(frozen=True)
class PolicyValues:
    acknowledge_days: int = 7
    feedback_months: int = 3
    due_soon_days: int = 2
    anonymity_threshold: int = 5
    insights_min_headcount: int = 20
    signal_threshold: int = 5
    attachments_keep_uncleaned: bool = False
    retention_days: int = 730
    retention_warning_days: int = 30


# (field, smallest, largest): the law's deadlines are upper bounds; longer ones are refused.
LIMITS = {
    "acknowledge_days": (1, 7),
    "feedback_months": (1, 3),
    "due_soon_days": (0, 30),
    "anonymity_threshold": (MIN_THRESHOLD, 100),
    "insights_min_headcount": (1, 100_000),
    "signal_threshold": (MIN_THRESHOLD, 10_000),
    # A closed case is kept at least a month (the warning must come first) and at most 100 years.
    "retention_days": RETENTION_DAYS,
    "retention_warning_days": (1, 365),
}

#: The policy's yes/no switches (not in the taxonomy file: set in the admin console).
SWITCHES = ("attachments_keep_uncleaned",)


def current(session: Session) -> Policy:
    row = session.get(Policy, POLICY_ID)
    if row is None:
        defaults = PolicyValues()
        row = Policy(id=POLICY_ID, **defaults.__dict__)
        session.add(row)
        session.flush()
    return row


def values(session: Session) -> PolicyValues:
    row = current(session)
    return PolicyValues(**{name: getattr(row, name) for name in (*LIMITS, *SWITCHES)})


def check(name: str, value: object) -> int:
    """A policy value, or InvalidInput naming the field and the allowed range."""
    low, high = LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(
            name,
            N_(
                "%(name)s must be a whole number from %(low)d to %(high)d.",
                name=name,
                low=low,
                high=high,
            ),
        )
    return value


def update(session: Session, **changes: int | bool) -> dict[str, tuple[int, int]]:
    """Apply changes; return {field: (old, new)} for those that changed (for the audit log)."""
    unknown = set(changes) - set(LIMITS) - set(SWITCHES)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "unknown policy field")
    row = current(session)
    changed = {}
    for name, value in changes.items():
        if name in SWITCHES:
            if not isinstance(value, bool):
                # The console's checkbox always gives a bool: anything else is a caller's bug.
                raise TypeError(f"policy switch {name} takes a bool, not {type(value).__name__}")
            new: int = value
        else:
            new = check(name, value)
        old = getattr(row, name)
        if old != new:
            setattr(row, name, new)
            changed[name] = (old, new)
    if row.retention_warning_days >= row.retention_days:
        # The warning must come while the case is still closed and kept, not after the purge.
        raise InvalidInput(
            "retention_warning_days",
            N_(
                "retention_warning_days must be below retention_days (%(days)d).",
                days=row.retention_days,
            ),
        )
    if row.signal_threshold < row.anonymity_threshold:
        # An alert names a group; it must never name one smaller than a report could show.
        raise InvalidInput(
            "signal_threshold",
            N_(
                "signal_threshold must not be below anonymity_threshold (%(threshold)d).",
                threshold=row.anonymity_threshold,
            ),
        )
    session.flush()
    return changed
