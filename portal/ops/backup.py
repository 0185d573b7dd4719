"""Encrypted backups of the whole portal: the database and the instance secrets, in one file.

The file is useless without its passphrase. Its layout (``docs/operations.md`` describes it for
operators):

* a 41-byte header in the clear: ``PORTALBK``, the format version, the chunk size, the Argon2id
  costs and the salt that turn the passphrase into the key (``crypto.backup_key``);
* the 24-byte header of libsodium's secretstream;
* the encrypted chunks (``crypto.BackupSealer``): each holds ``chunk_bytes`` of plaintext (the
  last one fewer) plus 17 bytes, is authenticated together with the clear header and its own
  place in the stream, and the last one is tagged final. A changed byte, a swapped or missing
  chunk, a truncated file or bytes added at the end are all refused.

The plaintext is a sequence of named entries in a fixed order: ``manifest.json`` (format,
database kind, migration revision, when it was made, and the audit log's anchor: the sealed
head of the chain the copy holds, so every backup is also an anchor kept outside the database),
one ``secret/<name>`` per instance secret,
``database`` (an SQLite database copied with the online backup API, or a ``pg_dump`` custom
archive), then an end marker. Each entry is its name (1 byte length + UTF-8) followed by blocks
(4-byte big-endian length + bytes) and a zero-length block.

Restoring reads and authenticates the whole file before the target changes, and the target must
be empty (no tables, no secret files) unless the operator forces it. A wrong passphrase, a
damaged or a truncated file therefore change nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import sqlite3
import struct
import subprocess  # nosec B404  # pg_dump and pg_restore, fixed arguments, no shell
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import URL, Engine, func, inspect, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import PortalError
from portal.instance import SECRET_FILES, InstanceSecrets
from portal.models import AuditEvent
from portal.ops import migrate
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.settings import Argon2Cost

MAGIC = b"PORTALBK"
FORMAT_VERSION = 1
#: Plaintext bytes per encrypted chunk: what a backup or a restore holds in memory at a time.
CHUNK_BYTES = 1024 * 1024
MIN_CHUNK_BYTES = 1024
MAX_CHUNK_BYTES = 16 * 1024 * 1024
#: A passphrase shorter than this, or with fewer different characters, is refused.
PASSPHRASE_MIN_CHARS = 16
PASSPHRASE_MIN_DISTINCT = 8
#: The largest Argon2 costs a header may ask for: a damaged header must not make a restore
#: allocate terabytes or run for days.
MAX_KDF_MEMORY_KIB = 4 * 1024 * 1024
MAX_KDF_TIME_COST = 64
MAX_KDF_PARALLELISM = 64

_HEADER = struct.Struct(">8sBIIII16s")
_BLOCK = struct.Struct(">I")
_MAX_SMALL_ENTRY = 64 * 1024
_COPY_BYTES = 1024 * 1024
DATABASE_KINDS = ("sqlite", "postgresql")


# --- errors -------------------------------------------------------------------------------------


class BackupError(PortalError):
    """Base of the backup errors; ``str()`` is a sentence for the operator."""


class WeakPassphrase(BackupError):
    pass


class BackupExists(BackupError):
    pass


class NotABackup(BackupError):
    pass


class WrongPassphrase(BackupError):
    pass


class BackupDamaged(BackupError):
    """A chunk does not authenticate, the file ends early, or it has bytes after its end."""


class TargetNotEmpty(BackupError):
    pass


class WrongDatabaseKind(BackupError):
    pass


class UnknownRevision(BackupError):
    pass


class ToolMissing(BackupError):
    """``pg_dump`` or ``pg_restore`` is not installed."""


class ToolFailed(BackupError):
    pass


# --- passphrases --------------------------------------------------------------------------------


def check_passphrase(passphrase: str) -> None:
    """Refuse a passphrase that an offline guesser would find quickly: the file can be copied
    and attacked for as long as the thief likes."""
    if not passphrase.strip():
        raise WeakPassphrase("the passphrase is empty")
    if len(passphrase) < PASSPHRASE_MIN_CHARS:
        raise WeakPassphrase(
            f"the passphrase has {len(passphrase)} characters; it needs at least"
            f" {PASSPHRASE_MIN_CHARS} (several random words are easiest)"
        )
    if len(set(passphrase)) < PASSPHRASE_MIN_DISTINCT:
        raise WeakPassphrase(
            f"the passphrase uses {len(set(passphrase))} different characters; it needs at least"
            f" {PASSPHRASE_MIN_DISTINCT}"
        )


# --- the encrypted container --------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    chunk_bytes: int
    cost: Argon2Cost
    salt: bytes

    def pack(self) -> bytes:
        return _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            self.chunk_bytes,
            self.cost.time_cost,
            self.cost.memory_kib,
            self.cost.parallelism,
            self.salt,
        )

    @classmethod
    def read(cls, fh: BinaryIO) -> tuple[_Header, bytes]:
        raw = fh.read(_HEADER.size)
        if len(raw) < len(MAGIC) or raw[: len(MAGIC)] != MAGIC:
            raise NotABackup("this is not a portal backup file")
        if len(raw) < _HEADER.size:
            raise BackupDamaged("the backup file is truncated: it ends inside its header")
        _, version, chunk, t, m, p, salt = _HEADER.unpack(raw)
        if version != FORMAT_VERSION:
            raise NotABackup(
                f"this backup has format version {version}; this portal reads version"
                f" {FORMAT_VERSION} (use the portal version that made it)"
            )
        if not (MIN_CHUNK_BYTES <= chunk <= MAX_CHUNK_BYTES) or not (
            1 <= t <= MAX_KDF_TIME_COST and 8 <= m <= MAX_KDF_MEMORY_KIB
        ):
            raise BackupDamaged("the backup file's header is damaged (impossible parameters)")
        if not 1 <= p <= MAX_KDF_PARALLELISM:
            raise BackupDamaged("the backup file's header is damaged (impossible parameters)")
        return cls(chunk, Argon2Cost(t, m, p), salt), raw


class _Writer:
    """Entries in, encrypted chunks out."""

    def __init__(self, out: BinaryIO, passphrase: str, cost: Argon2Cost, chunk_bytes: int):
        header = _Header(chunk_bytes, cost, crypto.new_salt())
        packed = header.pack()
        self._sealer = crypto.BackupSealer(crypto.backup_key(passphrase, header.salt, cost), packed)
        self._out = out
        self._chunk = chunk_bytes
        self._buffer = bytearray()
        out.write(packed + self._sealer.header)

    def _write(self, data: bytes) -> None:
        self._buffer += data
        # Strictly more than a chunk: what remains at the end (at least the end marker) is the
        # final chunk, so the final tag always sits on a chunk that carries data.
        while len(self._buffer) > self._chunk:
            self._out.write(self._sealer.seal(bytes(self._buffer[: self._chunk]), final=False))
            del self._buffer[: self._chunk]

    def _name(self, name: str) -> None:
        encoded = name.encode()
        self._write(bytes([len(encoded)]) + encoded)

    def _block(self, data: bytes) -> None:
        for start in range(0, len(data), _COPY_BYTES):
            piece = data[start : start + _COPY_BYTES]
            self._write(_BLOCK.pack(len(piece)) + piece)

    def entry(self, name: str, data: bytes) -> None:
        self._name(name)
        if data:
            self._block(data)
        self._write(_BLOCK.pack(0))

    @contextmanager
    def entry_stream(self, name: str) -> Iterator[Callable[[bytes], None]]:
        self._name(name)

        def sink(data: bytes) -> None:
            if data:
                self._block(data)

        yield sink
        self._write(_BLOCK.pack(0))

    def close(self) -> None:
        self._write(b"\0")  # the end marker: an entry without a name
        self._out.write(self._sealer.seal(bytes(self._buffer), final=True))
        self._buffer.clear()


class _Reader:
    """Encrypted chunks in, authenticated plaintext out; every failure is a named error."""

    def __init__(self, fh: BinaryIO, passphrase: str) -> None:
        header, packed = _Header.read(fh)
        stream_header = fh.read(crypto.BACKUP_STREAM_HEADER_BYTES)
        if len(stream_header) < crypto.BACKUP_STREAM_HEADER_BYTES:
            raise BackupDamaged("the backup file is truncated: it ends inside its header")
        key = crypto.backup_key(passphrase, header.salt, header.cost)
        try:
            self._opener = crypto.BackupOpener(key, stream_header, packed)
        except crypto.DecryptionFailed as exc:  # pragma: no cover - any 24 bytes are accepted
            raise BackupDamaged("the backup file's header is damaged") from exc
        self._fh = fh
        self._sealed_bytes = header.chunk_bytes + crypto.BACKUP_CHUNK_OVERHEAD
        self._buffer = bytearray()
        self._chunks = 0
        self.final = False

    def _next_chunk(self) -> None:
        if self.final:
            raise BackupDamaged("the backup file is damaged: its content ends too early")
        sealed = self._fh.read(self._sealed_bytes)
        if not sealed:
            raise BackupDamaged(
                "the backup file is truncated: it ends before its final chunk"
                f" (after {self._chunks} chunks)"
            )
        try:
            chunk, self.final = self._opener.open(sealed)
        except crypto.DecryptionFailed as exc:
            if self._chunks == 0:
                raise WrongPassphrase(
                    "wrong passphrase (or the start of the file is damaged)"
                ) from exc
            short = len(sealed) < self._sealed_bytes
            raise BackupDamaged(
                f"the backup file is {'truncated or ' if short else ''}damaged: chunk"
                f" {self._chunks + 1} does not authenticate"
            ) from exc
        self._chunks += 1
        if self.final and self._fh.read(1):
            raise BackupDamaged("the backup file is damaged: it has data after its final chunk")
        self._buffer += chunk

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._next_chunk()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def name(self) -> str:
        length = self.read(1)[0]
        try:
            return self.read(length).decode()
        except UnicodeDecodeError as exc:  # pragma: no cover - authenticated, so our own bug
            raise BackupDamaged("the backup file's content is malformed") from exc

    def blocks(self, limit: int | None = None) -> Iterator[bytes]:
        total = 0
        while True:
            (length,) = _BLOCK.unpack(self.read(_BLOCK.size))
            if length == 0:
                return
            total += length
            if length > _COPY_BYTES or (limit is not None and total > limit):
                raise BackupDamaged("the backup file's content is malformed (entry too large)")
            yield self.read(length)

    def entry(self, expected: str) -> bytes:
        found = self.name()
        if found != expected:
            raise BackupDamaged(f"the backup file's content is malformed ({found!r} out of place)")
        return b"".join(self.blocks(_MAX_SMALL_ENTRY))

    def finish(self) -> None:
        if self.name() != "" or self._buffer:
            raise BackupDamaged("the backup file's content is malformed (data after the end)")
        if not self.final:
            self._next_chunk()
            if not self.final or self._buffer:
                raise BackupDamaged("the backup file's content is malformed (data after the end)")


# --- the databases ------------------------------------------------------------------------------


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


# --- making a backup ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupMade:
    size: int
    database: str
    revision: str | None
    #: ``SEQ:HASH:DAY:MAC`` of the chain the copy holds; None if the head's seal did not match.
    audit_anchor: str | None = None


def create_backup(
    session: Session,
    secrets: InstanceSecrets,
    target: Path,
    passphrase: str,
    cost: Argon2Cost,
    now: dt.datetime,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> BackupMade:
    """Write the database and the instance secrets to ``target``, encrypted under
    ``passphrase``, then record ``backup.created`` (size and database kind only). The file
    appears under its name only once complete; it is never overwritten."""
    check_passphrase(passphrase)
    if not MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise BackupError(f"chunk size must be {MIN_CHUNK_BYTES} to {MAX_CHUNK_BYTES} bytes")
    engine = session.get_bind()
    if not isinstance(engine, Engine):  # the app's sessions are bound to its engine
        raise TypeError("the session is not bound to an engine")
    kind = database_kind(engine)
    if target.exists():
        raise BackupExists(f"{target} exists; a backup never overwrites a file")
    partial = target.with_name(f".{target.name}.partial")
    snapshot = _sqlite_snapshot if kind == "sqlite" else _postgres_snapshot
    # Taken before the copy: the copy holds at least this head (the chain only grows). A head
    # whose seal does not match gets no anchor, but the backup is still made.
    try:
        anchor: str | None = audit.current_anchor(session).text()
    except audit.HeadUnsealed:
        anchor = None
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, snapshot(engine) as (revision, blocks):
            writer = _Writer(out, passphrase, cost, chunk_bytes)
            manifest = {
                "format": FORMAT_VERSION,
                "database": kind,
                "revision": revision,
                "created_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
                "secrets": list(SECRET_FILES),
                "audit_anchor": anchor,
            }
            writer.entry("manifest.json", json.dumps(manifest).encode())
            for name in SECRET_FILES:
                writer.entry(f"secret/{name}", base64.b64encode(getattr(secrets, name)))
            with writer.entry_stream("database") as sink:
                for block in blocks:
                    sink(block)
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        if target.exists():
            raise BackupExists(f"{target} appeared while the backup was written; kept the old one")
        partial.rename(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    made = BackupMade(
        size=target.stat().st_size, database=kind, revision=revision, audit_anchor=anchor
    )
    audit.record(session, Action.BACKUP_CREATED, now, size_bytes=made.size, database=kind)
    return made


def last_backup(session: Session) -> dt.datetime | None:
    """When the last backup was made (its ``backup.created`` event), or None. A database
    restored from a backup does not hold that backup's own event: it was written after the
    copy was taken."""
    return session.scalar(
        select(func.max(AuditEvent.at)).where(AuditEvent.action == Action.BACKUP_CREATED.value)
    )


# --- restoring ----------------------------------------------------------------------------------


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
