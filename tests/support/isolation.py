"""An app built once and shared by many tests, each test isolated in a savepoint.

``isolated_app`` builds an app (migrated schema, default taxonomy) on its own connection, inside
one outer transaction that is rolled back at the end, so nothing it writes is ever committed.
Every session the app makes (requests, commands run in its context, the tests' own sessions)
joins that transaction through a savepoint (``join_transaction_mode="create_savepoint"``): a
``commit()`` releases the savepoint, a ``rollback()`` returns to it, exactly as the code under
test expects, without a real commit.

``each_test`` wraps one test in a further savepoint and rolls it back afterwards, so the next
test finds the database as the shared set-up left it; it also gives the test fresh rate-limit
counters and puts back the clock and the mailer, the in-memory state a test may change.

The transaction holds SQLite's write lock for as long as the shared app lives: a module that
uses it must not also build a committed app on the same database (the ``app`` fixture of
``tests/conftest.py``); it overrides ``app``, ``settings`` and ``secrets`` instead, so that
``db`` and ``portal`` come from the shared app. See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
import pytest
from flask import Flask
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from portal.app import PortalState, create_app, make_counters
from portal.db import make_engine
from portal.instance import InstanceSecrets
from portal.services.configuration import taxonomy
from portal.settings import PROJECT_ROOT, Settings
from tests.support.factories import DatabaseUnderTest, cheap_settings


class SharedTemplateCache(jinja2.BytecodeCache):
    """Compiled templates kept across the apps of a test run: many tests build their own app,
    and compiling every template again for each was a third of the suite's time."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CACHE = SharedTemplateCache()
TAXONOMY_FILE = PROJECT_ROOT / "config" / "taxonomy.toml"


def load_default_taxonomy(app: Flask) -> None:
    with app.extensions["portal"].sessions() as session:
        taxonomy.load_taxonomy(session, taxonomy.read_taxonomy_file(TAXONOMY_FILE))
        session.commit()


def _savepoint_engine(url: str) -> Engine:
    """An engine whose transactions can hold savepoints. PostgreSQL's can as they are; the
    sqlite3 module begins transactions itself, and only before a write, so it is told to leave
    that to SQLAlchemy, which then begins every transaction (the SQLAlchemy documentation's
    "Serializable isolation / Savepoints / Transactional DDL" recipe for pysqlite)."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        def no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        def begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")

        event.listen(engine, "connect", no_implicit_begin)
        event.listen(engine, "begin", begin)
    return engine


@dataclass
class IsolatedApp:
    app: Flask
    settings: Settings
    secrets: InstanceSecrets
    connection: Connection

    @property
    def state(self) -> PortalState:
        state: PortalState = self.app.extensions["portal"]
        return state


@contextmanager
def isolated_app(database: DatabaseUnderTest, instance: Path) -> Iterator[IsolatedApp]:
    """An app on ``database`` whose every write stays in one transaction, rolled back at the
    end; its instance folder is ``instance``."""
    settings = cheap_settings(instance, database.url)
    secrets = InstanceSecrets.generate()
    engine = _savepoint_engine(database.url)
    connection = engine.connect()
    outer = connection.begin()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("portal.app.make_engine", lambda url, **kw: engine)
        app = create_app(settings, secrets=secrets)
    app.jinja_env.bytecode_cache = TEMPLATE_CACHE
    app.config["TESTING"] = True
    app.extensions["portal"].sessions.configure(
        bind=connection, join_transaction_mode="create_savepoint"
    )
    try:
        load_default_taxonomy(app)
        yield IsolatedApp(app, settings, secrets, connection)
    finally:
        outer.rollback()
        connection.close()
        engine.dispose()


@contextmanager
def each_test(shared: IsolatedApp) -> Iterator[IsolatedApp]:
    """One test on the shared app: its writes rolled back afterwards, its own rate-limit
    counters, and the clock and the mailer put back as they were."""
    state = shared.state
    clock, mailer = state.clock, state.mailer
    counters = make_counters(shared.settings)
    state.followup_throttle = counters.followup_throttle
    state.login_throttle = counters.login_throttle
    state.api_throttle = counters.api_throttle
    state.submission_limits = counters.submission_limits
    savepoint = shared.connection.begin_nested()
    try:
        yield shared
    finally:
        if savepoint.is_active:
            savepoint.rollback()
        state.clock, state.mailer = clock, mailer


def session_of(shared: IsolatedApp) -> Session:
    """A session on the shared app (inside the test's savepoint), for arranging and
    inspecting."""
    session: Session = shared.state.sessions()
    return session
