"""Staff log-in (password, then the second factor or its enrolment), log-out, and the
deny-by-default guard.

The guard admits a request only with a live session whose stage the view accepts: a view takes
finished log-ins (stage FULL) unless it names other stages with ``@stages``. A session between
its steps reaches only its own page and log-out; anything else is answered as if there were no
session (GET: sent to its own page; POST: 401).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal import crypto
from portal.models import SessionStage, StaffUser
from portal.services import login as login_service
from portal.services import staff as staff_service
from portal.services.errors import InvalidCredentials, InvalidInput, WrongCode
from portal.services.permissions import Permission, can
from portal.services.staff import ActiveSession, SessionInvalid
from portal.web import client, qr, state
from portal.web.errors import csrf_recoverable
from portal.web.staff import bp
from portal.web.staff.forms import ActionForm, CodeForm, LoginForm

COOKIE = "portal_staff"
PATH = "/staff"
#: The management insights pages (/insights/) sit behind the same log-in. A cookie has one path,
#: so the session cookie is set twice, for each path, and never for "/": reporter pages must
#: never receive a staff cookie.
PATHS = (PATH, "/insights")
PUBLIC_ENDPOINTS = frozenset({"staff.login"})

#: The one page each unfinished stage may reach (besides log-out).
STAGE_PAGES = {
    SessionStage.TOTP: "staff.login_code",
    SessionStage.ENROL: "staff.login_enrol",
    SessionStage.NEW_PASSWORD: "staff.password",
}

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def requires(permission: Permission) -> Callable[[F], F]:
    def mark(view: F) -> F:
        view.required_permission = permission  # type: ignore[attr-defined]
        return view

    return mark


def stages(*allowed: SessionStage) -> Callable[[F], F]:
    """The session stages a view accepts (default: FULL only)."""

    def mark(view: F) -> F:
        view.session_stages = frozenset(allowed)  # type: ignore[attr-defined]
        return view

    return mark


def current_staff() -> StaffUser:
    user: StaffUser = g.staff
    return user


def current_private_key() -> bytes:
    key: bytes = g.staff_key
    return key


def current_session() -> ActiveSession:
    active: ActiveSession = g.staff_session
    return active


def _unauthenticated() -> ResponseReturnValue:
    if request.method == "GET":
        return redirect(url_for("staff.login"))
    # A reply or note, or a reason for reopening a case or for a legal hold, typed while the
    # session ended.
    unsent = (
        request.form.get("text", "")
        or request.form.get("reason", "")
        or request.form.get("hold_reason", "")
    )
    return render_template("errors/error.html", code=401, reason="login", unsent=unsent), 401


@bp.before_request
def guard() -> ResponseReturnValue | None:
    """The guard of every page behind the staff log-in (also registered by the insights
    blueprint)."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    cookie = request.cookies.get(COOKIE)
    active = None
    if cookie:
        session = state.db()
        try:
            active = staff_service.resume(session, state.settings(), cookie, state.now())
        except SessionInvalid:
            active = None
        session.commit()  # keeps last_seen_at, or the deletion of an expired session
    if active is None:
        return _unauthenticated()
    g.staff = active.user
    g.staff_key = active.private_key
    g.staff_session = active
    g.staff_stage = active.stage
    view = current_app.view_functions.get(endpoint)
    allowed = getattr(view, "session_stages", frozenset({SessionStage.FULL}))
    if active.stage not in allowed:
        if active.stage == SessionStage.FULL:
            return redirect(_home_for(active.user))  # a finished log-in at a log-in step page
        if request.method == "GET":
            return redirect(url_for(STAGE_PAGES[active.stage]))
        unsent = request.form.get("text", "")
        return render_template("errors/error.html", code=401, reason="stage", unsent=unsent), 401
    permission = getattr(view, "required_permission", None)
    if permission is None or not can(active.user, permission):
        return render_template("errors/error.html", code=403, reason=None), 403
    return None


def _home_for(user: StaffUser) -> str:
    if can(user, Permission.CASES_LIST):
        return url_for("staff.cases")
    if can(user, Permission.INSIGHTS_READ):
        return url_for("insights.overview")
    return url_for("staff.account")


def set_session_cookie(response: Response, cookie: str) -> None:
    for path in PATHS:
        response.set_cookie(
            COOKIE,
            cookie,
            path=path,
            secure=state.settings().secure_cookies,
            httponly=True,
            samesite="Strict",
        )


def clear_session_cookie(response: Response) -> None:
    for path in PATHS:
        response.delete_cookie(
            COOKIE,
            path=path,
            secure=state.settings().secure_cookies,
            httponly=True,
            samesite="Strict",
        )


def _to(step: login_service.Step) -> Response:
    """Redirect to the page of the step's stage, carrying the step's new cookie."""
    if step.stage == SessionStage.FULL:
        target = _home_for(step.user)
    else:
        target = url_for(STAGE_PAGES[step.stage])
    response = make_response(redirect(target))
    set_session_cookie(response, step.cookie)
    return response


