"""Engine and session factory. Services receive a ``Session`` and flush; views and commands
commit once."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


log = logging.getLogger("portal.db")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers and one writer work together; foreign keys are off by default in SQLite;
    # secure_delete overwrites deleted content instead of leaving it in free pages.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    # hide_parameters: a database error must never print bound values (e-mails, tokens) to logs.
    # pool_pre_ping: a connection the database dropped (a restart, a failover) is noticed when
    # it is taken from the pool and replaced, so the portal recovers without a restart.
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


#: Key of ``Session.info`` that carries the audit-chain key, so every service that records an
#: audit event finds it on the session it was given (see ``services.audit``).
AUDIT_KEY = "portal.audit_key"


#: Key of ``Session.info`` set by a service that writes for a reporter (a submission, a
#: reporter's message, a reporter's return): after its commit the SQLite files are tidied.
REPORTER_WRITE = "portal.reporter_write"
#: How long a checkpoint after a reporter write waits for readers and writers to let go.
CHECKPOINT_WAIT_MS = 2000


def mark_reporter_write(session: Session) -> None:
    """Say that this session's transaction holds a reporter's write (DESIGN.md invariant 3)."""
    session.info[REPORTER_WRITE] = True


def sqlite_files(engine: Engine) -> list[Path]:
    """The database file of a file-backed SQLite engine and its WAL companions; [] otherwise."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return []
    main = Path(str(engine.url.database))
    return [main, main.with_name(main.name + "-wal"), main.with_name(main.name + "-shm")]


def coarse_file_times(engine: Engine, now: float | None = None) -> None:
    """Set the modification and access times of the SQLite files to the start of the UTC day,
    so that a copy of the files (cp, tar, rsync keep these times) does not say when the last
    write happened. Done after every commit, staff or reporter, so a coarse time does not mark
    the last writer as a reporter. The inode's change time cannot be set by a process: see
    docs/threat-model.md."""
    day = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).date()
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
    for path in sqlite_files(engine):
        try:
            os.utime(path, (midnight, midnight))
        except FileNotFoundError:
            continue  # no -wal or -shm at this moment


def checkpoint(engine: Engine, wait_ms: int = CHECKPOINT_WAIT_MS) -> bool:
    """Copy every WAL frame into the database file and truncate the WAL to zero bytes, so that
    the frames (page images in commit order, with staff events of exact times around them) do
    not keep the order of a reporter's write. False if readers or a writer held on for longer
    than ``wait_ms``: the frames then stay until the next checkpoint.

    SQLite gives up early when a reader or a writer is in the way at the wrong moment, whatever
    the busy timeout, so the checkpoint is tried again, briefly apart, until ``wait_ms``."""
    if not sqlite_files(engine):
        return True
    deadline = time.monotonic() + wait_ms / 1000
    with engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            while True:
                busy = int(conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0])
                if busy == 0 or time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
        finally:
            conn.exec_driver_sql("PRAGMA busy_timeout=10000")
    return busy == 0


def _after_commit(session: Session) -> None:
    """Tidy the SQLite files after a commit. Never raises: the commit has happened, and a
    reporter whose concern is stored must get the receipt (DESIGN.md invariant 8)."""
    reporter = session.info.pop(REPORTER_WRITE, False)
    engine = session.get_bind()
    if not isinstance(engine, Engine) or not sqlite_files(engine):
        return
    try:
        if reporter and not checkpoint(engine):
            # Names nothing: no case, no time finer than the log line's own.
            log.warning("the WAL checkpoint after a reporter's write was held up; the next will")
        coarse_file_times(engine)
    except (SQLAlchemyError, OSError) as error:
        log.warning("tidying the SQLite files after a commit failed: %s", type(error).__name__)


def _after_rollback(session: Session) -> None:
    session.info.pop(REPORTER_WRITE, None)


def make_sessionmaker(engine: Engine, audit_key: bytes | None = None) -> sessionmaker[Session]:
    info = {AUDIT_KEY: audit_key} if audit_key is not None else {}
    sessions = sessionmaker(bind=engine, expire_on_commit=False, info=info)
    if engine.dialect.name == "sqlite":
        event.listen(sessions, "after_commit", _after_commit)
        event.listen(sessions, "after_soft_rollback", lambda s, _t: _after_rollback(s))
    return sessions
