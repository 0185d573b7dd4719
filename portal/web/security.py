"""Response headers and the request guards every page gets."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.routing import IntegerConverter, Map

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


def _require_initialised() -> tuple[str, int] | None:
    if state.state().secrets is None:
        return render_template("errors/not_initialised.html"), 503
    return None


def init_app(app: Flask) -> None:
    """Before any blueprint is registered: the converter applies to the rules as they are added."""
    app.url_map.converters["int"] = DatabaseIntConverter
    app.before_request(_require_initialised)
    app.after_request(_headers)