# --- throttle -----------------------------------------------------------------------------------


def throttle_keys(email: str) -> tuple[str, str]:
    """(client key, account key): wrong passwords and wrong codes count against both."""
    throttle = state.state().login_throttle
    normalised = staff_service.normalise_email(email)
    account = "account:" + crypto.keyed_digest(throttle.client_hmac_key(), normalised)
    return client.throttle_key(throttle), account


def throttled(keys: tuple[str, str]) -> str | None:
    throttle = state.state().login_throttle
    settings = state.settings()
    limit = settings.login_max_failures
    if any(throttle.failures(key) >= limit for key in keys):
        message: str = _(
            "Too many failed log-ins. Wait %(minutes)d minutes and try again.",
            minutes=max(1, settings.login_window_seconds // 60),
        )
        return message
    return None


def count_failure(keys: tuple[str, str]) -> None:
    throttle = state.state().login_throttle
    for key in keys:
        throttle.record_failure(key)


# --- step 1: e-mail and password ----------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        return render_template("staff/login.html", form=form)
    keys = throttle_keys(form.email.data or "")
    refusal = throttled(keys)
    if refusal:
        form.form_errors.append(refusal)
        return render_template("staff/login.html", form=form), 429
    if form.validate_on_submit():
        session = state.db()
        try:
            step = login_service.check_password(
                session, state.settings(), form.email.data, form.password.data, state.now()
            )
        except InvalidCredentials:
            session.commit()  # the audit event of the failure
            count_failure(keys)
            form.form_errors.append(_("Wrong e-mail or password."))
        except crypto.Argon2Busy:  # the password was not checked: no failure, nothing counted
            session.rollback()
            form.form_errors.append(
                _("The portal is busy right now. Please wait a moment and log in again.")
            )
            return render_template("staff/login.html", form=form), 503
        else:
            session.commit()
            return _to(step)
    return render_template("staff/login.html", form=form), 400


csrf_recoverable("staff.login")


# --- step 2: the code, or enrolling the second factor -------------------------------------------


def _code_step(
    template: str, form: CodeForm, check: Callable[[], login_service.Step], **context: object
) -> ResponseReturnValue:
    """The POST half of both second-factor pages: throttle, check, count failures."""
    keys = throttle_keys(current_staff().email)
    refusal = throttled(keys)
    if refusal:
        form.form_errors.append(refusal)
        return render_template(template, form=form, **context), 429
    if form.validate_on_submit():
        session = state.db()
        try:
            step = check()
        except InvalidInput as error:
            form.field_error(error)
        except WrongCode:
            session.commit()  # the audit event of the failure and nothing else
            count_failure(keys)
            form.code.errors = [
                _(
                    "That code is not right, or was used already."
                    " Wait for the next code and try again."
                )
            ]
        except SessionInvalid:
            session.rollback()
            return redirect(url_for("staff.login"))
        else:
            session.commit()
            return _to(step)
    form.code.data = ""
    return render_template(template, form=form, **context), 400


@bp.route("/login/code", methods=["GET", "POST"])
@stages(SessionStage.TOTP)
@requires(Permission.ACCOUNT_READ)
def login_code() -> ResponseReturnValue:
    form = CodeForm()
    context = {"logout_form": ActionForm(formdata=None)}
    if request.method == "GET":
        return render_template("staff/login_code.html", form=form, **context)
    return _code_step(
        "staff/login_code.html",
        form,
        lambda: login_service.check_code(
            state.db(), current_session(), form.code.data, state.now()
        ),
        **context,
    )


@bp.route("/login/enrol", methods=["GET", "POST"])
@stages(SessionStage.ENROL)
@requires(Permission.ACCOUNT_READ)
def login_enrol() -> ResponseReturnValue:
    form = CodeForm()
    try:
        enrolment = login_service.enrolment(state.settings(), current_session())
    except SessionInvalid:
        return redirect(url_for("staff.login"))
    context = {
        "enrolment": enrolment,
        "qr_svg": qr.svg(enrolment.uri, _("QR code of your second-factor secret")),
        "logout_form": ActionForm(formdata=None),
    }
    if request.method == "GET":
        return render_template("staff/login_enrol.html", form=form, **context)
    return _code_step(
        "staff/login_enrol.html",
        form,
        lambda: login_service.confirm_enrolment(
            state.db(), state.settings(), current_session(), form.code.data, state.now()
        ),
        **context,
    )


# --- log-out -----------------------------------------------------------------------------------


@bp.post("/logout")
@stages(*SessionStage)
@requires(Permission.ACCOUNT_READ)
def logout() -> ResponseReturnValue:
    form = ActionForm()
    response = make_response(redirect(url_for("staff.login")))
    if form.validate_on_submit():
        cookie = request.cookies.get(COOKIE, "")
        session = state.db()
        login_service.log_out(session, current_session(), cookie, state.now())
        session.commit()
        clear_session_cookie(response)
    return response
