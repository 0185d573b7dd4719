"""Ombudsperson views: case list, case page, and the actions on a case."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterator
from urllib.parse import quote

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from wtforms import SelectChoice, SelectField

from portal.errors import InvalidTransition
from portal.i18n import labels as i18n
from portal.models import Case, Category, Priority, Tag, Visibility
from portal.services.accounts.permissions import Permission
from portal.services.attachments import store as attachments
from portal.services.casework import cases as case_service
from portal.services.casework import history, workflow
from portal.services.casework import triage as triage_service
from portal.services.casework.deadlines import DeadlineState
from portal.services.configuration import taxonomy
from portal.web import state
from portal.web.auth import current_private_key, current_staff, requires
from portal.web.errors import csrf_recoverable
from portal.web.labels import translated
from portal.web.staff.blueprint import bp
from portal.web.staff.forms import (
    NONE,
    ActionForm,
    CaseFilterForm,
    StaffMessageForm,
    StatusForm,
    TriageForm,
    filter_choices,
    status_choices,
)
from portal.web.transactions import commit_or_form_error, discard, unit_of_work

log = logging.getLogger("portal.web")

#: Extra panels of the case page: each function gets the opened case and returns template
#: variables; its template is included by staff/case.html. Feature modules append to this.
CASE_PANELS: list[Callable[[case_service.CaseDetail], dict[str, object]]] = []
#: The same for the case list: functions returning template variables for its notices.
CASE_LIST_PANELS: list[Callable[[], dict[str, object]]] = []


def _history_panel(detail: case_service.CaseDetail) -> dict[str, object]:
    """The case's own history (staff/_case_history.html)."""
    return {"history": history.case_history(state.db(), detail.case)}


CASE_PANELS.append(_history_panel)


# --- the case list ------------------------------------------------------------------------------


def _case_filter(form: CaseFilterForm) -> case_service.CaseFilter:
    """The filters of the list; a value that is not offered is marked next to its field and
    left out, so the list still shows (never more than the user's own cases)."""
    form.status.choices = filter_choices(
        [(s.code, i18n.shown(s)) for s in taxonomy.statuses(state.db())]
    )
    form.validate()
    for field in (form.status, form.priority, form.deadline):
        if field.errors:
            field.errors = [_("This choice is not offered, so this filter was left out.")]

    def value(field: SelectField) -> str | None:
        return field.data if field.data and not field.errors else None

    status, priority, deadline = value(form.status), value(form.priority), value(form.deadline)
    return case_service.CaseFilter(
        status=status,
        priority=Priority(priority) if priority else None,
        deadline=DeadlineState(deadline) if deadline else None,
    )


@bp.get("/")
@requires(Permission.CASES_LIST)
def cases() -> ResponseReturnValue:
    form = CaseFilterForm(formdata=request.args)
    flt = _case_filter(form)
    groups = case_service.list_for(
        state.db(), state.settings(), current_staff(), state.today(), flt
    )
    notices: dict[str, object] = {}
    for panel in CASE_LIST_PANELS:
        notices.update(panel())
    filtered = any(v is not None for v in (flt.status, flt.priority, flt.deadline))
    return render_template(
        "staff/cases.html",
        groups=groups,
        filter_form=form,
        filtered=filtered,
        logout_form=ActionForm(),
        **notices,
    ), (400 if form.errors else 200)


# --- the case page ------------------------------------------------------------------------------


def _status_choices(form: StatusForm, case: Case) -> None:
    session = state.db()
    form.status.choices = status_choices(
        [(s.code, i18n.shown(s)) for s in workflow.targets(session, case)]
    )
    form.outcome.choices = status_choices(
        [(o.code, i18n.shown(o)) for o in taxonomy.outcomes(session)]
    )


def _triage_choices(form: TriageForm, case: Case, case_tags: list[Tag]) -> None:
    session = state.db()
    categories = taxonomy.active_categories(session)
    if case.org_category_id is not None and all(c.id != case.org_category_id for c in categories):
        retired = session.get(Category, case.org_category_id)  # retired since; it may stay
        if retired is not None:
            categories.append(retired)
    form.org_category.choices = [
        SelectChoice(NONE, _("Not set")),
        *(SelectChoice(str(c.id), i18n.shown(c)) for c in categories),
    ]
    form.tags.choices = [
        SelectChoice(str(t.id), t.label) for t in triage_service.offered_tags(session, case_tags)
    ]


