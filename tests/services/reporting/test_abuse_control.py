"""Abuse control on the reporter forms (issue 6): honeypot, submission limits (portal-wide and
per client, in memory and in Redis) and the optional access code, checked on what is shown,
stored, logged and kept in Redis. The test client sends no JavaScript: every flow here is the
JavaScript-off flow."""

from __future__ import annotations

import html
import logging
import re
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.errors import InvalidInput
from portal.models import Case, Message, MessageAuthor
from portal.services.reporting import access_code
from portal.services.reporting.throttle import (
    EVERYONE,
    MemoryThrottle,
    RedisThrottle,
    SubmissionLimits,
    client_key,
    make_submission_limits,
)
from portal.settings import PROJECT_ROOT, TEST_ARGON2, Settings, SettingsError, load_settings
from tests.support import served
from tests.support.factories import NO_REDIS, REDIS_URL, Portal
from tests.support.pages import csrf_token, open_followup, receipt_of, report_form
from tests.support.stored import database_bytes

ADDRESS = "198.51.100.23"
OTHER_ADDRESS = "198.51.100.99"
TEXT = "abuse-marker-4711 the forklift brakes failed again"
CODE = "blue-heron-42"


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def reporter(app: Flask, address: str = ADDRESS) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def send(client: FlaskClient, **overrides: object) -> TestResponse:
    token = csrf_token(client.get("/report").text)
    data = {"csrf_token": token, **report_form(description=TEXT), **overrides}
    return client.post("/report", data=data)


def textarea(page: str, name: str) -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>\r?\n?(.*?)</textarea>', page, re.S)
    assert match, f"page has no textarea {name!r}"
    return html.unescape(match.group(1))


def cases(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Case)) or 0


def reporter_messages(db: Session) -> int:
    db.expire_all()
    query = select(func.count()).select_from(Message)
    return db.scalar(query.where(Message.author == MessageAuthor.REPORTER.value)) or 0


def memory_limits(
    clock: Clock, *, total: int = 1000, per_client: int = 1000, window: int = 600
) -> SubmissionLimits:
    return SubmissionLimits(
        everyone=MemoryThrottle(3600, clock=clock),
        everyone_max=total,
        per_client=MemoryThrottle(window, clock=clock, key_rotation_seconds=window),
        client_max=per_client,
    )


@pytest.fixture
def staffed(portal: Portal) -> Portal:
    portal.staff("alice", queues=("general", "hr", "safety"))
    return portal


# --- honeypot ------------------------------------------------------------------------------------


def test_the_honeypot_is_hidden_from_people_and_present_for_robots(
    app: Flask, staffed: Portal
) -> None:
    page = reporter(app).get("/report").text
    match = re.search(r'<div class="hp-field" aria-hidden="true">(.*?)</div>', page, re.S)
    assert match, "the report form has no honeypot"
    field = match.group(1)
    assert '<label for="website">Leave this field empty</label>' in field
    tag = re.search(r"<input[^>]*>", field)
    assert tag
    for attribute in (
        'name="website"',
        'autocomplete="off"',
        'tabindex="-1"',
        'aria-hidden="true"',
        'value=""',
    ):
        assert attribute in tag.group(0)
    assert "style=" not in field  # hidden by the stylesheet: the CSP forbids inline styles
    css = (PROJECT_ROOT / "static" / "portal.css").read_text()
    rule = re.search(r"\.hp-field \{([^}]*)\}", css)
    assert rule and "left: -10000px" in rule.group(1) and "display: none" not in rule.group(1)


