"""Editing the configuration in the console: queues, categories, sites, departments, workflow
statuses, outcomes, tags, routing rules and the policy.

The rules are those of the taxonomy file (``services/taxonomy.py``), so that whatever the
console makes can be exported and loaded again: codes are stable and never change; nothing that
cases or rules refer to is deleted, only deactivated, and not even that while a routing rule
names it; the workflow keeps exactly one active status of kind "new" and one of kind "closed".

Every change appends one CONFIG_CHANGED event naming the object kind, its code (an id for rules
and tags, which have none) and the fields changed: never a label, description or keyword.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, NoEligibleRecipient, UnknownItem
from portal.i18n import labels as i18n
from portal.i18n.wording import N_
from portal.models import (
    Case,
    Category,
    OrgUnit,
    OrgUnitKind,
    Outcome,
    Priority,
    Queue,
    QueueMembership,
    RoutingRule,
    StaffUser,
    StatusKind,
    Tag,
    WorkflowStatus,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import triage
from portal.services.casework.text import clean_text, has_control_characters
from portal.services.configuration import policy, taxonomy
from portal.services.reporting import routing

#: Limits of what the console accepts (docs/limits.md).
CODE_MAX = 64
STATUS_CODE_MAX = 32
LABEL_MAX = 200
DESCRIPTION_MAX = taxonomy.DESCRIPTION_MAX
_CODE = re.compile(r"[a-z0-9][a-z0-9_-]*")


# --- cleaning ------------------------------------------------------------------------------------


def clean_code(value: str | None, field: str = "code", limit: int = CODE_MAX) -> str:
    code = (value or "").strip()
    if not code:
        raise InvalidInput(field, N_("This field is required."))
    if len(code) > limit or not _CODE.fullmatch(code):
        raise InvalidInput(
            field,
            N_(
                "Use lower-case letters, digits, '-' and '_' (at most %(limit)d),"
                " starting with a letter or a digit.",
                limit=limit,
            ),
        )
    return code


def clean_label(value: str | None, field: str = "label", limit: int = LABEL_MAX) -> str:
    """One line: control characters are refused; runs of white space (line breaks too) become
    one space."""
    if value is not None and has_control_characters(value):
        raise InvalidInput(field, N_("Control characters are not allowed here."))
    return " ".join(clean_text(value, field, limit).split())


HEADCOUNT_MAX = 10_000_000


def clean_headcount(value: str | None, field: str = "headcount") -> int | None:
    """A unit's number of employees: a whole number from 0, or empty for unknown. It is
    configuration, not data: insights divide by it and merge units below the policy minimum."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or int(text) > HEADCOUNT_MAX:
        raise InvalidInput(
            field,
            N_("Enter the number of employees as a whole number (0 or more), or leave it empty."),
        )
    return int(text)


def clean_description(value: str | None, field: str = "description") -> str:
    return clean_text(value, field, DESCRIPTION_MAX, required=False)


def clean_translations(
    values: Mapping[str, str | None], fields: tuple[str, ...]
) -> i18n.Translations:
    """Translations typed in the console, keyed like the taxonomy file (``label_zh_CN``): each
    cleaned like the text it translates (a description may span lines, a label may not); empty
    means no translation, so the English text is shown. Keys not given are not returned."""
    out: dict[str, str] = {}
    for name, value in values.items():
        split = i18n.split_key(name, fields)
        if split is None or split[1] not in i18n.TRANSLATED_LOCALES:
            raise InvalidInput(name, N_("This language is not offered."))
        if split[0] == "description":
            out[name] = clean_description(value, name)
        elif (value or "").strip():
            out[name] = clean_label(value, name)
    return i18n.nested(out, fields)


def _translation_changes(
    old: Mapping[str, Mapping[str, str]], new: i18n.Translations, fields: tuple[str, ...]
) -> list[str]:
    """The file keys (``label_zh_CN``) whose translation changed: the audit names these only."""
    before, after = i18n.flat(old, fields), i18n.flat(new, fields)
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _changed(
    session: Session,
    actor: StaffUser | None,
    now: dt.datetime,
    obj: str,
    code: str,
    change: str,
    fields: Iterable[str] = (),
) -> None:
    audit.record(
        session,
        Action.CONFIG_CHANGED,
        now,
        actor=actor,
        object=obj,
        code=code,
        change=change,
        fields=sorted(fields),
    )


_T = TypeVar("_T")