def _triage_form(detail: case_service.CaseDetail, form: TriageForm | None) -> TriageForm:
    case = detail.case
    if form is None:
        form = TriageForm(
            formdata=None,
            priority=case.priority,
            reporter_at_risk=case.reporter_at_risk,
            org_category=str(case.org_category_id) if case.org_category_id else NONE,
            tags=[str(t.id) for t in detail.tags],
        )
    _triage_choices(form, case, detail.tags)
    return form


def _status_form(detail: case_service.CaseDetail, form: StatusForm | None) -> StatusForm:
    form = form or StatusForm(formdata=None)
    _status_choices(form, detail.case)
    return form


def _render_case(
    handle: str,
    message_form: StaffMessageForm | None = None,
    status_form: StatusForm | None = None,
    triage_form: TriageForm | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    """The case page: the one place where a case is decrypted to be shown, so the one place that
    records the view (DESIGN.md invariant 6), whatever the status code. A form refused with 400
    shows the whole case again, and that answer is a view like the GET's (issue 13, finding 5).

    An answer with an error code is a refused action: whatever it flushed is rolled back first,
    so that committing the view cannot commit any of it. A case this user holds no key for is
    the same 404 as one that does not exist (``NoAccess``, ``portal.web.errors``)."""
    session = state.db()
    if code >= 400:
        discard()
    detail = case_service.view_case(
        session,
        state.settings(),
        current_staff(),
        current_private_key(),
        handle,
        state.now(),
    )
    session.commit()  # the view is on record before anything is shown
    panels: dict[str, object] = {}
    for panel in CASE_PANELS:
        panels.update(panel(detail))
    return render_template(
        "staff/case.html",
        detail=detail,
        closed=workflow.is_closed(detail.case),
        message_form=message_form or StaffMessageForm(formdata=None),
        status_form=_status_form(detail, status_form),
        triage_form=_triage_form(detail, triage_form),
        reopen_reason_max_chars=workflow.REOPEN_REASON_MAX_CHARS,
        tag_max_chars=triage_service.TAG_MAX_CHARS,
        ack_form=ActionForm(formdata=None),
        logout_form=ActionForm(formdata=None),
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
    try:
        with unit_of_work():
            case_service.acknowledge(
                state.db(), current_staff(), current_private_key(), handle, state.now()
            )
    except InvalidTransition as error:
        flash(translated(error.message), "error")
        return redirect(url_for("staff.case", handle=handle))
    return _act(handle, _("Acknowledged; the reporter will see it at follow-up."))


@bp.post("/cases/<handle>/status")
@requires(Permission.CASE_WRITE)
def change_status(handle: str) -> ResponseReturnValue:
    form = StatusForm()
    session = state.db()
    # The choices depend on the case; a handle without access gets the same 404 as ever.
    case, _key = case_service.unlock(session, current_staff(), current_private_key(), handle)
    _status_choices(form, case)
    if not form.validate_on_submit():
        return _render_case(handle, status_form=form, code=400)
    with commit_or_form_error(form) as work:
        moved_to = case_service.set_status(
            session,
            current_staff(),
            current_private_key(),
            handle,
            form.status.data,
            state.now(),
            outcome=form.outcome.data or None,
            reason=form.reason.data or None,
        )
    if not work.committed:
        return _render_case(handle, status_form=form, code=400)
    return _act(handle, _("Status changed to “%(status)s”.", status=i18n.shown(moved_to)))


csrf_recoverable("staff.change_status")


@bp.post("/cases/<handle>/triage")
@requires(Permission.CASE_WRITE)
def triage(handle: str) -> ResponseReturnValue:
    form = TriageForm()
    session = state.db()
    case, _key = case_service.unlock(session, current_staff(), current_private_key(), handle)
    _triage_choices(form, case, case_service.tags_of(session, case))
    if not form.validate_on_submit():
        return _render_case(handle, triage_form=form, code=400)
    values = triage_service.Triage(
        priority=Priority(form.priority.data),
        reporter_at_risk=bool(form.reporter_at_risk.data),
        org_category_id=int(form.org_category.data) if form.org_category.data else None,
        tag_ids=[int(t) for t in form.tags.data or ()],
        new_tag=form.new_tag.data or "",
    )
    try:
        with commit_or_form_error(form) as work:
            changed = triage_service.triage(
                session, current_staff(), current_private_key(), handle, values, state.now()
            )
    except IntegrityError:
        # A colleague created the same tag at the same moment: it exists now. (The failed
        # commit is rolled back with the rest of the refused action, by ``_render_case``.)
        form.new_tag.errors = [_("A colleague has just created this tag. Send the form again.")]
        return _render_case(handle, triage_form=form, code=400)
    if not work.committed:
        return _render_case(handle, triage_form=form, code=400)
    if not changed:
        return _act(handle, _("Nothing changed in the triage."))
    return _act(handle, _("Triage saved."))


csrf_recoverable("staff.triage")


@bp.post("/cases/<handle>/messages")
@requires(Permission.CASE_WRITE)
def post_message(handle: str) -> ResponseReturnValue:
    form = StaffMessageForm()
    if not form.validate_on_submit():
        return _render_case(handle, message_form=form, code=400)
    visibility = Visibility(form.visibility.data)
    with commit_or_form_error(form) as work:
        case_service.add_message(
            state.db(),
            state.settings(),
            current_staff(),
            current_private_key(),
            handle,
            form.text.data,
            visibility,
            state.now(),
        )
    if not work.committed:
        return _render_case(handle, message_form=form, code=400)
    if visibility == Visibility.REPORTER:
        return _act(handle, _("Reply sent; the reporter sees it at follow-up."))
    return _act(handle, _("Internal note saved."))


csrf_recoverable("staff.post_message")


# --- attachments ---------------------------------------------------------------------------------

#: What a download may do in the browser: nothing. Sandboxed, no script, no subresource, even
#: if a browser were to render it instead of saving it.
DOWNLOAD_CSP = "sandbox; default-src 'none'"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one in RFC 5987 ``filename*``."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = "".join(ch if ch.isalnum() or ch in " ._()-" else "_" for ch in fallback).strip()
    encoded = quote(filename, safe="")
    return f"attachment; filename=\"{fallback or 'attachment'}\"; filename*=UTF-8''{encoded}"


def _guarded(first: bytes, chunks: Iterator[bytes], attachment_id: str) -> Iterator[bytes]:
    """Stop a download whose stored chunk fails to decrypt. The response then ends short of its
    Content-Length, so the browser reports the download as failed instead of keeping a
    truncated file. Logged by id; a file name never reaches the log."""
    try:
        yield first
        yield from chunks
    except attachments.AttachmentDamaged:
        log.warning(
            "attachment %s: a stored chunk did not decrypt; download cut short", attachment_id
        )


@bp.get("/cases/<handle>/attachments/<attachment_id>")
@requires(Permission.CASE_READ)
def attachment(handle: str, attachment_id: str) -> ResponseReturnValue:
    """Decrypt and send one attachment, chunk by chunk, after recording it in the audit log."""
    try:
        # The download is on record before any byte of it is sent.
        with unit_of_work():
            info, chunks = case_service.open_attachment(
                state.db(),
                current_staff(),
                current_private_key(),
                handle,
                attachment_id,
                state.now(),
            )
            # The first chunk is decrypted before answering, so damage found there (all of a
            # small file) gets a message instead of a download cut short.
            first = next(chunks, b"")
    except attachments.AttachmentDamaged:
        log.warning("attachment %s: its stored data does not match; not sent", attachment_id)
        flash(_("This attachment is damaged and cannot be opened."), "error")
        return redirect(url_for("staff.case", handle=handle))
    # Werkzeug adds "; charset=utf-8" to a text ``mimetype`` itself: given as the whole
    # ``content_type``, a text file says its charset once (it said it twice before issue 13).
    content_type = info.content_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    response = Response(
        stream_with_context(_guarded(first, chunks, info.id)), content_type=content_type
    )
    response.headers["Content-Length"] = str(info.size)
    response.headers["Content-Disposition"] = content_disposition(info.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "no-store"
    return response
