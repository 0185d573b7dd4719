"""Recusal, grants and transfers of a case (re-sealing its key), and the case page's access
panel. Each route needs CASE_WRITE and a sealed key for the case: a case the user cannot open
answers the same 404 as one that does not exist."""

from __future__ import annotations

from flask import flash, g, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired

from portal.errors import AccessRefusal, AccessRefused
from portal.i18n import labels as i18n
from portal.services.accounts.permissions import Permission
from portal.services.casework import access, access_requests, retention
from portal.services.casework.cases import CaseDetail
from portal.services.insights import signals
from portal.web import state
from portal.web.auth import current_private_key, current_staff, requires
from portal.web.forms import PortalForm
from portal.web.staff.blueprint import bp
from portal.web.staff.views import CASE_LIST_PANELS, CASE_PANELS, _render_case
from portal.web.transactions import unit_of_work


def _staff_id(value: object) -> int | None:
    """The colleague's id from the form; anything that is not a number names nobody."""
    if isinstance(value, int):
        return value
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


class RecuseForm(PortalForm):
    confirm = BooleanField(
        _l(
            "I step away from this case. I understand that my copy of its key is destroyed and "
            "that I will not be able to open it again."
        ),
        validators=[DataRequired(_l("Tick the box to confirm that you step away."))],
    )


class GrantForm(PortalForm):
    # The service decides who may receive the key; the choices only offer the eligible ones.
    colleague = SelectField(
        _l("Colleague"),
        coerce=_staff_id,
        validate_choice=False,
        validators=[DataRequired(_l("Choose a colleague."))],
    )


class RegrantForm(PortalForm):
    """A re-grant to a colleague whose password was reset: the key goes to their new key pair
    only if its fingerprint, which they read out from their own account page, is typed here."""

    colleague = SelectField(
        _l("Colleague"),
        coerce=_staff_id,
        validate_choice=False,
        validators=[DataRequired(_l("Choose a colleague."))],
    )
    fingerprint = StringField(
        _l("Their key fingerprint"),
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"},
    )


class TransferForm(PortalForm):
    queue = SelectField(
        _l("New queue"),
        validate_choice=False,
        validators=[DataRequired(_l("Choose a queue."))],
    )


def _refusal_text(reason: AccessRefusal) -> str:
    texts: dict[AccessRefusal, str] = {
        AccessRefusal.LAST_HOLDER: _(
            "Nobody else holds this case's key, so the case would be lost: grant a colleague "
            "access first."
        ),
        AccessRefusal.NOT_ELIGIBLE: _(
            "That person cannot receive cases: choose an active ombudsperson."
        ),
        AccessRefusal.ALREADY_HOLDS: _("That colleague already holds the key to this case."),
        AccessRefusal.EXCLUDED_BY_REPORTER: _(
            "The reporter excluded that person when sending the concern, so they cannot be "
            "given access."
        ),
        AccessRefusal.RECUSED: _(
            "That person recused themselves from this case, and a recusal is final."
        ),
        AccessRefusal.UNKNOWN_QUEUE: _("Choose one of the queues offered."),
        AccessRefusal.SAME_QUEUE: _("The case is already in that queue."),
        AccessRefusal.NO_RECIPIENT: _(
            "Nobody in that queue can receive this case: it has no active ombudsperson whom the "
            "reporter did not exclude and who did not recuse. Choose another queue."
        ),
        AccessRefusal.NOT_A_MEMBER: _("That person is not a member of that queue."),
        AccessRefusal.FINGERPRINT_MISMATCH: _(
            "That is not the fingerprint of their current key, so nothing was shared. Ask them "
            "to read it out from their own account page, in person or on a call where you know "
            "their voice, and type it again. The refusal was recorded in the audit log."
        ),
    }
    return texts[reason]


def _show_again(handle: str, name: str, form: PortalForm) -> ResponseReturnValue:
    """The case page again, with ``form`` and its errors in the access panel (answered with
    400, so nothing of a refused change stays, whatever was flushed: ``_render_case``)."""
    g.access_forms = {name: form}
    return _render_case(handle, code=400)


@bp.post("/cases/<handle>/recuse")
@requires(Permission.CASE_WRITE)
def recuse(handle: str) -> ResponseReturnValue:
    form = RecuseForm()
    if not form.validate_on_submit():
        return _show_again(handle, "recuse", form)
    try:
        with unit_of_work():
            access.recuse(state.db(), current_staff(), current_private_key(), handle, state.now())
    except AccessRefused as error:
        form.confirm.errors = [_refusal_text(error.reason)]
        return _show_again(handle, "recuse", form)
    flash(
        _(
            "You recused yourself from case %(handle)s. Your copy of its key was destroyed: you "
            "can no longer open it.",
            handle=handle,
        ),
        "success",
    )
    return redirect(url_for("staff.cases"))


@bp.post("/cases/<handle>/grant")
@requires(Permission.CASE_WRITE)
def grant(handle: str) -> ResponseReturnValue:
    form = GrantForm()
    if not form.validate_on_submit():
        return _show_again(handle, "grant", form)
    return _grant(handle, form, form.colleague.data, fingerprint=None)


