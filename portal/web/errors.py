"""Error pages. None of them shows or logs request data."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, NotFound

from portal import crypto
from portal.errors import UnknownItem
from portal.services.attachments.store import AttachmentsBusy
from portal.web import transactions

log = logging.getLogger("portal.web")

#: Endpoints whose view re-renders its form with what was typed when the CSRF token failed,
#: so an expired form loses nothing (DESIGN.md invariant 8).
CSRF_RECOVERABLE: set[str] = set()


def csrf_recoverable(endpoint: str) -> None:
    CSRF_RECOVERABLE.add(endpoint)


def _csrf_error(error: CSRFError) -> ResponseReturnValue:
    if request.endpoint in CSRF_RECOVERABLE:
        g.csrf_failed = True
        # The CSRF check ran among the app-wide hooks, before the blueprint's own (the staff
        # log-in guard): run those now, so the view sees the same state as on a normal request.
        for name in reversed(request.blueprints):
            for hook in current_app.before_request_funcs.get(name, []):
                early = current_app.ensure_sync(hook)()
                if early is not None:
                    return early  # type: ignore[no-any-return]
        view = current_app.view_functions[request.endpoint]
        try:
            return current_app.ensure_sync(view)(**(request.view_args or {}))  # type: ignore[no-any-return]
        except UnknownItem as unknown:
            # Raised inside this handler, it would reach no other handler: answer it here.
            return _unknown_item(unknown)
    return _error_page(400, "csrf")


def _error_page(code: int, reason: str | None) -> ResponseReturnValue:
    return render_template("errors/error.html", code=code, reason=reason), code


def _is_api() -> bool:
    # By path, not blueprint: a 405 or 404 from routing has no blueprint yet.
    return request.path.startswith("/api/")


def api_error(code: int, message: str) -> Response:
    """The API's error body: JSON, never a page."""
    response = jsonify({"error": {"status": code, "message": message}})
    response.status_code = code
    return response


def _http_error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    if _is_api():
        response = api_error(code, error.name)
        allow = error.get_response().headers.get("Allow")
        if allow:
            response.headers["Allow"] = allow
        return response
    return _error_page(code, None)


def _unknown_item(_error: UnknownItem) -> ResponseReturnValue:
    """What a service did not find, or will not show this user (a case without its key), is
    the very 404 of an address that does not exist, so a handle or an id tells nothing."""
    return _http_error(NotFound())


#: What a 503 "busy" answer asks the client to wait, in seconds.
BUSY_RETRY_AFTER_SECONDS = 5


def _busy(error: crypto.Argon2Busy | AttachmentsBusy) -> ResponseReturnValue:
    """Every Argon2 slot of this process stayed taken (a burst of log-ins or receipts), or
    every attachment-cleaning slot. The forms that carry text a person typed catch this
    themselves and show it back; anywhere else (a password change, an admin's reset) the page
    says to try again, and nothing was saved."""
    pool = "Argon2" if isinstance(error, crypto.Argon2Busy) else "attachment cleaning"
    log.warning("%s pool busy on %s", pool, request.endpoint)
    if _is_api():
        response = api_error(503, "Service Unavailable")
    else:
        page = render_template("errors/error.html", code=503, reason="busy")
        response = current_app.make_response((page, 503))
    response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


#: Form fields that hold free text a person typed; shown back when the database could not take
#: it, so nothing typed is lost (never a password, a receipt or a token).
TYPED_TEXT_FIELDS = ("description", "text", "message", "reason", "contact_name", "contact_details")


def _database_unavailable(error: DBAPIError) -> ResponseReturnValue:
    """The database did not answer (restarting, unreachable) or could not write (disk full,
    locked too long). Nothing of this request was stored: its transaction is rolled back. The
    page says so in words, and shows back what the person typed; the next request tries a new
    connection (``pool_pre_ping``), so the portal recovers by itself when the database does."""
    full = "full" in str(getattr(error, "orig", "")).lower()
    # Only the kind of error: its text may quote a statement.
    log.warning(
        "database %s on %s (%s)",
        "full" if full else "unavailable",
        request.endpoint,
        type(getattr(error, "orig", error)).__name__,
    )
    transactions.discard()
    if _is_api():
        response = api_error(503, "Service Unavailable")
    else:
        typed = []
        if request.method == "POST":
            for name in TYPED_TEXT_FIELDS:
                value = request.form.get(name, "")
                if value.strip():
                    typed.append(value)
        page = render_template(
            "errors/error.html",
            code=503,
            reason="full" if full else "database",
            unsent="\n\n".join(typed),
        )
        response = current_app.make_response((page, 503))
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


#: What a 503 answer for an unreachable database asks the client to wait, in seconds.
DATABASE_RETRY_AFTER_SECONDS = 30


def _unexpected(error: Exception) -> ResponseReturnValue:
    # Logs the exception type and where, never the request (no address, no headers, no form).
    log.exception("unexpected error on %s", request.endpoint)
    if _is_api():
        return api_error(500, "Internal Server Error")
    return _error_page(500, None)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(UnknownItem, _unknown_item)
    app.register_error_handler(crypto.Argon2Busy, _busy)
    app.register_error_handler(AttachmentsBusy, _busy)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(InterfaceError, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
