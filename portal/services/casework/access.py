"""Who holds a case's key: grants, re-grants, transfers, recusals, non-excludable members.

Access to a case *is* a copy of its key sealed to one staff member's public key (``CaseAccess``).
Every change here happens in the session of someone who holds that key: they unseal it with
their own private key and seal it again to a colleague, or destroy copies. No server secret can
do it alone, so an admin cannot hand themselves a case.

Each verb runs in the caller's transaction with its audit event: the caller commits both, or
neither. Audit details carry ids, slugs and counts, never anything a person wrote.

Rules that hold throughout:

- The reporter's exclusions (kept inside the encrypted report) are honoured by every grant and
  transfer, except for members a queue marks as not excludable, of whom the reporter is told on
  the concern form before sending.
- A recusal is final for that case: neither a grant nor a transfer seals the key to that person
  again. The audit log, which is append-only and tamper-evident, is the record of it.
- Nobody may leave a case that nobody else could still decrypt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import Exists

from portal import crypto
from portal.errors import AccessRefusal, AccessRefused, NoAccess
from portal.i18n import labels as i18n
from portal.models import (
    AccessChange,
    Case,
    CaseAccess,
    CaseRecusal,
    PendingRegrant,
    Queue,
    QueueMembership,
    Role,
    StaffRole,
    StaffUser,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import access_requests, cases, content, thread
from portal.services.reporting import routing

# Staff ids are 32-bit integers in both databases; anything else names nobody.
_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Person:
    id: int
    display_name: str


@dataclass(frozen=True)
class Granted:
    colleague: StaffUser
    regrant: bool  # True when it answered a pending re-grant (the colleague lost their key)


@dataclass(frozen=True)
class Transferred:
    from_queue: Queue
    to_queue: Queue
    granted: int  # new holders
    removed: int  # copies destroyed
    kept_access: bool  # whether the transferring user still holds the key


@dataclass(frozen=True)
class QueueChoice:
    slug: str
    name: str
    you_are_member: bool


@dataclass(frozen=True)
class Overview:
    """What the case page's access panel shows. No decryption: the caller passes the
    reporter's exclusions from the report it has already opened."""

    holders: list[Person]  # hold a usable copy of the key
    awaiting_regrant: list[Person]  # lost their key (password reset) and wait for a colleague
    grantable: list[Person]  # may be granted access now
    transfer_to: list[QueueChoice]
    you_are_last_holder: bool


@dataclass(frozen=True)
class AwaitingRegrant:
    handle: str
    colleagues: int


# --- reading ------------------------------------------------------------------------------------


def _is_ombudsperson() -> Exists:
    return exists().where(StaffRole.staff_id == StaffUser.id, StaffRole.role == Role.OMBUDSPERSON)


def _pending_ids(session: Session, case: Case) -> set[int]:
    stmt = select(PendingRegrant.staff_id).where(PendingRegrant.case_id == case.id)
    return set(session.scalars(stmt))


def _usable_holder_ids(session: Session, case: Case) -> set[int]:
    """Staff who could open the case today: an active ombudsperson with a copy that is not
    waiting for a re-grant (such a copy is sealed to a key pair its owner no longer has)."""
    stmt = (
        select(CaseAccess.staff_id)
        .join(StaffUser, StaffUser.id == CaseAccess.staff_id)
        .where(
            CaseAccess.case_id == case.id,
            StaffUser.active,
            _is_ombudsperson(),
            ~exists().where(
                PendingRegrant.case_id == CaseAccess.case_id,
                PendingRegrant.staff_id == CaseAccess.staff_id,
            ),
        )
    )
    return set(session.scalars(stmt))


def recused_ids(session: Session, case: Case) -> set[int]:
    """Everyone who recused themselves from the case."""
    stmt = select(CaseRecusal.staff_id).where(CaseRecusal.case_id == case.id)
    return set(session.scalars(stmt))


def _not_excludable_ids(session: Session, queue_id: int) -> set[int]:
    stmt = select(QueueMembership.staff_id).where(
        QueueMembership.queue_id == queue_id, QueueMembership.excludable.is_(False)
    )
    return set(session.scalars(stmt))


