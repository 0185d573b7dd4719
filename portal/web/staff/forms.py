"""Staff forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    EmailField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired

from portal.models import CaseStatus, Visibility
from portal.web.forms import PortalForm
from portal.web.labels import STATUS_LABELS


class LoginForm(PortalForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


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


class ActionForm(PortalForm):
    """A button with a CSRF token and nothing else (acknowledge, log out)."""


class StatusForm(PortalForm):
    status = SelectField(
        _l("New status"),
        choices=[
            SelectChoice(s.value, STATUS_LABELS[s]) for s in CaseStatus if s != CaseStatus.NEW
        ],
        validate_choice=True,
    )


class StaffMessageForm(PortalForm):
    text = TextAreaField(_l("Message"), validators=[DataRequired(_l("Write a message first."))])
    visibility = RadioField(
        _l("Who sees it"),
        choices=[
            SelectChoice(Visibility.REPORTER.value, _l("Reply: the reporter sees it")),
            SelectChoice(Visibility.INTERNAL.value, _l("Internal note: staff with access only")),
        ],
        default=Visibility.REPORTER.value,
        validators=[InputRequired()],
    )
