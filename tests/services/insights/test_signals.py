"""Systemic signals (`portal insights signals`), the insights refresh job, and the follow-up
flag the insights count: what is alerted, to whom, once, and what is stored."""

from __future__ import annotations

import datetime as dt
import json

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import AuditEvent, Case, InsightRelease, OrgUnit, SignalAlert
from portal.services.audit.chain import Action
from portal.services.insights import signals
from tests.support.factories import Portal
from tests.support.pages import login, open_followup

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
IN_QUARTER = dt.date(2026, 10, 5)
HARASSMENT = "Harassment, bullying or sexual harassment"


def _invoke(app: Flask, *args: str) -> tuple[int, str]:
    app.extensions["portal"].clock = lambda: NOW
    result = app.test_cli_runner().invoke(args=list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _concerns(portal: Portal, n: int, *, site: str = "hq", day: dt.date = IN_QUARTER) -> None:
    for i in range(n):
        portal.submit(
            today=day,
            category_code="harassment",
            site_code=site,
            description=f"Concern number {i} with words nobody else wrote.",
        )


def _events(db: Session, action: Action) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


def test_a_pattern_alerts_the_queue_once_with_the_threshold_not_the_count(
    app: Flask, portal: Portal, db: Session
) -> None:
    member = portal.staff("hana", queues=("hr",))
    _concerns(portal, 6)
    queue_ids = set(db.scalars(select(Case.queue_id)))
    assert len(queue_ids) == 1

    code, output = _invoke(app, "insights", "signals")

    assert code == 0, output
    words = " ".join(output.split())  # the mail body is wrapped
    assert f"5 or more concerns about {HARASSMENT} at site Head office" in words
    body = words.split("arrived this quarter:")[1].split("This alert")[0]
    assert "6" not in body  # the threshold, never the exact count
    assert member.email in output
    for case in db.scalars(select(Case)):
        assert case.handle not in output
    assert "words nobody else wrote" not in output
    alerts = list(db.scalars(select(SignalAlert)))
    assert [(a.period, a.threshold, a.notified) for a in alerts] == [("2026-Q4", 5, True)]
    assert json.loads(_events(db, Action.SIGNALS_RAISED)[0].detail)["signals"] == 1

    code, output = _invoke(app, "insights", "signals")
    assert "no new systemic signal" in output
    assert db.scalar(select(SignalAlert.id).where(SignalAlert.id != alerts[0].id)) is None


def test_below_the_threshold_or_in_a_small_unit_nothing_is_raised(
    app: Flask, portal: Portal, db: Session
) -> None:
    portal.staff("hana", queues=("hr", "general"))
    _concerns(portal, 4)  # one short of the threshold
    _concerns(portal, 5, site="remote")  # "remote" has 12 employees: below the minimum of 20
    assert db.get(OrgUnit, db.scalar(select(OrgUnit.id).where(OrgUnit.code == "remote")))

    code, output = _invoke(app, "insights", "signals")

    assert code == 0
    assert "no new systemic signal" in output
    assert db.scalar(select(SignalAlert.id)) is None


def test_last_quarter_does_not_count_towards_this_one(
    app: Flask, portal: Portal, db: Session
) -> None:
    portal.staff("hana", queues=("hr",))
    _concerns(portal, 3, day=dt.date(2026, 9, 28))
    _concerns(portal, 3)

    assert signals.detect(db, NOW.date()) == []


def test_a_dry_run_shows_the_alert_and_changes_nothing(
    app: Flask, portal: Portal, db: Session
) -> None:
    portal.staff("hana", queues=("hr",))
    _concerns(portal, 5)

    code, output = _invoke(app, "insights", "signals", "--dry-run")

    assert code == 0
    assert "dry run" in output and HARASSMENT in " ".join(output.split())
    assert db.scalar(select(SignalAlert.id)) is None


def test_queue_members_see_the_pattern_on_their_case_list_and_others_do_not(
    app: Flask, portal: Portal, db: Session, client: FlaskClient
) -> None:
    member = portal.staff("hana", queues=("hr",))
    outsider = portal.staff("omar", queues=("safety",))
    _concerns(portal, 5)
    _invoke(app, "insights", "signals")
    app.extensions["portal"].clock = lambda: NOW

    login(client, member)
    page = client.get("/staff/").text
    assert 'id="signal-alerts"' in page
    assert f"5 or more concerns about {HARASSMENT} at site Head office" in page

    other = app.test_client()
    login(other, outsider)
    assert 'id="signal-alerts"' not in other.get("/staff/").text


def test_the_refresh_job_stores_protected_figures_once_and_is_audited(
    app: Flask, portal: Portal, db: Session
) -> None:
    portal.staff("hana", queues=("hr", "general", "ethics"))
    for i in range(7):
        portal.submit(today=dt.date(2026, 4, 2 + i), category_code="harassment", site_code="hq")
    portal.submit(today=dt.date(2026, 5, 2), category_code="fraud", site_code="shanghai")

    code, output = _invoke(app, "insights", "refresh", "--today", "2026-11-20")

    assert code == 0, output
    assert "computed 4 release(s) as of 2026-11-01" in output  # Q2 and Q3, volume and progress
    rows = {(r.period, r.kind): r for r in db.scalars(select(InsightRelease))}
    assert set(rows) == {
        ("2026-Q2", "volume"),
        ("2026-Q2", "progress"),
        ("2026-Q3", "volume"),
        ("2026-Q3", "progress"),
    }
    q2 = json.loads(rows[("2026-Q2", "volume")].payload)
    assert q2["total"] == 8
    # Every category is listed; the single fraud concern is hidden, and so is harassment's 7
    # (else 8 - 7 would give it back). Nothing stored anywhere is a count from 1 to 4.
    category = dict(
        zip(
            [code for code, _ in q2["views"]["category"]["rows"]],
            [row[0] for row in q2["views"]["category"]["cells"]],
            strict=True,
        )
    )
    assert category["fraud"] is None and category["harassment"] is None
    assert json.loads(rows[("2026-Q3", "volume")].payload)["total"] is None  # no case: < k
    for row in rows.values():
        for case in db.scalars(select(Case)):
            assert case.handle not in row.payload
        for number in _numbers(json.loads(row.payload)["views"]):
            assert number == 0 or number >= 5
    assert json.loads(_events(db, Action.INSIGHTS_REFRESHED)[0].detail)["releases"] == 4

    code, output = _invoke(app, "insights", "refresh", "--today", "2026-11-25")
    assert "up to date (as of 2026-11-01)" in output


def _numbers(value: object) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [
            n for key, v in value.items() if key not in ("rows", "columns") for n in _numbers(v)
        ]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def test_coming_back_with_the_receipt_sets_only_a_yes_no_flag(
    portal: Portal, db: Session, client: FlaskClient
) -> None:
    portal.staff("hana")
    submitted = portal.submit()
    case = db.scalars(select(Case)).one()
    assert case.reporter_returned is False

    open_followup(client, submitted.receipt)

    db.expire_all()
    assert db.scalars(select(Case)).one().reporter_returned is True
