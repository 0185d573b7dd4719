"""`portal notify` and `portal sla-check` against a real SMTP server on loopback.

What the mails say (counts only), when they leave (batches, once a day), whom they reach (active
ombudspersons holding a key), what is stored (notified flags, the job clock, audit rows) and
what happens when a recipient cannot be reached.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.app import create_app
from portal.models import (
    AuditEvent,
    Case,
    CaseAccess,
    Category,
    JobRun,
    Queue,
    Role,
    StaffUser,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases
from portal.services.configuration import policy
from portal.services.notifications import notify
from portal.services.notifications.mail import PrintMailer
from portal.settings import Settings
from tests.support.factories import DatabaseUnderTest, Portal, cheap_settings
from tests.support.smtp_server import Received, SmtpServer, smtp_server

T0 = dt.datetime(2026, 5, 14, 6, 0, tzinfo=dt.UTC)
#: A batch tells of the cases received before its own UTC day (a day's cases go together, so
#: the stored flags say nothing finer than the day: tests/invariants/test_reporter_traces.py). The
#: cases these tests send waiting for a batch were received the day before.
EARLIER = T0.date() - dt.timedelta(days=1)
URL = "https://ombuds.example.org"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(database: DatabaseUnderTest, tmp_path: Path, smtp: SmtpServer) -> Settings:
    """The suite's settings, sending through the loopback server (overrides conftest's)."""
    return cheap_settings(
        tmp_path / "instance",
        database.url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_starttls=False,  # loopback test server; STARTTLS is tested in test_mail.py
        smtp_from="ombuds@example.org",
        portal_url=URL,
    )


class Runner:
    """Runs the commands at a chosen time, as cron would."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.now = T0

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.app.extensions["portal"].clock = lambda: self.now
        result = self.app.test_cli_runner().invoke(args=list(args))
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    def at(self, moment: dt.datetime) -> Runner:
        self.now = moment
        return self


@pytest.fixture
def run(app: Flask) -> Runner:
    return Runner(app)


def _count(body: str) -> int:
    match = re.search(r"^(\d+) new cases? (?:is|are) waiting", body, re.M)
    assert match, body
    return int(match.group(1))


def _flags(db: Session, user: StaffUser) -> list[bool]:
    db.expire_all()
    return sorted(db.scalars(select(CaseAccess.notified).where(CaseAccess.staff_id == user.id)))


def _events(db: Session, action: Action) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


def _assert_names_nothing(db: Session, received: Received, *, description: str) -> None:
    """No handle, category label, queue name, description or received day anywhere in it."""
    whole = received.message.as_string()
    for case in db.scalars(select(Case)):
        assert case.handle not in whole
        assert case.received_on.isoformat() not in received.body
        assert case.received_on.strftime("%d %b") not in received.body
        assert case.received_on.strftime("%B %d").replace(" 0", " ") not in received.body
    for label in db.scalars(select(Category.label)):
        assert label not in whole
    for name in db.scalars(select(Queue.name)):
        assert name not in whole
    assert description not in whole
    assert received.mail_from == "ombuds@example.org"


# --- new-case notifications ---------------------------------------------------------------------


