"""Response headers and the request guards every page gets."""

from __future__ import annotations

from flask import Flask, Response, render_template, request

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
    app.before_request(_require_initialised)
    app.after_request(_headers)
