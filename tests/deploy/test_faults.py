"""Faults beyond a killed worker (issue 13): the database restarting, Redis away for a while,
the SQLite disk full, the clock stepping back. For each: nothing is stored half-way, every
refusal is a page in words that gives back what was typed, the portal recovers by itself
without a restart, and ``portal doctor`` names the state it finds. A worker or server killed
mid-request, and the same faults under load, are bench/load.py's (docs/benchmarks.md)."""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from portal.app import create_app
from portal.instance import InstanceSecrets
from portal.models import AuditEvent, Case
from portal.ops.doctor import host, mail
from portal.ops.doctor.core import Status
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.reporting.throttle import make_submission_limits
from portal.settings import Settings
from tests.support.factories import NO_REDIS, REDIS_URL, Portal
from tests.support.pages import csrf_token, report_form
from tests.support.tcp_proxy import TcpProxy

TEXT = "fault-marker-5150 the scaffolding on level 3 has no guard rail"


def _send(client: FlaskClient, text: str = TEXT) -> tuple[int, str]:
    token = csrf_token(client.get("/report").text)
    answer = client.post("/report", data={"csrf_token": token, **report_form(description=text)})
    return answer.status_code, answer.text


def _unsent(page: str) -> str:
    match = re.search(r'<textarea id="unsent" readonly>(.*?)</textarea>', page, re.S)
    assert match, "the page does not give back what was typed"
    return html.unescape(match.group(1))


def _cases(session: Session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Case)) or 0


@pytest.fixture
def staffed(portal: Portal) -> Portal:
    portal.staff("alice", queues=("general", "hr", "safety", "ethics", "board"))
    return portal


# --- the SQLite disk full --------------------------------------------------------------------


