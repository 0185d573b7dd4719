"""Response headers and the request guards every page gets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import SecurityError
from werkzeug.routing import IntegerConverter, Map

from portal.settings import Settings
from portal.web import state

# DESIGN.md invariant 7: no inline script, no other origin, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
# A year, without includeSubDomains or preload: the portal cannot know what else runs under the
# organisation's domain. Only on requests that arrived over HTTPS (RFC 6797 section 7.2: a
# browser ignores it over plain HTTP, and sending it on a loopback development server would pin
# localhost to HTTPS for every other project).
HSTS = "max-age=31536000"


#: The largest id an ``<int:...>`` URL part may name: PostgreSQL's ``integer`` (SQLite's is
#: wider). A larger number names no row; left unchecked it overflowed the query's parameter and
#: the request ended in a 500 instead of a 404.
MAX_URL_INT = 2**31 - 1


class DatabaseIntConverter(IntegerConverter):
    """``<int:...>`` bounded to the database's integer range unless the rule sets a ``max``."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_URL_INT)
        super().__init__(url_map, *args, **kwargs)


def _headers(response: Response) -> Response:
    # A response may carry a stricter policy of its own (an attachment download: sandbox).
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.is_secure:
        # Behind a proxy that terminates TLS, gunicorn marks the request secure when the proxy
        # sends X-Forwarded-Proto: https from an address in forwarded_allow_ips.
        response.headers["Strict-Transport-Security"] = HSTS
    if not response.headers.get("Cache-Control"):
        # Pages carry case data or receipts: never keep them in a cache or the history store.
        response.headers["Cache-Control"] = "no-store"
    return response


def _refuse_untrusted_host() -> ResponseReturnValue | None:
    """Flask compares the Host header with ``TRUSTED_HOSTS`` as the request arrives and keeps a
    refusal for routing to raise; answer it here, before any other hook (the CSRF check, the
    staff guard) reads the request, with a page that builds no link (there is no URL adapter
    for a refused host) and names no host."""
    if isinstance(request.routing_exception, SecurityError):
        return render_template("errors/untrusted_host.html"), 400
    return None


def _is_this_portal(host: str | None) -> bool:
    if host and ":" in host:
        host = f"[{host}]"
    return host in state.settings().trusted_hosts


def _location_as_path(response: Response) -> Response:
    """Every redirect to this portal is a path with its query, never an address built from
    the Host header (Werkzeug's trailing-slash 308 and the merged-slashes redirect are), so no
    forged or proxy-rewritten name can ever reach a browser or a cache. A Location on another
    host (the quick exit's neutral page) is left as configured. A path that a browser would
    read as another host (``//host``, ``/\\host``) loses its extra slashes."""
    location = response.headers.get("Location")
    if not location:
        return response
    parts = urlsplit(location)
    if parts.netloc and not _is_this_portal(parts.hostname):
        return response
    if parts.scheme or parts.netloc or location.startswith(("//", "/\\")):
        path = "/" + parts.path.lstrip("/\\")
        response.headers["Location"] = urlunsplit(("", "", path, parts.query, parts.fragment))
    return response


def init_host_check(app: Flask, settings: Settings) -> None:
    """Before any other extension adds its hooks, so that the host check runs first."""
    app.config["TRUSTED_HOSTS"] = list(settings.trusted_hosts)
    app.before_request(_refuse_untrusted_host)
    app.after_request(_location_as_path)


def _require_initialised() -> tuple[str, int] | None:
    if state.state().secrets is None:
        return render_template("errors/not_initialised.html"), 503
    return None


def init_app(app: Flask) -> None:
    """Before any blueprint is registered: the converter applies to the rules as they are added."""
    app.url_map.converters["int"] = DatabaseIntConverter
    app.before_request(_require_initialised)
    app.after_request(_headers)
