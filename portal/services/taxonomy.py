"""Load the taxonomy file (queues, categories, sites, departments, routing rules) into the
database, and read it back for forms."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.models import Category, OrgUnit, OrgUnitKind, Queue, RoutingRule
from portal.services.errors import TaxonomyError, UnknownCategory, UnknownOrgUnit

FALLBACK_SLUG = "general"
_TOP_LEVEL = {"fallback_queue", "queues", "categories", "sites", "departments", "routing"}
# Column sizes of the models: a longer value would fail on PostgreSQL.
_MAX_LENGTH = {"slug": 64, "code": 64, "name": 200, "label": 200}


@dataclass(frozen=True)
class LoadReport:
    queues: int
    categories: int
    sites: int
    departments: int
    rules: int


def read_taxonomy_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise TaxonomyError(f"cannot read taxonomy file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"taxonomy file {path} is not valid TOML: {exc}") from exc


def _entries(data: Mapping[str, Any], key: str, required: Sequence[str]) -> list[dict[str, Any]]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise TaxonomyError(f"[[{key}]] must be a list of tables")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise TaxonomyError(f"[[{key}]] entry {i} must be a table")
        for name in required:
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise TaxonomyError(f"[[{key}]] entry {i} needs a non-empty {name!r}")
            limit = _MAX_LENGTH[name]
            if len(item[name]) > limit:
                raise TaxonomyError(f"[[{key}]] entry {i}: {name!r} is longer than {limit}")
        ident = item[required[0]]
        if ident in seen:
            raise TaxonomyError(f"[[{key}]] has {ident!r} twice")
        seen.add(ident)
        out.append(item)
    return out


def load_taxonomy(session: Session, data: Mapping[str, Any]) -> LoadReport:
    """Create or update everything named in ``data``. Categories and units missing from the
    file are deactivated, not deleted (cases refer to them). Routing rules are replaced."""
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise TaxonomyError(f"unknown top-level keys {sorted(unknown)} in the taxonomy")
    fallback = data.get("fallback_queue", FALLBACK_SLUG)
    queues = _entries(data, "queues", ("slug", "name"))
    categories = _entries(data, "categories", ("code", "label"))
    sites = _entries(data, "sites", ("code", "label"))
    departments = _entries(data, "departments", ("code", "label"))
    rules = data.get("routing", [])
    if not isinstance(rules, list):
        raise TaxonomyError("[[routing]] must be a list of tables")
    if fallback not in {q["slug"] for q in queues}:
        raise TaxonomyError(f"the fallback queue {fallback!r} is not among [[queues]]")
    if not categories:
        raise TaxonomyError("the taxonomy needs at least one category")

    by_slug = {q.slug: q for q in session.scalars(select(Queue))}
    for item in queues:
        queue = by_slug.get(item["slug"]) or Queue(slug=item["slug"])
        queue.name = item["name"]
        queue.description = item.get("description", "")
        queue.is_fallback = item["slug"] == fallback
        session.add(queue)
        by_slug[queue.slug] = queue
    for slug, queue in by_slug.items():
        if slug not in {q["slug"] for q in queues}:
            queue.is_fallback = False

    by_code = {c.code: c for c in session.scalars(select(Category))}
    wanted = set()
    for pos, item in enumerate(categories):
        cat = by_code.get(item["code"]) or Category(code=item["code"])
        cat.label = item["label"]
        cat.description = item.get("description", "")
        cat.position = pos
        cat.active = True
        session.add(cat)
        by_code[cat.code] = cat
        wanted.add(cat.code)
    for code, cat in by_code.items():
        if code not in wanted:
            cat.active = False

    units: dict[tuple[str, str], OrgUnit] = {
        (u.kind, u.code): u for u in session.scalars(select(OrgUnit))
    }
    wanted_units = set()
    for kind, items in ((OrgUnitKind.SITE, sites), (OrgUnitKind.DEPARTMENT, departments)):
        for pos, item in enumerate(items):
            unit = units.get((kind, item["code"])) or OrgUnit(kind=kind.value, code=item["code"])
            unit.label = item["label"]
            unit.position = pos
            unit.active = True
            session.add(unit)
            units[(kind.value, unit.code)] = unit
            wanted_units.add((kind.value, unit.code))
    for key, unit in units.items():
        if key not in wanted_units:
            unit.active = False
    session.flush()

    session.execute(delete(RoutingRule))
    for pos, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict) or not isinstance(rule.get("queue"), str):
            raise TaxonomyError(f"[[routing]] entry {pos} needs a 'queue'")
        if rule["queue"] not in {q["slug"] for q in queues}:
            raise TaxonomyError(f"[[routing]] entry {pos} names unknown queue {rule['queue']!r}")
        row = RoutingRule(position=pos, queue_id=by_slug[rule["queue"]].id)
        if "category" in rule:
            if rule["category"] not in wanted:
                raise TaxonomyError(
                    f"[[routing]] entry {pos} names unknown category {rule['category']!r}"
                )
            row.category_id = by_code[rule["category"]].id
        for kind, attr in ((OrgUnitKind.SITE, "site"), (OrgUnitKind.DEPARTMENT, "department")):
            if attr in rule:
                match = units.get((kind.value, rule[attr]))
                if match is None or not match.active:
                    raise TaxonomyError(
                        f"[[routing]] entry {pos} names unknown {attr} {rule[attr]!r}"
                    )
                setattr(row, f"{attr}_id", match.id)
        unknown = set(rule) - {"category", "site", "department", "queue"}
        if unknown:
            raise TaxonomyError(f"[[routing]] entry {pos} has unknown keys {sorted(unknown)}")
        session.add(row)
    session.flush()
    return LoadReport(len(queues), len(categories), len(sites), len(departments), len(rules))


def is_loaded(session: Session) -> bool:
    return session.scalar(select(Queue.id).limit(1)) is not None


def active_categories(session: Session) -> list[Category]:
    return list(
        session.scalars(select(Category).where(Category.active).order_by(Category.position))
    )


def active_units(session: Session, kind: OrgUnitKind) -> list[OrgUnit]:
    stmt = (
        select(OrgUnit).where(OrgUnit.kind == kind.value, OrgUnit.active).order_by(OrgUnit.position)
    )
    return list(session.scalars(stmt))


def unit_label(session: Session, unit_id: int | None) -> str | None:
    unit = session.get(OrgUnit, unit_id) if unit_id is not None else None
    return unit.label if unit else None


def category_by_code(session: Session, code: str) -> Category:
    cat = session.scalar(select(Category).where(Category.code == code, Category.active))
    if cat is None:
        raise UnknownCategory(code)
    return cat


def unit_by_code(session: Session, kind: OrgUnitKind, code: str) -> OrgUnit:
    unit = session.scalar(
        select(OrgUnit).where(OrgUnit.kind == kind.value, OrgUnit.code == code, OrgUnit.active)
    )
    if unit is None:
        raise UnknownOrgUnit(f"{kind.value}:{code}")
    return unit
