"""`portal doctor`: each check passes on a good configuration and reports the right WARN or FAIL,
with its fix sentence, on a bad one; exit codes; the --json shape."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from flask import Flask
from sqlalchemy import Table, select, text, update
from sqlalchemy.orm import Session

from portal import crypto
from portal.app import create_app
from portal.cli.doctor import https_headers
from portal.db import make_engine
from portal.instance import SECRET_FILES, ensure_secrets
from portal.models import AuditEvent, InsightRelease, Policy, Queue, Role, StaffUser
from portal.ops import doctor, migrate
from portal.ops.demo import DEMO_DOMAIN
from portal.ops.doctor import audit_log, capacity, mail, people, policy, serving
from portal.ops.doctor import database as doctor_database
from portal.ops.doctor import instance as doctor_instance
from portal.ops.doctor.core import Status
from portal.runtime.capacity import memory_limit_bytes
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.reporting import access_code
from portal.settings import (
    PRODUCTION_ARGON2,
    PROJECT_ROOT,
    TEST_ARGON2,
    Settings,
)
from tests.support.factories import PASSWORD, REDIS_URL, DatabaseUnderTest, Portal, cheap_settings
from tests.support.pages import csrf_token, next_code, report_form

QUEUES = ("general", "hr", "ethics", "safety", "board")
NOW = dt.datetime(2026, 5, 14, 9, 0, tzinfo=dt.UTC)


def good(settings: Settings) -> Settings:
    """What a careful production deployment looks like."""
    return settings.with_argon2(PRODUCTION_ARGON2).replace(
        secure_cookies=True,
        portal_url="https://ombuds.example.org",
        smtp_host="mail.example.org",
        smtp_from="ombuds@example.org",
        log_level="INFO",
        proxy_hops=1,
    )


def _write_secret(instance: Path, name: str, raw: bytes) -> None:
    path = instance / name
    path.write_text(base64.b64encode(raw).decode() + "\n")
    path.chmod(0o600)


# --- instance secrets -----------------------------------------------------------------------------


def test_secrets_made_by_init_pass(tmp_path: Path) -> None:
    ensure_secrets(tmp_path / "instance")
    for check in (
        doctor_instance.check_secrets_present,
        doctor_instance.check_secrets_mode,
        doctor_instance.check_secrets_not_default,
    ):
        result = check(tmp_path / "instance")
        assert result.status is Status.OK, result
        assert result.fix == ""


def test_missing_or_short_secret_fails(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    ensure_secrets(instance)
    (instance / "pepper").unlink()
    _write_secret(instance, "audit_key", os.urandom(16))

    result = doctor_instance.check_secrets_present(instance)

    assert result.status is Status.FAIL
    assert "pepper is missing" in result.message
    assert "audit_key is shorter than 32 bytes" in result.message
    assert "restore the secret files from the backup" in result.fix
    assert doctor_instance.check_secrets_not_default(instance).status is Status.SKIP


def test_world_readable_secret_fails_and_open_folder_warns(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    ensure_secrets(instance)
    (instance / "secret_key").chmod(0o644)
    (instance / "pepper").chmod(0o640)

    result = doctor_instance.check_secrets_mode(instance)

    assert result.status is Status.FAIL
    assert "secret_key is mode 0644" in result.message and "pepper is mode 0640" in result.message
    assert result.fix.startswith(f"run `chmod 600 {instance / 'secret_key'} {instance / 'pepper'}`")

    (instance / "secret_key").chmod(0o600)
    (instance / "pepper").chmod(0o600)
    instance.chmod(0o755)
    folder = doctor_instance.check_secrets_mode(instance)
    assert folder.status is Status.WARN and folder.fix == f"run `chmod 700 {instance}`"


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({"secret_key": b"a" * 32}, "secret_key is a repeated pattern"),  # as in the unit tests
        ({"pepper": bytes(32)}, "pepper is a repeated pattern"),
        ({"audit_key": b"abcd" * 8}, "audit_key is a repeated pattern"),
        ({"secret_key": b"change-me-please-this-is-the-dev!"}, "secret_key is readable text"),
        ({"pepper": b"SAME"}, "pepper is the same as secret_key"),
    ],
)
def test_known_weak_secrets_fail(tmp_path: Path, secrets: dict[str, bytes], expected: str) -> None:
    instance = tmp_path / "instance"
    ensure_secrets(instance)
    for name, raw in secrets.items():
        if raw == b"SAME":
            raw = base64.b64decode((instance / "secret_key").read_text())
        _write_secret(instance, name, raw)

    result = doctor_instance.check_secrets_not_default(instance)

    assert result.status is Status.FAIL
    assert expected in result.message
    assert "run `portal init`" in result.fix and "keep the pepper" in result.fix


def test_random_secrets_are_never_taken_for_weak_ones() -> None:
    for _ in range(2000):
        assert doctor_instance.weak_secret_reason(os.urandom(32)) is None


# --- database -------------------------------------------------------------------------------------


def test_migrated_database_passes(database: DatabaseUnderTest) -> None:
    results = doctor_database.check_database(database.engine)
    assert [(r.name, r.status) for r in results] == [
        ("database", Status.OK),
        ("migrations", Status.OK),
    ]
    head = migrate.head_revision(database.engine)
    assert head is not None and head in results[1].message


def test_database_without_schema_fails(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    database, migrations = doctor_database.check_database(engine)
    engine.dispose()
    assert database.status is Status.OK
    assert migrations.status is Status.FAIL
    assert "no schema" in migrations.message and "run `portal init`" in migrations.fix


def test_database_behind_the_head_fails(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0005_insights")
    _, migrations = doctor_database.check_database(engine)
    engine.dispose()
    assert migrations.status is Status.FAIL
    assert "at revision 0005_insights, behind the head" in migrations.message
    assert "run `portal init`" in migrations.fix


def test_database_from_a_newer_release_fails(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    _, migrations = doctor_database.check_database(engine)
    engine.dispose()
    assert migrations.status is Status.FAIL
    assert "0099_future, which this code does not know" in migrations.message
    assert "deploy the release that migrated this database" in migrations.fix


def test_missing_sqlite_file_fails_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "portal.db"
    engine = make_engine(f"sqlite:///{path}")
    database, migrations = doctor_database.check_database(engine)
    engine.dispose()
    assert database.status is Status.FAIL and "no SQLite database" in database.message
    assert migrations.status is Status.SKIP
    assert not path.exists()


def test_unreachable_database_fails_without_showing_the_password() -> None:
    engine = make_engine(
        "postgresql+psycopg://portal:hunter2-secret@127.0.0.1:1/portal",
        connect_args={"connect_timeout": 2},
    )
    database, migrations = doctor_database.check_database(engine)
    engine.dispose()
    assert database.status is Status.FAIL
    assert "cannot connect to postgresql+psycopg://portal:***@127.0.0.1:1/portal" in (
        database.message
    )
    assert "hunter2" not in database.message + database.fix
    assert "database server is running" in database.fix
    assert migrations.status is Status.SKIP


# --- threshold and what was published under it ----------------------------------------------------


def test_threshold_from_the_taxonomy_passes(db: Session) -> None:
    result = policy.check_threshold(db)
    assert result.status is Status.OK and "anonymity threshold 5" in result.message


def test_threshold_of_2_set_in_the_database_fails(db: Session) -> None:
    db.execute(update(Policy).values(anonymity_threshold=2, signal_threshold=5))
    db.commit()

    result = policy.check_threshold(db)

    assert result.status is Status.FAIL
    assert "the anonymity threshold is 2" in result.message
    assert "set anonymity_threshold to 3 or more" in result.fix


def test_signal_threshold_below_anonymity_threshold_fails(db: Session) -> None:
    db.execute(update(Policy).values(anonymity_threshold=6, signal_threshold=4))
    db.commit()
    result = policy.check_threshold(db)
    assert result.status is Status.FAIL
    assert "signal threshold is 4" in result.message
    assert "signal_threshold to at least 6" in result.fix


def test_threshold_check_writes_no_policy_row(db: Session) -> None:
    db.execute(cast(Table, Policy.__table__).delete())
    db.commit()
    result = policy.check_threshold(db)
    db.rollback()
    assert result.status is Status.OK and "no policy row yet" in result.message
    assert db.scalar(select(Policy)) is None


def test_release_published_below_3_fails(db: Session) -> None:
    assert policy.check_published_thresholds(db).status is Status.OK
    db.add(
        InsightRelease(
            period="2026-Q1", kind="volume", as_of=dt.date(2026, 4, 1), threshold=2, payload="{}"
        )
    )
    db.commit()

    result = policy.check_published_thresholds(db)

    assert result.status is Status.FAIL
    assert "insight releases of 2026-Q1" in result.message
    assert "`portal insights refresh`" in result.fix


# --- people ---------------------------------------------------------------------------------------


def test_no_staff_fails_staffing_and_admin(db: Session) -> None:
    staffing = people.check_staffing(db)
    admin = people.check_admin(db)
    assert staffing.status is Status.FAIL and "(the fallback queue)" in staffing.message
    assert "portal create-staff EMAIL --role ombudsperson" in staffing.fix
    assert admin.status is Status.FAIL
    assert admin.fix == "create one with `portal create-staff EMAIL --role admin`"


def test_unstaffed_queues_warn_and_staffed_ones_pass(db: Session, portal: Portal) -> None:
    portal.staff("alice", queues=("general", "hr"))

    partly = people.check_staffing(db)

    assert partly.status is Status.WARN
    assert "no active ombudsperson in board, ethics, safety" in partly.message
    assert "`portal membership`" in partly.fix

    portal.staff("bob", queues=("ethics", "safety", "board"))
    assert people.check_staffing(db).status is Status.OK


def test_fallback_staffed_only_by_a_disabled_account_fails(db: Session, portal: Portal) -> None:
    portal.staff("alice", queues=QUEUES)
    db.execute(update(StaffUser).values(active=False))
    db.commit()
    assert people.check_staffing(db).status is Status.FAIL


def test_admin_must_be_active(db: Session, portal: Portal) -> None:
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    assert people.check_admin(db).status is Status.OK
    db.execute(update(StaffUser).where(StaffUser.id == root.id).values(active=False))
    db.commit()
    assert people.check_admin(db).status is Status.FAIL


def test_demo_accounts_fail(db: Session, portal: Portal) -> None:
    assert DEMO_DOMAIN == people.DEMO_DOMAIN
    portal.staff("alice")
    assert people.check_demo_accounts(db).status is Status.OK
    db.execute(update(StaffUser).values(email=f"alice@{DEMO_DOMAIN}"))
    db.commit()
    result = people.check_demo_accounts(db)
    assert result.status is Status.FAIL
    assert f"alice@{DEMO_DOMAIN}" in result.message and "password and second factor" in (
        result.message
    )
    assert "portal staff disable EMAIL" in result.fix


# --- backups --------------------------------------------------------------------------------------


def test_backup_age(db: Session) -> None:
    none = audit_log.check_backup(db, NOW, 7)
    assert none.status is Status.WARN and "no backup is recorded" in none.message
    assert "run `portal backup`" in none.fix and "every 7 days" in none.fix

    audit.record(db, Action.BACKUP_CREATED, NOW - dt.timedelta(days=8))
    db.commit()
    old = audit_log.check_backup(db, NOW, 7)
    assert old.status is Status.WARN
    assert "8 days old (2026-05-06 09:00 UTC), over 7" in old.message
    assert audit_log.check_backup(db, NOW, 10).status is Status.OK  # the setting moves the limit

    audit.record(db, Action.BACKUP_CREATED, NOW - dt.timedelta(days=1))
    db.commit()
    fresh = audit_log.check_backup(db, NOW, 7)
    assert fresh.status is Status.OK and "2026-05-13 09:00 UTC" in fresh.message
    assert audit.verify(db).ok  # the events went through the real chain


# --- settings-only checks -------------------------------------------------------------------------


def test_settings_checks_pass_on_a_good_configuration(tmp_path: Path) -> None:
    settings = good(cheap_settings(tmp_path))
    for check in (
        serving.check_secure_cookies,
        serving.check_portal_url,
        mail.check_mail,
        mail.check_redis,
        capacity.check_argon2,
        serving.check_quick_exit,
        serving.check_log_level,
    ):
        result = check(settings)
        assert result.status is Status.OK, result
        assert result.fix == ""


@pytest.mark.parametrize(
    ("changes", "status", "message", "fix"),
    [
        (
            {"secure_cookies": False},
            Status.FAIL,
            "secure_cookies is off",
            "set secure_cookies = true",
        ),
        (
            {"secure_cookies": False, "portal_url": "http://ombuds.example.org"},
            Status.FAIL,
            "secure_cookies is off",
            "only for development at http://localhost",
        ),
    ],
)
def test_secure_cookies_off_fails(
    tmp_path: Path, changes: dict[str, object], status: Status, message: str, fix: str
) -> None:
    result = serving.check_secure_cookies(good(cheap_settings(tmp_path)).replace(**changes))
    assert result.status is status and message in result.message and fix in result.fix


@pytest.mark.parametrize("url", ["http://localhost:5000", "http://127.0.0.1:5000"])
def test_insecure_cookies_are_fine_for_loopback_development(tmp_path: Path, url: str) -> None:
    settings = good(cheap_settings(tmp_path)).replace(secure_cookies=False, portal_url=url)
    assert serving.check_secure_cookies(settings).status is Status.OK
    portal_url = serving.check_portal_url(settings)
    assert portal_url.status is Status.WARN and "fine for development" in portal_url.message


@pytest.mark.parametrize(
    ("url", "status", "fix"),
    [
        ("http://ombuds.example.org", Status.FAIL, "terminate TLS in front of the portal"),
        ("", Status.WARN, "set portal_url to the portal's public https:// address"),
    ],
)
def test_portal_url_without_https(tmp_path: Path, url: str, status: Status, fix: str) -> None:
    result = serving.check_portal_url(good(cheap_settings(tmp_path)).replace(portal_url=url))
    assert result.status is status and fix in result.fix


def test_hsts_check(app: Flask) -> None:
    sent = https_headers(app)  # a real request over HTTPS to the application
    assert serving.check_hsts(sent).status is Status.OK
    missing = serving.check_hsts({"Content-Type": "text/html"})
    assert missing.status is Status.FAIL
    assert "Strict-Transport-Security: max-age=31536000` at the TLS proxy" in missing.fix
    short = serving.check_hsts({"Strict-Transport-Security": "max-age=300"})
    assert short.status is Status.WARN and "max-age=31536000" in short.fix


def test_mail_not_configured_warns(tmp_path: Path) -> None:
    result = mail.check_mail(good(cheap_settings(tmp_path)).replace(smtp_host="", smtp_from=""))
    assert result.status is Status.WARN
    assert "ombudspersons hear of no new case" in result.message
    assert "set smtp_host, smtp_from" in result.fix
    plain = mail.check_mail(good(cheap_settings(tmp_path)).replace(smtp_starttls=False))
    assert plain.status is Status.WARN and "smtp_starttls = true" in plain.fix


def test_unreachable_redis_fails_without_showing_the_password(tmp_path: Path) -> None:
    settings = good(cheap_settings(tmp_path)).replace(redis_url="redis://:s3cret@127.0.0.1:1/0")
    result = mail.check_redis(settings)
    assert result.status is Status.FAIL
    assert "Redis at 127.0.0.1:1 does not answer" in result.message
    assert "s3cret" not in result.message + result.fix
    assert "start Redis or correct redis_url" in result.fix


@pytest.mark.skipif(
    not REDIS_URL, reason="PORTAL_TEST_REDIS_URL is not set: Redis variants skipped"
)
def test_reachable_redis_passes(tmp_path: Path) -> None:
    result = mail.check_redis(good(cheap_settings(tmp_path)).replace(redis_url=REDIS_URL))
    assert result.status is Status.OK and "answers" in result.message


def test_weak_argon2_fails(tmp_path: Path) -> None:
    weak = capacity.check_argon2(cheap_settings(tmp_path).with_argon2(TEST_ARGON2))
    assert weak.status is Status.FAIL
    assert "kdf_* is t=1, m=8 KiB, p=1" in weak.message and "password_*" in weak.message
    assert "remove the kdf_* and password_* overrides" in weak.fix
    # One parameter of one family below is enough.
    half = good(cheap_settings(tmp_path)).replace(password_memory_kib=32 * 1024)
    result = capacity.check_argon2(half)
    assert result.status is Status.FAIL
    assert "password_* is t=3, m=32768 KiB" in result.message and "kdf_* is" not in result.message


def test_quick_exit_to_the_portal_fails(tmp_path: Path) -> None:
    settings = good(cheap_settings(tmp_path)).replace(
        quick_exit_url="https://OMBUDS.example.org/report"
    )
    result = serving.check_quick_exit(settings)
    assert result.status is Status.FAIL and "points at the portal itself" in result.message
    assert "neutral site" in result.fix


def test_debug_logging(tmp_path: Path) -> None:
    production = serving.check_log_level(good(cheap_settings(tmp_path)).replace(log_level="debug"))
    assert production.status is Status.FAIL
    assert production.fix == 'set log_level = "INFO" (PORTAL_LOG_LEVEL)'
    development = good(cheap_settings(tmp_path)).replace(
        log_level="DEBUG", portal_url="http://localhost:5000"
    )
    assert serving.check_log_level(development).status is Status.WARN


# --- the Argon2 pool ------------------------------------------------------------------------------

GIB = 1024**3
MIB = 1024**2
#: A machine of 8 GiB and 4 CPUs, not in a container.
EIGHT_GIB = capacity.Machine(8 * GIB, "the machine's memory", 4, 8 * GIB)


def _pool(tmp_path: Path, **changes: object) -> Settings:
    return good(cheap_settings(tmp_path)).replace(**changes)


def test_argon2_pool_sized_as_docs_deploy_says_passes(tmp_path: Path) -> None:
    """docs/deploy.md's start: workers = cores, threads = 2, argon2_max_concurrent = 1."""
    settings = _pool(tmp_path, argon2_max_concurrent=1)
    result = capacity.check_argon2_pool(settings, EIGHT_GIB, capacity.Server(workers=4, threads=2))
    assert result.status is Status.OK and result.fix == ""
    assert "each worker runs at most 1 Argon2 computation(s) at once" in result.message
    assert "at worst 256 MiB of Argon2 memory at once (4 worker(s) × 1 × 64 MiB)" in result.message
    assert "of 8.0 GiB (the machine's memory)" in result.message


