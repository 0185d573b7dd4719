"""Management insights: the figures published per calendar quarter, already protected.

No Flask here. :func:`store.refresh` (the ``portal insights refresh`` job) computes *releases*
with this module and stores them; pages, CSV and the API only read stored releases, so a request
never touches a case and never costs more than reading a few kilobytes of JSON.

What is published, and why it is safe together
-----------------------------------------------

The unit of publication is one **complete calendar quarter**. Its *volume release* is computed
once the quarter has ended and never changes (a later reclassification, transfer or purge does
not alter what was published, so comparing two days reveals nothing). Its *progress release*
(outcomes, deadlines met, days to close) is recomputed once a month, as of the first day of the
month. A purged case (``services.retention``) leaves a stub with exactly the columns read here,
and :func:`_rows` reads cases and stubs alike, so a purge changes no figure, published or
recomputed (docs/insights.md, "Purged cases").

A quarter with fewer than k cases publishes nothing but that fact. Otherwise, with T its total,
every view is a **partition of the T cases by one attribute**, with T shown:

* volume: ``months``, ``category``, ``site``, ``department``, ``anonymity`` (named / anonymous
  and came back / anonymous and did not);
* progress: ``outcome`` (each outcome, closed without one, still open), and, once every case's
  deadline has passed by the policy's limits (a date fixed by the quarter alone),
  ``acknowledgement`` and ``feedback`` (on time / not on time).

The reader we protect against (docs/insights.md, "Who reads the figures") knows the taxonomy,
the routing rules, the workflow, this code and every figure of every view, but not the cases
and not the server's key. Three facts make everything safe together:

1. **Every attribute is in one view only, and the attributes are free.** Any combination of
   values of the published attributes is one that a case can have under the portal's rules
   (routing only picks the queue, which is not published; closing a case acknowledges it, which
   "not on time" allows; "not yet due" never occurs once a deadline view is published). So any
   tables that each agree with what they show are realised by one set of cases: list the T
   cases and read each attribute off its own view. The views form a star around T.
2. **Each view hides by** :func:`disclosure.protect_partition`: every count below k, zeros
   included, and, when that is one count or less than k in all, one more, the first in an
   order drawn from the server's key (:func:`keyed_order`). What is hidden depends on nothing
   else, so a reader who replays the rule learns only that some hidden cells may be small.
3. Together: every hidden count could be 0 and could be k or more, whatever else the reader
   knows of the published figures, and no figure depends on the queue.
   ``tests/invariants/test_insights_adversary.py`` replays the whole publication under every order
   of complements and checks it.

The queue view and the categories-by-site table of earlier releases are no longer published:
routing makes the queue a function of category and site, so a queue's count pinned hidden
category counts, and a cross-tab shares its margins with the one-way views (the finding of
issue 13). Stored releases computed before this (``method`` 1) keep their figures, but only
the views listed above are served.

Sums over quarters (a year, a trend, the backlog) are *derived*: shown only when every part is
shown, so they add nothing. Rates and medians follow the rules of :mod:`disclosure`, computed
only from shown counts: a median is shown only when the number of values under it is shown (or
given by subtraction) and at least k, so whether it is there tells nothing new.

Sites and departments below the policy's minimum headcount are merged into "other" in every
view, from configuration and not from the data.

Beside this module: ``calendar`` (quarters and when they are published), ``releases`` (what a
release holds), ``store`` (refreshing, storing and reading releases).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.i18n import labels as i18n
from portal.models import Case, Category, OrgUnit, OrgUnitKind, Outcome, RetainedCase
from portal.services.casework import deadlines
from portal.services.configuration import policy
from portal.services.insights import disclosure
from portal.services.insights.calendar import Quarter
from portal.services.insights.releases import (
    ANONYMITY_ROWS,
    DEADLINE_ROWS,
    NOT_GIVEN,
    OTHER,
    PROGRESS,
    VOLUME,
    VOLUME_VIEWS,
    Durations,
    Label,
    Release,
    View,
)

# --- the cases of a quarter ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    received_on: dt.date
    category: int
    site: int | None
    department: int | None
    anonymous: bool
    returned: bool
    acknowledged_on: dt.date | None
    acknowledge_due_on: dt.date
    closed_on: dt.date | None
    outcome: int | None
    feedback_on: dt.date | None
    feedback_due_on: dt.date


def _rows(session: Session, quarter: Quarter) -> list[_Row]:
    statement = select(
        Case.received_on,
        func.coalesce(Case.org_category_id, Case.category_id),
        Case.site_id,
        Case.department_id,
        Case.is_anonymous,
        Case.reporter_returned,
        Case.acknowledged_on,
        Case.acknowledge_due_on,
        Case.closed_on,
        Case.outcome_id,
        Case.feedback_on,
        Case.feedback_due_on,
    ).where(Case.received_on >= quarter.start, Case.received_on < quarter.end)
    # What stays of purged cases (``services.retention``) counts exactly as the case did, so a
    # purge changes no figure, published or recomputed.
    retained = select(
        RetainedCase.received_on,
        RetainedCase.category_id,
        RetainedCase.site_id,
        RetainedCase.department_id,
        RetainedCase.is_anonymous,
        RetainedCase.reporter_returned,
        RetainedCase.acknowledged_on,
        RetainedCase.acknowledge_due_on,
        RetainedCase.closed_on,
        RetainedCase.outcome_id,
        RetainedCase.feedback_on,
        RetainedCase.feedback_due_on,
    ).where(RetainedCase.received_on >= quarter.start, RetainedCase.received_on < quarter.end)
    return [_Row(*tuple(row)) for query in (statement, retained) for row in session.execute(query)]


@dataclass(frozen=True)
class _Taxonomy:
    """Codes and labels as of the computation, and the headcount merging of units."""

    categories: Mapping[int, Label]
    category_order: Mapping[int, int]
    units: Mapping[str, list[tuple[int, Label, int | None]]]  # kind -> (id, label, headcount)
    outcomes: list[tuple[int, Label, bool]]
    min_headcount: int


def _taxonomy(session: Session) -> _Taxonomy:
    categories = list(session.scalars(select(Category).order_by(Category.position, Category.id)))
    units: dict[str, list[tuple[int, Label, int | None]]] = {}
    for kind in OrgUnitKind:
        units[kind.value] = [
            (u.id, Label(u.code, u.label), u.headcount)
            for u in session.scalars(
                select(OrgUnit)
                .where(OrgUnit.kind == kind.value)
                .order_by(OrgUnit.position, OrgUnit.id)
            )
        ]
    return _Taxonomy(
        categories={c.id: Label(c.code, c.label) for c in categories},
        category_order={c.id: i for i, c in enumerate(categories)},
        units=units,
        outcomes=[
            (o.id, Label(o.code, o.label), o.substantiated)
            for o in session.scalars(select(Outcome).order_by(Outcome.position, Outcome.id))
        ],
        min_headcount=policy.values(session).insights_min_headcount,
    )


#: (taxonomy table, code) -> a label; the tables are "category", "site", "department"
#: and "outcome".
Names = Mapping[tuple[str, str], str]


def translated_names(session: Session, locale: str) -> dict[tuple[str, str], str]:
    """The translations into ``locale`` of the taxonomy's labels, by code. Releases keep the
    English labels they were computed with, so pages translate them by code when shown; rows
    without a translation keep the release's own label."""
    if locale == i18n.DEFAULT_LOCALE:
        return {}
    rows: list[tuple[str, str, Category | OrgUnit | Outcome, str]] = [
        *(("category", c.code, c, "label") for c in session.scalars(select(Category))),
        *((u.kind, u.code, u, "label") for u in session.scalars(select(OrgUnit))),
        *(("outcome", o.code, o, "label") for o in session.scalars(select(Outcome))),
    ]
    out: dict[tuple[str, str], str] = {}
    for table, code, row, attr in rows:
        text = (row.translations or {}).get(locale, {}).get(attr)
        if text:
            out[(table, code)] = text
    return out


