"""`portal doctor`: check a deployment and say what to fix.

Each check returns a ``CheckResult``: a status, what was found, and (unless OK) one plain
sentence saying what to do. The checks read; none of them writes to the database, the instance
folder or Redis, so the command is safe to run from monitoring every few minutes.

A check that needs something an earlier check found broken (the database checks need a reachable
database at the Alembic head) reports SKIP and names that check, instead of failing a second time
with a confusing error.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import shutil
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, Select, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from portal.db import AUDIT_KEY
from portal.instance import SECRET_FILES, SecretsMissing, load_secrets
from portal.models import (
    AuditEvent,
    AuditHead,
    InsightRelease,
    Policy,
    Queue,
    QueueMembership,
    Role,
    SignalAlert,
    StaffRole,
    StaffUser,
)
from portal.ops import backup, migrate
from portal.runtime.serving import WORKER_TIMEOUT_SECONDS
from portal.services.audit import chain as audit
from portal.services.configuration.policy import MIN_THRESHOLD, POLICY_ID, PolicyValues
from portal.settings import (
    PRODUCTION_ARGON2,
    Argon2Cost,
    Settings,
    auto_argon2_pool_size,
    auto_attachment_pool_size,
    memory_limit_bytes,
    physical_memory_bytes,
    total_memory_bytes,
    usable_cpus,
)

#: The audit action `portal backup` records. Doctor finds backups by this exact string (it does
#: not import the backup code), so the two must stay equal: a test pins it here.
#: The e-mail domain of the accounts `portal demo` creates, whose password and TOTP secret are
#: printed in the code and the README (equal to ``portal.cli.main.DEMO_DOMAIN``; a test keeps
#: them so).
DEMO_DOMAIN = "demo.invalid"
#: The header a request that arrived over HTTPS must carry (see ``portal.web.security``).
HSTS_MIN_MAX_AGE = 31_536_000
#: Hosts that mean "this machine": plain HTTP and insecure cookies are tolerated there only.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: How long a Redis ping may take before Redis counts as unreachable.
REDIS_TIMEOUT_SECONDS = 3.0
#: A secret with fewer distinct byte values than this is a pattern someone typed (b"a" * 32,
#: b"\\0" * 32, a repeated word), never the output of ``portal init``: 32 random bytes have
#: about 30 distinct values, and fewer than 16 happens with probability below 10^-20.
MIN_DISTINCT_SECRET_BYTES = 16
#: The most Argon2 computations one request runs, one after the other, each taking its own slot
#: of the pool (so it may wait ``argon2_wait_seconds`` for each): a password change verifies the
#: current password, wraps the key under the new one and hashes the new one. A test counts them.
ARGON2_PER_REQUEST_MAX = 3
#: How much of the machine's memory the Argon2 computations may hold at worst before doctor
#: warns: the rest is for the workers themselves (about 150 MiB each), the database and the
#: uploads in flight (docs/deploy.md, "Sizing workers, threads and the Argon2 pool").
ARGON2_MEMORY_SHARE = 0.5
#: What a worker holds of its own (Python, the app, its database pool), counted in the memory
#: worst case of the attachment-pool check (docs/deploy.md: about 150 MiB; the attachments
#: benchmark's process held 120-180 MiB before any upload).
WORKER_BASE_BYTES = 150 * 1024 * 1024
#: How much of the machine's memory the workers may hold at worst, with every Argon2 and
#: cleaning slot taken and every thread holding an upload, before doctor warns: the rest is for
#: the database, the proxy (which buffers request bodies too) and the system.
WORKERS_MEMORY_SHARE = 0.75
#: The slot waits a concern with files may go through, one after the other: an Argon2 slot for
#: the access code (when one is set), a cleaning slot, an Argon2 slot for the receipt's key.
ARGON2_WAITS_WITH_FILES = 2
#: How many reverse proxies a deployment plausibly has, each appending to the header below:
#: nginx (1), and a load balancer in front of it (2).
PLAUSIBLE_PROXY_HOPS = 2
#: The header those proxies append the client's address to, named in doctor's messages.
XFF = "X-Forwarded-For"  # invariant-ok: a name in messages; doctor reads no request


class Status(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Report:
    checks: tuple[CheckResult, ...]

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when nothing FAILs (WARN and SKIP alone are 0), 1 otherwise."""
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        return {s.value: sum(c.status is s for c in self.checks) for s in Status}

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": not self.failed,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "checks": [c.as_dict() for c in self.checks],
        }


def _ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.OK, message)


def _warn(name: str, message: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.WARN, message, fix)


def _fail(name: str, message: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, message, fix)


def _skip(name: str, because: str) -> CheckResult:
    return CheckResult(
        name,
        Status.SKIP,
        f"not checked: {because}",
        "fix what the failing check reports, then run `portal doctor` again",
    )


# --- instance secrets -----------------------------------------------------------------------------


def check_secrets_present(instance_path: Path) -> CheckResult:
    name = "secrets"
    problems = []
    for secret in SECRET_FILES:
        path = instance_path / secret
        try:
            raw = base64.b64decode(path.read_text().strip(), validate=True)
        except FileNotFoundError:
            problems.append(f"{secret} is missing")
            continue
        except PermissionError:
            problems.append(f"{secret} cannot be read by this user")
            continue
        except (binascii.Error, ValueError):
            problems.append(f"{secret} is not base64")
            continue
        if len(raw) < 32:
            problems.append(f"{secret} is shorter than 32 bytes")
    if problems:
        return _fail(
            name,
            f"instance secrets in {instance_path}: {'; '.join(problems)}",
            "run `portal init` as the portal's user on a new installation; on one that holds"
            " cases, restore the secret files from the backup (a new pepper orphans every"
            " receipt)",
        )
    return _ok(name, f"{', '.join(SECRET_FILES)} present in {instance_path}")