def test_argon2_pool_without_workers_counts_one_and_says_how_to_count_them_all(
    tmp_path: Path,
) -> None:
    result = capacity.check_argon2_pool(_pool(tmp_path), EIGHT_GIB, capacity.Server())
    # automatic: a quarter of 8 GiB holds 32 computations of 64 MiB, at most one per CPU
    assert result.status is Status.OK
    assert "(automatic: 4)" in result.message and "one worker process: 4 × 64 MiB" in result.message
    assert "pass --workers and --threads as given to `portal serve`" in result.message


def test_argon2_pool_above_the_machine_memory_fails_with_the_value_to_set(tmp_path: Path) -> None:
    machine = capacity.Machine(1 * GIB, "the machine's memory", 4, 1 * GIB)
    # automatic on 1 GiB: 4 slots per process; 8 threaded workers can hold 8 × 4 × 64 MiB.
    result = capacity.check_argon2_pool(
        _pool(tmp_path), machine, capacity.Server(workers=8, threads=4)
    )
    assert result.status is Status.FAIL
    assert "at worst 2.0 GiB of Argon2 memory at once (8 worker(s) × 4 × 64 MiB)" in result.message
    assert "more than the machine's memory (1.0 GiB)" in result.message
    assert result.fix.startswith("set argon2_max_concurrent = 1 (PORTAL_ARGON2_MAX_CONCURRENT)")
    assert "or run fewer workers" in result.fix and "docs/deploy.md" in result.fix


