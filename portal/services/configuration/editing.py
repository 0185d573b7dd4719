"""Editing the configuration in the console: what every edit shares (the limits, cleaning
what an admin typed, the audit event) and the policy's edit. Queues, the ordered lists
(categories, sites, departments, statuses, outcomes), tags and routing rules each have their
module beside this one (``queue_editing``, ``list_editing``, ``tag_editing``, ``rule_editing``).

The rules are those of the taxonomy file (``taxonomy.py``), so that whatever the
console makes can be exported and loaded again: codes are stable and never change; nothing that
cases or rules refer to is deleted, only deactivated, and not even that while a routing rule
names it; the workflow keeps exactly one active status of kind "new" and one of kind "closed".

Every change appends one CONFIG_CHANGED event naming the object kind, its code (an id for rules
and tags, which have none) and the fields changed: never a label, description or keyword.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

from sqlalchemy.orm import Session

from portal.errors import InvalidInput
from portal.i18n import labels as i18n
from portal.i18n.wording import N_
from portal.models import StaffUser
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework.text import clean_text, has_control_characters
from portal.services.configuration import policy, taxonomy

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
