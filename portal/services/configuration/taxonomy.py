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

from portal.errors import InvalidInput, TaxonomyError, UnknownCategory, UnknownOrgUnit
from portal.i18n import labels as i18n
from portal.i18n.wording import N_, Message
from portal.models import (
    Category,
    OrgUnit,
    OrgUnitKind,
    Outcome,
    Priority,
    Queue,
    RoutingRule,
    StatusKind,
    WorkflowStatus,
)
from portal.services.casework.text import has_control_characters
from portal.services.configuration import policy

FALLBACK_SLUG = "general"
_TOP_LEVEL = {
    "fallback_queue",
    "queues",
    "categories",
    "sites",
    "departments",
    "routing",
    "statuses",
    "outcomes",
    "policy",
}
# Column sizes of the models: a longer value would fail on PostgreSQL.
_MAX_LENGTH = {"slug": 64, "code": 64, "name": 200, "label": 200}
_STATUS_CODE_MAX = 32
DESCRIPTION_MAX = 1000
#: A translation has the limits of the English text it translates.
TEXT_LIMITS = {
    "name": _MAX_LENGTH["name"],
    "label": _MAX_LENGTH["label"],
    "description": DESCRIPTION_MAX,
}
#: Used when a taxonomy file has no [[statuses]] / [[outcomes]] (files written before they
#: became configurable): the defaults of ISO 37002's receive → assess → address → conclude.
DEFAULT_STATUSES: tuple[tuple[str, str, StatusKind], ...] = (
    ("new", "New", StatusKind.NEW),
    ("acknowledged", "Acknowledged", StatusKind.ACKNOWLEDGED),
    ("investigating", "Investigating", StatusKind.OPEN),
    ("awaiting_reporter", "Awaiting reporter", StatusKind.OPEN),
    ("closed", "Closed", StatusKind.CLOSED),
)
DEFAULT_OUTCOMES: tuple[tuple[str, str, bool], ...] = (
    ("substantiated", "Substantiated", True),
    ("partly_substantiated", "Partly substantiated", True),
    ("unsubstantiated", "Unsubstantiated", False),
    ("referred", "Referred elsewhere", False),
    ("withdrawn", "Withdrawn", False),
)
_RULE_KEYS = {"category", "site", "department", "keywords", "priority", "queue"}
#: What a taxonomy file may hold (read by the import check in services/taxonomy_export.py).
TOP_LEVEL_KEYS = frozenset(_TOP_LEVEL)
RULE_KEYS = frozenset(_RULE_KEYS)
KEYWORD_MAX_CHARS = 100
KEYWORDS_PER_RULE_MAX = 100


@dataclass(frozen=True)
class LoadReport:
    queues: int
    categories: int
    sites: int
    departments: int
    rules: int
    statuses: int = 0
    outcomes: int = 0


