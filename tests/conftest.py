"""Shared fixtures.

Every test that touches the database runs once on SQLite and once on PostgreSQL when
``PORTAL_TEST_DATABASE_URL`` is set (a fresh database is created on that server for the run and
dropped afterwards). The schema is built by the Alembic migrations, and each test starts from
empty tables with the default taxonomy loaded. Argon2 uses the cheapest parameters through the
same code paths as production.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.bccache
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.app import create_app
from portal.db import Base, make_engine
from portal.instance import InstanceSecrets
from portal.models import Role, StaffUser
from portal.ops import migrate
from portal.services.accounts import staff
from portal.services.configuration import taxonomy
from portal.services.reporting import intake
from portal.settings import PROJECT_ROOT, TEST_ARGON2, Settings

PASSWORD = "correct horse battery staple"
#: The second factor of every account made by ``Portal.staff`` (unless told otherwise).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
POSTGRES_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "")
NO_POSTGRES = "PORTAL_TEST_DATABASE_URL is not set: PostgreSQL variants skipped"
NO_REDIS = "PORTAL_TEST_REDIS_URL is not set: Redis variants skipped"


def cheap_settings(instance: Path, database_url: str = "", **changes: object) -> Settings:
    settings = Settings(
        instance_path=instance,
        database_url=database_url,
        secure_cookies=False,
        # Other tests send many concerns from one test client; the submission limits have
        # their own tests (test_abuse_control.py), which set the limits they test.
        submit_max_per_client=10_000,
        submit_max_total=10_000,
    )
    return settings.with_argon2(TEST_ARGON2).replace(**changes)


@dataclass
class DatabaseUnderTest:
    url: str
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


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


class _SharedTemplateCache(jinja2.BytecodeCache):
    """Compiled templates kept across the apps of a test run: each test builds its own app, and
    compiling every template again for each was a third of the suite's time."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATE_CACHE = _SharedTemplateCache()


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
    application.jinja_env.bytecode_cache = _TEMPLATE_CACHE
    application.config["TESTING"] = True
    state = application.extensions["portal"]
    with state.sessions() as session:
        taxonomy.load_taxonomy(
            session, taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml")
        )
        session.commit()
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


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class Portal:
    """Factories for the objects tests need, through the real services."""

    def __init__(
        self, app: Flask, session: Session, settings: Settings, secrets: InstanceSecrets
    ) -> None:
        self.app = app
        self.session = session
        self.settings = settings
        self.secrets = secrets

    def staff(
        self,
        name: str,
        *,
        roles: tuple[Role, ...] = (Role.OMBUDSPERSON,),
        queues: tuple[str, ...] = ("general",),
        password: str = PASSWORD,
        totp_secret: str | None = TOTP_SECRET,
    ) -> StaffUser:
        """A staff user, already enrolled with ``totp_secret`` (None: not enrolled, so the first
        log-in goes through enrolment)."""
        created = staff.create_staff(
            self.session,
            self.settings,
            email=f"{name}@example.org",
            display_name=name.capitalize(),
            roles=roles,
            queue_slugs=queues,
            password=password,
            now=dt.datetime.now(dt.UTC),
        )
        if totp_secret is not None:
            staff.assign_totp_secret(self.session, created.user, totp_secret)
        self.session.commit()
        return created.user

    def submit(self, today: dt.date | None = None, **fields: object) -> intake.Submitted:
        values: dict[str, object] = {
            "category_code": "other",
            "description": "Something worrying happened.",
            "happened": "ongoing",
        }
        values.update(fields)
        submitted = intake.submit(
            self.session,
            self.settings,
            self.secrets.pepper,
            intake.Concern(**values),  # type: ignore[arg-type]
            today or utc_today(),
        )
        self.session.commit()
        return submitted

    def private_key(self, user: StaffUser, password: str = PASSWORD) -> bytes:
        return staff.authenticate(self.session, self.settings, user.email, password)[1]


@pytest.fixture
def portal(app: Flask, db: Session, settings: Settings, secrets: InstanceSecrets) -> Portal:
    return Portal(app, db, settings, secrets)


_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def receipt_of(html: str) -> str:
    match = re.search(r'id="receipt">([^<]+)<', html)
    assert match, "page shows no receipt"
    return match.group(1).strip()


def next_code(app: Flask, user: StaffUser, secret: str = TOTP_SECRET) -> str:
    """A code the portal will accept for ``user`` now: the current step's, or, when that step
    was used already (the same account logged in twice within 30 seconds), the next step's,
    which the allowed clock drift admits. Beyond that the app's clock is moved on, so tests
    never wait for real time and replay protection stays on."""
    state = app.extensions["portal"]
    with state.sessions() as session:
        last = session.get_one(StaffUser, user.id).totp_last_step
    current = crypto.totp_step(state.clock())
    step = current if last is None or last < current else last + 1
    if step > current + crypto.TOTP_DRIFT_STEPS:
        shift = dt.timedelta(seconds=(step - current) * crypto.TOTP_STEP_SECONDS)
        previous = state.clock
        state.clock = lambda: previous() + shift
    return crypto.totp_code(crypto.normalise_totp_secret(secret), step)


def login_password(client: FlaskClient, user: StaffUser, password: str = PASSWORD) -> str:
    """The first log-in step only; returns where it leads (the code or enrolment page)."""
    token = csrf_token(client.get("/staff/login").text)
    response = client.post(
        "/staff/login", data={"csrf_token": token, "email": user.email, "password": password}
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def login(
    client: FlaskClient, user: StaffUser, password: str = PASSWORD, totp_secret: str = TOTP_SECRET
) -> str:
    """Both log-in steps (password, then a fresh code); returns where the log-in lands."""
    assert login_password(client, user, password) == "/staff/login/code"
    token = csrf_token(client.get("/staff/login/code").text)
    code = next_code(client.application, user, totp_secret)
    response = client.post("/staff/login/code", data={"csrf_token": token, "code": code})
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def report_form(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "category": "harassment",
        "description": "My manager shouts at me in front of the team.",
        "happened": "ongoing",
        "identity": "anonymous",
        "site": "",
        "department": "",
    }
    data.update(overrides)
    return data


def receipt_page_after(client: FlaskClient, posted: TestResponse) -> TestResponse:
    """Follow a successful submission's 303 to the receipt page (post/redirect/get), as a
    browser does; the receipt page is where the receipt is shown."""
    assert posted.status_code == 303, posted.text
    assert posted.location == "/report/receipt", posted.location
    shown = client.get(posted.location)
    assert shown.status_code == 200, shown.text
    return shown


def post_concern(client: FlaskClient, **overrides: object) -> TestResponse:
    """Send the report form as a browser does and return the receipt page it leads to."""
    token = csrf_token(client.get("/report").text)
    posted = client.post("/report", data={"csrf_token": token, **report_form(**overrides)})
    return receipt_page_after(client, posted)


def submit_via_web(client: FlaskClient, **overrides: object) -> str:
    return receipt_of(post_concern(client, **overrides).text)


def open_followup(client: FlaskClient, receipt: str) -> None:
    token = csrf_token(client.get("/followup").text)
    response = client.post("/followup", data={"csrf_token": token, "receipt": receipt})
    assert response.status_code == 302, response.text


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
