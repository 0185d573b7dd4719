#!/usr/bin/env python3
"""Submissions per second through the full stack, next to a bare Flask endpoint.

One gunicorn server per Argon2 profile ("test": the cheapest parameters libargon2 accepts;
"production": RFC 9106's second recommended option, t=3, 64 MiB, p=4) serves, on 127.0.0.1 and a
free port, ``DispatcherMiddleware(portal_app, {"/bare": bare_app})``: the real portal, and at
``/bare/`` a minimal Flask app whose ``POST /`` reads one form field and answers a short string.
Same server, same workers, same client, so the ratio between the two says what the portal costs.

On each server the client (standard library only, ``--concurrency`` threads, a new connection per
request as gunicorn's sync workers close them anyway) runs two phases, and reports the CPU used by
itself and by gunicorn (from /proc) so that a run limited by the client shows:

* ``bare``: ``POST /bare/`` with a form field;
* ``portal-<profile>-argon2``: one submission = ``GET /report`` (CSRF token and the
  ``portal_form`` cookie), ``POST /report`` with an anonymous harassment concern, which answers
  303 (post/redirect/get), then ``GET /report/receipt``. It counts as a success when that page
  shows the receipt (``id="receipt"``). The latency of the three and of the POST alone are
  reported.

Each phase first runs a few unrecorded warm-up operations (workers load templates lazily), then
a fixed number of operations, cut short by ``--max-seconds``. The database is a temporary SQLite
file, or with ``--database-url`` a temporary database created on that PostgreSQL server (the URL
must let us CREATE and DROP DATABASE) and dropped at the end. The server is always stopped.

Run ``python bench/submissions.py --quick`` for a smoke run of a few seconds, ``make bench`` for the
full run. Timings are printed (and written as JSON with ``--json``), never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import benchlib
from benchlib import CookieJar, Failed

from portal import crypto
from portal.crypto import Argon2Cost
from portal.db import make_engine, make_sessionmaker
from portal.instance import InstanceSecrets
from portal.models import Role
from portal.ops import migrate
from portal.services.accounts import accounts as staff
from portal.services.configuration import taxonomy
from portal.settings import PRODUCTION_ARGON2, PROJECT_ROOT, TEST_ARGON2, Settings

PROFILES: dict[str, Argon2Cost] = {"test": TEST_ARGON2, "production": PRODUCTION_ARGON2}
RECEIPT_MARK = 'id="receipt"'
DESCRIPTION = (
    "My manager shouts at me in front of the team, most weeks, usually in the Monday meeting. "
    "Last month he said in front of everyone that I would be 'the first to go' if I kept asking "
    "about the overtime rota. Two colleagues saw it. I have not reported it before because I am "
    "afraid of what happens to my contract renewal. (benchmark submission {n})"
)


# --- the server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    label: str
    port: int
    pid: int  # the gunicorn arbiter; its workers are its children


@contextlib.contextmanager
def running_server(
    label: str, settings: Settings, secrets: InstanceSecrets, workers: int
) -> Iterator[Server]:
    """Start gunicorn in a child process; yield it; always stop it (TERM, then KILL)."""
    port = benchlib.free_port()
    proc = benchlib.start_process(
        benchlib.serve, (settings, secrets, port, workers, "warning"), "portal-bench-server"
    )
    try:
        benchlib.wait_for_port(proc.is_alive, port, timeout=60.0)
        assert proc.pid is not None
        yield Server(label, port, proc.pid)
    finally:
        benchlib.stop_process(proc)


# --- the database ------------------------------------------------------------------------------


def bench_settings(instance: Path, database_url: str, cost: Argon2Cost) -> Settings:
    """Built like ``cheap_settings`` in tests/conftest.py, with the Argon2 costs chosen."""
    settings = Settings(
        instance_path=instance,
        database_url=database_url,
        secure_cookies=False,
        log_level="WARNING",
        # Every submission comes from 127.0.0.1: the submission limits (which bench/load.py
        # exercises) would measure the 429 page here instead of the submission.
        submit_max_total=1_000_000,
        submit_max_per_client=1_000_000,
    )
    return settings.with_argon2(cost)


def prepare_database(settings: Settings) -> str:
    """Migrate, load the default taxonomy, add one ombudsperson in "general" and "hr". Returns
    the database server's version."""
    engine = make_engine(settings.effective_database_url)
    try:
        migrate.upgrade(engine)
        with make_sessionmaker(engine)() as session:
            taxonomy.load_taxonomy(
                session,
                taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml"),
            )
            staff.create_staff(
                session,
                settings,
                email="ombuds@example.org",
                display_name="Bench Ombudsperson",
                roles=(Role.OMBUDSPERSON,),
                queue_slugs=("general", "hr"),
                password="benchmark password, not a secret",
                now=dt.datetime.now(dt.UTC),
            )
            session.commit()
        return benchlib.server_version(engine)
    finally:
        engine.dispose()