# --- building views -----------------------------------------------------------------------------

#: For one quarter: (view name, row codes) -> the row indices in the order complements are taken.
ComplementOrder = Callable[[str, Sequence[str]], Sequence[int]]


def release_key(secret_key: bytes) -> bytes:
    """The key that orders complements, derived from the instance secret (never stored with the
    data, never shown). Changing it changes which cells later progress releases hide."""
    return crypto.subkey(secret_key, "insights-complements")


def keyed_order(key: bytes, quarter: Quarter) -> ComplementOrder:
    """A pseudo-random order of each view's rows, fixed for the quarter and the view (the same
    table always hides the same cells) and unpredictable without ``key``."""

    def order(view: str, codes: Sequence[str]) -> list[int]:
        return sorted(
            range(len(codes)),
            key=lambda i: crypto.subkey(key, f"{quarter}/{view}/{codes[i]}"),
        )

    return order


def _one_way(
    name: str, labels: Sequence[Label], counts: Sequence[int], k: int, order: ComplementOrder
) -> View:
    """A partition of the quarter's cases with its total shown (the total is a separator)."""
    preference = order(name, [label.code for label in labels])
    shown = disclosure.protect_partition(counts, k, preference)
    return View(
        name=name,
        rows=tuple(labels),
        columns=(Label("count", "count"),),
        cells=tuple((value,) for value in shown),
        row_totals=None,
        column_totals=None,
        total=sum(counts),
    )


