"""Human labels for stored values, in the active language.

Workflow statuses, outcomes, categories, units and queues are configured rows with their own
labels and translations (the taxonomy file), shown with ``shown(row)`` (templates) or
``i18n.shown`` (code); the fixed vocabularies of the code (priorities, deadline states, audit
actions) are labelled here.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import Token

from flask import Flask, g, request
from flask_babel import get_locale, gettext, ngettext
from flask_babel import lazy_gettext as _l

from portal.i18n import labels as i18n
from portal.i18n.wording import Message
from portal.models import Priority, RequestState
from portal.services.attachments.sanitize.core import FileKind
from portal.services.audit.chain import Action
from portal.services.casework import workflow
from portal.services.casework.deadlines import DeadlineKind, DeadlineState

PRIORITY_LABELS = {
    Priority.LOW: _l("Low"),
    Priority.NORMAL: _l("Normal"),
    Priority.HIGH: _l("High"),
    Priority.URGENT: _l("Urgent"),
}

DEADLINE_KIND_LABELS = {
    DeadlineKind.ACKNOWLEDGE: _l("Acknowledge by"),
    DeadlineKind.FEEDBACK: _l("Feedback by"),
}

DEADLINE_STATE_LABELS = {
    DeadlineState.DUE: _l("due"),
    DeadlineState.DUE_SOON: _l("due soon"),
    DeadlineState.OVERDUE: _l("overdue"),
    DeadlineState.MET: _l("met"),
    DeadlineState.ENDED: _l("not sent: closed first"),
}

#: What each audit action is called in a case's history and in the admin's audit log (one list).
ACTION_LABELS = {
    Action.LOGIN: _l("Logged in"),
    Action.LOGIN_FAILED: _l("Failed log-in"),
    Action.LOGOUT: _l("Logged out"),
    Action.TOTP_ENROLLED: _l("Second factor set up"),
    Action.PASSWORD_CHANGED: _l("Password changed"),
    Action.SESSION_REVOKED: _l("Session revoked"),
    Action.API_TOKEN_CREATED: _l("API token created"),
    Action.API_TOKEN_REVOKED: _l("API token revoked"),
    Action.CASE_VIEWED: _l("Case viewed"),
    Action.CASE_ACKNOWLEDGED: _l("Case acknowledged"),
    Action.CASE_STATUS_CHANGED: _l("Case status changed"),
    Action.CASE_CLOSED: _l("Case closed"),
    Action.CASE_REOPENED: _l("Case reopened"),
    Action.CASE_REPLIED: _l("Reply to the reporter"),
    Action.CASE_NOTE_ADDED: _l("Internal note added"),
    Action.CASE_TRIAGED: _l("Case triaged"),
    Action.CASE_GRANTED: _l("Case access granted"),
    Action.CASE_REGRANTED: _l("Case access re-granted"),
    Action.CASE_REGRANT_REFUSED: _l("Re-grant refused: wrong key fingerprint"),
    Action.CASE_TRANSFERRED: _l("Case transferred"),
    Action.CASE_RECUSED: _l("Recused from a case"),
    Action.CASE_HOLD_PLACED: _l("Legal hold placed"),
    Action.CASE_HOLD_LIFTED: _l("Legal hold lifted"),
    Action.CASE_MESSAGES_REFUSED: _l("Messages that could not be verified were not shown"),
    Action.ATTACHMENT_DECRYPTED: _l("Attachment decrypted"),
    Action.STAFF_CREATED: _l("Staff account created"),
    Action.STAFF_DISABLED: _l("Staff account disabled"),
    Action.STAFF_ENABLED: _l("Staff account enabled"),
    Action.STAFF_ROLES_CHANGED: _l("Staff roles changed"),
    Action.STAFF_QUEUES_CHANGED: _l("Staff queues changed"),
    Action.STAFF_ACCESS_REQUESTED: _l("Access for a staff member requested"),
    Action.STAFF_ACCESS_APPROVED: _l("Access for a staff member approved"),
    Action.STAFF_ACCESS_REJECTED: _l("Access for a staff member rejected"),
    Action.STAFF_ACCESS_WITHDRAWN: _l("Access request withdrawn"),
    Action.STAFF_ACCESS_EXPIRED: _l("Access request expired"),
    Action.STAFF_PASSWORD_RESET: _l("Staff password reset"),
    Action.CONFIG_CHANGED: _l("Configuration changed"),
    Action.CONFIG_EXPORTED: _l("Taxonomy exported"),
    Action.CONFIG_IMPORTED: _l("Taxonomy imported"),
    Action.AUDIT_EXPORTED: _l("Audit log exported"),
    Action.AUDIT_HEAD_SEALED: _l("Audit log head sealed (first time)"),
    Action.AUDIT_HEAD_MISMATCH: _l("Audit log head did not match its seal"),
    Action.BACKUP_CREATED: _l("Encrypted backup made"),
    Action.BACKUP_RESTORED: _l("Restored from an encrypted backup"),
    Action.INSIGHTS_EXPORTED: _l("Insight table exported (CSV)"),
    Action.NOTIFICATIONS_SENT: _l("New-case notifications sent"),
    Action.SIGNALS_RAISED: _l("Systemic-signal alerts raised"),
    Action.INSIGHTS_REFRESHED: _l("Insight figures computed"),
    Action.REMINDERS_SENT: _l("Deadline reminders sent"),
    Action.AUDIT_DIGEST_SENT: _l("Audit log anchor mailed to the admins"),
    Action.RETENTION_RUN: _l("Retention: closed cases warned about or deleted"),
    Action.REPORTER_DAY: _l("Reporter events of a day (counts)"),
}


#: How an access request ended (four eyes), in "asked by X, approved by Y".
REQUEST_STATE_LABELS = {
    RequestState.PENDING: _l("waiting"),
    RequestState.APPROVED: _l("approved"),
    RequestState.REJECTED: _l("rejected"),
    RequestState.WITHDRAWN: _l("withdrawn"),
    RequestState.EXPIRED: _l("expired"),
    RequestState.AT_SERVER: _l("made at the server"),
}


#: What the keys of an audit event's detail are called where a case's history shows them.
DETAIL_LABELS = {
    "from": _l("from"),
    "to": _l("to"),
    "outcome": _l("outcome"),
    "changed": _l("changed"),
    "priority": _l("priority"),
    "reporter_at_risk": _l("reporter at risk"),
    "org_category": _l("organisation's category"),
    "tags": _l("tags"),
    "tags_created": _l("new tags"),
    "attachment": _l("attachment"),
    "count": _l("how many"),
}


def thread_text(text: str) -> str:
    """A message of a case's thread as shown: the automatic acknowledgement, stored in English,
    in the reader's language; anything a person wrote exactly as they wrote it."""
    if text == workflow.ACKNOWLEDGEMENT_TEXT:
        return translated(workflow.ACKNOWLEDGEMENT_TEXT)
    return text