def _swap(rows: list[_T], item: _T, up: bool) -> bool:
    i = rows.index(item)
    j = i - 1 if up else i + 1
    if not 0 <= j < len(rows):
        return False
    rows[i], rows[j] = rows[j], rows[i]
    return True


# --- queues --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    queue: Queue
    members: int  # active ombudspersons: who would receive its cases
    not_excludable: int
    rules: int


def queues(session: Session) -> list[Queue]:
    return list(session.scalars(select(Queue).order_by(Queue.id)))


def queue_overview(session: Session) -> list[QueueRow]:
    rows = []
    for queue in queues(session):
        members = routing.queue_members(session, queue)
        fixed = session.scalar(
            select(func.count())
            .select_from(QueueMembership)
            .where(
                QueueMembership.queue_id == queue.id,
                QueueMembership.staff_id.in_([m.id for m in members]),
                QueueMembership.excludable.is_(False),
            )
        )
        n_rules = session.scalar(
            select(func.count()).select_from(RoutingRule).where(RoutingRule.queue_id == queue.id)
        )
        rows.append(QueueRow(queue, len(members), fixed or 0, n_rules or 0))
    return rows


def get_queue(session: Session, queue_id: int) -> Queue:
    queue = session.get(Queue, queue_id)
    if queue is None:
        raise UnknownItem(f"queue {queue_id}")
    return queue


def add_queue(
    session: Session,
    *,
    slug: str,
    name: str,
    description: str,
    translations: Mapping[str, str | None] | None = None,
    actor: StaffUser | None,
    now: dt.datetime,
) -> Queue:
    slug = clean_code(slug, "slug")
    name = clean_label(name, "name")
    description = clean_description(description)
    translated = clean_translations(translations or {}, Queue.TRANSLATED)
    if session.scalar(select(Queue.id).where(Queue.slug == slug)) is not None:
        raise InvalidInput("slug", N_("A queue with this code already exists."))
    queue = Queue(
        slug=slug,
        name=name,
        description=description,
        is_fallback=False,
        translations=translated,
    )
    session.add(queue)
    session.flush()
    fields = [
        "slug",
        "name",
        "description",
        *_translation_changes({}, translated, Queue.TRANSLATED),
    ]
    _changed(session, actor, now, "queue", slug, "added", fields)
    return queue


def edit_queue(
    session: Session,
    queue: Queue,
    *,
    name: str,
    description: str,
    translations: Mapping[str, str | None] | None = None,
    actor: StaffUser | None,
    now: dt.datetime,
) -> bool:
    """Rename and describe a queue; each of ``translations`` (``name_zh_CN`` ...) given replaces
    the queue's ("" removes it); those not given stay."""
    values = {"name": clean_label(name, "name"), "description": clean_description(description)}
    fields = [f for f, v in values.items() if getattr(queue, f) != v]
    if translations is not None:
        given = i18n.flat(queue.translations, Queue.TRANSLATED) | dict(translations)
        translated = clean_translations(given, Queue.TRANSLATED)
        changes = _translation_changes(queue.translations, translated, Queue.TRANSLATED)
        if changes:
            queue.translations = translated
            fields += changes
    if not fields:
        return False
    for f in values:
        setattr(queue, f, values[f])
    session.flush()
    _changed(session, actor, now, "queue", queue.slug, "edited", fields)
    return True


def set_fallback(
    session: Session, queue: Queue, *, actor: StaffUser | None, now: dt.datetime
) -> bool:
    """Make ``queue`` the one that takes concerns no rule matches (and those whose queue has
    no eligible member)."""
    if queue.is_fallback:
        return False
    for other in session.scalars(select(Queue).where(Queue.is_fallback)):
        other.is_fallback = False
    session.flush()  # the old fallback first: at no point are there two
    queue.is_fallback = True
    session.flush()
    _changed(session, actor, now, "queue", queue.slug, "fallback", ["is_fallback"])
    return True


# --- ordered lists: categories, sites, departments, statuses, outcomes ---------------------------

Listed = Category | OrgUnit | WorkflowStatus | Outcome


@dataclass(frozen=True)
class ListKind:
    """One of the ordered, deactivatable lists of the taxonomy."""

    name: str  # the URL part and the taxonomy file's table: "categories"
    obj: str  # the object kind in the audit detail: "category"
    code_max: int = CODE_MAX
    unit: OrgUnitKind | None = None


