#!/usr/bin/env python3
"""Insights at scale (issue 4): generate many cases, then time the refresh and the requests.

1. **Generation.** A temporary database (SQLite file, or a database created on the PostgreSQL
   server of ``--url`` and dropped at the end) gets the schema from the real Alembic migrations
   and the demo taxonomy (``config/taxonomy.toml``, through the project's loader). Then
   ``--cases`` rows are bulk-inserted into ``cases``, spread over the ``--months`` complete months
   before ``--today``, with skewed categories, ~55% anonymous (~30% of whom came back), sites and
   departments sometimes missing, acknowledgement mostly within 7 days, most older cases closed
   with an outcome, feedback dates, and some cases reclassified by triage. Crypto columns hold
   random bytes of the shapes intake writes (no Argon2, no sealing: the insights never read them,
   but they make the rows as wide as real ones). SQLite: SQLAlchemy Core ``insert()``
   executemany in batches; PostgreSQL: ``COPY ... FROM STDIN`` through psycopg.
2. **Refresh.** ``store.refresh(session, today, KEY)`` on the fresh data (all quarters computed),
   timed, with the process's peak RSS; then, with the releases deleted, the same refresh again
   under ``tracemalloc`` for the peak of Python allocations (slower: tracing). Then the monthly
   job: ``refresh`` with ``today`` one month later (every progress release recomputed).
3. **Requests.** (a) Service layer: the calls each insights request makes, on a new session
   each time (the overview: ``periods`` plus ``load`` of both releases and ``kpis`` for every
   quarter; a quarter page: ``load`` volume and progress plus ``kpis``; a year page: the same for
   4 quarters plus derived sums). (b) HTTP, through the real Flask app and ``app.test_client()``:
   every GET rule of ``app.url_map`` whose path starts with ``/insights``, ``/staff/insights`` or
   ``/api/v1``, if any exist in this checkout. Pages are requested after a real log-in (password
   then TOTP) of a management account made for the run; ``/api/`` rules with an ``ApiToken``
   row inserted directly (``Authorization: Bearer``). Each is reported p50/p95/max over
   ``--requests`` requests after a few unrecorded warm-up ones.

Quick run: ``.venv/bin/python -m bench.insights --quick``. Full size (issue 4):
``.venv/bin/python -m bench.insights --cases 1000000 --months 36 --database postgresql``.
Timings are printed (and written as JSON with ``--json``), never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import os
import random
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import benchlib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, insert, make_url, select, text
from sqlalchemy.orm import Session

from portal import crypto
from portal.app import create_app
from portal.db import make_engine, make_sessionmaker
from portal.instance import InstanceSecrets
from portal.models import (
    ApiToken,
    Case,
    Category,
    InsightRelease,
    OrgUnit,
    Outcome,
    Queue,
    Role,
    StaffUser,
)
from portal.ops import migrate
from portal.services.accounts import accounts as staff
from portal.services.accounts import second_factor
from portal.services.casework import deadlines
from portal.services.configuration import policy, taxonomy
from portal.services.insights import calendar as insights_calendar
from portal.services.insights import figures as insights
from portal.services.insights import releases as insights_releases
from portal.services.insights import store as insights_store
from portal.settings import PROJECT_ROOT, TEST_ARGON2, Settings

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_TODAY = dt.date(2026, 10, 15)  # 36 months before it: 2023-10 .. 2026-09, 12 quarters
PASSWORD = "benchmark password, not a secret"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HTTP_PREFIXES = ("/insights", "/staff/insights", "/api/v1")

# Relative frequencies by category code (codes not listed: 2). Roughly what ombuds offices
# report: interpersonal matters dominate, misconduct at the top is rare.
CATEGORY_WEIGHTS = {
    "harassment": 22,
    "pay": 16,
    "dismissal": 10,
    "discrimination": 8,
    "other": 8,
    "safety": 7,
    "retaliation": 6,
    "feedback": 6,
    "fraud": 4,
    "privacy": 3,
    "conflict_of_interest": 2,
    "executive_conduct": 0.3,
}
# As config/taxonomy.toml routes them (the keyword rules aside); the rest go to "general".
CATEGORY_QUEUE = {
    "executive_conduct": "board",
    "safety": "safety",
    "retaliation": "hr",
    "harassment": "hr",
    "discrimination": "hr",
    "dismissal": "hr",
    "pay": "hr",
    "fraud": "ethics",
    "conflict_of_interest": "ethics",
    "privacy": "ethics",
}
OUTCOME_WEIGHTS = {
    "substantiated": 18,
    "partly_substantiated": 14,
    "unsubstantiated": 36,
    "referred": 14,
    "withdrawn": 13,
}
#: The key that orders complements, as ``insights.release_key`` derives it from a server secret.
KEY = insights.release_key(os.urandom(32))
SEALED_KEY_BYTES = 32 + 48  # a 32-byte case key in a sealed box (ephemeral key + MAC)
AEAD_OVERHEAD = 24 + 16  # XChaCha20-Poly1305 nonce + tag


# --- generation --------------------------------------------------------------------------------


def month_starts(today: dt.date, months: int) -> list[dt.date]:
    """The first days of the ``months`` complete months before ``today``, oldest first."""
    first = today.replace(day=1)
    return [deadlines.add_months(first, -i) for i in range(months, 0, -1)]


class Generator:
    """Makes rows for ``cases``, reproducibly from ``seed`` (random bytes from os.urandom)."""

    def __init__(self, session: Session, today: dt.date, months: int, seed: int) -> None:
        self.today = today
        self.rng = random.Random(seed)
        rules = policy.values(session)
        self.ack_days = rules.acknowledge_days
        self.feedback_months = rules.feedback_months
        self.kdf = Settings(instance_path=Path("/nonexistent")).kdf_cost.encode()
        categories = list(session.scalars(select(Category).order_by(Category.position)))
        self.categories = [c.id for c in categories]
        self.category_cum = _cumulative([CATEGORY_WEIGHTS.get(c.code, 2) for c in categories])
        queues = {q.slug: q.id for q in session.scalars(select(Queue))}
        self.queue_of = {c.id: queues[CATEGORY_QUEUE.get(c.code, "general")] for c in categories}
        units = list(session.scalars(select(OrgUnit)))
        sites = [u for u in units if u.kind == "site"]
        departments = [u for u in units if u.kind == "department"]
        self.sites = [u.id for u in sites]
        self.site_cum = _cumulative([u.headcount or 50 for u in sites])
        self.departments = [u.id for u in departments]
        self.department_cum = _cumulative([u.headcount or 50 for u in departments])
        outcomes = list(session.scalars(select(Outcome)))
        self.outcomes = [o.id for o in outcomes]
        self.outcome_cum = _cumulative([OUTCOME_WEIGHTS.get(o.code, 10) for o in outcomes])
        self.statuses = {
            kind: code
            for code, kind in session.execute(
                text("SELECT code, kind FROM workflow_statuses ORDER BY position DESC")
            )
        }
        starts = month_starts(today, months)
        self.days: list[dt.date] = []
        day_weights: list[float] = []
        for i, start in enumerate(starts):
            end = deadlines.add_months(start, 1)
            day = start
            while day < end:
                # Slow growth over the period, fewer reports at weekends.
                self.days.append(day)
                day_weights.append((1 + i / months) * (0.35 if day.weekday() >= 5 else 1.0))
                day += dt.timedelta(days=1)
        self.day_cum = _cumulative(day_weights)
        self.handles: set[str] = set()

    def _handles(self, n: int) -> list[str]:
        alphabet = crypto._ALPHABET
        out: list[str] = []
        while len(out) < n:
            value = int.from_bytes(os.urandom(5), "big")
            symbols = "".join(alphabet[(value >> (5 * i)) & 31] for i in range(8))
            handle = f"{symbols[:4]}-{symbols[4:]}"
            if handle not in self.handles:
                self.handles.add(handle)
                out.append(handle)
        return out

    def rows(self, n: int) -> list[dict[str, Any]]:
        rng = self.rng
        today = self.today
        received = rng.choices(self.days, cum_weights=self.day_cum, k=n)
        categories = rng.choices(self.categories, cum_weights=self.category_cum, k=n)
        sites = rng.choices(self.sites, cum_weights=self.site_cum, k=n)
        departments = rng.choices(self.departments, cum_weights=self.department_cum, k=n)
        outcomes = rng.choices(self.outcomes, cum_weights=self.outcome_cum, k=n)
        ids = os.urandom(16 * n).hex()
        handles = self._handles(n)
        fixed = os.urandom((32 + 16 + 32 + SEALED_KEY_BYTES) * n)
        rows = []
        width = 32 + 16 + 32 + SEALED_KEY_BYTES
        for i in range(n):
            day = received[i]
            category = categories[i]
            anonymous = rng.random() < 0.55
            returned = rng.random() < (0.30 if anonymous else 0.15)
            ack_due = day + dt.timedelta(days=self.ack_days)
            r = rng.random()
            if r < 0.93:
                acknowledged: dt.date | None = day + dt.timedelta(days=int(rng.random() * 5) + 1)
            elif r < 0.985:
                acknowledged = day + dt.timedelta(days=self.ack_days + 1 + int(rng.random() * 14))
            else:
                acknowledged = None
            if acknowledged is not None and acknowledged >= today:
                acknowledged = None
            feedback_due = deadlines.add_months(acknowledged or ack_due, self.feedback_months)
            r = rng.random()
            feedback_on: dt.date | None = None
            if acknowledged is not None and r < 0.9:
                span = (feedback_due - acknowledged).days
                late = r >= 0.8
                offset = int(span * (0.15 + 0.8 * rng.random())) + (30 if late else 0)
                feedback_on = acknowledged + dt.timedelta(days=offset)
                if feedback_on >= today:
                    feedback_on = None
            closed_on: dt.date | None = None
            outcome: int | None = None
            if rng.random() < 0.82:
                closed_on = day + dt.timedelta(days=int(rng.lognormvariate(3.8, 0.8)) + 1)
                if closed_on >= today:
                    closed_on = None
                elif rng.random() < 0.96:
                    outcome = outcomes[i]
            if closed_on is not None:
                status = self.statuses["closed"]
            elif acknowledged is None:
                status = self.statuses["new"]
            else:
                status = self.statuses["open" if rng.random() < 0.8 else "acknowledged"]
            base = i * width
            chunk = fixed[base : base + width]
            report_len = AEAD_OVERHEAD + 120 + int(rng.random() * 900)
            rows.append(
                {
                    "id": ids[32 * i : 32 * i + 32],
                    "handle": handles[i],
                    "sort_key": rng.getrandbits(62),
                    "queue_id": self.queue_of[category],
                    "category_id": category,
                    "site_id": sites[i] if rng.random() < 0.75 else None,
                    "department_id": departments[i] if rng.random() < 0.65 else None,
                    "is_anonymous": anonymous,
                    "status": status,
                    "received_on": day,
                    "acknowledge_due_on": ack_due,
                    "feedback_due_on": feedback_due,
                    "acknowledged_on": acknowledged,
                    "closed_on": closed_on,
                    "feedback_on": feedback_on,
                    "reporter_wrote_on": (
                        day + dt.timedelta(days=int(rng.random() * 60)) if returned else None
                    ),
                    "reporter_returned": returned,
                    "priority": "normal" if rng.random() < 0.85 else "high",
                    "reporter_at_risk": rng.random() < 0.03,
                    # Triage reclassified about one case in twelve.
                    "org_category_id": (
                        rng.choice(self.categories) if rng.random() < 0.08 else None
                    ),
                    "outcome_id": outcome,
                    "lookup_id": chunk[0:32],
                    "reporter_salt": chunk[32:48],
                    "reporter_kdf": self.kdf,
                    "reporter_public_key": chunk[48:80],
                    "reporter_sealed_key": chunk[80:width],
                    "report_ciphertext": os.urandom(report_len),
                    "contact_ciphertext": (
                        None
                        if anonymous
                        else os.urandom(AEAD_OVERHEAD + 40 + int(rng.random() * 80))
                    ),
                }
            )
        return rows


def _cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def insert_cases(engine: Engine, generator: Generator, count: int, batch: int) -> float:
    """Insert ``count`` generated cases; returns the seconds spent generating rows in Python
    (the rest of the wall time is the database)."""
    python_seconds = 0.0
    done = 0
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        while done < count:
            n = min(batch, count - done)
            started = time.perf_counter()
            rows = generator.rows(n)
            python_seconds += time.perf_counter() - started
            with conn.begin():
                if postgres:
                    _copy(conn, rows)
                else:
                    conn.execute(insert(Case.__table__), rows)
            done += n
            if done % (batch * 20) == 0 or done == count:
                print(f"  {done:>9,} cases inserted", flush=True)
    return python_seconds


def _copy(conn: Any, rows: list[dict[str, Any]]) -> None:
    """COPY the generated columns; a column the generator leaves out (one added by a later
    migration, say) takes its database default, as with the SQLite INSERT."""
    raw = conn.connection.driver_connection  # psycopg.Connection
    columns = list(rows[0])
    names = ", ".join(columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY cases ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] for name in columns])


# --- the database ------------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database(kind: str, url: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield url or f"sqlite:///{workdir / 'portal.db'}"
        return
    with benchlib.temporary_postgres(url or DEFAULT_POSTGRES, "bench_insights") as made:
        yield made


def database_size(engine: Engine, url: str) -> str:
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        path = make_url(url).database
        size = sum(
            Path(p).stat().st_size for p in (f"{path}", f"{path}-wal") if path and Path(p).exists()
        )
    else:
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    return f"{size / 2**20:.0f} MiB"


# --- measuring ---------------------------------------------------------------------------------


class RowTimer:
    """Adds up the time ``insights._rows`` takes (the query and building its rows), so the
    refresh splits into reading cases and computing releases. Patched where the refresh looks
    it up (``store``, which imports it from ``figures``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.rows = 0
        self._original = insights_store._rows

    def __enter__(self) -> RowTimer:
        def timed(session: Session, quarter: insights_calendar.Quarter) -> list[Any]:
            started = time.perf_counter()
            result = self._original(session, quarter)
            self.seconds += time.perf_counter() - started
            self.rows += len(result)
            return result

        insights_store._rows = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *_exc: object) -> None:
        insights_store._rows = self._original  # type: ignore[assignment]


