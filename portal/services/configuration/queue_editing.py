"""Editing queues in the console: add, edit, the fallback queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import InvalidInput, UnknownItem
from portal.i18n import labels as i18n
from portal.i18n.wording import N_
from portal.models import Queue, QueueMembership, RoutingRule, StaffUser
from portal.services.configuration.editing import (
    _changed,
    _translation_changes,
    clean_code,
    clean_description,
    clean_label,
    clean_translations,
)
from portal.services.reporting import routing


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
