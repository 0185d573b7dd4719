"""Joint safety of everything published for a quarter, on random small case sets.

DB-free: hand-built ``insights._Row`` and ``insights._Taxonomy`` values go straight into
``insights.volume_release`` and ``insights.progress_release``. Every expected figure here is
recomputed from the rows without calling the insights helpers, and every safety bound comes from
an exact simplex over fractions (``tests/support/exact_lp.py``), independent of the engine.

The attacker model (property 3). A reader of a combination of views knows the set of
non-negative integer *atomic* tables consistent with every number shown: atoms are the cells of
the product of the dimensions the views in the combination involve, each shown number is one
linear equation over them. For every hidden number we compute its exact range over the LP
relaxation of that system (rationals), then certify each end of the range with an explicit
integer atomic table (see :func:`_witness`), so the range checked is the integer attacker's
range exactly, not only a relaxation of it.

This reader uses the published figures only. The reader who also knows the rule that chose the
hidden cells, the routing rules and the workflow is played in
``tests/invariants/test_insights_adversary.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from portal.services.insights import calendar as insights_calendar
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights.figures import _Row, _Taxonomy
from portal.services.insights.releases import Label, Release, View
from tests.support import insights_helpers
from tests.support.exact_lp import Polytope

QUARTER = insights_calendar.Quarter(2026, 1)
OUTCOMES = [
    (1, Label("upheld", "Upheld"), True),
    (2, Label("not-upheld", "Not upheld"), False),
    (3, Label("withdrawn", "Withdrawn"), False),
]
MIN_HEADCOUNT = 10
ORDER = insights_helpers.order(QUARTER)
#: Release days: before and after the acknowledgement and feedback views are published.
AS_OF_DAYS = [dt.date(2026, 4, 1), dt.date(2026, 5, 1), dt.date(2026, 7, 1), dt.date(2026, 8, 1)]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- random quarters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    rows: list[_Row]
    taxonomy: _Taxonomy
    k: int
    as_of: dt.date

    def volume(self, order: insights.ComplementOrder | None = None) -> Release:
        return insights.volume_release(
            self.rows, QUARTER, self.as_of, self.k, self.taxonomy, order or ORDER
        )

    def progress(self, order: insights.ComplementOrder | None = None) -> Release:
        return insights.progress_release(
            self.rows, QUARTER, self.as_of, self.k, self.taxonomy, order or ORDER
        )


def _later(day: dt.date, delay: int | None) -> dt.date | None:
    return None if delay is None else day + dt.timedelta(days=delay)


def _make_row(
    month: int,
    day: int,
    category: int,
    site: int | None,
    department: int | None,
    anonymous: bool,
    returned: bool,
    acknowledge_delay: int | None,
    close_delay: int | None,
    outcome: int | None,
    feedback_delay: int | None,
) -> _Row:
    received = dt.date(2026, month, day)
    return _Row(
        received_on=received,
        category=category,
        site=site,
        department=department,
        anonymous=anonymous,
        returned=anonymous and returned,
        acknowledged_on=_later(received, acknowledge_delay),
        acknowledge_due_on=received + dt.timedelta(days=7),
        closed_on=_later(received, close_delay),
        outcome=outcome,
        feedback_on=_later(received, feedback_delay),
        feedback_due_on=received + dt.timedelta(days=60),
    )


@st.composite
def scenarios(draw: st.DrawFn, min_rows: int = 0) -> Scenario:
    n_categories = draw(st.integers(2, 4))
    order = draw(st.permutations(range(n_categories)))
    heads = st.sampled_from([None, 0, 4, 7, 12, 40])
    sites = draw(st.lists(heads, min_size=2, max_size=3))
    departments = draw(st.lists(heads, min_size=2, max_size=3))
    n_outcomes = draw(st.integers(1, 3))
    taxonomy = _Taxonomy(
        categories={10 + i: Label(f"cat{i}", f"Category {i}") for i in range(n_categories)},
        category_order={10 + i: order[i] for i in range(n_categories)},
        units={
            "site": [(20 + i, Label(f"site{i}", f"Site {i}"), h) for i, h in enumerate(sites)],
            "department": [
                (30 + i, Label(f"dep{i}", f"Department {i}"), h) for i, h in enumerate(departments)
            ],
        },
        outcomes=OUTCOMES[:n_outcomes],
        min_headcount=MIN_HEADCOUNT,
    )
    # Few distinct values per attribute, so that cells are a mix of zeros, small and large counts.
    delays = st.none() | st.sampled_from([1, 6, 10, 40, 80])
    row = st.builds(
        _make_row,
        st.integers(1, 3),
        st.sampled_from([1, 15, 28]),
        st.sampled_from(sorted(taxonomy.categories)),
        st.none() | st.sampled_from([20 + i for i in range(len(sites))]),
        st.none() | st.sampled_from([30 + i for i in range(len(departments))]),
        st.booleans(),
        st.booleans(),
        delays,
        delays,
        st.none() | st.sampled_from([1, 2, 3, 99]),
        delays,
    )
    rows = draw(st.lists(row, min_size=min_rows, max_size=40))
    k = draw(st.integers(3, 5))
    as_of = draw(st.sampled_from(AS_OF_DAYS))
    return Scenario(rows, taxonomy, k, as_of)


# --- an independent recomputation ---------------------------------------------------------------


def _merge(sizes: Mapping[str, int], minimum: int, eligible: Iterable[str]) -> set[str]:
    """The documented merge of units by configured headcount: those below the minimum, then the
    smallest others until "other" is not below it (ties by name)."""
    merged = {name for name in eligible if sizes[name] < minimum}
    rest = sorted((n for n in eligible if n not in merged), key=lambda n: (sizes[n], n))
    size = sum(sizes[n] for n in merged)
    while merged and size < minimum and rest:
        name = rest.pop(0)
        merged.add(name)
        size += sizes[name]
    return merged


def _deadline_class(done: dt.date | None, due: dt.date, as_of: dt.date) -> str:
    return "on_time" if done is not None and done < as_of and done <= due else "not_on_time"


@dataclass(frozen=True)
class Expected:
    cases: list[dict[str, str]]  # one dict per case: dimension -> the code it is shown under
    labels: dict[str, list[str]]  # dimension -> the codes of its rows/columns, in order
    close_days: list[float]


def _expected(s: Scenario) -> Expected:
    tax = s.taxonomy
    # Categories are never merged: every category of the taxonomy is a row, whatever the data.
    category_code = {cid: label.code for cid, label in tax.categories.items()}
    labels: dict[str, list[str]] = {
        "month": ["2026-01", "2026-02", "2026-03"],
        "anonymity": ["named", "anonymous_returned", "anonymous_silent"],
        "category": [
            tax.categories[c].code
            for c in sorted(tax.categories, key=lambda c: tax.category_order[c])
        ],
        "acknowledgement": ["on_time", "not_on_time"],
        "feedback": ["on_time", "not_on_time"],
    }
    unit_code: dict[str, dict[int | None, str]] = {}
    for kind in ("site", "department"):
        units = tax.units[kind]
        heads = {str(uid): h for uid, _l, h in units if h is not None}
        merged = _merge(heads, MIN_HEADCOUNT, heads)
        unit_code[kind] = {None: "not-given"} | {
            uid: ("other" if str(uid) in merged else label.code) for uid, label, _h in units
        }
        labels[kind] = [label.code for uid, label, _h in units if str(uid) not in merged]
        # "other" is a column as soon as any unit is merged (configuration, not data), even when
        # the merged headcounts sum to 0.
        labels[kind] += ["other"] if merged else []
        labels[kind] += ["not-given"]
    known_outcomes = {oid: label.code for oid, label, _s in tax.outcomes}
    cases = []
    for r in s.rows:
        closed = r.closed_on is not None and r.closed_on < s.as_of
        cases.append(
            {
                "month": f"2026-{r.received_on.month:02d}",
                "anonymity": "named"
                if not r.anonymous
                else ("anonymous_returned" if r.returned else "anonymous_silent"),
                "category": category_code[r.category],
                "site": unit_code["site"][r.site],
                "department": unit_code["department"][r.department],
                "outcome": "open"
                if not closed
                else known_outcomes.get(r.outcome if r.outcome is not None else -1, "none"),
                "acknowledgement": _deadline_class(
                    r.acknowledged_on, r.acknowledge_due_on, s.as_of
                ),
                "feedback": _deadline_class(r.feedback_on, r.feedback_due_on, s.as_of),
            }
        )
    labels["outcome"] = [label.code for _o, label, _s in tax.outcomes] + ["none", "open"]
    close_days = [
        float((r.closed_on - r.received_on).days)
        for r in s.rows
        if r.closed_on is not None and r.closed_on < s.as_of
    ]
    return Expected(cases, labels, close_days)


# --- the published numbers as linear facts about cases ------------------------------------------

ONE_WAY = {
    "months": "month",
    "anonymity": "anonymity",
    "category": "category",
    "site": "site",
    "department": "department",
    "outcome": "outcome",
    "acknowledgement": "acknowledgement",
    "feedback": "feedback",
}

Predicate = tuple[tuple[str, frozenset[str]], ...]  # every (dimension, allowed codes) must hold


@dataclass(frozen=True)
class Fact:
    view: str
    what: str
    predicate: Predicate
    shown: int | None


def _pred(**codes: str) -> Predicate:
    return tuple(sorted((dim, frozenset([code])) for dim, code in codes.items()))


def _facts(view: View) -> list[Fact]:
    """Every number the view publishes (shown or hidden), with the cases it counts."""
    assert not view.is_cross, "every published view is a partition by one attribute"
    out = [Fact(view.name, "total", (), view.total)]
    dim = ONE_WAY[view.name]
    for label, row in zip(view.rows, view.cells, strict=True):
        out.append(Fact(view.name, label.code, _pred(**{dim: label.code}), row[0]))
    return out


def _all_facts(volume: Release, progress: Release) -> list[Fact]:
    return [f for r in (volume, progress) for v in r.views.values() for f in _facts(v)]


def _holds(predicate: Predicate, case: Mapping[str, str]) -> bool:
    return all(case[dim] in codes for dim, codes in predicate)


def _count(predicate: Predicate, cases: Iterable[Mapping[str, str]]) -> int:
    return sum(_holds(predicate, c) for c in cases)


def _durations_facts(progress: Release, k: int) -> list[tuple[Predicate, bool]]:
    """A shown median tells that at least k values lie under it: (predicate, True) reads "at
    least k such cases". A missing one says nothing here: medians are shown exactly when the
    number under them is determined by the views and at least k (checked in the recomputation
    test), so a reader learns from a gap only what the counts already tell."""
    outcome = progress.views["outcome"]
    closed = (("outcome", frozenset(r.code for r in outcome.rows if r.code != "open")),)
    return [(closed, True)] if progress.durations["close"].median is not None else []


# --- property 1 and 2: what is shown is true and never small -----------------------------------


def _quantile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) with linear interpolation between order statistics."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _units_of_headcount_zero() -> Scenario:
    """Every configured site has headcount 0 (and one site none): the merged "other" column is
    there though its headcount sums to 0, as configuration, not data, decides."""
    tax = _Taxonomy(
        categories={10: Label("cat0", "Category 0"), 11: Label("cat1", "Category 1")},
        category_order={10: 0, 11: 1},
        units={
            "site": [(20, Label("site0", "Site 0"), 0), (21, Label("site1", "Site 1"), None)],
            "department": [(30, Label("dep0", "Dep 0"), 0), (31, Label("dep1", "Dep 1"), 0)],
        },
        outcomes=OUTCOMES[:1],
        min_headcount=MIN_HEADCOUNT,
    )
    rows = [
        _make_row(1, 1, 10 + i % 2, [20, 21, None][i % 3], 30, False, False, 1, 1, 1, 1)
        for i in range(9)
    ]
    return Scenario(rows, tax, 3, dt.date(2026, 4, 1))


@SETTINGS
@given(scenarios())
@example(_units_of_headcount_zero())
def test_every_shown_number_is_recomputed_from_the_rows(s: Scenario) -> None:
    volume, progress = s.volume(), s.progress()
    expected = _expected(s)
    total = len(s.rows)
    if total < s.k:
        assert volume.total is None and progress.total is None
        assert not volume.views and not progress.views and not progress.durations
        return
    assert volume.total == progress.total == total
    for release in (volume, progress):
        for view in release.views.values():
            assert [r.code for r in view.rows] == expected.labels[ONE_WAY[view.name]], view.name
            # T, the only figure views share, is always shown.
            assert view.total == total
            for fact in _facts(view):
                truth = _count(fact.predicate, expected.cases)
                assert fact.shown in (None, truth), (fact, truth)
    for case in expected.cases:  # every case is counted under a row that exists
        for dim, codes in expected.labels.items():
            assert case[dim] in codes, (dim, case[dim])
    # A star around T: no two views are about a common attribute, so T is the only number they
    # share; and no view is about the queue, which routing ties to the category and the site.
    owners: dict[str, str] = {}
    for release in (volume, progress):
        for name in release.views:
            for dim in _view_dims(name):
                assert owners.setdefault(dim, name) == name, (dim, name, owners[dim])
    assert "queue" not in owners
    # The deadline views appear on days fixed by the quarter, whatever the cases.
    assert ("acknowledgement" in progress.views) == (s.as_of >= dt.date(2026, 5, 1))
    assert ("feedback" in progress.views) == (s.as_of >= dt.date(2026, 8, 1))
    assert set(progress.durations) == {"close"}
    # Durations: median and 90th percentile over at least k values whose number the views
    # determine (the exact LP range of that number is a single value), else nothing.
    for name, values, view_name, under in (
        ("close", expected.close_days, "outcome", expected.labels["outcome"][:-1]),
    ):
        dim = ONE_WAY[view_name]
        model = _model(
            (dim,),
            expected.labels,
            [f for f in _facts(progress.views[view_name]) if f.shown is not None],
            [],
            s.k,
        )
        low, high, _ = model.range(((dim, frozenset(under)),))
        assert low <= len(values) <= high
        shown = progress.durations[name]
        if len(values) < s.k or low != high:
            assert shown.median is None and shown.p90 is None
        else:
            assert shown.median == pytest.approx(statistics.median(values))
            assert shown.p90 == pytest.approx(_quantile(values, 90))


def _small(value: int | None, k: int) -> bool:
    return value is not None and 0 < value < k


@SETTINGS
@given(scenarios())
def test_no_small_group_is_shown(s: Scenario) -> None:
    volume, progress = s.volume(), s.progress()
    for release in (volume, progress):
        assert not _small(release.total, s.k)
        for view in release.views.values():
            for fact in _facts(view):
                assert not _small(fact.shown, s.k), fact
    if volume.total is None:
        return
    cases = _expected(s).cases
    substantiated = [label.code for _o, label, found in s.taxonomy.outcomes if found]
    kpi = insights.kpis(volume, progress, substantiated)

    def count(**codes: Iterable[str]) -> int:
        predicate = tuple((dim, frozenset(c)) for dim, c in codes.items())
        return _count(predicate, cases)

    anonymous = count(anonymity=["anonymous_returned", "anonymous_silent"])
    checks = [
        (kpi.anonymous_share, anonymous, len(cases)),
        (kpi.follow_up_rate, count(anonymity=["anonymous_returned"]), anonymous),
        (
            kpi.substantiation_rate,
            count(outcome=substantiated),
            count(outcome=[label.code for _o, label, _s in s.taxonomy.outcomes]),
        ),
        (
            kpi.acknowledged_on_time,
            count(acknowledgement=["on_time"]),
            len(cases),
        ),
        (
            kpi.feedback_on_time,
            count(feedback=["on_time"]),
            len(cases),
        ),
    ]
    for value, numerator, denominator in checks:
        if value is None:
            continue
        assert denominator >= s.k, (value, numerator, denominator)
        assert not _small(numerator, s.k) and not _small(denominator - numerator, s.k)
        assert value == pytest.approx(numerator / denominator)
    assert kpi.open_cases in (None, count(outcome=["open"]))
    assert not _small(kpi.open_cases, s.k)


# --- property 3: the attacker's exact ranges over combinations of views -------------------------


@dataclass(frozen=True)
class Model:
    """The attacker's linear system for a combination of views, over atoms of ``dims``."""

    dims: tuple[str, ...]
    atoms: list[tuple[str, ...]]  # the atoms not pinned to 0 by a shown zero
    n_slack: int  # slack variables of the inequalities, after the atoms
    polytope: Polytope

    def vector(self, predicate: Predicate) -> list[Fraction]:
        atoms = [Fraction(int(self._holds(predicate, a))) for a in self.atoms]
        return atoms + [Fraction(0)] * self.n_slack

    def _holds(self, predicate: Predicate, atom: tuple[str, ...]) -> bool:
        return _holds(predicate, dict(zip(self.dims, atom, strict=True)))

    def range(self, predicate: Predicate) -> tuple[Fraction, Fraction, list[Fraction]]:
        """(min, max, a vertex attaining max) of the number of cases matching ``predicate``."""
        c = self.vector(predicate)
        low, _ = self.polytope.minimize(c)
        top = self.polytope.maximize(c)
        assert top is not None, "a shown total bounds every count"
        return low, top[0], top[1]


