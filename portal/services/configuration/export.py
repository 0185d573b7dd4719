"""Taxonomy as code: the configuration written out as the TOML file that ``portal load-taxonomy``
reads, and such a file read back in.

An export holds what a file can express: every queue and the fallback, the active categories,
sites, departments, statuses and outcomes in their order, the routing rules in order and the
policy. Deactivated entries are left out, and loading a file deactivates what it does not name,
so export → import → export gives the same text. Staff accounts, queue memberships and tags are
not configuration files' business and are neither written nor read.

An import is checked completely (shape, types, lengths, references between its parts, and the
statuses cases still have) before anything is changed; only then is it loaded. Should loading
still refuse it, the caller rolls the transaction back, so the database is never half-loaded.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tomli_w
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, TaxonomyError
from portal.i18n import labels as i18n
from portal.models import (
    Case,
    Category,
    OrgUnit,
    OrgUnitKind,
    Outcome,
    Priority,
    Queue,
    StaffUser,
    StatusKind,
    WorkflowStatus,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework.text import has_control_characters
from portal.services.configuration import editing as configuration
from portal.services.configuration import policy, queue_editing, rule_editing, taxonomy
from portal.services.reporting import routing

#: The largest file an import accepts (docs/limits.md); the default taxonomy is about 7 KiB.
IMPORT_MAX_BYTES = 256 * 1024

HEADER = """\
# The portal's taxonomy, exported by the admin console or `portal taxonomy export`.
# Load it with `portal taxonomy import FILE` (or `portal load-taxonomy FILE`); the format is
# described in docs/configuration.md and config/taxonomy.toml. Codes and slugs are stable
# identifiers: cases, rules and statistics refer to them; labels may change freely.
# `label_zh_CN` (and `name_zh_CN`, `description_zh_CN`) translate the text before them; a text
# without a translation is shown in English.
# Entries missing from a loaded file are deactivated (never deleted); routing rules are replaced.
"""

_SECTION_COMMENTS = {
    "queues": "# Queues: who receives what.",
    "categories": "# Categories a reporter chooses from, in this order.",
    "sites": "# Coarse attributes a reporter may give (or not).",
    "routing": "# Routing rules, first match wins; no match: the fallback queue.",
    "statuses": "# The case workflow; kinds: new, acknowledged, open, closed.",
    "outcomes": "# How a closed case ended.",
    "policy": "# Deadlines and the anonymity threshold.",
}


# --- export --------------------------------------------------------------------------------------


def _texts(row: Queue | Category | OrgUnit | WorkflowStatus | Outcome) -> dict[str, str]:
    """The row's texts, each followed by its translations (``label``, ``label_zh_CN``, ...),
    the layout of config/taxonomy.toml. An empty description is left out, not its
    translations."""
    out: dict[str, str] = {}
    for field in row.TRANSLATED:
        value = getattr(row, field)
        if value or field != "description":
            out[field] = value
        out |= i18n.flat(row.translations, (field,))
    return out


def export_data(session: Session) -> dict[str, Any]:
    """The configuration as the data of a taxonomy file."""
    data: dict[str, Any] = {"fallback_queue": routing.fallback_queue(session).slug}
    data["queues"] = [{"slug": q.slug} | _texts(q) for q in queue_editing.queues(session)]
    data["categories"] = [
        {"code": c.code} | _texts(c)
        for c in session.scalars(
            select(Category).where(Category.active).order_by(Category.position, Category.id)
        )
    ]
    for kind, key in ((OrgUnitKind.SITE, "sites"), (OrgUnitKind.DEPARTMENT, "departments")):
        data[key] = [
            {"code": u.code}
            | _texts(u)
            | ({"headcount": u.headcount} if u.headcount is not None else {})
            for u in session.scalars(
                select(OrgUnit)
                .where(OrgUnit.kind == kind.value, OrgUnit.active)
                .order_by(OrgUnit.position, OrgUnit.id)
            )
        ]
    data["routing"] = []
    for rule in rule_editing.rule_views(session):
        entry: dict[str, Any] = {}
        if rule.category is not None:
            entry["category"] = rule.category.code
        if rule.site is not None:
            entry["site"] = rule.site.code
        if rule.department is not None:
            entry["department"] = rule.department.code
        if rule.keywords:
            entry["keywords"] = list(rule.keywords)
        entry["queue"] = rule.queue.slug
        if rule.priority is not None:
            entry["priority"] = rule.priority.value
        data["routing"].append(entry)
    data["statuses"] = [
        {"code": s.code} | _texts(s) | {"kind": s.kind}
        for s in taxonomy.statuses(session, include_inactive=False)
    ]
    data["outcomes"] = [
        {"code": o.code}
        | _texts(o)
        | ({"substantiated": True} if o.substantiated else {})
        | ({"retention_days": o.retention_days} if o.retention_days is not None else {})
        for o in taxonomy.outcomes(session, include_inactive=False)
    ]
    values = policy.values(session)
    data["policy"] = {name: getattr(values, name) for name in policy.LIMITS}
    return data


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text in the layout of config/taxonomy.toml: one ``[[table]]`` per entry. tomli-w
    formats the values (quoting and escaping); the layout is chosen here, because tomli-w
    would write short tables inline."""
    parts = [HEADER, "\n", tomli_w.dumps({"fallback_queue": data["fallback_queue"]})]
    for key in ("queues", "categories", "sites", "departments", "routing", "statuses", "outcomes"):
        for i, entry in enumerate(data.get(key, [])):
            comment = f"{_SECTION_COMMENTS[key]}\n" if i == 0 and key in _SECTION_COMMENTS else ""
            parts.append(f"\n{comment}[[{key}]]\n{tomli_w.dumps(entry)}")
    if "policy" in data:
        parts.append(f"\n{_SECTION_COMMENTS['policy']}\n[policy]\n{tomli_w.dumps(data['policy'])}")
    return "".join(parts)