def timed_refresh(engine: Engine, today: dt.date) -> dict[str, Any]:
    sessions = make_sessionmaker(engine)
    gc.collect()
    rss_before = benchlib.rss_mib()
    max_before = benchlib.max_rss_mib()
    with RowTimer() as rows, sessions() as session:
        started = time.perf_counter()
        report = insights_store.refresh(session, today, KEY)
        session.commit()
        seconds = time.perf_counter() - started
    return {
        "today": today.isoformat(),
        "seconds": seconds,
        "reading_cases_seconds": rows.seconds,
        "cases_read": rows.rows,
        "releases_computed": len(report.computed),
        "rss_before_mib": rss_before,
        "peak_rss_mib": benchlib.max_rss_mib(),
        "peak_rss_grew": benchlib.max_rss_mib() > max_before,
    }


def traced_refresh(engine: Engine, today: dt.date) -> dict[str, Any]:
    """The full refresh again (releases deleted first) under tracemalloc."""
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        session.execute(delete(InsightRelease))
        session.commit()
    gc.collect()
    tracemalloc.start()
    with sessions() as session:
        started = time.perf_counter()
        insights_store.refresh(session, today, KEY)
        session.commit()
        seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds_with_tracing": seconds, "peak_python_mib": peak / 2**20}


