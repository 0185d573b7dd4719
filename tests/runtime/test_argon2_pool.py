"""The Argon2 pool: a process-wide bound on concurrent Argon2 computations, so a burst of log-ins
or receipts cannot exhaust memory; and the 503 "busy" answer that keeps what was typed."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import argon2  # noqa: TID251  # the error argon2 itself raises, which crypto lets through
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.app import create_app
from portal.instance import InstanceSecrets
from portal.models import AuditEvent, Case
from portal.runtime.capacity import Capacity, auto_argon2_pool_size
from portal.settings import (
    PRODUCTION_ARGON2,
    TEST_ARGON2,
    Settings,
    SettingsError,
    load_settings,
)
from tests.support.concurrency import Gauge
from tests.support.factories import PASSWORD, Portal
from tests.support.pages import csrf_token, login, report_form

SALT = b"\0" * crypto.SALT_BYTES


@pytest.fixture(autouse=True)
def _restore_pool() -> Iterator[None]:
    """Whatever a test configures, the pool is put back afterwards."""
    size, wait = crypto.ARGON2_POOL.size, crypto.ARGON2_POOL.wait_seconds
    yield
    crypto.ARGON2_POOL.configure(size, wait)


class _GaugedHasher:
    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge

    def hash(self, password: str) -> str:
        self._gauge.run()
        return "$argon2id$fake"

    def verify(self, password_hash: str, password: str) -> bool:
        self._gauge.run()
        return True


def _instrument(monkeypatch: pytest.MonkeyPatch, gauge: Gauge) -> None:
    """Replace both Argon2 entry points crypto uses (raw derivation and the PasswordHasher) by
    a gauge, so the test sees how many run at once without spending real Argon2 time."""

    def raw(**kwargs: Any) -> bytes:
        gauge.run()
        return b"k" * crypto.KEY_BYTES

    monkeypatch.setattr(crypto, "hash_secret_raw", raw)
    monkeypatch.setattr(crypto, "_hasher", lambda cost: _GaugedHasher(gauge))


_OPERATIONS: dict[str, Callable[[], object]] = {
    "derive_reporter_private_key": lambda: crypto.derive_reporter_private_key(
        "0" * crypto.RECEIPT_SYMBOLS, SALT, TEST_ARGON2
    ),
    "burn_receipt_time": lambda: crypto.burn_receipt_time(TEST_ARGON2),
    "burn_password_time": lambda: crypto.burn_password_time(TEST_ARGON2),
    "wrap_with_password": lambda: crypto.wrap_with_password(b"p" * 32, "pw", TEST_ARGON2),
    "hash_password": lambda: crypto.hash_password("pw", TEST_ARGON2),
    "verify_password": lambda: crypto.verify_password("$argon2id$fake", "pw", TEST_ARGON2),
    "backup_key": lambda: crypto.backup_key("passphrase", SALT, TEST_ARGON2),
}


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
def test_concurrent_argon2_calls_never_exceed_the_bound(
    monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    gauge = Gauge()
    _instrument(monkeypatch, gauge)
    crypto.configure_argon2_pool(2, 10)
    threads = [threading.Thread(target=_OPERATIONS[operation]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gauge.calls == 8
    # Exactly the bound: two did run together (the pool is not a lock), never three.
    assert gauge.most == 2


def test_mixed_argon2_calls_share_one_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    gauge = Gauge()
    _instrument(monkeypatch, gauge)
    crypto.configure_argon2_pool(3, 10)
    threads = [
        threading.Thread(target=operation)
        for operation in list(_OPERATIONS.values()) * 2  # 14 calls of 7 kinds
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gauge.calls == 14 and gauge.most == 3


def test_a_full_pool_raises_a_typed_error_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    gauge = Gauge()
    _instrument(monkeypatch, gauge)
    crypto.configure_argon2_pool(1, 0.2)
    with crypto._argon2_slot():  # the only slot is taken (by "another request")
        started = time.monotonic()
        with pytest.raises(crypto.Argon2Busy):
            crypto.derive_reporter_private_key("0" * crypto.RECEIPT_SYMBOLS, SALT, TEST_ARGON2)
        waited = time.monotonic() - started
    assert 0.2 <= waited < 5
    assert gauge.calls == 0  # nothing was computed
    # The slot is free again: the next call runs.
    crypto.derive_reporter_private_key("0" * crypto.RECEIPT_SYMBOLS, SALT, TEST_ARGON2)
    assert gauge.calls == 1


def test_a_waiting_call_runs_when_a_slot_frees_up_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gauge = Gauge(seconds=0.01)
    _instrument(monkeypatch, gauge)
    crypto.configure_argon2_pool(1, 10)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with crypto._argon2_slot():
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    threading.Timer(0.1, release.set).start()
    assert crypto.hash_password("pw", TEST_ARGON2) == "$argon2id$fake"
    holder.join()
    assert gauge.calls == 1


def test_no_wait_means_busy_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _instrument(monkeypatch, Gauge())
    crypto.configure_argon2_pool(1, 0)
    with crypto._argon2_slot():
        started = time.monotonic()
        with pytest.raises(crypto.Argon2Busy):
            crypto.hash_password("pw", TEST_ARGON2)
        assert time.monotonic() - started < 0.1


def test_a_failed_computation_gives_its_slot_back() -> None:
    crypto.configure_argon2_pool(1, 0)
    # A hash of the wrong shape: argon2 raises inside the slot, verify_password says False.
    assert crypto.verify_password("not a hash", "pw", TEST_ARGON2) is False
    with pytest.raises(argon2.exceptions.HashingError):
        crypto.backup_key("x", b"short", TEST_ARGON2)  # salt too short: argon2 refuses
    crypto.derive_reporter_private_key("0" * crypto.RECEIPT_SYMBOLS, SALT, TEST_ARGON2)


def test_reconfiguring_keeps_running_computations_balanced() -> None:
    crypto.configure_argon2_pool(1, 0)
    with crypto._argon2_slot():
        crypto.configure_argon2_pool(2, 0)  # a new semaphore; the held slot is the old one's
    # The old slot went back to the old semaphore (a BoundedSemaphore would raise otherwise),
    # and the new pool has both of its slots.
    with crypto._argon2_slot(), crypto._argon2_slot(), pytest.raises(crypto.Argon2Busy):
        crypto.burn_receipt_time(TEST_ARGON2)


def test_configure_refuses_an_empty_pool() -> None:
    with pytest.raises(ValueError):
        crypto.configure_argon2_pool(0, 10)
    with pytest.raises(ValueError):
        crypto.configure_argon2_pool(1, -1)


# --- settings ----------------------------------------------------------------------------------


def test_automatic_bound_comes_from_memory_and_cpus() -> None:
    gib = 1024**3
    production = PRODUCTION_ARGON2.memory_kib  # 64 MiB
    # 2 GiB: a quarter is 512 MiB, which holds 8 computations of 64 MiB; 16 CPUs allow that.
    assert auto_argon2_pool_size(production, 2 * gib, 16) == 8
    assert auto_argon2_pool_size(production, 64 * gib, 4) == 4  # CPUs are the smaller bound
    assert auto_argon2_pool_size(production, 128 * 1024**2, 8) == 1  # never below one
    assert auto_argon2_pool_size(production, 0, 3) == 3  # memory unknown: one per CPU


def test_settings_bound_explicit_or_automatic() -> None:
    gib = 1024**3
    assert Capacity(0, 0, 1).argon2_pool_size(Settings(argon2_max_concurrent=7)) == 7
    machine = Capacity(physical_memory_bytes=gib, memory_limit_bytes=0, cpus=32)
    # The larger of the two memory costs counts: 256 MiB / 128 MiB = 2.
    settings = Settings(password_memory_kib=128 * 1024)
    assert machine.argon2_pool_size(settings) == 2
    # The CPUs counted are those this process may use, not all the machine's.
    machine = Capacity(physical_memory_bytes=gib, memory_limit_bytes=0, cpus=1)
    assert machine.argon2_pool_size(settings) == 1


def test_a_container_limit_lowers_the_memory_counted() -> None:
    """In a container the physical memory is the host's: the cgroup limit, when lower, is what
    the automatic Argon2 bound divides (else a 512 MiB container on a 64 GiB host would allow
    computations for 16 GiB)."""
    gib = 1024**3
    machine = Capacity(physical_memory_bytes=64 * gib, memory_limit_bytes=gib // 2, cpus=16)
    assert machine.total_memory_bytes == gib // 2
    assert machine.argon2_pool_size(Settings()) == 2  # a quarter of 512 MiB at 64 MiB each
    machine = Capacity(physical_memory_bytes=64 * gib, memory_limit_bytes=0, cpus=16)  # no limit
    assert machine.total_memory_bytes == 64 * gib
    machine = Capacity(physical_memory_bytes=0, memory_limit_bytes=0, cpus=16)  # nothing known
    assert machine.total_memory_bytes == 0
    assert machine.argon2_pool_size(Settings()) == 16  # one per CPU


def test_create_app_sets_the_pool_from_the_settings(
    tmp_path: Path, secrets: InstanceSecrets
) -> None:
    settings = Settings(instance_path=tmp_path, argon2_max_concurrent=3, argon2_wait_seconds=4)
    create_app(settings.with_argon2(TEST_ARGON2), secrets=secrets)
    assert crypto.argon2_pool_size() == 3
    assert crypto.ARGON2_POOL.wait_seconds == 4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORTAL_ARGON2_MAX_CONCURRENT": "-1"}, "argon2_max_concurrent must be from 0"),
        ({"PORTAL_ARGON2_MAX_CONCURRENT": "257"}, "argon2_max_concurrent must be from 0"),
        ({"PORTAL_ARGON2_MAX_CONCURRENT": "many"}, "must be of type int"),
        ({"PORTAL_ARGON2_WAIT_SECONDS": "-1"}, "argon2_wait_seconds must be from 0 to 19"),
        # A password change may wait three times: 3 x 20 s reaches gunicorn's 60 s timeout.
        ({"PORTAL_ARGON2_WAIT_SECONDS": "20"}, "argon2_wait_seconds must be from 0 to 19"),
    ],
)
def test_bad_pool_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_pool_settings_load_from_the_environment() -> None:
    settings = load_settings(
        {"PORTAL_ARGON2_MAX_CONCURRENT": "4", "PORTAL_ARGON2_WAIT_SECONDS": "0"}
    )
    pool_size = Capacity(0, 0, 1).argon2_pool_size(settings)
    assert (pool_size, settings.argon2_wait_seconds) == (4, 0)


# --- the web: 503 "busy", with the typed text kept ----------------------------------------------


@pytest.fixture
def full_pool() -> Iterator[None]:
    """Every slot taken, no waiting: the next Argon2 call in a request is refused."""
    crypto.configure_argon2_pool(1, 0)
    with crypto._argon2_slot():
        yield


def test_busy_report_form_answers_503_and_keeps_the_text(
    client: FlaskClient, portal: Portal, db: Session, request: pytest.FixtureRequest
) -> None:
    portal.staff("olivia")
    token = csrf_token(client.get("/report").text)
    description = "The night-shift supervisor falsifies the safety log."
    request.getfixturevalue("full_pool")
    response = client.post(
        "/report",
        data={"csrf_token": token, **report_form(description=description, category="safety")},
    )
    assert response.status_code == 503
    assert "The portal is busy right now, so nothing was sent yet" in response.text
    assert description in response.text
    assert re.search(r'<input checked[^>]*value="safety"', response.text)
    assert db.scalar(select(func.count()).select_from(Case)) == 0


def test_busy_followup_login_answers_503_and_counts_no_failure(
    client: FlaskClient, portal: Portal, app: Flask, request: pytest.FixtureRequest
) -> None:
    portal.staff("olivia")
    receipt = portal.submit().receipt
    throttle = app.extensions["portal"].followup_throttle
    request.getfixturevalue("full_pool")
    for _attempt in range(6):  # more than followup_max_failures: none of them counts
        token = csrf_token(client.get("/followup").text)
        response = client.post("/followup", data={"csrf_token": token, "receipt": receipt})
        assert response.status_code == 503
        assert "your receipt was not checked (and does not count as a wrong one)" in response.text
        # The receipt is a secret: like on every other answer, it is not written into the page.
        assert receipt not in response.text
    with app.test_request_context("/followup"):
        from portal.web import client as web_client

        assert throttle.failures(web_client.throttle_key(throttle)) == 0


def test_busy_staff_login_answers_503_keeps_the_email_and_records_nothing(
    client: FlaskClient, portal: Portal, db: Session, request: pytest.FixtureRequest
) -> None:
    user = portal.staff("olivia")
    events = db.scalar(select(func.count()).select_from(AuditEvent))
    token = csrf_token(client.get("/staff/login").text)
    request.getfixturevalue("full_pool")
    response = client.post(
        "/staff/login", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 503
    assert "The portal is busy right now. Please wait a moment and log in again." in response.text
    assert f'value="{user.email}"' in response.text
    assert PASSWORD not in response.text
    assert "Wrong e-mail or password" not in response.text
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_busy_elsewhere_is_a_503_page_never_a_500(
    client: FlaskClient, portal: Portal, request: pytest.FixtureRequest
) -> None:
    user = portal.staff("olivia")
    login(client, user)
    token = csrf_token(client.get("/staff/account/password").text)
    request.getfixturevalue("full_pool")
    response = client.post(
        "/staff/account/password",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "new": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "The portal is busy" in response.text
    assert "Too many people are logging in or opening their case" in response.text
