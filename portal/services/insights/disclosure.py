"""Disclosure control for aggregate reports (DESIGN.md invariant 5, issues 4 and 13).

Pure functions, no Flask and no database: the insights service counts a partition of a quarter's
cases, hands it to :func:`protect_partition` and publishes exactly what the result shows.

1. **Small counts are hidden, zeros too.** A count below k (the anonymity threshold, 5 by
   default, never below 3) is never shown: 0 is hidden like 1 to k-1, because a rule that
   showed zeros would tell a reader who knows it where the hidden concerns are not.
2. **Hidden counts cannot be worked out.** When that hides one count only, or counts that add up
   to less than k, one more is hidden: the first, in an order drawn from the server's key, that
   is still shown. Nothing else depends on the counts.
3. **Rates, medians and percentiles** are shown only over groups of at least k cases
   (:func:`rate`, :func:`percentile`, :func:`median`); a share is also hidden when the part or
   the rest is a small count (1 of 6 substantiated would reveal the single case).
4. **Small units are merged.** A site or department whose headcount is below the configured
   minimum is reported as "other", together with enough other small units that "other" is not
   small itself (:func:`merge_small_groups`).

Why that is safe for a reader who knows this code, the taxonomy and the routing rules, and why
every published view is a partition by an attribute no other view has, is in
:mod:`portal.services.insights.figures` and docs/insights.md ("Who reads the figures"); the tests
replay the rule under every order (tests/invariants/test_insights_adversary.py). The two-way tables
with complementary suppression by size that issue 4 published were withdrawn in issue 13: a reader
who replays a size-driven choice could pin the counts it hid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from portal.errors import PortalError

#: The anonymity threshold may never go below this; mirrors
#: ``portal.services.configuration.policy``, which this pure module does not import (it would pull
#: in SQLAlchemy). A test keeps them equal.
MIN_THRESHOLD = 3

#: The label small units are merged into.
OTHER = "other"


class ThresholdTooLow(PortalError):
    """A threshold below :data:`MIN_THRESHOLD` was asked for."""

    def __init__(self, k: int) -> None:
        super().__init__(f"the anonymity threshold must be at least {MIN_THRESHOLD}, not {k}")
        self.k = k


class MalformedTable(PortalError):
    """The counts are not non-negative whole numbers."""


class CannotProtect(PortalError):
    """The table cannot be protected without hiding a cell the caller needs shown."""


def _check_threshold(k: int) -> None:
    if k < MIN_THRESHOLD:
        raise ThresholdTooLow(k)


def _is_small(value: int, k: int) -> bool:
    return 0 < value < k


# --- partitions: the rule every published view follows -----------------------------------------


def protect_partition(
    counts: Sequence[int], k: int, order: Sequence[int]
) -> tuple[int | None, ...]:
    """Which counts of a partition of a shown total to show (None: hidden), at threshold ``k``.

    The rule (docs/insights.md, "The rules"), the same for every view of every quarter:

    1. Every count below ``k`` is hidden, **zeros included**.
    2. If that hides exactly one count, or hidden counts that add up to less than ``k``, one
       more count is hidden: the first of ``order`` (a permutation of the indices, drawn from
       a key the reader does not have) that is still shown.

    Nothing else depends on the counts. The reader may know this rule, the code and every
    other figure; not knowing ``order``, they cannot tell the count hidden in step 2 from
    those hidden in step 1. Then every hidden count could be 0 and could be any number up to
    the sum of the hidden ones, which is at least ``k``: no hidden count is pinned, none is
    shown to be non-zero, none is shown to be small. The proof is in docs/insights.md and
    ``tests/invariants/test_insights_adversary.py`` checks it by replaying the rule under every
    order. Requires the total to be at least ``k`` (a smaller total is not published at all).
    """
    _check_threshold(k)
    values = list(counts)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise MalformedTable("counts must be non-negative whole numbers")
    if sorted(order) != list(range(len(values))):
        raise ValueError("the order must be a permutation of the indices")
    if sum(values) < k:
        raise CannotProtect("a partition of fewer than k cases is not published")
    hidden = {i for i, value in enumerate(values) if value < k}
    if hidden and (len(hidden) == 1 or sum(values[i] for i in hidden) < k):
        hidden.add(next(i for i in order if i not in hidden))
    return tuple(None if i in hidden else value for i, value in enumerate(values))


# --- rates, medians, small units ---------------------------------------------------------------


def rate(numerator: int, denominator: int, k: int, *, per: int = 1) -> float | None:
    """``per`` × numerator / denominator, or None when it would reveal a small group.

    Hidden when the denominator is below k, when the numerator is a small count (1..k-1), and,
    for a share of the same cases, when the rest (denominator - numerator) is a small count:
    "5 of 6 substantiated" reveals the one that was not.
    """
    _check_threshold(k)
    if numerator < 0 or denominator < 0:
        raise ValueError("counts cannot be negative")
    if denominator < k or _is_small(numerator, k):
        return None
    if numerator <= denominator and _is_small(denominator - numerator, k):
        return None
    return per * numerator / denominator


def percentile(values: Sequence[float], q: float, k: int) -> float | None:
    """The q-th percentile (0..100, linear interpolation), or None over fewer than k values."""
    _check_threshold(k)
    if not 0 <= q <= 100:
        raise ValueError("a percentile lies between 0 and 100")
    if len(values) < k:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return float(ordered[below] + (ordered[above] - ordered[below]) * fraction)


def median(values: Sequence[float], k: int) -> float | None:
    """The median, or None over fewer than k values."""
    return percentile(values, 50, k)


def merge_small_groups(headcounts: Mapping[str, int], minimum: int) -> dict[str, str]:
    """Map each unit to the label it is reported under: itself, or :data:`OTHER`.

    Units below ``minimum`` go to "other". If "other" is then still below the minimum (one small
    unit alone would be recognisable under the new name), the smallest remaining units join it
    until it is not, or until everything is "other". A unit already called "other" is part of
    that group. Ties are broken by name, so the result is deterministic.
    """
    if minimum < 1:
        raise ValueError("the minimum headcount must be at least 1")
    if any(count < 0 for count in headcounts.values()):
        raise ValueError("headcounts cannot be negative")
    merged = {unit for unit, count in headcounts.items() if count < minimum or unit == OTHER}
    kept = sorted(
        (unit for unit in headcounts if unit not in merged),
        key=lambda unit: (headcounts[unit], unit),
    )
    other_size = sum(headcounts[unit] for unit in merged)
    while merged and other_size < minimum and kept:
        unit = kept.pop(0)
        merged.add(unit)
        other_size += headcounts[unit]
    return {unit: OTHER if unit in merged else unit for unit in headcounts}
