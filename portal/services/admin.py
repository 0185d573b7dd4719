"""Staff administration: accounts, roles, queue memberships, disabling and enabling.

Every change is audited in the transaction that makes it (target = the account changed; the
detail holds role and queue codes, never a name or anything typed). The last active admin can
be neither disabled nor demoted, and nobody can take away their own admin role or disable
themselves, so the console can never lock every administrator out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.i18n import Translations
from portal.models import Queue, QueueMembership, Role, StaffRole, StaffSession, StaffUser
from portal.services import audit, staff
from portal.services.audit import Action
from portal.services.errors import InvalidInput, PortalError, StaffExists, UnknownQueue
from portal.services.wording import N_
from portal.settings import Settings


class UnknownStaff(PortalError):
    """No staff account has this id (or e-mail)."""


class LastAdmin(InvalidInput):
    """The change would leave the portal without an active admin, or an admin would lock
    themselves out; ``field`` names the form field it concerns."""


@dataclass(frozen=True)
class Membership:
    slug: str
    name: str
    excludable: bool
    translations: Translations = field(default_factory=dict)  # the queue's, for display


@dataclass(frozen=True)
class StaffRow:
    """What the console shows of an account: no key material, no session detail."""

    id: int
    email: str
    display_name: str
    roles: tuple[Role, ...]
    memberships: tuple[Membership, ...]
    active: bool
    enrolled: bool  # a second factor is set up
    must_change_password: bool


@dataclass(frozen=True)
class NewAccount:
    user: StaffUser
    # Shown once to the admin, who hands it over; only its hash and the key it wraps are stored.
    temporary_password: str


def _row(user: StaffUser, memberships: list[Membership]) -> StaffRow:
    return StaffRow(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        roles=tuple(sorted(user.roles)),
        memberships=tuple(memberships),
        active=user.active,
        enrolled=user.totp_sealed is not None,
        must_change_password=user.must_change_password,
    )


def _memberships(session: Session, staff_ids: Iterable[int]) -> dict[int, list[Membership]]:
    ids = list(staff_ids)
    out: dict[int, list[Membership]] = {i: [] for i in ids}
    if not ids:
        return out
    stmt = (
        select(
            QueueMembership.staff_id,
            Queue.slug,
            Queue.name,
            QueueMembership.excludable,
            Queue.translations,
        )
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .where(QueueMembership.staff_id.in_(ids))
        .order_by(Queue.name)
    )
    for staff_id, slug, name, excludable, translations in session.execute(stmt):
        out[staff_id].append(Membership(slug, name, excludable, translations or {}))
    return out


def list_staff(session: Session) -> list[StaffRow]:
    users = list(session.scalars(select(StaffUser).order_by(StaffUser.email)))
    memberships = _memberships(session, (u.id for u in users))
    return [_row(u, memberships[u.id]) for u in users]


def get_user(session: Session, staff_id: int) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise UnknownStaff(str(staff_id))
    return user


def user_by_email(session: Session, email: str) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.email == staff.normalise_email(email)))
    if user is None:
        raise UnknownStaff(email)
    return user


def describe(session: Session, user: StaffUser) -> StaffRow:
    return _row(user, _memberships(session, [user.id])[user.id])


def _active_admins(session: Session) -> int:
    stmt = (
        select(func.count())
        .select_from(StaffUser)
        .join(StaffRole, StaffRole.staff_id == StaffUser.id)
        .where(StaffUser.active, StaffRole.role == Role.ADMIN.value)
    )
    return session.scalar(stmt) or 0


def _is_last_active_admin(session: Session, user: StaffUser) -> bool:
    return user.active and Role.ADMIN in user.roles and _active_admins(session) <= 1


def _queues_by_slug(session: Session, slugs: Iterable[str]) -> dict[str, Queue]:
    wanted = list(dict.fromkeys(slugs))
    found = {q.slug: q for q in session.scalars(select(Queue).where(Queue.slug.in_(wanted)))}
    for slug in wanted:
        if slug not in found:
            raise UnknownQueue(slug)
    return found


def create_account(
    session: Session,
    settings: Settings,
    *,
    email: str,
    display_name: str,
    roles: Iterable[Role],
    queue_slugs: Iterable[str],
    not_excludable_in: Iterable[str] = (),
    actor: StaffUser | None,
    now: dt.datetime,
) -> NewAccount:
    """Create an account with a generated temporary password that must be changed at the first
    log-in. The recovery key made with the account is not shown to anyone: it wraps a private
    key that holds nothing yet, and its owner gets a fresh one when they choose their password."""
    queue_slugs = list(dict.fromkeys(queue_slugs))
    fixed = set(not_excludable_in)
    if fixed - set(queue_slugs):
        raise InvalidInput(
            "not_excludable_in",
            N_("A queue can be marked 'cannot be excluded' only if the person is a member of it."),
        )
    password = crypto.new_temporary_password(settings.staff_password_min_chars)
    try:
        created = staff.create_staff(
            session,
            settings,
            email=email,
            display_name=display_name,
            roles=roles,
            queue_slugs=queue_slugs,
            password=password,
            now=now,
            not_excludable_in=fixed,
        )
    except StaffExists as exc:
        raise InvalidInput(
            "email", N_("An account with this e-mail address already exists.")
        ) from exc
    user = created.user
    staff.give_one_time_password(user, now)
    session.flush()
    audit.record(
        session,
        Action.STAFF_CREATED,
        now,
        actor=actor,
        target=user,
        roles=sorted(r.value for r in user.roles),
        queues=sorted(queue_slugs),
        not_excludable=sorted(fixed),
    )
    return NewAccount(user, password)


def set_active(
    session: Session, user: StaffUser, active: bool, *, actor: StaffUser | None, now: dt.datetime
) -> bool:
    """Disable or enable an account; return False when it already was. Disabling ends every
    session of the account at once; a disabled account receives no new cases (routing skips
    it) but keeps the sealed keys it holds, so enabling it again restores its access."""
    if user.active == active:
        return False
    if not active:
        if actor is not None and actor.id == user.id:
            raise LastAdmin("active", N_("You cannot disable your own account."))
        if _is_last_active_admin(session, user):
            raise LastAdmin(
                "active",
                N_("This is the last active admin: enable or appoint another admin first."),
            )
    user.active = active
    ended = 0
    if not active:
        result = session.execute(delete(StaffSession).where(StaffSession.staff_id == user.id))
        ended = int(getattr(result, "rowcount", 0) or 0)
    session.flush()
    if active:
        audit.record(session, Action.STAFF_ENABLED, now, actor=actor, target=user)
    else:
        audit.record(
            session, Action.STAFF_DISABLED, now, actor=actor, target=user, sessions_ended=ended
        )
    return True


def set_roles(
    session: Session,
    user: StaffUser,
    roles: Iterable[Role],
    *,
    actor: StaffUser | None,
    now: dt.datetime,
) -> bool:
    """Replace the roles of an account; return False when nothing changed."""
    wanted = set(roles)
    if not wanted:
        raise InvalidInput("roles", N_("Give at least one role."))
    before = user.roles
    if wanted == before:
        return False
    if Role.ADMIN in before and Role.ADMIN not in wanted:
        if actor is not None and actor.id == user.id:
            raise LastAdmin(
                "roles", N_("You cannot remove your own admin role; ask another admin to do it.")
            )
        if _is_last_active_admin(session, user):
            raise LastAdmin(
                "roles", N_("This is the last active admin: appoint another admin first.")
            )
    user.role_rows[:] = [r for r in user.role_rows if Role(r.role) in wanted]
    for role in sorted(wanted - before):
        user.role_rows.append(StaffRole(role=role.value))
    session.flush()
    audit.record(
        session,
        Action.STAFF_ROLES_CHANGED,
        now,
        actor=actor,
        target=user,
        roles=sorted(r.value for r in wanted),
        added=sorted(r.value for r in wanted - before),
        removed=sorted(r.value for r in before - wanted),
    )
    return True


def set_queues(
    session: Session,
    user: StaffUser,
    memberships: Mapping[str, bool],
    *,
    actor: StaffUser | None,
    now: dt.datetime,
) -> bool:
    """Replace the queue memberships of an account: ``{slug: excludable}``. Return False when
    nothing changed. Leaving a queue stops new cases of that queue; cases already shared with
    the member stay shared until they recuse or the case is transferred."""
    queues = _queues_by_slug(session, memberships)
    current = {
        m.queue_id: m
        for m in session.scalars(select(QueueMembership).where(QueueMembership.staff_id == user.id))
    }
    slug_of = {q.id: q.slug for q in session.scalars(select(Queue))}
    before = {slug_of[qid]: m.excludable for qid, m in current.items()}
    wanted = dict(memberships)
    if before == wanted:
        return False
    for queue_id, membership in current.items():
        if slug_of[queue_id] not in wanted:
            session.delete(membership)
    for slug, excludable in wanted.items():
        queue = queues[slug]
        existing = current.get(queue.id)
        if existing is None:
            session.add(QueueMembership(queue_id=queue.id, staff_id=user.id, excludable=excludable))
        else:
            existing.excludable = excludable
    session.flush()
    audit.record(
        session,
        Action.STAFF_QUEUES_CHANGED,
        now,
        actor=actor,
        target=user,
        queues=sorted(wanted),
        not_excludable=sorted(s for s, excludable in wanted.items() if not excludable),
        joined=sorted(set(wanted) - set(before)),
        left=sorted(set(before) - set(wanted)),
    )
    return True
