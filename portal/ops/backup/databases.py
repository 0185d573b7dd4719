"""The databases a backup copies, per dialect: SQLite's online backup API, PostgreSQL's pg_dump."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess  # nosec B404  # pg_dump and pg_restore, fixed arguments, no shell
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import URL, Engine

from portal.ops import migrate
from portal.ops.backup.container import _COPY_BYTES
from portal.ops.backup.errors import BackupError, ToolFailed, ToolMissing

DATABASE_KINDS = ("sqlite", "postgresql")


def database_kind(engine: Engine) -> str:
    kind = engine.dialect.name
    if kind not in DATABASE_KINDS:
        raise BackupError(f"backups support SQLite and PostgreSQL, not {kind}")
    return kind


def _sqlite_path(engine: Engine) -> Path:
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError("backups need an SQLite database in a file")
    return Path(name)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(
            f"{name} is not installed or not on PATH; PostgreSQL backups and restores need it"
            " (Debian: apt-get install postgresql-client, of the server's major version or newer)"
        )
    return path


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that carries the
    password, so it never appears in a process list."""

    def quoted(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = {"host": url.host, "port": url.port, "dbname": url.database, "user": url.username}
    words = [f"{k}={quoted(str(v))}" for k, v in parts.items() if v not in (None, "")]
    for key, value in url.query.items():
        for item in (value,) if isinstance(value, str) else value:
            words.append(f"{key}={quoted(item)}")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return " ".join(words), env


def _stderr_tail(fh: BinaryIO) -> str:
    fh.seek(0)
    lines = fh.read().decode(errors="replace").strip().splitlines()
    return " / ".join(lines[-3:]) or "no message"


def _temporary_file(directory: Path) -> Path:
    """An empty mode-0600 file next to the database: a plaintext copy never leaves the disk
    (and the permissions) the database itself lives on."""
    fd, name = tempfile.mkstemp(prefix=".portal-backup-", suffix=".tmp", dir=directory)
    os.close(fd)
    return Path(name)


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


@contextmanager
def _sqlite_snapshot(engine: Engine) -> Iterator[tuple[str | None, Iterator[bytes]]]:
    """A consistent copy through SQLite's online backup API (one step, so no writer can change
    the source half-way), then read back block by block."""
    source_path = _sqlite_path(engine)
    copy = _temporary_file(source_path.parent)
    try:
        source = sqlite3.connect(source_path)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
            revision = _sqlite_revision(target)
        finally:
            target.close()
            source.close()

        def blocks() -> Iterator[bytes]:
            with copy.open("rb") as fh:
                while block := fh.read(_COPY_BYTES):
                    yield block

        yield revision, blocks()
    finally:
        _remove_sqlite_files(copy)


@contextmanager
def _postgres_snapshot(engine: Engine) -> Iterator[tuple[str | None, Iterator[bytes]]]:
    """``pg_dump`` in custom format: one consistent snapshot, owners and grants left out so it
    restores into a database owned by another role."""
    tool = _tool("pg_dump")
    revision = migrate.current_revision(engine)
    conninfo, env = _libpq(engine.url)
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603  # nosec B603  # fixed arguments, no shell
            [tool, "--format=custom", "--no-owner", "--no-privileges", "--dbname", conninfo],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
        output = process.stdout
        if output is None:  # cannot happen with stdout=PIPE; a check that -O keeps
            raise ToolFailed("pg_dump gave no output stream")

        def blocks() -> Iterator[bytes]:
            while block := output.read(_COPY_BYTES):
                yield block
            if process.wait() != 0:
                raise ToolFailed(f"pg_dump failed: {_stderr_tail(errors)}")

        try:
            yield revision, blocks()
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            output.close()
