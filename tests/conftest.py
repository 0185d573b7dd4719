"""Shared fixtures.

Every test that touches the database runs once on SQLite and once on PostgreSQL when
``PORTAL_TEST_DATABASE_URL`` is set (a fresh database is created on that server for the run and
dropped afterwards). The schema is built by the Alembic migrations, and each test starts from
empty tables with the default taxonomy loaded. Argon2 uses the cheapest parameters through the
same code paths as production.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from portal import crypto
from portal.app import create_app
from portal.db import Base, make_engine
from portal.instance import InstanceSecrets
from portal.ops import migrate
from portal.settings import Settings
from tests.support.factories import (
    NO_POSTGRES,
    POSTGRES_URL,
    DatabaseUnderTest,
    Portal,
    cheap_settings,
)
from tests.support.isolation import TEMPLATE_CACHE, load_default_taxonomy


def _create_postgres_database(base_url: str) -> tuple[str, Engine]:
    url = make_url(base_url)
    name = f"portal_test_{crypto.random_id()[:12]}"
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), admin


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseUnderTest]:
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip(NO_POSTGRES)
        url, admin = _create_postgres_database(POSTGRES_URL)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.db'}"
        admin = None
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield DatabaseUnderTest(url, engine)
    engine.dispose()
    if admin is not None:
        name = make_url(url).database
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def settings(database: DatabaseUnderTest, tmp_path: Path) -> Settings:
    return cheap_settings(tmp_path / "instance", database.url)


@pytest.fixture
def secrets() -> InstanceSecrets:
    return InstanceSecrets.generate()


@pytest.fixture
def app(
    database: DatabaseUnderTest,
    settings: Settings,
    secrets: InstanceSecrets,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    _empty_tables(database.engine)
    # One engine per database for the whole run, so SQLAlchemy's statement cache (kept per
    # engine) survives from test to test; the app still disposes its connections at teardown.
    monkeypatch.setattr(
        "portal.app.make_engine",
        lambda url, **kw: database.engine if url == database.url else make_engine(url, **kw),
    )
    application = create_app(settings, secrets=secrets)
    application.jinja_env.bytecode_cache = TEMPLATE_CACHE
    application.config["TESTING"] = True
    state = application.extensions["portal"]
    load_default_taxonomy(application)
    yield application
    state.engine.dispose()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session on the app's database, for arranging and inspecting."""
    with app.extensions["portal"].sessions() as session:
        yield session


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def portal(app: Flask, db: Session, settings: Settings, secrets: InstanceSecrets) -> Portal:
    return Portal(app, db, settings, secrets)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per skip reason (not one per test), e.g. when PostgreSQL is not configured."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        terminalreporter.write_line(f"skipped {count}: {reason}")