def _people(session: Session, ids: Collection[int]) -> list[Person]:
    if not ids:
        return []
    stmt = (
        select(StaffUser.id, StaffUser.display_name)
        .where(StaffUser.id.in_(ids))
        .order_by(StaffUser.display_name, StaffUser.id)
    )
    return [Person(row.id, row.display_name) for row in session.execute(stmt)]


def overview(session: Session, user: StaffUser, case: Case, excluded: Collection[int]) -> Overview:
    holders = _usable_holder_ids(session, case)
    pending = _pending_ids(session, case)
    recused = recused_ids(session, case)
    fixed = _not_excludable_ids(session, case.queue_id)
    unavailable = holders | pending | recused
    candidates = session.execute(
        select(StaffUser.id, StaffUser.display_name)
        .where(StaffUser.active, _is_ombudsperson())
        .order_by(StaffUser.display_name, StaffUser.id)
    )
    grantable = [
        Person(row.id, row.display_name)
        for row in candidates
        if row.id not in unavailable and (row.id not in excluded or row.id in fixed)
    ]
    member_of = set(
        session.scalars(select(QueueMembership.queue_id).where(QueueMembership.staff_id == user.id))
    )
    queues = session.scalars(select(Queue).where(Queue.id != case.queue_id).order_by(Queue.name))
    return Overview(
        holders=_people(session, holders),
        awaiting_regrant=_people(session, pending),
        grantable=grantable,
        transfer_to=[QueueChoice(q.slug, i18n.shown(q, "name"), q.id in member_of) for q in queues],
        you_are_last_holder=holders <= {user.id},
    )


def awaiting_regrant(session: Session, user: StaffUser) -> list[AwaitingRegrant]:
    """Cases ``user`` holds a usable key for while a colleague waits for a re-grant of it."""
    if not cases.may_handle_cases(user):
        return []
    mine = aliased(PendingRegrant)
    own_pending = exists().where(mine.case_id == Case.id, mine.staff_id == user.id)
    stmt = (
        select(Case.handle, func.count(PendingRegrant.staff_id))
        .join(PendingRegrant, PendingRegrant.case_id == Case.id)
        .join(CaseAccess, and_(CaseAccess.case_id == Case.id, CaseAccess.staff_id == user.id))
        .where(~own_pending)
        .group_by(Case.handle)
        .order_by(Case.handle)
    )
    return [AwaitingRegrant(handle, count) for handle, count in session.execute(stmt)]


# --- changing -----------------------------------------------------------------------------------


def _unlock_for_change(
    session: Session, user: StaffUser, private_key: bytes, handle: str
) -> tuple[Case, thread.CaseKeys]:
    case, keys = cases.unlock_keys(session, user, private_key, handle)
    # Serialise access changes to one case: on PostgreSQL the row lock lasts until commit, so
    # two colleagues recusing at once cannot each count the other as the remaining holder.
    # (SQLite takes one writer at a time; recuse() re-counts after its delete for that case.)
    session.refresh(case, with_for_update=True)
    still_holds = session.scalar(
        select(CaseAccess.staff_id).where(
            CaseAccess.case_id == case.id, CaseAccess.staff_id == user.id
        )
    )
    if still_holds is None:  # removed by a transfer that committed while we waited
        raise NoAccess(handle)
    return case, keys


def _excluded(case: Case, case_key: bytes) -> tuple[int, ...]:
    return content.open_report(case_key, case.id, case.report_ciphertext).excluded_staff_ids


def recuse(
    session: Session, user: StaffUser, private_key: bytes, handle: str, now: dt.datetime
) -> Case:
    """Destroy the user's own sealed copy of the case key. Refused when nobody else could
    still decrypt the case: it would be lost."""
    case, _ = _unlock_for_change(session, user, private_key, handle)
    if not _usable_holder_ids(session, case) - {user.id}:
        raise AccessRefused(AccessRefusal.LAST_HOLDER)
    session.execute(
        delete(CaseAccess).where(CaseAccess.case_id == case.id, CaseAccess.staff_id == user.id)
    )
    session.add(CaseRecusal(case_id=case.id, staff_id=user.id))
    session.flush()
    remaining = _usable_holder_ids(session, case)
    if not remaining:  # a colleague left in the same moment; the caller rolls back
        raise AccessRefused(AccessRefusal.LAST_HOLDER)
    audit.record(session, Action.CASE_RECUSED, now, actor=user, case=case, holders=len(remaining))
    return case


