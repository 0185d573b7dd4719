"""Admin console forms. Choices that come from the database are set by the views; the limits are
checked again by the services, which are the authority (docs/limits.md)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, NumberRange, Optional

from portal.i18n import labels as i18n
from portal.models import Priority, Role, StatusKind
from portal.services.configuration import policy
from portal.web.forms import CheckboxListField, PortalForm

ROLE_LABELS = {
    Role.OMBUDSPERSON: _l("Ombudsperson: handles the cases shared with them"),
    Role.ADMIN: _l("Admin: staff accounts, configuration, audit log (no case content)"),
    Role.MANAGEMENT: _l("Management: aggregate reports only"),
    Role.CUSTODIAN: _l("Custodian: approves disclosure of a named reporter's identity"),
}

ROLE_NAMES = {
    Role.OMBUDSPERSON: _l("Ombudsperson"),
    Role.ADMIN: _l("Admin"),
    Role.MANAGEMENT: _l("Management"),
    Role.CUSTODIAN: _l("Custodian"),
}

PRIORITY_LABELS = {
    Priority.LOW: _l("Low"),
    Priority.NORMAL: _l("Normal"),
    Priority.HIGH: _l("High"),
    Priority.URGENT: _l("Urgent"),
}

STATUS_KIND_LABELS = {
    StatusKind.NEW: _l("New: where every case starts (exactly one)"),
    StatusKind.ACKNOWLEDGED: _l("Acknowledged: where acknowledging moves a case (at most one)"),
    StatusKind.OPEN: _l("Open: work in progress (any number)"),
    StatusKind.CLOSED: _l("Closed: needs an outcome (exactly one)"),
}


def role_choices() -> list[SelectChoice]:
    return [SelectChoice(r.value, ROLE_LABELS[r]) for r in Role]


# --- staff ---------------------------------------------------------------------------------------


class NewStaffForm(PortalForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(_l("Give an e-mail address."))])
    name = StringField(
        _l("Public name"), validators=[DataRequired(_l("Give the name reporters will see."))]
    )
    roles = CheckboxListField(_l("Roles"), validate_choice=True)
    queues = CheckboxListField(_l("Queues"), validate_choice=True)
    not_excludable_in = CheckboxListField(
        _l("Reporters cannot exclude them from"), validate_choice=True
    )


class RolesForm(PortalForm):
    roles = CheckboxListField(_l("Roles"), validate_choice=True)


class QueuesForm(PortalForm):
    queues = CheckboxListField(_l("Member of"), validate_choice=True)
    not_excludable_in = CheckboxListField(
        _l("Reporters cannot exclude them from"), validate_choice=True
    )


# --- configuration -------------------------------------------------------------------------------


class QueueForm(PortalForm):
    slug = StringField(_l("Code"))
    name = StringField(_l("Name"))
    description = TextAreaField(_l("Description"))


class ItemForm(PortalForm):
    """The base of the ordered lists."""

    code = StringField(_l("Code"))
    label = StringField(_l("Label"))


class UnitForm(ItemForm):
    """Sites and departments: also their headcount (checked by the service, so that a wrong
    value is kept in the field with its message)."""

    headcount = StringField(_l("Employees (optional)"))


class CategoryForm(ItemForm):
    description = TextAreaField(_l("Description (optional)"))


class StatusForm(ItemForm):
    kind = SelectField(
        _l("Kind"),
        default="",
        choices=[SelectChoice("", _l("Choose…"))]
        + [SelectChoice(k.value, STATUS_KIND_LABELS[k]) for k in StatusKind],
        validate_choice=True,
    )


class OutcomeForm(ItemForm):
    substantiated = BooleanField(_l("Counts as substantiated (in the substantiation rate)"))


# Translations of configured texts, next to the English field, one per language of
# i18n.TRANSLATED_LOCALES; named like the taxonomy file's keys (``label_zh_CN``).
_TRANSLATION_FIELDS: dict[str, tuple[object, bool]] = {
    "name": (_l("Name"), False),
    "label": (_l("Label"), False),
    "description": (_l("Description"), True),
}


def _add_translation_fields(form: type[PortalForm], fields: tuple[str, ...]) -> None:
    for field in fields:
        title, area = _TRANSLATION_FIELDS[field]
        for locale in i18n.TRANSLATED_LOCALES:
            text = _l(
                "%(field)s in %(language)s (optional)",
                field=title,
                language=i18n.LANGUAGE_NAMES[locale],
            )
            setattr(form, i18n.key(field, locale), (TextAreaField if area else StringField)(text))


_add_translation_fields(QueueForm, ("name", "description"))
_add_translation_fields(ItemForm, ("label",))
_add_translation_fields(CategoryForm, ("description",))


def translation_fields(form: PortalForm, field: str) -> list[Any]:
    """The translation fields of ``field`` that ``form`` has, for the template."""
    return [
        form[i18n.key(field, loc)]
        for loc in i18n.TRANSLATED_LOCALES
        if i18n.key(field, loc) in form
    ]


def translations(form: PortalForm, fields: tuple[str, ...]) -> dict[str, str | None]:
    """What was typed into the translation fields of ``fields`` (for the services). A field
    missing from the post is left out, so the translation it would hold is kept: only a field
    sent empty removes one."""
    out: dict[str, str | None] = {}
    for field in fields:
        for loc in i18n.TRANSLATED_LOCALES:
            name = i18n.key(field, loc)
            if name in form and form[name].raw_data:
                out[name] = form[name].data
    return out


class MoveForm(PortalForm):
    direction = HiddenField(validators=[AnyOf(["up", "down"])])


class ActiveForm(PortalForm):
    active = HiddenField(validators=[AnyOf(["yes", "no"])])


class TagForm(PortalForm):
    label = StringField(_l("Name"))


class RuleForm(PortalForm):
    # A field left out of the post counts as "any" (""), like the empty choice.
    category = SelectField(_l("Category"), default="", validate_choice=True)
    site = SelectField(_l("Site"), default="", validate_choice=True)
    department = SelectField(_l("Department"), default="", validate_choice=True)
    keywords = TextAreaField(_l("Keywords (optional), one per line"))
    priority = SelectField(
        _l("Priority of matching cases"),
        default="",
        choices=[SelectChoice("", _l("Normal (no change)"))]
        + [SelectChoice(p.value, PRIORITY_LABELS[p]) for p in Priority if p != Priority.NORMAL],
        validate_choice=True,
    )
    queue = SelectField(
        _l("Queue"),
        default="",
        validators=[DataRequired(_l("Choose the queue that receives matching concerns."))],
        validate_choice=True,
    )


def _policy_field(name: str, label: object) -> IntegerField:
    low, high = policy.LIMITS[name]
    return IntegerField(
        label,
        validators=[
            InputRequired(_l("Give a whole number.")),
            NumberRange(
                low, high, _l("Give a whole number from %(low)d to %(high)d.", low=low, high=high)
            ),
        ],
    )


class PolicyForm(PortalForm):
    acknowledge_days = _policy_field("acknowledge_days", _l("Acknowledge within (days)"))
    feedback_months = _policy_field("feedback_months", _l("Give feedback within (months)"))
    due_soon_days = _policy_field("due_soon_days", _l("Show “due soon” this many days ahead"))
    anonymity_threshold = _policy_field(
        "anonymity_threshold", _l("Anonymity threshold (smallest group in reports)")
    )
    insights_min_headcount = _policy_field(
        "insights_min_headcount", _l("Smallest site or department shown on its own (employees)")
    )
    signal_threshold = _policy_field(
        "signal_threshold", _l("Concerns in one category, unit and quarter that raise an alert")
    )
    retention_days = _policy_field(
        "retention_days", _l("Keep a closed case this many days, then delete it")
    )
    retention_warning_days = _policy_field(
        "retention_warning_days", _l("Warn its holders this many days before the deletion")
    )
    attachments_keep_uncleaned = BooleanField(
        _l("Let reporters send an attachment that cannot be cleaned as it is, after a warning")
    )


class ImportForm(PortalForm):
    file = FileField(_l("Taxonomy file (TOML)"), validators=[FileRequired(_l("Choose a file."))])


# --- routing test --------------------------------------------------------------------------------


class RuleTestForm(PortalForm):
    category = SelectField(
        _l("Category"),
        default="",
        validators=[DataRequired(_l("Choose a category."))],
        validate_choice=True,
    )
    site = SelectField(_l("Site"), default="", validate_choice=True)
    department = SelectField(_l("Department"), default="", validate_choice=True)
    # Not "text": the staff guard shows a field of that name back after a lost session.
    sample = TextAreaField(_l("Sample text (optional)"))


# --- audit log -----------------------------------------------------------------------------------


class _AuditFilterFields(PortalForm):
    action = SelectField(_l("What"), default="", validate_choice=True)
    actor = SelectField(_l("Who"), default="", validate_choice=True)
    case = StringField(_l("Case"))
    day = DateField(_l("Day (UTC)"), validators=[Optional()], format="%Y-%m-%d")
    before = IntegerField(validators=[Optional(), NumberRange(min=1)])


class AuditFilterForm(_AuditFilterFields):
    """Read from the query string (GET): no CSRF token, nothing changes."""

    class Meta:
        csrf = False


class AuditExportForm(_AuditFilterFields):
    """The same filter, posted with a CSRF token: an export is itself recorded in the log."""


class VerifyForm(PortalForm):
    class Meta:
        csrf = False

    expect = StringField(_l("Anchor noted earlier (optional)"))