def test_argon2_pool_above_half_the_memory_warns(tmp_path: Path) -> None:
    machine = capacity.Machine(1 * GIB, "the machine's memory", 4, 1 * GIB)
    settings = _pool(tmp_path, argon2_max_concurrent=4)
    result = capacity.check_argon2_pool(settings, machine, capacity.Server(workers=3, threads=4))
    assert result.status is Status.WARN
    assert (
        "768 MiB" in result.message and "more than half of the machine's memory" in result.message
    )
    assert result.fix.startswith("set argon2_max_concurrent = 2")


def test_argon2_pool_too_many_workers_for_even_one_slot_each(tmp_path: Path) -> None:
    machine = capacity.Machine(256 * MIB, "the machine's memory", 4, 256 * MIB)
    settings = _pool(tmp_path, argon2_max_concurrent=1)
    result = capacity.check_argon2_pool(settings, machine, capacity.Server(workers=8, threads=1))
    assert result.status is Status.FAIL
    assert result.fix.startswith("run at most 2 worker(s), or give the machine more memory")
    assert "keep the Argon2 costs" in result.fix


def test_argon2_pool_in_a_container_compares_with_its_limit(tmp_path: Path) -> None:
    """In a container the automatic size follows the memory limit, as the app computes it
    (``Capacity.total_memory_bytes``): a quarter of 512 MiB holds two computations of 64 MiB."""
    machine = capacity.Machine(512 * MIB, "the container's memory limit", 16, 512 * MIB)
    result = capacity.check_argon2_pool(_pool(tmp_path), machine, capacity.Server(workers=1))
    assert result.status is Status.OK, result.message
    assert "(automatic: 2)" in result.message
    # An explicit bound that ignores the limit is compared with it.
    explicit = _pool(tmp_path, argon2_max_concurrent=16)
    result = capacity.check_argon2_pool(explicit, machine, capacity.Server(workers=1))
    assert result.status is Status.FAIL
    assert "one worker" not in result.message and "(1 worker(s) × 16 × 64 MiB)" in result.message
    assert "more than the container's memory limit (512 MiB)" in result.message
    assert result.fix.startswith("set argon2_max_concurrent = 4")


