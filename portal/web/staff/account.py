"""One's own account: details, sessions (list, revoke) and the password change."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from portal.errors import InvalidCredentials, InvalidInput
from portal.models import SessionStage
from portal.services.accounts import accounts as staff
from portal.services.accounts import api_tokens
from portal.services.accounts import self_service as account_service
from portal.services.accounts.permissions import Permission, can
from portal.web import state
from portal.web.auth import current_private_key, current_session, current_staff, requires, stages
from portal.web.staff.auth import clear_session_cookie, count_failure, throttle_keys, throttled
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ActionForm, ApiTokenForm, PasswordChangeForm
from portal.web.transactions import commit_or_form_error


def _account_page(
    token_form: ApiTokenForm | None = None,
    new_token: api_tokens.NewToken | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    user = current_staff()
    session = state.db()
    settings = state.settings()
    may_use_api = can(user, Permission.INSIGHTS_READ)
    if token_form is None:
        token_form = ApiTokenForm(formdata=None, days=str(settings.api_token_max_days))
    return render_template(
        "staff/account.html",
        user=user,
        key_fingerprint=account_service.key_fingerprint(user),
        queues=staff.queues_of(session, user),
        sessions=account_service.sessions_of(
            session, settings, user, current_session().row.public_id, state.now()
        ),
        may_use_api=may_use_api,
        api_tokens=api_tokens.tokens_of(session, user, state.today()) if may_use_api else [],
        token_form=token_form,
        new_token=new_token,
        token_max_days=settings.api_token_max_days,
        token_limit=api_tokens.MAX_ACTIVE,
        action_form=ActionForm(formdata=None),
        logout_form=ActionForm(formdata=None),
        SessionStage=SessionStage,
    ), code


@bp.get("/account")
@requires(Permission.ACCOUNT_READ)
def account() -> ResponseReturnValue:
    return _account_page()


@bp.post("/account/api-tokens")
@requires(Permission.INSIGHTS_READ)
def create_api_token() -> ResponseReturnValue:
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _account_page(form, code=400)
    days_text = (form.days.data or "").strip()
    with commit_or_form_error(form) as work:
        if not days_text.isdigit() or len(days_text) > 4:
            raise InvalidInput("days", _("Give the lifetime as a whole number of days."))
        new = api_tokens.create(
            state.db(),
            state.settings(),
            current_staff(),
            form.name.data or "",
            int(days_text),
            state.now(),
        )
    if not work.committed:
        return _account_page(form, code=400)
    # The value is shown in this response only (never stored, never in a redirect or flash).
    return _account_page(new_token=new)


@bp.post("/account/api-tokens/<int:token_id>/revoke")
@requires(Permission.INSIGHTS_READ)
def revoke_api_token(token_id: int) -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    session = state.db()
    api_tokens.revoke(session, current_staff(), token_id, state.now())  # or UnknownApiToken: 404
    session.commit()
    flash(
        _("The API token was revoked. Tools that used it can no longer read insights."), "success"
    )
    return redirect(url_for("staff.account", _anchor="api-tokens"))


@bp.post("/account/sessions/<session_id>/revoke")
@requires(Permission.ACCOUNT_WRITE)
def revoke_session(session_id: str) -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    session = state.db()
    # Another user's session, or one that ended, is UnknownSession: the 404 page.
    was_current = account_service.revoke_session(
        session, current_staff(), session_id, current_session().row.public_id, state.now()
    )
    session.commit()
    if was_current:
        flash(_("You logged this session out."), "success")
        response = make_response(redirect(url_for("staff.login")))
        clear_session_cookie(response)
        return response
    flash(_("That session was logged out; its browser must log in again."), "success")
    return redirect(url_for("staff.account"))


@bp.post("/account/sessions/revoke-others")
@requires(Permission.ACCOUNT_WRITE)
def revoke_other_sessions() -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    session = state.db()
    count = account_service.revoke_other_sessions(
        session, current_staff(), current_session().row.public_id, state.now()
    )
    session.commit()
    flash(_("%(count)d other session(s) logged out.", count=count), "success")
    return redirect(url_for("staff.account"))


def _password_page(form: PasswordChangeForm, code: int = 200) -> ResponseReturnValue:
    forced = current_session().stage == SessionStage.NEW_PASSWORD
    return render_template(
        "staff/password.html",
        form=form,
        forced=forced,
        min_chars=state.settings().staff_password_min_chars,
        logout_form=ActionForm(formdata=None),
    ), code


@bp.route("/account/password", methods=["GET", "POST"])
@stages(SessionStage.FULL, SessionStage.NEW_PASSWORD)
@requires(Permission.ACCOUNT_WRITE)
def password() -> ResponseReturnValue:
    form = PasswordChangeForm()
    if not form.is_submitted():
        return _password_page(form)
    user = current_staff()
    keys = throttle_keys(user.email)
    refusal = throttled(keys)
    if refusal:
        form.form_errors.append(refusal)
        return _password_page(form, 429)
    if not form.validate_on_submit():
        return _password_page(form, 400)
    try:
        with commit_or_form_error(form) as work:
            changed = account_service.change_password(
                state.db(),
                state.settings(),
                user,
                current_private_key(),
                current=form.current.data,
                new=form.new.data,
                confirm=form.confirm.data,
                now=state.now(),
            )
    except InvalidCredentials:
        # Someone at an unlocked screen guessing the password counts like a failed log-in.
        count_failure(keys)
        form.current.errors = [_("That is not your current password.")]
        return _password_page(form, 400)
    if not work.committed:
        return _password_page(form, 400)
    if changed.recovery_key is not None:
        response = make_response(
            render_template("staff/password_changed.html", recovery_key=changed.recovery_key)
        )
    else:
        flash(
            _("Your password was changed. Every session was logged out: log in again."), "success"
        )
        response = make_response(redirect(url_for("staff.login")))
    clear_session_cookie(response)
    return response