# --- the client --------------------------------------------------------------------------------


Operation = Callable[[int, int], float | None]
"""``op(port, n)`` does one operation; returns the POST latency (portal) or None (bare); raises
``Failed`` on failure."""


def bare_post(port: int, n: int) -> float | None:
    reply = benchlib.http_call(port, "POST", "/bare/", {"text": DESCRIPTION.format(n=n)})
    if reply.status != 200 or not reply.body.startswith("ok"):
        raise Failed(f"POST {reply.status}")
    return None


def portal_submission(port: int, n: int) -> float | None:
    """A new reporter each time: no cookie carried over from an earlier submission. The POST
    answers 303 to the receipt page (post/redirect/get), whose GET shows the receipt."""
    jar = CookieJar()
    page = benchlib.http_call(port, "GET", "/report", cookies=jar)
    if page.status != 200:
        raise Failed(f"GET {page.status}")
    form = {
        "csrf_token": benchlib.csrf_token(page.body),
        "category": "harassment",
        "description": DESCRIPTION.format(n=n),
        "happened": "ongoing",
        "identity": "anonymous",
        "site": "",
        "department": "",
    }
    started = time.perf_counter()
    reply = benchlib.http_call(port, "POST", "/report", form, cookies=jar)
    post_seconds = time.perf_counter() - started
    if reply.status != 303:
        raise Failed(f"POST {reply.status}")
    shown = benchlib.http_call(port, "GET", "/report/receipt", cookies=jar)
    if shown.status != 200 or RECEIPT_MARK not in shown.body:
        raise Failed(f"receipt page {shown.status}")
    return post_seconds


# --- running a phase ---------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    server: str
    planned: int
    requests: int  # operations attempted (a portal submission is a GET and a POST)
    successes: int
    failures: int
    seconds: float
    throughput: float  # successful operations per second
    latency: benchlib.Latency | None
    post_latency: benchlib.Latency | None
    client_cores: float  # CPU time of this client process / wall time
    server_cores: float | None  # the same for gunicorn's arbiter and workers (None: no /proc)
    errors: dict[str, int] = field(default_factory=dict)
    hit_time_cap: bool = False


def run_phase(
    name: str,
    server: Server,
    op: Operation,
    *,
    total: int,
    concurrency: int,
    max_seconds: float,
) -> PhaseResult:
    """Run ``total`` operations from ``concurrency`` threads, starting no new one after
    ``max_seconds``. Throughput = successes / wall time from the first start to the last end."""
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    post_latencies: list[float] = []
    errors: Counter[str] = Counter()
    hit_cap = False
    start_line = threading.Barrier(concurrency + 1)
    deadline = 0.0
    stop = threading.Event()  # set when the benchmark is interrupted

    def worker() -> None:
        nonlocal issued, hit_cap
        start_line.wait()
        while True:
            with lock:
                if issued >= total or stop.is_set():
                    return
                if time.monotonic() >= deadline:
                    hit_cap = True
                    return
                issued += 1
                n = issued
            started = time.perf_counter()
            try:
                post_seconds = op(server.port, n)
            except Failed as exc:
                with lock:
                    errors[str(exc)] += 1
                continue
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if post_seconds is not None:
                    post_latencies.append(post_seconds)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    server_cpu = benchlib.process_tree_cpu(server.pid)
    client_cpu = time.process_time()
    began = time.perf_counter()
    deadline = time.monotonic() + max_seconds
    start_line.wait()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        raise
    wall = time.perf_counter() - began
    client_cpu = time.process_time() - client_cpu
    server_cpu_end = benchlib.process_tree_cpu(server.pid)
    server_cores = (
        (server_cpu_end - server_cpu) / wall
        if server_cpu is not None and server_cpu_end is not None and wall > 0
        else None
    )
    successes = len(latencies)
    return PhaseResult(
        name=name,
        server=server.label,
        planned=total,
        requests=issued,
        successes=successes,
        failures=sum(errors.values()),
        seconds=wall,
        throughput=successes / wall if wall > 0 else 0.0,
        latency=benchlib.summarise(latencies),
        post_latency=benchlib.summarise(post_latencies),
        client_cores=client_cpu / wall if wall > 0 else 0.0,
        server_cores=server_cores,
        errors=dict(errors),
        hit_time_cap=hit_cap,
    )


