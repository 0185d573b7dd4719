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

from portal.errors import NoEligibleRecipient, TaxonomyError
from portal.i18n import labels as i18n
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


def memberships(session: Session, queue: Queue) -> list[tuple[StaffUser, bool]]:
    """Active ombudspersons who are members of the queue, each with whether the reporter may
    exclude them from it (``QueueMembership.excludable``)."""
    stmt = (
        select(StaffUser, QueueMembership.excludable)
        .join(QueueMembership, QueueMembership.staff_id == StaffUser.id)
        .where(QueueMembership.queue_id == queue.id, StaffUser.active, _is_ombudsperson())
        .order_by(StaffUser.id)
    )
    return [(user, bool(excludable)) for user, excludable in session.execute(stmt)]


def queue_members(session: Session, queue: Queue) -> list[StaffUser]:
    """Active ombudspersons who are members of the queue."""
    return [user for user, _ in memberships(session, queue)]


def eligible_members(session: Session, queue: Queue, excluded: Collection[int]) -> list[StaffUser]:
    """Who in ``queue`` may hold the key of a case whose reporter excluded ``excluded``: every
    member, minus the excluded ones, except that a member the queue marks as not excludable
    (e.g. the board queue's chair) stays whatever the reporter ticked. The reporter is told
    so on the concern form before sending."""
    return [
        user
        for user, excludable in memberships(session, queue)
        if user.id not in excluded or not excludable
    ]


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
    recipients = eligible_members(session, queue, excluded)
    if recipients:
        return Routed(queue, recipients, rerouted=False, priority=match.priority)
    fallback = fallback_queue(session)
    recipients = eligible_members(session, fallback, excluded)
    if recipients:
        return Routed(
            fallback, recipients, rerouted=queue.id != fallback.id, priority=match.priority
        )
    everyone = queue_members(session, queue) + queue_members(session, fallback)
    raise NoEligibleRecipient(because_of_exclusions=bool(everyone))


class PublicStaff(NamedTuple):
    """What a reporter may know of a staff member: the id to exclude and the public name."""

    id: int
    display_name: str


class AlwaysReceives(NamedTuple):
    """A member the reporter cannot exclude from one queue, as the concern form names them."""

    display_name: str
    queue_name: str
    queue_description: str


@dataclass(frozen=True)
class ReporterChoices:
    """What the concern form offers and says about who may read a concern."""

    excludable: list[PublicStaff]  # the names a reporter may tick
    always_receive: list[AlwaysReceives]  # who stays a recipient of which queue regardless

    @property
    def channel_open(self) -> bool:
        return bool(self.excludable or self.always_receive)


def reporter_choices(session: Session) -> ReporterChoices:
    """One query over the memberships of active ombudspersons, reading only public names and
    queue names: this feeds a public page. Someone excludable in one queue and not in another
    is offered for exclusion, and also named as always receiving that other queue's concerns."""
    stmt = (
        select(
            StaffUser.id,
            StaffUser.display_name,
            QueueMembership.excludable,
            Queue,
        )
        .join(QueueMembership, QueueMembership.staff_id == StaffUser.id)
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .where(StaffUser.active, _is_ombudsperson())
        .order_by(StaffUser.display_name, StaffUser.id, Queue.name)
    )
    excludable: dict[int, PublicStaff] = {}
    always: list[AlwaysReceives] = []
    for staff_id, name, is_excludable, queue in session.execute(stmt):
        if is_excludable:
            excludable.setdefault(staff_id, PublicStaff(staff_id, name))
        else:
            always.append(
                AlwaysReceives(name, i18n.shown(queue, "name"), i18n.shown(queue, "description"))
            )
    return ReporterChoices(list(excludable.values()), always)


def excludable_staff(session: Session) -> list[PublicStaff]:
    """Ombudspersons a reporter may exclude: every active one with at least one membership the
    reporter may exclude them from."""
    return reporter_choices(session).excludable


def channel_open(session: Session) -> bool:
    """True when at least one active ombudsperson sits in a queue."""
    stmt = (
        select(StaffUser.id)
        .join(QueueMembership, QueueMembership.staff_id == StaffUser.id)
        .where(StaffUser.active, _is_ombudsperson())
        .limit(1)
    )
    return session.scalar(stmt) is not None


def fallback_staffed(session: Session) -> bool:
    return bool(queue_members(session, fallback_queue(session)))