def check_secrets_mode(instance_path: Path) -> CheckResult:
    """Only the owner may read the secret files (mode 0600 or stricter); the folder, which also
    holds the SQLite database, should be closed to others too (0700)."""
    name = "secrets-mode"
    open_files = []
    for secret in SECRET_FILES:
        path = instance_path / secret
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue  # missing: the "secrets" check says so
        if mode & 0o077:
            open_files.append(f"{secret} is mode {mode:04o}")
    if open_files:
        paths = " ".join(str(instance_path / s.split()[0]) for s in open_files)
        return _fail(
            name,
            f"group or others may read instance secrets: {'; '.join(open_files)}",
            f"run `chmod 600 {paths}` (and check who could have copied them meanwhile)",
        )
    try:
        folder = stat.S_IMODE(instance_path.stat().st_mode)
    except OSError:
        return _skip(name, "the instance folder is missing")
    if folder & 0o077:
        return _warn(
            name,
            f"the instance folder {instance_path} is mode {folder:04o}: others can list it and"
            " read whatever else is kept there (such as the SQLite database)",
            f"run `chmod 700 {instance_path}`",
        )
    return _ok(name, "secret files readable by their owner only, instance folder closed to others")


def weak_secret_reason(raw: bytes) -> str | None:
    """Why ``raw`` is a known demo, test or hand-made value rather than 32 random bytes."""
    if len(set(raw)) < MIN_DISTINCT_SECRET_BYTES:
        return "is a repeated pattern (such as the same byte 32 times), not random bytes"
    if all(0x20 <= b < 0x7F for b in raw):
        return "is readable text (a typed password or placeholder), not random bytes"
    return None


def check_secrets_not_default(instance_path: Path) -> CheckResult:
    name = "secrets-default"
    values: dict[str, bytes] = {}
    for secret in SECRET_FILES:
        try:
            values[secret] = base64.b64decode(
                (instance_path / secret).read_text().strip(), validate=True
            )
        except (OSError, binascii.Error, ValueError):
            return _skip(name, "instance secrets missing or unreadable")
    problems = []
    for secret, raw in values.items():
        reason = weak_secret_reason(raw)
        if reason:
            problems.append(f"{secret} {reason}")
    seen: dict[bytes, str] = {}
    for secret, raw in values.items():
        if raw in seen:
            problems.append(f"{secret} is the same as {seen[raw]}")
        seen.setdefault(raw, secret)
    if problems:
        return _fail(
            name,
            "; ".join(problems),
            "before the portal holds any case, delete those files and run `portal init` to"
            " create random ones; if it already holds cases, keep the pepper (a new one orphans"
            " every receipt), replace only secret_key as docs/configuration.md describes, and"
            " plan a migration",
        )
    return _ok(name, "instance secrets are random (no repeated pattern, text or shared value)")


# --- database -------------------------------------------------------------------------------------


def check_database(engine: Engine) -> list[CheckResult]:
    """Reachable, and migrated to the Alembic head this code ships."""
    where = engine.url.render_as_string(hide_password=True)
    sqlite_file = engine.url.database if engine.dialect.name == "sqlite" else None
    if sqlite_file and sqlite_file != ":memory:" and not Path(sqlite_file).exists():
        # Connecting would create an empty file: doctor writes nothing.
        return [
            _fail(
                "database",
                f"there is no SQLite database at {sqlite_file}",
                "run `portal init`, or set database_url to the production database",
            ),
            _skip("migrations", "the database is not reachable"),
        ]
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = type(getattr(error, "orig", None) or error).__name__
        return [
            _fail(
                "database",
                f"cannot connect to {where} ({reason})",
                "check database_url, that the database server is running and reachable from"
                " this host, and the database user's password (PORTAL_DATABASE_URL)",
            ),
            _skip("migrations", "the database is not reachable"),
        ]
    reachable = _ok("database", f"connected to {where}")
    head = migrate.head_revision(engine)
    current = migrate.current_revision(engine)
    if current is None:
        return [
            reachable,
            _fail(
                "migrations",
                "the database has no schema (no Alembic revision)",
                "run `portal init`, which creates the schema and loads the taxonomy",
            ),
        ]
    if current == head:
        return [reachable, _ok("migrations", f"at the Alembic head {head}")]
    try:
        ScriptDirectory.from_config(migrate.alembic_config(engine)).get_revision(current)
    except CommandError:
        return [
            reachable,
            _fail(
                "migrations",
                f"the database is at revision {current}, which this code does not know"
                f" (its head is {head}): it was migrated by a newer release",
                "deploy the release that migrated this database (downgrading the code under a"
                " newer schema loses data)",
            ),
        ]
    return [
        reachable,
        _fail(
            "migrations",
            f"the database is at revision {current}, behind the head {head}",
            "back up the database, then run `portal init` (it applies the missing migrations"
            " and changes nothing else)",
        ),
    ]