CATEGORIES = ListKind("categories", "category")
SITES = ListKind("sites", "site", unit=OrgUnitKind.SITE)
DEPARTMENTS = ListKind("departments", "department", unit=OrgUnitKind.DEPARTMENT)
STATUSES = ListKind("statuses", "status", code_max=STATUS_CODE_MAX)
OUTCOMES = ListKind("outcomes", "outcome")
LIST_KINDS = {k.name: k for k in (CATEGORIES, SITES, DEPARTMENTS, STATUSES, OUTCOMES)}
#: Whole sentences per kind, not "A {kind}...": other languages word each differently.
_CODE_TAKEN = {
    CATEGORIES.obj: N_("A category with this code already exists."),
    SITES.obj: N_("A site with this code already exists."),
    DEPARTMENTS.obj: N_("A department with this code already exists."),
    STATUSES.obj: N_("A status with this code already exists."),
    OUTCOMES.obj: N_("An outcome with this code already exists."),
}


def model_of(kind: ListKind) -> type[Listed]:
    if kind.unit is not None:
        return OrgUnit
    models: dict[str, type[Listed]] = {
        CATEGORIES.name: Category,
        STATUSES.name: WorkflowStatus,
        OUTCOMES.name: Outcome,
    }
    return models[kind.name]


def items(session: Session, kind: ListKind) -> list[Listed]:
    model = model_of(kind)
    stmt = select(model).order_by(model.position, model.id)
    if kind.unit is not None:
        stmt = stmt.where(OrgUnit.kind == kind.unit.value)
    return list(session.scalars(stmt))


def get_item(session: Session, kind: ListKind, item_id: int) -> Listed:
    item: Listed | None = session.get(model_of(kind), item_id)  # type: ignore[assignment]
    if item is None or (isinstance(item, OrgUnit) and item.kind != kind.unit):
        raise UnknownItem(f"{kind.obj} {item_id}")
    return item


def _status_kinds_problem(session: Session, status: WorkflowStatus, active: bool) -> str | None:
    """The workflow rule (taxonomy file: exactly one "new", exactly one "closed", at most one
    "acknowledged") that making ``status`` (in)active would break, as a message."""
    stmt = select(WorkflowStatus.kind).where(WorkflowStatus.active)
    if status.id is not None:  # None: a status about to be added
        stmt = stmt.where(WorkflowStatus.id != status.id)
    others = list(session.scalars(stmt))
    if active:
        if status.kind in (StatusKind.NEW, StatusKind.CLOSED, StatusKind.ACKNOWLEDGED) and (
            status.kind in others
        ):
            return N_(
                "There is already an active status of kind '%(kind)s';"
                " the workflow allows only one.",
                kind=str(status.kind),
            )
        return None
    if status.kind in (StatusKind.NEW, StatusKind.CLOSED) and status.kind not in others:
        return N_(
            "This is the only active status of kind '%(kind)s'; the workflow needs exactly one.",
            kind=str(status.kind),
        )
    return None


def _refusal_to_deactivate(session: Session, kind: ListKind, item: Listed) -> str | None:
    if isinstance(item, Category):
        rule = session.scalar(
            select(RoutingRule.position).where(RoutingRule.category_id == item.id).limit(1)
        )
        if rule is not None:
            return N_(
                "Routing rule %(rule)d names this category: change or delete that rule first.",
                rule=rule,
            )
        others = session.scalar(
            select(func.count())
            .select_from(Category)
            .where(Category.active, Category.id != item.id)
        )
        if not others:
            return N_("This is the last active category: reporters need at least one.")
    elif isinstance(item, OrgUnit):
        rule = session.scalar(
            select(RoutingRule.position)
            .where(or_(RoutingRule.site_id == item.id, RoutingRule.department_id == item.id))
            .limit(1)
        )
        if rule is not None:
            return (
                N_(
                    "Routing rule %(rule)d names this site: change or delete that rule first.",
                    rule=rule,
                )
                if item.kind == OrgUnitKind.SITE.value
                else N_(
                    "Routing rule %(rule)d names this department:"
                    " change or delete that rule first.",
                    rule=rule,
                )
            )
    elif isinstance(item, WorkflowStatus):
        in_use = session.scalar(select(Case.id).where(Case.status == item.code).limit(1))
        if in_use is not None:
            return N_("Cases have this status: move them to another status first.")
        return _status_kinds_problem(session, item, active=False)
    else:
        others = session.scalar(
            select(func.count()).select_from(Outcome).where(Outcome.active, Outcome.id != item.id)
        )
        if not others:
            return N_("This is the last active outcome: closing a case needs one.")
    return None


