"""Mail and Redis: the services outside the database the portal talks to."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import redis

from portal.ops.doctor.core import CheckResult, _fail, _ok, _warn
from portal.ops.doctor.serving import LOOPBACK_HOSTS, _host
from portal.settings import Settings

#: How long a Redis ping may take before Redis counts as unreachable.
REDIS_TIMEOUT_SECONDS = 3.0


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
