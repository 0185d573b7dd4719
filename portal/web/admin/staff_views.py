"""Staff accounts in the console (Permission.ADMIN_STAFF): list, create, roles, queue
memberships, disable and enable. Nothing here shows key material, sessions' details or cases."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from wtforms import SelectChoice

from portal.errors import InvalidInput
from portal.i18n import labels as i18n
from portal.models import Role, StaffUser
from portal.services.accounts import account_mail
from portal.services.accounts import administration as admin
from portal.services.accounts.permissions import Permission
from portal.services.casework import access_requests
from portal.services.configuration import queue_editing
from portal.web import state
from portal.web.admin import mailing
from portal.web.admin.blueprint import bp, section
from portal.web.admin.forms import (
    ROLE_NAMES,
    NewStaffForm,
    QueuesForm,
    RolesForm,
    role_choices,
)
from portal.web.auth import current_staff, requires
from portal.web.errors import csrf_recoverable
from portal.web.labels import translated
from portal.web.staff.forms import ActionForm
from portal.web.transactions import commit_or_form_error, unit_of_work

section("staff.admin.staff_list", _l("Staff accounts"))
section("staff.admin.access_requests_page", _l("Access requests"))

#: Further actions on one account, (endpoint taking ``staff_id``, label), shown on its page;
#: other console modules (e.g. a password reset) append to this.
STAFF_ACTIONS: list[tuple[str, object]] = []


def _queue_choices() -> list[SelectChoice]:
    return [SelectChoice(q.slug, i18n.shown(q, "name")) for q in queue_editing.queues(state.db())]


@bp.get("/staff")
@requires(Permission.ADMIN_STAFF)
def staff_list() -> ResponseReturnValue:
    return render_template(
        "admin/staff_list.html",
        rows=admin.list_staff(state.db()),
        role_names=ROLE_NAMES,
        logout_form=ActionForm(),
    )


@bp.route("/staff/new", methods=["GET", "POST"])
@requires(Permission.ADMIN_STAFF)
def staff_new() -> ResponseReturnValue:
    form = NewStaffForm()
    form.roles.choices = role_choices()
    form.queues.choices = form.not_excludable_in.choices = _queue_choices()
    if request.method == "GET":
        return _new_page(form, 200)
    if form.validate_on_submit():
        code = 400
        # ``admin.create_account`` names its fields after its own arguments.
        with commit_or_form_error(form, fields={"role": "roles"}) as work:
            created = admin.create_account(
                state.db(),
                state.settings(),
                email=form.email.data,
                display_name=form.name.data,
                roles=[Role(r) for r in form.roles.data or []],
                queue_slugs=form.queues.data or [],
                not_excludable_in=form.not_excludable_in.data or [],
                actor=current_staff(),
                now=state.now(),
            )
            # The one-time password goes to the new account's own address, never to the
            # admin: whoever logs in with it first owns the account's key pair and the cases
            # routed to it. Sent before the commit: a refused mail creates nothing.
            mailer = mailing.mailer()
            settings, now = state.settings(), state.now()
            if mailer is None:
                work.cancel()
                form.form_errors.append(str(mailing.NO_MAIL))
            elif not mailing.send(
                mailer, lambda texts: account_mail.welcome_message(settings, created, now, texts)
            ):
                work.cancel()
                form.form_errors.append(
                    _(
                        "The mail server did not take the message to the new address, so no "
                        "account was made. Try again later."
                    )
                )
                code = 503
        if not work.committed:
            return _new_page(form, code)
        return render_template(
            "admin/staff_created.html",
            user=created.user,
            requested=access_requests.waiting(state.db(), state.now(), created.user),
            role_names=ROLE_NAMES,
            logout_form=ActionForm(),
        )
    return _new_page(form, 400)


def _new_page(form: NewStaffForm, code: int) -> ResponseReturnValue:
    return render_template(
        "admin/staff_new.html",
        form=form,
        can_mail=mailing.mailer() is not None,
        logout_form=ActionForm(),
    ), code


csrf_recoverable("staff.admin.staff_new")


def _render_user(
    user: StaffUser,
    roles_form: RolesForm | None = None,
    queues_form: QueuesForm | None = None,
    active_error: str | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    session = state.db()
    row = admin.describe(session, user)
    if roles_form is None:
        roles_form = RolesForm(formdata=None, data={"roles": [r.value for r in row.roles]})
    roles_form.roles.choices = role_choices()
    if queues_form is None:
        queues_form = QueuesForm(
            formdata=None,
            data={
                "queues": [m.slug for m in row.memberships],
                "not_excludable_in": [m.slug for m in row.memberships if not m.excludable],
            },
        )
    queues_form.queues.choices = queues_form.not_excludable_in.choices = _queue_choices()
    return render_template(
        "admin/staff_user.html",
        row=row,
        waiting=access_requests.waiting(session, state.now(), user),
        viewer=current_staff(),
        roles_form=roles_form,
        queues_form=queues_form,
        active_form=ActionForm(formdata=None),
        active_error=active_error,
        role_names=ROLE_NAMES,
        staff_actions=STAFF_ACTIONS,
        logout_form=ActionForm(formdata=None),
    ), code


@bp.get("/staff/<int:staff_id>")
@requires(Permission.ADMIN_STAFF)
def staff_user(staff_id: int) -> ResponseReturnValue:
    return _render_user(admin.get_user(state.db(), staff_id))


def _saved(staff_id: int, result: bool | admin.Changed, message: str) -> ResponseReturnValue:
    changed = result if isinstance(result, admin.Changed) else admin.Changed(result)
    if changed.applied:
        flash(message, "success")
    if changed.requested:
        flash(
            ngettext(
                "%(num)d change gives access: it waits for a second admin's approval (see"
                " Access requests) and is shown to the queue's members.",
                "%(num)d changes give access: they wait for a second admin's approval (see"
                " Access requests) and are shown to the queues' members.",
                len(changed.requested),
            ),
            "info",
        )
    if not changed:
        flash(_("Nothing changed."), "info")
    return redirect(url_for("staff.admin.staff_user", staff_id=staff_id))


@bp.post("/staff/<int:staff_id>/roles")
@requires(Permission.ADMIN_STAFF)
def staff_roles(staff_id: int) -> ResponseReturnValue:
    user = admin.get_user(state.db(), staff_id)
    form = RolesForm()
    form.roles.choices = role_choices()
    if not form.validate_on_submit():
        return _render_user(user, roles_form=form, code=400)
    with commit_or_form_error(form) as work:
        changed = admin.set_roles(
            state.db(),
            user,
            [Role(r) for r in form.roles.data or []],
            actor=current_staff(),
            now=state.now(),
        )
    if not work.committed:
        return _render_user(user, roles_form=form, code=400)
    return _saved(staff_id, changed, _("Roles saved."))


@bp.post("/staff/<int:staff_id>/queues")
@requires(Permission.ADMIN_STAFF)
def staff_queues(staff_id: int) -> ResponseReturnValue:
    user = admin.get_user(state.db(), staff_id)
    form = QueuesForm()
    form.queues.choices = form.not_excludable_in.choices = _queue_choices()
    if not form.validate_on_submit():
        return _render_user(user, queues_form=form, code=400)
    member_of = form.queues.data or []
    fixed = set(form.not_excludable_in.data or [])
    if fixed - set(member_of):
        form.not_excludable_in.errors = [
            _("Tick “Member of” for a queue before marking that reporters cannot exclude them.")
        ]
        return _render_user(user, queues_form=form, code=400)
    with commit_or_form_error(form) as work:
        changed = admin.set_queues(
            state.db(),
            user,
            {slug: slug not in fixed for slug in member_of},
            actor=current_staff(),
            now=state.now(),
        )
    if not work.committed:
        return _render_user(user, queues_form=form, code=400)
    return _saved(staff_id, changed, _("Queue memberships saved."))


def _set_active(staff_id: int, active: bool) -> ResponseReturnValue:
    user = admin.get_user(state.db(), staff_id)
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    try:
        with unit_of_work():
            changed = admin.set_active(
                state.db(), user, active, actor=current_staff(), now=state.now()
            )
    except InvalidInput as error:
        return _render_user(user, active_error=translated(error.message), code=400)
    if active:
        return _saved(staff_id, changed, _("Account enabled."))
    return _saved(
        staff_id, changed, _("Account disabled: its sessions have ended and it gets no new cases.")
    )


@bp.post("/staff/<int:staff_id>/disable")
@requires(Permission.ADMIN_STAFF)
def staff_disable(staff_id: int) -> ResponseReturnValue:
    return _set_active(staff_id, active=False)


@bp.post("/staff/<int:staff_id>/enable")
@requires(Permission.ADMIN_STAFF)
def staff_enable(staff_id: int) -> ResponseReturnValue:
    return _set_active(staff_id, active=True)


# --- four eyes: changes that give access wait for a second admin ------------------------------


def _render_requests(error: str | None = None, code: int = 200) -> ResponseReturnValue:
    session = state.db()
    now = state.now()
    return render_template(
        "admin/access_requests.html",
        waiting=access_requests.waiting(session, now),
        decided=access_requests.decided(session, now),
        viewer=current_staff(),
        role_names=ROLE_NAMES,
        decision_form=ActionForm(formdata=None),
        decision_error=error,
        lifetime_days=access_requests.LIFETIME.days,
        logout_form=ActionForm(formdata=None),
    ), code


@bp.get("/staff/requests")
@requires(Permission.ADMIN_STAFF)
def access_requests_page() -> ResponseReturnValue:
    session = state.db()
    if access_requests.expire_due(session, state.now()):
        session.commit()  # the expiries are audited once, by whoever looks first
    return _render_requests()


@bp.post("/staff/requests")
@requires(Permission.ADMIN_STAFF)
def access_requests_decide() -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    decision = request.form.get("decision")
    raw_id = request.form.get("request_id", "")
    if decision not in {"approve", "reject"} or not raw_id.isdigit() or len(raw_id) > 9:
        return _render_requests(_("Choose a request and approve or reject it."), 400)
    decide = access_requests.approve if decision == "approve" else access_requests.reject
    try:
        # Refused, nothing was changed but, for a request found expired, its expiry: kept.
        with unit_of_work(keep=(access_requests.RequestRefused,)):
            decide(state.db(), int(raw_id), actor=current_staff(), now=state.now())
    except access_requests.RequestRefused as error:
        return _render_requests(translated(error.message), 400)
    flash(
        _("Approved: the change has taken effect.")
        if decision == "approve"
        else _("The request is closed; nothing was changed."),
        "success",
    )
    return redirect(url_for("staff.admin.access_requests_page"))