def test_one_message_per_ombudsperson_with_the_count_only(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    alice = portal.staff("alice", queues=("general", "hr"))
    bob = portal.staff("bob", queues=("general",))
    carol = portal.staff("carol", queues=("hr",))
    portal.staff("erin", queues=("safety",))  # holds nothing: gets nothing
    text = "The cash box in the canteen is emptied every Friday by the shift lead."
    day = T0.date() - dt.timedelta(days=1)
    portal.submit(day, description=text)  # general
    portal.submit(day, description=text)  # general
    portal.submit(day, category_code="harassment", description=text)  # hr

    code, out, err = run("notify")

    assert code == 0, out + err
    assert "new-case notices: 3 sent, 0 failed" in out
    got = smtp.recorder.received
    assert sorted(r.rcpt_tos[0] for r in got) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    counts = {r.rcpt_tos[0]: _count(r.body) for r in got}
    assert counts == {"alice@example.org": 3, "bob@example.org": 2, "carol@example.org": 1}
    for received in got:
        assert received.message["Subject"] == "New cases in the ombuds portal"
        assert received.message["To"] == received.rcpt_tos[0]
        assert f"{URL}/staff/" in received.body
        _assert_names_nothing(db, received, description=text)
    assert "1 new case is waiting for you" in smtp.recorder.to("carol@example.org")[0].body
    for user in (alice, bob, carol):
        assert set(_flags(db, user)) == {True}
    job = db.get_one(JobRun, notify.NOTIFY_JOB)
    assert job.last_run_at == T0
    [event] = _events(db, Action.NOTIFICATIONS_SENT)
    assert event.actor_id is None and event.actor_email == ""
    assert event.case_id is None and event.case_handle is None
    assert audit.detail_of(event) == {"recipients": 3, "failed": 0}
    assert audit.verify(db).ok


def test_no_link_without_portal_url(portal: Portal, smtp: SmtpServer, run: Runner) -> None:
    state = portal.app.extensions["portal"]
    state.settings = state.settings.replace(portal_url="")
    portal.staff("alice")
    portal.submit(EARLIER)
    assert run("notify")[0] == 0
    body = smtp.recorder.received[0].body
    assert "http" not in body and "Log in to the portal to see them." in body


def test_batches_keep_their_rhythm_whatever_arrives_and_however_often_cron_runs(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    alice = portal.staff("alice")
    # A run with nothing waiting still starts the interval ...
    assert run.at(T0)("notify")[0] == 0
    assert smtp.recorder.received == []
    assert db.get_one(JobRun, notify.NOTIFY_JOB).last_run_at == T0
    # ... so a concern that arrives a minute later does not leave with the next cron run.
    portal.submit(EARLIER)
    for minutes in (1, 15, 60, 6 * 60 - 1):
        code, out, _ = run.at(T0 + dt.timedelta(minutes=minutes))("notify")
        assert code == 0 and "nothing sent" in out
        assert "the next is not due before 2026-05-14 12:00 UTC" in out
    assert smtp.recorder.received == []
    assert _flags(db, alice) == [False]

    assert run.at(T0 + dt.timedelta(hours=6))("notify")[0] == 0
    assert [_count(r.body) for r in smtp.recorder.to("alice@example.org")] == [1]
    assert _flags(db, alice) == [True]

    # A second run inside the new interval sends nothing, even with a new case waiting.
    portal.submit(EARLIER)
    assert "nothing sent" in run.at(T0 + dt.timedelta(hours=6, minutes=15))("notify")[1]
    assert len(smtp.recorder.received) == 1
    # The next batch counts only the case that arrived after the last one.
    assert run.at(T0 + dt.timedelta(hours=12, minutes=1))("notify")[0] == 0
    assert [_count(r.body) for r in smtp.recorder.to("alice@example.org")] == [1, 1]
    assert _flags(db, alice) == [True, True]
    assert len(_events(db, Action.NOTIFICATIONS_SENT)) == 2


def test_the_interval_is_a_setting(portal: Portal, smtp: SmtpServer, run: Runner) -> None:
    state = portal.app.extensions["portal"]
    state.settings = state.settings.replace(notify_interval_hours=1)
    portal.staff("alice")
    run.at(T0)("notify")
    portal.submit(EARLIER)
    assert "nothing sent" in run.at(T0 + dt.timedelta(minutes=59))("notify")[1]
    run.at(T0 + dt.timedelta(hours=1))("notify")
    assert len(smtp.recorder.received) == 1
    assert "at most once every 1 hour," in " ".join(smtp.recorder.received[0].body.split())


def test_dry_run_prints_and_changes_nothing(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    alice = portal.staff("alice")
    portal.submit(EARLIER)
    head_before = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))

    code, out, _ = run("notify", "--dry-run")

    assert code == 0
    assert "dry run: nothing is sent" in out and "a batch is due now" in out
    assert "----- message to alice@example.org -----" in out
    assert "1 new case is waiting for you" in out
    assert smtp.recorder.received == []
    assert _flags(db, alice) == [False]
    assert db.get(JobRun, notify.NOTIFY_JOB) is None
    assert db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) == head_before

    # Inside the interval a dry run says when the next batch is due and what it would hold.
    run("notify")
    portal.submit(EARLIER)
    code, out, _ = run.at(T0 + dt.timedelta(hours=1))("notify", "--dry-run")
    assert "no batch is due before 2026-05-14 12:00 UTC" in out
    assert "1 new case is waiting for you" in out
    assert len(smtp.recorder.received) == 1