def summarise(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": p95 * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def repeat(call: Callable[[], object], requests: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return summarise(seconds)


# --- requests through the service layer ---------------------------------------------------------


def service_calls(app: Flask) -> dict[str, Callable[[], object]]:
    sessions = app.extensions["portal"].sessions

    def quarter(session: Session, q: insights_calendar.Quarter) -> insights.Kpis | None:
        volume = insights_store.load(session, q, insights_releases.VOLUME)
        progress = insights_store.load(session, q, insights_releases.PROGRESS)
        if volume is None:
            return None
        return insights.kpis(volume, progress, insights_store.substantiated_codes(session))

    def overview() -> object:
        with sessions() as session:
            found = insights_store.periods(session)
            substantiated = insights_store.substantiated_codes(session)
            out = []
            for q in found:
                volume = insights_store.load(session, q, insights_releases.VOLUME)
                progress = insights_store.load(session, q, insights_releases.PROGRESS)
                if volume is not None:
                    out.append(insights.kpis(volume, progress, substantiated))
            return out

    def latest_quarter() -> object:
        with sessions() as session:
            return quarter(session, insights_store.periods(session)[-1])

    def year() -> object:
        with sessions() as session:
            found = insights_store.periods(session)
            last_year = max(q.year for q in found if q.number == 4)
            loaded = [
                insights_store.load(
                    session, insights_calendar.Quarter(last_year, n), insights_releases.VOLUME
                )
                for n in range(1, 5)
            ]
            progress = [
                insights_store.load(
                    session, insights_calendar.Quarter(last_year, n), insights_releases.PROGRESS
                )
                for n in range(1, 5)
            ]
            substantiated = insights_store.substantiated_codes(session)
            kpis = [
                insights.kpis(v, p, substantiated)
                for v, p in zip(loaded, progress, strict=True)
                if v is not None
            ]
            return insights.derived_sum(k.total for k in kpis), kpis

    return {
        "service: overview (periods + 12 quarters' releases + kpis)": overview,
        "service: quarter page (latest quarter: 2 releases + kpis)": latest_quarter,
        "service: year page (4 quarters: 8 releases + kpis + sums)": year,
    }


# --- requests over HTTP (test client) -----------------------------------------------------------


def management_user(app: Flask, settings: Settings) -> StaffUser:
    with app.extensions["portal"].sessions() as session:
        created = staff.create_staff(
            session,
            settings,
            email="bench-management@example.org",
            display_name="Bench Management",
            roles=(Role.MANAGEMENT,),
            queue_slugs=(),
            password=PASSWORD,
            now=dt.datetime.now(dt.UTC),
        )
        second_factor.assign_totp_secret(session, created.user, TOTP_SECRET)
        session.commit()
        return created.user


def log_in(client: FlaskClient, user: StaffUser) -> str:
    """The real two-step log-in (password, then the current TOTP code); returns where it lands."""
    page = client.get("/staff/login").text
    token = _csrf(page)
    reply = client.post(
        "/staff/login", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    if reply.status_code != 302:
        raise RuntimeError(f"log-in, password step: {reply.status_code}")
    token = _csrf(client.get(reply.headers["Location"]).text)
    state = client.application.extensions["portal"]
    step = crypto.totp_step(state.clock())
    code = crypto.totp_code(crypto.normalise_totp_secret(TOTP_SECRET), step)
    reply = client.post("/staff/login/code", data={"csrf_token": token, "code": code})
    if reply.status_code != 302:
        raise RuntimeError(f"log-in, code step: {reply.status_code}")
    return str(reply.headers["Location"])


def _csrf(html: str) -> str:
    match = TOKEN.search(html)
    if match is None:
        raise RuntimeError("no CSRF token on the log-in page")
    return match.group(1)


def api_token(app: Flask, user: StaffUser, today: dt.date) -> str:
    token = crypto.new_api_token()  # the real format (looks_like_token checks its prefix)
    with app.extensions["portal"].sessions() as session:
        session.add(
            ApiToken(
                staff_id=user.id,
                name="benchmark",
                token_hash=crypto.token_digest(token),
                created_on=today,
                expires_on=today + dt.timedelta(days=365),
            )
        )
        session.commit()
    return token


def http_routes(
    app: Flask, latest: insights_calendar.Quarter, prefixes: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """Concrete GET paths for the insights rules of the app, and the rules that were skipped
    (an argument we cannot fill)."""
    values: dict[str, object] = {
        "period": str(latest),
        "quarter": str(latest),
        "year": latest.year - 1 if latest.number < 4 else latest.year,
        "view": "category",  # the largest view (every category of the taxonomy)
    }
    paths, skipped = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(prefixes) or "GET" not in (rule.methods or ()):
            continue
        if not set(rule.arguments) <= set(values):
            skipped.append(rule.rule)
            continue
        with app.test_request_context():
            from flask import url_for

            paths.append(url_for(rule.endpoint, **{a: values[a] for a in rule.arguments}))
    return paths, skipped


def measure_http(
    app: Flask,
    settings: Settings,
    today: dt.date,
    args: argparse.Namespace,
) -> dict[str, Any]:
    requests, warmup = args.requests, args.warmup
    with app.extensions["portal"].sessions() as session:
        latest = insights_store.periods(session)[-1]
    paths, skipped = http_routes(app, latest, tuple(args.http_prefix))
    results: dict[str, Any] = {"skipped_rules": skipped, "routes": {}}
    if not paths:
        return results
    user = management_user(app, settings)
    page_client = app.test_client()
    results["logged_in_to"] = log_in(page_client, user)
    token = api_token(app, user, today)
    api_client = app.test_client()
    for path in paths:
        if path.startswith("/api/"):
            headers = {"Authorization": f"Bearer {token}"}

            def call(path: str = path, headers: dict[str, str] = headers) -> int:
                return api_client.get(path, headers=headers).status_code
        else:

            def call(path: str = path) -> int:
                return page_client.get(path).status_code

        status = call()
        figures = repeat(call, requests, warmup) if status == 200 else {}
        results["routes"][f"GET {path}"] = {"status": status, **figures}
    return results


# --- report ------------------------------------------------------------------------------------


def print_latencies(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    width = max([len(name) for name in rows] + [10])
    print(f"  {'':<{width}}  {'n':>4}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}")
    for name, figures in rows.items():
        if "p50_ms" not in figures:
            print(f"  {name:<{width}}  answered {figures.get('status')}: not measured")
            continue
        print(
            f"  {name:<{width}}  {figures['n']:>4}  {figures['p50_ms']:>8.2f}"
            f"  {figures['p95_ms']:>8.2f}  {figures['max_ms']:>8.2f}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = benchlib.parser(__doc__)
    parser.add_argument("--cases", type=int, default=20_000, help="cases to generate (20000)")
    parser.add_argument("--months", type=int, default=36, help="complete months of cases (36)")
    parser.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        default=DEFAULT_TODAY,
        help=f"the fixed 'today' of the data and of the refresh ({DEFAULT_TODAY})",
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--url",
        default="",
        help="sqlite: the database URL to fill (default a temporary file); postgresql: a "
        f"server URL allowed to CREATE/DROP DATABASE (default {DEFAULT_POSTGRES}); a "
        "temporary database is created there and dropped at the end",
    )
    parser.add_argument("--batch", type=int, default=10_000, help="rows per insert batch")
    parser.add_argument("--requests", type=int, default=50, help="measured requests per route")
    parser.add_argument("--warmup", type=int, default=3, help="unrecorded requests per route")
    parser.add_argument(
        "--http-prefix",
        action="append",
        help="measure GET rules whose path starts with this (repeatable; default "
        + ", ".join(HTTP_PREFIXES)
        + ")",
    )
    parser.add_argument("--seed", type=int, default=4, help="seed of the generated data")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc refresh")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5000 cases, 10 requests")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.http_prefix = args.http_prefix or list(HTTP_PREFIXES)
    if args.quick:
        args.cases, args.requests, args.warmup = 5000, 10, 1
    return args


def run(args: argparse.Namespace, url: str, workdir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    engine = make_engine(url)
    try:
        figures["database"] = benchlib.server_version(engine)
        print(f"database: {figures['database']}")
        migrate.upgrade(engine)
        with make_sessionmaker(engine)() as session:
            taxonomy.load_taxonomy(
                session, taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml")
            )
            session.commit()
            generator = Generator(session, args.today, args.months, args.seed)
            if session.scalar(select(Case.id).limit(1)) is not None:
                raise SystemExit("the database already holds cases")
        first, last = generator.days[0], generator.days[-1]
        print(f"\ngenerating {args.cases:,} cases received {first} .. {last} (today {args.today})")
        started = time.perf_counter()
        python_seconds = insert_cases(engine, generator, args.cases, args.batch)
        seconds = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE cases"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        analyse_seconds = time.perf_counter() - started - seconds
        figures["generation"] = {
            "cases": args.cases,
            "months": args.months,
            "seconds": seconds,
            "python_seconds": python_seconds,
            "analyse_seconds": analyse_seconds,
            "rows_per_second": args.cases / seconds,
            "database_size": database_size(engine, url),
        }
        print(
            f"generated in {seconds:.1f} s ({args.cases / seconds:,.0f} rows/s; making rows in "
            f"Python {python_seconds:.1f} s), then ANALYZE {analyse_seconds:.1f} s; database "
            f"{figures['generation']['database_size']}"
        )

        print("\nrefresh, first full computation ...", flush=True)
        full = timed_refresh(engine, args.today)
        print(
            f"  {full['releases_computed']} releases in {full['seconds']:.2f} s (reading "
            f"{full['cases_read']:,} cases {full['reading_cases_seconds']:.2f} s); RSS before "
            f"{full['rss_before_mib']:.0f} MiB, process peak {full['peak_rss_mib']:.0f} MiB"
            + ("" if full["peak_rss_grew"] else " (peak reached before the refresh)")
        )
        figures["refresh_full"] = full
        if not args.no_trace:
            traced = traced_refresh(engine, args.today)
            figures["refresh_full_traced"] = traced
            print(
                f"  again under tracemalloc: peak Python allocations "
                f"{traced['peak_python_mib']:.0f} MiB ({traced['seconds_with_tracing']:.2f} s "
                "with tracing)"
            )
        next_month = deadlines.add_months(args.today, 1)
        print(f"refresh, monthly (today {next_month}) ...", flush=True)
        monthly = timed_refresh(engine, next_month)
        figures["refresh_monthly"] = monthly
        print(
            f"  {monthly['releases_computed']} releases in {monthly['seconds']:.2f} s (reading "
            f"cases {monthly['reading_cases_seconds']:.2f} s)"
        )
        with make_sessionmaker(engine)() as session:
            sizes = [len(p) for p in session.scalars(select(InsightRelease.payload))]
        figures["release_payload_bytes"] = {"count": len(sizes), "max": max(sizes, default=0)}
    finally:
        engine.dispose()

    settings = Settings(
        instance_path=workdir / "instance",
        database_url=url,
        secure_cookies=False,
        log_level="WARNING",
    ).with_argon2(TEST_ARGON2)
    app = create_app(settings, secrets=InstanceSecrets.generate())
    try:
        service = {
            name: repeat(call, args.requests, args.warmup)
            for name, call in service_calls(app).items()
        }
        figures["service"] = service
        http = measure_http(app, settings, args.today, args)
        figures["http"] = http
    finally:
        app.extensions["portal"].engine.dispose()
    print_latencies("requests through the service layer (new session each, no HTTP):", service)
    if http["routes"]:
        print_latencies("requests over HTTP (Flask test client, logged in):", http["routes"])
        print(f"  (the page client's log-in landed on {http.get('logged_in_to')})")
    else:
        print(
            "\nrequests over HTTP: no GET rule under "
            + ", ".join(args.http_prefix)
            + " in this app: not measured"
        )
    if http["skipped_rules"]:
        print(f"  rules skipped (arguments not known): {', '.join(http['skipped_rules'])}")
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("Portal insights benchmark (issue 4)\n")
    info = benchlib.machine_info(("SQLAlchemy", "psycopg", "Flask"))
    for key, value in info.items():
        print(f"{key}: {value}")
    with (
        tempfile.TemporaryDirectory(prefix="portal-bench-insights-") as tmp,
        bench_database(args.database, args.url, Path(tmp)) as url,
    ):
        figures = run(args, url, Path(tmp))
    info["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at end: {info['load average at end']}")
    if args.json:
        benchlib.write_json(args.json, info, **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
