"""`portal doctor`: check this deployment and print what to fix (see docs/operations.md).

One line per check: OK, WARN, FAIL or SKIP, what was found and, unless OK, what to do. Exit
status 1 when any check FAILs, 0 otherwise (WARN alone is 0). `--json` prints the same as one
JSON object for monitoring. `--workers` and `--threads` tell the Argon2 pool check how
`portal serve` runs (doctor cannot see the server it checks), so it can count every worker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from portal.db import make_engine
from portal.ops import doctor
from portal.ops.doctor import capacity, core

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState

#: How long doctor waits for PostgreSQL to accept a connection before calling it unreachable.
DATABASE_CONNECT_TIMEOUT_SECONDS = 5
#: A static file: asking for it exercises the response headers without touching the database.
PROBE_PATH = "/static/favicon.svg"

COLOURS = {
    core.Status.OK: "green",
    core.Status.WARN: "yellow",
    core.Status.FAIL: "red",
    core.Status.SKIP: None,
}


def https_headers(app: Flask) -> Mapping[str, str]:
    """The headers the application sends on a request that arrived over HTTPS (in-process: the
    request reaches no network, and the TLS proxy in front is not seen)."""
    host = urlsplit(app.extensions["portal"].settings.portal_url).netloc or "localhost"
    response = app.test_client().get(PROBE_PATH, base_url=f"https://{host}")
    response.close()
    return dict(response.headers)


def line(result: core.CheckResult) -> str:
    text = f"{result.status.value:<4}  {result.name:<19} {result.message}"
    if result.fix:
        text += f". Fix: {result.fix}."
    return text


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for monitoring).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="The --workers given to `portal serve` (to size the Argon2 pool for all of them).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="The --threads given to `portal serve`.",
)
@with_appcontext
def doctor_command(as_json: bool, workers: int | None, threads: int | None) -> None:
    """Check secrets, database, policy, TLS, mail, Redis, Argon2 costs and pool, the proxy
    hops, staffing, backups, the quick exit and logging; print what to fix. Exit status 1 if
    any check FAILs."""
    state: PortalState = current_app.extensions["portal"]
    settings = state.settings
    url = settings.effective_database_url
    # A separate engine with a connect timeout, so a firewalled database server makes doctor
    # report FAIL after seconds instead of hanging a monitoring run.
    options = (
        {"connect_args": {"connect_timeout": DATABASE_CONNECT_TIMEOUT_SECONDS}}
        if url.startswith("postgresql")
        else {}
    )
    engine = make_engine(url, **options)
    try:
        report = doctor.run(
            settings,
            engine,
            state.clock(),
            https_headers(current_app),
            server=capacity.Server(workers, threads),
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for result in report.checks:
            click.secho(line(result), fg=COLOURS[result.status])
        counts = report.counts()
        click.echo(
            ", ".join(f"{counts[s.value]} {s.value}" for s in core.Status)
            + (": something needs fixing (exit status 1)" if report.failed else "")
        )
    raise SystemExit(report.exit_code)
