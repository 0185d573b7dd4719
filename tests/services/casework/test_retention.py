"""Retention (issue 6): closed cases are warned about, then purged; nothing of them stays but the
insight stub, published figures do not move, and the audit chain still verifies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from portal.db import Base
from portal.errors import InvalidInput, TaxonomyError
from portal.models import (
    AuditEvent,
    Case,
    CaseRecusal,
    CaseTag,
    InsightRelease,
    Message,
    MessageAuthor,
    Outcome,
    PendingRegrant,
    RetainedCase,
    StaffUser,
    Tag,
    Visibility,
)
from portal.services.attachments import store as attachments
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import retention
from portal.services.configuration import export as taxonomy_export
from portal.services.configuration import policy, taxonomy
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.services.reporting import followup, intake
from portal.settings import Settings
from tests.support import insights_helpers
from tests.support.factories import DatabaseUnderTest, Portal, cheap_settings
from tests.support.pages import csrf_token, login
from tests.support.smtp_server import SmtpServer, smtp_server

URL = "https://ombuds.example.org"
# Well after every case below was closed, so that the roll-up of reporter days is the same for
# every run and the arithmetic of the periods is easy to follow.
T0 = dt.datetime(2026, 6, 15, 9, 0, tzinfo=dt.UTC)
TODAY = T0.date()
SECRET_TEXT = "The night manager locked the fire exit again."


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(database: DatabaseUnderTest, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return cheap_settings(
        tmp_path / "instance",
        database.url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_starttls=False,
        smtp_from="ombuds@example.org",
        portal_url=URL,
    )


class Runner:
    """Runs ``portal purge`` at a chosen time, as cron would."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, moment: dt.datetime, *args: str) -> tuple[int, str, str]:
        self.app.extensions["portal"].clock = lambda: moment
        result = self.app.test_cli_runner().invoke(args=["purge", *args])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def run(app: Flask) -> Runner:
    return Runner(app)


def _outcome(db: Session, code: str) -> Outcome:
    found = db.scalar(select(Outcome).where(Outcome.code == code))
    assert found is not None
    return found


def _close(db: Session, case_id: str, closed_on: dt.date, outcome: str) -> None:
    case = db.get(Case, case_id)
    assert case is not None
    case.acknowledged_on = case.received_on + dt.timedelta(days=2)
    case.feedback_on = case.received_on + dt.timedelta(days=20)
    case.status = "closed"
    case.closed_on = closed_on
    case.outcome_id = _outcome(db, outcome).id
    db.commit()


def _full_case(portal: Portal, db: Session, received_on: dt.date) -> intake.Submitted:
    """A case with something in every table that refers to cases: an attachment (and its
    chunks), a reporter message, an internal note, a tag, a recusal and a pending re-grant."""
    done = portal.submit(
        received_on,
        description=SECRET_TEXT,
        contact_name="Jane Doe",
        contact_details="jane@example.org",
        attachments=[attachments.PreparedFile("notes.txt", "text/plain", b"x" * 3000, True)],
    )
    key = followup.unlock(db, portal.settings, portal.secrets.pepper, done.receipt)
    followup.add_message(db, portal.settings, key, "One more thing.", received_on)
    db.add(
        Message(
            id="note" + done.case_id[4:],
            case_id=done.case_id,
            author=MessageAuthor.STAFF.value,
            visibility=Visibility.INTERNAL.value,
            created_on=received_on,
            created_at=dt.datetime.combine(received_on, dt.time(12), dt.UTC),
            ciphertext=b"\x01" * 40,
        )
    )
    tag = db.scalar(select(Tag).where(Tag.label == "legal review"))
    if tag is None:
        tag = Tag(label="legal review")
        db.add(tag)
        db.flush()
    other = db.scalar(select(StaffUser).where(StaffUser.email == "bob@example.org"))
    assert other is not None
    db.add_all(
        [
            CaseTag(case_id=done.case_id, tag_id=tag.id),
            CaseRecusal(case_id=done.case_id, staff_id=other.id),
            PendingRegrant(case_id=done.case_id, staff_id=other.id),
        ]
    )
    db.commit()
    return done