def _model(
    dims: Sequence[str],
    labels: Mapping[str, Sequence[str]],
    shown: Sequence[Fact],
    at_least: Sequence[tuple[Predicate, bool]],
    k: int,
) -> Model:
    atoms = list(itertools.product(*(labels[d] for d in dims)))
    zero = [f.predicate for f in shown if f.shown == 0]
    atoms = [a for a in atoms if not any(_holds(p, dict(zip(dims, a, strict=True))) for p in zero)]
    n_slack = len(at_least)
    a_rows: list[list[Fraction]] = []
    b: list[Fraction] = []
    for fact in shown:
        assert fact.shown is not None
        row = [
            Fraction(int(_holds(fact.predicate, dict(zip(dims, a, strict=True))))) for a in atoms
        ]
        if any(row):
            a_rows.append(row + [Fraction(0)] * n_slack)
            b.append(Fraction(fact.shown))
        else:
            assert fact.shown == 0
    # Inequalities from what a shown or missing median says: sum - slack = k or sum + slack = k-1.
    for i, (predicate, enough) in enumerate(at_least):
        row = [Fraction(int(_holds(predicate, dict(zip(dims, a, strict=True))))) for a in atoms]
        slack = [Fraction(0)] * n_slack
        slack[i] = Fraction(-1 if enough else 1)
        a_rows.append(row + slack)
        b.append(Fraction(k if enough else k - 1))
    n = len(atoms) + n_slack
    polytope = Polytope(a_rows, b, n)
    return Model(tuple(dims), atoms, n_slack, polytope)


