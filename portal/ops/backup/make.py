"""Making a backup, and finding the last one in the audit log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from portal.crypto import Argon2Cost
from portal.instance import SECRET_FILES, InstanceSecrets
from portal.models import AuditEvent
from portal.ops.backup.container import (
    CHUNK_BYTES,
    FORMAT_VERSION,
    MAX_CHUNK_BYTES,
    MIN_CHUNK_BYTES,
    _Writer,
    check_passphrase,
)
from portal.ops.backup.databases import _postgres_snapshot, _sqlite_snapshot, database_kind
from portal.ops.backup.errors import BackupError, BackupExists
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action


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
