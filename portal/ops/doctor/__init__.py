"""`portal doctor`: check a deployment and say what to fix.

Each check returns a ``CheckResult``: a status, what was found, and (unless OK) one plain
sentence saying what to do. The checks read; none of them writes to the database, the instance
folder or Redis, so the command is safe to run from monitoring every few minutes.

A check that needs something an earlier check found broken (the database checks need a reachable
database at the Alembic head) reports SKIP and names that check, instead of failing a second time
with a confusing error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.ops.doctor.audit_log import check_audit_head, check_backup
from portal.ops.doctor.capacity import (
    Machine,
    Server,
    check_argon2,
    check_argon2_pool,
    check_attachment_pool,
    this_machine,
)
from portal.ops.doctor.core import CheckResult, Report, Status, _skip
from portal.ops.doctor.database import check_database
from portal.ops.doctor.host import check_clock, check_disk_space
from portal.ops.doctor.instance import (
    check_secrets_mode,
    check_secrets_not_default,
    check_secrets_present,
)
from portal.ops.doctor.mail import check_mail, check_redis, redis_ping
from portal.ops.doctor.people import check_admin, check_demo_accounts, check_staffing
from portal.ops.doctor.policy import check_published_thresholds, check_threshold
from portal.ops.doctor.serving import (
    check_hsts,
    check_log_level,
    check_portal_url,
    check_proxy_hops,
    check_quick_exit,
    check_secure_cookies,
)
from portal.settings import Settings


def _database_checks(session: Session, settings: Settings, now: dt.datetime) -> list[CheckResult]:
    return [
        check_threshold(session),
        check_published_thresholds(session),
        check_staffing(session),
        check_admin(session),
        check_demo_accounts(session),
        check_backup(session, now, settings.doctor_backup_max_days),
        check_clock(session, now),
        check_audit_head(session, settings.instance_path),
    ]


DATABASE_CHECKS = (
    "anonymity-threshold",
    "insights-threshold",
    "queues-staffed",
    "admin",
    "demo-accounts",
    "backup",
    "clock",
    "audit-head",
)


def run(
    settings: Settings,
    engine: Engine,
    now: dt.datetime,
    https_headers: Mapping[str, str] | None,
    ping: Callable[[str], None] = redis_ping,
    *,
    machine: Machine | None = None,
    server: Server = Server(),  # noqa: B008 - a frozen dataclass, shared safely
) -> Report:
    """Every check, in the order the operator should fix them. ``machine``: this machine's
    unless given."""
    results = [
        check_secrets_present(settings.instance_path),
        check_secrets_mode(settings.instance_path),
        check_secrets_not_default(settings.instance_path),
    ]
    database = check_database(engine)
    results.extend(database)
    results.append(check_disk_space(engine))
    if all(r.status is Status.OK for r in database):
        with Session(engine) as session:
            results.extend(_database_checks(session, settings, now))
            session.rollback()  # nothing is written; make it explicit
    else:
        results.extend(
            _skip(n, "the database is not reachable or not migrated") for n in DATABASE_CHECKS
        )
    results.extend(
        [
            check_secure_cookies(settings),
            check_portal_url(settings),
            check_hsts(https_headers),
            check_mail(settings),
            check_redis(settings, ping),
            check_argon2(settings),
            check_argon2_pool(settings, machine or this_machine(), server),
            check_attachment_pool(settings, machine or this_machine(), server),
            check_proxy_hops(settings),
            check_quick_exit(settings),
            check_log_level(settings),
        ]
    )
    return Report(tuple(results))