# Why the LP relaxation is the right check, and how it is made exact for whole numbers.
#
# The LP range of a hidden number contains its integer range (every integer table is an LP
# point), so "LP says it is pinned" is already a finding, while "LP says it could be 0 or k" needs
# an integer table to be a real guarantee. We get that without trusting integrality in general:
# the views form a star around T (always shown), every other attribute in one view only. A
# hidden number lies in one view; its range over that view alone is a single-sum system, totally
# unimodular, so the simplex optimum over it is a whole-number table (asserted). :func:`_witness`
# then builds an explicit list of cases that shows that table in its view and the true figures in
# every other view of the combination, and the test checks that the list agrees with every shown
# number of the combination. So each end of the joint LP range is attained by a real integer
# case set: LP range == integer range, exactly.


def _witness(
    view_dims: Sequence[str],
    table: Mapping[tuple[str, ...], int],
    truth: Sequence[Mapping[str, str]],
) -> list[dict[str, str]]:
    """Cases whose ``view_dims`` table is ``table`` and that agree with ``truth`` on every other
    attribute, hence on every other view of a star around T: each case keeps what it has and
    is dealt one cell of ``table`` for the attributes of the changed view."""
    assert sum(table.values()) == len(truth)
    deal = [key for key, v in sorted(table.items()) for _ in range(v)]
    cases = [dict(c) for c in truth]
    for case, key in zip(cases, deal, strict=True):
        case.update(zip(view_dims, key, strict=True))
    return cases


