"""Which queue a concern goes to, and who in it may receive the case key."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Exists

from portal.models import (
    Category,
    Priority,
    Queue,
    QueueMembership,
    Role,
    RoutingRule,
    StaffRole,
    StaffUser,
)
from portal.services.errors import NoEligibleRecipient, TaxonomyError


@dataclass(frozen=True)
class Routed:
    queue: Queue
    recipients: list[StaffUser]
    rerouted: bool  # True when the matched queue had no eligible member and the fallback took it
    priority: Priority = Priority.NORMAL


@dataclass(frozen=True)
class RuleMatch:
    """Which rule a concern hits (None: no rule, the fallback queue), and what it sets."""

    rule: RoutingRule | None
    queue: Queue
    priority: Priority
    keyword: str | None  # the keyword that matched, for the rule test page only


def _normalise(text: str) -> str:
    # NFKC folds full-width Latin letters and digits (common in Chinese input) to ASCII, and
    # casefold makes the match case-insensitive.
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _is_cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in {"W", "F"} and ch.isalpha()


def keyword_in(keyword: str, normalised_text: str) -> bool:
    """Whether ``keyword`` occurs in text already passed through ``_normalise``. Chinese has no
    spaces between words, so a keyword with CJK characters matches anywhere; a Latin keyword
    must stand as a whole word (punctuation around it is fine), so a short keyword such as
    "pay" does not fire inside "repayment"."""
    word = _normalise(keyword)
    if not word:
        return False
    if any(_is_cjk(ch) for ch in word):
        return word in normalised_text
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", normalised_text) is not None


def keywords_of(rule: RoutingRule) -> list[str]:
    return [line for line in rule.keywords.splitlines() if line.strip()]


def fallback_queue(session: Session) -> Queue:
    queue = session.scalar(select(Queue).where(Queue.is_fallback))
    if queue is None:
        raise TaxonomyError("no fallback queue: load a taxonomy with `portal init`")
    return queue


def match_rule(
    session: Session,
    category: Category,
    site_id: int | None,
    department_id: int | None,
    text: str = "",
) -> RuleMatch:
    """First rule (by position) whose every non-empty field matches; else the fallback queue.

    ``text`` (the reporter's description) is matched against keywords here, in memory, and is
    not kept: neither the text nor which rule or keyword matched is stored."""
    normalised = _normalise(text)
    for rule in session.scalars(select(RoutingRule).order_by(RoutingRule.position)):
        if rule.category_id not in (None, category.id):
            continue
        if rule.site_id not in (None, site_id):
            continue
        if rule.department_id not in (None, department_id):
            continue
        hit = None
        words = keywords_of(rule)
        if words:
            hit = next((w for w in words if keyword_in(w, normalised)), None)
            if hit is None:
                continue
        return RuleMatch(
            rule,
            session.get_one(Queue, rule.queue_id),
            Priority(rule.priority) if rule.priority else Priority.NORMAL,
            hit,
        )
    return RuleMatch(None, fallback_queue(session), Priority.NORMAL, None)


def matching_queue(
    session: Session,
    category: Category,
    site_id: int | None,
    department_id: int | None,
    text: str = "",
) -> Queue:
    return match_rule(session, category, site_id, department_id, text).queue


def _is_ombudsperson() -> Exists:
    return exists().where(StaffRole.staff_id == StaffUser.id, StaffRole.role == Role.OMBUDSPERSON)


def queue_members(session: Session, queue: Queue) -> list[StaffUser]:
    """Active ombudspersons who are members of the queue."""
    stmt = (
        select(StaffUser)
        .join(QueueMembership, QueueMembership.staff_id == StaffUser.id)
        .where(QueueMembership.queue_id == queue.id, StaffUser.active, _is_ombudsperson())
        .order_by(StaffUser.id)
    )
    return list(session.scalars(stmt))


def route(
    session: Session,
    category: Category,
    site_id: int | None,
    department_id: int | None,
    excluded: Collection[int],
    text: str = "",
) -> Routed:
    """Pick the queue and the staff members who get a sealed copy of the case key.

    If every member of the matched queue was excluded (or it has none), the fallback queue takes
    the case. If the fallback has nobody eligible either, nothing may be stored: a case that no
    one can decrypt would be a concern silently lost.
    """
    match = match_rule(session, category, site_id, department_id, text)
    queue = match.queue
    recipients = [m for m in queue_members(session, queue) if m.id not in excluded]
    if recipients:
        return Routed(queue, recipients, rerouted=False, priority=match.priority)
    fallback = fallback_queue(session)
    fallback_members = queue_members(session, fallback)
    recipients = [m for m in fallback_members if m.id not in excluded]
    if recipients:
        return Routed(
            fallback, recipients, rerouted=queue.id != fallback.id, priority=match.priority
        )
    everyone = queue_members(session, queue) + fallback_members
    raise NoEligibleRecipient(because_of_exclusions=bool(everyone))


class PublicStaff(NamedTuple):
    """What a reporter may know of a staff member: the id to exclude and the public name."""

    id: int
    display_name: str


def excludable_staff(session: Session) -> list[PublicStaff]:
    """Ombudspersons a reporter may exclude: every active one who sits in at least one queue.
    Only the id and public name are read: this feeds a public page."""
    stmt = (
        select(StaffUser.id, StaffUser.display_name)
        .where(
            StaffUser.active,
            _is_ombudsperson(),
            exists().where(QueueMembership.staff_id == StaffUser.id),
        )
        .order_by(StaffUser.display_name)
    )
    return [PublicStaff(row.id, row.display_name) for row in session.execute(stmt)]


def channel_open(session: Session) -> bool:
    """True when at least one active ombudsperson sits in a queue."""
    return bool(excludable_staff(session))


def fallback_staffed(session: Session) -> bool:
    return bool(queue_members(session, fallback_queue(session)))
