"""Reporter forms. Labels are lazy so the active language applies."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    MultipleFileField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, ValidationError

from portal.web.forms import CheckboxListField, PortalForm
from portal.web.uploads import chosen


class _Honeypot(PortalForm):
    """A field people never see or fill (hidden by CSS, out of the tab order, hidden from
    screen readers) that form-filling robots do. A filled one means the post is refused."""

    website = StringField(_l("Leave this field empty"))

    @property
    def honeypot_filled(self) -> bool:
        return bool(self.website.data)


class _AttachmentFields(_Honeypot):
    """The file input and the "send it as it is" warning, shared by both reporter forms. The
    file names are checked by the attachments service, never by a browser-side validator."""

    files = MultipleFileField(_l("Attach files (optional)"))
    keep_uncleaned = BooleanField(
        _l(
            "If a file cannot be cleaned, send it as it is. I understand that it may carry my "
            "name, my device or the place it was made, and that staff will see it as not cleaned."
        )
    )


ANONYMOUS = "anonymous"
NAMED = "named"

#: On every reporter field that may hold identifying details: a shared or work computer's
#: browser must not keep what was typed there and offer it to the next person who types.
NO_AUTOFILL = {"autocomplete": "off"}


class ReportForm(_AttachmentFields):
    category = RadioField(
        _l("What is your concern about?"),
        validators=[InputRequired(_l("Choose what your concern is about."))],
        validate_choice=True,
    )
    site = SelectField(_l("Site (optional)"), validate_choice=True)
    department = SelectField(_l("Department (optional)"), validate_choice=True)
    description = TextAreaField(
        _l("What happened?"),
        validators=[DataRequired(_l("Please describe your concern."))],
        render_kw=NO_AUTOFILL,
    )
    happened = SelectField(
        _l("When did it happen?"),
        validators=[DataRequired(_l("Choose a month, or “ongoing”."))],
        validate_choice=True,
    )
    identity = RadioField(
        _l("Do you want to give your name?"),
        choices=[
            SelectChoice(ANONYMOUS, _l("No, stay anonymous")),
            SelectChoice(
                NAMED, _l("Yes, give my name and contact details to the ombudsperson only")
            ),
        ],
        default=ANONYMOUS,
        validators=[InputRequired()],
    )
    contact_name = StringField(_l("Your name"), render_kw=NO_AUTOFILL)
    contact_details = StringField(_l("How to reach you (e-mail or phone)"), render_kw=NO_AUTOFILL)
    excluded = CheckboxListField(
        _l("Ombudspersons who must not see your concern (optional)"), coerce=int
    )
    # Asked only when the organisation set one (``report_access_code_hash``); checked in the view.
    access_code = PasswordField(_l("Access code"), render_kw=NO_AUTOFILL)


class ReceiptForm(PortalForm):
    receipt = StringField(
        _l("Your receipt"),
        validators=[DataRequired(_l("Type the receipt you were given."))],
        render_kw=NO_AUTOFILL,
    )


class ReceiptCheckForm(PortalForm):
    """The receipt page's practice check. ``token`` carries this submission's receipt encrypted
    (``portal.web.reporter.receipt_check``); an empty ``typed`` is simply "does not match"."""

    typed = StringField(_l("Type your receipt again to check you saved it"), render_kw=NO_AUTOFILL)
    token = HiddenField()


class MessageForm(_AttachmentFields):
    text = TextAreaField(_l("Add information or reply"), render_kw=NO_AUTOFILL)

    def validate_text(self, field: Field) -> None:
        # A message may be empty when it carries files.
        if not (field.data or "").strip() and not chosen(self.files.data):
            raise ValidationError(_l("Write a message first."))


class LeaveForm(PortalForm):
    pass
