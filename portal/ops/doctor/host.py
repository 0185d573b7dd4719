"""This host: its clock against the audit log, the free disk beside an SQLite database."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from portal.models import AuditEvent
from portal.ops.doctor.core import CheckResult, _fail, _ok, _warn

#: How far the newest audit event may lie ahead of this machine's clock before doctor says the
#: clock stepped back (clocks of several app servers differ by a little).
CLOCK_TOLERANCE = dt.timedelta(minutes=2)


def check_clock(session: Session, now: dt.datetime) -> CheckResult:
    """The clock against the newest audit event: an event written in this clock's future means
    the clock stepped back (or another server's runs ahead)."""
    name = "clock"
    newest = session.scalar(select(func.max(AuditEvent.at)))
    if newest is None:
        return _ok(name, "no audit event yet to compare the clock with")
    ahead = newest - now
    if ahead > CLOCK_TOLERANCE:
        minutes = int(ahead.total_seconds() // 60)
        return _fail(
            name,
            f"the newest audit event is {minutes} minutes ahead of this machine's clock: the"
            " clock stepped back, or another app server's clock runs ahead. Until it catches"
            " up, staff who logged in during those minutes are refused their second-factor"
            " code (a code is never accepted twice), and deadlines and sessions are judged by"
            " the wrong time",
            "set the clock right and keep it so with NTP (`timedatectl set-ntp true`, or"
            " chrony) on every app server; nothing else needs doing",
        )
    return _ok(name, "the clock is not behind the newest audit event")


#: Below this much free space next to an SQLite database, doctor fails (a write would soon be
#: refused); below ten times as much, it warns.
DISK_FAIL_BYTES = 64 * 1024 * 1024


def check_disk_space(
    engine: Engine, free: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free
) -> CheckResult:
    """Free space beside an SQLite database (PostgreSQL's disk is its server's to watch)."""
    name = "disk-space"
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        # As the redis check does for an empty redis_url: nothing to judge here, said plainly.
        return _ok(name, "the database is not an SQLite file: its server's disk is watched there")
    folder = Path(str(engine.url.database)).resolve().parent
    left = free(folder)
    shown = f"{left / 1024 / 1024:.0f} MiB free next to the SQLite database"
    fix = (
        "free space on that disk or move the database to a larger one; while it is full the"
        " portal answers every write with a page saying nothing was stored, and takes writes"
        " again by itself once there is room"
    )
    if left < DISK_FAIL_BYTES:
        return _fail(name, shown + ": the next writes may be refused", fix)
    if left < 10 * DISK_FAIL_BYTES:
        return _warn(name, shown, fix)
    return _ok(name, shown)