def add_item(
    session: Session,
    kind: ListKind,
    *,
    code: str,
    label: str,
    description: str = "",
    status_kind: str | None = None,
    substantiated: bool = False,
    headcount: str | None = None,
    translations: Mapping[str, str | None] | None = None,
    actor: StaffUser | None,
    now: dt.datetime,
) -> Listed:
    code = clean_code(code, "code", kind.code_max)
    label = clean_label(label)
    model = model_of(kind)
    translated = clean_translations(translations or {}, model.TRANSLATED)
    employees = clean_headcount(headcount) if kind.unit is not None else None
    clash = select(model.id).where(model.code == code)
    if kind.unit is not None:
        clash = clash.where(OrgUnit.kind == kind.unit.value)
    if session.scalar(clash) is not None:
        raise InvalidInput("code", _CODE_TAKEN[kind.obj])
    position = (
        max((i.position for i in items(session, kind)), default=-1) + 1
    )  # new entries come last
    item: Listed
    fields = ["code", "label"]
    if isinstance(kind.unit, OrgUnitKind):
        item = OrgUnit(
            kind=kind.unit.value, code=code, label=label, position=position, headcount=employees
        )
        if employees is not None:
            fields.append("headcount")
    elif kind is CATEGORIES:
        item = Category(
            code=code, label=label, description=clean_description(description), position=position
        )
        fields.append("description")
    elif kind is STATUSES:
        if status_kind not in {k.value for k in StatusKind}:
            raise InvalidInput("kind", N_("Choose what kind of status this is."))
        item = WorkflowStatus(code=code, label=label, kind=status_kind, position=position)
        problem = _status_kinds_problem(session, item, active=True)
        if problem:
            raise InvalidInput("kind", problem)
        fields.append("kind")
    else:
        item = Outcome(code=code, label=label, substantiated=substantiated, position=position)
        fields.append("substantiated")
    item.active = True
    item.translations = translated
    fields += _translation_changes({}, translated, model.TRANSLATED)
    session.add(item)
    session.flush()
    _changed(session, actor, now, kind.obj, code, "added", fields)
    return item


def edit_item(
    session: Session,
    kind: ListKind,
    item: Listed,
    *,
    label: str,
    description: str | None = None,
    substantiated: bool | None = None,
    headcount: str | None = None,
    translations: Mapping[str, str | None] | None = None,
    actor: StaffUser | None,
    now: dt.datetime,
) -> bool:
    """Change what may change: the label, a category's description, an outcome's
    substantiated flag, a site's or department's headcount ("" for unknown; None leaves it),
    the translations (``label_zh_CN`` ...; "" removes one, one not given stays). Codes and a
    status's kind never change (cases store them)."""
    values: dict[str, object] = {"label": clean_label(label)}
    if isinstance(item, OrgUnit) and headcount is not None:
        values["headcount"] = clean_headcount(headcount)
    if isinstance(item, Category) and description is not None:
        values["description"] = clean_description(description)
    if isinstance(item, Outcome) and substantiated is not None:
        values["substantiated"] = substantiated
    fields = [f for f, v in values.items() if getattr(item, f) != v]
    if translations is not None:
        given = i18n.flat(item.translations, item.TRANSLATED) | dict(translations)
        translated = clean_translations(given, item.TRANSLATED)
        changes = _translation_changes(item.translations, translated, item.TRANSLATED)
        if changes:
            item.translations = translated
            fields += changes
    if not fields:
        return False
    for f, v in values.items():
        setattr(item, f, v)
    session.flush()
    _changed(session, actor, now, kind.obj, item.code, "edited", fields)
    return True


def move_item(
    session: Session,
    kind: ListKind,
    item: Listed,
    *,
    up: bool,
    actor: StaffUser | None,
    now: dt.datetime,
) -> bool:
    rows = items(session, kind)
    if not _swap(rows, item, up):
        return False
    for position, row in enumerate(rows):
        row.position = position
    session.flush()
    _changed(session, actor, now, kind.obj, item.code, "moved", ["position"])
    return True


def set_item_active(
    session: Session,
    kind: ListKind,
    item: Listed,
    active: bool,
    *,
    actor: StaffUser | None,
    now: dt.datetime,
) -> bool:
    if item.active == active:
        return False
    if active:
        problem = (
            _status_kinds_problem(session, item, active=True)
            if isinstance(item, WorkflowStatus)
            else None
        )
    else:
        problem = _refusal_to_deactivate(session, kind, item)
    if problem:
        raise InvalidInput("active", problem)
    item.active = active
    session.flush()
    _changed(
        session,
        actor,
        now,
        kind.obj,
        item.code,
        "activated" if active else "deactivated",
        ["active"],
    )
    return True


