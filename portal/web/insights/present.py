"""What the insights pages show, as plain grids: one grid per view, from which the HTML table,
the CSV file and the chart are all drawn, so the three cannot disagree.

Nothing here computes a new figure from the data: every count is a release's (stored, already
protected); sums over quarters only through :func:`insights.derived_sum`; rates through
:mod:`insights` and :mod:`disclosure`. Row codes of the engine get human labels here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights.calendar import Quarter
from portal.services.insights.figures import Kpis, Names
from portal.services.insights.releases import NOT_GIVEN, OTHER, Label, Release

#: Where the year page has no count because the row did not exist in that quarter (its cases
#: were counted in "other" that quarter).
ABSENT = "absent"

VIEW_TITLES = {
    "months": _l("Concerns by month of receipt"),
    "category": _l("Concerns by category"),
    "site": _l("Concerns by site"),
    "department": _l("Concerns by department"),
    "anonymity": _l("Named or anonymous"),
    "outcome": _l("Outcome so far"),
    "acknowledgement": _l("Acknowledged within the deadline"),
    "feedback": _l("Feedback given within the deadline"),
}

ROW_HEADERS = {
    "months": _l("Month"),
    "category": _l("Category"),
    "site": _l("Site"),
    "department": _l("Department"),
    "anonymity": _l("Reporter"),
    "outcome": _l("Outcome"),
    "acknowledgement": _l("Acknowledgement"),
    "feedback": _l("Feedback"),
}

FIXED_LABELS = {
    "named": _l("Named"),
    "anonymous_returned": _l("Anonymous, came back with the receipt"),
    "anonymous_silent": _l("Anonymous, did not come back"),
    "on_time": _l("On time"),
    "not_on_time": _l("Not on time (late, or not done yet)"),
    "open": _l("Still open"),
    "none": _l("Closed without an outcome"),
    NOT_GIVEN: _l("Not given"),
}

UNIT_VIEWS = frozenset({"site", "department"})
#: The taxonomy table whose codes a view's rows are.
ROW_TABLES = {
    "category": "category",
    "site": "site",
    "department": "department",
    "outcome": "outcome",
}
ALL_VIEWS = (*insights_releases.VOLUME_VIEWS, *insights_releases.PROGRESS_VIEWS)


def hidden_mark() -> str:
    text: str = _("hidden")
    return text


def absent_mark() -> str:
    text: str = _("counted in other")
    return text


def unreleased_mark() -> str:
    text: str = _("not published yet")
    return text


def label_for(view: str, label: Label, *, names: Names | None = None) -> str:
    """The human label of a row; ``names`` translates configured labels by code
    (``insights.translated_names``)."""
    code = label.code
    if view == "months":
        year, month = code.split("-")
        text: str = format_date(dt.date(int(year), int(month), 1), "MMMM y")
        return text
    if code == OTHER and view in UNIT_VIEWS and label.label == "other":
        return str(_l("Other (small units merged)"))
    if code in FIXED_LABELS and (code == NOT_GIVEN or label.label == code):
        return str(FIXED_LABELS[code])
    if code in ("open", "none") and view == "outcome":
        return str(FIXED_LABELS[code])
    table = ROW_TABLES.get(view)
    if names and table is not None:
        return names.get((table, code), label.label)
    return label.label


# --- grids --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """One cell: a count, a rate (1 decimal), hidden (count None), absent, or blank."""

    count: int | None = None
    rate: float | None = None
    kind: str = "count"  # "count", "rate", "absent", "unreleased", "blank"

    @property
    def hidden(self) -> bool:
        return (self.kind == "count" and self.count is None) or (
            self.kind == "rate" and self.rate is None
        )

    def text(self) -> str:
        if self.kind == "absent":
            return absent_mark()
        if self.kind == "unreleased":
            return unreleased_mark()
        if self.kind == "blank":
            return ""
        if self.kind == "rate":
            return hidden_mark() if self.rate is None else f"{self.rate:.1f}"
        return hidden_mark() if self.count is None else str(self.count)


@dataclass(frozen=True)
class Row:
    code: str
    label: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Grid:
    name: str
    title: str
    header: tuple[str, ...]  # the row header, then one per value column
    rows: tuple[Row, ...]
    total: Row | None
    chart_columns: int  # how many leading value columns are counts drawn in the chart

    def csv_rows(self) -> list[list[str]]:
        rows = [list(self.header)]
        for row in (*self.rows, *((self.total,) if self.total else ())):
            rows.append([row.label, *(value.text() for value in row.values)])
        return rows


def counts(values: Sequence[int | None]) -> tuple[Value, ...]:
    return tuple(Value(count=v) for v in values)


def view_grid(release: Release, name: str, names: Names | None = None) -> Grid:
    view = release.views[name]
    rows = []
    header: tuple[str, ...] = (str(ROW_HEADERS[name]), _("Cases"))
    heads = release.headcounts.get(name, {}) if name in UNIT_VIEWS else {}
    if name in UNIT_VIEWS:
        header = (*header, _("Employees"), _("Cases per 100 employees"))
    for label, (count,) in zip(view.rows, view.cells, strict=True):
        values: tuple[Value, ...] = (Value(count=count),)
        if name in UNIT_VIEWS:
            headcount = heads.get(label.code)
            values = (
                *values,
                Value(count=headcount) if headcount is not None else Value(kind="blank"),
                Value(rate=insights.per_100(count, headcount), kind="rate")
                if headcount
                else Value(kind="blank"),
            )
        rows.append(Row(label.code, label_for(name, label, names=names), values))
    total_values: tuple[Value, ...] = (Value(count=view.total),)
    if name in UNIT_VIEWS:
        total_values = (*total_values, Value(kind="blank"), Value(kind="blank"))
    return Grid(
        name,
        str(VIEW_TITLES[name]),
        header,
        tuple(rows),
        Row("total", _("Total"), total_values),
        1,
    )


def year_grid(
    name: str, releases: Sequence[tuple[Quarter, Release | None]], names: Names | None = None
) -> Grid:
    """A 1-D view's rows × the quarters of a year, matched by code, with year totals derived.

    A quarter with nothing published (fewer than k cases, or not released yet) is hidden in every
    row. A row missing from a published quarter (its cases counted in "other" there) is marked
    absent, and its year total hidden."""
    order: list[str] = []
    labels: dict[str, str] = {}
    for _quarter, release in releases:
        if release is None or name not in release.views:
            continue
        for label in release.views[name].rows:
            if label.code not in labels:
                order.append(label.code)
            labels[label.code] = label_for(name, label, names=names)  # the latest quarter's
    rows = []
    for code in order:
        values: list[Value] = []
        for quarter, release in releases:
            if name == "months" and code not in quarter.months:
                values.append(Value(kind="blank"))  # a month belongs to one quarter only
            elif release is None:
                values.append(Value(kind="unreleased"))
            elif name not in release.views:
                values.append(Value(count=None))  # fewer than k: nothing published
            elif code in (label.code for label in release.views[name].rows):
                values.append(Value(count=release.views[name].value(code)))
            else:
                values.append(Value(kind="absent"))
        parts = (v.count if v.kind == "count" else None for v in values if v.kind != "blank")
        rows.append(Row(code, labels[code], (*values, Value(count=insights.derived_sum(parts)))))
    totals = [
        Value(kind="unreleased")
        if r is None
        else Value(count=r.views[name].total if name in r.views else None)
        for _q, r in releases
    ]
    year_total = insights.derived_sum(v.count if v.kind == "count" else None for v in totals)
    return Grid(
        name,
        str(VIEW_TITLES[name]),
        (str(ROW_HEADERS[name]), *(str(q) for q, _r in releases), _("Year")),
        tuple(rows),
        Row("total", _("Total"), (*totals, Value(count=year_total))),
        len(releases),
    )


# --- key figures --------------------------------------------------------------------------------


def kpi_grid(figures: Kpis) -> Grid:
    def share(value: float | None) -> Value:
        return Value(rate=None if value is None else 100 * value, kind="rate")

    def days(value: float | None) -> Value:
        return Value(rate=value, kind="rate")

    rows = [
        ("total", _("Concerns received"), Value(count=figures.total)),
        (
            "per_100_employees",
            _("Concerns per 100 employees"),
            Value(rate=figures.per_100_employees, kind="rate"),
        ),
        ("anonymous_share", _("Anonymous (% of concerns)"), share(figures.anonymous_share)),
        (
            "follow_up_rate",
            _("Anonymous reporters who came back with their receipt (%)"),
            share(figures.follow_up_rate),
        ),
        (
            "substantiation_rate",
            _("Substantiated (% of closed with an outcome)"),
            share(figures.substantiation_rate),
        ),
        (
            "acknowledged_on_time",
            _("Acknowledged within the deadline (% of concerns)"),
            share(figures.acknowledged_on_time),
        ),
        (
            "feedback_on_time",
            _("Feedback within the deadline (% of concerns)"),
            share(figures.feedback_on_time),
        ),
        ("close_median", _("Days to close, median"), days(figures.close_days.median)),
        ("close_p90", _("Days to close, 90th percentile"), days(figures.close_days.p90)),
        ("open_cases", _("Still open"), Value(count=figures.open_cases)),
    ]
    return Grid(
        "kpis",
        _("Key figures"),
        (_("Figure"), _("Value")),
        tuple(Row(code, label, (value,)) for code, label, value in rows),
        None,
        0,
    )


# --- CSV ----------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(cell: str) -> str:
    """Spreadsheets run a cell that starts like a formula; labels come from configuration."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def to_csv(grid: Grid) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in grid.csv_rows():
        writer.writerow([_safe(cell) for cell in row])
    return out.getvalue()