def translated(text: str) -> str:
    """A service's message (``wording.N_``) in the active language; other text as it is."""
    if isinstance(text, Message):
        translation: str = gettext(text.msgid, **text.variables)
        return translation
    return text


#: How the attachment types are named to reporters, in this order.
KIND_LABELS = {
    FileKind.JPEG: _l("JPEG pictures"),
    FileKind.PNG: _l("PNG pictures"),
    FileKind.WEBP: _l("WebP pictures"),
    FileKind.GIF: _l("GIF pictures"),
    FileKind.PDF: _l("PDF"),
    FileKind.TEXT: _l("plain text (.txt)"),
    FileKind.DOCX: _l("Word (.docx)"),
    FileKind.XLSX: _l("Excel (.xlsx)"),
    FileKind.PPTX: _l("PowerPoint (.pptx)"),
}


def kind_labels(kinds: Iterable[FileKind]) -> str:
    allowed = set(kinds)
    return ", ".join(str(label) for kind, label in KIND_LABELS.items() if kind in allowed)


def file_size(size: int) -> str:
    """A size for people: 512 bytes, 300 KB, 1.5 MB (binary units, as the limits are)."""
    if size < 1024:
        return str(ngettext("%(num)d byte", "%(num)d bytes", size))
    if size < 1024 * 1024:
        kib = f"{size / 1024:.0f}"  # outside the call: Babel warns on any f-string inside one
        return str(gettext("%(size)s KB", size=kib))
    value = size / (1024 * 1024)
    shown = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
    return str(gettext("%(size)s MB", size=shown))


def detail_label(key: str) -> str:
    return str(DETAIL_LABELS[key]) if key in DETAIL_LABELS else key


def action_label(action: str) -> str:
    """The label of an audit action; an action this version does not know shows its code."""
    try:
        return str(ACTION_LABELS[Action(action)])
    except (ValueError, KeyError):
        return action


#: Paths of the staff side. Their pages (error pages included) carry no quick exit.
STAFF_PATHS = ("/staff/", "/insights/", "/api/")


def quick_exit_here() -> bool:
    """Whether this page gets "Leave this site quickly": every reporter page, and error pages
    reached from anywhere but the staff side. Staff pages extend ``staff/base.html``, which
    drops the link whatever this says."""
    return not (request.path + "/").startswith(STAFF_PATHS)


def request_locale() -> str | None:
    """Flask-Babel's locale for this request (or the one forced around a block)."""
    locale = get_locale()
    return str(locale) if locale is not None else None


def _bind_locale() -> None:
    # Bound as a source, not a value: asked when a label is shown, so whatever chooses the
    # locale later in the request (or flask_babel.force_locale) still applies.
    g.label_locale_token = i18n.set_locale_source(request_locale)


def _unbind_locale(_exc: BaseException | None = None) -> None:
    token: Token[i18n.LocaleSource | None] | None = g.pop("label_locale_token", None)
    if token is not None:
        i18n.reset_locale_source(token)


def register(app: Flask) -> None:
    app.before_request(_bind_locale)
    app.teardown_request(_unbind_locale)
    from portal.web import state

    app.context_processor(
        lambda: {"portal_settings": state.settings(), "portal_policy": state.policy}
    )
    app.jinja_env.globals.update(
        priority_labels=PRIORITY_LABELS,
        deadline_kind_labels=DEADLINE_KIND_LABELS,
        deadline_state_labels=DEADLINE_STATE_LABELS,
        request_state_labels=REQUEST_STATE_LABELS,
        action_label=action_label,
        detail_label=detail_label,
        quick_exit_here=quick_exit_here,
        translated=translated,
        thread_text=thread_text,
        kind_labels=kind_labels,
        shown=i18n.shown,
    )
    app.jinja_env.filters["filesize"] = file_size