# --- tags ----------------------------------------------------------------------------------------


def tags(session: Session) -> list[Tag]:
    return list(session.scalars(select(Tag).order_by(func.lower(Tag.label), Tag.id)))


def get_tag(session: Session, tag_id: int) -> Tag:
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise UnknownItem(f"tag {tag_id}")
    return tag


def rename_tag(
    session: Session, tag: Tag, label: str, *, actor: StaffUser | None, now: dt.datetime
) -> bool:
    # The same rules as a tag created on a case page (services/triage.py).
    label = triage.clean_tag_label(label, "label")
    if label == tag.label:
        return False
    clash = triage.same_label(session, label)
    if clash is not None and clash.id != tag.id:
        raise InvalidInput("label", N_("Another tag already has this name."))
    tag.label = label
    session.flush()
    _changed(session, actor, now, "tag", str(tag.id), "edited", ["label"])
    return True


def set_tag_active(
    session: Session, tag: Tag, active: bool, *, actor: StaffUser | None, now: dt.datetime
) -> bool:
    """A deactivated tag stays on the cases that have it but can no longer be applied."""
    if tag.active == active:
        return False
    tag.active = active
    session.flush()
    _changed(
        session,
        actor,
        now,
        "tag",
        str(tag.id),
        "activated" if active else "deactivated",
        ["active"],
    )
    return True


# --- routing rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFields:
    """A rule as a form gives it: ids (None = any), keywords one per line."""

    category_id: int | None
    site_id: int | None
    department_id: int | None
    keywords: str
    priority: str | None
    queue_id: int | None


@dataclass(frozen=True)
class RuleView:
    """A rule for display, with codes and labels resolved."""

    id: int
    position: int
    category: Category | None
    site: OrgUnit | None
    department: OrgUnit | None
    keywords: tuple[str, ...]
    priority: Priority | None
    queue: Queue


def rules(session: Session) -> list[RoutingRule]:
    return list(session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))


def view_rule(session: Session, rule: RoutingRule) -> RuleView:
    return RuleView(
        id=rule.id,
        position=rule.position,
        category=session.get(Category, rule.category_id) if rule.category_id else None,
        site=session.get(OrgUnit, rule.site_id) if rule.site_id else None,
        department=session.get(OrgUnit, rule.department_id) if rule.department_id else None,
        keywords=tuple(routing.keywords_of(rule)),
        priority=Priority(rule.priority) if rule.priority else None,
        queue=session.get_one(Queue, rule.queue_id),
    )


def rule_views(session: Session) -> list[RuleView]:
    return [view_rule(session, r) for r in rules(session)]


