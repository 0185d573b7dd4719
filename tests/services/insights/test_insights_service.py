"""The insights service: what a release holds, when it is computed, and what never changes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.errors import InvalidInput
from portal.models import Case, Category, InsightRelease, Outcome
from portal.services.configuration import policy
from portal.services.insights import calendar as insights_calendar
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.services.insights.calendar import Quarter
from portal.services.insights.figures import _Row, _Taxonomy
from portal.services.insights.releases import Label
from tests.support import insights_helpers
from tests.support.factories import Portal

K = 5
AS_OF = dt.date(2026, 11, 1)
Q3 = Quarter(2026, 3)


def _taxonomy(**overrides: object) -> _Taxonomy:
    values: dict[str, object] = {
        "categories": {
            1: Label("pay", "Pay"),
            2: Label("safety", "Safety"),
            3: Label("fraud", "Fraud"),
        },
        "category_order": {1: 0, 2: 1, 3: 2},
        "units": {
            "site": [
                (10, Label("north", "North"), 300),
                (11, Label("tiny", "Tiny"), 8),
                (12, Label("south", "South"), 25),
            ],
            "department": [(20, Label("ops", "Ops"), None)],
        },
        "outcomes": [(1, Label("upheld", "Upheld"), True), (2, Label("not-upheld", "Not"), False)],
        "min_headcount": 20,
    }
    values.update(overrides)
    return _Taxonomy(**values)  # type: ignore[arg-type]


def _row(day: dt.date, category: int = 1, **fields: object) -> _Row:
    values: dict[str, object] = {
        "received_on": day,
        "category": category,
        "site": 10,
        "department": 20,
        "anonymous": True,
        "returned": False,
        "acknowledged_on": day + dt.timedelta(days=2),
        "acknowledge_due_on": day + dt.timedelta(days=7),
        "closed_on": None,
        "outcome": None,
        "feedback_on": None,
        "feedback_due_on": day + dt.timedelta(days=97),
    }
    values.update(fields)
    return _Row(**values)  # type: ignore[arg-type]


def test_quarters_parse_print_and_bound() -> None:
    q = Quarter.parse("2026-Q4")
    assert (str(q), q.start, q.end, q.months) == (
        "2026-Q4",
        dt.date(2026, 10, 1),
        dt.date(2027, 1, 1),
        ("2026-10", "2026-11", "2026-12"),
    )
    assert Quarter.of(dt.date(2026, 3, 31)) == Quarter(2026, 1)
    for bad in ("2026-Q5", "2026Q1", "2026-01", " 2026-Q1", "2026-Q1\n"):
        with pytest.raises(InvalidInput):
            Quarter.parse(bad)
    # Only quarters that have ended by the as-of date are released.
    assert insights_calendar.complete_quarters(dt.date(2026, 5, 3), dt.date(2026, 10, 1)) == [
        Quarter(2026, 2),
        Quarter(2026, 3),
    ]
    assert insights_calendar.complete_quarters(None, AS_OF) == []


def test_a_quarter_below_the_threshold_publishes_only_that_fact() -> None:
    rows = [_row(dt.date(2026, 7, 1 + i)) for i in range(4)]
    release = insights.volume_release(rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3))
    assert release.total is None and release.views == {}
    assert json.loads(release.to_json())["views"] == {}


def test_every_category_is_listed_and_small_counts_are_hidden_not_merged() -> None:
    rows = [_row(dt.date(2026, 7, 1), category=1) for _ in range(9)]
    rows += [_row(dt.date(2026, 8, 1), category=2) for _ in range(6)]
    rows += [_row(dt.date(2026, 9, 1), category=3, site=None) for _ in range(2)]
    release = insights.volume_release(rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3))

    category = release.views["category"]
    # fraud (2) is small: hidden, and so is one neighbour, so that 17 - 9 - 6 cannot give it.
    assert [label.code for label in category.rows] == ["pay", "safety", "fraud"]
    shown = dict(zip([label.code for label in category.rows], category.column(), strict=True))
    assert shown["fraud"] is None
    assert list(shown.values()).count(None) == 2
    assert shown["pay"] in (9, None) and shown["safety"] in (6, None)
    assert category.total == 17
    # Only partitions of the quarter by one attribute: no queue (routing would tie it to the
    # categories) and no cross-tab (it would share its margins with the one-way views).
    assert set(release.views) == {"months", "category", "site", "department", "anonymity"}
    assert all(not view.is_cross for view in release.views.values())
    # The tiny site (8 employees) is merged by headcount, from configuration, and the next
    # smallest joins it: "other" alone would be those 8 people.
    site = release.views["site"]
    assert [c.code for c in site.rows] == ["north", "other", "not-given"]
    assert release.headcounts["site"] == {"north": 300, "other": 33}
    # other 0 and not given 2 are both below k and add up to 2: north (15) is hidden with them.
    assert site.column() == (None, None, None) and site.total == 17


def test_zeros_are_hidden_with_small_counts_and_one_complement_only_when_needed() -> None:
    """The rule of every view: counts below k hidden, zeros too; one more only when the hidden
    ones are a single count or add up to less than k; never more than that."""
    months_rows = [_row(dt.date(2026, 7, 1)) for _ in range(3)]
    months_rows += [_row(dt.date(2026, 8, 1)) for _ in range(4)]
    months_rows += [_row(dt.date(2026, 9, 1)) for _ in range(9)]
    release = insights.volume_release(
        months_rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3)
    )
    # 3 and 4 are small and add up to 7 >= k: they cover each other, September stays shown.
    assert release.views["months"].column() == (None, None, 9)
    # Department: ops 16, not given 0: the zero is hidden, and then ops with it.
    assert release.views["department"].column() == (None, None)
    # Anonymity: named 0, came back 0, did not come back 16: all hidden.
    assert release.views["anonymity"].column() == (None, None, None)


def test_departments_are_a_view_of_their_own() -> None:
    rows = [_row(dt.date(2026, 7, 1), department=20) for _ in range(7)]
    rows += [_row(dt.date(2026, 7, 2), department=None) for _ in range(6)]
    release = insights.volume_release(rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3))
    department = release.views["department"]
    assert [label.code for label in department.rows] == ["ops", "not-given"]
    assert department.column() == (7, 6) and department.total == 13


def test_progress_is_as_of_the_first_of_the_month() -> None:
    day = dt.date(2026, 9, 20)
    rows = [
        _row(day, closed_on=dt.date(2026, 10, 20), outcome=1, feedback_on=dt.date(2026, 10, 20))
        for _ in range(6)
    ]
    rows += [
        _row(day, closed_on=dt.date(2026, 11, 2), outcome=2, feedback_on=dt.date(2026, 11, 2))
        for _ in range(6)
    ]
    rows += [_row(day, closed_on=dt.date(2026, 10, 5), outcome=2) for _ in range(3)]
    rows += [_row(day, closed_on=dt.date(2026, 10, 5)) for _ in range(2)]
    release = insights.progress_release(rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3))
    outcome = release.views["outcome"]
    # Closed on 2 November is after the as-of date (1 November): still open in this release.
    # not-upheld 3 and closed without an outcome 2 are small and cover each other (5 >= k).
    assert outcome.column() == (6, None, None, 6)
    assert [label.code for label in outcome.rows] == ["upheld", "not-upheld", "none", "open"]
    # 11 closed before 1 November: 5 after 15 days, 6 after 30.
    assert release.durations["close"] == insights_releases.Durations(30.0, 30.0)
    # Every acknowledgement deadline of Q3 has passed by 1 November (7 days at most after 30
    # September), so that view is published; feedback deadlines run into January, so not yet.
    assert insights.acknowledgement_published_from(Q3) == dt.date(2026, 11, 1)
    assert insights.feedback_published_from(Q3) == dt.date(2027, 2, 1)
    # All 17 on time, none late: the 0 is hidden, and so is the 17 with it.
    assert release.views["acknowledgement"].column() == (None, None)
    assert "feedback" not in release.views
    later = insights.progress_release(
        rows, Q3, dt.date(2027, 2, 1), K, _taxonomy(), insights_helpers.order(Q3)
    )
    # Feedback on 20 October and 2 November is on time (due 26 December); 5 never got any.
    assert later.views["feedback"].column() == (12, 5)
    assert [label.code for label in later.views["feedback"].rows] == ["on_time", "not_on_time"]


def test_whether_a_deadline_view_is_published_depends_on_the_quarter_only() -> None:
    """A view that appeared only when no case was still within its deadline would say that no
    concern arrived late in the quarter; the date is fixed by the quarter and the policy's
    limits (7 days, 3 months), whatever the cases."""
    early = [_row(dt.date(2026, 7, 1)) for _ in range(6)]
    late = [_row(dt.date(2026, 9, 30)) for _ in range(6)]
    for as_of in (dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2027, 1, 1)):
        names = [
            set(
                insights.progress_release(
                    rows, Q3, as_of, K, _taxonomy(), insights_helpers.order(Q3)
                ).views
            )
            for rows in (early, late)
        ]
        assert names[0] == names[1]
    q4 = Quarter(2026, 4)
    assert insights.acknowledgement_published_from(q4) == dt.date(2027, 2, 1)
    assert insights.feedback_published_from(q4) == dt.date(2027, 5, 1)


def test_kpis_come_from_shown_counts_only() -> None:
    late: dict[str, Any] = {"acknowledged_on": dt.date(2026, 7, 20)}
    rows = [_row(dt.date(2026, 7, 1), anonymous=False) for _ in range(10)]
    rows += [_row(dt.date(2026, 7, 2), returned=True, **late) for _ in range(5)]
    rows += [_row(dt.date(2026, 7, 3)) for _ in range(5)]
    volume = insights.volume_release(rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3))
    progress = insights.progress_release(
        rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3)
    )
    kpis = insights.kpis(volume, progress, ["upheld"])
    assert kpis.total == 20
    assert kpis.anonymous_share == 0.5
    assert kpis.follow_up_rate == 0.5
    assert kpis.acknowledged_on_time == 0.75
    assert kpis.feedback_on_time is None  # not published before February
    assert kpis.substantiation_rate is None  # nothing closed
    assert kpis.per_100_employees == pytest.approx(100 * 20 / 333)

    # 2 came back among 10 anonymous: hidden, and so is the follow-up rate.
    rows = [_row(dt.date(2026, 7, 1), anonymous=False) for _ in range(10)]
    rows += [_row(dt.date(2026, 7, 2), returned=True) for _ in range(2)]
    rows += [_row(dt.date(2026, 7, 3)) for _ in range(8)]
    volume = insights.volume_release(rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3))
    assert volume.views["anonymity"].value("anonymous_returned") is None
    assert insights.kpis(volume, None, []).follow_up_rate is None
    # Everything acknowledged on time: "not on time" is 0, hidden, and "on time" with it.
    progress = insights.progress_release(
        rows, Q3, AS_OF, K, _taxonomy(), insights_helpers.order(Q3)
    )
    assert progress.views["acknowledgement"].column() == (None, None)
    assert insights.kpis(volume, progress, []).acknowledged_on_time is None


def test_derived_figures_need_every_part() -> None:
    assert insights.derived_sum([5, 0, 7]) == 12
    assert insights.derived_sum([5, None]) is None
    view = insights_releases.View(
        "x",
        (Label("a", "a"), Label("b", "b"), Label("c", "c")),
        (Label("count", "count"),),
        ((None,), (None,), (9,)),
        None,
        None,
        15,
    )
    assert insights.subset_count(view, ["a", "b"]) == 6  # the total minus the shown rest
    assert insights.subset_count(view, ["a"]) is None
    assert insights.subset_count(view, ["c"]) == 9


# --- stored releases ---------------------------------------------------------------------------


def _cases(portal: Portal, n: int, day: dt.date, category: str = "pay") -> None:
    for _ in range(n):
        portal.submit(today=day, category_code=category, site_code="hq")


def test_refresh_computes_once_and_volume_never_changes(portal: Portal, db: Session) -> None:
    portal.staff("hana", queues=("hr", "general", "ethics", "safety"))
    _cases(portal, 6, dt.date(2026, 7, 10))
    report = insights_store.refresh(db, dt.date(2026, 10, 15), insights_helpers.KEY)
    db.commit()
    assert report.as_of == dt.date(2026, 10, 1)
    assert report.computed == ["2026-Q3 volume", "2026-Q3 progress"]
    before = db.scalar(select(InsightRelease.payload).where(InsightRelease.kind == "volume"))

    # A reclassification after the quarter ended does not change what was published ...
    other = db.scalar(select(Category.id).where(Category.code == "fraud"))
    db.execute(update(Case).values(org_category_id=other))
    assert insights_store.refresh(db, dt.date(2026, 10, 20), insights_helpers.KEY).computed == []
    # ... and next month only the progress figures are recomputed.
    assert insights_store.refresh(db, dt.date(2026, 11, 3), insights_helpers.KEY).computed == [
        "2026-Q3 progress"
    ]
    db.commit()
    after = db.scalar(select(InsightRelease.payload).where(InsightRelease.kind == "volume"))
    assert after == before
    progress = insights_store.load(db, Q3, insights_releases.PROGRESS)
    assert progress is not None and progress.as_of == dt.date(2026, 11, 1)
    assert insights_store.periods(db) == [Q3]


def test_a_quarter_keeps_the_threshold_it_was_published_with(portal: Portal, db: Session) -> None:
    portal.staff("hana", queues=("hr", "general", "ethics", "safety"))
    _cases(portal, 6, dt.date(2026, 7, 10))
    insights_store.refresh(db, dt.date(2026, 10, 15), insights_helpers.KEY)
    policy.update(db, anonymity_threshold=8, signal_threshold=8)
    insights_store.refresh(db, dt.date(2026, 11, 15), insights_helpers.KEY)
    progress = insights_store.load(db, Q3, insights_releases.PROGRESS)
    volume = insights_store.load(db, Q3, insights_releases.VOLUME)
    assert volume is not None and progress is not None
    assert volume.threshold == progress.threshold == 5
    assert volume.total == 6


def test_substantiated_codes_follow_the_outcomes(db: Session) -> None:
    expected = set(db.scalars(select(Outcome.code).where(Outcome.substantiated)))
    assert set(insights_store.substantiated_codes(db)) == expected and expected


def test_series_across_quarters_hides_what_a_release_hides() -> None:
    q2, q3 = Quarter(2026, 2), Quarter(2026, 3)
    shown = [_row(dt.date(2026, 7, 1)) for _ in range(6)]
    shown += [_row(dt.date(2026, 8, 1), closed_on=dt.date(2026, 8, 9), outcome=1) for _ in range(5)]
    shown += [_row(dt.date(2026, 9, 1), closed_on=dt.date(2026, 9, 9), outcome=2) for _ in range(4)]
    shown += [_row(dt.date(2026, 9, 2), closed_on=dt.date(2026, 9, 9))]
    too_few = [_row(q2.start) for _ in range(2)]
    releases = [
        (
            insights.volume_release(too_few, q2, AS_OF, K, _taxonomy(), insights_helpers.order(q2)),
            insights.progress_release(
                too_few, q2, AS_OF, K, _taxonomy(), insights_helpers.order(q2)
            ),
        ),
        (
            insights.volume_release(shown, q3, AS_OF, K, _taxonomy(), insights_helpers.order(q3)),
            insights.progress_release(shown, q3, AS_OF, K, _taxonomy(), insights_helpers.order(q3)),
        ),
    ]
    figures = insights.series(releases)
    assert figures.trend == [("2026-Q2", None), ("2026-Q3", 16)]
    assert figures.months == [
        ("2026-04", None),
        ("2026-05", None),
        ("2026-06", None),
        ("2026-07", 6),
        ("2026-08", 5),
        ("2026-09", 5),
    ]
    assert figures.backlog == [("2026-Q2", None), ("2026-Q3", 6)]
    assert figures.backlog_total is None  # one part hidden: no total
    assert insights.series(releases[1:]).backlog_total == 6