def _merge_units(
    units: Sequence[tuple[int, Label, int | None]], minimum: int
) -> tuple[dict[int | None, str], list[Label], dict[str, int]]:
    """Map unit ids to the column they are reported under; small units (by configured
    headcount) go to "other". Returns (mapping, column labels, headcounts per column)."""
    known = {str(uid): h for uid, _label, h in units if h is not None}
    merged = disclosure.merge_small_groups(known, minimum) if known else {}
    mapping: dict[int | None, str] = {None: NOT_GIVEN}
    columns: list[Label] = []
    headcounts: dict[str, int] = {}
    other_headcount = 0
    any_merged = False
    for uid, label, headcount in units:
        if merged.get(str(uid)) == OTHER:
            mapping[uid] = OTHER
            any_merged = True
            other_headcount += headcount or 0
        else:
            mapping[uid] = label.code
            columns.append(label)
            if headcount is not None:
                headcounts[label.code] = headcount
    if any_merged:
        columns.append(Label(OTHER, "other"))
        headcounts[OTHER] = other_headcount
    columns.append(Label(NOT_GIVEN, "not given"))
    return mapping, columns, headcounts


def _counts(labels: Sequence[Label], keys: Iterable[str]) -> list[int]:
    tally = Counter(keys)
    return [tally.get(label.code, 0) for label in labels]


def volume_release(
    rows: Sequence[_Row],
    quarter: Quarter,
    as_of: dt.date,
    k: int,
    taxonomy: _Taxonomy,
    order: ComplementOrder,
) -> Release:
    """The figures about what arrived in ``quarter``. Nothing here reads the queue."""
    total = len(rows)
    if total < k:
        return Release(quarter, VOLUME, as_of, k, None)
    views: dict[str, View] = {}
    months = [Label(m, m) for m in quarter.months]
    views["months"] = _one_way(
        "months", months, _counts(months, (f"{r.received_on:%Y-%m}" for r in rows)), k, order
    )
    category_ids = sorted(
        set(taxonomy.categories) | {r.category for r in rows},
        key=lambda c: (taxonomy.category_order.get(c, len(taxonomy.category_order)), c),
    )
    categories = [taxonomy.categories.get(c, Label(str(c), str(c))) for c in category_ids]
    code_of_category = {c: label.code for c, label in zip(category_ids, categories, strict=True)}
    views["category"] = _one_way(
        "category",
        categories,
        _counts(categories, (code_of_category[r.category] for r in rows)),
        k,
        order,
    )
    headcounts: dict[str, Mapping[str, int]] = {}
    site_map, sites, headcounts["site"] = _merge_units(
        taxonomy.units["site"], taxonomy.min_headcount
    )
    views["site"] = _one_way(
        "site", sites, _counts(sites, (site_map.get(r.site, NOT_GIVEN) for r in rows)), k, order
    )
    department_map, departments, headcounts["department"] = _merge_units(
        taxonomy.units["department"], taxonomy.min_headcount
    )
    views["department"] = _one_way(
        "department",
        departments,
        _counts(departments, (department_map.get(r.department, NOT_GIVEN) for r in rows)),
        k,
        order,
    )
    anonymity = [Label(code, code) for code in ANONYMITY_ROWS]
    views["anonymity"] = _one_way(
        "anonymity",
        anonymity,
        _counts(
            anonymity,
            (
                "named"
                if not r.anonymous
                else ("anonymous_returned" if r.returned else "anonymous_silent")
                for r in rows
            ),
        ),
        k,
        order,
    )
    ordered = {name: views[name] for name in VOLUME_VIEWS}
    return Release(quarter, VOLUME, as_of, k, total, ordered, {}, headcounts)


def acknowledgement_published_from(quarter: Quarter) -> dt.date:
    """The first "as of" day after every acknowledgement deadline of ``quarter`` has passed,
    whatever the policy (at most ``policy.LIMITS`` days after receipt): fixed by the quarter
    alone, so whether the view is there says nothing about the cases."""
    return _first_of_month_after(_latest_acknowledgement_due(quarter))


