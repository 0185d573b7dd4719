"""The audit chain: appends, verification, tamper detection, and reporter events as day counts."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from flask import Flask
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from portal.models import AuditEvent, AuditHead
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from tests.support.factories import Portal

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def _chain(portal: Portal, db: Session, n: int = 5) -> None:
    user = portal.staff("olga")
    for i in range(n):
        audit.record(db, Action.LOGIN, T0 + dt.timedelta(minutes=i), actor=user)
    db.commit()


def test_events_chain_and_verify(portal: Portal, db: Session) -> None:
    _chain(portal, db)
    rows = list(db.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    logins = [r for r in rows if r.action == Action.LOGIN]
    assert len(logins) == 5
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    result = audit.verify(db)
    assert result.ok and result.checked == len(rows)
    assert result.head_hash == rows[-1].hash.hex()


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "delete_tail", "swap"])
def test_tampering_is_found_at_the_first_broken_link(
    portal: Portal, db: Session, tamper: str
) -> None:
    _chain(portal, db)
    last = db.scalar(select(AuditHead.seq))
    assert last is not None and last >= 5
    target = last - 2
    if tamper == "edit":
        db.execute(
            update(AuditEvent).where(AuditEvent.seq == target).values(actor_email="x@example.org")
        )
    elif tamper == "delete_middle":
        db.execute(delete(AuditEvent).where(AuditEvent.seq == target))
    elif tamper == "delete_tail":
        db.execute(delete(AuditEvent).where(AuditEvent.seq == last))
        target = last
    else:  # reorder two neighbours
        db.execute(update(AuditEvent).where(AuditEvent.seq == target).values(seq=-1))
        db.execute(update(AuditEvent).where(AuditEvent.seq == target + 1).values(seq=target))
        db.execute(update(AuditEvent).where(AuditEvent.seq == -1).values(seq=target + 1))
    db.commit()
    db.expire_all()
    result = audit.verify(db)
    assert not result.ok
    assert result.broken_seq == target, result


def test_a_forged_chain_without_the_key_does_not_verify(portal: Portal, db: Session) -> None:
    """Someone with only the database recomputes the chain with a key of their own."""
    from portal import crypto
    from portal.services.audit.chain import _payload

    _chain(portal, db)
    prev = audit.GENESIS
    for event in db.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        if event.seq == 2:
            event.actor_email = "someone-else@example.org"
        event.prev_hash = prev
        event.hash = crypto.chain_hash(b"k" * 32, prev, _payload(event))
        prev = event.hash
    head = db.get_one(AuditHead, audit.HEAD_ID)
    head.hash = prev
    db.commit()
    result = audit.verify(db)
    assert not result.ok and result.broken_seq == 1


def test_anchor_catches_a_truncated_log(portal: Portal, db: Session) -> None:
    _chain(portal, db)
    anchor = audit.verify(db)
    assert audit.verify(db, (anchor.head_seq, anchor.head_hash)).ok
    # Remove the last event and move the head back: consistent, but the anchor is gone.
    db.execute(delete(AuditEvent).where(AuditEvent.seq == anchor.head_seq))
    previous = db.get_one(AuditEvent, anchor.head_seq - 1)
    head = db.get_one(AuditHead, audit.HEAD_ID)
    head.seq, head.hash = previous.seq, previous.hash
    db.commit()
    # The head's seal (issue 13, finding 11) shows the cut even without the anchor.
    alone = audit.verify(db)
    assert not alone.ok and alone.truncated
    result = audit.verify(db, (anchor.head_seq, anchor.head_hash))
    assert not result.ok and result.broken_seq == anchor.head_seq


def test_reporter_events_enter_as_day_counts_only(portal: Portal, db: Session) -> None:
    user = portal.staff("olga")
    day1, day3 = dt.date(2026, 3, 1), dt.date(2026, 3, 3)
    portal.submit(today=day1)
    portal.submit(today=day1)
    portal.submit(today=day3)
    # A staff event on day 3 rolls up days 1 and 2 (day 3 is not over yet).
    audit.record(db, Action.LOGIN, dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC), actor=user)
    db.commit()
    days = list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == Action.REPORTER_DAY)
            .order_by(AuditEvent.seq)
        )
    )
    assert [audit.detail_of(e) for e in days] == [
        {"day": "2026-03-01", "concerns": 2, "reporter_messages": 0},
        {"day": "2026-03-02", "concerns": 0, "reporter_messages": 0},
    ]
    for event in days:
        assert event.case_id is None and event.case_handle is None and event.actor_id is None
        assert event.at.time() == dt.time(0, 0), "stamped at midnight, not at any event's time"
    # Later: day 3 joins, once.
    audit.record(db, Action.LOGOUT, dt.datetime(2026, 3, 5, 8, tzinfo=dt.UTC), actor=user)
    audit.record(db, Action.LOGIN, dt.datetime(2026, 3, 5, 9, tzinfo=dt.UTC), actor=user)
    db.commit()
    counted = [
        audit.detail_of(e)["day"]
        for e in db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == Action.REPORTER_DAY)
            .order_by(AuditEvent.seq)
        )
    ]
    assert counted == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    assert audit.verify(db).ok


def test_no_reporter_event_is_recorded_as_it_happens(portal: Portal, db: Session) -> None:
    portal.staff("olga")
    before = db.scalar(select(AuditHead.seq))
    portal.submit()
    assert db.scalar(select(AuditHead.seq)) == before


def test_session_without_key_refuses(database: object, app: Flask) -> None:
    from sqlalchemy.orm import Session as PlainSession

    with (
        PlainSession(app.extensions["portal"].engine) as session,
        pytest.raises(audit.AuditKeyMissing),
    ):
        audit.record(session, Action.LOGIN, T0)


def test_cli_verify_reports_intact_and_broken(portal: Portal, db: Session, app: Flask) -> None:
    _chain(portal, db)
    flask_runner = app.test_cli_runner()
    result = flask_runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
    anchor = result.output.split("anchor (note it down elsewhere): ")[1].strip()
    db.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(action="logout"))
    db.commit()
    broken = flask_runner.invoke(args=["audit", "verify", "--expect", anchor])
    assert broken.exit_code == 1
    assert "BROKEN at event 2" in broken.output
    bad = flask_runner.invoke(args=["audit", "verify", "--expect", "nonsense"])
    assert bad.exit_code == 2 and "SEQ:HASH" in bad.output