# --- the organisation's policy and what has been published under it -------------------------------


def check_threshold(session: Session) -> CheckResult:
    """The anonymity threshold (and the signal threshold that must not undercut it) as stored.
    The admin console and the taxonomy loader refuse values below 3; this catches a value set
    directly in the database."""
    name = "anonymity-threshold"
    row = session.get(Policy, POLICY_ID)  # read only: policy.current() would insert the row
    k = row.anonymity_threshold if row else PolicyValues.anonymity_threshold
    signal = row.signal_threshold if row else PolicyValues.signal_threshold
    if k < MIN_THRESHOLD:
        return _fail(
            name,
            f"the anonymity threshold is {k}: reports may show groups of {k} concerns or fewer,"
            f" which can identify reporters (never below {MIN_THRESHOLD})",
            f"set anonymity_threshold to {MIN_THRESHOLD} or more in the admin console"
            f" (Policy) or in the taxonomy file's [policy] table (default 5)",
        )
    if signal < max(k, MIN_THRESHOLD):
        return _fail(
            name,
            f"the signal threshold is {signal}, below the anonymity threshold {k}: an alert"
            " would name a group smaller than any report may show",
            f"set signal_threshold to at least {max(k, MIN_THRESHOLD)} in the admin console"
            " (Policy)",
        )
    source = "policy" if row else "default policy (no policy row yet)"
    return _ok(name, f"{source}: anonymity threshold {k}, signal threshold {signal}")


def check_published_thresholds(session: Session) -> CheckResult:
    """Insight releases and signal alerts keep the threshold they were computed with; one below
    3 means figures or alerts for too small a group are already visible."""
    name = "insights-threshold"
    releases = list(
        session.scalars(
            select(InsightRelease.period)
            .where(InsightRelease.threshold < MIN_THRESHOLD)
            .order_by(InsightRelease.period)
            .distinct()
        )
    )
    alerts = session.scalar(
        select(func.count()).select_from(SignalAlert).where(SignalAlert.threshold < MIN_THRESHOLD)
    )
    if releases or alerts:
        found = []
        if releases:
            found.append(f"insight releases of {', '.join(releases)}")
        if alerts:
            found.append(f"{alerts} signal alert(s)")
        return _fail(
            name,
            f"{' and '.join(found)} were computed with a threshold below {MIN_THRESHOLD}",
            "raise the anonymity threshold, delete those rows from insight_releases (and"
            " signal_alerts) and run `portal insights refresh`, which recomputes them with the"
            " current threshold",
        )
    return _ok(name, f"every published insight and alert used a threshold of {MIN_THRESHOLD}+")


# --- transport security ---------------------------------------------------------------------------


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def is_loopback_url(url: str) -> bool:
    return bool(url) and _host(url) in LOOPBACK_HOSTS


def check_secure_cookies(settings: Settings) -> CheckResult:
    name = "secure-cookies"
    if settings.secure_cookies:
        return _ok(name, "cookies are marked Secure (sent over HTTPS only)")
    if is_loopback_url(settings.portal_url) and settings.portal_url.startswith("http://"):
        return _ok(name, "secure_cookies is off, for plain-HTTP development on loopback")
    return _fail(
        name,
        "secure_cookies is off: staff and reporter session cookies would also travel over"
        " plain HTTP",
        "set secure_cookies = true (or remove PORTAL_SECURE_COOKIES=false); it may be off"
        " only for development at http://localhost",
    )


def check_portal_url(settings: Settings) -> CheckResult:
    name = "portal-url"
    url = settings.portal_url
    if not url:
        return _warn(
            name,
            "portal_url is empty: mails carry no link, the portal answers only at localhost"
            " and 127.0.0.1 (any other host name gets a 400), and doctor cannot tell whether"
            " the portal is served over HTTPS",
            "set portal_url to the portal's public https:// address",
        )
    if url.startswith("https://"):
        return _ok(name, f"portal_url uses HTTPS ({url})")
    if is_loopback_url(url):
        return _warn(
            name,
            f"portal_url {url} is plain HTTP on loopback: fine for development, not for staff"
            " or reporters",
            "serve the portal over HTTPS and set portal_url to its https:// address",
        )
    return _fail(
        name,
        f"portal_url {url} is plain HTTP: receipts, passwords and cookies would cross the"
        " network readable",
        "terminate TLS in front of the portal and set portal_url to its https:// address",
    )


def check_hsts(https_headers: Mapping[str, str] | None) -> CheckResult:
    """``https_headers``: the headers the application answered a request that arrived over HTTPS
    with (the command makes that request in-process), or None when it could not be made."""
    name = "hsts"
    if https_headers is None:
        return _skip(name, "no request could be made to the application")
    value = next(
        (v for k, v in https_headers.items() if k.lower() == "strict-transport-security"), ""
    )
    max_age = None
    for part in value.split(";"):
        key, _, number = part.strip().partition("=")
        if key.lower() == "max-age" and number.strip().isdigit():
            max_age = int(number)
    if max_age is None:
        return _fail(
            name,
            "a request over HTTPS gets no Strict-Transport-Security header",
            "deploy a release whose portal/web/security.py sends it, or set"
            f" `Strict-Transport-Security: max-age={HSTS_MIN_MAX_AGE}` at the TLS proxy",
        )
    if max_age < HSTS_MIN_MAX_AGE:
        return _warn(
            name,
            f"Strict-Transport-Security max-age is {max_age} seconds, under a year",
            f"send max-age={HSTS_MIN_MAX_AGE} or more",
        )
    return _ok(
        name,
        f"requests over HTTPS get Strict-Transport-Security: {value} (the TLS proxy must send"
        " X-Forwarded-Proto: https for the portal to see them as HTTPS)",
    )


