"""The strongest reader of the insights: one who knows everything but the cases and the key.

Issue 13, HIGH 1. The reader knows the taxonomy, the routing rules, the workflow, the code of
the publication (so the suppression rule) and every figure of every view of a quarter. They do
not know the server's key, so not the order in which a view takes its one complement. For each
hidden count they ask: which values could it have, given that replaying the code on those cases
must give, byte for byte, what was published, under some order? The answer must always include
0 and a value of k or more (``docs/insights.md``, "Who reads the figures").

The argument has three parts, each tested here:

1. **Per view, exactly**: replaying the engine's own view builder under every order the reader
   cannot rule out, on every redistribution of the hidden total over the hidden rows (searched
   exhaustively until a witness is found), each hidden count can be 0 and can be k or more.
2. **Across views**: every attribute is in one view only (the star, ``test_insights_safety``)
   and any combination of the published attributes can happen under the portal's rules, so a
   witness for one view changes no other view. The dates are the only rules that tie
   attributes together (month, deadlines, closing); the combination test finds real dates
   for each combination on every publication day.
3. **Routing**: no figure depends on the queue, so knowing how concerns are routed adds
   nothing: moving every case to another queue changes no byte of any release.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence

from hypothesis import example, given
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from portal.models import Case, InsightRelease, Queue
from portal.services.casework import deadlines
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.services.insights.releases import Label, Release, View
from tests.invariants.test_insights_safety import (
    ONE_WAY,
    ORDER,
    QUARTER,
    SETTINGS,
    Scenario,
    _deadline_class,
    _expected,
    _first,
    _four_categories,
    scenarios,
)
from tests.support import insights_helpers
from tests.support.factories import Portal


def _compositions(total: int, parts: int) -> Iterable[tuple[int, ...]]:
    """Every way to write ``total`` as ``parts`` non-negative whole numbers, concentrated ones
    first (a witness is usually found at once)."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def _replays(view: View, counts: Sequence[int], k: int) -> bool:
    """Whether the engine, on a quarter whose ``view`` counts are ``counts``, publishes exactly
    ``view`` under some order of complements (only the first row of an order can matter)."""
    labels = list(view.rows)
    return any(
        insights._one_way(view.name, labels, counts, k, _first(view.name, index)) == view
        for index in range(len(labels))
    )


def _possible(view: View, k: int, row: int, wanted: Iterable[int]) -> int | None:
    """The first value of ``wanted`` that hidden row ``row`` of ``view`` could have for the
    reader: some split of the hidden total, with that value in ``row``, replays to ``view``."""
    assert view.total is not None
    shown = [cell[0] for cell in view.cells]
    hidden = [i for i, value in enumerate(shown) if value is None]
    rest = [i for i in hidden if i != row]
    total_hidden = view.total - sum(v for v in shown if v is not None)
    for value in wanted:
        if value > total_hidden:
            return None
        for split in _compositions(total_hidden - value, len(rest)):
            counts = [v if v is not None else 0 for v in shown]
            counts[row] = value
            for i, n in zip(rest, split, strict=True):
                counts[i] = n
            if _replays(view, counts, k):
                return value
    return None


def _check_every_hidden_count(release: Release, true_counts: dict[str, list[int]]) -> None:
    k = release.threshold
    for view in release.views.values():
        assert _replays(view, true_counts[view.name], k), "the truth is a possible world"
        assert view.total is not None
        for row, (value,) in enumerate(view.cells):
            if value is not None:
                continue
            assert _possible(view, k, row, [0]) == 0, (view.name, row, "could be 0")
            high = _possible(view, k, row, range(k, view.total + 1))
            assert high is not None and high >= k, (view.name, row, "could be k or more")


def _true_counts(s: Scenario, release: Release) -> dict[str, list[int]]:
    """Each view's counts before hiding, recomputed from the rows (independently of the
    engine's builders): the reader does not see these; the test needs them for the truth."""
    out: dict[str, list[int]] = {}
    for view in release.views.values():
        out[view.name] = [_count_of(s, view.name, label.code) for label in view.rows]
    return out


def _count_of(s: Scenario, name: str, code: str) -> int:
    cases = _expected(s).cases
    return sum(case[ONE_WAY[name]] == code for case in cases)


@SETTINGS
@given(scenarios(min_rows=3))
@example(_four_categories())
def test_a_reader_who_replays_the_rule_under_every_order_pins_no_hidden_count(s: Scenario) -> None:
    for release in (s.volume(), s.progress()):
        if release.total is None:
            continue
        _check_every_hidden_count(release, _true_counts(s, release))