def _latest_acknowledgement_due(quarter: Quarter) -> dt.date:
    last_day = quarter.end - dt.timedelta(days=1)
    return last_day + dt.timedelta(days=policy.LIMITS["acknowledge_days"][1])


def feedback_published_from(quarter: Quarter) -> dt.date:
    """The first "as of" day on which the feedback deadline of every case of ``quarter`` that
    was acknowledged on time has passed, by the policy's limits."""
    latest_ack = _latest_acknowledgement_due(quarter)
    latest_due = deadlines.add_months(latest_ack, policy.LIMITS["feedback_months"][1])
    return _first_of_month_after(latest_due)


def _first_of_month_after(day: dt.date) -> dt.date:
    """The first day of a month strictly after ``day``."""
    return deadlines.add_months(day.replace(day=1), 1)


def _on_time(done_on: dt.date | None, due_on: dt.date, as_of: dt.date) -> str:
    done = done_on is not None and done_on < as_of and done_on <= due_on
    return "on_time" if done else "not_on_time"


def progress_release(
    rows: Sequence[_Row],
    quarter: Quarter,
    as_of: dt.date,
    k: int,
    taxonomy: _Taxonomy,
    order: ComplementOrder,
) -> Release:
    """How the cases that arrived in ``quarter`` have been handled, as of ``as_of``."""
    total = len(rows)
    if total < k:
        return Release(quarter, PROGRESS, as_of, k, None)
    closed = [r for r in rows if r.closed_on is not None and r.closed_on < as_of]
    outcomes = [label for _oid, label, _s in taxonomy.outcomes]
    code_of = {oid: label.code for oid, label, _s in taxonomy.outcomes}
    # Every row is listed whatever the data: a row shown only when its count is not 0 would
    # tell that a hidden count in it is at least 1.
    outcome_labels = [*outcomes, Label("none", "closed without outcome"), Label("open", "open")]
    views = {
        "outcome": _one_way(
            "outcome",
            outcome_labels,
            _counts(
                outcome_labels,
                (
                    "open"
                    if r.closed_on is None or r.closed_on >= as_of
                    else code_of.get(r.outcome if r.outcome is not None else -1, "none")
                    for r in rows
                ),
            ),
            k,
            order,
        ),
    }
    deadline_labels = [Label(code, code) for code in DEADLINE_ROWS]
    if as_of >= acknowledgement_published_from(quarter):
        views["acknowledgement"] = _one_way(
            "acknowledgement",
            deadline_labels,
            _counts(
                deadline_labels,
                (_on_time(r.acknowledged_on, r.acknowledge_due_on, as_of) for r in rows),
            ),
            k,
            order,
        )
    if as_of >= feedback_published_from(quarter):
        views["feedback"] = _one_way(
            "feedback",
            deadline_labels,
            _counts(
                deadline_labels, (_on_time(r.feedback_on, r.feedback_due_on, as_of) for r in rows)
            ),
            k,
            order,
        )
    close_days = [
        float((r.closed_on - r.received_on).days) for r in closed if r.closed_on is not None
    ]
    # Whether a median is shown must not say more than the counts do: it is shown only over a
    # number of cases the views themselves show (or give by subtraction), never because the raw
    # count is at least k (that would tell a reader "at least k" about hidden counts).
    closed_count = subset_count(
        views["outcome"], [label.code for label in outcome_labels if label.code != "open"]
    )
    shown = closed_count is not None and bool(close_days)
    durations = {
        "close": Durations(
            disclosure.median(close_days, k) if shown else None,
            disclosure.percentile(close_days, 90, k) if shown else None,
        )
    }
    return Release(quarter, PROGRESS, as_of, k, total, views, durations, {})


# --- derived figures (add nothing: shown only when every part is shown) --------------------------


def derived_sum(parts: Iterable[int | None]) -> int | None:
    """The sum of shown counts, or None if any part is hidden."""
    total = 0
    for part in parts:
        if part is None:
            return None
        total += part
    return total


def subset_count(view: View, codes: Iterable[str]) -> int | None:
    """The count of a group of rows of a 1-D view: shown when every row in it is shown, or
    when every row outside it is (then it is the total minus the rest)."""
    wanted = set(codes)
    inside = [
        row[0] for label, row in zip(view.rows, view.cells, strict=True) if label.code in wanted
    ]
    outside = [
        row[0] for label, row in zip(view.rows, view.cells, strict=True) if label.code not in wanted
    ]
    direct = derived_sum(inside)
    if direct is not None:
        return direct
    rest = derived_sum(outside)
    if rest is not None and view.total is not None:
        return view.total - rest
    return None