# --- mail, Redis ----------------------------------------------------------------------------------


def check_mail(settings: Settings) -> CheckResult:
    name = "mail"
    if not settings.smtp_host or not settings.smtp_from:
        return _warn(
            name,
            "smtp_host or smtp_from is not set: `portal notify` and `portal sla-check` only print"
            " their messages, so ombudspersons hear of no new case and no deadline",
            "set smtp_host, smtp_from (and smtp_username with PORTAL_SMTP_PASSWORD if the"
            " server needs a log-in)",
        )
    if not settings.smtp_starttls and _host(f"//{settings.smtp_host}") not in LOOPBACK_HOSTS:
        return _warn(
            name,
            f"smtp_starttls is off for {settings.smtp_host}: mails and the SMTP password cross"
            " the network in the clear",
            "set smtp_starttls = true, or relay through an MTA on loopback",
        )
    return _ok(
        name, f"mail goes to {settings.smtp_host}:{settings.smtp_port} from {settings.smtp_from}"
    )


def redis_ping(url: str) -> None:
    """Raise if Redis at ``url`` does not answer PING within the timeout."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def check_redis(settings: Settings, ping: Callable[[str], None] = redis_ping) -> CheckResult:
    name = "redis"
    if not settings.redis_url:
        # Said plainly, since it decides what a limit means: one server's workers share their
        # counters (memory made before the fork, portal/runtime/serving.py); two servers count
        # apart.
        return _ok(
            name,
            "redis_url is empty: rate-limit counters are kept in memory shared by the workers"
            " of one `portal serve`; several app servers would each count apart",
        )
    # Never print the URL itself: it may carry a password.
    parts = urlsplit(settings.redis_url)
    where = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path
    try:
        ping(settings.redis_url)
    except (redis.RedisError, OSError, ValueError) as error:
        return _fail(
            name,
            f"Redis at {where} does not answer ({type(error).__name__}): each app server"
            " now counts rate limits on its own (a client gets each server's allowance), and"
            " goes back to Redis when it answers",
            "start Redis or correct redis_url (PORTAL_REDIS_URL); leave it empty to count in"
            " each app server's memory",
        )
    return _ok(name, f"Redis at {where} answers")


# --- costs, people, backups, the quick exit, logging ----------------------------------------------


def _weaker(cost: Argon2Cost, floor: Argon2Cost) -> bool:
    return (
        cost.time_cost < floor.time_cost
        or cost.memory_kib < floor.memory_kib
        or cost.parallelism < floor.parallelism
    )


def check_argon2(settings: Settings) -> CheckResult:
    name = "argon2"
    floor = PRODUCTION_ARGON2
    weak = [
        f"{prefix}_* is t={cost.time_cost}, m={cost.memory_kib} KiB, p={cost.parallelism}"
        for prefix, cost in (("kdf", settings.kdf_cost), ("password", settings.password_cost))
        if _weaker(cost, floor)
    ]
    wanted = f"t={floor.time_cost}, m={floor.memory_kib} KiB, p={floor.parallelism}"
    if weak:
        return _fail(
            name,
            f"Argon2id costs below the production defaults ({wanted}): {'; '.join(weak)}",
            "remove the kdf_* and password_* overrides (the defaults are RFC 9106's second"
            " option) or raise them to at least those values",
        )
    return _ok(name, f"Argon2id costs at or above {wanted}")


def _active_with_role(role: Role) -> Select[int]:
    return (
        select(StaffUser.id)
        .join(StaffRole, StaffRole.staff_id == StaffUser.id)
        .where(StaffUser.active, StaffRole.role == role.value)
    )


def check_staffing(session: Session) -> CheckResult:
    """Every queue has an active ombudsperson. An empty fallback queue stops intake of every
    concern whose own queue is empty; an empty other queue sends its concerns to the fallback
    queue, to people the reporter may not have expected."""
    name = "queues-staffed"
    staffed = set(
        session.scalars(
            select(QueueMembership.queue_id)
            .where(QueueMembership.staff_id.in_(_active_with_role(Role.OMBUDSPERSON)))
            .distinct()
        )
    )
    queues = list(session.scalars(select(Queue).order_by(Queue.slug)))
    if not queues:
        return _fail(name, "there are no queues", "run `portal init` to load the taxonomy")
    empty = [q for q in queues if q.id not in staffed]
    fallback_empty = [q for q in empty if q.is_fallback]
    if len(empty) == len(queues) or fallback_empty:
        names = ", ".join(q.slug for q in empty)
        return _fail(
            name,
            f"no active ombudsperson in {names}"
            + (" (the fallback queue): concerns cannot be accepted" if fallback_empty else ""),
            "add one with `portal create-staff EMAIL --role ombudsperson --queue SLUG` or"
            " `portal membership` for an existing account",
        )
    if empty:
        return _warn(
            name,
            f"no active ombudsperson in {', '.join(q.slug for q in empty)}: their concerns go to"
            " the fallback queue",
            "add an ombudsperson to each of those queues (`portal membership`), or route"
            " nothing to them",
        )
    return _ok(name, f"each of the {len(queues)} queues has an active ombudsperson")


def check_admin(session: Session) -> CheckResult:
    name = "admin"
    count = session.scalar(
        select(func.count()).select_from(_active_with_role(Role.ADMIN).subquery())
    )
    if not count:
        return _fail(
            name,
            "no active admin account: nobody can change the configuration or read the audit log"
            " in the console",
            "create one with `portal create-staff EMAIL --role admin`",
        )
    return _ok(name, f"{count} active admin account(s)")


def check_demo_accounts(session: Session) -> CheckResult:
    name = "demo-accounts"
    demo = list(
        session.scalars(
            select(StaffUser.email)
            .where(StaffUser.active, StaffUser.email.endswith("@" + DEMO_DOMAIN))
            .order_by(StaffUser.email)
        )
    )
    if demo:
        return _fail(
            name,
            f"{len(demo)} active demo account(s) ({', '.join(demo[:3])}"
            f"{', ...' if len(demo) > 3 else ''}): their password and second factor are public",
            "this database was loaded with `portal demo`: start production from a fresh database"
            " with `portal init`, or at least disable them with `portal staff disable EMAIL`",
        )
    return _ok(name, "no demo account")


def check_backup(session: Session, now: dt.datetime, max_days: int) -> CheckResult:
    """The age of the last ``portal backup`` (its audit event)."""
    name = "backup"
    last = backup.last_backup(session)
    fix = (
        f"run `portal backup` (and schedule it at least every {max_days} days), keeping the"
        " instance secrets with the copy"
    )
    if last is None:
        return _warn(name, "no backup is recorded in the audit log", fix)
    age = now - last
    when = last.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if age > dt.timedelta(days=max_days):
        return _warn(
            name, f"the last recorded backup is {age.days} days old ({when}), over {max_days}", fix
        )
    return _ok(name, f"last backup {when}")


def check_quick_exit(settings: Settings) -> CheckResult:
    name = "quick-exit"
    target = _host(settings.quick_exit_url)
    if settings.portal_url and target == _host(settings.portal_url):
        return _fail(
            name,
            f"quick_exit_url {settings.quick_exit_url} points at the portal itself: 'Leave this"
            " site quickly' would leave the portal in the browser's history and on screen",
            "set quick_exit_url to a neutral site that says nothing about speaking up (default"
            " https://www.wikipedia.org/)",
        )
    if not settings.portal_url:
        return _ok(name, f"quick exit goes to {target} (portal_url empty: not compared)")
    return _ok(name, f"quick exit goes to {target}, another site")


def check_log_level(settings: Settings) -> CheckResult:
    name = "log-level"
    level = settings.log_level.upper()
    if level != "DEBUG":
        return _ok(name, f"log level {level}")
    if is_loopback_url(settings.portal_url):
        return _warn(
            name,
            "log level DEBUG: acceptable on a development portal at localhost only",
            'set log_level = "INFO" before serving staff or reporters',
        )
    return _fail(
        name,
        "log level DEBUG in production: debug output of the portal and its libraries goes to"
        " the logs, which are kept longer and read by more people than the database",
        'set log_level = "INFO" (PORTAL_LOG_LEVEL)',
    )


# --- the Argon2 pool and the client address -------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What doctor knows of the machine it runs on (the app server's, when run there)."""

    memory_bytes: int  # what the portal may use: 0 where the system does not say
    memory_source: str  # what that figure is, for the message
    cpus: int
    # What the automatic pool size is computed from, as the app computes it
    # (``settings.total_memory_bytes``: the physical memory or a container's limit, the lower).
    physical_bytes: int