COMBINATIONS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    # (views, atom dimensions)
    (("category", "site", "department"), ("category", "site", "department")),
    (("category", "site", "months"), ("category", "site", "month")),
    (("category", "department", "anonymity"), ("category", "department", "anonymity")),
    (("months", "anonymity", "category"), ("month", "anonymity", "category")),
    (("months", "site", "department"), ("month", "site", "department")),
    (("outcome", "acknowledgement", "feedback"), ("outcome", "acknowledgement", "feedback")),
    (("anonymity", "outcome", "acknowledgement"), ("anonymity", "outcome", "acknowledgement")),
    (("category", "outcome", "feedback"), ("category", "outcome", "feedback")),
]


def _view_dims(name: str) -> tuple[str, ...]:
    return (ONE_WAY[name],)


def _check_combination(
    s: Scenario,
    volume: Release,
    progress: Release,
    views: Sequence[str],
    dims: Sequence[str],
) -> None:
    expected = _expected(s)
    released = {**volume.views, **progress.views}
    # A deadline view is not published before its day (fixed by the quarter): skip it then.
    facts = [f for name in views if name in released for f in _facts(released[name])]
    shown = [f for f in facts if f.shown is not None]
    hidden = [f for f in facts if f.shown is None]
    at_least = [
        (p, enough)
        for p, enough in _durations_facts(progress, s.k)
        if all(d in dims for d, _c in p)
    ]
    joint = _model(dims, expected.labels, shown, at_least, s.k)
    single: dict[str, Model] = {}
    for fact in hidden:
        truth = _count(fact.predicate, expected.cases)
        low, high, _ = joint.range(fact.predicate)
        assert low <= truth <= high
        assert low.denominator == 1 and high.denominator == 1, (fact, low, high)
        # At least two values, and a small count could be 0 and could be k or more.
        assert high > low, (views, fact, low, high)
        if 0 < truth < s.k:
            assert low == 0, (views, fact, low, high)
            assert high >= s.k, (views, fact, low, high)
        # Integer certificate for both ends (see the comment above _witness).
        owner = fact.view
        vdims = _view_dims(owner)
        if owner not in single:
            own = [f for f in _facts(released[owner]) if f.shown is not None]
            own_ineq = [(p, e) for p, e in at_least if all(d in vdims for d, _c in p)]
            single[owner] = _model(vdims, expected.labels, own, own_ineq, s.k)
        model = single[owner]
        for sign in (1, -1):
            c = [sign * v for v in model.vector(fact.predicate)]
            best = model.polytope.maximize(c)
            assert best is not None
            x = best[1][: len(model.atoms)]
            assert all(v.denominator == 1 for v in x), "a totally unimodular view"
            table = {atom: int(v) for atom, v in zip(model.atoms, x, strict=True)}
            cases = _witness(vdims, table, expected.cases)
            for other in shown:
                assert _count(other.predicate, cases) == other.shown, (fact, other)
            for predicate, enough in at_least:
                assert (_count(predicate, cases) >= s.k) == enough
            value = _count(fact.predicate, cases)
            assert value == (high if sign == 1 else low), (fact, value, low, high)