def get_rule(session: Session, rule_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise UnknownItem(f"rule {rule_id}")
    return rule


def _rule_values(session: Session, fields: RuleFields) -> dict[str, object]:
    if fields.category_id is not None:
        category = session.get(Category, fields.category_id)
        if category is None or not category.active:
            raise InvalidInput("category", N_("Choose an active category, or any."))
    for name, unit_kind in (("site", OrgUnitKind.SITE), ("department", OrgUnitKind.DEPARTMENT)):
        unit_id = getattr(fields, f"{name}_id")
        if unit_id is not None:
            unit = session.get(OrgUnit, unit_id)
            if unit is None or unit.kind != unit_kind or not unit.active:
                raise InvalidInput(
                    name,
                    N_("Choose an active site, or any.")
                    if name == "site"
                    else N_("Choose an active department, or any."),
                )
    if fields.queue_id is None or session.get(Queue, fields.queue_id) is None:
        raise InvalidInput("queue", N_("Choose the queue that receives matching concerns."))
    if fields.priority is not None and fields.priority not in {p.value for p in Priority}:
        raise InvalidInput("priority", N_("Choose a priority."))
    try:
        words = taxonomy.parse_keywords(fields.keywords)
    except taxonomy.KeywordsError as exc:
        raise InvalidInput("keywords", exc.sentence) from exc
    return {
        "category_id": fields.category_id,
        "site_id": fields.site_id,
        "department_id": fields.department_id,
        "keywords": "\n".join(words),
        "priority": fields.priority,
        "queue_id": fields.queue_id,
    }


def _field_name(column: str) -> str:
    return column.removesuffix("_id")


def add_rule(
    session: Session, fields: RuleFields, *, actor: StaffUser | None, now: dt.datetime
) -> RoutingRule:
    """A new rule goes last (before it, every existing rule is tried)."""
    values = _rule_values(session, fields)
    last = session.scalar(select(func.max(RoutingRule.position))) or 0
    rule = RoutingRule(position=last + 1, **values)
    session.add(rule)
    session.flush()
    _changed(
        session,
        actor,
        now,
        "rule",
        str(rule.id),
        "added",
        [_field_name(c) for c, v in values.items() if v not in (None, "")],
    )
    return rule


def edit_rule(
    session: Session,
    rule: RoutingRule,
    fields: RuleFields,
    *,
    actor: StaffUser | None,
    now: dt.datetime,
) -> bool:
    values = _rule_values(session, fields)
    changed = [c for c, v in values.items() if getattr(rule, c) != v]
    if not changed:
        return False
    for column in changed:
        setattr(rule, column, values[column])
    session.flush()
    _changed(session, actor, now, "rule", str(rule.id), "edited", map(_field_name, changed))
    return True


def _renumber(rows: Sequence[RoutingRule]) -> None:
    for position, row in enumerate(rows, start=1):
        row.position = position


def move_rule(
    session: Session, rule: RoutingRule, *, up: bool, actor: StaffUser | None, now: dt.datetime
) -> bool:
    rows = rules(session)
    if not _swap(rows, rule, up):
        return False
    _renumber(rows)
    session.flush()
    _changed(session, actor, now, "rule", str(rule.id), "moved", ["position"])
    return True


def delete_rule(
    session: Session, rule: RoutingRule, *, actor: StaffUser | None, now: dt.datetime
) -> None:
    code = str(rule.id)
    session.delete(rule)
    session.flush()
    _renumber(rules(session))
    session.flush()
    _changed(session, actor, now, "rule", code, "deleted")


# --- policy --------------------------------------------------------------------------------------


def update_policy(
    session: Session, *, actor: StaffUser | None, now: dt.datetime, **values: int | bool
) -> list[str]:
    """Apply the policy's limits and switches (``services/policy.py``); return the fields that
    changed (audited by name, like every configuration change)."""
    changed = sorted(policy.update(session, **values))
    if changed:
        _changed(session, actor, now, "policy", "policy", "edited", changed)
    return changed


# --- the routing test page -----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleTrial:
    """Where a sample concern would go. Nothing of it is stored or logged."""

    rule: RuleView | None  # None: no rule matched, the fallback queue takes it
    keyword: str | None  # the keyword that hit, if the rule has keywords
    matched_queue: Queue
    priority: Priority
    queue: Queue | None  # where the case key would go; None: nobody could receive it
    rerouted: bool  # the matched queue has no eligible member: the fallback takes it
    recipients: list[StaffUser]


def try_rules(
    session: Session,
    *,
    category_id: int,
    site_id: int | None,
    department_id: int | None,
    text: str,
    max_chars: int,
) -> RuleTrial:
    """Run the routing of a submission on a sample, without storing anything: the same
    ``routing.match_rule`` and ``routing.route`` (no exclusions) that intake uses."""
    category = session.get(Category, category_id)
    if category is None or not category.active:
        raise InvalidInput("category", N_("Choose a category."))
    for name, unit_id in (("site", site_id), ("department", department_id)):
        if unit_id is not None:
            unit = session.get(OrgUnit, unit_id)
            if unit is None or unit.kind != name or not unit.active:
                raise InvalidInput(
                    name,
                    N_("Choose an active site, or none.")
                    if name == "site"
                    else N_("Choose an active department, or none."),
                )
    sample = clean_text(text, "sample", max_chars, required=False)
    match = routing.match_rule(session, category, site_id, department_id, sample)
    try:
        routed = routing.route(session, category, site_id, department_id, (), sample)
    except NoEligibleRecipient:
        queue, rerouted, recipients = None, True, []
    else:
        queue, rerouted, recipients = routed.queue, routed.rerouted, routed.recipients
    return RuleTrial(
        rule=view_rule(session, match.rule) if match.rule is not None else None,
        keyword=match.keyword,
        matched_queue=match.queue,
        priority=match.priority,
        queue=queue,
        rerouted=rerouted,
        recipients=list(recipients),
    )
