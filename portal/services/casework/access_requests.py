"""Four eyes on access (issue 13, finding 6).

A change that would let someone read cases or identities, or approve such changes, is never
made by one admin alone: it is stored as a request and takes effect only when a different admin
approves it. Neither the admin who asked nor the person it is for can approve it; another admin
can reject it, the admin who asked can withdraw it, and it lapses after ``LIFETIME``. Changes
that take access away take effect at once (they reduce risk). Nobody changes their own roles or
queue memberships at all, not even to remove one.

What needs a second admin (``GRANTING_ROLES`` and the two queue changes):

- the ombudsperson role (case pages, grants from colleagues);
- the custodian role (a named reporter's contact details are sealed to custodians);
- the admin role (the power to approve: otherwise one admin makes a second admin account,
  logs in with its temporary password and approves their own requests);
- joining a queue (every new concern of the queue is sealed to its members);
- becoming a member reporters cannot exclude.

The break-glass path is the operator at the server (``actor=None``: ``portal create-staff``,
``portal staff roles|queues``, ``portal membership excludable``): someone who can run commands
there already holds the database and the instance secrets. Their changes apply at once, are
audited with no actor, and are recorded here as ``AT_SERVER`` so the queue's members see them
like any other.

Every request, approval, rejection, withdrawal and expiry is audited; the detail holds codes
and ids, never a name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from portal.errors import InvalidInput, UnknownItem
from portal.i18n.wording import N_
from portal.models import (
    AccessChange,
    AccessRequest,
    Queue,
    QueueMembership,
    RequestState,
    Role,
    StaffRole,
    StaffUser,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action

#: How long a request waits for a second admin before it lapses.
LIFETIME = dt.timedelta(days=7)
#: How long a queue's members see on their case list that someone joined.
SHOWN_TO_MEMBERS = dt.timedelta(days=30)
#: Roles whose grant needs a second admin; the others (management) only see aggregates.
GRANTING_ROLES = frozenset({Role.OMBUDSPERSON, Role.CUSTODIAN, Role.ADMIN})


class OwnAccount(InvalidInput):
    """Someone tried to change their own roles or queue memberships."""


class UnknownRequest(UnknownItem):
    """No access request has this id."""


class RequestRefused(InvalidInput):
    """The request cannot be decided this way (closed, expired, or the four-eyes rule)."""


def refuse_own_account(actor: StaffUser | None, target: StaffUser, field: str) -> None:
    """Nobody may change their own roles or queue memberships, in either direction: an admin
    who could add themself to a queue reads its next concerns."""
    if actor is not None and actor.id == target.id:
        message = (
            N_("You cannot change your own roles; ask another admin to do it.")
            if field == "roles"
            else N_("You cannot change your own queue memberships; ask another admin to do it.")
        )
        raise OwnAccount(field, message)


def _audit(
    session: Session,
    action: Action,
    row: AccessRequest,
    now: dt.datetime,
    *,
    actor: StaffUser | None,
    queue_slug: str | None,
    requested_by: int | None = None,
) -> None:
    """One audit event about a request: its id and codes, never a name."""
    audit.record(
        session,
        action,
        now,
        actor=actor,
        target=session.get(StaffUser, row.target_id),
        request=row.id,
        change=row.change,
        role=row.role,
        queue=queue_slug,
        excludable=row.excludable,
        requested_by=requested_by,
    )


def _slug(session: Session, queue_id: int | None) -> str | None:
    if queue_id is None:
        return None
    queue = session.get(Queue, queue_id)
    return queue.slug if queue else None


def _open(
    session: Session,
    target: StaffUser,
    change: AccessChange,
    role: str | None,
    queue_id: int | None,
    now: dt.datetime,
) -> AccessRequest | None:
    stmt = select(AccessRequest).where(
        AccessRequest.target_id == target.id,
        AccessRequest.change == change.value,
        AccessRequest.state == RequestState.PENDING.value,
        AccessRequest.expires_at > now,
    )
    stmt = stmt.where(
        AccessRequest.role == role if role is not None else AccessRequest.role.is_(None)
    )
    stmt = stmt.where(
        AccessRequest.queue_id == queue_id
        if queue_id is not None
        else AccessRequest.queue_id.is_(None)
    )
    return session.scalar(stmt)


def ask(
    session: Session,
    target: StaffUser,
    change: AccessChange,
    *,
    actor: StaffUser,
    now: dt.datetime,
    role: Role | None = None,
    queue: Queue | None = None,
    excludable: bool = True,
) -> AccessRequest:
    """File a request for a second admin (or return the same one already waiting)."""
    refuse_own_account(actor, target, "roles" if change is AccessChange.ROLE else "queues")
    queue_id = queue.id if queue is not None else None
    role_code = role.value if role is not None else None
    existing = _open(session, target, change, role_code, queue_id, now)
    if existing is not None and existing.excludable == excludable:
        return existing
    if existing is not None:  # asked again with the other flag: the newer request replaces it
        _close(session, existing, RequestState.WITHDRAWN, actor, now)
    row = AccessRequest(
        target_id=target.id,
        change=change.value,
        role=role_code,
        queue_id=queue_id,
        excludable=excludable,
        requested_by_id=actor.id,
        requested_at=now,
        expires_at=now + LIFETIME,
        state=RequestState.PENDING.value,
    )
    session.add(row)
    session.flush()
    _audit(
        session,
        Action.STAFF_ACCESS_REQUESTED,
        row,
        now,
        actor=actor,
        queue_slug=queue.slug if queue else None,
        requested_by=row.requested_by_id,
    )
    return row


def record_at_server(
    session: Session,
    target: StaffUser,
    change: AccessChange,
    now: dt.datetime,
    *,
    role: Role | None = None,
    queue: Queue | None = None,
    excludable: bool = True,
) -> None:
    """Note a change the operator made at the server (already applied and audited by the
    caller), so that it is shown to the queue's members like an approved one."""
    session.add(
        AccessRequest(
            target_id=target.id,
            change=change.value,
            role=role.value if role is not None else None,
            queue_id=queue.id if queue is not None else None,
            excludable=excludable,
            requested_by_id=None,
            requested_at=now,
            expires_at=now,
            state=RequestState.AT_SERVER.value,
            decided_at=now,
        )
    )
    session.flush()


