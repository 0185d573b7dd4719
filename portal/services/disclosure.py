"""Disclosure control for aggregate reports (DESIGN.md invariant 5, issue 4).

Pure functions, no Flask and no database: the insights service builds a table of counts, hands
it to :func:`protect` and publishes exactly what the result shows.

The rules, in plain words
-------------------------

*A table* is a grid of counts (for example category × quarter, or site × category) published
together with its row totals, column totals and grand total. Totals are cells too: they can be
shown or hidden like any other.

1. **Small counts are hidden.** A count of 1 to k-1 (k is the anonymity threshold, 5 by
   default, never below 3) is never shown, whether it is a cell or a total. This is *primary*
   suppression.
2. **Zeros are shown.** "Nobody" points at no one, and statistics agencies do the same (CMS
   and CDC WONDER hide counts from 1 upward and publish zeros). Hiding zeros as a rule would not
   help either: a zero cannot go lower, so it gives little cover to a neighbouring small count.
   A zero may still be hidden as a complementary cell when that is the cheapest cover.
3. **Hidden counts cannot be worked out from what is shown.** Hiding one small cell is not
   enough: its row total minus the other cells of the row gives it back. So further cells are
   hidden (*complementary* suppression), the cheapest first (smallest counts, preferably in rows
   and columns that already have hidden cells, totals only when cells alone cannot do it),
   until an exact check of everything published says, for every hidden count:

   * it could have at least two different values (nothing hidden is pinned down), and
   * if it was hidden for being small, the published figures are consistent both with it being
     **0** and with it being **k or more**. A reader cannot tell whether anybody is in that cell,
     nor that it is a small group.

   "Consistent with" means: there is a table of non-negative whole numbers that agrees with every
   shown cell and every shown total and has that value in the hidden cell. The check computes,
   for each hidden count, the exact range of values it could take (see :func:`audit`).
4. **Same input, same output.** Every choice is made in a fixed order, so viewing a table twice
   never reveals more than viewing it once.
5. **Rates, medians and percentiles** are shown only over groups of at least k cases
   (:func:`rate`, :func:`percentile`, :func:`median`); a share is also hidden when the part or
   the rest is a small count (1 of 6 substantiated would reveal the single case).
6. **Small units are merged.** A site or department whose headcount is below the configured
   minimum is reported as "other", together with enough other small units that "other" is not
   small itself (:func:`merge_small_groups`).

How the exact check works
-------------------------

Write the table with its totals as an (m+1) × (n+1) grid in which the totals are entered with a
minus sign: then every grid row and every grid column sums to zero. The hidden entries are the
edges of a bipartite graph between grid rows and grid columns. Two tables that agree on all
shown entries differ by a *circulation* on that graph: change a hidden entry by +t and some
other hidden entry in its row must change by -t, and so on around a cycle. Without the "no
negative counts" rule, a hidden entry could change exactly when it lies on a cycle of hidden
entries (the classical result for two-way tables). With that rule a cycle is not enough: a
cycle through cells that are already 0 can pin a cell (see the tests). So the check is a
maximum-flow computation: how far an entry can go up (or down) is the maximum flow around the
rest of the graph, where each hidden entry lets flow pass one way up to its current value (a
count cannot fall below 0) and the other way without limit. The constraint matrix of a two-way
table is totally unimodular, so this range is exact for whole numbers and every whole number
inside it is possible.

What this module does not cover
-------------------------------

It protects **one table at a time** against someone who sees that table. Two tables that share
cells (category × quarter and category × site for the same quarter; months and the quarter they
make up; overlapping periods) are *linked*, and hiding each one safely does not make their
combination safe. :mod:`portal.services.insights` publishes only tables whose shared figures
are kept shown (``protect(..., keep=...)``) and form a tree, which makes each table's check
cover the combination; its docstring gives the argument.

It also assumes the reader does not know which hidden cells were hidden for being small (the
result does not say so: never label them), and that nothing outside the published figures
bounds the hidden ones (a reader who knows a headcount, or that they filed two reports
themselves, knows more). The choice of complementary cells follows a public rule, and the check
does not model a reader who reasons about that rule. Suppression can hide much of a sparse
table; coarser buckets and merged units are the cure, not a lower k.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from portal.services.errors import PortalError

#: The anonymity threshold may never go below this; mirrors ``portal.services.policy``, which
#: this pure module does not import (it would pull in SQLAlchemy). A test keeps them equal.
MIN_THRESHOLD = 3

#: The label small units are merged into.
OTHER = "other"


class ThresholdTooLow(PortalError):
    """A threshold below :data:`MIN_THRESHOLD` was asked for."""

    def __init__(self, k: int) -> None:
        super().__init__(f"the anonymity threshold must be at least {MIN_THRESHOLD}, not {k}")
        self.k = k


class MalformedTable(PortalError):
    """The counts are not a non-empty rectangle of non-negative integers."""


class CannotProtect(PortalError):
    """The table cannot be protected without hiding a cell the caller needs shown."""


def _check_threshold(k: int) -> None:
    if k < MIN_THRESHOLD:
        raise ThresholdTooLow(k)


@dataclass(frozen=True)
class Cell:
    """A position in a table; ``None`` stands for "the total over this dimension".

    ``Cell(i, j)`` is an inner cell, ``Cell(i, None)`` the total of row i, ``Cell(None, j)`` the
    total of column j and ``Cell(None, None)`` the grand total.
    """

    row: int | None
    column: int | None

    @property
    def is_total(self) -> bool:
        return self.row is None or self.column is None


GRAND_TOTAL = Cell(None, None)


@dataclass(frozen=True)
class Table:
    """A two-way table of non-negative counts with the totals published beside it."""

    counts: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not self.counts or not self.counts[0]:
            raise MalformedTable("a table needs at least one row and one column")
        width = len(self.counts[0])
        for row in self.counts:
            if len(row) != width:
                raise MalformedTable("every row needs the same number of columns")
            for value in row:
                # bool is an int in Python; a True in a count table is a bug upstream.
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise MalformedTable(f"counts must be non-negative integers, not {value!r}")

    @classmethod
    def of(cls, rows: Iterable[Iterable[int]]) -> Table:
        return cls(tuple(tuple(row) for row in rows))

    @property
    def n_rows(self) -> int:
        return len(self.counts)

    @property
    def n_columns(self) -> int:
        return len(self.counts[0])

    @property
    def row_totals(self) -> tuple[int, ...]:
        return tuple(sum(row) for row in self.counts)

    @property
    def column_totals(self) -> tuple[int, ...]:
        return tuple(sum(column) for column in zip(*self.counts, strict=True))

    @property
    def grand_total(self) -> int:
        return sum(self.row_totals)

    def value(self, cell: Cell) -> int:
        if cell.row is None:
            return self.grand_total if cell.column is None else self.column_totals[cell.column]
        if cell.column is None:
            return self.row_totals[cell.row]
        return self.counts[cell.row][cell.column]

    def cells(self) -> list[Cell]:
        """Every position, inner cells first, then row totals, column totals, grand total."""
        rows: list[int | None] = [*range(self.n_rows), None]
        columns: list[int | None] = [*range(self.n_columns), None]
        return sorted((Cell(i, j) for i in rows for j in columns), key=_order_key)


@dataclass(frozen=True)
class Interval:
    """The values a hidden count could have, given everything published; ``high`` None = no
    upper bound."""

    low: int
    high: int | None

    @property
    def pinned(self) -> bool:
        return self.high == self.low


@dataclass(frozen=True)
class ProtectedTable:
    """What may be published of a table: shown values, and ``None`` where suppressed."""

    table: Table
    k: int
    suppressed: frozenset[Cell]

    def shown(self, cell: Cell) -> int | None:
        return None if cell in self.suppressed else self.table.value(cell)

    @property
    def rows(self) -> tuple[tuple[int | None, ...], ...]:
        return tuple(
            tuple(self.shown(Cell(i, j)) for j in range(self.table.n_columns))
            for i in range(self.table.n_rows)
        )

    @property
    def row_totals(self) -> tuple[int | None, ...]:
        return tuple(self.shown(Cell(i, None)) for i in range(self.table.n_rows))

    @property
    def column_totals(self) -> tuple[int | None, ...]:
        return tuple(self.shown(Cell(None, j)) for j in range(self.table.n_columns))

    @property
    def grand_total(self) -> int | None:
        return self.shown(GRAND_TOTAL)


# --- the exact check --------------------------------------------------------------------------
#
# Grid coordinates: rows 0..m-1 are the table's rows, row m holds the column totals; columns
# 0..n-1 are the table's columns, column n holds the row totals. Graph nodes: grid row r is node
# r, grid column c is node (m + 1) + c.


def _grid(table: Table, cell: Cell) -> tuple[int, int]:
    row = table.n_rows if cell.row is None else cell.row
    column = table.n_columns if cell.column is None else cell.column
    return row, column


def _signed_is_negative(cell: Cell) -> bool:
    # Row and column totals enter the grid with a minus sign; cells and the grand total with a
    # plus sign (row m: -C_1 ... -C_n + G = 0; column n: -R_1 ... -R_m + G = 0).
    return (cell.row is None) != (cell.column is None)


class _Flow:
    """Residual capacities for max flow on the graph of hidden entries (Edmonds-Karp)."""

    def __init__(self, n_nodes: int) -> None:
        self.capacity: list[dict[int, int]] = [{} for _ in range(n_nodes)]

    def add(self, source: int, target: int, capacity: int) -> None:
        self.capacity[source][target] = self.capacity[source].get(target, 0) + capacity
        self.capacity[target].setdefault(source, 0)

    def max_flow(self, source: int, sink: int, limit: int) -> int:
        """Flow from source to sink, stopping once ``limit`` is reached."""
        capacity = [dict(arcs) for arcs in self.capacity]
        flow = 0
        while flow < limit:
            parent: dict[int, int] = {source: source}
            queue = deque([source])
            while queue and sink not in parent:
                node = queue.popleft()
                for nxt in sorted(capacity[node]):
                    if capacity[node][nxt] > 0 and nxt not in parent:
                        parent[nxt] = node
                        queue.append(nxt)
            if sink not in parent:
                break
            push = limit - flow
            node = sink
            while node != source:
                push = min(push, capacity[parent[node]][node])
                node = parent[node]
            node = sink
            while node != source:
                capacity[parent[node]][node] -= push
                capacity[node][parent[node]] += push
                node = parent[node]
            flow += push
        return flow


def _slack(table: Table, suppressed: frozenset[Cell], cell: Cell, limit: int) -> tuple[int, int]:
    """How far ``cell`` (hidden) can go (down, up), each capped at ``limit``."""
    m, n = table.n_rows, table.n_columns
    flow = _Flow(m + n + 2)
    for other in suppressed:
        if other == cell:
            continue
        r, c = _grid(table, other)
        value = table.value(other)
        # In grid (signed) terms an entry y may rise without limit and fall by at most its
        # value, or the other way round for the minus-signed totals. Raising y by t is flow t
        # from its row node to its column node; lowering it is flow the other way.
        if _signed_is_negative(other):
            flow.add(r, m + 1 + c, value)
            flow.add(m + 1 + c, r, limit)
        else:
            flow.add(r, m + 1 + c, limit)
            flow.add(m + 1 + c, r, value)
    r, c = _grid(table, cell)
    # Changing this entry by +t (signed) must be balanced by a flow of t from its column node
    # back to its row node through the other hidden entries, and -t by the reverse.
    signed_up = flow.max_flow(m + 1 + c, r, limit)
    signed_down = flow.max_flow(r, m + 1 + c, limit)
    value = table.value(cell)
    if _signed_is_negative(cell):
        # The true count is -y: a signed rise is a fall of the count.
        return min(signed_up, value), signed_down
    return min(signed_down, value), signed_up


def audit(table: Table, suppressed: Iterable[Cell]) -> dict[Cell, Interval]:
    """The exact range of values each hidden count could take, given what else is shown."""
    hidden = frozenset(suppressed)
    # A finite maximum flow is at most the sum of the finite capacities (the values).
    unbounded = sum(table.value(cell) for cell in hidden) + 1
    result: dict[Cell, Interval] = {}
    for cell in sorted(hidden, key=_order_key):
        down, up = _slack(table, hidden, cell, unbounded)
        value = table.value(cell)
        result[cell] = Interval(value - down, None if up >= unbounded else value + up)
    return result


def _is_small(value: int, k: int) -> bool:
    return 0 < value < k


def _shortfall(table: Table, suppressed: frozenset[Cell], cell: Cell, k: int) -> int:
    """How much protection ``cell`` still lacks; 0 when it is protected (rule 3)."""
    value = table.value(cell)
    if _is_small(value, k):
        need_down, need_up = value, k - value
        down, up = _slack(table, suppressed, cell, max(need_down, need_up))
        return max(0, need_down - down) + max(0, need_up - up)
    down, up = _slack(table, suppressed, cell, 1)
    return 0 if down + up >= 1 else 1


def _order_key(cell: Cell) -> tuple[bool, int, int]:
    """Inner cells in reading order, then row totals, column totals, the grand total."""
    far = 1 << 30
    return (
        cell.is_total,
        far if cell.row is None else cell.row,
        far if cell.column is None else cell.column,
    )


def _cell_at(table: Table, r: int, c: int) -> Cell:
    return Cell(None if r == table.n_rows else r, None if c == table.n_columns else c)


def protect(table: Table, k: int, *, keep: Iterable[Cell] = ()) -> ProtectedTable:
    """Decide which cells and totals of ``table`` are shown at threshold ``k`` (rules 1-4).

    ``keep`` names cells that must stay shown: totals that other tables publish too (a quarter's
    total, a category's count), so that linked tables agree and each can be checked on its own.
    Raises :class:`CannotProtect` when a kept cell is small, or when the table cannot be made
    safe without hiding one.
    """
    _check_threshold(k)
    kept = frozenset(keep)
    everything = table.cells()
    suppressed = frozenset(cell for cell in everything if _is_small(table.value(cell), k))
    if suppressed & kept:
        raise CannotProtect("a count that must be shown is below the threshold")
    while True:
        weak = _first_unprotected(table, suppressed, k)
        if weak is None:
            return ProtectedTable(table, k, suppressed)
        extra = _complement(table, suppressed, weak, k, kept)
        if not extra:
            raise CannotProtect("no further cell can be hidden without hiding a kept one")
        suppressed = suppressed | extra


def _first_unprotected(table: Table, suppressed: frozenset[Cell], k: int) -> Cell | None:
    # Small counts first, in table order, so the repair order never depends on set order.
    ordered = sorted(suppressed, key=lambda c: (not _is_small(table.value(c), k), _order_key(c)))
    for cell in ordered:
        if _shortfall(table, suppressed, cell, k):
            return cell
    return None


def _complement(
    table: Table, suppressed: frozenset[Cell], weak: Cell, k: int, kept: frozenset[Cell]
) -> frozenset[Cell]:
    """Further cells to hide so that ``weak`` gains protection.

    Candidates are rectangles through ``weak``: the other corner in its row, the one in its
    column and the opposite one. Adding a rectangle opens a cycle that lets the hidden values
    move together. The cheapest rectangle that fully protects ``weak`` wins; if none does, the
    one that helps most; if none helps, the cheapest, which still adds a hidden cell next to it
    and so makes progress (every round hides at least one more cell, so this ends).
    """
    m, n = table.n_rows, table.n_columns
    r, c = _grid(table, weak)
    lines_used = {("r", _grid(table, s)[0]) for s in suppressed} | {
        ("c", _grid(table, s)[1]) for s in suppressed
    }
    options: list[tuple[tuple[int, int, int, int, int, int], frozenset[Cell]]] = []
    for r2 in range(m + 1):
        for c2 in range(n + 1):
            if r2 == r or c2 == c:
                continue
            corners = [_cell_at(table, r, c2), _cell_at(table, r2, c), _cell_at(table, r2, c2)]
            new = frozenset(x for x in corners if x not in suppressed)
            if not new or new & kept:
                continue
            reuse = sum(
                (("r", _grid(table, x)[0]) in lines_used)
                + (("c", _grid(table, x)[1]) in lines_used)
                for x in new
            )
            cost = (
                sum(x.is_total for x in new),  # totals are what readers rely on most
                sum(table.value(x) for x in new),  # smallest first: least information lost
                len(new),
                -reuse,  # prefer rows and columns that already have hidden cells
                r2,
                c2,
            )
            options.append((cost, new))
    if not options:
        # The row and column of ``weak`` are entirely hidden; hide the cheapest remaining cell.
        rest = [x for x in table.cells() if x not in suppressed and x not in kept]
        rest.sort(key=lambda x: (x.is_total, table.value(x), _order_key(x)))
        return frozenset(rest[:1])
    options.sort(key=lambda option: option[0])
    before = _shortfall(table, suppressed, weak, k)
    best: tuple[int, frozenset[Cell]] | None = None
    for _cost, new in options:
        after = _shortfall(table, suppressed | new, weak, k)
        if after == 0:
            return new
        if after < before and (best is None or after < best[0]):
            best = (after, new)
    return best[1] if best is not None else options[0][1]


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
    ``tests/test_insights_adversary.py`` checks it by replaying the rule under every order.
    Requires the total to be at least ``k`` (a smaller total is not published at all).
    """
    _check_threshold(k)
    values = list(counts)
    if any(not isinstance(v, int) or v < 0 for v in values):
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