@SETTINGS
@given(scenarios(min_rows=3))
def test_views_published_together_reveal_no_small_group(s: Scenario) -> None:
    volume, progress = s.volume(), s.progress()
    if volume.total is None:
        return
    for views, dims in COMBINATIONS:
        _check_combination(s, volume, progress, views, dims)


@SETTINGS
@given(scenarios(min_rows=3))
def test_all_views_of_both_releases_together_are_as_safe_as_each_alone(s: Scenario) -> None:
    """Every view of the volume and progress releases at once (atoms would be the product of
    all nine dimensions, too many for an LP): the joint range of a hidden number lies inside
    its range over its own view, and both ends of that range are attained by an explicit case
    set that agrees with every shown number of both releases. So the joint range is exactly
    the single-view range, which must be safe."""
    volume, progress = s.volume(), s.progress()
    if volume.total is None:
        return
    expected = _expected(s)
    released = {**volume.views, **progress.views}
    facts = _all_facts(volume, progress)
    shown = [f for f in facts if f.shown is not None]
    at_least = _durations_facts(progress, s.k)
    single: dict[str, Model] = {}
    for fact in (f for f in facts if f.shown is None):
        truth = _count(fact.predicate, expected.cases)
        owner = fact.view
        vdims = _view_dims(owner)
        if owner not in single:
            own = [f for f in _facts(released[owner]) if f.shown is not None]
            own_ineq = [(p, e) for p, e in at_least if all(d in vdims for d, _c in p)]
            single[owner] = _model(vdims, expected.labels, own, own_ineq, s.k)
        model = single[owner]
        ends = []
        for sign in (1, -1):
            best = model.polytope.maximize([sign * v for v in model.vector(fact.predicate)])
            assert best is not None
            x = best[1][: len(model.atoms)]
            assert all(v.denominator == 1 for v in x), "a totally unimodular view"
            cases = _witness(
                vdims, dict(zip(model.atoms, map(int, x), strict=True)), expected.cases
            )
            for other in shown:
                assert _count(other.predicate, cases) == other.shown, (fact, other)
            for predicate, _enough in at_least:
                assert _count(predicate, cases) >= s.k
            ends.append(_count(fact.predicate, cases))
        high, low = ends
        assert low <= truth <= high
        assert high > low, (fact, low, high)
        if 0 < truth < s.k:
            assert low == 0 and high >= s.k, (fact, low, high)


