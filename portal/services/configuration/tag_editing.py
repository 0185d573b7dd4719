"""Editing tags in the console: rename, deactivate."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, UnknownItem
from portal.i18n.wording import N_
from portal.models import StaffUser, Tag
from portal.services.casework import triage
from portal.services.configuration.editing import _changed


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