def test_a_filled_honeypot_is_refused_nothing_stored_and_the_text_kept(
    app: Flask, staffed: Portal, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = send(reporter(app), website="https://spam.example/buy")
    assert response.status_code == 400
    assert "could not be sent this time" in response.text
    assert "Nothing was sent" in response.text
    assert textarea(response.text, "description") == TEXT  # a person who filled it loses nothing
    assert "spam.example" not in response.text  # the honeypot comes back empty
    assert cases(db) == 0
    assert TEXT.encode() not in database_bytes(app)
    assert TEXT not in caplog.text and "spam.example" not in caplog.text


def test_a_filled_honeypot_on_a_follow_up_message_is_refused(
    app: Flask, staffed: Portal, db: Session
) -> None:
    client = reporter(app)
    receipt = receipt_of(client.get(send(client).location).text)
    open_followup(client, receipt)
    token = csrf_token(client.get("/followup/case").text)
    response = client.post(
        "/followup/case", data={"csrf_token": token, "text": TEXT, "website": "x"}
    )
    assert response.status_code == 400
    assert "could not be sent this time" in response.text
    assert textarea(response.text, "text") == TEXT
    assert reporter_messages(db) == 0
    assert '<div class="hp-field" aria-hidden="true">' in response.text


def test_honeypot_refusals_count_against_the_client(
    app: Flask, staffed: Portal, db: Session
) -> None:
    app.extensions["portal"].submission_limits = memory_limits(Clock(), per_client=2)
    client = reporter(app)
    assert send(client, website="x").status_code == 400
    assert send(client, website="x").status_code == 400
    assert send(client).status_code == 429  # the robot is slowed down like anyone else
    assert cases(db) == 0


# --- submission limits ---------------------------------------------------------------------------


def test_the_per_client_limit_answers_429_keeps_the_text_and_says_when(
    app: Flask, staffed: Portal, db: Session
) -> None:
    clock = Clock()
    app.extensions["portal"].submission_limits = memory_limits(clock, per_client=2, window=600)
    client = reporter(app)
    assert send(client).status_code == 303
    assert send(client).status_code == 303
    clock.now += 120
    refused = send(client, description=TEXT + " third")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "480"
    assert "please send it again in 8 minutes" in refused.text
    assert textarea(refused.text, "description") == TEXT + " third"
    assert re.search(r'<input checked[^>]*value="harassment"', refused.text)  # choices kept
    assert cases(db) == 2
    # Another address is another client: it is not held up.
    assert send(reporter(app, OTHER_ADDRESS)).status_code == 303
    # Once the window is over, the first client may send again.
    clock.now += 481
    assert send(client).status_code == 303
    assert cases(db) == 4


def test_the_portal_wide_limit_holds_every_client(app: Flask, staffed: Portal, db: Session) -> None:
    app.extensions["portal"].submission_limits = memory_limits(Clock(), total=2)
    assert send(reporter(app, "192.0.2.1")).status_code == 303
    assert send(reporter(app, "192.0.2.2")).status_code == 303
    refused = send(reporter(app, "192.0.2.3"))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == 3600
    assert textarea(refused.text, "description") == TEXT
    assert "Too many concerns and messages" in refused.text
    assert cases(db) == 2


def test_refused_forms_do_not_use_up_the_portal_wide_limit(
    app: Flask, staffed: Portal, db: Session
) -> None:
    """Only what was stored counts portal-wide, so junk cannot close the channel for all."""
    limits = memory_limits(Clock(), total=1)
    app.extensions["portal"].submission_limits = limits
    for address in ("192.0.2.10", "192.0.2.11", "192.0.2.12"):
        assert send(reporter(app, address), website="junk").status_code == 400
        assert send(reporter(app, address), description="").status_code == 400  # a mistake
    assert limits.everyone.failures(EVERYONE) == 0
    assert send(reporter(app)).status_code == 303


def test_follow_up_messages_are_limited_too_and_keep_the_text(
    app: Flask, staffed: Portal, db: Session
) -> None:
    app.extensions["portal"].submission_limits = memory_limits(Clock(), per_client=2)
    client = reporter(app)
    receipt = receipt_of(client.get(send(client).location).text)  # one
    open_followup(client, receipt)
    token = csrf_token(client.get("/followup/case").text)
    sent = client.post("/followup/case", data={"csrf_token": token, "text": "first"})
    assert sent.status_code == 302  # two
    refused = client.post("/followup/case", data={"csrf_token": token, "text": TEXT})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"]
    assert textarea(refused.text, "text") == TEXT
    assert "please send it again in 10 minutes" in refused.text
    assert reporter_messages(db) == 1


def test_per_client_keys_change_every_window_and_hold_no_address() -> None:
    clock = Clock()
    limits = memory_limits(clock, per_client=1, window=600)
    first = client_key(limits.per_client, ADDRESS)
    assert ADDRESS not in first and first == client_key(limits.per_client, ADDRESS)
    limits.accepted(first)
    assert limits.wait_seconds(first) > 0
    clock.now += 600
    second = client_key(limits.per_client, ADDRESS)
    assert second != first  # the same address, two windows: nothing links the two keys
    assert limits.wait_seconds(second) == 0
    assert limits.per_client.failures(first) == 0  # the old window's counter is gone


def test_the_app_wires_a_per_window_client_key() -> None:
    limits = make_submission_limits("", 100, 3600, 5, 600)
    assert isinstance(limits.per_client, MemoryThrottle)
    assert limits.per_client._rotation == 600  # the key lives one window, not a day
    assert (limits.everyone_max, limits.client_max) == (100, 5)


# --- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    if not REDIS_URL:
        pytest.skip(NO_REDIS)
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def _everything_in(client: redis.Redis, pattern: str) -> dict[bytes, tuple[bytes, int]]:
    found = {}
    for name in client.scan_iter(pattern):
        value = client.get(name)
        ttl = client.ttl(name)
        assert isinstance(value, bytes) and isinstance(ttl, int)
        found[name] = (value, ttl)
    return found


def test_redis_holds_only_keyed_digests_that_expire_with_the_window(
    redis_client: redis.Redis,
) -> None:
    prefix = f"portal:test-submit-{uuid.uuid4().hex[:8]}"
    per_client = RedisThrottle(redis_client, 1, prefix=prefix, key_rotation_seconds=1)
    everyone = RedisThrottle(redis_client, 60, prefix=prefix + "-all")
    limits = SubmissionLimits(everyone, 100, per_client, 1)
    try:
        first = client_key(per_client, ADDRESS)
        limits.accepted(first)
        assert limits.wait_seconds(first) == 1
        stored = _everything_in(redis_client, f"{prefix}*")
        for name, (value, ttl) in stored.items():
            assert ADDRESS.encode() not in name and ADDRESS.encode() not in value
            assert 0 < ttl <= (60 if name.startswith(f"{prefix}-all".encode()) else 1), name
        key = stored[f"{prefix}:client-key".encode()][0]
        assert f"{prefix}:{first}".encode() in stored
        assert first == "client:" + crypto.keyed_digest(key, ADDRESS)
        time.sleep(1.2)  # the window (and with it the key) ends in Redis itself
        assert redis_client.exists(f"{prefix}:client-key", f"{prefix}:{first}") == 0
        second = client_key(per_client, ADDRESS)
        assert second != first
        assert limits.wait_seconds(second) == 0
    finally:
        for name in redis_client.scan_iter(f"{prefix}*"):
            redis_client.delete(name)


def test_with_redis_the_app_counts_submissions_there_and_nowhere_in_the_clear(
    app: Flask,
    staffed: Portal,
    settings: Settings,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if app.extensions["portal"].engine.dialect.name != "sqlite":
        pytest.skip("one database is enough: both variants would share the Redis keys")
    caplog.set_level(logging.DEBUG)
    wired = settings.replace(redis_url=REDIS_URL, submit_max_per_client=1)
    state = app.extensions["portal"]
    state.settings = wired
    state.submission_limits = make_submission_limits(
        REDIS_URL,
        wired.submit_max_total,
        wired.submit_total_window_seconds,
        wired.submit_max_per_client,
        wired.submit_client_window_seconds,
    )
    for name in redis_client.scan_iter("portal:submit*"):
        redis_client.delete(name)
    try:
        client = reporter(app)
        assert send(client).status_code == 303
        assert send(client).status_code == 429  # the count is in Redis, not in this process
        stored = _everything_in(redis_client, "portal:submit*")
        key = stored[b"portal:submit:client-key"][0]
        digest = crypto.keyed_digest(key, ADDRESS)
        assert f"portal:submit:client:{digest}".encode() in stored
        for name, (value, ttl) in stored.items():
            assert ADDRESS.encode() not in name + value
            assert 0 < ttl <= max(wired.submit_client_window_seconds, 3600)
        assert stored[b"portal:submit:client-key"][1] <= wired.submit_client_window_seconds
        # The digest (and the key that made it) reach neither the database nor a log.
        in_db = database_bytes(app)
        for secret in (ADDRESS.encode(), digest.encode(), key):
            assert secret not in in_db
        for text in (ADDRESS, digest, key.hex()):
            assert text not in caplog.text
    finally:
        for name in redis_client.scan_iter("portal:submit*"):
            redis_client.delete(name)


# --- access code ---------------------------------------------------------------------------------


def with_code(app: Flask, settings: Settings, **limits: int) -> None:
    state = app.extensions["portal"]
    state.settings = settings.replace(
        report_access_code_hash=access_code.hash_code(CODE, TEST_ARGON2)
    )
    state.submission_limits = memory_limits(Clock(), **limits)


def test_no_access_code_is_asked_unless_one_is_set(app: Flask, staffed: Portal) -> None:
    page = reporter(app).get("/report").text
    assert 'name="access_code"' not in page
    assert send(reporter(app)).status_code == 303


def test_the_right_access_code_sends_the_concern(
    app: Flask, staffed: Portal, settings: Settings, db: Session
) -> None:
    with_code(app, settings)
    page = reporter(app).get("/report").text
    assert 'name="access_code" type="password"' in page
    assert send(reporter(app), access_code=f"  {CODE} ").status_code == 303
    assert cases(db) == 1


def test_a_wrong_access_code_keeps_the_text_and_counts_as_a_failure(
    app: Flask, staffed: Portal, settings: Settings, db: Session
) -> None:
    with_code(app, settings, per_client=2)
    client = reporter(app)
    wrong = send(client, access_code="red-heron-42")
    assert wrong.status_code == 400
    assert "That access code is not right" in wrong.text
    assert textarea(wrong.text, "description") == TEXT
    assert "red-heron-42" not in wrong.text  # the typed code is not echoed back
    assert send(client, access_code="green-heron-42").status_code == 400
    # Two wrong codes used this client's window: even the right one waits now.
    assert send(client, access_code=CODE).status_code == 429
    assert cases(db) == 0
    assert send(reporter(app, OTHER_ADDRESS), access_code=CODE).status_code == 303


def test_a_missing_access_code_is_a_mistake_not_a_failure(
    app: Flask, staffed: Portal, settings: Settings, db: Session
) -> None:
    with_code(app, settings, per_client=1)
    client = reporter(app)
    for _ in range(3):
        missing = send(client, description="")
        assert missing.status_code == 400
        assert "Type the access code your organisation gave you." in missing.text
        assert "Please describe your concern." in missing.text  # both marked at once
    assert send(client, access_code=CODE).status_code == 303
    assert cases(db) == 1


def test_the_access_code_setting_holds_a_hash_never_the_code() -> None:
    code_hash = access_code.hash_code(CODE, TEST_ARGON2)
    assert CODE not in code_hash and code_hash.startswith("$argon2id$")
    assert access_code.matches(code_hash, CODE, TEST_ARGON2)
    assert not access_code.matches(code_hash, CODE.upper(), TEST_ARGON2)
    loaded = load_settings({"PORTAL_REPORT_ACCESS_CODE_HASH": code_hash})
    assert loaded.report_access_code_hash == code_hash
    assert code_hash not in repr(loaded)
    with pytest.raises(SettingsError, match="must be an Argon2id hash"):
        load_settings({"PORTAL_REPORT_ACCESS_CODE_HASH": CODE})
    with pytest.raises(InvalidInput, match="8 to 200 characters"):
        access_code.hash_code("short", TEST_ARGON2)


def test_the_cli_prints_a_hash_the_form_accepts(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["access-code-hash", "--stdin"], input=CODE + "\n")
    assert result.exit_code == 0, result.output
    printed = result.output.strip()
    assert CODE not in printed
    assert access_code.matches(printed, CODE, TEST_ARGON2)
    short = app.test_cli_runner().invoke(args=["access-code-hash", "--stdin"], input="abc\n")
    assert short.exit_code != 0 and "8 to 200 characters" in short.output


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SUBMIT_MAX_PER_CLIENT", "0", "submit_max_per_client"),
        ("SUBMIT_MAX_TOTAL", "0", "submit_max_total"),
        ("SUBMIT_CLIENT_WINDOW_SECONDS", "0", "submit_client_window_seconds"),
        ("SUBMIT_TOTAL_WINDOW_SECONDS", "90000", "at most 86400 seconds"),
        ("SUBMIT_CLIENT_WINDOW_SECONDS", "90000", "at most 86400 seconds"),
    ],
)
def test_submission_limit_settings_are_validated(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({f"PORTAL_{name}": value})


def test_submission_limit_defaults_are_documented() -> None:
    defaults = Settings()
    assert (defaults.submit_max_total, defaults.submit_total_window_seconds) == (100, 3600)
    assert (defaults.submit_max_per_client, defaults.submit_client_window_seconds) == (5, 600)
    configuration = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    limits = (PROJECT_ROOT / "docs" / "limits.md").read_text()
    example = (PROJECT_ROOT / "config" / "portal.example.toml").read_text()
    for name in (
        "submit_max_total",
        "submit_total_window_seconds",
        "submit_max_per_client",
        "submit_client_window_seconds",
        "report_access_code_hash",
    ):
        assert f"| `{name}` |" in configuration
        assert f"{name} = " in example
    assert "`submit_max_per_client`" in limits and "`submit_max_total`" in limits


# --- several workers of one real server ---------------------------------------------------------


def _http(port: int, request: bytes) -> bytes:
    with socket.create_connection((served.HOST, port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_without_redis_every_worker_of_a_server_counts_in_the_same_limit(tmp_path: Path) -> None:
    """Issue 13, finding 13: without Redis each worker counted apart (9 submissions passed
    where the setting said 5 with 2 workers). A real ``portal serve`` with 2 sync workers and
    no Redis gets N+4 concerns from one client; every other one is sent while the first half of
    the previous request holds one worker busy, so the two workers take turns. Exactly N pass."""
    limit = 4
    with served.portal_serve(
        tmp_path, workers=2, env={"PORTAL_SUBMIT_MAX_PER_CLIENT": str(limit)}
    ) as server:
        page = _http(
            server.port, b"GET /report HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        cookie = re.search(rb"Set-Cookie: (portal_form=[^;]+)", page)
        assert cookie, page[:500]
        token = csrf_token(page.decode())
        body = urllib.parse.urlencode(
            {"csrf_token": token, **report_form(description=TEXT)}
        ).encode()
        head = (
            b"POST /report HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Cookie: " + cookie.group(1) + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        statuses = []
        for _pair in range((limit + 4) // 2):
            with socket.create_connection((served.HOST, server.port), timeout=30) as held:
                held.sendall(head)  # one worker now waits for this body ...
                time.sleep(0.5)
                statuses.append(_status(_http(server.port, head + body)))  # ... the other serves
                held.sendall(body)
                answer = b""
                while chunk := held.recv(65536):
                    answer += chunk
                statuses.append(_status(answer))
    written = server.text()

    assert statuses.count(303) == limit, statuses
    assert statuses.count(429) == 4, statuses
    assert "in memory shared by this server's workers" in written
