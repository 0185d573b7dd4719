"""The routing test page (Permission.ROUTING_TEST: admins and ombudspersons): which rule a
sample concern would hit, the keyword that matched, the queue, the priority and who would
receive the case key.

The sample text is posted (never put in a URL, which servers and browsers keep), matched in
memory by the same code as a real submission, shown back in the form and then forgotten: it is
not stored, logged, flashed or audited.
"""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice

from portal.errors import InvalidInput
from portal.i18n import labels as i18n
from portal.models import OrgUnitKind
from portal.services.accounts.permissions import Permission
from portal.services.configuration import rule_editing, taxonomy
from portal.web import state
from portal.web.admin.blueprint import bp, section
from portal.web.admin.forms import PRIORITY_LABELS, RuleTestForm
from portal.web.auth import requires
from portal.web.errors import csrf_recoverable
from portal.web.staff.forms import ActionForm

section("staff.admin.rule_test", _l("Routing test"))


def _with_choices(form: RuleTestForm) -> RuleTestForm:
    session = state.db()
    form.category.choices = [SelectChoice("", _("Choose…"))] + [
        SelectChoice(str(c.id), i18n.shown(c)) for c in taxonomy.active_categories(session)
    ]
    form.site.choices = [SelectChoice("", _("Not given"))] + [
        SelectChoice(str(u.id), i18n.shown(u))
        for u in taxonomy.active_units(session, OrgUnitKind.SITE)
    ]
    form.department.choices = [SelectChoice("", _("Not given"))] + [
        SelectChoice(str(u.id), i18n.shown(u))
        for u in taxonomy.active_units(session, OrgUnitKind.DEPARTMENT)
    ]
    return form


@bp.route("/routing-test", methods=["GET", "POST"])
@requires(Permission.ROUTING_TEST)
def rule_test() -> ResponseReturnValue:
    trial = None
    code = 200
    if request.method == "GET":
        form = _with_choices(RuleTestForm(formdata=None))
    else:
        form = _with_choices(RuleTestForm())
        code = 400
        if form.validate_on_submit():
            try:
                trial = rule_editing.try_rules(
                    state.db(),
                    category_id=int(form.category.data),
                    site_id=int(form.site.data) if form.site.data else None,
                    department_id=int(form.department.data) if form.department.data else None,
                    text=form.sample.data or "",
                    max_chars=state.settings().description_max_chars,
                )
            except InvalidInput as error:
                form.field_error(error)
            else:
                code = 200
    return render_template(
        "admin/rule_test.html",
        form=form,
        trial=trial,
        priority_labels=PRIORITY_LABELS,
        max_chars=state.settings().description_max_chars,
        logout_form=ActionForm(formdata=None),
    ), code


csrf_recoverable("staff.admin.rule_test")
