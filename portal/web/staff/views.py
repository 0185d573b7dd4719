"""Ombudsperson views: case list, case page, and the actions on a case."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from portal.models import CaseStatus, Visibility
from portal.services import cases as case_service
from portal.services.errors import InvalidInput, InvalidTransition, NoAccess
from portal.services.permissions import Permission
from portal.web import state
from portal.web.errors import csrf_recoverable
from portal.web.labels import STATUS_LABELS
from portal.web.staff import bp
from portal.web.staff.auth import current_private_key, current_staff, requires
from portal.web.staff.forms import ActionForm, StaffMessageForm, StatusForm

#: Extra panels of the case page: each function gets the opened case and returns template
#: variables; its template is included by staff/case.html. Feature modules append to this.
CASE_PANELS: list[Callable[[case_service.CaseDetail], dict[str, object]]] = []


@bp.get("/")
@requires(Permission.CASES_LIST)
def cases() -> ResponseReturnValue:
    groups = case_service.list_for(state.db(), state.settings(), current_staff(), state.today())
    return render_template(
        "staff/cases.html", groups=groups, status_labels=STATUS_LABELS, logout_form=ActionForm()
    )


def _render_case(
    handle: str,
    message_form: StaffMessageForm | None = None,
    status_form: StatusForm | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    try:
        detail = case_service.open_case(
            state.db(),
            state.settings(),
            current_staff(),
            current_private_key(),
            handle,
            state.today(),
        )
    except NoAccess:
        return render_template("errors/error.html", code=404, reason=None), 404
    status_form = status_form or StatusForm(formdata=None)
    panels: dict[str, object] = {}
    for panel in CASE_PANELS:
        panels.update(panel(detail))
    return render_template(
        "staff/case.html",
        detail=detail,
        status_labels=STATUS_LABELS,
        message_form=message_form or StaffMessageForm(formdata=None),
        status_form=status_form,
        ack_form=ActionForm(formdata=None),
        logout_form=ActionForm(formdata=None),
        CaseStatus=CaseStatus,
        **panels,
    ), code


@bp.get("/cases/<handle>")
@requires(Permission.CASE_READ)
def case(handle: str) -> ResponseReturnValue:
    return _render_case(handle)


def _act(handle: str, action_ok: str) -> ResponseReturnValue:
    flash(action_ok, "success")
    return redirect(url_for("staff.case", handle=handle))


@bp.post("/cases/<handle>/acknowledge")
@requires(Permission.CASE_WRITE)
def acknowledge(handle: str) -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    session = state.db()
    try:
        case_service.acknowledge(
            session, current_staff(), current_private_key(), handle, state.now()
        )
    except NoAccess:
        return render_template("errors/error.html", code=404, reason=None), 404
    except InvalidTransition as error:
        flash(str(error), "error")
        return redirect(url_for("staff.case", handle=handle))
    session.commit()
    return _act(handle, _("Acknowledged; the reporter will see it at follow-up."))


@bp.post("/cases/<handle>/status")
@requires(Permission.CASE_WRITE)
def change_status(handle: str) -> ResponseReturnValue:
    form = StatusForm()
    if not form.validate_on_submit():
        return _render_case(handle, status_form=form, code=400)
    session = state.db()
    try:
        case_service.set_status(
            session,
            current_staff(),
            current_private_key(),
            handle,
            CaseStatus(form.status.data),
            state.now(),
        )
    except NoAccess:
        return render_template("errors/error.html", code=404, reason=None), 404
    except InvalidTransition as error:
        form.status.errors = [str(error)]
        return _render_case(handle, status_form=form, code=400)
    session.commit()
    return _act(handle, _("Status changed."))


@bp.post("/cases/<handle>/messages")
@requires(Permission.CASE_WRITE)
def post_message(handle: str) -> ResponseReturnValue:
    form = StaffMessageForm()
    if not form.validate_on_submit():
        return _render_case(handle, message_form=form, code=400)
    session = state.db()
    visibility = Visibility(form.visibility.data)
    try:
        case_service.add_message(
            session,
            state.settings(),
            current_staff(),
            current_private_key(),
            handle,
            form.text.data,
            visibility,
            state.now(),
        )
    except NoAccess:
        return render_template("errors/error.html", code=404, reason=None), 404
    except InvalidInput as error:
        form.field_error(error)
        return _render_case(handle, message_form=form, code=400)
    session.commit()
    if visibility == Visibility.REPORTER:
        return _act(handle, _("Reply sent; the reporter sees it at follow-up."))
    return _act(handle, _("Internal note saved."))


csrf_recoverable("staff.post_message")
