"""Human labels for stored values, in the active language."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from portal.models import CaseStatus
from portal.services.deadlines import DeadlineKind, DeadlineState

STATUS_LABELS = {
    CaseStatus.NEW: _l("New"),
    CaseStatus.ACKNOWLEDGED: _l("Acknowledged"),
    CaseStatus.INVESTIGATING: _l("Investigating"),
    CaseStatus.AWAITING_REPORTER: _l("Awaiting reporter"),
    CaseStatus.CLOSED: _l("Closed"),
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
}


def status_text(status: str) -> str:
    return str(STATUS_LABELS[CaseStatus(status)])


def register(app: Flask) -> None:
    from portal.web import state

    app.context_processor(
        lambda: {"portal_settings": state.settings(), "portal_policy": state.policy}
    )
    app.jinja_env.globals.update(
        status_text=status_text,
        deadline_kind_labels=DEADLINE_KIND_LABELS,
        deadline_state_labels=DEADLINE_STATE_LABELS,
    )
