"""`portal doctor`: each check passes on a good configuration and reports the right WARN or FAIL,
with its fix sentence, on a bad one; exit codes; the --json shape."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from portal import create_app, migrate
from portal.cli import DEMO_DOMAIN
from portal.cli_doctor import https_headers
from portal.db import make_engine
from portal.instance import SECRET_FILES, ensure_secrets
from portal.models import AuditEvent, InsightRelease, Policy, Queue, Role, StaffUser
from portal.services import audit, doctor
from portal.services.audit import Action
from portal.services.doctor import Status
from portal.settings import PRODUCTION_ARGON2, TEST_ARGON2, Settings
from tests.conftest import REDIS_URL, DatabaseUnderTest, Portal, cheap_settings

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
    )


def _write_secret(instance: Path, name: str, raw: bytes) -> None:
    path = instance / name
    path.write_text(base64.b64encode(raw).decode() + "\n")
    path.chmod(0o600)


# --- instance secrets -----------------------------------------------------------------------------


def test_secrets_made_by_init_pass(tmp_path: Path) -> None:
    ensure_secrets(tmp_path / "instance")
    for check in (
        doctor.check_secrets_present,
        doctor.check_secrets_mode,
        doctor.check_secrets_not_default,
    ):
        result = check(tmp_path / "instance")
        assert result.status is Status.OK, result
        assert result.fix == ""


def test_missing_or_short_secret_fails(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    ensure_secrets(instance)
    (instance / "pepper").unlink()
    _write_secret(instance, "audit_key", os.urandom(16))

    result = doctor.check_secrets_present(instance)

    assert result.status is Status.FAIL
    assert "pepper is missing" in result.message
    assert "audit_key is shorter than 32 bytes" in result.message
    assert "restore the secret files from the backup" in result.fix
    assert doctor.check_secrets_not_default(instance).status is Status.SKIP


def test_world_readable_secret_fails_and_open_folder_warns(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    ensure_secrets(instance)
    (instance / "secret_key").chmod(0o644)
    (instance / "pepper").chmod(0o640)

    result = doctor.check_secrets_mode(instance)

    assert result.status is Status.FAIL
    assert "secret_key is mode 0644" in result.message and "pepper is mode 0640" in result.message
    assert result.fix.startswith(f"run `chmod 600 {instance / 'secret_key'} {instance / 'pepper'}`")

    (instance / "secret_key").chmod(0o600)
    (instance / "pepper").chmod(0o600)
    instance.chmod(0o755)
    folder = doctor.check_secrets_mode(instance)
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

    result = doctor.check_secrets_not_default(instance)

    assert result.status is Status.FAIL
    assert expected in result.message
    assert "run `portal init`" in result.fix and "keep the pepper" in result.fix


def test_random_secrets_are_never_taken_for_weak_ones() -> None:
    for _ in range(2000):
        assert doctor.weak_secret_reason(os.urandom(32)) is None


# --- database -------------------------------------------------------------------------------------


def test_migrated_database_passes(database: DatabaseUnderTest) -> None:
    results = doctor.check_database(database.engine)
    assert [(r.name, r.status) for r in results] == [
        ("database", Status.OK),
        ("migrations", Status.OK),
    ]
    assert migrate.head_revision(database.engine) in results[1].message


def test_database_without_schema_fails(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    database, migrations = doctor.check_database(engine)
    engine.dispose()
    assert database.status is Status.OK
    assert migrations.status is Status.FAIL
    assert "no schema" in migrations.message and "run `portal init`" in migrations.fix


def test_database_behind_the_head_fails(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0005_insights")
    _, migrations = doctor.check_database(engine)
    engine.dispose()
    assert migrations.status is Status.FAIL
    assert "at revision 0005_insights, behind the head" in migrations.message
    assert "run `portal init`" in migrations.fix


def test_database_from_a_newer_release_fails(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    _, migrations = doctor.check_database(engine)
    engine.dispose()
    assert migrations.status is Status.FAIL
    assert "0099_future, which this code does not know" in migrations.message
    assert "deploy the release that migrated this database" in migrations.fix


def test_missing_sqlite_file_fails_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "portal.db"
    engine = make_engine(f"sqlite:///{path}")
    database, migrations = doctor.check_database(engine)
    engine.dispose()
    assert database.status is Status.FAIL and "no SQLite database" in database.message
    assert migrations.status is Status.SKIP
    assert not path.exists()


def test_unreachable_database_fails_without_showing_the_password() -> None:
    engine = make_engine(
        "postgresql+psycopg://portal:hunter2-secret@127.0.0.1:1/portal",
        connect_args={"connect_timeout": 2},
    )
    database, migrations = doctor.check_database(engine)
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
    result = doctor.check_threshold(db)
    assert result.status is Status.OK and "anonymity threshold 5" in result.message


def test_threshold_of_2_set_in_the_database_fails(db: Session) -> None:
    db.execute(update(Policy).values(anonymity_threshold=2, signal_threshold=5))
    db.commit()

    result = doctor.check_threshold(db)

    assert result.status is Status.FAIL
    assert "the anonymity threshold is 2" in result.message
    assert "set anonymity_threshold to 3 or more" in result.fix


def test_signal_threshold_below_anonymity_threshold_fails(db: Session) -> None:
    db.execute(update(Policy).values(anonymity_threshold=6, signal_threshold=4))
    db.commit()
    result = doctor.check_threshold(db)
    assert result.status is Status.FAIL
    assert "signal threshold is 4" in result.message
    assert "signal_threshold to at least 6" in result.fix


def test_threshold_check_writes_no_policy_row(db: Session) -> None:
    db.execute(Policy.__table__.delete())
    db.commit()
    result = doctor.check_threshold(db)
    db.rollback()
    assert result.status is Status.OK and "no policy row yet" in result.message
    assert db.scalar(select(Policy)) is None


def test_release_published_below_3_fails(db: Session) -> None:
    assert doctor.check_published_thresholds(db).status is Status.OK
    db.add(
        InsightRelease(
            period="2026-Q1", kind="volume", as_of=dt.date(2026, 4, 1), threshold=2, payload="{}"
        )
    )
    db.commit()

    result = doctor.check_published_thresholds(db)

    assert result.status is Status.FAIL
    assert "insight releases of 2026-Q1" in result.message
    assert "`portal insights refresh`" in result.fix


# --- people ---------------------------------------------------------------------------------------


def test_no_staff_fails_staffing_and_admin(db: Session) -> None:
    staffing = doctor.check_staffing(db)
    admin = doctor.check_admin(db)
    assert staffing.status is Status.FAIL and "(the fallback queue)" in staffing.message
    assert "portal create-staff EMAIL --role ombudsperson" in staffing.fix
    assert admin.status is Status.FAIL
    assert admin.fix == "create one with `portal create-staff EMAIL --role admin`"


def test_unstaffed_queues_warn_and_staffed_ones_pass(db: Session, portal: Portal) -> None:
    portal.staff("alice", queues=("general", "hr"))

    partly = doctor.check_staffing(db)

    assert partly.status is Status.WARN
    assert "no active ombudsperson in board, ethics, safety" in partly.message
    assert "`portal membership`" in partly.fix

    portal.staff("bob", queues=("ethics", "safety", "board"))
    assert doctor.check_staffing(db).status is Status.OK


def test_fallback_staffed_only_by_a_disabled_account_fails(db: Session, portal: Portal) -> None:
    portal.staff("alice", queues=QUEUES)
    db.execute(update(StaffUser).values(active=False))
    db.commit()
    assert doctor.check_staffing(db).status is Status.FAIL


def test_admin_must_be_active(db: Session, portal: Portal) -> None:
    root = portal.staff("root", roles=(Role.ADMIN,), queues=())
    assert doctor.check_admin(db).status is Status.OK
    db.execute(update(StaffUser).where(StaffUser.id == root.id).values(active=False))
    db.commit()
    assert doctor.check_admin(db).status is Status.FAIL


def test_demo_accounts_fail(db: Session, portal: Portal) -> None:
    assert DEMO_DOMAIN == doctor.DEMO_DOMAIN
    portal.staff("alice")
    assert doctor.check_demo_accounts(db).status is Status.OK
    db.execute(update(StaffUser).values(email=f"alice@{DEMO_DOMAIN}"))
    db.commit()
    result = doctor.check_demo_accounts(db)
    assert result.status is Status.FAIL
    assert f"alice@{DEMO_DOMAIN}" in result.message and "password and second factor" in (
        result.message
    )
    assert "portal staff disable EMAIL" in result.fix


# --- backups --------------------------------------------------------------------------------------


def test_backup_age(db: Session) -> None:
    none = doctor.check_backup(db, NOW, 7)
    assert none.status is Status.WARN and "no backup is recorded" in none.message
    assert "run `portal backup`" in none.fix and "every 7 days" in none.fix

    audit.record(db, Action.BACKUP_CREATED, NOW - dt.timedelta(days=8))
    db.commit()
    old = doctor.check_backup(db, NOW, 7)
    assert old.status is Status.WARN
    assert "8 days old (2026-05-06 09:00 UTC), over 7" in old.message
    assert doctor.check_backup(db, NOW, 10).status is Status.OK  # the setting moves the limit

    audit.record(db, Action.BACKUP_CREATED, NOW - dt.timedelta(days=1))
    db.commit()
    fresh = doctor.check_backup(db, NOW, 7)
    assert fresh.status is Status.OK and "2026-05-13 09:00 UTC" in fresh.message
    assert audit.verify(db).ok  # the events went through the real chain


# --- settings-only checks -------------------------------------------------------------------------


def test_settings_checks_pass_on_a_good_configuration(tmp_path: Path) -> None:
    settings = good(cheap_settings(tmp_path))
    for check in (
        doctor.check_secure_cookies,
        doctor.check_portal_url,
        doctor.check_mail,
        doctor.check_redis,
        doctor.check_argon2,
        doctor.check_quick_exit,
        doctor.check_log_level,
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
    result = doctor.check_secure_cookies(good(cheap_settings(tmp_path)).replace(**changes))
    assert result.status is status and message in result.message and fix in result.fix


@pytest.mark.parametrize("url", ["http://localhost:5000", "http://127.0.0.1:5000"])
def test_insecure_cookies_are_fine_for_loopback_development(tmp_path: Path, url: str) -> None:
    settings = good(cheap_settings(tmp_path)).replace(secure_cookies=False, portal_url=url)
    assert doctor.check_secure_cookies(settings).status is Status.OK
    portal_url = doctor.check_portal_url(settings)
    assert portal_url.status is Status.WARN and "fine for development" in portal_url.message


@pytest.mark.parametrize(
    ("url", "status", "fix"),
    [
        ("http://ombuds.example.org", Status.FAIL, "terminate TLS in front of the portal"),
        ("", Status.WARN, "set portal_url to the portal's public https:// address"),
    ],
)
def test_portal_url_without_https(tmp_path: Path, url: str, status: Status, fix: str) -> None:
    result = doctor.check_portal_url(good(cheap_settings(tmp_path)).replace(portal_url=url))
    assert result.status is status and fix in result.fix


def test_hsts_check(app: Flask) -> None:
    sent = https_headers(app)  # a real request over HTTPS to the application
    assert doctor.check_hsts(sent).status is Status.OK
    missing = doctor.check_hsts({"Content-Type": "text/html"})
    assert missing.status is Status.FAIL
    assert "Strict-Transport-Security: max-age=31536000` at the TLS proxy" in missing.fix
    short = doctor.check_hsts({"Strict-Transport-Security": "max-age=300"})
    assert short.status is Status.WARN and "max-age=31536000" in short.fix


def test_mail_not_configured_warns(tmp_path: Path) -> None:
    result = doctor.check_mail(good(cheap_settings(tmp_path)).replace(smtp_host="", smtp_from=""))
    assert result.status is Status.WARN
    assert "ombudspersons hear of no new case" in result.message
    assert "set smtp_host, smtp_from" in result.fix
    plain = doctor.check_mail(good(cheap_settings(tmp_path)).replace(smtp_starttls=False))
    assert plain.status is Status.WARN and "smtp_starttls = true" in plain.fix


def test_unreachable_redis_fails_without_showing_the_password(tmp_path: Path) -> None:
    settings = good(cheap_settings(tmp_path)).replace(redis_url="redis://:s3cret@127.0.0.1:1/0")
    result = doctor.check_redis(settings)
    assert result.status is Status.FAIL
    assert "Redis at 127.0.0.1:1 does not answer" in result.message
    assert "s3cret" not in result.message + result.fix
    assert "start Redis or correct redis_url" in result.fix


@pytest.mark.skipif(
    not REDIS_URL, reason="PORTAL_TEST_REDIS_URL is not set: Redis variants skipped"
)
def test_reachable_redis_passes(tmp_path: Path) -> None:
    result = doctor.check_redis(good(cheap_settings(tmp_path)).replace(redis_url=REDIS_URL))
    assert result.status is Status.OK and "answers" in result.message


def test_weak_argon2_fails(tmp_path: Path) -> None:
    weak = doctor.check_argon2(cheap_settings(tmp_path).with_argon2(TEST_ARGON2))
    assert weak.status is Status.FAIL
    assert "kdf_* is t=1, m=8 KiB, p=1" in weak.message and "password_*" in weak.message
    assert "remove the kdf_* and password_* overrides" in weak.fix
    # One parameter of one family below is enough.
    half = good(cheap_settings(tmp_path)).replace(password_memory_kib=32 * 1024)
    result = doctor.check_argon2(half)
    assert result.status is Status.FAIL
    assert "password_* is t=3, m=32768 KiB" in result.message and "kdf_* is" not in result.message


def test_quick_exit_to_the_portal_fails(tmp_path: Path) -> None:
    settings = good(cheap_settings(tmp_path)).replace(
        quick_exit_url="https://OMBUDS.example.org/report"
    )
    result = doctor.check_quick_exit(settings)
    assert result.status is Status.FAIL and "points at the portal itself" in result.message
    assert "neutral site" in result.fix


def test_debug_logging(tmp_path: Path) -> None:
    production = doctor.check_log_level(good(cheap_settings(tmp_path)).replace(log_level="debug"))
    assert production.status is Status.FAIL
    assert production.fix == 'set log_level = "INFO" (PORTAL_LOG_LEVEL)'
    development = good(cheap_settings(tmp_path)).replace(
        log_level="DEBUG", portal_url="http://localhost:5000"
    )
    assert doctor.check_log_level(development).status is Status.WARN


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def healthy(app: Flask, db: Session, portal: Portal, settings: Settings) -> Settings:
    """A deployment where every check passes: secrets on disk, staff, a fresh backup."""
    ensure_secrets(settings.instance_path)
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
    assert len(lines) == 20  # 19 checks and the summary
    assert all(line.startswith("OK    ") for line in lines[:-1]), output
    assert lines[-1] == "19 OK, 0 WARN, 0 FAIL, 0 SKIP"
    assert "Fix:" not in output


def test_warn_alone_exits_0(healthy: Settings) -> None:
    code, output = _doctor(healthy.replace(smtp_host="", smtp_from=""))
    assert code == 0, output
    assert "WARN  mail" in output and ". Fix: set smtp_host, smtp_from" in output
    assert output.splitlines()[-1] == "18 OK, 1 WARN, 0 FAIL, 0 SKIP"


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
    assert data["counts"] == {"OK": 17, "WARN": 0, "FAIL": 2, "SKIP": 0}
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