@dataclass(frozen=True)
class Server:
    """How `portal serve` runs the workers, as the operator tells doctor (``--workers`` and
    ``--threads``); None where not told."""

    workers: int | None = None
    threads: int | None = None


def _meminfo_total(path: Path = Path("/proc/meminfo")) -> int:
    try:
        for row in path.read_text().splitlines():
            key, _, value = row.partition(":")
            if key == "MemTotal" and value.split() and value.split()[0].isdigit():
                return int(value.split()[0]) * 1024  # /proc/meminfo counts in kB = KiB
    except OSError:
        pass
    return 0


def this_machine() -> Machine:
    memory, source = _meminfo_total() or physical_memory_bytes(), "the machine's memory"
    limit = memory_limit_bytes()
    if limit and (not memory or limit < memory):
        memory, source = limit, "the container's memory limit"
    return Machine(memory, source, usable_cpus(), total_memory_bytes())


def _size(count: int) -> str:
    mib = count / (1024 * 1024)
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def _argon2_memory_findings(
    settings: Settings, machine: Machine, server: Server, per_process: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """(failures, warnings, what the worst case is) of the memory Argon2 can hold at once."""
    cost = max(settings.kdf_memory_kib, settings.password_memory_kib) * 1024
    workers = server.workers or 1
    worst = workers * per_process * cost
    who = (
        f"{workers} worker(s) × {per_process} × {_size(cost)}"
        if server.workers
        else f"one worker process: {per_process} × {_size(cost)}"
    )
    summary = f"at worst {_size(worst)} of Argon2 memory at once ({who})"
    if not machine.memory_bytes:
        return [], [], summary + "; the machine's memory is unknown, so not compared"
    budget = int(machine.memory_bytes * ARGON2_MEMORY_SHARE)
    if worst <= budget:
        return [], [], f"{summary}, of {_size(machine.memory_bytes)} ({machine.memory_source})"
    fits = budget // (workers * cost)
    fix = (
        f"set argon2_max_concurrent = {fits} (PORTAL_ARGON2_MAX_CONCURRENT)"
        + (" or run fewer workers" if server.workers else "")
        if fits >= 1
        else f"run at most {max(1, budget // cost)} worker(s), or give the machine more memory"
        " (keep the Argon2 costs: lowering them weakens every receipt and password)"
    )
    fix += (
        f": workers × argon2_max_concurrent × {_size(cost)} should stay under half of"
        f" {_size(machine.memory_bytes)} (docs/deploy.md, sizing)"
    )
    if worst > machine.memory_bytes:
        problem = (
            f"{summary}: more than {machine.memory_source} ({_size(machine.memory_bytes)}); a"
            " burst of log-ins or receipts would make it swap or kill the portal"
        )
        return [(problem, fix)], [], summary
    problem = (
        f"{summary}: more than half of {machine.memory_source} ({_size(machine.memory_bytes)}),"
        " leaving little for the workers themselves, the database and uploads in flight"
    )
    return [], [(problem, fix)], summary


def _beyond_cpus(setting: str, pool: int, machine: Machine, what: str) -> tuple[str, str]:
    """The warning for an explicit pool bound above the number of CPUs."""
    return (
        f"{setting} is {pool}, more than the {machine.cpus} CPU(s): {what} beyond one per CPU"
        " run no faster, they only hold their memory longer",
        f"set {setting} to {machine.cpus} or less, or 0 (automatic)",
    )


def _no_wait(setting: str, slot: str, what: str) -> tuple[str, str]:
    """The warning for a pool whose requests do not wait for a slot."""
    return (
        f"{setting} is 0: when every {slot} slot of a worker is busy, {what} gets the 'busy'"
        " page at once instead of waiting a moment for its turn",
        f"set {setting} = 10 (the default)",
    )


def _pool_verdict(
    name: str, fails: list[tuple[str, str]], warns: list[tuple[str, str]], summary: str
) -> CheckResult | None:
    """FAIL or WARN with every problem and its fix (the memory summary added for context), or
    None when there is none."""
    if not fails and not warns:
        return None
    found = fails + warns
    problems = [problem for problem, _fix in found]
    if not any(summary in problem for problem in problems):
        problems.append(summary)
    return (_fail if fails else _warn)(
        name, "; ".join(problems), "; ".join(dict.fromkeys(fix for _problem, fix in found))
    )


def _workers_hint(server: Server) -> str:
    if server.workers:
        return ""
    return " (pass --workers and --threads as given to `portal serve` to count every worker)"


def check_argon2_pool(settings: Settings, machine: Machine, server: Server) -> CheckResult:
    """The bound on concurrent Argon2 computations (``argon2_max_concurrent``, per process) and
    how long a request waits for a slot (``argon2_wait_seconds``), against the machine's memory,
    its CPUs and gunicorn's worker timeout."""
    name = "argon2-pool"
    automatic = settings.argon2_max_concurrent == 0
    cost_kib = max(settings.kdf_memory_kib, settings.password_memory_kib)
    pool = settings.argon2_max_concurrent or auto_argon2_pool_size(
        cost_kib, machine.physical_bytes, machine.cpus
    )
    # A worker never runs more computations at once than it serves requests.
    per_process = pool if server.threads is None else min(pool, server.threads)
    fails, warns, summary = _argon2_memory_findings(settings, machine, server, per_process)
    wait = settings.argon2_wait_seconds
    longest = ARGON2_PER_REQUEST_MAX * wait
    # Only a worker that serves more requests at once than it has slots ever waits for one.
    waits = server.threads is None or server.threads > pool
    wait_fix = f"set argon2_wait_seconds to {WORKER_TIMEOUT_SECONDS // 2 // ARGON2_PER_REQUEST_MAX}"
    wait_fix += " or less (PORTAL_ARGON2_WAIT_SECONDS; the default is 10)"
    if waits and longest >= WORKER_TIMEOUT_SECONDS:
        fails.append(
            (
                f"argon2_wait_seconds is {wait}: a password change runs Argon2"
                f" {ARGON2_PER_REQUEST_MAX} times and may wait that long for each, {longest} s in"
                f" all, not less than gunicorn's {WORKER_TIMEOUT_SECONDS} s worker timeout: the"
                " person gets a proxy error and loses what they typed instead of the 'busy' page",
                wait_fix,
            )
        )
    elif waits and longest > WORKER_TIMEOUT_SECONDS // 2:
        warns.append(
            (
                f"argon2_wait_seconds is {wait}: a request may wait {longest} s for Argon2 slots"
                f" ({ARGON2_PER_REQUEST_MAX} computations), over half of gunicorn's"
                f" {WORKER_TIMEOUT_SECONDS} s worker timeout: under a burst, waiting requests"
                " pile up and hold the workers' threads",
                wait_fix,
            )
        )
    elif waits and wait == 0:
        warns.append(_no_wait("argon2_wait_seconds", "Argon2", "a log-in, receipt or concern"))
    if not automatic and pool > machine.cpus:
        warns.append(_beyond_cpus("argon2_max_concurrent", pool, machine, "computations"))
    verdict = _pool_verdict(name, fails, warns, summary)
    if verdict is not None:
        return verdict
    told = _workers_hint(server)
    setting = "automatic" if automatic else "argon2_max_concurrent"
    return _ok(
        name,
        f"each worker runs at most {per_process} Argon2 computation(s) at once ({setting}:"
        f" {pool}) and waits up to {wait} s for a slot; {summary}{told}",
    )


def _argon2_per_process(settings: Settings, machine: Machine, server: Server) -> int:
    cost_kib = max(settings.kdf_memory_kib, settings.password_memory_kib)
    pool = settings.argon2_max_concurrent or auto_argon2_pool_size(
        cost_kib, machine.physical_bytes, machine.cpus
    )
    return pool if server.threads is None else min(pool, server.threads)


def _workers_memory_findings(
    settings: Settings, machine: Machine, server: Server, per_process: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """(failures, warnings, what the worst case is) of the memory the workers may hold at once:
    every cleaning and Argon2 slot taken, every other thread holding a form's upload while it
    waits for a slot, and each worker's own."""
    form = settings.attachment_form_bytes
    upload = settings.max_request_bytes
    argon2_cost = max(settings.kdf_memory_kib, settings.password_memory_kib) * 1024
    argon2 = _argon2_per_process(settings, machine, server) * argon2_cost
    waiting = 0 if server.threads is None else max(0, server.threads - per_process)
    workers = server.workers or 1
    per_worker = per_process * form + waiting * upload + argon2 + WORKER_BASE_BYTES
    worst = workers * per_worker
    parts = [f"{per_process} × {_size(form)} cleaning forms"]
    if waiting:
        parts.append(f"{waiting} × {_size(upload)} uploads waiting")
    parts += [f"{_size(argon2)} Argon2", f"{_size(WORKER_BASE_BYTES)} its own"]
    who = f"{workers} worker(s)" if server.workers else "one worker process"
    summary = f"at worst {_size(worst)} held at once ({who} × ({' + '.join(parts)}))"
    if not machine.memory_bytes:
        return [], [], summary + "; the machine's memory is unknown, so not compared"
    budget = int(machine.memory_bytes * WORKERS_MEMORY_SHARE)
    if worst <= budget:
        return [], [], f"{summary}, of {_size(machine.memory_bytes)} ({machine.memory_source})"
    # The most slots per worker that stay within the budget: a thread that cleans holds a
    # form instead of an upload, so each slot adds (form - upload) where threads are known.
    others = argon2 + WORKER_BASE_BYTES + (0 if server.threads is None else server.threads * upload)
    step = form if server.threads is None else form - upload
    fits = (budget // workers - others) // step
    fix = (
        f"set attachment_max_concurrent = {fits} (PORTAL_ATTACHMENT_MAX_CONCURRENT)"
        + (" or run fewer workers or threads" if server.workers else "")
        if fits >= 1
        else "run fewer workers or threads, give the machine more memory, or allow fewer or"
        " smaller attachments (attachment_max_count, attachment_max_bytes)"
    )
    fix += (
        f": what the workers hold at worst should stay under"
        f" {WORKERS_MEMORY_SHARE:.0%} of {_size(machine.memory_bytes)} (docs/deploy.md, sizing)"
    )
    if worst > machine.memory_bytes:
        problem = (
            f"{summary}: more than {machine.memory_source} ({_size(machine.memory_bytes)}); a"
            " burst of uploads would make it swap or kill the portal"
        )
        return [(problem, fix)], [], summary
    problem = (
        f"{summary}: more than {WORKERS_MEMORY_SHARE:.0%} of {machine.memory_source}"
        f" ({_size(machine.memory_bytes)}), leaving little for the database, the proxy and the"
        " system"
    )
    return [], [(problem, fix)], summary


def check_attachment_pool(settings: Settings, machine: Machine, server: Server) -> CheckResult:
    """The bound on forms whose attachments are cleaned at once (``attachment_max_concurrent``,
    per process) and how long a form waits for a slot (``attachment_wait_seconds``), against
    the CPUs and gunicorn's worker timeout; and what the workers may hold at worst (cleaning,
    uploads waiting, Argon2 and their own) against the machine's memory."""
    name = "attachment-pool"
    if settings.attachment_max_count == 0:
        return _ok(name, "attachments are off (attachment_max_count = 0): nothing is cleaned")
    automatic = settings.attachment_max_concurrent == 0
    pool = settings.attachment_max_concurrent or auto_attachment_pool_size(
        settings.attachment_form_bytes, machine.physical_bytes, machine.cpus
    )
    # A worker never cleans more forms at once than it serves requests.
    per_process = pool if server.threads is None else min(pool, server.threads)
    fails, warns, summary = _workers_memory_findings(settings, machine, server, per_process)
    wait = settings.attachment_wait_seconds
    longest = wait + ARGON2_WAITS_WITH_FILES * settings.argon2_wait_seconds
    # Only a worker that serves more requests at once than it has slots ever waits for one.
    waits = server.threads is None or server.threads > pool
    how_long = (
        f"a concern with files may wait {wait} s for a cleaning slot and"
        f" {ARGON2_WAITS_WITH_FILES} × {settings.argon2_wait_seconds} s for Argon2 slots"
        f" (the access code, the receipt's key), {longest} s in all"
    )
    wait_fix = "set attachment_wait_seconds to 10 or less (PORTAL_ATTACHMENT_WAIT_SECONDS; the"
    wait_fix += " default is 10) and argon2_wait_seconds to 10 or less"
    if waits and longest >= WORKER_TIMEOUT_SECONDS:
        fails.append(
            (
                f"{how_long}, not less than gunicorn's {WORKER_TIMEOUT_SECONDS} s worker timeout:"
                " the reporter gets a proxy error and loses what they typed instead of the"
                " 'busy' page",
                wait_fix,
            )
        )
    elif waits and longest > WORKER_TIMEOUT_SECONDS // 2:
        warns.append(
            (
                f"{how_long}, over half of gunicorn's {WORKER_TIMEOUT_SECONDS} s worker timeout,"
                " on top of the cleaning itself (seconds for a large form)",
                wait_fix,
            )
        )
    elif waits and wait == 0:
        warns.append(_no_wait("attachment_wait_seconds", "cleaning", "a form with files"))
    if not automatic and pool > machine.cpus:
        warns.append(_beyond_cpus("attachment_max_concurrent", pool, machine, "cleanings"))
    verdict = _pool_verdict(name, fails, warns, summary)
    if verdict is not None:
        return verdict
    told = _workers_hint(server)
    setting = "automatic" if automatic else "attachment_max_concurrent"
    return _ok(
        name,
        f"each worker cleans at most {per_process} form(s) with attachments at once ({setting}:"
        f" {pool}, {_size(settings.attachment_form_bytes)} each at worst) and a form waits up"
        f" to {wait} s for a slot; {summary}{told}",
    )


def check_proxy_hops(settings: Settings) -> CheckResult:
    """``proxy_hops`` against what ``portal_url`` says of the deployment: an https:// address
    means a TLS proxy in front of gunicorn (``portal serve`` has no TLS), which must hand on the
    client's address for the per-client limits to tell clients apart."""
    name = "proxy-hops"
    hops = settings.proxy_hops
    url = settings.portal_url
    fix = (
        "set proxy_hops (PORTAL_PROXY_HOPS) to the number of proxies that each append the"
        f" client's address to {XFF}: 1 for nginx as in docs/deploy.md"
        f" (its `proxy_set_header {XFF}` line in config/nginx.conf.example), 2 with a load"
        " balancer in front"
        " that appends too; and let nothing but those proxies reach gunicorn"
    )
    if hops > PLAUSIBLE_PROXY_HOPS:
        return _warn(
            name,
            f"proxy_hops is {hops}, more proxies than a usual deployment has: if fewer than"
            f" {hops} proxies each append to {XFF}, the address read is one the client"
            " wrote, so a client can pick a new one for every request and escape the per-client"
            " limits on receipts, log-ins and concerns",
            fix,
        )
    if url.startswith("https://") and hops == 0:
        return _fail(
            name,
            "portal_url is https://, so a TLS proxy is in front of gunicorn, but proxy_hops is 0:"
            " every request seems to come from the proxy, so all reporters together may send"
            f" {settings.submit_max_per_client} concerns per"
            f" {settings.submit_client_window_seconds // 60} minutes and share one count of"
            " wrong receipts, and all staff one count of failed log-ins: one person can lock"
            " everyone out",
            fix,
        )
    if is_loopback_url(url) and url.startswith("http://") and hops > 0:
        return _warn(
            name,
            f"portal_url {url} is plain HTTP on this machine, so no proxy is in front, yet"
            f" proxy_hops is {hops}: any client can write its own address in {XFF}",
            f"set proxy_hops = 0 unless a proxy that sets {XFF} is in front",
        )
    if hops == 0:
        where = "portal_url is empty" if not url else f"portal_url is {url}"
        return _ok(name, f"proxy_hops is 0 ({where}): {XFF} is ignored")
    return _ok(
        name,
        f"proxy_hops is {hops}: the rate limits take the client's address {hops} entr"
        f"{'y' if hops == 1 else 'ies'} from the right of {XFF} (never stored)",
    )


# --- all together ---------------------------------------------------------------------------------


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


def check_audit_head(session: Session, instance_path: Path) -> CheckResult:
    """The audit log's head against its seal (an HMAC under the audit key, which is not in the
    database): rows cut from the tail, or a head rewritten without the key, no longer match."""
    name = "audit-head"
    try:
        key = load_secrets(instance_path).audit_key
    except (SecretsMissing, OSError, ValueError):
        return _skip(name, "the audit key cannot be read (see the secrets check)")
    session.info[AUDIT_KEY] = key
    try:
        anchor = audit.current_anchor(session)
    except audit.HeadUnsealed:
        head = session.get(AuditHead, audit.HEAD_ID)
        if head is not None and head.mac is None:
            return _warn(
                name,
                "the audit head is not sealed yet (a database from before the seal)",
                "nothing to do: the next audit event seals it (`audit.head_sealed`)",
            )
        return _fail(
            name,
            "the audit head does not match its seal: events may have been cut from the log, or"
            " the head was rewritten without the audit key",
            "run `portal audit verify --anchor` with the anchor of the latest admins' digest or"
            " backup, and restore from the newest backup that verifies",
        )
    finally:
        session.info.pop(AUDIT_KEY, None)
    return _ok(name, f"the audit head matches its seal (event {anchor.seq})")


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
    server: Server = Server(),
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
