"""Triage of a case (ISO 37002 8.3): priority, the "risk to the reporter" flag, the
organisation's category beside the reporter's, and shared tags.

Everything here is plain metadata, queryable without the case key, so it must never carry case
detail: tags are a shared vocabulary of short labels stored in the clear (like categories), and
the form says so. What staff have to say about a case goes into encrypted notes. The reporter's
own category (``Case.category_id``) is never touched.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput
from portal.i18n.wording import N_
from portal.models import CaseTag, Category, Priority, StaffUser, Tag
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases
from portal.services.casework.text import has_control_characters

TAG_MAX_CHARS = 40
TAGS_PER_CASE_MAX = 20


@dataclass(frozen=True)
class Triage:
    """What the triage form sets; the whole state, not a difference."""

    priority: Priority
    reporter_at_risk: bool
    org_category_id: int | None
    tag_ids: Collection[int] = ()
    new_tag: str = ""  # a label to create (or find) and apply; empty for none


def offered_tags(session: Session, case_tags: Collection[Tag] = ()) -> list[Tag]:
    """The tags the form offers: every active one, and those the case carries (even retired)."""
    tags = {t.id: t for t in session.scalars(select(Tag).where(Tag.active))}
    tags.update((t.id, t) for t in case_tags)
    return sorted(tags.values(), key=lambda t: t.label.casefold())


def clean_tag_label(value: str, field: str = "new_tag") -> str:
    """A tag label: NFC, runs of spaces made one, 1 to 40 characters, no control characters
    (refused rather than removed: a label is typed on purpose and shown to every colleague)."""
    if has_control_characters(value) or any(c in value for c in "\t\n\r"):
        raise InvalidInput(field, N_("A tag cannot contain control characters or line breaks."))
    label = " ".join(unicodedata.normalize("NFC", value).split())
    if not label:
        raise InvalidInput(field, N_("Write the new tag, or leave the field empty."))
    if len(label) > TAG_MAX_CHARS:
        raise InvalidInput(
            field,
            N_(
                "This tag is %(length)d characters long; the limit is %(limit)d.",
                length=len(label),
                limit=TAG_MAX_CHARS,
            ),
        )
    return label


def same_label(session: Session, label: str) -> Tag | None:
    """The tag whose label equals ``label`` ignoring case (tags are unique that way)."""
    wanted = label.casefold()
    for tag in session.scalars(select(Tag)):
        if tag.label.casefold() == wanted:
            return tag
    return None


def find_or_create_tag(session: Session, value: str) -> tuple[Tag, bool]:
    """The tag with this label, ignoring case, or a new one; and whether it was created. A
    retired (inactive) tag is not brought back from here: an admin retired it."""
    label = clean_tag_label(value)
    existing = same_label(session, label)
    if existing is not None:
        if not existing.active:
            raise InvalidInput(
                "new_tag", N_("A tag with this name was retired by an admin; choose another.")
            )
        return existing, False
    tag = Tag(label=label, active=True)
    session.add(tag)
    # Two colleagues creating the same label at the same moment: the unique index refuses the
    # second insert (IntegrityError), and the form asks that person to send it again.
    session.flush()
    return tag, True


def triage(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    values: Triage,
    now: dt.datetime,
) -> list[str]:
    """Set the triage fields of a case whose key ``user`` holds. Returns the names of the fields
    that changed (empty if none); the audit event names them with their new codes or ids."""
    case, _ = cases.unlock(session, user, private_key, handle)
    org_category = None
    if values.org_category_id is not None:
        org_category = session.get(Category, values.org_category_id)
        # Any active category; the one the case already has stays valid if it was retired.
        keeps = values.org_category_id == case.org_category_id
        if org_category is None or not (org_category.active or keeps):
            raise InvalidInput("org_category", N_("That category is not offered. Choose another."))

    current = set(session.scalars(select(CaseTag.tag_id).where(CaseTag.case_id == case.id)))
    # Offered: every active tag, and those the case carries even if an admin retired them since
    # (so they can be taken off).
    offered = current | set(session.scalars(select(Tag.id).where(Tag.active)))
    wanted = set()
    for tag_id in values.tag_ids:
        if tag_id not in offered:
            raise InvalidInput("tags", N_("A chosen tag is no longer offered. Choose again."))
        wanted.add(tag_id)
    created: list[Tag] = []
    if values.new_tag.strip():
        tag, is_new = find_or_create_tag(session, values.new_tag)
        wanted.add(tag.id)
        if is_new:
            created.append(tag)
    if len(wanted) > TAGS_PER_CASE_MAX:
        raise InvalidInput(
            "tags", N_("A case can carry at most %(limit)d tags.", limit=TAGS_PER_CASE_MAX)
        )

    # Codes, ids and flags only (typed Any so it can be spread into audit.record's keywords).
    detail: dict[str, Any] = {}
    if case.priority != values.priority.value:
        case.priority = values.priority.value
        detail["priority"] = values.priority.value
    if case.reporter_at_risk != values.reporter_at_risk:
        case.reporter_at_risk = values.reporter_at_risk
        detail["reporter_at_risk"] = values.reporter_at_risk
    if case.org_category_id != values.org_category_id:
        case.org_category_id = values.org_category_id
        detail["org_category"] = org_category.code if org_category is not None else None
    if wanted != current:
        for tag_id in wanted - current:
            session.add(CaseTag(case_id=case.id, tag_id=tag_id))
        removed = current - wanted
        if removed:
            session.execute(
                delete(CaseTag).where(CaseTag.case_id == case.id, CaseTag.tag_id.in_(removed))
            )
        # Tag ids, never labels: a label is text someone typed.
        detail["tags"] = [str(t) for t in sorted(wanted)]
        if created:
            detail["tags_created"] = [str(t.id) for t in created]
    changed = sorted(k for k in detail if k != "tags_created")
    if changed:
        audit.record(
            session, Action.CASE_TRIAGED, now, actor=user, case=case, changed=changed, **detail
        )
    session.flush()
    return changed
