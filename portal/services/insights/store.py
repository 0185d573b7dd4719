"""Refreshing the stored releases, and reading them: what pages, CSV and the API serve."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Case, InsightRelease, Outcome, RetainedCase
from portal.services.configuration import policy
from portal.services.insights.calendar import Quarter, complete_quarters, release_date
from portal.services.insights.figures import (
    _rows,
    _Taxonomy,
    _taxonomy,
    keyed_order,
    progress_release,
    volume_release,
)
from portal.services.insights.releases import (
    PROGRESS,
    PROGRESS_VIEWS,
    VOLUME,
    VOLUME_VIEWS,
    Release,
)


@dataclass(frozen=True)
class RefreshReport:
    as_of: dt.date
    computed: list[str]


def refresh(session: Session, today: dt.date, key: bytes) -> RefreshReport:
    """Compute what is missing: the volume release of every complete quarter that has none,
    and every progress release older than this month's. Idempotent; the caller commits.
    ``key`` orders complements (:func:`release_key`); it must stay the same over time."""
    as_of = release_date(today)
    # A quarter keeps the threshold it was first published with: two releases of the same
    # cases protected differently could be combined to undo the protection.
    current_k = policy.values(session).anonymity_threshold
    firsts = [
        session.scalar(select(func.min(Case.received_on))),
        session.scalar(select(func.min(RetainedCase.received_on))),
    ]
    first = min((d for d in firsts if d is not None), default=None)
    existing = {(r.period, r.kind): r for r in session.scalars(select(InsightRelease))}
    taxonomy: _Taxonomy | None = None
    computed = []
    for quarter in complete_quarters(first, as_of):
        volume = existing.get((str(quarter), VOLUME))
        progress = existing.get((str(quarter), PROGRESS))
        if volume is not None and progress is not None and progress.as_of >= as_of:
            continue
        taxonomy = taxonomy or _taxonomy(session)
        rows = _rows(session, quarter)
        k = current_k if volume is None else volume.threshold
        order = keyed_order(key, quarter)
        if volume is None:
            session.add(_row(volume_release(rows, quarter, as_of, k, taxonomy, order)))
            computed.append(f"{quarter} {VOLUME}")
        fresh = progress_release(rows, quarter, as_of, k, taxonomy, order)
        if progress is None:
            session.add(_row(fresh))
        else:
            progress.as_of, progress.threshold = fresh.as_of, fresh.threshold
            progress.payload = fresh.to_json()
        computed.append(f"{quarter} {PROGRESS}")
    session.flush()
    return RefreshReport(as_of, computed)


def _row(release: Release) -> InsightRelease:
    return InsightRelease(
        period=str(release.period),
        kind=release.kind,
        as_of=release.as_of,
        threshold=release.threshold,
        payload=release.to_json(),
    )


def periods(session: Session) -> list[Quarter]:
    """Released quarters, oldest first."""
    return sorted(
        Quarter.parse(p)
        for p in session.scalars(select(InsightRelease.period).where(InsightRelease.kind == VOLUME))
    )


def load(session: Session, quarter: Quarter, kind: str) -> Release | None:
    row = session.scalar(
        select(InsightRelease).where(
            InsightRelease.period == str(quarter), InsightRelease.kind == kind
        )
    )
    if row is None:
        return None
    release = Release.from_json(row.payload)
    # Only the views of the current method are served: a release stored with method 1 also
    # holds the queue view and the category-by-site table, which are not safe to show.
    served = VOLUME_VIEWS if kind == VOLUME else PROGRESS_VIEWS
    views = {name: view for name, view in release.views.items() if name in served}
    durations = {name: d for name, d in release.durations.items() if name == "close"}
    return dataclasses.replace(release, views=views, durations=durations)


def substantiated_codes(session: Session) -> list[str]:
    return list(session.scalars(select(Outcome.code).where(Outcome.substantiated)))
