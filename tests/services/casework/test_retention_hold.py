"""Retention and legal hold (issue 6): the purge never deletes a held case, the runs count the
cases kept because of a hold, the warning mail and the case list's notice leave held cases out,
and a hold lifted after the period ran out leads to a fresh warning before any purge."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import AuditEvent, Case
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import hold, retention
from portal.services.configuration import policy
from tests.services.casework import test_retention
from tests.services.casework.test_retention import T0, TODAY, Runner, _case_ids, _close, _snapshot
from tests.support.factories import Portal
from tests.support.pages import login
from tests.support.smtp_server import SmtpServer

REASON = "Regulator's inquiry 2026/17 asked us to keep this case, marker 9040."
KEPT = "keep {} case(s) past their period on legal hold"

# The instance of test_retention.py: its mail server and its settings (which send to it).
smtp = test_retention.smtp
settings = test_retention.settings


@pytest.fixture
def run(app: Flask) -> Runner:
    return Runner(app)


@pytest.fixture
def world(portal: Portal, db: Session) -> dict[str, Any]:
    """A policy of 200 days: two cases closed on 2025-11-01, whose period ended on 2026-05-20
    (before T0); ``held`` is on legal hold, ``free`` is not. Alice holds both keys."""
    alice = portal.staff("alice")
    policy.update(db, retention_days=200)
    db.commit()
    held = portal.submit(dt.date(2025, 10, 10))
    free = portal.submit(dt.date(2025, 10, 11))
    for done in (held, free):
        _close(db, done.case_id, dt.date(2025, 11, 1), "unsubstantiated")
    hold.place(db, alice, portal.private_key(alice), held.handle, REASON, T0 - dt.timedelta(days=3))
    db.commit()
    return {"alice": alice, "held": held, "free": free}


def _case(db: Session, case_id: str) -> Case:
    db.expire_all()
    return db.get_one(Case, case_id)


def _runs(db: Session) -> list[dict[str, object]]:
    db.expire_all()
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.action == Action.RETENTION_RUN.value)
        .order_by(AuditEvent.seq)
    )
    return [audit.detail_of(e) for e in db.scalars(stmt)]


def test_a_held_case_is_never_warned_about_nor_purged_and_each_run_counts_it(
    world: dict[str, Any], db: Session, run: Runner, smtp: SmtpServer
) -> None:
    code, out, err = run(T0)
    assert code == 0, err
    assert "warn about 1 closed case(s) (1 message(s)); delete 0 case(s)" in out
    assert KEPT.format(1) in out
    # The mail counts the free case only.
    [received] = smtp.recorder.received
    assert "1 closed case you hold" in received.body
    assert "placed on legal hold, or reopened" in " ".join(received.body.split())
    assert _case(db, world["held"].case_id).purge_warned_on is None

    code, out, _ = run(T0 + dt.timedelta(days=30))
    assert "delete 1 case(s)" in out and KEPT.format(1) in out
    assert _case_ids(db) == {world["held"].case_id}
    # Years later it is still there, and never warned about.
    code, out, _ = run(T0 + dt.timedelta(days=3000))
    assert "warn about 0 closed case(s)" in out and KEPT.format(1) in out
    assert _case_ids(db) == {world["held"].case_id}
    assert len(smtp.recorder.received) == 1
    # The audit events count it, and name no case.
    assert _runs(db) == [
        {"warned": 1, "recipients": 1, "failed": 0, "purged": 0, "held": 1},
        {"warned": 0, "recipients": 0, "failed": 0, "purged": 1, "held": 1},
    ]
    assert audit.verify(db).ok


def test_the_dry_run_reports_the_held_cases_and_changes_nothing(
    world: dict[str, Any], portal: Portal, db: Session, run: Runner, smtp: SmtpServer
) -> None:
    run(T0)
    before = _snapshot(db)
    code, out, _ = run(T0 + dt.timedelta(days=30), "--dry-run")
    assert code == 0
    assert "would delete 1 case(s); keep 1 case(s) past their period on legal hold" in out
    assert world["held"].handle not in out and world["free"].handle not in out
    assert _snapshot(db) == before
    # Without the hold, the same dry run would delete both.
    alice = world["alice"]
    hold.lift(
        db, alice, portal.private_key(alice), world["held"].handle, T0 + dt.timedelta(days=30)
    )
    db.commit()
    code, out, _ = run(T0 + dt.timedelta(days=30), "--dry-run")
    assert "would warn about 1 closed case(s)" in out
    assert "would delete 1 case(s); " + KEPT.format(0) in out
    assert len(smtp.recorder.received) == 1


def test_a_case_warned_then_held_is_kept_and_warned_again_after_the_lift(
    world: dict[str, Any], portal: Portal, db: Session, run: Runner, smtp: SmtpServer
) -> None:
    alice = world["alice"]
    key = portal.private_key(alice)
    free = world["free"]
    run(T0)
    assert _case(db, free.case_id).purge_warned_on == TODAY
    # Held during the warning period: the warning no longer counts.
    hold.place(db, alice, key, free.handle, REASON, T0 + dt.timedelta(days=5))
    db.commit()
    assert _case(db, free.case_id).purge_warned_on is None
    code, out, _ = run(T0 + dt.timedelta(days=30))
    assert "delete 0 case(s)" in out and KEPT.format(2) in out
    assert free.case_id in _case_ids(db)

    # Lifted long after its period ran out: the next run warns again and deletes nothing.
    lifted_on = T0 + dt.timedelta(days=40)
    hold.lift(db, alice, key, free.handle, lifted_on)
    db.commit()
    sent = len(smtp.recorder.received)
    code, out, _ = run(lifted_on)
    assert code == 0
    assert "warn about 1 closed case(s)" in out and "delete 0 case(s)" in out
    assert len(smtp.recorder.received) == sent + 1
    assert _case(db, free.case_id).purge_warned_on == lifted_on.date()
    # The whole warning period runs from that new warning.
    run(lifted_on + dt.timedelta(days=29))
    assert free.case_id in _case_ids(db)
    _code, out, _ = run(lifted_on + dt.timedelta(days=30))
    assert "delete 1 case(s)" in out
    assert free.case_id not in _case_ids(db)
    assert world["held"].case_id in _case_ids(db)


def test_a_lift_with_no_run_in_between_still_waits_for_a_new_warning(
    world: dict[str, Any], portal: Portal, db: Session, run: Runner
) -> None:
    """Warned, held, lifted, all between two runs: the old warning is gone, so the run that
    follows warns instead of purging, even though warning and period are long over."""
    alice = world["alice"]
    key = portal.private_key(alice)
    free = world["free"]
    run(T0)
    hold.place(db, alice, key, free.handle, REASON, T0 + dt.timedelta(days=1))
    hold.lift(db, alice, key, free.handle, T0 + dt.timedelta(days=2))
    db.commit()
    _code, out, _ = run(T0 + dt.timedelta(days=100))
    assert "warn about 1 closed case(s)" in out and "delete 0 case(s)" in out
    assert free.case_id in _case_ids(db)


def test_the_case_list_leaves_held_cases_out_of_the_will_be_deleted_notice(
    world: dict[str, Any], portal: Portal, app: Flask, db: Session, run: Runner
) -> None:
    alice = world["alice"]
    held, free = world["held"], world["free"]
    client = app.test_client()
    login(client, alice)
    run(T0)

    def notice() -> str:
        page = client.get("/staff/").text
        if 'id="retention-pending"' not in page:
            return ""
        return page.split('id="retention-pending"')[1].split("</div>")[0]

    assert free.handle in notice() and held.handle not in notice()
    assert 'class="hold-marker"' in client.get("/staff/").text
    # Held after its warning: out of the notice, marked as held in its row.
    hold.place(db, alice, portal.private_key(alice), free.handle, REASON, T0)
    db.commit()
    assert notice() == ""
    # Lifted: back in the notice only once the next run has warned again.
    hold.lift(db, alice, portal.private_key(alice), free.handle, T0 + dt.timedelta(days=1))
    db.commit()
    assert notice() == ""
    run(T0 + dt.timedelta(days=1))
    app.extensions["portal"].clock = lambda: T0  # back to the time of the session's last use
    assert free.handle in notice()
    assert (T0 + dt.timedelta(days=31)).date().isoformat() in notice()


def test_the_purge_leaves_a_held_case_whoever_asks(world: dict[str, Any], db: Session) -> None:
    held = _case(db, world["held"].case_id)
    assert retention.purge(db, [held]) == 0
    db.commit()
    assert world["held"].case_id in _case_ids(db)


def test_a_hold_placed_while_a_run_is_under_way_wins(
    world: dict[str, Any], app: Flask, db: Session, run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another app server places a hold after the run has read its plan: the purge reads the
    hold again before deleting, and counts the case as kept."""
    run(T0)
    free = world["free"]
    planned = retention.plan

    def plan_then_hold(session: Session, today: dt.date) -> retention.Plan:
        todo = planned(session, today)
        assert [d.case.id for d in todo.to_purge] == [free.case_id]
        with app.extensions["portal"].sessions() as other:
            other.get_one(Case, free.case_id).held_on = today
            other.commit()
        return todo

    monkeypatch.setattr(retention, "plan", plan_then_hold)
    code, out, _ = run(T0 + dt.timedelta(days=30))

    assert code == 0
    assert "delete 0 case(s)" in out and KEPT.format(2) in out
    assert _case_ids(db) == {world["held"].case_id, free.case_id}
