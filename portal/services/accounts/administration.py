"""Staff administration: accounts, roles, queue memberships, disabling and enabling.

Every change is audited in the transaction that makes it (target = the account changed; the
detail holds role and queue codes, never a name or anything typed). The last active admin can
be neither disabled nor demoted, and nobody can disable themselves, so the console can never
lock every administrator out.

Nobody changes their own roles or queue memberships. From the console (an ``actor``), a change
that gives access (see ``access_requests``) is filed as a request that a second admin must
approve; what takes access away applies at once. From the command line (no actor: the operator
at the server, the break-glass path) everything applies at once and is recorded for the
queue's members to see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import InvalidInput, StaffExists, UnknownItem, UnknownQueue
from portal.i18n.labels import Translations
from portal.i18n.wording import N_
from portal.models import (
    AccessChange,
    AccessRequest,
    Queue,
    QueueMembership,
    Role,
    StaffRole,
    StaffSession,
    StaffUser,
)
from portal.services.accounts import accounts as staff
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import access_requests
from portal.services.casework.access_requests import GRANTING_ROLES
from portal.settings import Settings


class UnknownStaff(UnknownItem):
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
    # What the account was given subject to a second admin's approval.
    requested: tuple[AccessRequest, ...] = ()


@dataclass(frozen=True)
class Changed:
    """What a change did: ``applied`` took effect now; ``requested`` waits for a second admin.
    True when either happened."""

    applied: bool
    requested: tuple[AccessRequest, ...] = ()

    def __bool__(self) -> bool:
        return self.applied or bool(self.requested)


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
    wanted_roles = set(roles)
    if not wanted_roles:
        raise InvalidInput("role", N_("Give at least one role."))
    # From the console, what gives access is only asked for: the account starts without it.
    later_roles = wanted_roles & GRANTING_ROLES if actor is not None else set()
    later_queues = _queues_by_slug(session, queue_slugs) if actor is not None else {}
    password = crypto.new_temporary_password(settings.staff_password_min_chars)
    try:
        created = staff.create_staff(
            session,
            settings,
            email=email,
            display_name=display_name,
            roles=wanted_roles - later_roles,
            queue_slugs=[] if later_queues else queue_slugs,
            password=password,
            now=now,
            not_excludable_in=set() if later_queues else fixed,
            require_role=not later_roles,
        )
    except StaffExists as exc:
        raise InvalidInput(
            "email", N_("An account with this e-mail address already exists.")
        ) from exc
    user = created.user
    staff.give_one_time_password(user, now)
    session.flush()
    joined_now = [] if later_queues else queue_slugs
    audit.record(
        session,
        Action.STAFF_CREATED,
        now,
        actor=actor,
        target=user,
        roles=sorted(r.value for r in user.roles),
        queues=sorted(joined_now),
        not_excludable=sorted(fixed & set(joined_now)),
    )
    requested: list[AccessRequest] = []
    if actor is not None:
        requested += [
            access_requests.ask(session, user, AccessChange.ROLE, actor=actor, now=now, role=role)
            for role in sorted(later_roles)
        ]
        requested += [
            access_requests.ask(
                session,
                user,
                AccessChange.JOIN_QUEUE,
                actor=actor,
                now=now,
                queue=later_queues[slug],
                excludable=slug not in fixed,
            )
            for slug in queue_slugs
        ]
    return NewAccount(user, password, tuple(requested))


def note_created_at_server(session: Session, user: StaffUser, now: dt.datetime) -> None:
    """Audit an account made at the server (``portal create-staff``: the operator, the
    break-glass path that also makes the first admin) and show what it was given that grants
    access to the queues' members, like a change a second admin approved."""
    memberships = _memberships(session, [user.id])[user.id]
    audit.record(
        session,
        Action.STAFF_CREATED,
        now,
        actor=None,
        target=user,
        roles=sorted(r.value for r in user.roles),
        queues=sorted(m.slug for m in memberships),
        not_excludable=sorted(m.slug for m in memberships if not m.excludable),
    )
    for role in sorted(user.roles & GRANTING_ROLES):
        access_requests.record_at_server(session, user, AccessChange.ROLE, now, role=role)
    queues = _queues_by_slug(session, [m.slug for m in memberships])
    for m in memberships:
        access_requests.record_at_server(
            session,
            user,
            AccessChange.JOIN_QUEUE,
            now,
            queue=queues[m.slug],
            excludable=m.excludable,
        )


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
) -> Changed:
    """Make the roles of an account ``roles``: removals and the management role at once; from
    the console, the roles that give access (``GRANTING_ROLES``) as requests for a second
    admin. Nobody changes their own roles."""
    wanted = set(roles)
    if not wanted:
        raise InvalidInput("roles", N_("Give at least one role."))
    before = user.roles
    if wanted == before:
        return Changed(False)
    if Role.ADMIN in before and Role.ADMIN not in wanted:
        if actor is not None and actor.id == user.id:
            raise LastAdmin(
                "roles", N_("You cannot remove your own admin role; ask another admin to do it.")
            )
        if _is_last_active_admin(session, user):
            raise LastAdmin(
                "roles", N_("This is the last active admin: appoint another admin first.")
            )
    access_requests.refuse_own_account(actor, user, "roles")
    added = wanted - before
    later = added & GRANTING_ROLES if actor is not None else set()
    now_added = added - later
    removed = before - wanted
    if now_added or removed:
        user.role_rows[:] = [r for r in user.role_rows if Role(r.role) in wanted]
        for role in sorted(now_added):
            user.role_rows.append(StaffRole(role=role.value))
            if actor is None and role in GRANTING_ROLES:
                access_requests.record_at_server(session, user, AccessChange.ROLE, now, role=role)
        session.flush()
        audit.record(
            session,
            Action.STAFF_ROLES_CHANGED,
            now,
            actor=actor,
            target=user,
            roles=sorted(r.value for r in user.roles),
            added=sorted(r.value for r in now_added),
            removed=sorted(r.value for r in removed),
        )
    requested = tuple(
        access_requests.ask(session, user, AccessChange.ROLE, actor=actor, now=now, role=role)
        for role in sorted(later)
        if actor is not None
    )
    return Changed(bool(now_added or removed), requested)


