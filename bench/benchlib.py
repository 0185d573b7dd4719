"""What the benchmark scripts share: the machine description, a temporary PostgreSQL database,
a gunicorn server in a child process, a small HTTP client with a cookie jar, and percentiles.

Standard library plus the portal's own dependencies; imported as ``benchlib`` by the scripts
beside it (``python bench/NAME.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import multiprocessing
import os
import platform
import re
import resource
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request
from gunicorn.app.base import BaseApplication
from sqlalchemy import Engine, make_url, text
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from portal import crypto
from portal.app import create_app
from portal.db import make_engine
from portal.instance import InstanceSecrets
from portal.settings import Settings

HOST = "127.0.0.1"
#: Seconds a client waits for one answer; a production-cost request on a saturated box stays
#: far below.
REQUEST_TIMEOUT = 120.0
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


# --- the machine -------------------------------------------------------------------------------


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_info(packages: Iterable[str]) -> dict[str, str]:
    """Where the figures were taken: recorded beside them in docs/benchmarks.md."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(usable),
        "cpu model": cpu_model(),
        "memory": memory_total(),
        "load average at start": load_average(),
        "python": platform.python_version(),
        "sqlite library": sqlite3.sqlite_version,
        "packages": ", ".join(f"{p} {package_version(p)}" for p in packages),
    }


def write_json(path: Path, machine: dict[str, str], **figures: Any) -> None:
    """The raw figures as JSON, beside the machine and the command that made them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        **figures,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"figures written to {path}")


# --- the database ------------------------------------------------------------------------------


@contextlib.contextmanager
def temporary_postgres(base_url: str, prefix: str = "portal_bench") -> Iterator[str]:
    """A fresh database on the server of ``base_url`` (which must allow CREATE DATABASE), dropped
    afterwards, as the tests do."""
    url = make_url(base_url)
    name = f"{prefix}_{crypto.random_id()[:12]}"
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_version(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as conn:
        return f"PostgreSQL {conn.execute(text('SHOW server_version')).scalar_one()}"


# --- a server in a child process ---------------------------------------------------------------


def bare_app() -> Flask:
    """The baseline: Flask's own request handling and form parsing, nothing of the portal."""
    app = Flask("bare")

    @app.post("/")
    def echo() -> str:
        return f"ok {len(request.form.get('text', ''))}\n"

    return app


