"""A real ``portal serve`` in a child process, for tests that must see what gunicorn itself
does (its error log, its several workers): an instance folder with secrets, a migrated SQLite
database with the default taxonomy and one ombudsperson in every queue, cheap Argon2 costs."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from portal.db import make_engine, make_sessionmaker
from portal.instance import ensure_secrets
from portal.models import Queue, Role
from portal.ops import migrate
from portal.services.accounts import accounts as staff
from portal.services.configuration import taxonomy
from portal.settings import PROJECT_ROOT, TEST_ARGON2
from tests.support.factories import PASSWORD, cheap_settings

HOST = "127.0.0.1"
#: This helper's share of the loopback ports given to the test suite's servers.
PORTS = range(18500, 18600)


def free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def prepare_instance(instance: Path) -> None:
    ensure_secrets(instance)
    settings = cheap_settings(instance)
    engine = make_engine(settings.effective_database_url)
    try:
        migrate.upgrade(engine)
        with make_sessionmaker(engine)() as session:
            taxonomy.load_taxonomy(
                session, taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml")
            )
            staff.create_staff(
                session,
                settings,
                email="olga@example.org",
                display_name="Olga",
                roles=(Role.OMBUDSPERSON,),
                queue_slugs=list(session.scalars(select(Queue.slug))),
                password=PASSWORD,
                now=dt.datetime.now(dt.UTC),
            )
            session.commit()
    finally:
        engine.dispose()


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")


@contextmanager
def portal_serve(
    tmp_path: Path, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """``portal serve`` on HOST in PORTS; everything it writes (stdout and stderr) goes to one
    file, which the caller reads back after the server stopped."""
    instance = tmp_path / "instance"
    prepare_instance(instance)
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    environment.update(
        PORTAL_INSTANCE_PATH=str(instance),
        PORTAL_SECURE_COOKIES="false",
        PORTAL_KDF_TIME_COST=str(TEST_ARGON2.time_cost),
        PORTAL_KDF_MEMORY_KIB=str(TEST_ARGON2.memory_kib),
        PORTAL_KDF_PARALLELISM=str(TEST_ARGON2.parallelism),
        PORTAL_PASSWORD_TIME_COST=str(TEST_ARGON2.time_cost),
        PORTAL_PASSWORD_MEMORY_KIB=str(TEST_ARGON2.memory_kib),
        PORTAL_PASSWORD_PARALLELISM=str(TEST_ARGON2.parallelism),
        PORTAL_LOG_LEVEL="DEBUG",
        **(env or {}),
    )
    output = tmp_path / "server-output.log"
    command = [
        str(Path(sys.executable).parent / "portal"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with output.open("wb") as sink:
        process = subprocess.Popen(  # our own command line, no shell
            command, env=environment, stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    served = Served(port, process, output)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"portal serve exited early:\n{served.text()}")
            try:
                with socket.create_connection((HOST, port), timeout=1.0):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"portal serve did not listen:\n{served.text()}") from None
                time.sleep(0.1)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