# --- machine info and report -------------------------------------------------------------------


def _argon2_ms(cost: Argon2Cost, rounds: int = 3) -> float:
    """Median time of one reporter-key derivation in this (otherwise idle) process."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        crypto.derive_reporter_private_key("0" * crypto.RECEIPT_SYMBOLS, b"\0" * 16, cost)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def machine_info() -> dict[str, str]:
    info = benchlib.machine_info(
        ("Flask", "Werkzeug", "gunicorn", "SQLAlchemy", "argon2-cffi", "PyNaCl")
    )
    return {
        **info,
        "argon2id derivation, idle, test params": f"{_argon2_ms(TEST_ARGON2):.2f} ms",
        "argon2id derivation, idle, production params": f"{_argon2_ms(PRODUCTION_ARGON2):.0f} ms",
    }


def _cost_text(cost: Argon2Cost) -> str:
    return f"t={cost.time_cost}, m={cost.memory_kib} KiB, p={cost.parallelism}"


def _ms(latency: benchlib.Latency | None) -> list[str]:
    if latency is None:
        return ["-", "-", "-"]
    return [f"{latency.p50_ms:.1f}", f"{latency.p90_ms:.1f}", f"{latency.p99_ms:.1f}"]


def print_table(results: list[PhaseResult]) -> None:
    header = [
        "phase",
        "requests",
        "ok",
        "failed",
        "seconds",
        "ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "POST p50",
        "POST p90",
        "POST p99",
        "client cores",
        "server cores",
    ]
    rows = [header]
    for r in results:
        rows.append(
            [
                f"{r.name} [{r.server}]",
                str(r.requests),
                str(r.successes),
                str(r.failures),
                f"{r.seconds:.2f}",
                f"{r.throughput:.2f}",
                *_ms(r.latency),
                *_ms(r.post_latency),
                f"{r.client_cores:.2f}",
                "-" if r.server_cores is None else f"{r.server_cores:.2f}",
            ]
        )
    benchlib.print_table(rows[0], rows[1:])
    for r in results:
        if r.errors:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items()))
            print(f"  failures in {r.name} [{r.server}]: {kinds}")
        if r.hit_time_cap:
            print(f"  {r.name} [{r.server}] stopped at the time cap ({r.requests}/{r.planned})")


def ratios(results: list[PhaseResult]) -> dict[str, dict[str, float]]:
    """Portal throughput over bare throughput measured on the same server."""
    bare = {r.server: r for r in results if r.name == "bare"}
    out: dict[str, dict[str, float]] = {}
    for r in results:
        base = bare.get(r.server)
        if r.name == "bare" or base is None or base.throughput == 0:
            continue
        out[r.name] = {
            "submissions_per_bare_request": r.throughput / base.throughput,
            "http_requests_per_bare_request": 3 * r.throughput / base.throughput,
        }
    return out


# --- main --------------------------------------------------------------------------------------


@dataclass
class Plan:
    bare: int
    per_profile: dict[str, int]
    max_seconds: float
    warmup: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = benchlib.parser(__doc__)
    dflt = " (default: %(default)s)"
    parser.add_argument(
        "--requests", type=int, default=200, help="submissions with test Argon2" + dflt
    )
    parser.add_argument(
        "--production-requests",
        type=int,
        default=40,
        help="submissions with production Argon2" + dflt,
    )
    parser.add_argument(
        "--bare-requests",
        type=int,
        default=5000,
        help="POSTs to the bare endpoint, on each server" + dflt,
    )
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="time cap of each phase" + dflt
    )
    parser.add_argument("--concurrency", type=int, default=4, help="client threads" + dflt)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers" + dflt)
    parser.add_argument(
        "--warmup", type=int, help="unrecorded operations before each phase (default: 2 x workers)"
    )
    parser.add_argument(
        "--profiles",
        default="test,production",
        help=f"Argon2 profiles to run, comma-separated, from {', '.join(PROFILES)}" + dflt,
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server URL that may CREATE DATABASE: a temporary database is made on "
        "it and dropped at the end (default: a temporary SQLite file)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run of a few seconds: a handful of operations per phase (overrides counts)",
    )
    args = parser.parse_args(argv)
    args.profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = [p for p in args.profiles if p not in PROFILES]
    if unknown or not args.profiles:
        parser.error(f"unknown Argon2 profile(s) {unknown}; choose from {list(PROFILES)}")
    if min(args.requests, args.production_requests, args.bare_requests) < 1:
        parser.error("request counts must be at least 1")
    if args.concurrency < 1 or args.workers < 1 or args.max_seconds <= 0:
        parser.error("--concurrency and --workers must be at least 1, --max-seconds positive")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    warmup = args.warmup if args.warmup is not None else 2 * args.workers
    if args.quick:
        return Plan(
            bare=200,
            per_profile={"test": 10, "production": 3},
            max_seconds=min(args.max_seconds, 20.0),
            warmup=min(warmup, 2),
        )
    return Plan(
        bare=args.bare_requests,
        per_profile={"test": args.requests, "production": args.production_requests},
        max_seconds=args.max_seconds,
        warmup=warmup,
    )


def benchmark(
    args: argparse.Namespace, plan: Plan, database_url: str, workdir: Path
) -> tuple[str, list[PhaseResult]]:
    secrets = InstanceSecrets.generate()
    instance = workdir / "instance"
    instance.mkdir()
    # One database for both profiles; staff key set-up uses the cheap costs (it is not measured).
    database = prepare_database(bench_settings(instance, database_url, TEST_ARGON2))
    print(f"database: {database} ({'temporary' if database_url else instance / 'portal.db'})")
    results: list[PhaseResult] = []
    for profile in args.profiles:
        cost = PROFILES[profile]
        settings = bench_settings(instance, database_url, cost)
        print(f"\nstarting gunicorn ({args.workers} sync workers), Argon2 {_cost_text(cost)}")
        with running_server(f"{profile} server", settings, secrets, args.workers) as server:
            phases: list[tuple[str, Operation, int]] = [
                ("bare", bare_post, plan.bare),
                (f"portal-{profile}-argon2", portal_submission, plan.per_profile[profile]),
            ]
            for name, op, total in phases:
                if plan.warmup:
                    run_phase(
                        "warm-up",
                        server,
                        op,
                        total=plan.warmup,
                        concurrency=args.concurrency,
                        max_seconds=plan.max_seconds,
                    )
                result = run_phase(
                    name,
                    server,
                    op,
                    total=total,
                    concurrency=args.concurrency,
                    max_seconds=plan.max_seconds,
                )
                print(
                    f"  {name}: {result.successes}/{result.requests} ok in {result.seconds:.2f} s"
                    f" = {result.throughput:.2f}/s"
                )
                results.append(result)
    return database, results


def _terminate(signum: int, _frame: object) -> None:
    # Turn SIGTERM into an exception so the ``finally`` blocks stop the server and drop the
    # temporary database.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    plan = make_plan(args)
    print("Portal submissions benchmark (loopback; client and server share this machine)\n")
    info = machine_info()
    for key, value in info.items():
        print(f"{key}: {value}")
    if os.getloadavg()[0] > 0.5:
        print("note: load average above 0.5: if another process is busy, figures will be low")
    print(f"gunicorn workers: {args.workers} (sync); client threads: {args.concurrency}")
    print(
        f"operations per phase: bare {plan.bare}, "
        + ", ".join(f"{p} {plan.per_profile[p]}" for p in args.profiles)
        + f"; warm-up {plan.warmup}; time cap {plan.max_seconds:.0f} s per phase"
    )

    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        if args.database_url:
            with benchlib.temporary_postgres(args.database_url) as url:
                database, results = benchmark(args, plan, url, Path(tmp))
        else:
            database, results = benchmark(args, plan, "", Path(tmp))

    info["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at end: {info['load average at end']}")
    print("\nresults (ops/s = successful operations per second; for the portal one operation is")
    print("a submission, GET /report + POST /report + GET /report/receipt; latencies in ms;")
    print("cores = CPU seconds per")
    print("second of wall time, of this client process and of gunicorn's arbiter and workers)\n")
    print_table(results)
    found = ratios(results)
    if found:
        print("\nportal throughput / bare throughput on the same server:")
        for name, values in found.items():
            per = values["submissions_per_bare_request"]
            if not per:
                print(f"  {name}: no successful submission")
                continue
            http_ratio = values["http_requests_per_bare_request"]
            print(
                f"  {name}: {per:.4f} submissions per bare request (1 : {1 / per:.0f});"
                f" counting the 3 HTTP requests of a submission {http_ratio:.4f}"
            )

    if args.json:
        benchlib.write_json(
            args.json,
            info,
            database=database,
            workers=args.workers,
            concurrency=args.concurrency,
            argon2={p: asdict(PROFILES[p]) for p in args.profiles},
            phases=[asdict(r) for r in results],
            ratios=found,
        )

    broken = [r for r in results if r.failures or not r.successes]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