@dataclass(frozen=True)
class Kpis:
    """The key figures of one quarter, each None where it would reveal a small group."""

    period: Quarter
    total: int | None
    per_100_employees: float | None
    anonymous_share: float | None
    follow_up_rate: float | None
    substantiation_rate: float | None
    acknowledged_on_time: float | None
    feedback_on_time: float | None
    open_cases: int | None
    close_days: Durations


def kpis(volume: Release, progress: Release | None, substantiated: Iterable[str]) -> Kpis:
    """Key figures from the published views only (so they reveal nothing the views do not)."""
    k = volume.threshold
    none = Durations(None, None)
    if volume.total is None:
        return Kpis(volume.period, None, None, None, None, None, None, None, None, none)
    total = volume.total
    anonymity = volume.views["anonymity"]
    named = anonymity.value("named")
    anonymous = subset_count(anonymity, ("anonymous_returned", "anonymous_silent"))
    returned = anonymity.value("anonymous_returned")
    site_heads = volume.headcounts.get("site", {})
    site_view = volume.views["site"]
    # Per 100 employees over the whole organisation needs every site's headcount.
    per_100 = None
    employees = sum(site_heads.values())
    if employees > 0 and all(  # a headcount of 0 everywhere says nothing per employee
        label.code in site_heads for label in site_view.rows if label.code != NOT_GIVEN
    ):
        per_100 = 100 * total / employees
    anonymous_share = (
        disclosure.rate(anonymous, total, k)
        if anonymous is not None and named is not None
        else None
    )
    follow_up = (
        disclosure.rate(returned, anonymous, k)
        if returned is not None and anonymous is not None
        else None
    )
    substantiation = on_time_ack = on_time_feedback = None
    open_cases = None
    durations: Mapping[str, Durations] = {}
    if progress is not None and progress.total is not None:
        outcome = progress.views["outcome"]
        open_cases = outcome.value("open")
        codes = set(substantiated)
        found = subset_count(outcome, [label.code for label in outcome.rows if label.code in codes])
        with_outcome = subset_count(
            outcome, [label.code for label in outcome.rows if label.code not in ("open", "none")]
        )
        if found is not None and with_outcome is not None:
            substantiation = disclosure.rate(found, with_outcome, k)
        on_time_ack = _on_time_rate(progress.views.get("acknowledgement"), k)
        on_time_feedback = _on_time_rate(progress.views.get("feedback"), k)
        durations = progress.durations
    return Kpis(
        volume.period,
        total,
        per_100,
        anonymous_share,
        follow_up,
        substantiation,
        on_time_ack,
        on_time_feedback,
        open_cases,
        durations.get("close", none),
    )


def _on_time_rate(view: View | None, k: int) -> float | None:
    """On time over all the quarter's cases: the view is published only once every deadline
    that the policy allows has passed (:func:`acknowledgement_published_from`)."""
    if view is None or view.total is None:
        return None
    on_time = view.value("on_time")
    if on_time is None:
        return None
    return disclosure.rate(on_time, view.total, k)


@dataclass(frozen=True)
class Series:
    """Figures across quarters, all taken from the releases (derived: they add nothing).

    Each entry is (label, count), the count None where it is hidden."""

    trend: list[tuple[str, int | None]]  # each quarter's total
    months: list[tuple[str, int | None]]  # each month, "2026-07"; hidden with its quarter
    backlog: list[tuple[str, int | None]]  # still open, by quarter of receipt
    backlog_total: int | None


def series(releases: Sequence[tuple[Release, Release | None]]) -> Series:
    """The trend, months and open backlog over (volume, progress) releases, oldest first."""
    trend: list[tuple[str, int | None]] = []
    months: list[tuple[str, int | None]] = []
    backlog: list[tuple[str, int | None]] = []
    for volume, progress in releases:
        period = str(volume.period)
        trend.append((period, volume.total))
        # A quarter with fewer than k cases publishes no months: all three are hidden.
        view = volume.views.get("months")
        for index, month in enumerate(volume.period.months):
            months.append((month, None if view is None else view.cells[index][0]))
        outcome = None if progress is None else progress.views.get("outcome")
        backlog.append((period, None if outcome is None else outcome.value("open")))
    return Series(trend, months, backlog, derived_sum(count for _p, count in backlog))


def per_100(count: int | None, headcount: int | None) -> float | None:
    """Reports per 100 employees of a unit (headcounts are configuration, not data)."""
    if count is None or not headcount:
        return None
    return 100 * count / headcount
