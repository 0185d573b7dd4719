"""Restoring a backup: read and authenticate it all, then write an empty target."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3
import subprocess  # nosec B404  # pg_dump and pg_restore, fixed arguments, no shell
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from portal.instance import SECRET_FILES, InstanceSecrets
from portal.ops import migrate
from portal.ops.backup.container import _Reader
from portal.ops.backup.databases import (
    DATABASE_KINDS,
    _libpq,
    _remove_sqlite_files,
    _sqlite_path,
    _stderr_tail,
    _temporary_file,
    _tool,
    database_kind,
)
from portal.ops.backup.errors import (
    BackupDamaged,
    TargetNotEmpty,
    ToolFailed,
    UnknownRevision,
    WeakPassphrase,
    WrongDatabaseKind,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action


@dataclass(frozen=True)
class Restored:
    size: int
    database: str
    revision: str | None
    created_at: str
    secrets: InstanceSecrets
    forced: bool
    audit_anchor: str | None = None  # from the manifest (None in backups made before it)


def target_contents(engine: Engine, instance_path: Path) -> list[str]:
    """What makes a restore target non-empty (nothing: it may be restored into)."""
    found = []
    # A missing SQLite file is empty; connecting to it would create it.
    missing = engine.dialect.name == "sqlite" and not _sqlite_path(engine).exists()
    tables = [] if missing else inspect(engine).get_table_names()
    if tables:
        found.append(f"the database holds {len(tables)} tables")
    present = [n for n in SECRET_FILES if (instance_path / n).exists()]
    if present:
        found.append(f"{instance_path} holds instance secrets ({', '.join(present)})")
    return found


@dataclass(frozen=True)
class _Opened:
    manifest: dict[str, object]
    secrets: InstanceSecrets


def _open(reader: _Reader) -> _Opened:
    try:
        manifest = json.loads(reader.entry("manifest.json"))
        values = {
            n: base64.b64decode(reader.entry(f"secret/{n}"), validate=True) for n in SECRET_FILES
        }
    except (ValueError, TypeError) as exc:  # pragma: no cover - authenticated: our own bug
        raise BackupDamaged("the backup file's content is malformed") from exc
    if not isinstance(manifest, dict) or manifest.get("database") not in DATABASE_KINDS:
        raise BackupDamaged("the backup file's manifest is malformed")
    if reader.name() != "database":
        raise BackupDamaged("the backup file's content is malformed (no database)")
    return _Opened(manifest, InstanceSecrets(**values))


def _read_through(
    source: Path, passphrase: str, check: Callable[[_Opened], None], sink: Callable[[bytes], object]
) -> _Opened:
    """One full, authenticated pass over the file."""
    with source.open("rb") as fh:
        reader = _Reader(fh, passphrase)
        opened = _open(reader)
        check(opened)
        for block in reader.blocks():
            sink(block)
        reader.finish()
    return opened


def _write_secret_files(instance_path: Path, secrets: InstanceSecrets) -> list[Path]:
    """Each secret in a new mode-0600 file beside its final name; renamed in place later."""
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = []
    for name in SECRET_FILES:
        path = instance_path / f".{name}.restoring"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(getattr(secrets, name)).decode() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        staged.append(path)
    return staged


def restore_backup(
    engine: Engine, instance_path: Path, source: Path, passphrase: str, *, force: bool = False
) -> Restored:
    """Restore the database and the instance secrets from ``source``. The whole file is read
    and authenticated before the target changes; the target must be empty unless ``force``.
    The caller records ``backup.restored`` with a session that carries the restored audit key
    (``record_restore``)."""
    kind = database_kind(engine)
    if not passphrase:
        raise WeakPassphrase("the passphrase is empty")
    if not force:
        found = target_contents(engine, instance_path)
        if found:
            raise TargetNotEmpty(
                "the restore target is not empty: "
                + "; ".join(found)
                + " (restore into a new database and instance folder, or use --force to replace"
                " them)"
            )
    if kind == "postgresql":
        restore_tool = _tool("pg_restore")
    size = source.stat().st_size

    def check(opened: _Opened) -> None:
        backup_kind = opened.manifest["database"]
        if backup_kind != kind:
            raise WrongDatabaseKind(
                f"this is a backup of a {backup_kind} database; the portal is set up for {kind}"
                " (restore into the same kind of database)"
            )
        revision = opened.manifest.get("revision")
        if revision is not None and not migrate.is_known_revision(engine, str(revision)):
            raise UnknownRevision(
                f"this backup's database is at migration {revision}, which this portal does not"
                " know: restore it with the portal version that made it"
            )

    staged: list[Path] = []
    try:
        if kind == "sqlite":
            target_path = _sqlite_path(engine)
            new_folder = not target_path.parent.exists()
            target_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            copy = _temporary_file(target_path.parent)
            try:
                with copy.open("wb") as out:
                    opened = _read_through(source, passphrase, check, out.write)
                staged = _write_secret_files(instance_path, opened.secrets)
                _restore_sqlite(copy, target_path)
                new_folder = False
            finally:
                _remove_sqlite_files(copy)
                if new_folder and not any(target_path.parent.iterdir()):
                    target_path.parent.rmdir()  # a refused restore leaves no trace
        else:
            # First pass: authenticate everything, keep nothing. Second pass: stream into
            # pg_restore inside one transaction, which a failure rolls back.
            opened = _read_through(source, passphrase, check, lambda _block: None)
            staged = _write_secret_files(instance_path, opened.secrets)
            _restore_postgres(restore_tool, engine, source, passphrase, force)
        for path in staged:
            path.rename(instance_path / path.name.removeprefix(".").removesuffix(".restoring"))
        staged = []
    finally:
        for path in staged:
            path.unlink(missing_ok=True)
    engine.dispose()  # pooled connections may have seen the old schema
    revision = migrate.current_revision(engine)
    if revision != opened.manifest.get("revision"):
        raise BackupDamaged(
            f"the restored database is at migration {revision}, the backup said"
            f" {opened.manifest.get('revision')}"
        )
    return Restored(
        size=size,
        database=kind,
        revision=revision,
        created_at=str(opened.manifest.get("created_at", "")),
        secrets=opened.secrets,
        forced=force,
        audit_anchor=_manifest_anchor(opened.manifest),
    )


def _manifest_anchor(manifest: dict[str, object]) -> str | None:
    value = manifest.get("audit_anchor")
    return value if isinstance(value, str) else None


def read_manifest(source: Path, passphrase: str) -> dict[str, object]:
    """The manifest of a backup (its first entry, authenticated), e.g. for its audit anchor."""
    with source.open("rb") as fh:
        return _open(_Reader(fh, passphrase)).manifest


def _restore_sqlite(copy: Path, target_path: Path) -> None:
    source = sqlite3.connect(copy)
    try:
        check = source.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            raise BackupDamaged("the database in the backup fails SQLite's integrity check")
        if not target_path.exists():  # the database holds the pepper's work: owner only
            os.close(os.open(target_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(target_path)
        try:
            # The online backup API again, in the other direction: it replaces every page of
            # the target under SQLite's own locks, WAL included.
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _restore_postgres(
    tool: str, engine: Engine, source: Path, passphrase: str, force: bool
) -> None:
    conninfo, env = _libpq(engine.url)
    command = [tool, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
    if force:
        command += ["--clean", "--if-exists"]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603  # nosec B603  # fixed arguments, no shell
            [*command, "--dbname", conninfo],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
        )
        if process.stdin is None:  # cannot happen with stdin=PIPE; a check that -O keeps
            raise ToolFailed("pg_restore gave no input stream")
        try:
            _read_through(source, passphrase, lambda _opened: None, process.stdin.write)
            process.stdin.close()
        except BrokenPipeError:  # pragma: no cover - pg_restore stopped early; its rc says why
            pass
        except BaseException:
            process.kill()  # before the end of the archive: the transaction is never committed
            process.wait()
            raise
        if process.wait() != 0:
            raise ToolFailed(f"pg_restore failed, nothing was restored: {_stderr_tail(errors)}")


def record_restore(session: Session, restored: Restored, now: dt.datetime) -> None:
    """Append ``backup.restored`` to the restored chain: size, database kind and whether it
    replaced a non-empty target; never the file's path."""
    audit.record(
        session,
        Action.BACKUP_RESTORED,
        now,
        size_bytes=restored.size,
        database=restored.database,
        forced=restored.forced,
    )