_CLOSING = {
    RequestState.APPROVED: Action.STAFF_ACCESS_APPROVED,
    RequestState.REJECTED: Action.STAFF_ACCESS_REJECTED,
    RequestState.WITHDRAWN: Action.STAFF_ACCESS_WITHDRAWN,
    RequestState.EXPIRED: Action.STAFF_ACCESS_EXPIRED,
}


def _close(
    session: Session,
    row: AccessRequest,
    state: RequestState,
    actor: StaffUser | None,
    now: dt.datetime,
) -> None:
    # Claim the row with a conditional update: of two admins deciding the same request at
    # once, the second finds it no longer pending (PostgreSQL re-checks the condition after the
    # first commits) instead of applying the change twice.
    decided_by = actor.id if actor is not None else None
    claimed = session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == row.id, AccessRequest.state == RequestState.PENDING.value)
        .values(state=state.value, decided_by_id=decided_by, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != 1:
        session.expire(row)
        raise RequestRefused("request", N_("This request has already been decided."))
    set_committed_value(row, "state", state.value)
    set_committed_value(row, "decided_by_id", decided_by)
    set_committed_value(row, "decided_at", now)
    _audit(
        session,
        _CLOSING[state],
        row,
        now,
        actor=actor,
        queue_slug=_slug(session, row.queue_id),
        requested_by=row.requested_by_id,
    )


def expire_due(session: Session, now: dt.datetime) -> int:
    """Close (and audit) every request nobody approved within ``LIFETIME``."""
    due = list(
        session.scalars(
            select(AccessRequest).where(
                AccessRequest.state == RequestState.PENDING.value, AccessRequest.expires_at <= now
            )
        )
    )
    for row in due:
        _close(session, row, RequestState.EXPIRED, None, now)
    return len(due)


def _pending(session: Session, request_id: int, now: dt.datetime) -> AccessRequest:
    row = session.get(AccessRequest, request_id)
    if row is None or row.state == RequestState.AT_SERVER.value:
        raise UnknownRequest(str(request_id))
    if row.state == RequestState.PENDING.value and row.expires_at <= now:
        _close(session, row, RequestState.EXPIRED, None, now)
    if row.state == RequestState.EXPIRED.value:
        raise RequestRefused(
            "request", N_("This request has expired; ask for the change again if it is needed.")
        )
    if row.state != RequestState.PENDING.value:
        raise RequestRefused("request", N_("This request has already been decided."))
    return row


def _is_active_admin(user: StaffUser) -> bool:
    return user.active and Role.ADMIN in user.roles


def approve(session: Session, request_id: int, *, actor: StaffUser, now: dt.datetime) -> None:
    """Apply a waiting change, decided by an admin who neither asked for it nor gains by it."""
    row = _pending(session, request_id, now)
    if not _is_active_admin(actor):
        raise RequestRefused("request", N_("Only an active admin can approve a change."))
    if row.requested_by_id == actor.id:
        raise RequestRefused(
            "request", N_("You asked for this change: a different admin must approve it.")
        )
    if row.target_id == actor.id:
        raise RequestRefused(
            "request", N_("This change is for your own account: another admin must approve it.")
        )
    target = session.get_one(StaffUser, row.target_id)
    change = AccessChange(row.change)
    membership = (
        session.get(QueueMembership, (row.queue_id, target.id))
        if row.queue_id is not None
        else None
    )
    if change is AccessChange.NOT_EXCLUDABLE and membership is None:
        raise RequestRefused(
            "request",
            N_("This person is no longer a member of the queue; the request cannot apply."),
        )
    # Decided first, applied second: a request decided by someone else meanwhile applies nothing.
    _close(session, row, RequestState.APPROVED, actor, now)
    if change is AccessChange.ROLE:
        if row.role is None:  # pragma: no cover - a role request always names its role
            raise UnknownRequest(str(row.id))
        if Role(row.role) not in target.roles:
            target.role_rows.append(StaffRole(role=row.role))
    elif row.queue_id is None:  # pragma: no cover - a queue request always names its queue
        raise UnknownRequest(str(row.id))
    elif membership is None:
        session.add(
            QueueMembership(queue_id=row.queue_id, staff_id=target.id, excludable=row.excludable)
        )
    elif not row.excludable or change is AccessChange.NOT_EXCLUDABLE:
        membership.excludable = False
    session.flush()


def reject(session: Session, request_id: int, *, actor: StaffUser, now: dt.datetime) -> None:
    """Refuse a waiting change: withdrawn when the admin who asked does it, else rejected.
    Any admin may, the person it is for included: saying no takes no access."""
    row = _pending(session, request_id, now)
    if not _is_active_admin(actor):
        raise RequestRefused("request", N_("Only an active admin can decide a change."))
    state = RequestState.WITHDRAWN if row.requested_by_id == actor.id else RequestState.REJECTED
    _close(session, row, state, actor, now)


def withdraw_for_queue(
    session: Session, target: StaffUser, queue_id: int, actor: StaffUser | None, now: dt.datetime
) -> None:
    """The member left the queue: a waiting "cannot be excluded" for it has nothing to apply to."""
    rows = session.scalars(
        select(AccessRequest).where(
            AccessRequest.target_id == target.id,
            AccessRequest.queue_id == queue_id,
            AccessRequest.change == AccessChange.NOT_EXCLUDABLE.value,
            AccessRequest.state == RequestState.PENDING.value,
        )
    )
    for row in list(rows):
        _close(session, row, RequestState.WITHDRAWN, actor, now)


# --- what is shown -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    """A request as the console and the queue's members see it: names, codes and times."""

    id: int
    target_id: int
    target_email: str
    target_name: str
    change: AccessChange
    role: Role | None
    queue: Queue | None
    excludable: bool
    requested_by_id: int | None
    requested_by_name: str | None  # None: the operator at the server
    requested_at: dt.datetime
    expires_at: dt.datetime
    state: RequestState
    decided_by_name: str | None
    decided_at: dt.datetime | None


def _rows(session: Session, stmt: object) -> list[RequestRow]:
    requests = list(session.scalars(stmt))  # type: ignore[call-overload]
    ids = {r.target_id for r in requests} | {
        i for r in requests for i in (r.requested_by_id, r.decided_by_id) if i is not None
    }
    users = (
        {u.id: u for u in session.scalars(select(StaffUser).where(StaffUser.id.in_(ids)))}
        if ids
        else {}
    )
    queue_ids = {r.queue_id for r in requests if r.queue_id is not None}
    queues = (
        {q.id: q for q in session.scalars(select(Queue).where(Queue.id.in_(queue_ids)))}
        if queue_ids
        else {}
    )

    def name(user_id: int | None) -> str | None:
        return users[user_id].display_name if user_id in users else None

    return [
        RequestRow(
            id=r.id,
            target_id=r.target_id,
            target_email=users[r.target_id].email,
            target_name=users[r.target_id].display_name,
            change=AccessChange(r.change),
            role=Role(r.role) if r.role else None,
            queue=queues.get(r.queue_id) if r.queue_id is not None else None,
            excludable=r.excludable,
            requested_by_id=r.requested_by_id,
            requested_by_name=name(r.requested_by_id),
            requested_at=r.requested_at,
            expires_at=r.expires_at,
            state=RequestState(r.state),
            decided_by_name=name(r.decided_by_id),
            decided_at=r.decided_at,
        )
        for r in requests
    ]


def waiting(
    session: Session, now: dt.datetime, target: StaffUser | None = None
) -> list[RequestRow]:
    """Requests still waiting for a second admin (of one account, if ``target``)."""
    stmt = select(AccessRequest).where(
        AccessRequest.state == RequestState.PENDING.value, AccessRequest.expires_at > now
    )
    if target is not None:
        stmt = stmt.where(AccessRequest.target_id == target.id)
    return _rows(session, stmt.order_by(AccessRequest.requested_at, AccessRequest.id))


def decided(session: Session, now: dt.datetime) -> list[RequestRow]:
    """Requests decided (or changes made at the server) within ``SHOWN_TO_MEMBERS``."""
    stmt = (
        select(AccessRequest)
        .where(
            AccessRequest.state != RequestState.PENDING.value,
            AccessRequest.decided_at > now - SHOWN_TO_MEMBERS,
        )
        .order_by(AccessRequest.decided_at.desc(), AccessRequest.id.desc())
    )
    return _rows(session, stmt)


def for_queue_members(session: Session, user: StaffUser, now: dt.datetime) -> list[RequestRow]:
    """What a member sees of their own queues: who is waiting to join (or to become someone
    reporters cannot exclude), and who did so in the last ``SHOWN_TO_MEMBERS``, with who asked
    and who approved. Their own changes are included: they should know too."""
    my_queues = select(QueueMembership.queue_id).where(QueueMembership.staff_id == user.id)
    shown_states = [
        RequestState.PENDING.value,
        RequestState.APPROVED.value,
        RequestState.AT_SERVER.value,
    ]
    stmt = (
        select(AccessRequest)
        .where(
            AccessRequest.queue_id.in_(my_queues),
            AccessRequest.state.in_(shown_states),
            AccessRequest.requested_at > now - SHOWN_TO_MEMBERS - LIFETIME,
        )
        .order_by(AccessRequest.requested_at.desc(), AccessRequest.id.desc())
    )
    return [
        row
        for row in _rows(session, stmt)
        if (row.state is RequestState.PENDING and row.expires_at > now)
        or (
            row.state is not RequestState.PENDING
            and row.decided_at is not None
            and row.decided_at > now - SHOWN_TO_MEMBERS
        )
    ]
