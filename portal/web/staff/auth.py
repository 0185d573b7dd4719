"""Staff log-in (password, then the second factor or its enrolment), log-out, the session and
device cookies, and the log-in throttle. The deny-by-default guard that every page behind the
log-in passes is ``portal.web.auth``."""

from __future__ import annotations

from collections.abc import Callable

from flask import make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal import crypto
from portal.errors import InvalidCredentials, WrongCode
from portal.models import SessionStage
from portal.services.accounts import accounts as staff_service
from portal.services.accounts import login as login_service
from portal.services.accounts.permissions import Permission
from portal.services.accounts.sessions import SessionInvalid
from portal.web import client, qr, state
from portal.web.auth import (
    COOKIE,
    PATH,
    PATHS,
    STAGE_PAGES,
    current_session,
    current_staff,
    home_for,
    requires,
    stages,
)
from portal.web.errors import csrf_recoverable
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ActionForm, CodeForm, LoginForm
from portal.web.transactions import commit_or_form_error


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
        target = home_for(step.user)
    else:
        target = url_for(STAGE_PAGES[step.stage])
    response = make_response(redirect(target))
    set_session_cookie(response, step.cookie)
    return response


# --- throttle -----------------------------------------------------------------------------------
#
# Three counters of failures (wrong passwords, wrong codes), each per ``login_window_seconds``:
#
# * per client (an HMAC of the address, DESIGN.md invariant 1): ``login_max_failures``, then
#   429. This bounds one attacker, and is the only counter that refuses outright early.
# * per account, from anywhere. At ``login_max_failures`` the account is not locked: its
#   password is accepted only together with a current code, in one form whose failures all
#   look alike. A colleague cannot lock a staff member out with a few wrong passwords, and the
#   guesses made meanwhile learn nothing about the password alone. At
#   ``login_account_max_failures`` no password is checked for the account any more (429): the
#   bound on guessing from many addresses, which a correct password cannot pass either,
#   because checking it is what the bound limits (and the code cannot be checked without the
#   key the password unwraps).
# * per account, wrong codes after a right password: ``login_max_failures``, then no new
#   browser may try a code for the window. Only someone who knows the password can cause these
#   failures, and without this bound they could try ``login_account_max_failures`` codes per
#   window from many addresses instead of a few.
# * per device cookie: a browser that finished a log-in to the account before passes both
#   account bounds, and is itself bounded like a client. So an attacker with many addresses can
#   keep new browsers out for a window, never the staff member's own.

DEVICE_COOKIE = "portal_staff_device"
DEVICE_COOKIE_DAYS = 180


def _device_key() -> bytes:
    return crypto.subkey(state.secrets().secret_key, "staff-device-cookie")


class LoginKeys:
    """The throttle keys of one log-in attempt."""

    def __init__(self, email: str) -> None:
        throttle = state.state().login_throttle
        normalised = staff_service.normalise_email(email)
        self.client = client.throttle_key(throttle)
        self.account = "account:" + crypto.keyed_digest(throttle.client_hmac_key(), normalised)
        self.account_code = "code:" + self.account
        self.device: str | None = None
        cookie = request.cookies.get(DEVICE_COOKIE, "")
        if cookie:
            user = staff_service.find_account(state.db(), email)
            nonce = login_service.device_nonce(_device_key(), cookie, user)
            if nonce is not None:
                self.device = "device:" + crypto.keyed_digest(throttle.client_hmac_key(), nonce)

    def all(self) -> list[str]:
        return [k for k in (self.client, self.account, self.device) if k is not None]


def throttle_keys(email: str) -> LoginKeys:
    """Wrong passwords and wrong codes count against the client, the account and the device."""
    return LoginKeys(email)


