"""Engine and session factory. Services receive a ``Session`` and flush; views and commands
commit once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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


def make_sessionmaker(engine: Engine, audit_key: bytes | None = None) -> sessionmaker[Session]:
    info = {AUDIT_KEY: audit_key} if audit_key is not None else {}
    return sessionmaker(bind=engine, expire_on_commit=False, info=info)