# --- property 4: derived figures are determined by shown ones -----------------------------------


@SETTINGS
@given(scenarios(min_rows=3), st.data())
def test_derived_figures_add_nothing(s: Scenario, data: st.DataObject) -> None:
    volume, progress = s.volume(), s.progress()
    if volume.total is None:
        return
    expected = _expected(s)
    for view in (
        *[volume.views[n] for n in insights_releases.VOLUME_VIEWS],
        *progress.views.values(),
    ):
        dim = ONE_WAY[view.name]
        codes = [r.code for r in view.rows]
        subset = data.draw(st.lists(st.sampled_from(codes), unique=True), label=view.name)
        predicate = ((dim, frozenset(subset)),)
        shown = [f for f in _facts(view) if f.shown is not None]
        model = _model((dim,), expected.labels, shown, [], s.k)
        low, high, _ = model.range(predicate)
        found = insights.subset_count(view, subset)
        if found is not None:
            assert low == high == found, (view.name, subset, low, high, found)
        parts = [view.value(code) for code in subset]
        direct = insights.derived_sum(parts)
        if direct is not None:
            assert low == high == direct
        else:
            assert None in parts


# --- property 5: determinism ----------------------------------------------------------------------


@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_same_cases_same_release(s: Scenario, rnd: random.Random) -> None:
    shuffled = list(s.rows)
    rnd.shuffle(shuffled)
    again = Scenario(shuffled, s.taxonomy, s.k, s.as_of)
    assert s.volume().to_json() == again.volume().to_json()
    assert s.progress().to_json() == again.progress().to_json()
    assert Release.from_json(s.volume().to_json()).to_json() == s.volume().to_json()


