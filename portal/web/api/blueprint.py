"""The API blueprint and its hooks (the bearer token, no-store), apart from the package so the
views can import it without importing the package that imports them."""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from flask.typing import ResponseReturnValue

from portal.errors import ApiTokenNotPermitted, InvalidApiToken
from portal.services.accounts import api_tokens
from portal.web import client, state
from portal.web.errors import api_error

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: Endpoints that answer without a token: the OpenAPI document describes shapes, not data, and
#: a tool needs it to learn how to authenticate.
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})

REALM = 'Bearer realm="portal-insights"'


def _unauthorized(message: str, invalid: bool) -> Response:
    response = api_error(401, message)
    response.headers["WWW-Authenticate"] = REALM + (', error="invalid_token"' if invalid else "")
    return response


@bp.before_request
def _authenticate() -> ResponseReturnValue | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return _unauthorized("Send a token in an 'Authorization: Bearer <token>' header.", False)
    throttle = state.state().api_throttle
    key = client.throttle_key(throttle)
    settings = state.settings()
    if throttle.failures(key) >= settings.api_max_failures:
        response = api_error(429, "Too many requests with a bad token. Try again later.")
        response.headers["Retry-After"] = str(settings.api_window_seconds)
        return response
    session = state.db()
    try:
        user = api_tokens.authenticate(session, value.strip(), state.today())
    except InvalidApiToken:
        throttle.record_failure(key)
        return _unauthorized("The token is unknown, revoked or expired.", True)
    except ApiTokenNotPermitted:
        return api_error(403, "The token's owner may not read insights.")
    session.commit()  # last_used_on, at most once a day
    g.api_user = user
    return None


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