def set_queues(
    session: Session,
    user: StaffUser,
    memberships: Mapping[str, bool],
    *,
    actor: StaffUser | None,
    now: dt.datetime,
) -> Changed:
    """Make the queue memberships of an account ``{slug: excludable}``. Leaving a queue, and
    becoming excludable, apply at once; from the console, joining a queue and becoming a member
    reporters cannot exclude are requests for a second admin. Nobody changes their own.

    Leaving a queue stops new cases of that queue; cases already shared with the member stay
    shared until they recuse or the case is transferred."""
    queues = _queues_by_slug(session, memberships)
    current = {
        m.queue_id: m
        for m in session.scalars(select(QueueMembership).where(QueueMembership.staff_id == user.id))
    }
    slug_of = {q.id: q.slug for q in session.scalars(select(Queue))}
    before = {slug_of[qid]: m.excludable for qid, m in current.items()}
    wanted = dict(memberships)
    if before == wanted:
        return Changed(False)
    access_requests.refuse_own_account(actor, user, "queues")
    requested: list[AccessRequest] = []
    applied = False
    joined: list[str] = []
    for queue_id, membership in current.items():
        if slug_of[queue_id] not in wanted:
            session.delete(membership)
            access_requests.withdraw_for_queue(session, user, queue_id, actor, now)
            applied = True
    for slug, excludable in wanted.items():
        queue = queues[slug]
        existing = current.get(queue.id)
        if existing is None:
            if actor is not None:
                requested.append(
                    access_requests.ask(
                        session,
                        user,
                        AccessChange.JOIN_QUEUE,
                        actor=actor,
                        now=now,
                        queue=queue,
                        excludable=excludable,
                    )
                )
                continue
            session.add(QueueMembership(queue_id=queue.id, staff_id=user.id, excludable=excludable))
            access_requests.record_at_server(
                session, user, AccessChange.JOIN_QUEUE, now, queue=queue, excludable=excludable
            )
            joined.append(slug)
            applied = True
        elif existing.excludable != excludable:
            if excludable:  # the reporter may exclude them again: less access, at once
                existing.excludable = True
                applied = True
            elif actor is not None:
                requested.append(
                    access_requests.ask(
                        session,
                        user,
                        AccessChange.NOT_EXCLUDABLE,
                        actor=actor,
                        now=now,
                        queue=queue,
                    )
                )
            else:
                existing.excludable = False
                access_requests.record_at_server(
                    session, user, AccessChange.NOT_EXCLUDABLE, now, queue=queue, excludable=False
                )
                applied = True
    session.flush()
    if applied:
        after = {
            slug_of[m.queue_id]: m.excludable
            for m in session.scalars(
                select(QueueMembership).where(QueueMembership.staff_id == user.id)
            )
        }
        audit.record(
            session,
            Action.STAFF_QUEUES_CHANGED,
            now,
            actor=actor,
            target=user,
            queues=sorted(after),
            not_excludable=sorted(s for s, excludable in after.items() if not excludable),
            joined=sorted(joined),
            left=sorted(set(before) - set(wanted)),
        )
    return Changed(applied, tuple(requested))