def read_taxonomy_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise TaxonomyError(f"cannot read taxonomy file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"taxonomy file {path} is not valid TOML: {exc}") from exc


def _headcount(kind: OrgUnitKind, item: Mapping[str, Any]) -> int | None:
    value = item.get("headcount")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000_000:
        raise TaxonomyError(
            f"{kind.value} {item['code']!r}: headcount must be a whole number of employees"
        )
    return value


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


def translation_keys(item: Mapping[str, Any], fields: tuple[str, ...]) -> set[str]:
    """The keys of ``item`` that are translations of ``fields`` (``label_zh_CN``), including
    those naming a language the portal does not have (refused by :func:`translations_of`)."""
    return {name for name in item if i18n.split_key(name, fields) is not None}


def translations_of(
    where: str, item: Mapping[str, Any], fields: tuple[str, ...]
) -> i18n.Translations:
    """The translations an entry gives (``label_zh_CN = "..."``), checked like the English text:
    same length limit, no control characters, one line except descriptions. A key naming an
    unknown language is refused, so that a typo (``label_zh_cn``) does not silently show English."""
    out: i18n.Translations = {}
    for name in sorted(translation_keys(item, fields)):
        split = i18n.split_key(name, fields)
        if split is None:  # translation_keys chose it; a check that -O keeps
            raise TaxonomyError(f"{where}: {name!r} is not a translation key")
        field, locale = split
        if locale not in i18n.TRANSLATED_LOCALES:
            english = (
                f"; the {i18n.LANGUAGE_NAMES[i18n.DEFAULT_LOCALE]} text is {field!r} itself"
                if locale.casefold() == i18n.DEFAULT_LOCALE.casefold()
                else ""
            )
            raise TaxonomyError(
                f"{where}: {name!r} names unknown language {locale!r}: translations are"
                f" {', '.join(repr(i18n.key(field, loc)) for loc in i18n.TRANSLATED_LOCALES)}"
                f"{english}"
            )
        value = item[name]
        limit = TEXT_LIMITS[field]
        if not isinstance(value, str):
            raise TaxonomyError(f"{where}: {name!r} must be text")
        if not value.strip():
            raise TaxonomyError(
                f"{where}: {name!r} is empty; leave it out to show the {field} untranslated"
            )
        if len(value) > limit:
            raise TaxonomyError(f"{where}: {name!r} is longer than {limit} characters")
        one_line = field != "description"
        if has_control_characters(value) or (one_line and ("\n" in value or "\t" in value)):
            raise TaxonomyError(f"{where}: {name!r} contains a line break or control character")
        out.setdefault(locale, {})[field] = value
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
    for i, item in enumerate(queues, start=1):
        queue = by_slug.get(item["slug"]) or Queue(slug=item["slug"])
        queue.name = item["name"]
        queue.description = item.get("description", "")
        queue.translations = translations_of(f"[[queues]] entry {i}", item, Queue.TRANSLATED)
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
        cat.translations = translations_of(
            f"[[categories]] entry {pos + 1}", item, Category.TRANSLATED
        )
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
            unit.translations = translations_of(
                f"[[{kind.value}s]] entry {pos + 1}", item, OrgUnit.TRANSLATED
            )
            unit.headcount = _headcount(kind, item)
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
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            raise TaxonomyError(f"[[routing]] entry {pos} has unknown keys {sorted(unknown)}")
        if not isinstance(rule.get("keywords", []), list):
            raise TaxonomyError(f"[[routing]] entry {pos}: keywords must be a list of strings")
        try:
            row.keywords = "\n".join(parse_keywords(rule.get("keywords", [])))
        except ValueError as exc:
            raise TaxonomyError(f"[[routing]] entry {pos}: {exc}") from exc
        if "priority" in rule:
            if rule["priority"] not in {p.value for p in Priority}:
                raise TaxonomyError(
                    f"[[routing]] entry {pos} has unknown priority {rule['priority']!r}"
                    f" (one of {', '.join(p.value for p in Priority)})"
                )
            row.priority = rule["priority"]
        session.add(row)
    session.flush()
    n_statuses = _load_statuses(session, data.get("statuses"))
    n_outcomes = _load_outcomes(session, data.get("outcomes"))
    _load_policy(session, data.get("policy"))
    return LoadReport(
        len(queues),
        len(categories),
        len(sites),
        len(departments),
        len(rules),
        n_statuses,
        n_outcomes,
    )


class KeywordsError(ValueError):
    """What is wrong with a rule's keywords: the exception's text for a taxonomy file's error
    ("[[routing]] entry 2: ..."), ``sentence`` for a form."""

    def __init__(self, problem: str, sentence: Message) -> None:
        super().__init__(problem)
        self.sentence = sentence


def parse_keywords(raw: object) -> list[str]:
    """Keywords from a list (file) or one-per-line text (form): trimmed, empty lines dropped,
    duplicates (ignoring case) removed. KeywordsError names what is wrong."""
    not_strings = KeywordsError(
        "keywords must be a list of strings", N_("Keywords must be a list of strings.")
    )
    if isinstance(raw, str):
        items: list[object] = list(raw.splitlines())
    elif isinstance(raw, list):
        items = raw
    else:
        raise not_strings
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str):
            raise not_strings
        word = " ".join(item.split())
        if not word:
            continue
        if len(word) > KEYWORD_MAX_CHARS:
            raise KeywordsError(
                f"a keyword is longer than {KEYWORD_MAX_CHARS} characters",
                N_("A keyword is longer than %(limit)d characters.", limit=KEYWORD_MAX_CHARS),
            )
        out.setdefault(word.casefold(), word)
    if len(out) > KEYWORDS_PER_RULE_MAX:
        raise KeywordsError(
            f"more than {KEYWORDS_PER_RULE_MAX} keywords in one rule",
            N_("More than %(limit)d keywords in one rule.", limit=KEYWORDS_PER_RULE_MAX),
        )
    return list(out.values())