def grant(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    colleague_id: int,
    now: dt.datetime,
    *,
    fingerprint: str | None = None,
) -> Granted:
    """Seal the case key to a colleague. Answers a pending re-grant when there is one.

    A re-grant seals to a key pair made by a password reset, which the colleague's own person
    may not hold (whoever learnt a login secret of the account could have made it). So it needs
    ``fingerprint``: the fingerprint of the colleague's current public key, as its owner reads
    it out from their own account page. A missing or different one is refused
    (FINGERPRINT_MISMATCH) before anything is sealed; the caller records the refusal with
    ``record_refused_regrant`` after rolling back."""
    case, keys = _unlock_for_change(session, user, private_key, handle)
    case_key = keys.case
    colleague = session.get(StaffUser, colleague_id) if 0 < colleague_id <= _MAX_ID else None
    if colleague is None or not cases.may_handle_cases(colleague):
        raise AccessRefused(AccessRefusal.NOT_ELIGIBLE)
    pending = session.get(PendingRegrant, (case.id, colleague.id))
    existing = session.get(CaseAccess, (case.id, colleague.id))
    if existing is not None and pending is None:
        raise AccessRefused(AccessRefusal.ALREADY_HOLDS)
    if pending is not None and not crypto.fingerprint_matches(
        colleague.public_key, fingerprint or ""
    ):
        raise AccessRefused(AccessRefusal.FINGERPRINT_MISMATCH)
    if colleague.id in recused_ids(session, case):
        raise AccessRefused(AccessRefusal.RECUSED)
    if colleague.id in _excluded(case, case_key) and colleague.id not in _not_excludable_ids(
        session, case.queue_id
    ):
        raise AccessRefused(AccessRefusal.EXCLUDED_BY_REPORTER)
    sealed = crypto.seal(colleague.public_key, case_key)
    # The staff-only key of the internal notes goes with it, sealed the same way.
    sealed_staff = thread.seal_staff_key_to(colleague.public_key, keys.staff)
    if existing is not None:  # a copy sealed to the key pair the colleague lost
        existing.sealed_key = sealed
        existing.sealed_staff_key = sealed_staff
    else:
        session.add(
            CaseAccess(
                case_id=case.id,
                staff_id=colleague.id,
                sealed_key=sealed,
                sealed_staff_key=sealed_staff,
            )
        )
    if pending is not None:
        session.delete(pending)
    session.flush()
    action = Action.CASE_REGRANTED if pending is not None else Action.CASE_GRANTED
    audit.record(session, action, now, actor=user, case=case, target=colleague)
    return Granted(colleague, regrant=pending is not None)


def record_refused_regrant(
    session: Session,
    user: StaffUser,
    handle: str,
    colleague_id: int,
    now: dt.datetime,
    *,
    typed: bool,
) -> None:
    """Audit a re-grant refused for its fingerprint, in a transaction of its own (the refused
    change was rolled back). Ids and whether anything was typed: never the fingerprint."""
    case = session.scalar(select(Case).where(Case.handle == handle))
    colleague = session.get(StaffUser, colleague_id) if 0 < colleague_id <= _MAX_ID else None
    audit.record(
        session,
        Action.CASE_REGRANT_REFUSED,
        now,
        actor=user,
        case=case,
        target=colleague,
        typed=typed,
    )


