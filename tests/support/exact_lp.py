"""An exact linear-programming oracle over fractions, shared by the disclosure tests.

It is deliberately independent of the engine (no max flow, no floats): two-phase tableau simplex
with Bland's rule, so every bound it reports is exact and every optimum comes with the vertex
that attains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


class Polytope:
    """{x >= 0 : a.x = b}, assumed non-empty. Phase 1 runs once; each :meth:`maximize` reuses
    the feasible basis it found, so many objectives over one system stay cheap."""

    def __init__(self, a: Sequence[Sequence[Fraction]], b: Sequence[Fraction], n: int) -> None:
        self.n = n
        rows = []
        for row, rhs in zip(a, b, strict=True):
            sign = -1 if rhs < 0 else 1
            rows.append([sign * Fraction(v) for v in row] + [sign * Fraction(rhs)])
        m = len(rows)
        # Phase 1: one artificial variable per row, columns n..n+m-1.
        self.tableau = [
            row[:n] + [Fraction(1 if i == j else 0) for j in range(m)] + [row[n]]
            for i, row in enumerate(rows)
        ]
        self.basis = list(range(n, n + m))
        phase1 = [Fraction(0)] * n + [Fraction(-1)] * m
        assert self._run(self.tableau, self.basis, phase1, n + m)
        assert all(self.tableau[i][-1] == 0 for i in range(m) if self.basis[i] >= n), "infeasible"
        # Drive artificial variables out of the basis (or drop redundant rows), then forget them.
        for i in range(m - 1, -1, -1):
            if self.basis[i] >= n:
                col = next((j for j in range(n) if self.tableau[i][j] != 0), None)
                if col is None:
                    del self.tableau[i]
                    del self.basis[i]
                else:
                    self._pivot(self.tableau, self.basis, i, col)
        self.tableau = [[*row[:n], row[-1]] for row in self.tableau]

    @staticmethod
    def _pivot(tableau: list[list[Fraction]], basis: list[int], r: int, col: int) -> None:
        p = tableau[r][col]
        tableau[r] = [v / p for v in tableau[r]]
        pivot_row = tableau[r]
        for i, row in enumerate(tableau):
            if i != r and row[col] != 0:
                f = row[col]
                tableau[i] = [vi - f * vr for vi, vr in zip(row, pivot_row, strict=True)]
        basis[r] = col

    @classmethod
    def _run(
        cls, tableau: list[list[Fraction]], basis: list[int], cost: list[Fraction], allowed: int
    ) -> bool:
        """Maximise cost over columns < allowed; False if unbounded."""
        m = len(tableau)
        while True:
            basic_cost = [cost[basis[i]] for i in range(m)]
            entering = None
            for j in range(allowed):
                reduced = cost[j] - sum(
                    (bc * tableau[i][j] for i, bc in enumerate(basic_cost) if bc),
                    Fraction(0),
                )
                if reduced > 0:
                    entering = j
                    break
            if entering is None:
                return True
            candidates = [
                (tableau[i][-1] / tableau[i][entering], basis[i], i)
                for i in range(m)
                if tableau[i][entering] > 0
            ]
            if not candidates:
                return False
            _, _, leaving = min(candidates)
            cls._pivot(tableau, basis, leaving, entering)

    def maximize(self, c: Sequence[Fraction]) -> tuple[Fraction, list[Fraction]] | None:
        """max c.x and a vertex attaining it; None if unbounded."""
        tableau = [list(row) for row in self.tableau]
        basis = list(self.basis)
        cost = [Fraction(v) for v in c]
        if not self._run(tableau, basis, cost, self.n):
            return None
        x = [Fraction(0)] * self.n
        for i, col in enumerate(basis):
            x[col] = tableau[i][-1]
        return sum((ci * xi for ci, xi in zip(cost, x, strict=True)), Fraction(0)), x

    def minimize(self, c: Sequence[Fraction]) -> tuple[Fraction, list[Fraction]]:
        """min c.x for c >= 0 (always bounded below by 0) and a vertex attaining it."""
        result = self.maximize([-Fraction(v) for v in c])
        assert result is not None
        return -result[0], result[1]


def simplex_max(
    a: list[list[Fraction]], b: list[Fraction], c: list[Fraction]
) -> tuple[Fraction, list[Fraction]] | None:
    """Maximise c.x subject to a.x = b, x >= 0 (feasible by assumption); None if unbounded."""
    return Polytope(a, b, len(c)).maximize(c)
