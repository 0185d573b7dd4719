"""Configuration in the console (Permission.ADMIN_CONFIG): queues, categories, sites,
departments, workflow statuses, outcomes, tags, routing rules and the policy.

Each form posts to one service call (``services/configuration.py``), which checks the same
rules as the taxonomy file and writes the audit event; the view commits once. A refused change
re-renders the page with the message next to the field or the row it concerns.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice

from portal.errors import InvalidInput
from portal.i18n import labels as i18n
from portal.models import OrgUnitKind, Queue, RoutingRule
from portal.services.accounts.permissions import Permission
from portal.services.configuration import (
    editing,
    list_editing,
    policy,
    queue_editing,
    rule_editing,
    tag_editing,
    taxonomy,
)
from portal.services.configuration.list_editing import LIST_KINDS, ListKind
from portal.services.configuration.rule_editing import RuleFields
from portal.services.reporting import routing
from portal.web import state
from portal.web.admin.blueprint import bp, section
from portal.web.admin.forms import (
    PRIORITY_LABELS,
    STATUS_KIND_LABELS,
    ActiveForm,
    CategoryForm,
    ItemForm,
    MoveForm,
    OutcomeForm,
    PolicyForm,
    QueueForm,
    RuleForm,
    StatusForm,
    TagForm,
    UnitForm,
    translation_fields,
    translations,
)
from portal.web.auth import current_staff, requires
from portal.web.errors import csrf_recoverable
from portal.web.labels import translated
from portal.web.staff.forms import ActionForm
from portal.web.transactions import commit_or_form_error, unit_of_work

section("staff.admin.config", _l("Configuration"))

#: The ordered lists share their views; the URL names the list.
LISTS = "any(" + ", ".join(LIST_KINDS) + "):kind"

LIST_TITLES = {
    "categories": _l("Categories"),
    "sites": _l("Sites"),
    "departments": _l("Departments"),
    "statuses": _l("Workflow statuses"),
    "outcomes": _l("Outcomes"),
}
LIST_HINTS = {
    "categories": _l(
        "What reporters choose from, in this order. Codes never change: cases, rules and"
        " statistics refer to them."
    ),
    "sites": _l(
        "Coarse places a reporter may name (or not). Keep them coarse: a unit of a handful of"
        " people points at its members."
    ),
    "departments": _l(
        "Coarse departments a reporter may name (or not). Keep them coarse: a unit of a"
        " handful of people points at its members."
    ),
    "statuses": _l(
        "The case workflow. Exactly one active status of kind “new” and one of kind “closed”;"
        " at most one of kind “acknowledged”. A status that cases have cannot be deactivated."
    ),
    "outcomes": _l("How a closed case ended; closing a case needs one."),
}
_FORMS: dict[str, type[ItemForm]] = {
    "categories": CategoryForm,
    "sites": UnitForm,
    "departments": UnitForm,
    "statuses": StatusForm,
    "outcomes": OutcomeForm,
}


def _done(message: str, endpoint: str, **values: Any) -> ResponseReturnValue:
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def _unchanged(endpoint: str, **values: Any) -> ResponseReturnValue:
    flash(_("Nothing changed."), "info")
    return redirect(url_for(endpoint, **values))


def _csrf_failed() -> ResponseReturnValue:
    return render_template("errors/error.html", code=400, reason="csrf"), 400


@bp.get("/config")
@requires(Permission.ADMIN_CONFIG)
def config() -> ResponseReturnValue:
    return render_template("admin/config.html", list_titles=LIST_TITLES, logout_form=ActionForm())


# --- queues --------------------------------------------------------------------------------------


def _render_queues(
    form: QueueForm | None = None, row_error: tuple[int, str] | None = None, code: int = 200
) -> ResponseReturnValue:
    session = state.db()
    return render_template(
        "admin/queues.html",
        rows=queue_editing.queue_overview(session),
        form=form or QueueForm(formdata=None),
        action_form=ActionForm(formdata=None),
        row_error=row_error,
        logout_form=ActionForm(formdata=None),
    ), code


@bp.route("/config/queues", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def queues() -> ResponseReturnValue:
    if request.method == "GET":
        return _render_queues()
    form = QueueForm()
    if form.validate_on_submit():
        with commit_or_form_error(form) as work:
            queue = queue_editing.add_queue(
                state.db(),
                slug=form.slug.data,
                name=form.name.data,
                description=form.description.data,
                translations=translations(form, Queue.TRANSLATED),
                actor=current_staff(),
                now=state.now(),
            )
        if work.committed:
            return _done(
                _("Queue %(slug)s added. Give it members on the staff pages.", slug=queue.slug),
                "staff.admin.queues",
            )
    return _render_queues(form, code=400)


csrf_recoverable("staff.admin.queues")


@bp.route("/config/queues/<int:queue_id>", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def queue_edit(queue_id: int) -> ResponseReturnValue:
    queue = queue_editing.get_queue(state.db(), queue_id)
    form = (
        QueueForm()
        if request.method == "POST"
        else QueueForm(None, obj=queue, **i18n.flat(queue.translations, Queue.TRANSLATED))
    )
    del form.slug  # a queue's code never changes
    if request.method == "POST":
        if form.validate_on_submit():
            with commit_or_form_error(form) as work:
                changed = queue_editing.edit_queue(
                    state.db(),
                    queue,
                    name=form.name.data,
                    description=form.description.data,
                    translations=translations(form, Queue.TRANSLATED),
                    actor=current_staff(),
                    now=state.now(),
                )
            if work.committed:
                if not changed:
                    return _unchanged("staff.admin.queues")
                return _done(_("Queue saved."), "staff.admin.queues")
        code = 400
    else:
        code = 200
    return render_template(
        "admin/queue_edit.html", queue=queue, form=form, logout_form=ActionForm(formdata=None)
    ), code


csrf_recoverable("staff.admin.queue_edit")


@bp.context_processor
def _translation_fields() -> dict[str, object]:
    # The translation fields beside their English field (admin/_macros.html).
    return {"translation_fields": translation_fields}


@bp.post("/config/queues/<int:queue_id>/fallback")
@requires(Permission.ADMIN_CONFIG)
def queue_fallback(queue_id: int) -> ResponseReturnValue:
    queue = queue_editing.get_queue(state.db(), queue_id)
    if not ActionForm().validate_on_submit():
        return _csrf_failed()
    session = state.db()
    changed = queue_editing.set_fallback(session, queue, actor=current_staff(), now=state.now())
    session.commit()
    if not changed:
        return _unchanged("staff.admin.queues")
    return _done(
        _("%(name)s is now the fallback queue.", name=i18n.shown(queue, "name")),
        "staff.admin.queues",
    )


# --- ordered lists -------------------------------------------------------------------------------


def _spec(kind: str) -> ListKind:
    return LIST_KINDS[kind]


def _translated(spec: ListKind) -> tuple[str, ...]:
    """The translatable fields of a list's rows (``label``; categories' ``description``)."""
    return list_editing.model_of(spec).TRANSLATED


def _render_list(
    kind: str,
    form: ItemForm | None = None,
    row_error: tuple[int, str] | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    session = state.db()
    return render_template(
        "admin/list.html",
        kind=kind,
        title=LIST_TITLES[kind],
        hint=LIST_HINTS[kind],
        items=list_editing.items(session, _spec(kind)),
        form=form or _FORMS[kind](formdata=None),
        action_form=ActionForm(formdata=None),
        row_error=row_error,
        status_kind_labels=STATUS_KIND_LABELS,
        logout_form=ActionForm(formdata=None),
    ), code


@bp.route(f"/config/<{LISTS}>", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def listing(kind: str) -> ResponseReturnValue:
    if request.method == "GET":
        return _render_list(kind)
    spec = _spec(kind)
    form = _FORMS[kind]()
    if form.validate_on_submit():
        with commit_or_form_error(form) as work:
            item = list_editing.add_item(
                state.db(),
                spec,
                code=form.code.data,
                label=form.label.data,
                description=form.description.data if isinstance(form, CategoryForm) else "",
                status_kind=form.kind.data if isinstance(form, StatusForm) else None,
                substantiated=bool(form.substantiated.data)
                if isinstance(form, OutcomeForm)
                else False,
                headcount=form.headcount.data if isinstance(form, UnitForm) else None,
                translations=translations(form, _translated(spec)),
                actor=current_staff(),
                now=state.now(),
            )
        if work.committed:
            return _done(_("%(code)s added.", code=item.code), "staff.admin.listing", kind=kind)
    return _render_list(kind, form, code=400)


csrf_recoverable("staff.admin.listing")


@bp.route(f"/config/<{LISTS}>/<int:item_id>", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def item_edit(kind: str, item_id: int) -> ResponseReturnValue:
    spec = _spec(kind)
    item = list_editing.get_item(state.db(), spec, item_id)
    form_class = _FORMS[kind]
    form = (
        form_class()
        if request.method == "POST"
        else form_class(None, obj=item, **i18n.flat(item.translations, item.TRANSLATED))
    )
    del form.code  # codes never change: cases and rules refer to them
    if isinstance(form, StatusForm):
        del form.kind  # a status's kind is fixed when it is added
    code = 200
    if request.method == "POST":
        if form.validate_on_submit():
            with commit_or_form_error(form) as work:
                changed = list_editing.edit_item(
                    state.db(),
                    spec,
                    item,
                    label=form.label.data,
                    description=form.description.data if isinstance(form, CategoryForm) else None,
                    substantiated=bool(form.substantiated.data)
                    if isinstance(form, OutcomeForm)
                    else None,
                    headcount=(form.headcount.data or "") if isinstance(form, UnitForm) else None,
                    translations=translations(form, item.TRANSLATED),
                    actor=current_staff(),
                    now=state.now(),
                )
            if work.committed:
                if not changed:
                    return _unchanged("staff.admin.listing", kind=kind)
                return _done(_("%(code)s saved.", code=item.code), "staff.admin.listing", kind=kind)
        code = 400
    return render_template(
        "admin/item_edit.html",
        kind=kind,
        title=LIST_TITLES[kind],
        item=item,
        form=form,
        status_kind_labels=STATUS_KIND_LABELS,
        logout_form=ActionForm(formdata=None),
    ), code


csrf_recoverable("staff.admin.item_edit")


@bp.post(f"/config/<{LISTS}>/<int:item_id>/move")
@requires(Permission.ADMIN_CONFIG)
def item_move(kind: str, item_id: int) -> ResponseReturnValue:
    spec = _spec(kind)
    item = list_editing.get_item(state.db(), spec, item_id)
    form = MoveForm()
    if not form.validate_on_submit():
        return _csrf_failed() if form.expired else _render_list(kind, code=400)
    session = state.db()
    changed = list_editing.move_item(
        session, spec, item, up=form.direction.data == "up", actor=current_staff(), now=state.now()
    )
    session.commit()
    if not changed:
        return _unchanged("staff.admin.listing", kind=kind)
    return _done(_("%(code)s moved.", code=item.code), "staff.admin.listing", kind=kind)


@bp.post(f"/config/<{LISTS}>/<int:item_id>/active")
@requires(Permission.ADMIN_CONFIG)
def item_active(kind: str, item_id: int) -> ResponseReturnValue:
    spec = _spec(kind)
    item = list_editing.get_item(state.db(), spec, item_id)
    form = ActiveForm()
    if not form.validate_on_submit():
        return _csrf_failed() if form.expired else _render_list(kind, code=400)
    active = form.active.data == "yes"
    try:
        with unit_of_work():
            changed = list_editing.set_item_active(
                state.db(), spec, item, active, actor=current_staff(), now=state.now()
            )
    except InvalidInput as error:
        return _render_list(kind, row_error=(item.id, translated(error.message)), code=400)
    if not changed:
        return _unchanged("staff.admin.listing", kind=kind)
    message = (
        _("%(code)s activated.", code=item.code)
        if active
        else _("%(code)s deactivated.", code=item.code)
    )
    return _done(message, "staff.admin.listing", kind=kind)


# --- tags ----------------------------------------------------------------------------------------


@bp.get("/config/tags")
@requires(Permission.ADMIN_CONFIG)
def tags() -> ResponseReturnValue:
    return render_template(
        "admin/tags.html",
        tags=tag_editing.tags(state.db()),
        action_form=ActionForm(),
        logout_form=ActionForm(),
    )


@bp.route("/config/tags/<int:tag_id>", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def tag_edit(tag_id: int) -> ResponseReturnValue:
    tag = tag_editing.get_tag(state.db(), tag_id)
    form = TagForm() if request.method == "POST" else TagForm(None, obj=tag)
    code = 200
    if request.method == "POST":
        if form.validate_on_submit():
            with commit_or_form_error(form) as work:
                changed = tag_editing.rename_tag(
                    state.db(), tag, form.label.data, actor=current_staff(), now=state.now()
                )
            if work.committed:
                if not changed:
                    return _unchanged("staff.admin.tags")
                return _done(_("Tag renamed."), "staff.admin.tags")
        code = 400
    return render_template(
        "admin/tag_edit.html", tag=tag, form=form, logout_form=ActionForm(formdata=None)
    ), code


csrf_recoverable("staff.admin.tag_edit")


@bp.post("/config/tags/<int:tag_id>/active")
@requires(Permission.ADMIN_CONFIG)
def tag_active(tag_id: int) -> ResponseReturnValue:
    tag = tag_editing.get_tag(state.db(), tag_id)
    form = ActiveForm()
    if not form.validate_on_submit():
        return _csrf_failed()
    active = form.active.data == "yes"
    session = state.db()
    changed = tag_editing.set_tag_active(
        session, tag, active, actor=current_staff(), now=state.now()
    )
    session.commit()
    if not changed:
        return _unchanged("staff.admin.tags")
    return _done(
        _("Tag activated.") if active else _("Tag deactivated: it can no longer be applied."),
        "staff.admin.tags",
    )


# --- routing rules -------------------------------------------------------------------------------


def _rule_choices(form: RuleForm) -> RuleForm:
    session = state.db()
    form.category.choices = [SelectChoice("", _("Any category"))] + [
        SelectChoice(str(c.id), i18n.shown(c)) for c in taxonomy.active_categories(session)
    ]
    form.site.choices = [SelectChoice("", _("Any site, or none given"))] + [
        SelectChoice(str(u.id), i18n.shown(u))
        for u in taxonomy.active_units(session, OrgUnitKind.SITE)
    ]
    form.department.choices = [SelectChoice("", _("Any department, or none given"))] + [
        SelectChoice(str(u.id), i18n.shown(u))
        for u in taxonomy.active_units(session, OrgUnitKind.DEPARTMENT)
    ]
    form.queue.choices = [SelectChoice("", _("Choose…"))] + [
        SelectChoice(str(q.id), i18n.shown(q, "name")) for q in queue_editing.queues(session)
    ]
    return form


def _rule_form_data(rule: RoutingRule) -> dict[str, str]:
    def text(value: int | None) -> str:
        return "" if value is None else str(value)

    return {
        "category": text(rule.category_id),
        "site": text(rule.site_id),
        "department": text(rule.department_id),
        "keywords": rule.keywords,
        "priority": rule.priority or "",
        "queue": str(rule.queue_id),
    }


def _rule_fields(form: RuleForm) -> RuleFields:
    def number(value: str | None) -> int | None:
        return int(value) if value else None

    return RuleFields(
        category_id=number(form.category.data),
        site_id=number(form.site.data),
        department_id=number(form.department.data),
        keywords=form.keywords.data or "",
        priority=form.priority.data or None,
        queue_id=number(form.queue.data),
    )


def _render_rules(form: RuleForm | None = None, code: int = 200) -> ResponseReturnValue:
    session = state.db()
    return render_template(
        "admin/rules.html",
        rules=rule_editing.rule_views(session),
        fallback=routing.fallback_queue(session),
        form=form or _rule_choices(RuleForm(formdata=None)),
        action_form=ActionForm(formdata=None),
        priority_labels=PRIORITY_LABELS,
        logout_form=ActionForm(formdata=None),
    ), code


@bp.route("/config/rules", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def rules() -> ResponseReturnValue:
    if request.method == "GET":
        return _render_rules()
    form = _rule_choices(RuleForm())
    if form.validate_on_submit():
        with commit_or_form_error(form) as work:
            rule = rule_editing.add_rule(
                state.db(), _rule_fields(form), actor=current_staff(), now=state.now()
            )
        if work.committed:
            return _done(
                _("Rule %(position)d added at the end.", position=rule.position),
                "staff.admin.rules",
            )
    return _render_rules(form, code=400)


csrf_recoverable("staff.admin.rules")


@bp.route("/config/rules/<int:rule_id>", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def rule_edit(rule_id: int) -> ResponseReturnValue:
    rule = rule_editing.get_rule(state.db(), rule_id)
    if request.method == "GET":
        form = _rule_choices(RuleForm(formdata=None, data=_rule_form_data(rule)))
        code = 200
    else:
        form = _rule_choices(RuleForm())
        code = 400
        if form.validate_on_submit():
            with commit_or_form_error(form) as work:
                changed = rule_editing.edit_rule(
                    state.db(), rule, _rule_fields(form), actor=current_staff(), now=state.now()
                )
            if work.committed:
                if not changed:
                    return _unchanged("staff.admin.rules")
                return _done(
                    _("Rule %(position)d saved.", position=rule.position), "staff.admin.rules"
                )
    return render_template(
        "admin/rule_edit.html", rule=rule, form=form, logout_form=ActionForm(formdata=None)
    ), code


csrf_recoverable("staff.admin.rule_edit")


@bp.post("/config/rules/<int:rule_id>/move")
@requires(Permission.ADMIN_CONFIG)
def rule_move(rule_id: int) -> ResponseReturnValue:
    rule = rule_editing.get_rule(state.db(), rule_id)
    form = MoveForm()
    if not form.validate_on_submit():
        return _csrf_failed() if form.expired else _render_rules(code=400)
    session = state.db()
    changed = rule_editing.move_rule(
        session, rule, up=form.direction.data == "up", actor=current_staff(), now=state.now()
    )
    session.commit()
    if not changed:
        return _unchanged("staff.admin.rules")
    return _done(
        _("Rule moved to position %(position)d.", position=rule.position), "staff.admin.rules"
    )


@bp.post("/config/rules/<int:rule_id>/delete")
@requires(Permission.ADMIN_CONFIG)
def rule_delete(rule_id: int) -> ResponseReturnValue:
    rule = rule_editing.get_rule(state.db(), rule_id)
    if not ActionForm().validate_on_submit():
        return _csrf_failed()
    session = state.db()
    position = rule.position
    rule_editing.delete_rule(session, rule, actor=current_staff(), now=state.now())
    session.commit()
    return _done(_("Rule %(position)d deleted.", position=position), "staff.admin.rules")


# --- policy --------------------------------------------------------------------------------------


@bp.route("/config/policy", methods=["GET", "POST"])
@requires(Permission.ADMIN_CONFIG)
def policy_edit() -> ResponseReturnValue:
    session = state.db()
    if request.method == "GET":
        form = PolicyForm(formdata=None, data=policy.values(session).__dict__)
        code = 200
    else:
        form = PolicyForm()
        code = 400
        if form.validate_on_submit():
            with commit_or_form_error(form) as work:
                changed = editing.update_policy(
                    session,
                    actor=current_staff(),
                    now=state.now(),
                    **{name: getattr(form, name).data for name in policy.LIMITS},
                    **{name: bool(getattr(form, name).data) for name in policy.SWITCHES},
                )
            if work.committed:
                if not changed:
                    return _unchanged("staff.admin.policy_edit")
                return _done(
                    _("Policy saved. New deadlines apply to cases received from now on."),
                    "staff.admin.policy_edit",
                )
    return render_template(
        "admin/policy.html",
        form=form,
        limits=policy.LIMITS,
        logout_form=ActionForm(formdata=None),
    ), code


csrf_recoverable("staff.admin.policy_edit")