@pytest.mark.parametrize(
    ("wait", "status", "message"),
    [
        (0, Status.WARN, "gets the 'busy' page at once"),
        (10, Status.OK, "waits up to 10 s for a slot"),
        (11, Status.WARN, "may wait 33 s for Argon2 slots"),
        (20, Status.FAIL, "60 s in all, not less than gunicorn's 60 s worker timeout"),
        (30, Status.FAIL, "90 s in all"),
    ],
)
def test_argon2_wait(tmp_path: Path, wait: int, status: Status, message: str) -> None:
    settings = _pool(tmp_path, argon2_max_concurrent=1, argon2_wait_seconds=wait)
    result = capacity.check_argon2_pool(settings, EIGHT_GIB, capacity.Server(workers=4, threads=2))
    assert result.status is status and message in result.message
    if status is not Status.OK:
        fix = "= 10 (the default)" if wait == 0 else "to 10 or less (PORTAL_ARGON2_WAIT_SECONDS"
        assert fix in result.fix


def test_argon2_wait_does_not_matter_where_no_request_ever_waits(tmp_path: Path) -> None:
    """Sync workers (one request at a time) never find their slot busy."""
    settings = _pool(tmp_path, argon2_max_concurrent=1, argon2_wait_seconds=30)
    result = capacity.check_argon2_pool(settings, EIGHT_GIB, capacity.Server(workers=4, threads=1))
    assert result.status is Status.OK, result


