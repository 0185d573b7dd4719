"""Placing and lifting a legal hold on a case (``services.hold``), and the case page's hold
panel. Both routes need CASE_WRITE and a sealed key for the case, like closing and reopening:
a case the user cannot open answers the same 404 as one that does not exist."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import TextAreaField

from portal.errors import InvalidTransition
from portal.services.accounts.permissions import Permission
from portal.services.casework import hold
from portal.services.casework.cases import CaseDetail
from portal.services.configuration import policy
from portal.web import state
from portal.web.auth import current_private_key, current_staff, requires
from portal.web.errors import csrf_recoverable
from portal.web.forms import PortalForm
from portal.web.labels import translated
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import ActionForm
from portal.web.staff.views import CASE_PANELS, _render_case
from portal.web.transactions import commit_or_form_error, unit_of_work


class HoldForm(PortalForm):
    """The reason is checked by the service (one place for the limit), so that an empty or
    overlong one comes back as typed, with its message."""

    hold_reason = TextAreaField(_l("Reason for the legal hold"))


def _show_again(handle: str, form: HoldForm) -> ResponseReturnValue:
    """The case page again, with the hold form, its errors and what was typed (answered with
    400, so nothing of a refused hold stays, whatever was flushed: ``_render_case``)."""
    g.hold_form = form
    return _render_case(handle, code=400)


@bp.post("/cases/<handle>/hold")
@requires(Permission.CASE_WRITE)
def place_hold(handle: str) -> ResponseReturnValue:
    form = HoldForm()
    if not form.validate_on_submit():
        return _show_again(handle, form)
    with commit_or_form_error(form) as work:
        hold.place(
            state.db(),
            current_staff(),
            current_private_key(),
            handle,
            form.hold_reason.data or "",
            state.now(),
        )
    if not work.committed:
        return _show_again(handle, form)
    flash(
        _(
            "The case is on legal hold: the retention policy will not delete it until the hold "
            "is lifted. The reason is kept as an internal note."
        ),
        "success",
    )
    return redirect(url_for("staff.case", handle=handle))


csrf_recoverable("staff.place_hold")


@bp.post("/cases/<handle>/hold/lift")
@requires(Permission.CASE_WRITE)
def lift_hold(handle: str) -> ResponseReturnValue:
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("errors/error.html", code=400, reason="csrf"), 400
    session = state.db()
    try:
        with unit_of_work():
            case = hold.lift(session, current_staff(), current_private_key(), handle, state.now())
    except InvalidTransition as error:
        # Lifted by a colleague since the page was shown: nothing to do, nothing typed to keep.
        flash(translated(error.message), "error")
        return redirect(url_for("staff.case", handle=handle))
    if case.closed_on is not None:
        flash(
            _(
                "The legal hold is lifted. Before the retention policy deletes this closed "
                "case, its holders are warned again, at least %(days)d days ahead.",
                days=policy.values(session).retention_warning_days,
            ),
            "success",
        )
    else:
        flash(_("The legal hold is lifted."), "success")
    return redirect(url_for("staff.case", handle=handle))


def _hold_panel(detail: CaseDetail) -> dict[str, object]:
    shown: HoldForm | None = g.get("hold_form")
    return {
        # A refused hold form is shown with its message even if the case is on hold by now.
        "hold_form": shown or HoldForm(formdata=None),
        "hold_form_refused": shown is not None,
        "lift_form": ActionForm(formdata=None),
        "hold_reason_max_chars": hold.HOLD_REASON_MAX_CHARS,
        "retention_warning_days": policy.values(state.db()).retention_warning_days,
    }


CASE_PANELS.append(_hold_panel)