def transfer(
    session: Session,
    user: StaffUser,
    private_key: bytes,
    handle: str,
    queue_slug: str,
    now: dt.datetime,
) -> Transferred:
    """Move the case to another queue. Its holders become exactly the eligible members of the
    new queue (active ombudspersons, minus the reporter's exclusions unless not excludable
    there, minus anyone who recused); every other copy of the key is destroyed, the
    transferring user's too unless they are one of them."""
    case, keys = _unlock_for_change(session, user, private_key, handle)
    case_key = keys.case
    queue = session.scalar(select(Queue).where(Queue.slug == queue_slug))
    if queue is None:
        raise AccessRefused(AccessRefusal.UNKNOWN_QUEUE)
    if queue.id == case.queue_id:
        raise AccessRefused(AccessRefusal.SAME_QUEUE)
    old_queue = session.get_one(Queue, case.queue_id)
    recused = recused_ids(session, case)
    new_holders = {
        member.id: member
        for member in routing.eligible_members(session, queue, _excluded(case, case_key))
        if member.id not in recused
    }
    # Whoever waits for a re-grant keeps waiting in the new queue: a transfer must not seal the
    # key to a reset account's new key pair without the fingerprint check a re-grant makes.
    # So someone else there must be able to open the case, or it would be lost.
    pending = _pending_ids(session, case)
    if not set(new_holders) - pending:
        raise AccessRefused(AccessRefusal.NO_RECIPIENT)

    granted = removed = 0
    kept: set[int] = set()
    for row in session.scalars(select(CaseAccess).where(CaseAccess.case_id == case.id)):
        if row.staff_id not in new_holders or row.staff_id in pending:
            session.delete(row)  # a stale copy of a waiting member opens nothing anyway
            removed += 1
            continue
        kept.add(row.staff_id)
    for member_id, member in new_holders.items():
        if member_id not in kept and member_id not in pending:
            session.add(
                CaseAccess(
                    case_id=case.id,
                    staff_id=member_id,
                    sealed_key=crypto.seal(member.public_key, case_key),
                    sealed_staff_key=thread.seal_staff_key_to(member.public_key, keys.staff),
                )
            )
            granted += 1
    # Those who wait and have no place in the new queue stop waiting.
    session.execute(
        delete(PendingRegrant).where(
            PendingRegrant.case_id == case.id, PendingRegrant.staff_id.not_in(new_holders)
        )
    )
    case.queue_id = queue.id
    session.flush()
    audit.record(
        session,
        Action.CASE_TRANSFERRED,
        now,
        actor=user,
        case=case,
        from_queue=old_queue.slug,
        to_queue=queue.slug,
        granted=granted,
        removed=removed,
    )
    return Transferred(old_queue, queue, granted, removed, kept_access=user.id in new_holders)


def set_excludable(
    session: Session,
    member: StaffUser,
    queue_slug: str,
    excludable: bool,
    now: dt.datetime,
    actor: StaffUser | None = None,
) -> bool:
    """Mark whether reporters may exclude ``member`` from one queue. Applies to concerns
    received, and to grants and transfers made, from now on: no existing copy of a key is
    added or removed. Returns whether anything changed (only a change is audited).

    Nobody changes their own flag. Made not excludable by an admin (``actor``), the change is
    a request for a second admin (``access_requests``); by the operator at the server (no
    actor), it applies at once and is shown to the queue's members."""
    queue = session.scalar(select(Queue).where(Queue.slug == queue_slug))
    if queue is None:
        raise AccessRefused(AccessRefusal.UNKNOWN_QUEUE)
    membership = session.get(QueueMembership, (queue.id, member.id))
    if membership is None:
        raise AccessRefused(AccessRefusal.NOT_A_MEMBER)
    if membership.excludable == excludable:
        return False
    access_requests.refuse_own_account(actor, member, "queues")
    if not excludable:
        if actor is not None:
            access_requests.ask(
                session, member, AccessChange.NOT_EXCLUDABLE, actor=actor, now=now, queue=queue
            )
            return True
        access_requests.record_at_server(
            session, member, AccessChange.NOT_EXCLUDABLE, now, queue=queue, excludable=False
        )
    membership.excludable = excludable
    session.flush()
    audit.record(
        session,
        Action.STAFF_QUEUES_CHANGED,
        now,
        actor=actor,
        target=member,
        queue=queue.slug,
        excludable=excludable,
    )
    return True
