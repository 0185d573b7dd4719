"""The disclosure-control engine: what is shown, and that nothing hidden can be worked out.

The safety check here is independent of the engine's max-flow audit: an exact simplex over
fractions on the linear system an attacker can write down from the published figures, whose
optimal solutions are then verified as whole-number tables that agree with everything shown.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.services import disclosure, policy
from portal.services.disclosure import (
    GRAND_TOTAL,
    OTHER,
    Cell,
    Interval,
    MalformedTable,
    Table,
    ThresholdTooLow,
    audit,
    median,
    merge_small_groups,
    percentile,
    protect,
    rate,
)
from tests.exact_lp import simplex_max as _simplex_max

# --- an independent exact check: the attacker's linear program ----------------------------------


def _attacker_intervals(table: Table, hidden: frozenset[Cell]) -> dict[Cell, Interval]:
    """The exact range of each hidden value, from the published figures only."""
    counts = table.counts
    m, n = len(counts), len(counts[0])
    row_totals = [sum(row) for row in counts]
    column_totals = [sum(counts[i][j] for i in range(m)) for j in range(n)]
    grand = sum(row_totals)
    truth: dict[Cell, int] = {Cell(i, j): counts[i][j] for i in range(m) for j in range(n)}
    truth |= {Cell(i, None): row_totals[i] for i in range(m)}
    truth |= {Cell(None, j): column_totals[j] for j in range(n)}
    truth[GRAND_TOTAL] = grand
    variables = sorted(
        hidden, key=lambda c: (c.row is None, c.row or 0, c.column is None, c.column or 0)
    )
    index = {cell: i for i, cell in enumerate(variables)}
    # Each equation: a list of (cell, coefficient) summing to zero.
    equations = [[(Cell(i, j), 1) for j in range(n)] + [(Cell(i, None), -1)] for i in range(m)]
    equations += [[(Cell(i, j), 1) for i in range(m)] + [(Cell(None, j), -1)] for j in range(n)]
    equations.append([(Cell(i, None), 1) for i in range(m)] + [(GRAND_TOTAL, -1)])
    equations.append([(Cell(None, j), 1) for j in range(n)] + [(GRAND_TOTAL, -1)])
    a: list[list[Fraction]] = []
    b: list[Fraction] = []
    for equation in equations:
        row = [Fraction(0)] * len(variables)
        rhs = Fraction(0)
        for cell, coefficient in equation:
            if cell in index:
                row[index[cell]] += coefficient
            else:
                rhs -= coefficient * truth[cell]
        if any(row):
            a.append(row)
            b.append(rhs)
        else:
            assert rhs == 0

    def verified(x: list[Fraction]) -> dict[Cell, int]:
        # An optimum of this (totally unimodular) system is a whole-number table; check it is
        # one, and that it agrees with everything published, so the bound is really attainable.
        assert all(v.denominator == 1 and v >= 0 for v in x)
        values = dict(truth) | {cell: int(x[index[cell]]) for cell in variables}
        for equation in equations:
            assert sum(values[cell] * coefficient for cell, coefficient in equation) == 0
        return values

    result = {}
    for cell in variables:
        objective = [Fraction(0)] * len(variables)
        objective[index[cell]] = Fraction(1)
        top = _simplex_max(a, b, objective) if a else None
        objective[index[cell]] = Fraction(-1)
        bottom = (
            _simplex_max(a, b, objective) if a else (Fraction(0), [Fraction(0)] * len(variables))
        )
        assert bottom is not None
        low = verified(bottom[1])[cell]
        high = None if top is None else verified(top[1])[cell]
        result[cell] = Interval(low, high)
    return result


# --- property tests ---------------------------------------------------------------------------

tables = st.integers(1, 5).flatmap(
    lambda width: st.lists(
        st.lists(st.integers(0, 20) | st.integers(0, 5), min_size=width, max_size=width),
        min_size=1,
        max_size=5,
    )
)


@settings(max_examples=100, deadline=None)
@given(rows=tables, k=st.integers(3, 6))
def test_protected_tables_are_safe(rows: list[list[int]], k: int) -> None:
    table = Table.of(rows)
    result = protect(table, k)

    # (a) nothing shown is a small count, cells or totals.
    shown = [v for row in result.rows for v in row]
    shown += [*result.row_totals, *result.column_totals, result.grand_total]
    assert not any(v is not None and 0 < v < k for v in shown)

    # (c) the totals shown are the true sums.
    for i, total in enumerate(result.row_totals):
        assert total in (None, sum(rows[i]))
    for j, total in enumerate(result.column_totals):
        assert total in (None, sum(row[j] for row in rows))
    assert result.grand_total in (None, sum(map(sum, rows)))
    for i, row in enumerate(result.rows):
        assert all(v in (None, rows[i][j]) for j, v in enumerate(row))

    # (b) every hidden value has at least two possible values, and a small one could be 0 or k+,
    # by an exact check that does not use the engine; and the engine's own audit agrees.
    intervals = _attacker_intervals(table, result.suppressed)
    for cell, interval in intervals.items():
        assert interval.high is None or interval.high > interval.low, (cell, interval)
        if 0 < table.value(cell) < k:
            assert interval.low == 0, (cell, interval)
            assert interval.high is None or interval.high >= k, (cell, interval)
    assert audit(table, result.suppressed) == intervals

    # (d) same input, same output.
    assert protect(Table.of([list(r) for r in rows]), k) == result


@settings(max_examples=150, deadline=None)
@given(
    rows=tables,
    picks=st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 4)), max_size=12),
)
def test_audit_is_exact_for_any_hidden_pattern(
    rows: list[list[int]], picks: list[tuple[int, int]]
) -> None:
    """The engine's max-flow audit equals the attacker's exact LP, pinned cells included."""
    table = Table.of(rows)
    m, n = table.n_rows, table.n_columns
    hidden = frozenset(
        Cell(None if i < 0 else i, None if j < 0 else j) for i, j in picks if i < m and j < n
    )
    assert audit(table, hidden) == _attacker_intervals(table, hidden)


# --- the classic examples -----------------------------------------------------------------------


def test_a_single_small_cell_hides_a_rectangle() -> None:
    table = Table.of([[20, 30, 40], [25, 2, 35], [30, 40, 50]])
    result = protect(table, 5)
    # The small cell, the cheapest partner in its row and in its column, and the fourth corner.
    assert result.suppressed == {Cell(1, 1), Cell(1, 0), Cell(0, 1), Cell(0, 0)}
    assert result.rows == ((None, None, 40), (None, None, 35), (30, 40, 50))
    assert result.row_totals == (90, 62, 120)
    assert result.column_totals == (75, 72, 125)
    assert result.grand_total == 272
    assert audit(table, result.suppressed)[Cell(1, 1)] == Interval(0, 27)


def test_two_hidden_cells_per_line_are_not_enough() -> None:
    """Every row and column with a hidden cell has two or more, yet the cell joining two
    separate blocks is a bridge: rows 0-1 minus columns 0-1 give it back exactly."""
    table = Table.of([[9, 9, 9, 9], [9, 9, 3, 9], [9, 9, 9, 9], [9, 9, 9, 9]])
    block = {Cell(i, j) for i in (0, 1) for j in (0, 1)} | {
        Cell(i, j) for i in (2, 3) for j in (2, 3)
    }
    hidden = block | {Cell(1, 2)}
    assert audit(table, hidden)[Cell(1, 2)] == Interval(3, 3)
    assert _attacker_intervals(table, frozenset(hidden))[Cell(1, 2)] == Interval(3, 3)
    assert audit(table, hidden)[Cell(0, 0)] == Interval(0, 18)
    result = protect(table, 5)
    assert audit(table, result.suppressed)[Cell(1, 2)] == Interval(0, 12)


def test_a_cycle_of_hidden_cells_can_still_pin_a_value() -> None:
    """The textbook criterion (derivable iff on no cycle) ignores that counts are >= 0."""
    table = Table.of([[2, 0, 7], [0, 0, 7], [7, 7, 7]])
    hidden = {Cell(0, 0), Cell(0, 1), Cell(1, 0), Cell(1, 1)}
    # The four hidden cells form a cycle, but moving along it would make a zero negative.
    assert audit(table, hidden)[Cell(0, 0)] == Interval(2, 2)
    result = protect(table, 5)
    assert audit(table, result.suppressed)[Cell(0, 0)].low == 0


def test_zeros_are_shown() -> None:
    table = Table.of([[0, 10, 10], [10, 0, 10], [10, 10, 0]])
    result = protect(table, 5)
    assert result.suppressed == frozenset()
    assert result.rows[0][0] == 0


def test_a_small_total_is_hidden_and_protected() -> None:
    # Row 0 totals 3: its total is hidden, and so are its cells and whatever keeps them open.
    table = Table.of([[0, 3, 0], [10, 10, 10], [10, 10, 10]])
    result = protect(table, 5)
    assert result.row_totals[0] is None
    assert result.rows[0][1] is None
    intervals = audit(table, result.suppressed)
    assert intervals[Cell(0, None)].low == 0
    assert intervals[Cell(0, 1)].low == 0


def test_a_small_grand_total_hides_the_whole_table() -> None:
    table = Table.of([[1, 0], [0, 2]])
    result = protect(table, 5)
    assert result.grand_total is None
    assert result.rows == ((None, 0), (0, None))
    assert all(v is None for v in (*result.row_totals, *result.column_totals))


def test_a_single_row_hides_column_totals_with_its_cells() -> None:
    # In a one-row table each column total is its cell; hiding the cell means hiding the total.
    table = Table.of([[2, 10, 10]])
    result = protect(table, 5)
    assert result.rows[0][0] is None
    assert result.column_totals[0] is None
    assert sum(v is None for v in result.rows[0]) >= 2
    assert result.row_totals == (22,)


def test_threshold_never_below_three() -> None:
    assert disclosure.MIN_THRESHOLD == policy.MIN_THRESHOLD
    with pytest.raises(ThresholdTooLow):
        protect(Table.of([[1]]), 2)
    with pytest.raises(ThresholdTooLow):
        rate(5, 10, 2)


@pytest.mark.parametrize("rows", [[], [[]], [[1, 2], [3]], [[-1]], [[True]]])
def test_malformed_tables_are_refused(rows: list[list[int]]) -> None:
    with pytest.raises(MalformedTable):
        Table.of(rows)


# --- rates, medians, small units ----------------------------------------------------------------


def test_rates_need_k_cases_and_no_small_part() -> None:
    assert rate(2, 4, 5) is None  # fewer than k cases
    assert rate(2, 10, 5) is None  # the numerator is a small count
    assert rate(8, 10, 5) is None  # the rest (2) is a small count
    assert rate(5, 10, 5) == 0.5
    assert rate(0, 10, 5) == 0.0
    assert rate(10, 10, 5) == 1.0
    assert rate(30, 600, 5, per=100) == 5.0  # reports per 100 employees
    with pytest.raises(ValueError, match="negative"):
        rate(-1, 10, 5)


def test_medians_and_percentiles_need_k_values() -> None:
    assert median([1, 2, 3, 4], 5) is None
    assert median([5, 1, 4, 2, 3], 5) == 3.0
    assert median([1, 2, 3, 4, 5, 6], 5) == 3.5
    assert percentile([1, 2, 3, 4, 5], 90, 5) == pytest.approx(4.6)
    assert percentile([1, 2, 3, 4, 5], 0, 5) == 1.0
    assert percentile([1, 2, 3, 4, 5], 100, 5) == 5.0
    assert percentile([1, 2, 3], 90, 5) is None
    with pytest.raises(ValueError, match="between"):
        percentile([1, 2, 3, 4, 5], 101, 5)


def test_small_units_are_merged_into_other() -> None:
    headcounts = {"Berlin": 120, "Lyon": 8, "Oslo": 4, "Porto": 3}
    assert merge_small_groups(headcounts, 10) == {
        "Berlin": "Berlin",
        "Lyon": OTHER,
        "Oslo": OTHER,
        "Porto": OTHER,
    }


def test_other_is_not_left_small() -> None:
    # Porto alone would just be renamed; the smallest unit above the minimum joins it.
    headcounts = {"Berlin": 120, "Lyon": 40, "Porto": 3}
    assert merge_small_groups(headcounts, 10) == {
        "Berlin": "Berlin",
        "Lyon": OTHER,
        "Porto": OTHER,
    }
    assert merge_small_groups({"Berlin": 120, "Lyon": 40}, 10) == {
        "Berlin": "Berlin",
        "Lyon": "Lyon",
    }
    assert set(merge_small_groups({"A": 2, "B": 3}, 10).values()) == {OTHER}


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 50)), st.integers(1, 30))
def test_merged_groups_are_never_small(headcounts: dict[str, int], minimum: int) -> None:
    mapping = merge_small_groups(headcounts, minimum)
    assert mapping.keys() == headcounts.keys()
    sizes: dict[str, int] = {}
    for unit, label in mapping.items():
        sizes[label] = sizes.get(label, 0) + headcounts[unit]
        assert label in (unit, OTHER)
    everything_merged = all(label == OTHER for label in mapping.values())
    for label, size in sizes.items():
        assert size >= minimum or (label == OTHER and everything_merged)