def test_argon2_pool_above_the_cpus_warns_and_every_problem_is_listed(tmp_path: Path) -> None:
    settings = _pool(tmp_path, argon2_max_concurrent=96, argon2_wait_seconds=20)
    result = capacity.check_argon2_pool(settings, EIGHT_GIB, capacity.Server(workers=1))
    assert result.status is Status.FAIL  # the wait fails; the CPUs and the memory warn
    assert "argon2_wait_seconds is 20" in result.message
    assert "argon2_max_concurrent is 96, more than the 4 CPU(s)" in result.message
    assert "6.0 GiB of Argon2 memory" in result.message and "more than half" in result.message
    assert "set argon2_wait_seconds to 10 or less" in result.fix
    assert "set argon2_max_concurrent to 4 or less, or 0 (automatic)" in result.fix
    assert "set argon2_max_concurrent = 64" in result.fix


def test_argon2_pool_with_the_memory_unknown(tmp_path: Path) -> None:
    machine = capacity.Machine(0, "the machine's memory", 2, 0)
    result = capacity.check_argon2_pool(_pool(tmp_path), machine, capacity.Server())
    assert result.status is Status.OK
    assert "(automatic: 2)" in result.message and "memory is unknown" in result.message


# --- the attachment cleaning pool and what the workers hold at worst ---------------------------


def test_attachment_pool_sized_as_docs_deploy_says_passes(tmp_path: Path) -> None:
    """workers = cores, threads = 2, one Argon2 and one cleaning slot per worker, 8 GiB."""
    settings = _pool(tmp_path, argon2_max_concurrent=1, attachment_max_concurrent=1)
    result = capacity.check_attachment_pool(
        settings, EIGHT_GIB, capacity.Server(workers=4, threads=2)
    )
    assert result.status is Status.OK and result.fix == ""
    assert "each worker cleans at most 1 form(s) with attachments at once" in result.message
    assert "(attachment_max_concurrent: 1, 533 MiB each at worst)" in result.message
    # The second thread of each worker may hold an upload (50 MiB) while it waits.
    assert (
        "at worst 3.1 GiB held at once (4 worker(s) × (1 × 533 MiB cleaning forms + 1 × 50 MiB"
        " uploads waiting + 64 MiB Argon2 + 150 MiB its own)), of 8.0 GiB (the machine's memory)"
    ) in result.message


def test_attachment_pool_without_workers_counts_one_and_says_how_to_count_them_all(
    tmp_path: Path,
) -> None:
    result = capacity.check_attachment_pool(_pool(tmp_path), EIGHT_GIB, capacity.Server())
    # automatic: a quarter of 8 GiB holds 3 forms of 533 MiB (under the 4 CPUs); Argon2 4 × 64.
    assert result.status is Status.OK
    assert "(automatic: 3, 533 MiB each at worst)" in result.message
    assert "one worker process × (3 × 533 MiB cleaning forms + 256 MiB Argon2" in result.message
    assert "pass --workers and --threads as given to `portal serve`" in result.message


def test_attachment_pool_above_the_machine_memory_fails_with_the_value_to_set(
    tmp_path: Path,
) -> None:
    machine = capacity.Machine(16 * GIB, "the machine's memory", 8, 16 * GIB)
    settings = _pool(tmp_path, argon2_max_concurrent=1, attachment_max_concurrent=8)
    result = capacity.check_attachment_pool(
        settings, machine, capacity.Server(workers=4, threads=8)
    )
    assert result.status is Status.FAIL
    assert "at worst 17.5 GiB held at once (4 worker(s) × (8 × 533 MiB" in result.message
    assert "more than the machine's memory (16.0 GiB); a burst of uploads" in result.message
    # 5 slots: 5 × 533 + 3 threads × 50 MiB waiting + 64 + 150 = 2.96 GiB per worker, under
    # three quarters of 16 GiB over 4 workers (3 GiB); 6 would not be.
    assert result.fix.startswith(
        "set attachment_max_concurrent = 5 (PORTAL_ATTACHMENT_MAX_CONCURRENT)"
        " or run fewer workers or threads"
    )
    assert "under 75% of 16.0 GiB (docs/deploy.md, sizing)" in result.fix


def test_attachment_pool_above_three_quarters_of_the_memory_warns(tmp_path: Path) -> None:
    machine = capacity.Machine(4 * GIB, "the container's memory limit", 4, 4 * GIB)
    settings = _pool(tmp_path, argon2_max_concurrent=1, attachment_max_concurrent=1)
    result = capacity.check_attachment_pool(
        settings, machine, capacity.Server(workers=4, threads=2)
    )
    assert result.status is Status.WARN
    assert "at worst 3.1 GiB held at once" in result.message
    assert "more than 75% of the container's memory limit (4.0 GiB)" in result.message
    # Not even one slot per worker fits: the fix says what else to change.
    assert result.fix.startswith("run fewer workers or threads, give the machine more memory")
    assert "(attachment_max_count, attachment_max_bytes)" in result.fix