class _Server(BaseApplication):  # type: ignore[misc]
    """Like ``portal.runtime.serving``: each worker builds its own app (and engine) after the
    fork."""

    def __init__(
        self, settings: Settings, secrets: InstanceSecrets, options: dict[str, Any]
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> DispatcherMiddleware:
        portal = create_app(self._settings, secrets=self._secrets)
        return DispatcherMiddleware(portal, {"/bare": bare_app()})


def serve(
    settings: Settings, secrets: InstanceSecrets, port: int, workers: int, loglevel: str
) -> None:
    """Entry point of a server process: a gunicorn arbiter with ``workers`` sync workers serving
    ``DispatcherMiddleware(portal, {"/bare": bare_app()})`` on HOST:``port``: the real portal
    and, at ``/bare/``, a minimal Flask app, so the ratio between the two says what the portal
    costs on the same server. No access log, as ``portal serve``."""
    options: dict[str, Any] = {
        "bind": f"{HOST}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": loglevel,
        "proc_name": "portal-bench",
        "timeout": int(REQUEST_TIMEOUT),
        "graceful_timeout": 5,
    }
    _Server(settings, secrets, options).run()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(alive: Callable[[], bool], port: int, timeout: float) -> None:
    """Until ``port`` accepts connections; RuntimeError if ``alive()`` turns false first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the benchmark server exited early")
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the benchmark server did not listen on {HOST}:{port} in {timeout:.0f} s")


def start_process(target: Callable[..., None], args: tuple[Any, ...], name: str) -> BaseProcess:
    """``target(*args)`` in a new interpreter (spawn, not fork: the child must not inherit this
    process's database engines or threads)."""
    proc = multiprocessing.get_context("spawn").Process(target=target, args=args, name=name)
    proc.start()
    return proc


def stop_process(proc: BaseProcess) -> None:
    """TERM, then KILL; also every process it left behind (gunicorn's workers)."""
    children = child_pids(proc.pid) if proc.pid else []
    proc.terminate()
    proc.join(15)
    if proc.is_alive():
        proc.kill()
        proc.join(5)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


def processes() -> Iterator[tuple[int, str, list[str]]]:
    """``(pid, command name, fields from the state on)`` of every process in /proc; nothing
    where there is no /proc. ``fields[1]`` is the parent's pid, ``fields[11:15]`` utime, stime,
    cutime and cstime in clock ticks (proc(5))."""
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            yield int(entry), name, stat[stat.rindex(")") + 2 :].split()


def child_pids(parent: int | None) -> list[int]:
    """The direct children of ``parent`` (gunicorn's workers of an arbiter)."""
    return [pid for pid, _name, fields in processes() if int(fields[1]) == parent]


def process_tree_cpu(root: int) -> float | None:
    """CPU seconds (user + system, all threads) used so far by ``root`` and its children; None
    where there is no /proc. A worker that exited and was reaped by ``root`` still counts
    (``root``'s cutime and cstime); ``root``'s own share goes with it when it is killed."""
    total = 0
    found = False
    for pid, _name, fields in processes():
        if pid == root:
            total += sum(int(f) for f in fields[11:15])
            found = True
        elif int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK") if found else None


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` figure in KiB (``VmRSS``, ``VmHWM``), None where there is none."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def rss_mib() -> float:
    """This process's resident memory now, in MiB (NaN where the system does not say)."""
    kib = _status_kib("VmRSS")
    return float("nan") if kib is None else kib / 1024


def max_rss_mib() -> float:
    """This process's peak RSS: ``VmHWM``, which writing 5 to ``/proc/self/clear_refs`` resets.
    ``ru_maxrss`` is the fallback: it is never below the RSS of the process that forked this
    one."""
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring's first paragraph as the description."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0] if doc else None,
        epilog="Figures are printed, never asserted. docs/benchmarks.md holds recorded runs.",
    )


def command_cpu(name: str) -> float:
    """CPU seconds used so far by the live processes called ``name`` (their comm), e.g. the
    PostgreSQL backends of this machine."""
    ticks = sum(int(f[11]) + int(f[12]) for _pid, comm, f in processes() if comm == name)
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_cpu() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting for I/O) since boot."""
    with contextlib.suppress(OSError, ValueError):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return 0.0


# --- the client --------------------------------------------------------------------------------


class Failed(Exception):
    """One operation failed; the message is its kind, counted in the results."""


class ConnectFailed(Failed):
    """Nothing was sent: the server did not accept the connection (it is down)."""


@dataclass
class Reply:
    status: int
    body: str
    set_cookies: list[str]
    location: str


class CookieJar:
    """The cookies of one browser: set, replaced and deleted (Max-Age=0) as a browser does."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def update(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:
                continue
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.values.pop(name, None)
                else:
                    self.values[name] = morsel.value

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.values.items())


@dataclass(frozen=True)
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes


def multipart(form: dict[str, str], files: list[Upload]) -> tuple[str, bytes]:
    """``(content type, body)`` of a multipart/form-data request, as a browser sends it."""
    boundary = f"----portal-bench-{crypto.random_token()[:24]}"
    parts: list[bytes] = []
    for name, value in form.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for upload in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{upload.field}"; '
            f'filename="{upload.filename}"\r\nContent-Type: {upload.content_type}\r\n\r\n'.encode()
            + upload.data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def http_call(
    port: int,
    method: str,
    path: str,
    form: dict[str, str] | None = None,
    *,
    cookies: CookieJar | None = None,
    headers: dict[str, str] | None = None,
    files: list[Upload] | None = None,
) -> Reply:
    """One request on a new connection (gunicorn's sync workers close it anyway). ``files``
    make it multipart. Raises ConnectFailed when the connection is refused, Failed on any other
    transport error."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    sent = {"Accept": "text/html", **(headers or {})}
    body: str | bytes | None = None
    if files:
        sent["Content-Type"], body = multipart(form or {}, files)
    elif form is not None:
        body = urlencode(form)
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    if cookies is not None and cookies.values:
        sent["Cookie"] = cookies.header()
    try:
        try:
            conn.connect()
        except ConnectionRefusedError as exc:
            raise ConnectFailed(f"{method} refused") from exc
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        text_body = response.read().decode("utf-8", "replace")
    except ConnectFailed:
        raise
    except (OSError, http.client.HTTPException) as exc:
        raise Failed(f"{method} {type(exc).__name__}") from exc
    finally:
        conn.close()
    set_cookies = response.headers.get_all("Set-Cookie") or []
    if cookies is not None:
        cookies.update(set_cookies)
    return Reply(response.status, text_body, set_cookies, response.headers.get("Location", ""))


def csrf_token(html: str) -> str:
    match = TOKEN.search(html)
    if match is None:
        raise Failed("page without CSRF token")
    return match.group(1)


# --- figures -----------------------------------------------------------------------------------


@dataclass
class Latency:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def summarise(seconds: list[float]) -> Latency | None:
    if not seconds:
        return None
    values = sorted(s * 1000 for s in seconds)
    return Latency(
        percentile(values, 50), percentile(values, 90), percentile(values, 99), values[-1]
    )


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Left-aligned first column, right-aligned others, a rule under the header."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))