def test_print_mode_without_smtp(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    state = portal.app.extensions["portal"]
    state.settings = state.settings.replace(smtp_host="")
    alice = portal.staff("alice")
    portal.submit(EARLIER)
    portal.submit(EARLIER)

    code, out, _ = run("notify")

    assert code == 0
    assert "----- message to alice@example.org -----" in out
    assert "To: alice@example.org" in out and "Subject: New cases in the ombuds portal" in out
    assert "2 new cases are waiting for you" in out
    assert "print (no SMTP host configured" in out
    assert smtp.recorder.received == []
    # Printing is how this portal delivers: the cases are not announced again.
    assert _flags(db, alice) == [True, True]


def test_disabled_staff_get_nothing_and_keep_their_flags(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    alice = portal.staff("alice")
    bob = portal.staff("bob")
    manager = portal.staff("mia", roles=(Role.MANAGEMENT,), queues=())
    portal.submit(EARLIER)
    db.execute(update(StaffUser).where(StaffUser.id == bob.id).values(active=False))
    # Someone who is no longer an ombudsperson but still holds a key gets nothing either.
    case_id = db.scalars(select(Case.id)).one()
    db.add(CaseAccess(case_id=case_id, staff_id=manager.id, sealed_key=b"x"))
    db.commit()

    assert run("notify")[0] == 0

    assert [r.rcpt_tos for r in smtp.recorder.received] == [["alice@example.org"]]
    assert _flags(db, alice) == [True]
    assert _flags(db, bob) == [False]
    assert _flags(db, manager) == [False]


def test_a_failed_recipient_is_reported_and_waits_for_the_next_batch(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    alice = portal.staff("alice")
    bob = portal.staff("bob")
    carol = portal.staff("carol")
    portal.submit(EARLIER)
    smtp.recorder.refuse["bob@example.org"] = "550 5.1.1 mailbox unavailable"

    code, out, err = run("notify")

    assert code == 1
    assert "2 sent, 1 failed" in out
    assert "could not send to bob@example.org" in err and "550" in err
    assert sorted(r.rcpt_tos[0] for r in smtp.recorder.received) == [
        "alice@example.org",
        "carol@example.org",
    ]
    assert _flags(db, alice) == _flags(db, carol) == [True]
    assert _flags(db, bob) == [False]
    [event] = _events(db, Action.NOTIFICATIONS_SENT)
    assert audit.detail_of(event) == {"recipients": 2, "failed": 1}

    # Bob's notice goes out with the next batch, counting the old case with the new one.
    del smtp.recorder.refuse["bob@example.org"]
    portal.submit(EARLIER)
    assert run.at(T0 + dt.timedelta(hours=6))("notify")[0] == 0
    assert [_count(r.body) for r in smtp.recorder.to("bob@example.org")] == [2]
    assert [_count(r.body) for r in smtp.recorder.to("alice@example.org")] == [1, 1]
    assert _flags(db, bob) == [True, True]


def test_an_unreachable_server_loses_nothing(portal: Portal, db: Session, run: Runner) -> None:
    state = portal.app.extensions["portal"]
    with smtp_server() as gone:
        port = gone.port
    state.settings = state.settings.replace(smtp_port=port)  # nobody listens there any more
    alice = portal.staff("alice")
    portal.submit(EARLIER)

    code, out, err = run("notify")

    assert code == 1
    assert "0 sent, 1 failed" in out and "could not connect" in err
    assert _flags(db, alice) == [False]
    [event] = _events(db, Action.NOTIFICATIONS_SENT)
    assert audit.detail_of(event) == {"recipients": 0, "failed": 1}


def test_a_run_inside_the_interval_leaves_no_trace(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    portal.staff("alice")
    portal.submit(EARLIER)
    run("notify")
    seq = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    portal.submit(EARLIER)
    run.at(T0 + dt.timedelta(hours=2))("notify")
    db.expire_all()
    assert db.get_one(JobRun, notify.NOTIFY_JOB).last_run_at == T0
    assert db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) == seq


def test_two_runs_cannot_claim_the_same_batch(portal: Portal, db: Session) -> None:
    """The claim is one conditional UPDATE: a run that finds the clock already moved sends
    nothing, even if it read the old time before."""
    portal.staff("alice")
    portal.submit(EARLIER)
    printed: list[str] = []
    mailer = PrintMailer(printed.append)
    first = notify.notify_new_cases(db, portal.settings, mailer, T0)
    db.commit()
    assert first.due and len(printed) == 1
    later = T0 + dt.timedelta(hours=7)
    assert notify.claim(db, notify.NOTIFY_JOB, later, later - dt.timedelta(hours=6))
    # A second claim for the same batch (e.g. a second server's cron, same minute) fails.
    assert not notify.claim(db, notify.NOTIFY_JOB, later, later - dt.timedelta(hours=6))
    db.rollback()


# --- deadline reminders -------------------------------------------------------------------------

TODAY = T0.date()  # 2026-05-14; policy: acknowledge in 7 days, due soon = within 2 days


@pytest.fixture
def deadline_cases(portal: Portal, db: Session) -> dict[str, object]:
    """Cases received on chosen days, in two queues, in every deadline state."""
    alice = portal.staff("alice", queues=("general", "hr"))
    bob = portal.staff("bob", queues=("general",))
    carol = portal.staff("carol", queues=("hr",))
    day = TODAY.fromisoformat

    def submit(received: str, category: str = "other") -> str:
        return portal.submit(day(received), category_code=category).handle

    handles = {
        # general (alice, bob)
        "not_yet": submit("2026-05-12"),  # acknowledge by 05-19: not listed
        "soon": submit("2026-05-08"),  # acknowledge by 05-15: due soon
        "today": submit("2026-05-07"),  # acknowledge by 05-14: due soon (today)
        "late": submit("2026-05-01"),  # acknowledge by 05-08: overdue
        "closed": submit("2026-05-01"),  # overdue, but closed: not listed
        # hr (alice, carol)
        "acked": submit("2026-05-01", "harassment"),  # acknowledged in time: not listed
        "feedback_late": submit("2026-01-02", "harassment"),  # acknowledged, feedback overdue
    }
    key = portal.private_key(alice)
    at = dt.datetime(2026, 5, 5, 9, tzinfo=dt.UTC)
    cases.acknowledge(db, alice, key, handles["acked"], at)
    cases.acknowledge(
        db, alice, key, handles["feedback_late"], dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    )
    cases.set_status(db, alice, key, handles["closed"], "closed", at, outcome="withdrawn")
    db.commit()
    return {"handles": handles, "alice": alice, "bob": bob, "carol": carol}


def _lines(out: str) -> list[str]:
    return [line.rstrip() for line in out.splitlines()]


def test_sla_check_lists_per_queue_and_reminds_with_counts(
    deadline_cases: dict[str, object], db: Session, smtp: SmtpServer, run: Runner
) -> None:
    h = deadline_cases["handles"]
    assert isinstance(h, dict)

    code, out, err = run("sla-check")

    assert code == 0, out + err
    lines = _lines(out)
    start = lines.index("deadlines due soon or overdue (2026-05-14):")
    assert lines[start + 1 : start + 7] == [
        "General ombuds office (general)",
        f"  {h['late']}  acknowledgement  due 2026-05-08  OVERDUE",
        f"  {h['today']}  acknowledgement  due 2026-05-14  due soon",
        f"  {h['soon']}  acknowledgement  due 2026-05-15  due soon",
        "HR ombuds (hr)",
        f"  {h['feedback_late']}  feedback         due 2026-04-05  OVERDUE",
    ]
    for quiet in ("not_yet", "closed", "acked"):
        assert h[quiet] not in out
    assert "deadline reminders: 3 sent, 0 failed" in out

    bodies = {r.rcpt_tos[0]: r.body for r in smtp.recorder.received}
    assert set(bodies) == {"alice@example.org", "bob@example.org", "carol@example.org"}
    assert bodies["alice@example.org"].startswith(
        "2 of your cases have a deadline within 2 days.\n2 of your cases are overdue.\n"
    )
    assert bodies["bob@example.org"].startswith(
        "2 of your cases have a deadline within 2 days.\n1 of your cases is overdue.\n"
    )
    assert bodies["carol@example.org"].startswith("1 of your cases is overdue.\n")
    assert "deadline within" not in bodies["carol@example.org"]
    for received in smtp.recorder.received:
        assert received.message["Subject"] == "Case deadlines in the ombuds portal"
        assert f"{URL}/staff/" in received.body
        assert "2026" not in received.body  # no due days, no received days
        _assert_names_nothing(db, received, description="Something worrying happened.")

    [event] = _events(db, Action.REMINDERS_SENT)
    assert event.actor_id is None and event.case_id is None
    assert audit.detail_of(event) == {"recipients": 3, "failed": 0, "forced": False}
    assert db.get_one(JobRun, notify.SLA_JOB).last_run_at == T0


def test_sla_check_once_per_utc_day_unless_forced(
    deadline_cases: dict[str, object], db: Session, smtp: SmtpServer, run: Runner
) -> None:
    assert run.at(T0)("sla-check")[0] == 0
    assert len(smtp.recorder.received) == 3

    code, out, _ = run.at(T0 + dt.timedelta(hours=17, minutes=59))("sla-check")
    assert code == 0
    assert "reminders already sent today (2026-05-14 06:00 UTC)" in out
    assert "--force" in out
    assert "OVERDUE" in out  # the listing is still printed
    assert len(smtp.recorder.received) == 3

    code, out, _ = run("sla-check", "--force")
    assert code == 0 and "3 sent" in out
    assert len(smtp.recorder.received) == 6
    forced = _events(db, Action.REMINDERS_SENT)[-1]
    assert audit.detail_of(forced)["forced"] is True

    # The next UTC day, even one minute after midnight, reminds again.
    assert run.at(dt.datetime(2026, 5, 15, 0, 1, tzinfo=dt.UTC))("sla-check")[0] == 0
    assert len(smtp.recorder.received) == 9
    assert len(_events(db, Action.REMINDERS_SENT)) == 3


def test_sla_check_dry_run_changes_nothing(
    deadline_cases: dict[str, object], db: Session, smtp: SmtpServer, run: Runner
) -> None:
    code, out, _ = run("sla-check", "--dry-run")
    assert code == 0
    assert "dry run: nothing is sent" in out and "it would send 3 reminder(s)" in out
    assert "----- message to carol@example.org -----" in out
    assert "1 of your cases is overdue." in out
    assert smtp.recorder.received == []
    assert db.get(JobRun, notify.SLA_JOB) is None
    assert _events(db, Action.REMINDERS_SENT) == []


def test_sla_check_skips_disabled_staff_and_flags_cases_nobody_holds(
    deadline_cases: dict[str, object], db: Session, smtp: SmtpServer, run: Runner
) -> None:
    carol = deadline_cases["carol"]
    alice = deadline_cases["alice"]
    assert isinstance(carol, StaffUser) and isinstance(alice, StaffUser)
    h = deadline_cases["handles"]
    assert isinstance(h, dict)
    db.execute(update(StaffUser).where(StaffUser.id.in_([carol.id, alice.id])).values(active=False))
    db.commit()

    code, out, _ = run("sla-check")

    assert code == 0
    assert [r.rcpt_tos for r in smtp.recorder.received] == [["bob@example.org"]]
    line = next(line for line in _lines(out) if h["feedback_late"] in line)
    assert line.endswith("(no active ombudsperson holds this case: nobody is reminded)")
    assert "nobody" not in next(line for line in _lines(out) if h["late"] in line)


def test_sla_check_reports_a_failed_reminder_and_sends_the_rest(
    deadline_cases: dict[str, object], db: Session, smtp: SmtpServer, run: Runner
) -> None:
    smtp.recorder.refuse["alice@example.org"] = "550 5.1.1 mailbox unavailable"
    code, out, err = run("sla-check")
    assert code == 1
    assert "2 sent, 1 failed" in out and "could not send to alice@example.org" in err
    assert sorted(r.rcpt_tos[0] for r in smtp.recorder.received) == [
        "bob@example.org",
        "carol@example.org",
    ]
    [event] = _events(db, Action.REMINDERS_SENT)
    assert audit.detail_of(event) == {"recipients": 2, "failed": 1, "forced": False}


def test_sla_check_with_nothing_due(
    portal: Portal, db: Session, smtp: SmtpServer, run: Runner
) -> None:
    portal.staff("alice")
    portal.submit(TODAY)  # acknowledge within 7 days: not due soon yet
    code, out, _ = run("sla-check")
    assert code == 0
    assert "no open case has a deadline due soon or overdue (2026-05-14)" in out
    assert "deadline reminders: 0 sent, 0 failed" in out
    assert smtp.recorder.received == []
    assert _events(db, Action.REMINDERS_SENT) == []
    assert db.get_one(JobRun, notify.SLA_JOB).last_run_at == T0


def test_due_soon_zero_days_says_today(
    deadline_cases: dict[str, object], db: Session, smtp: SmtpServer, run: Runner
) -> None:
    policy.update(db, due_soon_days=0)
    db.commit()
    run("sla-check")
    body = smtp.recorder.to("bob@example.org")[0].body
    assert body.startswith("1 of your cases has a deadline due today.\n1 of your cases is overdue.")


def test_commands_need_the_instance_secrets(tmp_path: Path) -> None:
    app = create_app(cheap_settings(tmp_path / "instance"))
    for command in ("notify", "sla-check"):
        result = app.test_cli_runner().invoke(args=[command])
        assert result.exit_code == 1 and "portal init" in result.output