def export_text(session: Session) -> str:
    return dumps(export_data(session))


@dataclass(frozen=True)
class Exported:
    text: str
    counts: dict[str, int]


def _counts(data: Mapping[str, Any]) -> dict[str, int]:
    return {
        key: len(data.get(key, []))
        for key in ("queues", "categories", "sites", "departments", "routing")
    }


def export(session: Session, *, actor: StaffUser | None, now: dt.datetime, via: str) -> Exported:
    """Export and audit it (CONFIG_EXPORTED, with counts)."""
    data = export_data(session)
    counts = _counts(data)
    audit.record(
        session,
        Action.CONFIG_EXPORTED,
        now,
        actor=actor,
        via=via,
        queues=counts["queues"],
        categories=counts["categories"],
        sites=counts["sites"],
        departments=counts["departments"],
        routing=counts["routing"],
    )
    return Exported(dumps(data), counts)


# --- import --------------------------------------------------------------------------------------

#: The fields each table may translate (``label_zh_CN``): those of its model.
_TRANSLATED: dict[str, tuple[str, ...]] = {
    "queues": Queue.TRANSLATED,
    "categories": Category.TRANSLATED,
    "sites": OrgUnit.TRANSLATED,
    "departments": OrgUnit.TRANSLATED,
    "statuses": WorkflowStatus.TRANSLATED,
    "outcomes": Outcome.TRANSLATED,
}
_TABLE_KEYS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    # table: (required keys, allowed keys)
    "queues": (("slug", "name"), frozenset({"slug", "name", "description"})),
    "categories": (("code", "label"), frozenset({"code", "label", "description"})),
    "sites": (("code", "label"), frozenset({"code", "label", "headcount"})),
    "departments": (("code", "label"), frozenset({"code", "label", "headcount"})),
    "statuses": (("code", "label", "kind"), frozenset({"code", "label", "kind"})),
    "outcomes": (
        ("code", "label"),
        frozenset({"code", "label", "substantiated", "retention_days"}),
    ),
}
_RULE_TEXT_KEYS = ("category", "site", "department", "queue", "priority")


def parse(raw: bytes | str) -> dict[str, Any]:
    """TOML text to data; a syntax error names its line and column."""
    if isinstance(raw, bytes):
        if len(raw) > IMPORT_MAX_BYTES:
            raise TaxonomyError(
                f"the file is {len(raw):,} bytes; the limit is {IMPORT_MAX_BYTES:,} bytes"
            )
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TaxonomyError(
                f"the file is not UTF-8 text (byte {exc.start + 1} cannot be read)"
            ) from exc
    try:
        return tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"the file is not valid TOML: {exc}") from exc