# --- findings: minimal examples of disclosures the properties above found (fixed) ---------------
#
# Kept as plain tests so that the exact cases stay covered whatever hypothesis happens to draw.


def _simple_taxonomy() -> _Taxonomy:
    return _Taxonomy(
        categories={10: Label("cat0", "Category 0"), 11: Label("cat1", "Category 1")},
        category_order={10: 0, 11: 1},
        units={
            "site": [(20, Label("site0", "Site 0"), None), (21, Label("site1", "Site 1"), None)],
            "department": [(30, Label("dep0", "Dep 0"), None), (31, Label("dep1", "Dep 1"), None)],
        },
        outcomes=OUTCOMES[:1],
        min_headcount=MIN_HEADCOUNT,
    )


def test_finding_a_shown_median_must_not_bound_hidden_counts() -> None:
    """FINDING 1. A median was shown as soon as at least k values lay under it, even when their
    number was hidden: then showing it told the reader "at least k". First seen with the days to
    acknowledge (on time 3, late 2, overdue 3, not yet due 7: the median said on_time + late >=
    5, hence overdue <= 3, a small group that could not be k or more). Here the same with the
    days to close: upheld 4, closed without outcome 1, open 2, all hidden; 5 closed cases would
    give a median, which would tell upheld + none >= 5 and so open <= 2. A median is shown only
    when the number of values under it is itself shown (derivable from shown counts) and at
    least k, as the module docstring promises; the days to acknowledge are no longer
    published at all (their number, acknowledged so far, is no published figure)."""
    classes = [(1, 1, 4), (None, 1, 1), (None, None, 2)]  # (outcome, close delay, n)
    rows = [
        _make_row(3, 1, 10, None, None, False, False, 1, delay, outcome, None)
        for outcome, delay, n in classes
        for _ in range(n)
    ]
    s = Scenario(rows, _simple_taxonomy(), 5, dt.date(2026, 4, 1))
    progress = s.progress()
    assert progress.views["outcome"].column() == (None, None, None)
    assert progress.durations == {"close": insights_releases.Durations(None, None)}
    _check_combination(s, s.volume(), progress, ("outcome",), ("outcome",))


def test_finding_rows_do_not_depend_on_the_data() -> None:
    """FINDING 2. The outcome view had a "closed without outcome" row only when such a case
    existed, so a hidden count in that row was known to be at least 1: a small group revealed by
    the row being there. The row is now always listed."""
    base = [_make_row(1, 1, 10, None, None, False, False, None, None, None, None)] * 5
    without = Scenario(base, _simple_taxonomy(), 3, dt.date(2026, 4, 1))
    closed = _make_row(1, 1, 10, None, None, False, False, None, 1, None, None)
    with_one = Scenario([*base, closed], _simple_taxonomy(), 3, dt.date(2026, 4, 1))
    rows = [[r.code for r in s.progress().views["outcome"].rows] for s in (without, with_one)]
    assert rows[0] == rows[1] == ["upheld", "none", "open"]
    assert with_one.progress().views["outcome"].value("none") is None


# --- finding 3 (fixed): a reader who knows the rules ---------------------------------------------


def _compositions(total: int, parts: int) -> Iterable[tuple[int, ...]]:
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def _first(view: str, index: int) -> insights.ComplementOrder:
    """An order of complements that takes row ``index`` of ``view`` first (then the true order),
    and the true order for every other view. The order comes from the server's key, which the
    reader does not have: to them, any row may come first."""

    def order(name: str, codes: Sequence[str]) -> list[int]:
        rest = [i for i in ORDER(name, codes) if not (name == view and i == index)]
        return [index, *rest] if name == view else rest

    return order