@pytest.fixture
def world(portal: Portal, db: Session) -> dict[str, Any]:
    """With a policy of 200 days and 100 for "withdrawn" (short periods keep the audit roll-up of
    reporter days small): six cases of 2025-Q4 closed 2025-11-01 (period over on 2026-05-20),
    one closed as withdrawn 120 days before T0 (over 20 days ago), one closed as substantiated
    120 days before T0 (80 days left), and one open case of 2025-Q4."""
    alice = portal.staff("alice")
    portal.staff("bob")
    policy.update(db, retention_days=200)
    _outcome(db, "withdrawn").retention_days = 100
    db.commit()
    old = [_full_case(portal, db, dt.date(2025, 10, 10 + n)) for n in range(6)]
    for done in old:
        _close(db, done.case_id, dt.date(2025, 11, 1), "unsubstantiated")
    withdrawn = portal.submit(dt.date(2025, 3, 1))
    _close(db, withdrawn.case_id, TODAY - dt.timedelta(days=120), "withdrawn")
    recent = portal.submit(dt.date(2025, 3, 2))
    _close(db, recent.case_id, TODAY - dt.timedelta(days=120), "substantiated")
    still_open = portal.submit(dt.date(2025, 10, 20))
    # A staff action on a doomed case: the log keeps naming it after the purge.
    case = db.get(Case, old[0].case_id)
    audit.record(db, Action.CASE_VIEWED, T0 - dt.timedelta(days=1), actor=alice, case=case)
    db.commit()
    return {
        "alice": alice,
        "old": old,
        "withdrawn": withdrawn,
        "recent": recent,
        "open": still_open,
    }


def _doomed(world: dict[str, Any]) -> list[intake.Submitted]:
    return [*world["old"], world["withdrawn"]]


def _kept(world: dict[str, Any]) -> list[intake.Submitted]:
    return [world["recent"], world["open"]]


