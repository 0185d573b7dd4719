"""How the portal is served: its address, cookies and HSTS, the proxies in front, the quick
exit, the log level."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from portal.ops.doctor.core import CheckResult, _fail, _ok, _skip, _warn
from portal.settings import Settings

#: The header a request that arrived over HTTPS must carry (see ``portal.web.security``).
HSTS_MIN_MAX_AGE = 31_536_000
#: Hosts that mean "this machine": plain HTTP and insecure cookies are tolerated there only.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


#: How many reverse proxies a deployment plausibly has, each appending to the header below:
#: nginx (1), and a load balancer in front of it (2).
PLAUSIBLE_PROXY_HOPS = 2
#: The header those proxies append the client's address to, named in doctor's messages.
XFF = "X-Forwarded-For"  # invariant-ok: a name in messages; doctor reads no request


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
