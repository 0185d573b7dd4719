"""`portal backup` and `portal restore`: encrypted round trips on SQLite and PostgreSQL, what the
file holds, and every way a restore is refused without changing the target."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect, make_url, select, text
from sqlalchemy.orm import Session

from portal import crypto
from portal.app import create_app
from portal.db import make_engine
from portal.instance import SECRET_FILES, InstanceSecrets, load_secrets
from portal.models import AuditEvent, Role, StaffUser, Visibility
from portal.ops.backup import container, make, restore
from portal.services.accounts import accounts as staff
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases
from portal.services.reporting import followup
from portal.settings import Settings
from tests.conftest import _create_postgres_database
from tests.support.factories import (
    PASSWORD,
    POSTGRES_URL,
    DatabaseUnderTest,
    Portal,
    cheap_settings,
)

PASSPHRASE = "amber kettle quietly orbits the lighthouse"
CASE_TEXT = "The night shift supervisor falsifies the forklift inspection log every Friday."
REPLY_TEXT = "Thank you; could you say which warehouse the forklifts belong to?"
CONTACT = ("Jordan Example", "jordan.private@example.net")


def _run(app: Flask, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _passphrase_file(tmp_path: Path, passphrase: str = PASSPHRASE) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(passphrase + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def target(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of an empty instance on a fresh database of the same kind."""
    instance = tmp_path / "restored-instance"
    if database.dialect == "sqlite":
        yield cheap_settings(instance)  # SQLite in the (new) instance folder
        return
    url, admin = _create_postgres_database(POSTGRES_URL)
    yield cheap_settings(instance, url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


class Populated:
    def __init__(self, portal: Portal) -> None:
        self.alice = portal.staff("alice")
        submitted = portal.submit(
            description=CASE_TEXT, contact_name=CONTACT[0], contact_details=CONTACT[1]
        )
        self.receipt = submitted.receipt
        self.handle = submitted.handle
        key = portal.private_key(self.alice)
        now = dt.datetime.now(dt.UTC)
        cases.acknowledge(portal.session, self.alice, key, self.handle, now)
        cases.add_message(
            portal.session,
            portal.settings,
            self.alice,
            key,
            self.handle,
            REPLY_TEXT,
            Visibility.REPORTER,
            now,
        )
        portal.session.commit()


@pytest.fixture
def populated(portal: Portal) -> Populated:
    return Populated(portal)


def _backup(app: Flask, tmp_path: Path, name: str = "portal.pbk") -> Path:
    path = tmp_path / name
    code, output = _run(
        app, "backup", str(path), "--passphrase-file", str(_passphrase_file(tmp_path))
    )
    assert code == 0, output
    return path


def _restore(
    settings: Settings, source: Path, tmp_path: Path, *extra: str, passphrase: str = PASSPHRASE
) -> tuple[int, str]:
    app = create_app(settings)
    try:
        passfile = tmp_path / "restore-passphrase"
        passfile.write_text(passphrase + "\n")
        passfile.chmod(0o600)
        return _run(app, "restore", str(source), "--passphrase-file", str(passfile), *extra)
    finally:
        app.extensions["portal"].engine.dispose()


def _assert_untouched(settings: Settings) -> None:
    """The target of a refused restore: still no table and no secret file."""
    engine = make_engine(settings.effective_database_url)
    try:
        if engine.dialect.name == "sqlite":
            assert not (settings.instance_path / "portal.db").exists()
        else:
            assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert [n for n in SECRET_FILES if (settings.instance_path / n).exists()] == []
    leftovers = list(settings.instance_path.glob(".*")) if settings.instance_path.exists() else []
    assert leftovers == []


def _events(session: Session, action: Action) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


# --- round trip ---------------------------------------------------------------------------------


def test_round_trip_restores_cases_secrets_and_the_audit_chain(
    app: Flask,
    db: Session,
    database: DatabaseUnderTest,
    populated: Populated,
    secrets: InstanceSecrets,
    target: Settings,
    tmp_path: Path,
) -> None:
    if database.dialect == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed: PostgreSQL backup round trip skipped")
    assert make.last_backup(db) is None
    path = _backup(app, tmp_path)

    made = _events(db, Action.BACKUP_CREATED)
    assert len(made) == 1
    assert audit.detail_of(made[0]) == {
        "size_bytes": path.stat().st_size,
        "database": database.dialect,
    }
    assert made[0].actor_id is None and made[0].case_id is None
    assert str(tmp_path) not in made[0].detail and PASSPHRASE not in made[0].detail
    assert make.last_backup(db) == made[0].at
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    code, output = _restore(target, path, tmp_path)
    assert code == 0, output
    assert "the latest" in output

    # The secrets are back, each in a mode-0600 file.
    assert load_secrets(target.instance_path) == secrets
    for name in SECRET_FILES:
        assert stat.S_IMODE((target.instance_path / name).stat().st_mode) == 0o600
    if database.dialect == "sqlite":
        assert stat.S_IMODE((target.instance_path / "portal.db").stat().st_mode) == 0o600
    assert [p.name for p in target.instance_path.glob(".*")] == []  # no copy or staged secret

    restored = create_app(target)
    state = restored.extensions["portal"]
    try:
        with state.sessions() as session:
            # The reporter, with the receipt only (lookup through the pepper, key by Argon2id).
            key = followup.unlock(session, target, state.secrets.pepper, populated.receipt)
            seen = followup.view(session, key)
            assert seen.description == CASE_TEXT
            assert seen.contact is not None and seen.contact.name == CONTACT[0]
            assert REPLY_TEXT in [entry.text for entry in seen.thread]
            # The ombudsperson, with the password only.
            user, private = staff.authenticate(session, target, populated.alice.email, PASSWORD)
            detail = cases.open_case(
                session, target, user, private, populated.handle, dt.datetime.now(dt.UTC).date()
            )
            assert detail.report.description == CASE_TEXT
            # The chain verifies under the restored audit key and ends with the restore.
            assert audit.verify(session).ok
            restores = _events(session, Action.BACKUP_RESTORED)
            assert len(restores) == 1
            assert audit.detail_of(restores[0]) == {
                "size_bytes": path.stat().st_size,
                "database": database.dialect,
                "forced": False,
            }
            # The backup's own event was written after the copy was taken.
            assert make.last_backup(session) is None
    finally:
        state.engine.dispose()


def test_backup_file_holds_no_plaintext(
    app: Flask,
    db: Session,
    populated: Populated,
    secrets: InstanceSecrets,
    tmp_path: Path,
) -> None:
    data = _backup(app, tmp_path).read_bytes()
    normalised = crypto.normalise_receipt(populated.receipt)
    lookup = crypto.receipt_lookup_id(secrets.pepper, normalised)
    alice = db.get_one(StaffUser, populated.alice.id)
    needles = [
        CASE_TEXT.encode(),
        CASE_TEXT.encode("utf-16-le"),
        REPLY_TEXT.encode(),
        CONTACT[1].encode(),
        populated.receipt.encode(),
        normalised.encode(),
        lookup,
        lookup.hex().encode(),
        alice.email.encode(),
        alice.password_hash.encode(),
        PASSPHRASE.encode(),
        b"SQLite format 3",
        b"PGDMP",
        b"alembic_version",
        b"manifest.json",
    ]
    for name in SECRET_FILES:
        value = getattr(secrets, name)
        needles += [value, base64.b64encode(value)]
    found = [needle[:24] for needle in needles if needle in data]
    assert found == []
    assert data.startswith(container.MAGIC)


# --- refusals that change nothing ----------------------------------------------------------------


def test_wrong_passphrase_is_refused_and_changes_nothing(
    app: Flask, populated: Populated, target: Settings, tmp_path: Path
) -> None:
    path = _backup(app, tmp_path)
    code, output = _restore(target, path, tmp_path, passphrase="not the passphrase at all, sorry")
    assert code != 0
    assert "wrong passphrase" in output and "nothing was restored" in output
    _assert_untouched(target)
    code, output = _restore(target, path, tmp_path, passphrase="")
    assert code != 0 and "empty" in output
    _assert_untouched(target)


def test_a_changed_byte_anywhere_is_refused(
    app: Flask, db: Session, populated: Populated, target: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "small-chunks.pbk"
    make.create_backup(
        db,
        app.extensions["portal"].secrets,
        path,
        PASSPHRASE,
        app.extensions["portal"].settings.kdf_cost,
        dt.datetime.now(dt.UTC),
        chunk_bytes=container.MIN_CHUNK_BYTES,
    )
    db.commit()
    original = path.read_bytes()
    header = 41 + crypto.BACKUP_STREAM_HEADER_BYTES
    positions = {
        20: "damaged",  # an Argon2 cost in the clear header
        30: "wrong passphrase",  # the salt
        50: "wrong passphrase",  # the secretstream header
        header + 5: "wrong passphrase",  # the first chunk
        len(original) // 2: "damaged",
        len(original) - 1: "damaged",  # the final chunk's tag
    }
    for position, expected in positions.items():
        changed = bytearray(original)
        changed[position] ^= 0x01
        path.write_bytes(bytes(changed))
        code, output = _restore(target, path, tmp_path)
        assert code != 0, position
        assert expected in output and "nothing was restored" in output, (position, output)
        _assert_untouched(target)
    path.write_bytes(original[:8] + b"\x63" + original[9:])  # a format version from the future
    code, output = _restore(target, path, tmp_path)
    assert code != 0 and "format version 99" in output
    path.write_bytes(b"SQLite format 3\0" + original[16:])
    code, output = _restore(target, path, tmp_path)
    assert code != 0 and "not a portal backup file" in output
    _assert_untouched(target)
    path.write_bytes(original)  # and the file itself was fine
    code, output = _restore(target, path, tmp_path)
    assert code == 0, output


def test_a_truncated_or_extended_file_is_refused(
    app: Flask, db: Session, populated: Populated, target: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "small-chunks.pbk"
    chunk = container.MIN_CHUNK_BYTES
    make.create_backup(
        db,
        app.extensions["portal"].secrets,
        path,
        PASSPHRASE,
        app.extensions["portal"].settings.kdf_cost,
        dt.datetime.now(dt.UTC),
        chunk_bytes=chunk,
    )
    db.commit()
    original = path.read_bytes()
    header = 41 + crypto.BACKUP_STREAM_HEADER_BYTES
    sealed = chunk + crypto.BACKUP_CHUNK_OVERHEAD
    assert (len(original) - header) // sealed > 10  # many chunks
    cuts = [
        header + 3 * sealed,  # exactly after a whole chunk: only the missing final tag tells
        len(original) - (len(original) - header) % sealed,  # the final chunk dropped
        len(original) - 1,
        header + 3 * sealed + 100,
        30,
        header,
    ]
    for cut in cuts:
        path.write_bytes(original[:cut])
        code, output = _restore(target, path, tmp_path)
        assert code != 0, cut
        assert "truncated" in output and "nothing was restored" in output, (cut, output)
        _assert_untouched(target)
    # A byte added at the end: the final chunk is short, so the byte joins it and it no longer
    # authenticates (after a full final chunk it would be "data after its final chunk").
    path.write_bytes(original + b"\0")
    code, output = _restore(target, path, tmp_path)
    assert code != 0 and "damaged" in output and "nothing was restored" in output
    # Two chunks swapped: each authenticates alone, but not in the other's place.
    swapped = (
        original[: header + sealed]
        + original[header + 2 * sealed : header + 3 * sealed]
        + original[header + sealed : header + 2 * sealed]
        + original[header + 3 * sealed :]
    )
    path.write_bytes(swapped)
    code, output = _restore(target, path, tmp_path)
    assert code != 0 and "chunk 2 does not authenticate" in output
    _assert_untouched(target)


def test_restore_refuses_a_non_empty_target_unless_forced(
    app: Flask, populated: Populated, target: Settings, tmp_path: Path
) -> None:
    path = _backup(app, tmp_path)
    code, output = _restore(target, path, tmp_path)
    assert code == 0, output
    # The restored instance goes on living: a new account appears.
    live = create_app(target)
    with live.extensions["portal"].sessions() as session:
        staff.create_staff(
            session,
            target,
            email="later@example.org",
            display_name="Later",
            roles=[Role.MANAGEMENT],
            queue_slugs=[],
            password=PASSWORD,
            now=dt.datetime.now(dt.UTC),
        )
        session.commit()
    live.extensions["portal"].engine.dispose()

    code, output = _restore(target, path, tmp_path)
    assert code != 0
    assert "not empty" in output and "tables" in output and "instance secrets" in output
    assert "--force" in output
    restored = create_app(target)
    with restored.extensions["portal"].sessions() as session:
        assert session.scalar(select(StaffUser).where(StaffUser.email == "later@example.org"))
    restored.extensions["portal"].engine.dispose()

    code, output = _restore(target, path, tmp_path, "--force")
    assert code == 0, output
    restored = create_app(target)
    with restored.extensions["portal"].sessions() as session:
        emails = set(session.scalars(select(StaffUser.email)))
        assert emails == {populated.alice.email}
        # The target's own history went with it: the chain is the backup's, plus this restore.
        restores = _events(session, Action.BACKUP_RESTORED)
        assert [audit.detail_of(e)["forced"] for e in restores] == [True]
        assert audit.verify(session).ok
    restored.extensions["portal"].engine.dispose()


def test_restore_refuses_an_instance_folder_that_holds_secrets(
    app: Flask, populated: Populated, target: Settings, tmp_path: Path
) -> None:
    path = _backup(app, tmp_path)
    target.instance_path.mkdir(parents=True)
    (target.instance_path / "pepper").write_text(base64.b64encode(b"p" * 32).decode())
    code, output = _restore(target, path, tmp_path)
    assert code != 0 and "holds instance secrets (pepper)" in output
    assert (target.instance_path / "pepper").read_text() == base64.b64encode(b"p" * 32).decode()


def test_a_backup_of_a_migration_this_portal_does_not_know_is_refused(
    app: Flask, db: Session, populated: Populated, target: Settings, tmp_path: Path
) -> None:
    engine = app.extensions["portal"].engine
    with engine.begin() as conn:
        real = conn.scalar(text("SELECT version_num FROM alembic_version"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    try:
        path = _backup(app, tmp_path)
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": real})
    code, output = _restore(target, path, tmp_path)
    assert code != 0 and "migration 0099_future, which this portal does not know" in output
    _assert_untouched(target)


# --- making a backup ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("passphrase", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("short one", "at least 16"),
        ("abababababababababab", "different characters"),
    ],
)
def test_weak_passphrases_are_refused(
    app: Flask, db: Session, tmp_path: Path, passphrase: str, message: str
) -> None:
    path = tmp_path / "weak.pbk"
    code, output = _run(
        app, "backup", str(path), "--passphrase-file", str(_passphrase_file(tmp_path, passphrase))
    )
    assert code != 0 and message in output
    assert list(tmp_path.glob("*.pbk*")) == [] and list(tmp_path.glob(".*partial")) == []
    assert _events(db, Action.BACKUP_CREATED) == []


def test_the_passphrase_comes_from_a_prompt_or_stdin_never_argv(
    app: Flask, db: Session, tmp_path: Path
) -> None:
    code, output = _run(app, "backup", str(tmp_path / "a.pbk"), "--passphrase", PASSPHRASE)
    assert code != 0 and "No such option" in output
    code, output = _run(
        app, "backup", str(tmp_path / "b.pbk"), stdin=f"{PASSPHRASE}\n{PASSPHRASE}\n"
    )
    assert code == 0, output
    assert PASSPHRASE not in output
    code, output = _run(
        app, "backup", str(tmp_path / "c.pbk"), stdin=f"{PASSPHRASE}\nsomething else entirely\n"
    )
    assert code != 0 and not (tmp_path / "c.pbk").exists()
    code, output = _run(
        app, "backup", str(tmp_path / "d.pbk"), "--passphrase-file", "-", stdin=PASSPHRASE + "\n"
    )
    assert code == 0, output
    assert len(_events(db, Action.BACKUP_CREATED)) == 2


def test_backup_never_overwrites_a_file(app: Flask, db: Session, tmp_path: Path) -> None:
    path = tmp_path / "exists.pbk"
    path.write_bytes(b"keep me")
    code, output = _run(
        app, "backup", str(path), "--passphrase-file", str(_passphrase_file(tmp_path))
    )
    assert code != 0 and "never overwrites" in output
    assert path.read_bytes() == b"keep me"
    assert _events(db, Action.BACKUP_CREATED) == []


def test_a_world_readable_passphrase_file_is_warned_about(
    app: Flask, db: Session, tmp_path: Path
) -> None:
    passfile = _passphrase_file(tmp_path)
    passfile.chmod(0o644)
    code, output = _run(app, "backup", str(tmp_path / "w.pbk"), "--passphrase-file", str(passfile))
    assert code == 0 and "can be read by other users" in output


def test_without_pg_dump_a_postgresql_backup_says_so(
    app: Flask,
    db: Session,
    database: DatabaseUnderTest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite backups need no external tool")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    path = tmp_path / "nopgdump.pbk"
    code, output = _run(
        app, "backup", str(path), "--passphrase-file", str(_passphrase_file(tmp_path))
    )
    assert code != 0 and "pg_dump is not installed or not on PATH" in output
    assert not path.exists() and list(tmp_path.glob(".*partial")) == []


def test_the_backup_anchor_is_printed_and_the_restored_chain_holds_it(
    app: Flask,
    db: Session,
    database: DatabaseUnderTest,
    populated: Populated,
    target: Settings,
    tmp_path: Path,
) -> None:
    """Issue 13, finding 11: every backup is an anchor of the chain it holds."""
    if database.dialect == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed: PostgreSQL backup round trip skipped")
    expected = audit.current_anchor(db).text()
    path = tmp_path / "portal.pbk"
    code, output = _run(
        app, "backup", str(path), "--passphrase-file", str(_passphrase_file(tmp_path))
    )
    assert code == 0, output
    assert f"audit anchor of this backup: {expected}" in output
    assert restore.read_manifest(path, PASSPHRASE)["audit_anchor"] == expected
    code, output = _restore(target, path, tmp_path)
    assert code == 0, output
    assert f"the backup's audit anchor: {expected}" in output
    restored = create_app(target)
    state = restored.extensions["portal"]
    try:
        with state.sessions() as session:
            assert audit.verify(session, audit.parse_anchor(expected)).ok
    finally:
        state.engine.dispose()