def _snapshot(db: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for "nothing changed" checks."""
    db.expire_all()
    return {
        table.name: sorted(
            (tuple(repr(v) for v in row) for row in db.execute(table.select())), key=repr
        )
        for table in Base.metadata.sorted_tables
    }


def _case_ids(db: Session) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(Case.id)))


# --- who is purged, and when --------------------------------------------------------------------


def test_warned_once_then_purged_after_the_warning_period_by_outcome(
    world: dict[str, Any], db: Session, run: Runner, smtp: SmtpServer
) -> None:
    code, out, err = run(T0)
    assert code == 0, err
    assert "warn about 7 closed case(s) (2 message(s)); delete 0 case(s)" in out
    assert len(smtp.recorder.received) == 2  # alice and bob hold the keys of all seven
    assert {done.case_id for done in _doomed(world)} <= _case_ids(db)

    # Later runs within the warning period neither warn again nor purge.
    for days in (1, 10, 29):
        code, out, _ = run(T0 + dt.timedelta(days=days))
        assert code == 0
        assert "warn about 0 closed case(s)" in out and "delete 0 case(s)" in out
    assert len(smtp.recorder.received) == 2

    code, out, _ = run(T0 + dt.timedelta(days=30))
    assert code == 0
    assert "delete 7 case(s)" in out
    assert "unsubstantiated          6" in out and "withdrawn                1" in out
    assert "general                  7" in out
    remaining = _case_ids(db)
    assert not remaining & {done.case_id for done in _doomed(world)}
    assert {done.case_id for done in _kept(world)} <= remaining
    assert len(smtp.recorder.received) == 2  # the purge itself sends nothing


def test_a_case_within_its_period_and_an_open_case_are_kept_for_ever_after(
    world: dict[str, Any], db: Session, run: Runner
) -> None:
    run(T0)
    run(T0 + dt.timedelta(days=30))
    # The substantiated case's 200 days end at T0 + 80; the open one never ends.
    _code, out, _ = run(T0 + dt.timedelta(days=49))
    assert "warn about 0 closed case(s)" in out
    assert world["recent"].case_id in _case_ids(db)
    run(T0 + dt.timedelta(days=50))  # its warning
    run(T0 + dt.timedelta(days=79))
    assert world["recent"].case_id in _case_ids(db)
    run(T0 + dt.timedelta(days=80))  # purged now
    assert _case_ids(db) == {world["open"].case_id}
    run(T0 + dt.timedelta(days=3000))
    assert _case_ids(db) == {world["open"].case_id}


def test_the_warning_names_no_case(
    world: dict[str, Any], db: Session, run: Runner, smtp: SmtpServer
) -> None:
    run(T0)
    assert smtp.recorder.received
    for received in smtp.recorder.received:
        whole = received.message.as_string()
        assert "7 closed cases you hold" in received.body
        assert "in 30 days or later" in received.body
        for case in db.scalars(select(Case)):
            assert case.handle not in whole
            assert case.received_on.isoformat() not in whole
        assert SECRET_TEXT not in whole
        assert URL + "/staff/" in received.body


def test_a_failed_warning_is_retried_and_the_purge_waits_for_it(
    world: dict[str, Any], db: Session, run: Runner, smtp: SmtpServer
) -> None:
    smtp.recorder.refuse["bob@example.org"] = "550 no such mailbox"
    code, _out, err = run(T0)
    assert code == 1 and "bob@example.org" in err
    del smtp.recorder.refuse["bob@example.org"]
    code, _out, _ = run(T0 + dt.timedelta(days=40))  # bob gets it now
    assert code == 0
    assert {d.case_id for d in _doomed(world)} <= _case_ids(db)  # the warning period restarts
    run(T0 + dt.timedelta(days=70))
    assert not {d.case_id for d in _doomed(world)} & _case_ids(db)


def test_a_reopened_case_is_not_purged_and_is_warned_again_when_closed_again(
    world: dict[str, Any], db: Session, run: Runner, smtp: SmtpServer
) -> None:
    run(T0)
    case = db.get(Case, world["withdrawn"].case_id)
    assert case is not None and case.purge_warned_on == TODAY
    case.status, case.closed_on, case.outcome_id = "investigating", None, None
    db.commit()
    run(T0 + dt.timedelta(days=30))
    assert world["withdrawn"].case_id in _case_ids(db)
    # Closed again a day later: a new period of 100 days, and a new warning 30 days before.
    again = TODAY + dt.timedelta(days=31)
    _close(db, world["withdrawn"].case_id, again, "withdrawn")
    sent = len(smtp.recorder.received)
    run(T0 + dt.timedelta(days=31 + 69))
    db.expire_all()
    case = db.get(Case, world["withdrawn"].case_id)
    assert case is not None and case.purge_warned_on == TODAY  # the old warning, not renewed
    run(T0 + dt.timedelta(days=31 + 70))
    db.expire_all()
    case = db.get(Case, world["withdrawn"].case_id)
    assert case is not None and case.purge_warned_on == TODAY + dt.timedelta(days=31 + 70)
    assert len(smtp.recorder.received) > sent
    run(T0 + dt.timedelta(days=31 + 99))
    assert world["withdrawn"].case_id in _case_ids(db)
    run(T0 + dt.timedelta(days=31 + 100))
    assert world["withdrawn"].case_id not in _case_ids(db)


# --- what a purge leaves ------------------------------------------------------------------------


def _values(db: Session) -> Iterator[tuple[str, str, object]]:
    for table in Base.metadata.sorted_tables:
        for row in db.execute(table.select()).mappings():
            for column, value in row.items():
                yield table.name, column, value


def test_nothing_of_a_purged_case_stays_but_its_insight_stub(
    world: dict[str, Any], db: Session, run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seven cases in batches of two: every batch is deleted, not only the first.
    monkeypatch.setattr(retention, "BATCH", 2)
    doomed = _doomed(world)
    db.expire_all()
    traces: dict[str, list[bytes | str]] = {}
    for done in doomed:
        case = db.get(Case, done.case_id)
        assert case is not None
        traces[done.case_id] = [
            done.case_id,
            done.handle,
            case.lookup_id,
            case.reporter_salt,
            case.reporter_public_key,
            case.reporter_sealed_key,
            case.report_ciphertext,
            *([case.contact_ciphertext] if case.contact_ciphertext else []),
        ]
    before = db.scalar(select(func.count()).select_from(Message)) or 0
    assert before >= 12

    run(T0)
    run(T0 + dt.timedelta(days=30))

    for table in (
        "cases",
        "case_access",
        "messages",
        "attachments",
        "attachment_chunks",
        "case_tags",
        "case_recusals",
        "pending_regrants",
    ):
        count = db.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
        kept_cases = len(_kept(world))
        if table == "cases":
            assert count == kept_cases
        elif table in {"messages", "attachments", "attachment_chunks", "case_tags"}:
            # Only the two kept cases, which have no attachment, note, message or tag.
            assert count == 0, table
        else:
            assert count in (0, kept_cases * 2), table
    for name, column, value in _values(db):
        for case_id, items in traces.items():
            for item in items:
                if name == "audit_events" and column in {"case_id", "case_handle"}:
                    continue  # the log names cases staff acted on; they lead nowhere now
                if isinstance(value, bytes | str) and isinstance(item, type(value)):
                    # mypy cannot tie item's type to value's: both str or both bytes here.
                    assert cast(Any, item) not in value, (name, column, case_id)
    # The audit row of a staff action on a purged case is still there, and points at nothing.
    viewed = db.scalar(select(AuditEvent).where(AuditEvent.action == Action.CASE_VIEWED.value))
    assert viewed is not None and viewed.case_id == doomed[0].case_id
    assert db.get(Case, viewed.case_id) is None
    # One stub per purged case, under new ids, with no content column.
    stubs = list(db.scalars(select(RetainedCase)))
    assert len(stubs) == len(doomed)
    assert not {s.id for s in stubs} & {d.case_id for d in doomed}
    assert sorted(s.received_on for s in stubs)[0] == dt.date(2025, 3, 1)


def test_the_receipt_of_a_purged_case_opens_nothing(
    world: dict[str, Any], app: Flask, run: Runner
) -> None:
    client = app.test_client()
    receipt = world["old"][0].receipt
    token = csrf_token(client.get("/followup").text)
    assert (
        client.post("/followup", data={"csrf_token": token, "receipt": receipt}).status_code == 302
    )
    run(T0)
    run(T0 + dt.timedelta(days=30))
    # A follow-up view opened before the purge closes itself, with a clear page.
    expired = client.get("/followup/case")
    assert expired.status_code == 401
    fresh = app.test_client()
    token = csrf_token(fresh.get("/followup").text)
    response = fresh.post("/followup", data={"csrf_token": token, "receipt": receipt})
    assert response.status_code == 400
    assert "That receipt did not open a case." in response.text


def _releases(db: Session) -> dict[tuple[str, str], str]:
    db.expire_all()
    return {(r.period, r.kind): r.payload for r in db.scalars(select(InsightRelease))}


def test_published_insight_figures_do_not_change_nor_on_recomputation(
    world: dict[str, Any], db: Session, run: Runner
) -> None:
    insights_store.refresh(db, TODAY, insights_helpers.KEY)
    db.commit()
    published = _releases(db)
    first = insights_releases.Release.from_json(published[("2025-Q4", insights_releases.VOLUME)])
    assert first.total == 7  # six closed and one open, above the threshold of 5

    run(T0)
    run(T0 + dt.timedelta(days=30))
    assert _releases(db) == published

    # A refresh in the same month recomputes nothing; throwing every release away and
    # computing them again as of the same day gives the very same figures from the stubs.
    insights_store.refresh(db, TODAY, insights_helpers.KEY)
    db.commit()
    assert _releases(db) == published
    db.execute(delete(InsightRelease))
    db.commit()
    insights_store.refresh(db, TODAY, insights_helpers.KEY)
    db.commit()
    assert _releases(db) == published


def test_a_dry_run_changes_and_sends_nothing(
    world: dict[str, Any], db: Session, run: Runner, smtp: SmtpServer
) -> None:
    run(T0)
    before = _snapshot(db)
    code, out, _ = run(T0 + dt.timedelta(days=30), "--dry-run")
    assert code == 0
    assert "dry run: nothing is sent and nothing is changed" in out
    assert "would delete 7 case(s)" in out
    assert "unsubstantiated          6" in out and "general                  7" in out
    for done in _doomed(world):
        assert done.handle not in out
    assert _snapshot(db) == before
    sent = len(smtp.recorder.received)
    code, out, _ = run(T0 + dt.timedelta(days=60), "--dry-run")
    assert "would warn about 1 closed case(s)" in out
    assert len(smtp.recorder.received) == sent
    assert _snapshot(db) == before


def test_one_audit_event_per_run_with_counts_only_and_the_chain_verifies(
    world: dict[str, Any], db: Session, run: Runner
) -> None:
    run(T0)
    run(T0 + dt.timedelta(days=30))
    db.expire_all()
    events = list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == Action.RETENTION_RUN.value)
            .order_by(AuditEvent.seq)
        )
    )
    assert [audit.detail_of(e) for e in events] == [
        {"warned": 7, "recipients": 2, "failed": 0, "purged": 0, "held": 0},
        {"warned": 0, "recipients": 0, "failed": 0, "purged": 7, "held": 0},
    ]
    assert all(e.case_id is None and e.case_handle is None for e in events)
    # A run with nothing to do leaves no trace.
    run(T0 + dt.timedelta(days=31))
    assert (
        db.scalar(select(func.count()).where(AuditEvent.action == Action.RETENTION_RUN.value)) == 2
    )
    verification = audit.verify(db)
    assert verification.ok, verification.reason


def test_sqlite_connections_overwrite_deleted_content(
    database: DatabaseUnderTest, app: Flask
) -> None:
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PRAGMA secure_delete is SQLite's; PostgreSQL needs VACUUM (see docs)")
    with app.extensions["portal"].sessions() as session:
        assert session.execute(text("PRAGMA secure_delete")).scalar_one() == 1


def test_the_purge_compacts_afterwards(
    world: dict[str, Any], database: DatabaseUnderTest, run: Runner
) -> None:
    run(T0)
    code, out, _ = run(T0 + dt.timedelta(days=30))
    assert code == 0
    if database.engine.dialect.name == "postgresql":
        assert "then: VACUUM attachment_chunks" in out
    else:
        assert "then: PRAGMA wal_checkpoint(TRUNCATE)" in out
    run(T0 + dt.timedelta(days=50))
    code, out, _ = run(T0 + dt.timedelta(days=80), "--no-vacuum")
    assert "delete 1 case(s)" in out and "then:" not in out


def test_every_table_that_refers_to_cases_is_purged() -> None:
    """A new table with a foreign key to cases (or attachments) must join PURGED_TABLES."""
    referring = {
        table.name
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name in {"cases", "attachments"}
    }
    assert referring | {"cases"} == set(retention.PURGED_TABLES)


# --- where staff see it -------------------------------------------------------------------------


def test_the_case_list_names_the_cases_that_will_go(
    world: dict[str, Any], app: Flask, run: Runner
) -> None:
    client = app.test_client()
    login(client, world["alice"])
    assert 'id="retention-pending"' not in client.get("/staff/").text
    run(T0)
    page = client.get("/staff/").text
    assert 'id="retention-pending"' in page
    for done in _doomed(world):
        assert done.handle in page
    assert world["recent"].handle not in page.split('id="retention-pending"')[1].split("</div>")[0]
    assert (TODAY + dt.timedelta(days=30)).isoformat() in page


# --- configuration ------------------------------------------------------------------------------


def test_periods_come_from_the_outcome_else_the_policy(db: Session, app: Flask) -> None:
    own, default = retention.periods(db)
    assert default == 730
    assert own == {_outcome(db, "withdrawn").id: 365}
    with pytest.raises(InvalidInput) as refused:
        policy.update(db, retention_warning_days=30, retention_days=30)
    assert refused.value.field == "retention_warning_days"
    db.rollback()
    with pytest.raises(InvalidInput):
        policy.update(db, retention_days=29)
    db.rollback()


def test_the_taxonomy_file_sets_and_exports_an_outcomes_period(db: Session, app: Flask) -> None:
    exported = taxonomy_export.export_data(db)
    withdrawn = next(o for o in exported["outcomes"] if o["code"] == "withdrawn")
    assert withdrawn["retention_days"] == 365
    assert exported["policy"]["retention_days"] == 730
    assert exported["policy"]["retention_warning_days"] == 30
    broken = dict(exported)
    broken["outcomes"] = [{**o, "retention_days": 7} for o in exported["outcomes"]]
    with pytest.raises(TaxonomyError, match="retention_days"):
        taxonomy.load_taxonomy(db, broken)
    db.rollback()