def test_a_full_sqlite_disk_stores_nothing_says_so_gives_the_text_back_and_recovers(
    app: Flask, staffed: Portal, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    before = _cases(db)
    # The database may not grow: a concern (several pages of ciphertext) cannot fit.
    with full_disk_of(app) as engine:
        status, page = _send(client, TEXT + " " + "x" * 19_000)
        assert status == 503
        assert "The portal cannot store anything right now" in page
        assert "Nothing was stored and nothing was sent" in page
        assert TEXT in _unsent(page)
        assert _cases(db) == before
        assert "database full on reporter.report" in caplog.text
        assert TEXT not in caplog.text
        report = host.check_disk_space(engine, free=lambda _p: 10 * 1024 * 1024)
        assert report.status is Status.FAIL and "10 MiB free" in report.message
    # Room again: the same app takes the concern, no restart.
    status, _page = _send(client)
    assert status == 303
    assert _cases(db) == before + 1


class full_disk_of:  # a context manager read as a phrase
    def __init__(self, app: Flask) -> None:
        self.engine: Engine = app.extensions["portal"].engine
        if self.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's own disk-full error; PostgreSQL's disk is its server's")

    def _cap(self, dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    def __enter__(self) -> Engine:
        self.engine.dispose()
        # No free page left inside the file either (deleted rows leave some): every new row
        # needs the file to grow, which the cap refuses.
        with self.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
        self.engine.dispose()
        event.listen(self.engine, "connect", self._cap)
        return self.engine

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "connect", self._cap)
        self.engine.dispose()


# --- the database restarting -----------------------------------------------------------------


def test_a_database_restart_is_told_in_words_and_the_portal_recovers_without_a_restart(
    app: Flask,
    staffed: Portal,
    db: Session,
    settings: Settings,
    secrets: InstanceSecrets,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Between the app and PostgreSQL, a proxy that drops every connection and refuses new
    ones, as PostgreSQL does while it restarts."""
    engine: Engine = app.extensions["portal"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("a server database restarts; an SQLite file does not")
    url = urlsplit(settings.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    try:
        netloc = f"{url.username}@{proxy.url_host}" if url.username else proxy.url_host
        proxied = urlunsplit((url.scheme, netloc, url.path, url.query, ""))
        served = create_app(settings.replace(database_url=proxied), secrets=secrets)
        client = served.test_client()
        assert client.get("/report").status_code == 200
        before = _cases(db)
        proxy.cut()  # PostgreSQL goes down: open connections reset, new ones refused
        token_page = client.get("/report")
        assert token_page.status_code == 503
        assert "The portal cannot reach its database right now" in token_page.text
        assert "Please reload it in a few minutes" in token_page.text
        assert token_page.headers["Retry-After"]
        # A concern sent while it is down (its form was loaded before): nothing half-stored.
        proxy.restore()
        token = csrf_token(client.get("/report").text)
        proxy.cut()
        answer = client.post("/report", data={"csrf_token": token, **report_form(description=TEXT)})
        assert answer.status_code == 503
        assert TEXT in _unsent(answer.text)
        assert _cases(db) == before
        assert "database unavailable on reporter.report" in caplog.text
        assert TEXT not in caplog.text
        proxy.restore()  # PostgreSQL is back: the same app serves again
        status, _page = _send(client)
        assert status == 303
        assert _cases(db) == before + 1
        served.extensions["portal"].engine.dispose()
    finally:
        proxy.close()


# --- Redis away for a while ------------------------------------------------------------------


def _wire(app: Flask, settings: Settings, redis_url: str, per_client: int) -> None:
    state = app.extensions["portal"]
    state.submission_limits = make_submission_limits(
        redis_url,
        settings.submit_max_total,
        settings.submit_total_window_seconds,
        per_client,
        settings.submit_client_window_seconds,
    )


def test_without_an_answer_from_redis_limits_are_counted_locally_and_nobody_gets_an_error(
    app: Flask, staffed: Portal, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis configured but not there at all (a refused port): every concern gets its answer
    and the per-client limit still holds, counted by this server."""
    closed = TcpProxy("127.0.0.1", 9)  # a proxy with nothing behind it
    closed.cut()
    _wire(app, settings, f"redis://{closed.url_host}/0", per_client=2)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.77"
    assert [_send(client)[0] for _ in range(3)] == [303, 303, 429]
    assert "Redis does not answer: rate limits are counted on this server" in caplog.text
    assert "198.51.100.77" not in caplog.text
    report = mail.check_redis(settings.replace(redis_url=f"redis://{closed.url_host}/0"))
    assert report.status is Status.FAIL and "counts rate limits on its own" in report.message


def test_redis_away_for_a_while_then_back_the_limit_holds_throughout(
    app: Flask, staffed: Portal, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    if not REDIS_URL:
        pytest.skip(NO_REDIS)
    if app.extensions["portal"].engine.dialect.name != "sqlite":
        pytest.skip("one database is enough: both variants would share the Redis keys")
    target = urlsplit(REDIS_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    try:
        # A database number of its own, so no other test's counters meet these.
        _wire(app, settings, f"redis://{proxy.url_host}/14", per_client=2)
        direct = redis.Redis.from_url(urlunsplit((*target[:2], "/14", "", "")))
        direct.flushdb()
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "198.51.100.78"
        assert _send(client)[0] == 303  # counted in Redis
        proxy.cut()
        assert _send(client)[0] == 303  # counted here: 1 of 2
        assert _send(client)[0] == 303  # 2 of 2
        assert _send(client)[0] == 429
        proxy.restore()
        assert _send(client)[0] == 303  # Redis again: its count was 1
        assert _send(client)[0] == 429
        assert "Redis answers again: rate limits are shared again" in caplog.text
        direct.flushdb()
        direct.close()
    finally:
        proxy.close()


# --- the clock stepping back -----------------------------------------------------------------


def test_doctor_names_a_clock_that_stepped_back(db: Session, staffed: Portal) -> None:
    """What the database holds after the clock stepped back an hour: audit events written in
    what is now the future."""
    now = dt.datetime.now(dt.UTC)
    assert host.check_clock(db, now).status is Status.OK  # no event yet
    audit.record(db, Action.INSIGHTS_REFRESHED, now, as_of=now.date().isoformat(), releases=0)
    db.commit()
    assert host.check_clock(db, now).status is Status.OK
    newest = db.scalar(select(func.max(AuditEvent.at)))
    assert newest is not None
    behind = newest - dt.timedelta(hours=1)
    result = host.check_clock(db, behind)
    assert result.status is Status.FAIL
    assert "60 minutes ahead of this machine's clock" in result.message
    assert "NTP" in result.fix
    assert host.check_clock(db, newest - dt.timedelta(seconds=30)).status is Status.OK
