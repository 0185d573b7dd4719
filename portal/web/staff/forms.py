"""Staff forms. Choices that come from the taxonomy (statuses, outcomes, categories, tags) are
filled in by the view from the database."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired

from portal.models import Priority, Visibility
from portal.services.casework.cases import PENDING_STATES
from portal.web.forms import CheckboxListField, PortalForm
from portal.web.labels import DEADLINE_STATE_LABELS, PRIORITY_LABELS

#: The empty choice of a select: "not set" in a form, "any" in a filter.
NONE = ""


class LoginForm(PortalForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    # Shown and required only while the account is under guessing (web/staff/auth.py).
    code = StringField(
        _l("Code from your authenticator app"),
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class CodeForm(PortalForm):
    """The second factor: a code from the authenticator app (checked by the service)."""

    code = StringField(
        _l("Code from your authenticator app"),
        validators=[DataRequired(_l("Enter the 6-digit code."))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True},
    )


class PasswordChangeForm(PortalForm):
    current = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )
    new = PasswordField(
        _l("New password"),
        validators=[DataRequired(_l("Choose a new password."))],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(_l("Type the new password a second time."))],
        render_kw={"autocomplete": "new-password"},
    )


class ApiTokenForm(PortalForm):
    """A new insights API token. Both fields are checked by the service (one place for the
    limits); the lifetime is a text field so that "ninety" comes back as typed, with a message."""

    name = StringField(
        _l("Name"),
        render_kw={"maxlength": 80, "autocomplete": "off"},
    )
    days = StringField(
        _l("Lifetime in days"),
        render_kw={"inputmode": "numeric", "autocomplete": "off", "size": 4},
    )


class ActionForm(PortalForm):
    """A button with a CSRF token and nothing else (acknowledge, log out)."""


class StatusForm(PortalForm):
    """Move the case on. Closing needs an outcome; reopening a closed case needs a reason.
    The workflow service checks the chosen codes, with clearer messages than "not a valid
    choice" (e.g. "The case already has that status.")."""

    status = SelectField(
        _l("New status"),
        validators=[InputRequired(_l("Choose a status."))],
        validate_choice=False,
    )
    outcome = SelectField(
        _l("Outcome (needed to close the case)"), default=NONE, validate_choice=False
    )
    reason = TextAreaField(_l("Reason for reopening"))


def _priority_choices() -> list[SelectChoice]:
    return [SelectChoice(p.value, PRIORITY_LABELS[p]) for p in Priority]


class TriageForm(PortalForm):
    priority = SelectField(
        _l("Priority"),
        choices=_priority_choices,
        validators=[InputRequired(_l("Choose a priority."))],
        validate_choice=True,
    )
    reporter_at_risk = BooleanField(_l("The reporter is at risk of retaliation or harm"))
    org_category = SelectField(
        _l("Category, as the organisation sees it"), default=NONE, validate_choice=True
    )
    tags = CheckboxListField(_l("Tags"), validate_choice=True)
    new_tag = StringField(_l("New tag (optional)"))


def _filter_choices(pairs: list[tuple[str, object]]) -> list[SelectChoice]:
    return [SelectChoice(NONE, _l("Any")), *(SelectChoice(v, label) for v, label in pairs)]


class CaseFilterForm(PortalForm):
    """The case list's filters, read from the query string (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    status = SelectField(_l("Status"), default=NONE, validate_choice=True)
    priority = SelectField(
        _l("Priority"),
        choices=lambda: _filter_choices([(p.value, PRIORITY_LABELS[p]) for p in Priority]),
        default=NONE,
        validate_choice=True,
    )
    deadline = SelectField(
        _l("Next deadline"),
        choices=lambda: _filter_choices(
            [(s.value, DEADLINE_STATE_LABELS[s]) for s in PENDING_STATES]
        ),
        default=NONE,
        validate_choice=True,
    )


_CHOOSE_VISIBILITY = _l("Choose who sees it: a reply the reporter reads, or an internal note.")


class StaffMessageForm(PortalForm):
    text = TextAreaField(_l("Message"), validators=[DataRequired(_l("Write a message first."))])
    # No default: a reply the reporter reads and a note only colleagues read differ in who
    # learns what, so neither is pre-selected and a post without a choice is refused (with the
    # text kept). The choice is checked by AnyOf rather than WTForms' own "Not a valid
    # choice.", so a missing and a wrong value get the same words.
    visibility = RadioField(
        _l("Who sees it"),
        choices=[
            SelectChoice(Visibility.REPORTER.value, _l("Reply: the reporter sees it")),
            SelectChoice(Visibility.INTERNAL.value, _l("Internal note: staff with access only")),
        ],
        validate_choice=False,
        validators=[
            InputRequired(_CHOOSE_VISIBILITY),
            AnyOf([v.value for v in Visibility], _CHOOSE_VISIBILITY),
        ],
    )


def status_choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    """Choices of a taxonomy select (status, outcome), with the empty choice first."""
    return [SelectChoice(NONE, _l("Choose …")), *(SelectChoice(v, label) for v, label in pairs)]


def filter_choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    """Choices of a list filter, with "any" first."""
    return _filter_choices(list(pairs))