@bp.post("/cases/<handle>/regrant")
@requires(Permission.CASE_WRITE)
def regrant(handle: str) -> ResponseReturnValue:
    form = RegrantForm()
    if not form.validate_on_submit():
        return _show_again(handle, "regrant", form)
    return _grant(handle, form, form.colleague.data, fingerprint=form.fingerprint.data or "")


def _grant(
    handle: str, form: GrantForm | RegrantForm, colleague_id: int, fingerprint: str | None
) -> ResponseReturnValue:
    name = "grant" if fingerprint is None else "regrant"
    try:
        with unit_of_work():
            granted = access.grant(
                state.db(),
                current_staff(),
                current_private_key(),
                handle,
                colleague_id,
                state.now(),
                fingerprint=fingerprint,
            )
    except AccessRefused as error:
        if error.reason is AccessRefusal.FINGERPRINT_MISMATCH:
            # The refused grant is rolled back; the refusal itself is recorded.
            with unit_of_work():
                access.record_refused_regrant(
                    state.db(),
                    current_staff(),
                    handle,
                    colleague_id,
                    state.now(),
                    typed=bool((fingerprint or "").strip()),
                )
        if isinstance(form, RegrantForm) and error.reason is AccessRefusal.FINGERPRINT_MISMATCH:
            form.fingerprint.data = ""  # never echoed
            form.fingerprint.errors = [_refusal_text(error.reason)]
        else:
            form.colleague.errors = [_refusal_text(error.reason)]
        return _show_again(handle, name, form)
    name = granted.colleague.display_name
    if granted.regrant:
        flash(_("%(name)s can open this case again.", name=name), "success")
    else:
        flash(_("%(name)s now holds the key to this case.", name=name), "success")
    return redirect(url_for("staff.case", handle=handle))


@bp.post("/cases/<handle>/transfer")
@requires(Permission.CASE_WRITE)
def transfer(handle: str) -> ResponseReturnValue:
    form = TransferForm()
    if not form.validate_on_submit():
        return _show_again(handle, "transfer", form)
    try:
        with unit_of_work():
            moved = access.transfer(
                state.db(),
                current_staff(),
                current_private_key(),
                handle,
                form.queue.data,
                state.now(),
            )
    except AccessRefused as error:
        form.queue.errors = [_refusal_text(error.reason)]
        return _show_again(handle, "transfer", form)
    if moved.kept_access:
        flash(
            _(
                "Case moved to “%(queue)s”; its members now hold the key.",
                queue=i18n.shown(moved.to_queue, "name"),
            ),
            "success",
        )
        return redirect(url_for("staff.case", handle=handle))
    flash(
        _(
            "Case %(handle)s moved to “%(queue)s”. You are not a member of that queue, so your "
            "access to the case ended.",
            handle=handle,
            queue=i18n.shown(moved.to_queue, "name"),
        ),
        "success",
    )
    return redirect(url_for("staff.cases"))


def _access_panel(detail: CaseDetail) -> dict[str, object]:
    user = current_staff()
    overview = access.overview(state.db(), user, detail.case, detail.report.excluded_staff_ids)
    shown: dict[str, PortalForm] = g.get("access_forms", {})
    grant_form = shown.get("grant") or GrantForm(formdata=None)
    grant_form.colleague.choices = [
        SelectChoice("", _("Choose…")),
        *(SelectChoice(str(p.id), p.display_name) for p in overview.grantable),
    ]
    transfer_form = shown.get("transfer") or TransferForm(formdata=None)
    transfer_form.queue.choices = [
        SelectChoice("", _("Choose…")),
        *(
            SelectChoice(
                q.slug,
                q.name
                if q.you_are_member
                else _("%(queue)s (you are not a member: you lose access)", queue=q.name),
            )
            for q in overview.transfer_to
        ),
    ]
    return {
        "access_overview": overview,
        "access_you": user.id,
        "recuse_form": shown.get("recuse") or RecuseForm(formdata=None),
        "grant_form": grant_form,
        "transfer_form": transfer_form,
        "regrant_form": shown.get("regrant") or RegrantForm(formdata=None),
    }


def _regrant_notice() -> dict[str, object]:
    return {"awaiting_regrant": access.awaiting_regrant(state.db(), current_staff())}


CASE_PANELS.append(_access_panel)
CASE_LIST_PANELS.append(_regrant_notice)


def _signal_alerts() -> dict[str, object]:
    return {"signal_alerts": signals.alerts_for(state.db(), current_staff(), state.today())}


CASE_LIST_PANELS.append(_signal_alerts)


def _retention_notice() -> dict[str, object]:
    return {"retention_pending": retention.pending_for(state.db(), current_staff())}


CASE_LIST_PANELS.append(_retention_notice)


def _queue_changes() -> dict[str, object]:
    """Members see who joins their queues, and who let them in (four eyes, issue 13)."""
    from portal.web.admin.forms import ROLE_NAMES

    return {
        "queue_changes": access_requests.for_queue_members(
            state.db(), current_staff(), state.now()
        ),
        "role_names": ROLE_NAMES,
    }


CASE_LIST_PANELS.append(_queue_changes)
