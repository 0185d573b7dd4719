"""Password resets by an admin, and the list of cases awaiting re-grant after a reset without
the recovery key. Admins see handles, names and queues here, never case content."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, StringField

from portal.models import StaffUser
from portal.services.accounts import account_mail
from portal.services.accounts import accounts as staff_service
from portal.services.accounts import administration as admin
from portal.services.accounts.permissions import Permission
from portal.web import state
from portal.web.admin import mailing
from portal.web.admin.blueprint import bp, section
from portal.web.admin.staff_views import STAFF_ACTIONS
from portal.web.auth import current_staff, requires
from portal.web.forms import PortalForm
from portal.web.staff.forms import ActionForm
from portal.web.transactions import commit_or_form_error


class ResetForm(PortalForm):
    recovery_key = StringField(
        _l("The account's recovery key (optional)"),
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    reset_second_factor = BooleanField(_l("Also reset the second factor (lost phone or app)"))


section("staff.admin.password_resets", _l("Password resets"))
STAFF_ACTIONS.append(("staff.admin.reset_password", _l("Reset the password")))
section("staff.admin.regrants", _l("Cases awaiting re-grant"))


@bp.get("/password-resets")
@requires(Permission.ADMIN_STAFF)
def password_resets() -> ResponseReturnValue:
    session = state.db()
    accounts = staff_service.all_staff(session)
    return render_template(
        "admin/password_resets.html",
        accounts=accounts,
        summaries={u.id: staff_service.access_summary(session, u) for u in accounts},
        logout_form=ActionForm(formdata=None),
    )


def _reset_page(user: StaffUser, form: ResetForm, code: int = 200) -> ResponseReturnValue:
    return render_template(
        "admin/reset.html",
        account=user,
        form=form,
        can_mail=mailing.mailer() is not None,
        summary=staff_service.access_summary(state.db(), user),
        logout_form=ActionForm(formdata=None),
    ), code


@bp.route("/staff/<int:staff_id>/reset", methods=["GET", "POST"])
@requires(Permission.ADMIN_STAFF)
def reset_password(staff_id: int) -> ResponseReturnValue:
    session = state.db()
    user = admin.get_user(session, staff_id)
    form = ResetForm()
    if not form.is_submitted():
        return _reset_page(user, form)
    if not form.validate_on_submit():
        return _reset_page(user, form, 400)
    if user.id == current_staff().id:
        form.form_errors.append(
            _("You cannot reset your own password here: change it on your account page.")
        )
        return _reset_page(user, form, 400)
    mailer = mailing.mailer()
    if mailer is None:
        form.recovery_key.data = ""
        form.form_errors.append(str(mailing.NO_MAIL))
        return _reset_page(user, form, 400)
    with commit_or_form_error(form) as work:
        done = staff_service.reset_password(
            session,
            state.settings(),
            user,
            state.now(),
            actor=current_staff(),
            recovery_key=form.recovery_key.data,
            reset_second_factor=bool(form.reset_second_factor.data),
        )
        # The one-time password goes to the account's own address and nowhere else: the
        # admin's page, flash, log and audit log never carry it. Sent before the commit, so
        # that a reset whose mail the server refused changes nothing.
        settings, now = state.settings(), state.now()
        sent = mailing.send(
            mailer, lambda texts: account_mail.reset_message(settings, user, done, now, texts)
        )
        if not sent:
            work.cancel()
            form.form_errors.append(
                _(
                    "The mail server did not take the message to %(email)s, so nothing was "
                    "changed. Try again later.",
                    email=user.email,
                )
            )
    if not work.committed:
        form.recovery_key.data = ""  # never echo a secret back into the page
        return _reset_page(user, form, 400 if work.refusal else 503)
    return render_template(
        "admin/reset_done.html", account=user, done=done, logout_form=ActionForm(formdata=None)
    )


@bp.get("/regrants")
@requires(Permission.ADMIN_STAFF)
def regrants() -> ResponseReturnValue:
    return render_template(
        "admin/regrants.html",
        rows=staff_service.pending_regrants(state.db()),
        logout_form=ActionForm(formdata=None),
    )