def test_the_demo_quarter_of_the_finding_no_longer_pins_the_board_queue() -> None:
    """The review's example, 2026-Q3 of the demo: general 11, hr 16, ethics 7, safety and board
    hidden, total 40; the category safety 5; safety concerns go to the safety queue, so board
    was exactly 1. No queue is published now, and the categories alone pin nothing: a board
    concern among 40 (1 of them, or 0, or 5) could be any of those."""
    labels = [Label(c, c) for c in ("pay", "harassment", "safety", "fraud", "board")]
    counts = [11, 16, 5, 7, 1]
    view = insights._one_way("category", labels, counts, 5, ORDER)
    assert view.value("board") is None and view.total == 40
    release = Release(
        QUARTER, insights_releases.VOLUME, dt.date(2026, 4, 1), 5, 40, {"category": view}
    )
    _check_every_hidden_count(release, {"category": counts})


# --- part 2: every combination of published attributes can happen ------------------------------

#: What the reader knows of the rules that tie dates together (policy limits included):
#: acknowledgement due 1 to 7 days after receipt; feedback due 1 to 3 months after the
#: acknowledgement, or after its deadline if there was none; a case is acknowledged at the
#: latest when it is closed (closing acknowledges it first); events happen on or after receipt.
ACK_DAYS = range(1, 8)
FEEDBACK_MONTHS = range(1, 4)


def _classes(
    received: dt.date,
    ack_days: int,
    feedback_months: int,
    acknowledged: dt.date | None,
    closed: dt.date | None,
    feedback: dt.date | None,
    as_of: dt.date,
) -> tuple[str, str, str, str]:
    ack_due = received + dt.timedelta(days=ack_days)
    feedback_due = deadlines.add_months(acknowledged or ack_due, feedback_months)
    return (
        f"{received:%Y-%m}",
        _deadline_class(acknowledged, ack_due, as_of),
        _deadline_class(feedback, feedback_due, as_of),
        "closed" if closed is not None and closed < as_of else "open",
    )


def _histories(month: int, as_of: dt.date) -> Iterable[tuple[str, str, str, str]]:
    """The classes of a sample of histories allowed by the rules, for a case of ``month``."""
    for day in (1, 28):
        received = dt.date(QUARTER.year, month, day)
        for ack_days, feedback_months in itertools.product(ACK_DAYS, FEEDBACK_MONTHS):
            moments = [None, *(received + dt.timedelta(days=d) for d in (0, 5, 9, 40, 100, 150))]
            for acknowledged, closed, feedback in itertools.product(moments, repeat=3):
                if closed is not None and (acknowledged is None or acknowledged > closed):
                    continue
                yield _classes(
                    received, ack_days, feedback_months, acknowledged, closed, feedback, as_of
                )


def test_every_combination_of_published_classes_can_happen() -> None:
    """On every day a progress release can be made, and for each class the deadline views of
    that day publish, every (month, acknowledgement, feedback, open or closed) combination is
    the history of some case. So a witness that changes one attribute of some cases is a real
    quarter, and what one view hides cannot be narrowed by another through the dates."""
    for as_of in (deadlines.add_months(QUARTER.end, n) for n in range(7)):
        ack = as_of >= insights.acknowledgement_published_from(QUARTER)
        feedback = as_of >= insights.feedback_published_from(QUARTER)
        seen = {
            (m, a if ack else None, f if feedback else None, state)
            for month in (1, 2, 3)
            for m, a, f, state in _histories(month, as_of)
        }
        classes = ("on_time", "not_on_time")
        for month, a, f, state in itertools.product(
            QUARTER.months, classes, classes, ("open", "closed")
        ):
            wanted = (month, a if ack else None, f if feedback else None, state)
            assert wanted in seen, (as_of, wanted)


# --- part 3: the queue -------------------------------------------------------------------------


def test_no_published_figure_depends_on_the_queue(portal: Portal, db: Session) -> None:
    """Routing makes the queue a function of the category, site and words of a concern, and
    the reader knows the routing rules. No figure depends on the queue: moving every case to
    another queue and computing the releases again gives the same bytes."""
    portal.staff("hana", queues=("hr", "general", "ethics", "safety"))
    for i in range(14):
        portal.submit(
            today=dt.date(2026, 7, 1 + i),
            category_code=("pay", "safety", "harassment")[i % 3],
            site_code="hq",
        )
    today = dt.date(2026, 12, 2)
    insights_store.refresh(db, today, insights_helpers.KEY)
    before = {(r.period, r.kind): r.payload for r in db.scalars(select(InsightRelease))}
    assert before
    queues = list(db.scalars(select(Queue.id)))
    for case in db.scalars(select(Case)):
        db.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(queue_id=queues[(queues.index(case.queue_id) + 1) % len(queues)])
        )
    db.execute(delete(InsightRelease))
    insights_store.refresh(db, today, insights_helpers.KEY)
    after = {(r.period, r.kind): r.payload for r in db.scalars(select(InsightRelease))}
    assert after == before
    assert all("queue" not in insights_releases.Release.from_json(p).views for p in after.values())
