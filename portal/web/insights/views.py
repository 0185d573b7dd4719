"""The insights pages and their CSV files. Views only read stored releases (never a case), so
nothing here can show more than the release does: no free text, no handles, no per-case rows,
no date other than a release's "as of" day."""

from __future__ import annotations

from flask import abort, make_response, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from portal.errors import InvalidInput
from portal.i18n import labels as i18n
from portal.services.accounts.permissions import Permission
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.services.insights.calendar import Quarter
from portal.services.insights.releases import PROGRESS, VOLUME, Release
from portal.web import state
from portal.web.auth import current_staff, requires
from portal.web.insights import charts, present
from portal.web.insights.blueprint import bp
from portal.web.staff.forms import ActionForm


def _quarter(period: str) -> Quarter:
    try:
        return Quarter.parse(period)
    except InvalidInput:
        abort(404)


def _releases(session: Session, quarter: Quarter) -> tuple[Release, Release | None]:
    volume = insights_store.load(session, quarter, VOLUME)
    if volume is None:
        abort(404)
    return volume, insights_store.load(session, quarter, PROGRESS)


def _names(session: Session) -> insights.Names:
    """Configured labels in the page's language, by code (releases store English labels)."""
    return insights.translated_names(session, i18n.current_locale())


def _kpis(session: Session, volume: Release, progress: Release | None) -> present.Grid:
    return present.kpi_grid(
        insights.kpis(volume, progress, insights_store.substantiated_codes(session))
    )


def _chart(grid: present.Grid, chart_id: str) -> object:
    """The chart of a grid: bars of its count column (every view is a one-way table)."""
    mark = present.hidden_mark()
    return charts.bars(
        chart_id,
        grid.title,
        [(row.label, row.values[0].count) for row in grid.rows],
        hidden_mark=mark,
        description=_("Bar chart of counts; the table beside it shows the same numbers."),
    )


def _page(template: str, **context: object) -> ResponseReturnValue:
    return render_template(
        template,
        logout_form=ActionForm(formdata=None),
        hidden_mark=present.hidden_mark(),
        **context,
    )


@bp.get("/")
@requires(Permission.INSIGHTS_READ)
def overview() -> ResponseReturnValue:
    session = state.db()
    quarters = insights_store.periods(session)
    if not quarters:
        return _page("insights/overview.html", quarters=[])
    loaded = [(q, *_releases(session, q)) for q in quarters]
    latest, latest_volume, latest_progress = loaded[-1]
    kpis = _kpis(session, latest_volume, latest_progress)
    figures = insights.series([(volume, progress) for _q, volume, progress in loaded])
    trend = figures.trend
    months = [
        (present.label_for("months", insights_releases.Label(month, month)), count)
        for month, count in figures.months
    ]
    backlog, backlog_total = figures.backlog, figures.backlog_total
    return _page(
        "insights/overview.html",
        quarters=list(reversed(quarters)),
        years=sorted({q.year for q in quarters}, reverse=True),
        latest=latest,
        latest_volume=latest_volume,
        latest_progress=latest_progress,
        kpis=kpis,
        trend=trend,
        trend_chart=charts.bars(
            "trend",
            _("Concerns per quarter"),
            trend,
            hidden_mark=present.hidden_mark(),
            description=_("Bar chart of the number of concerns received in each quarter."),
        ),
        months=months,
        months_chart=charts.bars(
            "months",
            _("Concerns per month"),
            months,
            hidden_mark=present.hidden_mark(),
            description=_("Bar chart of the number of concerns received in each month."),
        ),
        backlog=backlog,
        backlog_total=backlog_total,
        backlog_chart=charts.bars(
            "backlog",
            _("Still open, by quarter of receipt"),
            backlog,
            hidden_mark=present.hidden_mark(),
            description=_("Bar chart of the concerns still open, by quarter of receipt."),
        ),
    )


@bp.get("/<int(fixed_digits=4):year>/")
@requires(Permission.INSIGHTS_READ)
def year_page(year: int) -> ResponseReturnValue:
    session = state.db()
    released = [q for q in insights_store.periods(session) if q.year == year]
    if not released:
        abort(404)
    releases: dict[str, list[tuple[Quarter, Release | None]]] = {VOLUME: [], PROGRESS: []}
    for number in range(1, 5):
        quarter = Quarter(year, number)
        for kind in (VOLUME, PROGRESS):
            releases[kind].append(
                (
                    quarter,
                    insights_store.load(session, quarter, kind) if quarter in released else None,
                )
            )
    names = _names(session)
    grids = [
        present.year_grid(name, releases[VOLUME], names) for name in insights_releases.VOLUME_VIEWS
    ]
    grids += [
        present.year_grid(name, releases[PROGRESS], names)
        for name in insights_releases.PROGRESS_VIEWS
    ]
    thresholds = [r.threshold for _q, r in releases[VOLUME] if r is not None]
    return _page(
        "insights/year.html",
        year=year,
        grids=grids,
        released=released,
        threshold=thresholds[-1],
        absent_mark=present.absent_mark(),
        unreleased_mark=present.unreleased_mark(),
    )


@bp.get("/<period>/")
@requires(Permission.INSIGHTS_READ)
def quarter_page(period: str) -> ResponseReturnValue:
    session = state.db()
    quarter = _quarter(period)
    volume, progress = _releases(session, quarter)
    sections = []
    # A deadline view appears on a day fixed by the quarter (once every deadline has passed by
    # the policy's limits): say when, rather than leave a gap.
    upcoming = []
    if volume.total is not None and progress is not None and progress.total is not None:
        for name, first in (
            ("acknowledgement", insights.acknowledgement_published_from(quarter)),
            ("feedback", insights.feedback_published_from(quarter)),
        ):
            if name not in progress.views and progress.method >= insights_releases.METHOD:
                upcoming.append((str(present.VIEW_TITLES[name]), first))
    if volume.total is not None:
        names = _names(session)
        for name in present.ALL_VIEWS:  # display order (stored releases sort their keys)
            release = progress if name in insights_releases.PROGRESS_VIEWS else volume
            if release is None or name not in release.views:
                continue
            grid = present.view_grid(release, name, names)
            sections.append((grid, _chart(grid, f"chart-{name}"), release))
    return _page(
        "insights/quarter.html",
        quarter=quarter,
        volume=volume,
        progress=progress,
        kpis=_kpis(session, volume, progress) if volume.total is not None else None,
        sections=sections,
        upcoming=upcoming,
    )


@bp.get("/<period>/<view>.csv")
@requires(Permission.INSIGHTS_READ)
def csv_file(period: str, view: str) -> ResponseReturnValue:
    session = state.db()
    quarter = _quarter(period)
    volume, progress = _releases(session, quarter)
    if volume.total is None:
        abort(404)  # nothing is published about this quarter but that fact
    if view == "kpis":
        grid = _kpis(session, volume, progress)
    else:
        release = progress if view in insights_releases.PROGRESS_VIEWS else volume
        if release is None or view not in release.views:
            abort(404)
        grid = present.view_grid(release, view, _names(session))
    # An export leaves a trace, like the audit log's (DESIGN.md invariant 6): which table, never
    # its content.
    audit.record(
        session,
        Action.INSIGHTS_EXPORTED,
        state.now(),
        actor=current_staff(),
        period=str(quarter),
        view=grid.name,
    )
    session.commit()
    response = make_response(present.to_csv(grid).encode("utf-8"))
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="insights-{quarter}-{grid.name}.csv"'
    )
    return response
