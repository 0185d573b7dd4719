"""Staff log-in, log-out and the deny-by-default guard."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from portal import crypto
from portal.models import StaffUser
from portal.services import staff as staff_service
from portal.services.errors import InvalidCredentials
from portal.services.permissions import Permission, can
from portal.web import client, state
from portal.web.errors import csrf_recoverable
from portal.web.staff import bp
from portal.web.staff.forms import ActionForm, LoginForm

COOKIE = "portal_staff"
PATH = "/staff"
PUBLIC_ENDPOINTS = frozenset({"staff.login"})

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def requires(permission: Permission) -> Callable[[F], F]:
    def mark(view: F) -> F:
        view.required_permission = permission  # type: ignore[attr-defined]
        return view

    return mark


def current_staff() -> StaffUser:
    user: StaffUser = g.staff
    return user


def current_private_key() -> bytes:
    key: bytes = g.staff_key
    return key


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    cookie = request.cookies.get(COOKIE)
    user = None
    if cookie:
        session = state.db()
        try:
            user, g.staff_key = staff_service.resume_session(
                session, state.settings(), cookie, state.now()
            )
        except staff_service.SessionInvalid:
            user = None
        session.commit()  # keeps last_seen_at, or the deletion of an expired session
    if user is None:
        if request.method == "GET":
            return redirect(url_for("staff.login"))
        # A reply or note, or a reason for reopening a case, typed while the session ended.
        unsent = request.form.get("text", "") or request.form.get("reason", "")
        return render_template("errors/error.html", code=401, reason="login", unsent=unsent), 401
    g.staff = user
    view = current_app.view_functions.get(endpoint)
    permission = getattr(view, "required_permission", None)
    if permission is None or not can(user, permission):
        return render_template("errors/error.html", code=403, reason=None), 403
    return None


def _home_for(user: StaffUser) -> str:
    if can(user, Permission.CASES_LIST):
        return url_for("staff.cases")
    return url_for("staff.account")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        return render_template("staff/login.html", form=form)
    settings = state.settings()
    throttle = state.state().login_throttle
    client_key = client.throttle_key(throttle)
    email = staff_service.normalise_email(form.email.data or "")
    account_key = "account:" + crypto.keyed_digest(throttle.client_hmac_key(), email)
    limit = settings.login_max_failures
    if throttle.failures(client_key) >= limit or throttle.failures(account_key) >= limit:
        form.form_errors.append(
            _(
                "Too many failed log-ins. Wait %(minutes)d minutes and try again.",
                minutes=max(1, settings.login_window_seconds // 60),
            )
        )
        return render_template("staff/login.html", form=form), 429
    if form.validate_on_submit():
        session = state.db()
        try:
            user, private_key = staff_service.authenticate(
                session, settings, form.email.data, form.password.data
            )
        except InvalidCredentials:
            throttle.record_failure(client_key)
            throttle.record_failure(account_key)
            form.form_errors.append(_("Wrong e-mail or password."))
        else:
            throttle.reset(account_key)
            cookie = staff_service.start_session(session, user, private_key, state.now())
            session.commit()
            response = make_response(redirect(_home_for(user)))
            response.set_cookie(
                COOKIE,
                cookie,
                path=PATH,
                secure=settings.secure_cookies,
                httponly=True,
                samesite="Strict",
            )
            return response
    return render_template("staff/login.html", form=form), 400


csrf_recoverable("staff.login")


@bp.post("/logout")
@requires(Permission.ACCOUNT_READ)
def logout() -> ResponseReturnValue:
    form = ActionForm()
    response = make_response(redirect(url_for("staff.login")))
    if form.validate_on_submit():
        cookie = request.cookies.get(COOKIE, "")
        session = state.db()
        staff_service.end_session(session, cookie)
        session.commit()
        response.delete_cookie(
            COOKIE,
            path=PATH,
            secure=state.settings().secure_cookies,
            httponly=True,
            samesite="Strict",
        )
    return response