def _worlds(s: Scenario) -> Iterable[tuple[tuple[int, ...], Release]]:
    """Every case set that differs from the true one only in the categories of its cases (as
    counts per category, in taxonomy id order), with its volume release under every order of
    complements the reader cannot rule out (only the first row of the order can matter: one
    complement at most is taken)."""
    ids = sorted(s.taxonomy.categories)
    for split in _compositions(len(s.rows), len(ids)):
        deal = [c for c, n in zip(ids, split, strict=True) for _ in range(n)]
        rows = [dataclasses.replace(r, category=c) for r, c in zip(s.rows, deal, strict=True)]
        world = Scenario(rows, s.taxonomy, s.k, s.as_of)
        for index in range(len(ids)):
            yield split, world.volume(_first("category", index))


def _category_values(s: Scenario) -> dict[int, set[int]]:
    """For each category, every count it could have for a reader who replays every rule of the
    publication (the code itself, suppression included, under any key) on the case sets of
    :func:`_worlds` and keeps those whose release is identical, byte for byte, to the true
    one. A subset of what such a reader must consider, so a count pinned here is pinned for
    them."""
    published = s.volume().to_json()
    ids = sorted(s.taxonomy.categories)
    values: dict[int, set[int]] = {c: set() for c in ids}
    for split, release in _worlds(s):
        if release.to_json() == published:
            for c, n in zip(ids, split, strict=True):
                values[c].add(n)
    return values


def _four_categories() -> Scenario:
    """k = 5; categories A, B, D have 4 cases each, C has 5 (no site, no department)."""
    tax = _Taxonomy(
        categories={i: Label(f"cat{i}", f"Category {i}") for i in (10, 11, 12, 13)},
        category_order={10: 0, 11: 1, 12: 2, 13: 3},
        units=_simple_taxonomy().units,
        outcomes=OUTCOMES[:1],
        min_headcount=MIN_HEADCOUNT,
    )
    counts = {10: 4, 11: 4, 12: 5, 13: 4}
    rows = [
        _make_row(1, 1, cid, None, None, False, False, None, None, None, None)
        for cid, n in counts.items()
        for _ in range(n)
    ]
    return Scenario(rows, tax, 5, dt.date(2026, 4, 1))


def test_finding_small_categories_are_not_pinned_by_the_merge_rule() -> None:
    """FINDING 3 (fixed). In :func:`_four_categories`, categories below k used to be merged into
    "other" (12, next to C listed with 5), and a reader who knows that rule could work out that
    A, B and D were all below k and so each exactly 4: three small groups revealed by which
    categories were listed and the size of "other". Categories are now never merged on their
    counts: whatever the split of the cases into categories, the same four rows are listed, so
    the listing says nothing; the small counts are hidden by the view's suppression, and
    over what the views show each hidden count has two values at least, and a small one could
    be 0 and could be k or more (exact LP, certified by whole-number case sets)."""
    s = _four_categories()
    volume = s.volume()
    category = volume.views["category"]
    codes = ["cat10", "cat11", "cat12", "cat13"]
    assert [r.code for r in category.rows] == codes
    assert [category.value(c) for c in codes] == [None, None, 5, None]
    for _split, release in _worlds(s):
        assert [r.code for r in release.views["category"].rows] == codes
    _check_combination(s, volume, s.progress(), ("category", "site"), ("category", "site"))


def test_finding_small_categories_are_pinned_by_the_suppression_rule() -> None:
    """FINDING 4 (fixed). The same quarter as finding 3: A, B and D are hidden, C shows 5,
    T = 17. Over the shown numbers alone each hidden count was 0..12 (the LP check passed). But
    the rule was public and chose by the data: zeros shown, a count of k or more hidden only as
    the cheapest complement, added only when needed. Replaying it on every other split of the
    12 cases over A, B and D gave a different release, so all three were small and each was
    exactly 4: the leak of finding 3, through the suppression rule instead of the merge rule.
    Now zeros are hidden like small counts and the one complement a view may need is the first
    of an order drawn from the server's key: a reader who replays the rule under every order
    finds splits such as 12/0/0 and 8/4/0 that publish the same, so each of A, B and D could
    be 0 and could be 8 or 12."""
    s = _four_categories()
    category = s.volume().views["category"]
    possible = _category_values(s)
    truth = Counter(r.category for r in s.rows)
    for cid, label in s.taxonomy.categories.items():
        values = possible[cid]
        assert truth[cid] in values
        if category.value(label.code) is None:
            assert len(values) >= 2, (cid, sorted(values))
            if 0 < truth[cid] < s.k:
                assert 0 in values and max(values) >= s.k, (cid, sorted(values))
