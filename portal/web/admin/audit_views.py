"""The audit log in the console (Permission.AUDIT_READ): newest first, filtered, paged; the chain
verification with its anchor; the CSV export of the filtered view (itself audited).

The log holds no case content and no reporter data; reporter events appear only as the counts
of a whole day.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectChoice

from portal.errors import InvalidInput
from portal.models import StaffUser
from portal.services.accounts.permissions import Permission
from portal.services.audit import chain as audit
from portal.services.audit import reading as log_service
from portal.services.audit.chain import Action, Filter
from portal.web import state
from portal.web.admin.blueprint import bp, section
from portal.web.admin.forms import AuditExportForm, AuditFilterForm, VerifyForm
from portal.web.auth import current_staff, requires
from portal.web.labels import ACTION_LABELS, action_label
from portal.web.staff.forms import ActionForm

section("staff.admin.audit_log", _l("Audit log"))

PAGE_SIZE = 50


GROUP_LABELS = {
    "account.": _l("All account events"),
    "case.": _l("All case events"),
    "staff.": _l("All staff administration"),
    "config.": _l("All configuration events"),
    "audit.": _l("All audit log exports"),
    "backup.": _l("All backups and restores"),
    "system.": _l("All system events"),
    "reporter.": _l("All reporter day counts"),
}


def _with_choices(form: AuditFilterForm | AuditExportForm) -> None:
    form.action.choices = (
        [SelectChoice("", _("Everything"))]
        + [SelectChoice(g, GROUP_LABELS[g]) for g in log_service.GROUPS]
        + [SelectChoice(a.value, f"{ACTION_LABELS[a]} ({a.value})") for a in Action]
    )
    users = state.db().execute(select(StaffUser.id, StaffUser.email).order_by(StaffUser.email))
    form.actor.choices = [SelectChoice("", _("Anyone"))] + [
        SelectChoice(str(uid), email) for uid, email in users
    ]


def _filter(form: AuditFilterForm | AuditExportForm) -> Filter | None:
    """The filter the form describes, or None with the messages set on the form's fields."""
    if not form.validate():
        return None
    try:
        handle = log_service.normalise_handle(form.case.data)
    except InvalidInput as error:
        form.field_error(error)
        return None
    return Filter(
        action=form.action.data or None,
        actor_id=int(form.actor.data) if form.actor.data else None,
        case_handle=handle,
        on_day=form.day.data,
        before_seq=form.before.data,
    )


def _query(form: AuditFilterForm, **changes: Any) -> dict[str, Any]:
    values = {
        "action": form.action.data or "",
        "actor": form.actor.data or "",
        "case": (form.case.data or "").strip(),
        "day": form.day.data.isoformat() if form.day.data else "",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v not in ("", None)}


@bp.get("/audit")
@requires(Permission.AUDIT_READ)
def audit_log() -> ResponseReturnValue:
    form = AuditFilterForm(request.args)
    _with_choices(form)
    flt = _filter(form)
    rows: list[log_service.EventRow] = []
    older = None
    if flt is not None:
        rows, next_before = log_service.page(state.db(), flt, PAGE_SIZE)
        if next_before is not None:
            older = url_for("staff.admin.audit_log", **_query(form, before=next_before))
    newest = url_for("staff.admin.audit_log", **_query(form)) if form.before.data else None
    return render_template(
        "admin/audit_log.html",
        form=form,
        rows=rows,
        older=older,
        newest=newest,
        export_form=ActionForm(),
        export_fields=_query(form),
        action_label=action_label,
        logout_form=ActionForm(),
    ), (200 if flt is not None else 400)


@bp.get("/audit/verify")
@requires(Permission.AUDIT_READ)
def audit_verify() -> ResponseReturnValue:
    form = VerifyForm(request.args)
    result = None
    code = 200
    try:
        anchor = log_service.parse_anchor(form.expect.data)
    except InvalidInput as error:
        form.field_error(error)
        code = 400
    else:
        result = audit.verify(state.db(), anchor)
    return render_template(
        "admin/audit_verify.html",
        form=form,
        result=result,
        anchor=anchor if result is not None else None,
        logout_form=ActionForm(),
    ), code


@bp.post("/audit/export")
@requires(Permission.AUDIT_READ)
def audit_export() -> ResponseReturnValue:
    form = AuditExportForm()
    _with_choices(form)
    flt = _filter(form)  # the CSRF token was checked before the view ran
    if flt is None:
        return render_template(
            "admin/audit_log.html",
            form=form,
            rows=[],
            older=None,
            newest=None,
            export_form=ActionForm(),
            export_fields={},
            action_label=action_label,
            logout_form=ActionForm(),
        ), 400
    session = state.db()
    exported = log_service.export_csv(
        session, replace(flt, before_seq=None), actor=current_staff(), now=state.now()
    )
    session.commit()
    stamp = state.now().strftime("%Y%m%d-%H%M%S")
    return Response(
        exported.text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