def _check_text(where: str, key: str, value: object, limit: int, *, one_line: bool) -> str:
    """``value`` itself, known to be text within the limits (an error saying where if not)."""
    if not isinstance(value, str):
        raise TaxonomyError(f"{where}: {key!r} must be text")
    if len(value) > limit:
        raise TaxonomyError(f"{where}: {key!r} is longer than {limit} characters")
    if has_control_characters(value) or (one_line and ("\n" in value or "\t" in value)):
        raise TaxonomyError(f"{where}: {key!r} contains a line break or control character")
    return value


def _check_code(where: str, key: str, value: object, limit: int) -> str:
    # The returned value, not an assert, narrows the type: asserts vanish under python -O.
    text = _check_text(where, key, value, limit, one_line=True)
    try:
        return configuration.clean_code(text, key, limit)
    except InvalidInput as exc:
        raise TaxonomyError(
            f"{where}: {key!r} {value!r} is not a valid code: use lower-case letters, digits,"
            f" '-' and '_' (at most {limit}), starting with a letter or a digit"
        ) from exc


def _tables(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise TaxonomyError(f"[[{key}]] must be a list of tables")
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise TaxonomyError(f"[[{key}]] entry {i} must be a table")
    return raw


def validate(session: Session, data: Mapping[str, Any]) -> None:
    """Everything ``taxonomy.load_taxonomy`` checks, and what it leaves to the database (types,
    lengths, unknown keys), before anything is changed. Raises TaxonomyError saying where."""
    unknown = sorted(set(data) - set(taxonomy.TOP_LEVEL_KEYS))
    if unknown:
        raise TaxonomyError(f"unknown top-level keys {unknown}")
    codes: dict[str, set[str]] = {}
    for key, (required, allowed) in _TABLE_KEYS.items():
        if key in ("statuses", "outcomes") and key not in data:
            continue  # the defaults apply (see taxonomy.DEFAULT_STATUSES)
        seen: set[str] = set()
        for i, item in enumerate(_tables(data, key), start=1):
            where = f"[[{key}]] entry {i}"
            # Translations first: a misspelt language gets its own message, not "unknown keys".
            taxonomy.translations_of(where, item, _TRANSLATED[key])
            extra = sorted(set(item) - allowed - taxonomy.translation_keys(item, _TRANSLATED[key]))
            if extra:
                raise TaxonomyError(f"{where} has unknown keys {extra}")
            for name in required:
                if name not in item:
                    raise TaxonomyError(f"{where} needs a {name!r}")
            ident_key = required[0]
            limit = configuration.STATUS_CODE_MAX if key == "statuses" else configuration.CODE_MAX
            ident = _check_code(where, ident_key, item[ident_key], limit)
            if ident in seen:
                raise TaxonomyError(f"[[{key}]] has {ident!r} twice")
            seen.add(ident)
            label_key = required[1]
            _check_text(where, label_key, item[label_key], configuration.LABEL_MAX, one_line=True)
            if not item[label_key].strip():
                raise TaxonomyError(f"{where} needs a non-empty {label_key!r}")
            if "description" in item:
                _check_text(
                    where,
                    "description",
                    item["description"],
                    configuration.DESCRIPTION_MAX,
                    one_line=False,
                )
            if "kind" in item and item["kind"] not in {k.value for k in StatusKind}:
                raise TaxonomyError(
                    f"{where}: 'kind' must be one of {', '.join(k.value for k in StatusKind)}"
                )
            if "headcount" in item:
                value = item["headcount"]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise TaxonomyError(f"{where}: 'headcount' must be a whole number of employees")
            if "substantiated" in item and not isinstance(item["substantiated"], bool):
                raise TaxonomyError(f"{where}: 'substantiated' must be true or false")
            if "retention_days" in item:
                taxonomy.check_retention_days(where, item["retention_days"])
        codes[key] = seen
    fallback = data.get("fallback_queue", taxonomy.FALLBACK_SLUG)
    if not isinstance(fallback, str) or fallback not in codes["queues"]:
        raise TaxonomyError(f"fallback_queue {fallback!r} is not among [[queues]]")
    if not codes["categories"]:
        raise TaxonomyError("[[categories]] needs at least one category")
    _validate_rules(data, codes)
    _validate_workflow(session, data)
    _validate_policy(data.get("policy"))


def _validate_rules(data: Mapping[str, Any], codes: Mapping[str, set[str]]) -> None:
    refers = {"category": "categories", "site": "sites", "department": "departments"}
    for i, rule in enumerate(_tables(data, "routing"), start=1):
        where = f"[[routing]] entry {i}"
        extra = sorted(set(rule) - taxonomy.RULE_KEYS)
        if extra:
            raise TaxonomyError(f"{where} has unknown keys {extra}")
        if "queue" not in rule:
            raise TaxonomyError(f"{where} needs a 'queue'")
        for key in _RULE_TEXT_KEYS:
            if key in rule and not isinstance(rule[key], str):
                raise TaxonomyError(f"{where}: {key!r} must be text")
        if rule["queue"] not in codes["queues"]:
            raise TaxonomyError(f"{where} names unknown queue {rule['queue']!r}")
        for key, table in refers.items():
            if key in rule and rule[key] not in codes[table]:
                raise TaxonomyError(f"{where} names unknown {key} {rule[key]!r}")
        if "priority" in rule and rule["priority"] not in {p.value for p in Priority}:
            raise TaxonomyError(
                f"{where} has unknown priority {rule['priority']!r}"
                f" (one of {', '.join(p.value for p in Priority)})"
            )
        if "keywords" in rule and not isinstance(rule["keywords"], list):
            raise TaxonomyError(f"{where}: 'keywords' must be a list of strings")
        try:
            words = taxonomy.parse_keywords(rule.get("keywords", []))
        except ValueError as exc:
            raise TaxonomyError(f"{where}: {exc}") from exc
        for word in words:
            if has_control_characters(word):
                raise TaxonomyError(f"{where}: a keyword contains a control character")


def _validate_workflow(session: Session, data: Mapping[str, Any]) -> None:
    if "statuses" in data:
        statuses = _tables(data, "statuses")
        kinds = [s["kind"] for s in statuses]
        for kind in (StatusKind.NEW, StatusKind.CLOSED):
            if kinds.count(kind.value) != 1:
                raise TaxonomyError(f"[[statuses]] needs exactly one status of kind {kind.value!r}")
        if kinds.count(StatusKind.ACKNOWLEDGED.value) > 1:
            raise TaxonomyError("[[statuses]] may have at most one status of kind 'acknowledged'")
        wanted = {s["code"]: s["kind"] for s in statuses}
    else:
        wanted = {code: kind.value for code, _, kind in taxonomy.DEFAULT_STATUSES}
    in_use = set(session.scalars(select(Case.status).distinct()))
    for row in session.scalars(select(WorkflowStatus)):
        if row.code not in in_use:
            continue
        if row.code not in wanted:
            raise TaxonomyError(
                f"[[statuses]] leaves out {row.code!r}, but cases have it:"
                " keep it (cases must be moved on first)"
            )
        if wanted[row.code] != row.kind:
            raise TaxonomyError(
                f"[[statuses]]: status {row.code!r} is in use by cases; its kind cannot change"
                f" from {row.kind!r} to {wanted[row.code]!r}"
            )
    if "outcomes" in data and not _tables(data, "outcomes"):
        raise TaxonomyError("[[outcomes]] needs at least one outcome: closing requires one")


def _validate_policy(raw: object) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise TaxonomyError("[policy] must be a table")
    extra = sorted(set(raw) - set(policy.LIMITS))
    if extra:
        raise TaxonomyError(f"[policy] has unknown keys {extra}")
    for name, value in raw.items():
        try:
            policy.check(name, value)
        except InvalidInput as exc:
            raise TaxonomyError(f"[policy]: {exc.message}") from exc


@dataclass(frozen=True)
class Imported:
    report: taxonomy.LoadReport


def import_taxonomy(
    session: Session, raw: bytes | str, *, actor: StaffUser | None, now: dt.datetime, via: str
) -> Imported:
    """Check the whole file, then load it and audit it (CONFIG_IMPORTED, with counts). On a
    TaxonomyError nothing has been changed by the check; the caller rolls back in any case."""
    data = parse(raw)
    validate(session, data)
    report = taxonomy.load_taxonomy(session, data)
    audit.record(
        session,
        Action.CONFIG_IMPORTED,
        now,
        actor=actor,
        via=via,
        queues=report.queues,
        categories=report.categories,
        sites=report.sites,
        departments=report.departments,
        routing=report.rules,
        statuses=report.statuses,
        outcomes=report.outcomes,
    )
    return Imported(report)