def throttled(keys: LoginKeys) -> str | None:
    """Why this attempt is refused without checking anything, or None."""
    throttle = state.state().login_throttle
    settings = state.settings()
    minutes = max(1, settings.login_window_seconds // 60)
    limit = settings.login_max_failures
    own = [keys.client] + ([keys.device] if keys.device else [])
    if any(throttle.failures(key) >= limit for key in own):
        message: str = _(
            "Too many failed log-ins. Wait %(minutes)d minutes and try again.", minutes=minutes
        )
        return message
    if keys.device is None and (
        throttle.failures(keys.account) >= max(limit, settings.login_account_max_failures)
        or throttle.failures(keys.account_code) >= limit
    ):
        message = _(
            "Too many failed log-ins to this account, from many places. Wait %(minutes)d minutes,"
            " or log in from a browser you have used for this account before.",
            minutes=minutes,
        )
        return message
    return None


def needs_code_with_password(keys: LoginKeys) -> bool:
    """Whether the account had so many failures that its password only counts with a code."""
    throttle = state.state().login_throttle
    return throttle.failures(keys.account) >= state.settings().login_max_failures


def count_failure(keys: LoginKeys, *, second_factor: bool = False) -> None:
    """``second_factor``: a wrong code after a right password (WrongCode)."""
    throttle = state.state().login_throttle
    for key in keys.all():
        throttle.record_failure(key)
    if second_factor:
        throttle.record_failure(keys.account_code)


def _with_device_cookie(response: Response, step: login_service.Step) -> Response:
    """After a finished log-in, the browser keeps proof of it for this account."""
    if step.stage in (SessionStage.FULL, SessionStage.NEW_PASSWORD):
        response.set_cookie(
            DEVICE_COOKIE,
            login_service.device_cookie(_device_key(), step.user),
            max_age=DEVICE_COOKIE_DAYS * 86400,
            path=PATH,
            secure=state.settings().secure_cookies,
            httponly=True,
            samesite="Strict",
        )
    return response


# --- step 1: e-mail and password ----------------------------------------------------------------


def _login_page(form: LoginForm, code: int, *, together: bool) -> ResponseReturnValue:
    return render_template("staff/login.html", form=form, together=together), code


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        return render_template("staff/login.html", form=form, together=False)
    keys = throttle_keys(form.email.data or "")
    refusal = throttled(keys)
    together = needs_code_with_password(keys)
    if refusal:
        form.form_errors.append(refusal)
        return _login_page(form, 429, together=together)
    if not form.validate_on_submit():
        return _login_page(form, 400, together=together)
    session = state.db()
    if together and not (form.code.data or "").strip():
        # Nothing is checked and nothing counted: the page asks for both together.
        form.form_errors.append(
            _(
                "Many log-ins to this account failed recently. Enter your password and the"
                " current code from your authenticator app together."
            )
        )
        return _login_page(form, 400, together=True)
    try:
        # A malformed code (InvalidInput) is marked on its field: nothing was checked. A wrong
        # password or code keeps the audit event of the failure.
        with commit_or_form_error(form, keep=(InvalidCredentials, WrongCode)) as work:
            if together:
                step = login_service.check_password_and_code(
                    session,
                    state.settings(),
                    form.email.data,
                    form.password.data,
                    form.code.data or "",
                    state.now(),
                )
            else:
                step = login_service.check_password(
                    session, state.settings(), form.email.data, form.password.data, state.now()
                )
    except (InvalidCredentials, WrongCode) as error:
        count_failure(keys, second_factor=isinstance(error, WrongCode))
        form.form_errors.append(
            _("Wrong e-mail, password or code.") if together else _("Wrong e-mail or password.")
        )
    except crypto.Argon2Busy:  # the password was not checked: no failure, nothing counted
        form.form_errors.append(
            _("The portal is busy right now. Please wait a moment and log in again.")
        )
        return _login_page(form, 503, together=together)
    else:
        if work.committed:
            return _with_device_cookie(_to(step), step)
    form.code.data = ""
    return _login_page(form, 400, together=together or needs_code_with_password(keys))


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
        try:
            # A wrong code keeps the audit event of the failure and nothing else.
            with commit_or_form_error(form, keep=(WrongCode,)) as work:
                step = check()
        except WrongCode:
            count_failure(keys, second_factor=True)
            form.code.errors = [
                _(
                    "That code is not right, or was used already."
                    " Wait for the next code and try again."
                )
            ]
        except SessionInvalid:
            return redirect(url_for("staff.login"))
        else:
            if work.committed:
                return _with_device_cookie(_to(step), step)
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