def test_attachment_pool_counts_smaller_attachment_limits(tmp_path: Path) -> None:
    """Lower limits lower one form's estimate: 3 files of 5 MiB make 30 + 128 + 305 MiB."""
    machine = capacity.Machine(4 * GIB, "the machine's memory", 4, 4 * GIB)
    settings = _pool(
        tmp_path,
        argon2_max_concurrent=1,
        attachment_max_concurrent=1,
        attachment_max_count=3,
        attachment_max_bytes=5 * MIB,
    )
    result = capacity.check_attachment_pool(
        settings, machine, capacity.Server(workers=3, threads=2)
    )
    assert result.status is Status.OK, result.message
    assert "463 MiB each at worst" in result.message


def test_attachment_pool_with_attachments_off(tmp_path: Path) -> None:
    tiny = capacity.Machine(256 * MIB, "the machine's memory", 1, 256 * MIB)
    result = capacity.check_attachment_pool(
        _pool(tmp_path, attachment_max_count=0), tiny, capacity.Server(workers=8, threads=8)
    )
    assert result.status is Status.OK
    assert result.message == "attachments are off (attachment_max_count = 0): nothing is cleaned"


@pytest.mark.parametrize(
    ("attachment_wait", "argon2_wait", "status", "message"),
    [
        (0, 10, Status.WARN, "a form with files gets the 'busy' page at once"),
        (10, 10, Status.OK, "a form waits up to 10 s for a slot"),
        (11, 10, Status.WARN, "11 s for a cleaning slot and 2 × 10 s for Argon2 slots"),
        (19, 19, Status.WARN, "57 s in all, over half of gunicorn's 60 s worker timeout"),
        (20, 20, Status.FAIL, "60 s in all, not less than gunicorn's 60 s worker timeout"),
    ],
)
def test_attachment_wait(
    tmp_path: Path, attachment_wait: int, argon2_wait: int, status: Status, message: str
) -> None:
    settings = _pool(
        tmp_path,
        argon2_max_concurrent=1,
        attachment_max_concurrent=1,
        attachment_wait_seconds=attachment_wait,
        argon2_wait_seconds=argon2_wait,
    )
    result = capacity.check_attachment_pool(
        settings, EIGHT_GIB, capacity.Server(workers=4, threads=2)
    )
    assert result.status is status and message in result.message
    if status is not Status.OK:
        fix = "= 10 (the default)" if attachment_wait == 0 else "to 10 or less"
        assert f"set attachment_wait_seconds {fix}" in result.fix


def test_attachment_wait_does_not_matter_where_no_request_ever_waits(tmp_path: Path) -> None:
    """Sync workers (one request at a time) never find their cleaning slot busy."""
    settings = _pool(tmp_path, attachment_max_concurrent=1, attachment_wait_seconds=0)
    result = capacity.check_attachment_pool(
        settings, EIGHT_GIB, capacity.Server(workers=2, threads=1)
    )
    assert result.status is Status.OK, result


def test_attachment_pool_above_the_cpus_warns(tmp_path: Path) -> None:
    settings = _pool(tmp_path, argon2_max_concurrent=1, attachment_max_concurrent=8)
    result = capacity.check_attachment_pool(settings, EIGHT_GIB, capacity.Server(workers=1))
    assert result.status is Status.WARN
    assert "attachment_max_concurrent is 8, more than the 4 CPU(s)" in result.message
    assert result.fix == "set attachment_max_concurrent to 4 or less, or 0 (automatic)"


def test_attachment_pool_with_the_memory_unknown(tmp_path: Path) -> None:
    machine = capacity.Machine(0, "the machine's memory", 2, 0)
    result = capacity.check_attachment_pool(_pool(tmp_path), machine, capacity.Server())
    assert result.status is Status.OK
    assert "(automatic: 2," in result.message and "memory is unknown" in result.message


