"""The routes of the insights API. Each reads stored releases only (never a case), through the
same service as the insights pages, so the figures are exactly those pages' figures."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, jsonify, url_for
from flask.typing import ResponseReturnValue

from portal.errors import InvalidInput
from portal.services.insights import calendar as insights_calendar
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.web import state
from portal.web.api.blueprint import bp
from portal.web.api.openapi import document
from portal.web.errors import api_error

# GET only: HEAD comes with it; OPTIONS would only advertise, so it is 405 like any other.
_GET = {"methods": ["GET"], "provide_automatic_options": False}


def _release_json(release: insights_releases.Release) -> dict[str, Any]:
    """The stored release as it is stored (``to_json`` is what the database holds)."""
    data: dict[str, Any] = json.loads(release.to_json())
    return data


def kpis_json(value: insights.Kpis) -> dict[str, Any]:
    return {
        "period": str(value.period),
        "total": value.total,
        "per_100_employees": value.per_100_employees,
        "anonymous_share": value.anonymous_share,
        "follow_up_rate": value.follow_up_rate,
        "substantiation_rate": value.substantiation_rate,
        "acknowledged_on_time": value.acknowledged_on_time,
        "feedback_on_time": value.feedback_on_time,
        "open_cases": value.open_cases,
        "close_days": {"median": value.close_days.median, "p90": value.close_days.p90},
    }


def _releases(
    period: str,
) -> tuple[insights_releases.Release, insights_releases.Release | None] | None:
    try:
        quarter = insights_calendar.Quarter.parse(period)
    except InvalidInput:
        return None
    session = state.db()
    volume = insights_store.load(session, quarter, insights_releases.VOLUME)
    if volume is None:
        return None
    return volume, insights_store.load(session, quarter, insights_releases.PROGRESS)


def _unknown_period(period: str) -> Response:
    return api_error(404, f"No released quarter {period!r}: see /api/v1/insights/periods.")


def _kpis(
    volume: insights_releases.Release, progress: insights_releases.Release | None
) -> dict[str, Any]:
    return kpis_json(
        insights.kpis(volume, progress, insights_store.substantiated_codes(state.db()))
    )


@bp.route("/insights/periods", **_GET)
def periods() -> ResponseReturnValue:
    return jsonify(
        {
            "periods": [
                {"period": str(q), "url": url_for("api.period", period=str(q))}
                for q in insights_store.periods(state.db())
            ]
        }
    )


@bp.route("/insights/<period>", **_GET)
def period(period: str) -> ResponseReturnValue:
    found = _releases(period)
    if found is None:
        return _unknown_period(period)
    volume, progress = found
    return jsonify(
        {
            "period": str(volume.period),
            "volume": _release_json(volume),
            "progress": None if progress is None else _release_json(progress),
            "kpis": _kpis(volume, progress),
        }
    )


@bp.route("/insights/<period>/kpis", **_GET)
def kpis(period: str) -> ResponseReturnValue:
    found = _releases(period)
    if found is None:
        return _unknown_period(period)
    return jsonify(_kpis(*found))


@bp.route("/insights/<period>/<view>", **_GET)
def view(period: str, view: str) -> ResponseReturnValue:
    found = _releases(period)
    if found is None:
        return _unknown_period(period)
    for release in found:
        if release is not None and view in release.views:
            return jsonify(
                {
                    "period": str(release.period),
                    "kind": release.kind,
                    "as_of": release.as_of.isoformat(),
                    "threshold": release.threshold,
                    "view": release.views[view].to_json(),
                }
            )
    return api_error(
        404, f"No view {view!r} in {period}: a quarter below the threshold publishes none."
    )


@bp.route("/openapi.json", **_GET)
def openapi() -> ResponseReturnValue:
    return jsonify(document())