def _load_statuses(session: Session, raw: object) -> int:
    if raw is None:
        items = [{"code": c, "label": label, "kind": k.value} for c, label, k in DEFAULT_STATUSES]
    else:
        items = _entries({"statuses": raw}, "statuses", ("code", "label"))
    kinds = []
    for i, item in enumerate(items, start=1):
        if len(item["code"]) > _STATUS_CODE_MAX:
            raise TaxonomyError(f"[[statuses]] entry {i}: 'code' is longer than 32")
        if item.get("kind") not in {k.value for k in StatusKind}:
            raise TaxonomyError(
                f"[[statuses]] entry {i} needs a 'kind': one of "
                + ", ".join(k.value for k in StatusKind)
            )
        unknown = (
            set(item)
            - {"code", "label", "kind"}
            - translation_keys(item, WorkflowStatus.TRANSLATED)
        )
        if unknown:
            raise TaxonomyError(f"[[statuses]] entry {i} has unknown keys {sorted(unknown)}")
        kinds.append(item["kind"])
    for kind, rule in ((StatusKind.NEW, "exactly one"), (StatusKind.CLOSED, "exactly one")):
        if kinds.count(kind.value) != 1:
            raise TaxonomyError(f"[[statuses]] needs {rule} status of kind {kind.value!r}")
    if kinds.count(StatusKind.ACKNOWLEDGED.value) > 1:
        raise TaxonomyError("[[statuses]] may have at most one status of kind 'acknowledged'")
    existing = {s.code: s for s in session.scalars(select(WorkflowStatus))}
    wanted = set()
    for pos, item in enumerate(items):
        row = existing.get(item["code"]) or WorkflowStatus(code=item["code"])
        if row.id is not None and row.kind != item["kind"] and _status_in_use(session, row.code):
            raise TaxonomyError(
                f"status {row.code!r} is in use by cases; its kind cannot change"
                f" from {row.kind!r} to {item['kind']!r}"
            )
        row.label, row.kind, row.position, row.active = item["label"], item["kind"], pos, True
        row.translations = translations_of(
            f"[[statuses]] entry {pos + 1}", item, WorkflowStatus.TRANSLATED
        )
        session.add(row)
        wanted.add(row.code)
    for code, row in existing.items():
        if code not in wanted:
            if _status_in_use(session, code):
                raise TaxonomyError(
                    f"status {code!r} is missing from [[statuses]] but cases have it;"
                    " keep it (cases must be moved on first)"
                )
            row.active = False
    session.flush()
    return len(items)


def _status_in_use(session: Session, code: str) -> bool:
    from portal.models import Case

    return session.scalar(select(Case.id).where(Case.status == code).limit(1)) is not None


def _load_outcomes(session: Session, raw: object) -> int:
    if raw is None:
        items: list[dict[str, Any]] = [
            {"code": c, "label": label, "substantiated": sub} for c, label, sub in DEFAULT_OUTCOMES
        ]
    else:
        items = _entries({"outcomes": raw}, "outcomes", ("code", "label"))
    if not items:
        raise TaxonomyError("[[outcomes]] needs at least one outcome: closing requires one")
    existing = {o.code: o for o in session.scalars(select(Outcome))}
    wanted = set()
    for pos, item in enumerate(items, start=1):
        unknown = (
            set(item)
            - {"code", "label", "substantiated", "retention_days"}
            - translation_keys(item, Outcome.TRANSLATED)
        )
        if unknown:
            raise TaxonomyError(f"[[outcomes]] entry {pos} has unknown keys {sorted(unknown)}")
        substantiated = item.get("substantiated", False)
        if not isinstance(substantiated, bool):
            raise TaxonomyError(f"[[outcomes]] entry {pos}: 'substantiated' must be true or false")
        retention = check_retention_days(f"[[outcomes]] entry {pos}", item.get("retention_days"))
        row = existing.get(item["code"]) or Outcome(code=item["code"])
        row.retention_days = retention
        row.label, row.substantiated, row.position, row.active = (
            item["label"],
            substantiated,
            pos,
            True,
        )
        row.translations = translations_of(f"[[outcomes]] entry {pos}", item, Outcome.TRANSLATED)
        session.add(row)
        wanted.add(row.code)
    for code, row in existing.items():
        if code not in wanted:
            row.active = False
    session.flush()
    return len(items)


def check_retention_days(where: str, value: object) -> int | None:
    """An outcome's ``retention_days``: absent (the policy's period) or whole days in range."""
    if value is None:
        return None
    low, high = policy.RETENTION_DAYS
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise TaxonomyError(
            f"{where}: 'retention_days' must be a whole number of days from {low} to {high}"
        )
    return value


def _load_policy(session: Session, raw: object) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise TaxonomyError("[policy] must be a table")
    unknown = set(raw) - set(policy.LIMITS)
    if unknown:
        raise TaxonomyError(f"[policy] has unknown keys {sorted(unknown)}")
    try:
        policy.update(session, **raw)
    except InvalidInput as exc:
        raise TaxonomyError(f"[policy]: {exc.message}") from exc


def statuses(session: Session, *, include_inactive: bool = False) -> list[WorkflowStatus]:
    stmt = select(WorkflowStatus).order_by(WorkflowStatus.position)
    if not include_inactive:
        stmt = stmt.where(WorkflowStatus.active)
    return list(session.scalars(stmt))


def outcomes(session: Session, *, include_inactive: bool = False) -> list[Outcome]:
    stmt = select(Outcome).order_by(Outcome.position)
    if not include_inactive:
        stmt = stmt.where(Outcome.active)
    return list(session.scalars(stmt))


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
    """A unit's label for display, in the language being shown."""
    unit = session.get(OrgUnit, unit_id) if unit_id is not None else None
    return i18n.shown(unit) if unit else None


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