def test_this_machine_reads_proc_meminfo_and_a_cgroup_limit(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        8049032 kB\nMemFree:  1 kB\n")
    assert capacity._meminfo_total(meminfo) == 8049032 * 1024
    assert capacity._meminfo_total(tmp_path / "missing") == 0
    limit = tmp_path / "memory.max"
    limit.write_text("max\n")
    assert memory_limit_bytes(limit) == 0
    limit.write_text("536870912\n")
    assert memory_limit_bytes(limit) == 512 * MIB
    assert memory_limit_bytes(tmp_path / "missing") == 0
    here = capacity.this_machine()
    assert here.memory_bytes > 0 and here.cpus >= 1 and here.physical_bytes > 0


def test_no_request_runs_more_argon2_than_the_doctor_assumes(
    app: Flask, portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ARGON2_PER_REQUEST_MAX, counted: the Argon2 computations (pool slots) of each request
    that runs any, through the web."""
    taken = []
    real = crypto._argon2_slot

    @contextlib.contextmanager
    def counted() -> Iterator[None]:
        taken.append(1)
        with real():
            yield

    monkeypatch.setattr(crypto, "_argon2_slot", counted)
    user = portal.staff("olga")
    client = app.test_client()

    def computations(url: str, data: dict[str, object]) -> int:
        token = csrf_token(client.get("/followup").text)
        taken.clear()
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code in (302, 303), response.text
        return len(taken)

    counts = {
        "concern": computations("/report", report_form()),
        "staff log-in": computations("/staff/login", {"email": user.email, "password": PASSWORD}),
    }
    client.post(
        "/staff/login/code",
        data={
            "csrf_token": csrf_token(client.get("/staff/login/code").text),
            "code": next_code(app, user),
        },
    )
    counts["password change"] = computations(
        "/staff/account/password",
        {"current": PASSWORD, "new": "another long password", "confirm": "another long password"},
    )

    assert counts == {"concern": 1, "staff log-in": 2, "password change": 3}
    assert max(counts.values()) == capacity.ARGON2_PER_REQUEST_MAX


# --- proxy_hops -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hops", [1, 2])
def test_proxy_hops_behind_the_tls_proxy_passes(tmp_path: Path, hops: int) -> None:
    result = serving.check_proxy_hops(good(cheap_settings(tmp_path)).replace(proxy_hops=hops))
    assert result.status is Status.OK and result.fix == ""
    assert f"proxy_hops is {hops}: the rate limits take the client's address" in result.message


def test_https_without_proxy_hops_fails(tmp_path: Path) -> None:
    settings = good(cheap_settings(tmp_path)).replace(
        proxy_hops=0, submit_max_per_client=5, submit_client_window_seconds=600
    )
    result = serving.check_proxy_hops(settings)
    assert result.status is Status.FAIL
    assert "so a TLS proxy is in front of gunicorn, but proxy_hops is 0" in result.message
    assert "all reporters together may send 5 concerns per 10 minutes" in result.message
    assert "set proxy_hops (PORTAL_PROXY_HOPS)" in result.fix
    assert "1 for nginx as in docs/deploy.md" in result.fix
    assert "`proxy_set_header X-Forwarded-For` line in config/nginx.conf.example" in result.fix


@pytest.mark.parametrize("hops", [3, 5])
def test_more_proxy_hops_than_plausible_warns(tmp_path: Path, hops: int) -> None:
    result = serving.check_proxy_hops(good(cheap_settings(tmp_path)).replace(proxy_hops=hops))
    assert result.status is Status.WARN
    assert f"proxy_hops is {hops}, more proxies than a usual deployment has" in result.message
    assert "escape the per-client limits" in result.message
    assert "set proxy_hops (PORTAL_PROXY_HOPS) to the number of proxies" in result.fix


def test_proxy_hops_without_a_proxy(tmp_path: Path) -> None:
    local = good(cheap_settings(tmp_path)).replace(portal_url="http://localhost:5000")
    spoofable = serving.check_proxy_hops(local.replace(proxy_hops=1))
    assert spoofable.status is Status.WARN
    assert "any client can write its own address" in spoofable.message
    assert (
        spoofable.fix == "set proxy_hops = 0 unless a proxy that sets X-Forwarded-For is in front"
    )
    assert serving.check_proxy_hops(local.replace(proxy_hops=0)).status is Status.OK
    unknown = serving.check_proxy_hops(local.replace(portal_url="", proxy_hops=0))
    assert unknown.status is Status.OK and "portal_url is empty" in unknown.message


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def healthy(app: Flask, db: Session, portal: Portal, settings: Settings) -> Settings:
    """A deployment where every check passes: secrets on disk, staff, a fresh backup."""
    ensure_secrets(settings.instance_path)
    # The audit key on disk is the one the app seals the audit head with, as on a server.
    key = app.extensions["portal"].secrets.audit_key
    (settings.instance_path / "audit_key").write_text(base64.b64encode(key).decode() + "\n")
    portal.staff("alice", queues=QUEUES)
    portal.staff("root", roles=(Role.ADMIN,), queues=())
    audit.record(db, Action.BACKUP_CREATED, dt.datetime.now(dt.UTC))
    db.commit()
    return good(settings)


def _doctor(settings: Settings, *args: str) -> tuple[int, str]:
    # The app shares the test database's engine (tests/conftest.py), which the app fixture
    # disposes at teardown. Disposing it here, with the test's own session still using it,
    # orphaned a pooled connection that was later collected still open (a ResourceWarning).
    application = create_app(settings)
    result = application.test_cli_runner().invoke(args=["doctor", *args])
    return result.exit_code, result.output


def test_healthy_deployment_exits_0_with_one_ok_line_per_check(healthy: Settings) -> None:
    code, output = _doctor(healthy)
    lines = output.splitlines()
    assert code == 0, output
    assert len(lines) == 26  # 25 checks and the summary
    assert all(line.startswith("OK    ") for line in lines[:-1]), output
    assert lines[-1] == "25 OK, 0 WARN, 0 FAIL, 0 SKIP"
    assert "Fix:" not in output


def test_warn_alone_exits_0(healthy: Settings) -> None:
    code, output = _doctor(healthy.replace(smtp_host="", smtp_from=""))
    assert code == 0, output
    assert "WARN  mail" in output and ". Fix: set smtp_host, smtp_from" in output
    assert output.splitlines()[-1] == "24 OK, 1 WARN, 0 FAIL, 0 SKIP"


def test_one_fail_exits_1(healthy: Settings) -> None:
    code, output = _doctor(healthy.with_argon2(TEST_ARGON2))
    assert code == 1
    assert "FAIL  argon2" in output
    assert output.splitlines()[-1].endswith(": something needs fixing (exit status 1)")


def test_json_shape(healthy: Settings, db: Session) -> None:
    db.execute(update(Policy).values(anonymity_threshold=2))
    db.commit()

    code, output = _doctor(healthy.replace(portal_url="http://ombuds.example.org"), "--json")

    data = json.loads(output)
    assert code == 1 and data["exit_code"] == 1 and data["ok"] is False
    assert set(data) == {"ok", "exit_code", "counts", "checks"}
    assert data["counts"] == {"OK": 23, "WARN": 0, "FAIL": 2, "SKIP": 0}
    assert all(set(c) == {"name", "status", "message", "fix"} for c in data["checks"])
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["anonymity-threshold"]["status"] == "FAIL"
    assert by_name["portal-url"]["status"] == "FAIL"
    assert by_name["admin"] == {
        "name": "admin",
        "status": "OK",
        "message": "1 active admin account(s)",
        "fix": "",
    }


def test_json_of_the_argon2_pool_and_proxy_checks(healthy: Settings) -> None:
    settings = healthy.replace(proxy_hops=0, argon2_max_concurrent=1, argon2_wait_seconds=20)

    code, output = _doctor(settings, "--json", "--workers", "4", "--threads", "2")

    by_name = {c["name"]: c for c in json.loads(output)["checks"]}
    assert code == 1
    pool, hops = by_name["argon2-pool"], by_name["proxy-hops"]
    assert pool["status"] == "FAIL" and "argon2_wait_seconds is 20" in pool["message"]
    assert "(4 worker(s) × 1 × 64 MiB)" in pool["message"]
    assert pool["fix"].startswith("set argon2_wait_seconds to 10 or less")
    assert hops["status"] == "FAIL" and hops["fix"].startswith("set proxy_hops")
    names = [c["name"] for c in json.loads(output)["checks"]]
    assert names.index("argon2") + 1 == names.index("argon2-pool")
    assert names.index("argon2-pool") + 1 == names.index("attachment-pool")
    assert names.index("attachment-pool") + 1 == names.index("proxy-hops")


def test_workers_and_threads_must_be_whole_numbers_from_1(healthy: Settings) -> None:
    code, output = _doctor(healthy, "--workers", "0")
    assert code == 2 and "0 is not in the range x>=1" in output


def test_doctor_output_never_prints_a_secret(healthy: Settings) -> None:
    """Whatever fails, neither output carries a secret: the instance secrets, the SMTP and
    Redis passwords, the access code's hash."""
    settings = healthy.replace(
        smtp_password="smtp-password-s3cret",
        smtp_username="ombuds",
        redis_url="redis://:redis-password-s3cret@127.0.0.1:1/0",
        report_access_code_hash=access_code.hash_code("the access code", TEST_ARGON2),
        proxy_hops=0,
        argon2_wait_seconds=30,
    )
    secrets = [
        "smtp-password-s3cret",
        "redis-password-s3cret",
        settings.report_access_code_hash,
    ]
    for name in SECRET_FILES:
        encoded = (settings.instance_path / name).read_text().strip()
        secrets += [encoded, base64.b64decode(encoded).hex()]

    outputs = [_doctor(settings)[1], _doctor(settings, "--json", "--workers", "2")[1]]

    assert "FAIL  redis" in outputs[0] and "FAIL  proxy-hops" in outputs[0]
    leaked = [s for s in secrets for output in outputs if s in output]
    assert leaked == []


def test_every_check_is_documented_in_order(healthy: Settings) -> None:
    """docs/operations.md lists the checks, counts them and shows a sample: all three follow
    the code."""
    docs = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    section = docs.split("### The checks", 1)[1].split("\n### ", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE)
    sample = docs.split("Sample output of `portal doctor", 1)[1].split("```", 2)[1]

    _code, output = _doctor(healthy, "--json")

    names = [c["name"] for c in json.loads(output)["checks"]]
    assert documented == names
    assert f"Doctor runs {len(names)} checks, in this order:" in section
    assert re.findall(r"^[A-Z]{2,4} +([a-z0-9-]+) ", sample, flags=re.MULTILINE) == names


def test_unmigrated_database_skips_the_database_checks(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    ensure_secrets(instance)
    engine = make_engine(f"sqlite:///{instance / 'portal.db'}")
    migrate.upgrade(engine, "0005_insights")
    engine.dispose()

    code, output = _doctor(good(cheap_settings(instance)), "--json")

    statuses = {c["name"]: c["status"] for c in json.loads(output)["checks"]}
    assert code == 1
    assert statuses["database"] == "OK" and statuses["migrations"] == "FAIL"
    for name in doctor.DATABASE_CHECKS:
        assert statuses[name] == "SKIP"


def test_doctor_changes_nothing(healthy: Settings, db: Session) -> None:
    def snapshot() -> tuple[object, ...]:
        return (
            db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)),
            tuple(db.scalars(select(Queue.slug).order_by(Queue.slug))),
            sorted(p.name for p in healthy.instance_path.iterdir()),
        )

    before = snapshot()
    _doctor(healthy)
    db.expire_all()
    assert snapshot() == before
    assert sorted(SECRET_FILES) == sorted(p.name for p in healthy.instance_path.iterdir())


def test_doctor_names_an_audit_log_cut_from_its_tail(healthy: Settings, db: Session) -> None:
    """Finding 11: rows cut with SQL, the head rolled back to match them, without the audit
    key: the head no longer matches its seal, and doctor says so (as `portal audit verify`)."""
    audit.record(db, Action.BACKUP_CREATED, dt.datetime.now(dt.UTC))
    db.commit()
    code, output = _doctor(healthy)
    assert "OK    audit-head          the audit head matches its seal (event 2)" in output
    last = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert last is not None and last.seq > 1
    before = db.scalar(select(AuditEvent).where(AuditEvent.seq == last.seq - 1))
    assert before is not None
    db.execute(text("DELETE FROM audit_events WHERE seq = :seq"), {"seq": last.seq})
    db.execute(
        text("UPDATE audit_head SET seq = :seq, hash = :hash"),
        {"seq": before.seq, "hash": before.hash},
    )
    db.commit()
    code, output = _doctor(healthy)
    assert code == 1
    assert "FAIL  audit-head          the audit head does not match its seal" in output
    assert "portal audit verify --anchor" in output


def test_doctor_waits_for_the_first_seal_of_an_upgraded_head(
    healthy: Settings, db: Session
) -> None:
    db.execute(text("UPDATE audit_head SET mac = NULL"))
    db.commit()
    code, output = _doctor(healthy)
    assert code == 0
    assert "WARN  audit-head          the audit head is not sealed yet" in output
