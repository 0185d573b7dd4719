"""Editing routing rules in the console, and the test page that runs them on a sample."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, NoEligibleRecipient, UnknownItem
from portal.i18n.wording import N_
from portal.models import Category, OrgUnit, OrgUnitKind, Priority, Queue, RoutingRule, StaffUser
from portal.services.casework.text import clean_text
from portal.services.configuration import taxonomy
from portal.services.configuration.editing import _changed, _swap
from portal.services.reporting import routing


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
