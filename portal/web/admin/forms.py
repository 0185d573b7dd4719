"""Admin console forms. Choices that come from the database are set by the views; the limits are
checked again by the services, which are the authority (docs/limits.md)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, SelectChoice, StringField
from wtforms.validators import DataRequired

from portal.models import Role
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
