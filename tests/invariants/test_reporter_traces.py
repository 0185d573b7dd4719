"""What a copy of the database files says about when a reporter acted (DESIGN.md invariant 3;
issue 13, finding 10).

A copy of SQLite's files used to order reporter activity within seconds: the WAL kept the
reporter's page images in commit order between staff writes of exact times, the files' mtimes
gave the time of the last write, and the ``notified`` flag of a case's key copies, read against
the batch time, split a day's cases into those before and after the batch. These tests look at
the files on disk and at the stored rows after reporter writes made through the web.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import checkpoint, coarse_file_times, sqlite_files
from portal.models import CaseAccess, JobRun
from portal.services.notifications import notify
from portal.services.notifications.mail import PrintMailer
from tests.support.factories import Portal
from tests.support.pages import csrf_token, login, open_followup, submit_via_web

DAY = 86_400


def _files(app: Flask) -> list[Path]:
    engine = app.extensions["portal"].engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's own files; PostgreSQL's WAL is named in docs/threat-model.md")
    return sqlite_files(engine)


def _wal_bytes(files: list[Path]) -> int:
    wal = files[1]
    return wal.stat().st_size if wal.exists() else 0


def _fine_times(files: list[Path]) -> dict[str, float]:
    """The files whose modification time is not the start of a UTC day, with that time. (The
    access time is set too, but any later read moves it: docs/threat-model.md.)"""
    return {
        path.name: path.stat().st_mtime
        for path in files
        if path.exists() and path.stat().st_mtime % DAY
    }


def test_after_every_reporter_write_the_wal_is_empty_and_file_times_say_the_day_only(
    app: Flask, portal: Portal
) -> None:
    files = _files(app)
    olga = portal.staff("olga")
    staff = app.test_client()
    login(staff, olga)  # staff writes of exact times (session, audit) go first
    assert _wal_bytes(files) > 0  # the WAL is in use: what follows is the checkpoint's doing
    reporter = app.test_client()
    midnight = time.time() // DAY * DAY

    receipt = submit_via_web(reporter)
    assert _wal_bytes(files) == 0, "the submission's frames stayed in the WAL"
    assert _fine_times(files) == {}

    staff.get("/staff/")  # a staff write in between (last_seen_at, a view later)
    assert _fine_times(files) == {}  # after a staff commit too: a coarse time marks no one

    open_followup(reporter, receipt)  # the reporter comes back (the "returned" flag)
    assert _wal_bytes(files) == 0
    assert _fine_times(files) == {}

    page = reporter.get("/followup/case").text
    sent = reporter.post(
        "/followup/case", data={"csrf_token": csrf_token(page), "text": "One more thing."}
    )
    assert sent.status_code == 302
    assert _wal_bytes(files) == 0, "the reporter message's frames stayed in the WAL"
    assert _fine_times(files) == {}
    assert all(p.stat().st_mtime == midnight for p in files if p.exists())


def test_file_times_are_set_to_the_start_of_the_utc_day(app: Flask, portal: Portal) -> None:
    files = _files(app)
    engine = app.extensions["portal"].engine
    at = dt.datetime(2026, 5, 14, 17, 42, 9, tzinfo=dt.UTC).timestamp()
    coarse_file_times(engine, now=at)
    start = dt.datetime(2026, 5, 14, tzinfo=dt.UTC).timestamp()
    assert {os.stat(p).st_mtime for p in files if p.exists()} == {start}


def test_the_notified_flags_say_nothing_finer_than_the_day(portal: Portal, db: Session) -> None:
    """Two concerns of the same day, one before and one after a batch, are stored alike, and
    both are told in the first batch of the next day, in one notice."""
    alice = portal.staff("alice")
    day = dt.date(2026, 5, 14)
    batch = dt.datetime(2026, 5, 14, 12, 0, tzinfo=dt.UTC)
    printed: list[str] = []
    mailer = PrintMailer(printed.append)
    before = portal.submit(day, description="Received in the morning, before the batch.")

    run = notify.notify_new_cases(db, portal.settings, mailer, batch)
    db.commit()
    after = portal.submit(day, description="Received in the afternoon, after the batch.")

    assert run.due and run.notices == []  # today's concern waits for the day to end
    assert db.get_one(JobRun, notify.NOTIFY_JOB).last_run_at == batch

    def flags(case_id: str) -> list[bool]:
        db.expire_all()
        return list(db.scalars(select(CaseAccess.notified).where(CaseAccess.case_id == case_id)))

    assert flags(before.case_id) == flags(after.case_id) == [False]

    next_day = notify.notify_new_cases(db, portal.settings, mailer, batch + dt.timedelta(hours=18))
    db.commit()
    assert [(n.staff_id, sorted(n.case_ids)) for n in next_day.notices] == [
        (alice.id, sorted([before.case_id, after.case_id]))
    ]
    assert flags(before.case_id) == flags(after.case_id) == [True]


def test_a_checkpoint_held_up_by_a_reader_says_so_and_the_next_one_empties_the_wal(
    app: Flask, portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader inside an old snapshot keeps the WAL: the checkpoint reports it instead of
    pretending, and a reporter's write still gets its receipt (nothing raised after commit)."""
    files = _files(app)
    engine = app.extensions["portal"].engine
    portal.staff("olga")
    reader = sqlite3.connect(files[0])
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM cases").fetchone()  # holds its snapshot
        portal.submit()  # a commit after the reader's snapshot
        assert checkpoint(engine, wait_ms=50) is False
        assert _wal_bytes(files) > 0
        with caplog.at_level(logging.WARNING, logger="portal.db"):
            assert submit_via_web(app.test_client())  # the receipt is shown all the same
        assert "held up" in caplog.text
        assert _fine_times(files) == {}
    finally:
        reader.close()
    assert checkpoint(engine, wait_ms=50) is True
    assert _wal_bytes(files) == 0


def test_a_checkpoint_waits_for_a_reader_that_lets_go_in_time(app: Flask, portal: Portal) -> None:
    files = _files(app)
    engine = app.extensions["portal"].engine
    portal.staff("olga")
    reader = sqlite3.connect(files[0], check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM cases").fetchone()
    portal.submit()
    letting_go = threading.Timer(0.3, reader.rollback)
    letting_go.start()
    try:
        assert checkpoint(engine, wait_ms=5000) is True
    finally:
        letting_go.join()
        reader.close()
    assert _wal_bytes(files) == 0
