"""Editing the ordered lists in the console: categories, sites, departments, workflow statuses,
outcomes (add, edit, reorder, deactivate while nothing refers to them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, UnknownItem
from portal.i18n import labels as i18n
from portal.i18n.wording import N_
from portal.models import (
    Case,
    Category,
    OrgUnit,
    OrgUnitKind,
    Outcome,
    RoutingRule,
    StaffUser,
    StatusKind,
    WorkflowStatus,
)
from portal.services.configuration.editing import (
    CODE_MAX,
    STATUS_CODE_MAX,
    _changed,
    _swap,
    _translation_changes,
    clean_code,
    clean_description,
    clean_headcount,
    clean_label,
    clean_translations,
)

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
