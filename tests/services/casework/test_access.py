"""Recusal, grants, re-grants and transfers, proven on the stored rows and with the keys
themselves: whoever loses access holds no row, and no remaining sealed copy opens with their
private key. Also routing to members the reporter cannot exclude."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import AccessRefusal, AccessRefused, NoAccess
from portal.models import (
    AuditEvent,
    Case,
    CaseAccess,
    PendingRegrant,
    Queue,
    QueueMembership,
    Role,
    StaffUser,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import access, cases, content
from tests.support.factories import Portal

NOW = dt.datetime.now(dt.UTC)
SECRET = "The warehouse manager takes cash from the haulage firm."


def _holders(db: Session, case_id: str) -> set[int]:
    return set(db.scalars(select(CaseAccess.staff_id).where(CaseAccess.case_id == case_id)))


def _copies(db: Session, case_id: str) -> list[bytes]:
    """Every sealed copy of the case key the database holds, the reporter's included."""
    rows = list(db.scalars(select(CaseAccess.sealed_key).where(CaseAccess.case_id == case_id)))
    case = db.get_one(Case, case_id)
    return [*rows, case.reporter_sealed_key]


def _cannot_decrypt(db: Session, case_id: str, private_key: bytes) -> None:
    for sealed in _copies(db, case_id):
        with pytest.raises(crypto.DecryptionFailed):
            crypto.unseal(private_key, sealed)


def _reads(portal: Portal, db: Session, user: StaffUser, handle: str) -> str:
    case, case_key = cases.unlock(db, user, portal.private_key(user), handle)
    return content.open_report(case_key, case.id, case.report_ciphertext).description


def _events(db: Session, action: Action) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action.value)))


def _queue(db: Session, slug: str) -> Queue:
    return db.scalars(select(Queue).where(Queue.slug == slug)).one()


def _lose_key(db: Session, user: StaffUser, keep_stale_rows: bool) -> bytes:
    """What an admin password reset without the recovery key does: a new key pair, and every
    case the user held waits for a colleague's re-grant. Returns the new private key."""
    private, public = crypto.new_keypair()
    user.public_key = public
    for row in db.scalars(select(CaseAccess).where(CaseAccess.staff_id == user.id)):
        db.add(PendingRegrant(case_id=row.case_id, staff_id=user.id))
        if not keep_stale_rows:
            db.delete(row)
    db.commit()
    return private


# --- recusal ------------------------------------------------------------------------------------


def test_recusal_destroys_the_users_copy_and_nothing_left_opens_with_their_key(
    portal: Portal, db: Session
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit(description=SECRET)
    alice_key = portal.private_key(alice)

    access.recuse(db, alice, alice_key, submitted.handle, NOW)
    db.commit()

    assert _holders(db, submitted.case_id) == {bob.id}
    _cannot_decrypt(db, submitted.case_id, alice_key)
    with pytest.raises(NoAccess):
        cases.unlock(db, alice, alice_key, submitted.handle)
    assert _reads(portal, db, bob, submitted.handle) == SECRET
    [event] = _events(db, Action.CASE_RECUSED)
    assert (event.actor_id, event.case_id) == (alice.id, submitted.case_id)
    assert audit.detail_of(event) == {"holders": 1}
    assert audit.verify(db).ok


def test_the_last_holder_cannot_recuse(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()

    with pytest.raises(AccessRefused) as info:
        access.recuse(db, alice, portal.private_key(alice), submitted.handle, NOW)
    db.rollback()

    assert info.value.reason is AccessRefusal.LAST_HOLDER
    assert _holders(db, submitted.case_id) == {alice.id}
    assert _events(db, Action.CASE_RECUSED) == []


@pytest.mark.parametrize("why", ["disabled", "no longer an ombudsperson", "awaiting re-grant"])
def test_a_colleague_who_cannot_open_the_case_does_not_count_as_a_holder(
    portal: Portal, db: Session, why: str
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit()
    if why == "disabled":
        bob.active = False
        db.commit()
    elif why == "no longer an ombudsperson":
        bob.role_rows = []
        db.commit()
    else:
        _lose_key(db, bob, keep_stale_rows=True)

    with pytest.raises(AccessRefused) as info:
        access.recuse(db, alice, portal.private_key(alice), submitted.handle, NOW)

    assert info.value.reason is AccessRefusal.LAST_HOLDER


def test_a_recusal_is_final(portal: Portal, db: Session) -> None:
    alice, bob = portal.staff("alice", queues=("general", "hr")), portal.staff("bob")
    portal.staff("carol", queues=("hr",))
    submitted = portal.submit()
    access.recuse(db, alice, portal.private_key(alice), submitted.handle, NOW)
    db.commit()
    bob_key = portal.private_key(bob)
    # The rule does not rest on the audit log: it holds with the log's events gone.
    db.execute(delete(AuditEvent).where(AuditEvent.case_id == submitted.case_id))
    db.commit()

    with pytest.raises(AccessRefused) as info:
        access.grant(db, bob, bob_key, submitted.handle, alice.id, NOW)
    assert info.value.reason is AccessRefusal.RECUSED
    db.rollback()
    # A transfer to a queue alice belongs to does not bring her back either.
    access.transfer(db, bob, bob_key, submitted.handle, "hr", NOW)
    db.commit()
    assert alice.id not in _holders(db, submitted.case_id)
    _cannot_decrypt(db, submitted.case_id, portal.private_key(alice))


def test_two_holders_recusing_at_once_cannot_both_leave(
    app: Flask, portal: Portal, db: Session
) -> None:
    """The second recusal waits for the first to commit (a row lock on PostgreSQL, the single
    writer on SQLite), then finds itself the last holder."""
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit()
    alice_key, bob_key = portal.private_key(alice), portal.private_key(bob)
    sessions = app.extensions["portal"].sessions
    first, second = sessions(), sessions()
    outcome: dict[str, object] = {}

    def bob_recuses() -> None:
        try:
            access.recuse(second, second.get_one(StaffUser, bob.id), bob_key, submitted.handle, NOW)
            second.commit()
            outcome["bob"] = "recused"
        except AccessRefused as error:
            second.rollback()
            outcome["bob"] = error.reason
        finally:
            second.close()

    try:
        access.recuse(first, first.get_one(StaffUser, alice.id), alice_key, submitted.handle, NOW)
        thread = threading.Thread(target=bob_recuses)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second recusal did not wait for the first"
        first.commit()
    finally:
        first.close()
    thread.join(20)

    assert outcome == {"bob": AccessRefusal.LAST_HOLDER}
    db.expire_all()
    assert _holders(db, submitted.case_id) == {bob.id}


# --- grants -------------------------------------------------------------------------------------


def test_a_granted_colleague_can_open_and_read_the_case(portal: Portal, db: Session) -> None:
    alice, carol = portal.staff("alice"), portal.staff("carol", queues=("hr",))
    submitted = portal.submit(description=SECRET)
    with pytest.raises(NoAccess):
        _reads(portal, db, carol, submitted.handle)

    granted = access.grant(db, alice, portal.private_key(alice), submitted.handle, carol.id, NOW)
    db.commit()

    assert granted.colleague.id == carol.id and not granted.regrant
    assert _holders(db, submitted.case_id) == {alice.id, carol.id}
    assert _reads(portal, db, carol, submitted.handle) == SECRET
    [event] = _events(db, Action.CASE_GRANTED)
    assert (event.actor_id, event.target_staff_id) == (alice.id, carol.id)
    assert event.case_id == submitted.case_id
    assert SECRET not in event.detail
    assert audit.verify(db).ok


def test_a_colleague_the_reporter_excluded_cannot_be_granted(portal: Portal, db: Session) -> None:
    alice, carol = portal.staff("alice"), portal.staff("carol", queues=("hr",))
    submitted = portal.submit(excluded_staff_ids=[carol.id])

    with pytest.raises(AccessRefused) as info:
        access.grant(db, alice, portal.private_key(alice), submitted.handle, carol.id, NOW)
    db.rollback()

    assert info.value.reason is AccessRefusal.EXCLUDED_BY_REPORTER
    assert _holders(db, submitted.case_id) == {alice.id}
    _cannot_decrypt(db, submitted.case_id, portal.private_key(carol))
    assert _events(db, Action.CASE_GRANTED) == []


def test_an_excluded_member_the_queue_marks_not_excludable_can_be_granted(
    portal: Portal, db: Session
) -> None:
    alice, dora = portal.staff("alice"), portal.staff("dora", queues=("board",))
    submitted = portal.submit(excluded_staff_ids=[dora.id])
    # Dora joins the case's queue later, as a member reporters cannot exclude.
    db.add(QueueMembership(queue_id=_queue(db, "general").id, staff_id=dora.id, excludable=False))
    db.commit()

    access.grant(db, alice, portal.private_key(alice), submitted.handle, dora.id, NOW)
    db.commit()

    assert dora.id in _holders(db, submitted.case_id)


@pytest.mark.parametrize(
    "who", ["admin", "disabled", "unknown", "huge id", "zero", "already holds", "oneself"]
)
def test_only_an_active_ombudsperson_without_the_key_can_be_granted(
    portal: Portal, db: Session, who: str
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    admin = portal.staff("root", roles=(Role.ADMIN,), queues=())
    gone = portal.staff("gone", queues=("hr",))
    gone.active = False
    db.commit()
    submitted = portal.submit()
    target = {
        "admin": admin.id,
        "disabled": gone.id,
        "unknown": 9999,
        "huge id": 10**12,
        "zero": 0,
        "already holds": bob.id,
        "oneself": alice.id,
    }[who]

    with pytest.raises(AccessRefused) as info:
        access.grant(db, alice, portal.private_key(alice), submitted.handle, target, NOW)

    expected = (
        AccessRefusal.ALREADY_HOLDS
        if who in {"already holds", "oneself"}
        else AccessRefusal.NOT_ELIGIBLE
    )
    assert info.value.reason is expected


def test_someone_without_the_key_cannot_grant_it(portal: Portal, db: Session) -> None:
    alice, carol = portal.staff("alice"), portal.staff("carol", queues=("hr",))
    submitted = portal.submit()

    with pytest.raises(NoAccess):
        access.grant(db, carol, portal.private_key(carol), submitted.handle, carol.id, NOW)
    assert _holders(db, submitted.case_id) == {alice.id}


@pytest.mark.parametrize("keep_stale_rows", [True, False])
def test_a_regrant_seals_to_the_new_key_and_clears_the_pending_row(
    portal: Portal, db: Session, keep_stale_rows: bool
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit(description=SECRET)
    bob_new_key = _lose_key(db, bob, keep_stale_rows)
    with pytest.raises(NoAccess):
        cases.unlock(db, bob, bob_new_key, submitted.handle)
    assert [r.handle for r in access.awaiting_regrant(db, alice)] == [submitted.handle]
    assert access.awaiting_regrant(db, bob) == []

    alice_key = portal.private_key(alice)
    fingerprint = crypto.key_fingerprint(crypto.public_key_of(bob_new_key))
    granted = access.grant(
        db, alice, alice_key, submitted.handle, bob.id, NOW, fingerprint=fingerprint.lower()
    )
    db.commit()

    assert granted.regrant
    assert db.scalars(select(PendingRegrant)).all() == []
    case, case_key = cases.unlock(db, bob, bob_new_key, submitted.handle)
    assert content.open_report(case_key, case.id, case.report_ciphertext).description == SECRET
    [event] = _events(db, Action.CASE_REGRANTED)
    assert (event.actor_id, event.target_staff_id) == (alice.id, bob.id)
    assert _events(db, Action.CASE_GRANTED) == []
    assert access.awaiting_regrant(db, alice) == []
    assert audit.verify(db).ok


@pytest.mark.parametrize(
    "typed",
    [None, "", "not a fingerprint", "0000-0000-0000-0000", "old key's fingerprint"],
)
def test_a_regrant_without_the_new_keys_fingerprint_seals_nothing(
    portal: Portal, db: Session, typed: str | None
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit(description=SECRET)
    old_fingerprint = crypto.key_fingerprint(bob.public_key)
    bob_new_key = _lose_key(db, bob, keep_stale_rows=False)
    if typed == "old key's fingerprint":
        typed = old_fingerprint
    alice_key = portal.private_key(alice)

    with pytest.raises(AccessRefused) as info:
        access.grant(db, alice, alice_key, submitted.handle, bob.id, NOW, fingerprint=typed)
    db.rollback()

    assert info.value.reason is AccessRefusal.FINGERPRINT_MISMATCH
    assert db.get(CaseAccess, (submitted.case_id, bob.id)) is None
    assert db.get(PendingRegrant, (submitted.case_id, bob.id)) is not None
    with pytest.raises(NoAccess):
        cases.unlock(db, bob, bob_new_key, submitted.handle)
    assert _events(db, Action.CASE_REGRANTED) == []


def test_a_fingerprint_matches_only_its_own_key_however_it_is_typed() -> None:
    _, public = crypto.new_keypair()
    _, other = crypto.new_keypair()
    shown = crypto.key_fingerprint(public)

    assert len(shown) == 19 and shown.count("-") == 3 and shown == crypto.key_fingerprint(public)
    assert crypto.fingerprint_matches(public, shown)
    assert crypto.fingerprint_matches(public, " " + shown.lower().replace("-", " ") + " ")
    assert not crypto.fingerprint_matches(other, shown)
    assert not crypto.fingerprint_matches(public, shown[:-1])
    assert not crypto.fingerprint_matches(public, shown + "0")
    assert crypto.key_fingerprint(public) != crypto.key_fingerprint(other)


# --- transfers ----------------------------------------------------------------------------------


def test_after_a_transfer_the_old_queue_cannot_decrypt_and_the_new_one_can(
    portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    bob = portal.staff("bob", queues=("general", "hr"))
    carol, dave = portal.staff("carol", queues=("hr",)), portal.staff("dave", queues=("hr",))
    submitted = portal.submit(description=SECRET)
    alice_key = portal.private_key(alice)

    moved = access.transfer(db, alice, alice_key, submitted.handle, "hr", NOW)
    db.commit()

    assert (moved.from_queue.slug, moved.to_queue.slug) == ("general", "hr")
    assert (moved.granted, moved.removed, moved.kept_access) == (2, 1, False)
    assert db.get_one(Case, submitted.case_id).queue_id == _queue(db, "hr").id
    assert _holders(db, submitted.case_id) == {bob.id, carol.id, dave.id}
    _cannot_decrypt(db, submitted.case_id, alice_key)
    with pytest.raises(NoAccess):
        cases.unlock(db, alice, alice_key, submitted.handle)
    for member in (bob, carol, dave):
        assert _reads(portal, db, member, submitted.handle) == SECRET
    [event] = _events(db, Action.CASE_TRANSFERRED)
    assert event.actor_id == alice.id and event.case_id == submitted.case_id
    assert audit.detail_of(event) == {
        "from_queue": "general",
        "to_queue": "hr",
        "granted": 2,
        "removed": 1,
    }
    assert audit.verify(db).ok


def test_a_transfer_keeps_the_transferring_member_of_the_new_queue(
    portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice", queues=("general", "hr"))
    submitted = portal.submit()

    moved = access.transfer(db, alice, portal.private_key(alice), submitted.handle, "hr", NOW)
    db.commit()

    assert moved.kept_access and (moved.granted, moved.removed) == (0, 0)
    assert _holders(db, submitted.case_id) == {alice.id}


def test_a_transfer_honours_exclusions_except_for_members_who_cannot_be_excluded(
    portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    carol, chair = portal.staff("carol", queues=("board",)), portal.staff("chair", queues=())
    db.add(QueueMembership(queue_id=_queue(db, "board").id, staff_id=chair.id, excludable=False))
    db.commit()
    submitted = portal.submit(excluded_staff_ids=[carol.id, chair.id])

    access.transfer(db, alice, portal.private_key(alice), submitted.handle, "board", NOW)
    db.commit()

    assert _holders(db, submitted.case_id) == {chair.id}
    _cannot_decrypt(db, submitted.case_id, portal.private_key(carol))


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("safety", AccessRefusal.NO_RECIPIENT),  # nobody sits in it
        ("ethics", AccessRefusal.NO_RECIPIENT),  # its only member was excluded
        ("general", AccessRefusal.SAME_QUEUE),
        ("no-such-queue", AccessRefusal.UNKNOWN_QUEUE),
        ("x" * 5000, AccessRefusal.UNKNOWN_QUEUE),
    ],
)
def test_a_refused_transfer_changes_nothing(
    portal: Portal, db: Session, slug: str, reason: AccessRefusal
) -> None:
    alice = portal.staff("alice")
    eve = portal.staff("eve", queues=("ethics",))
    submitted = portal.submit(excluded_staff_ids=[eve.id])

    with pytest.raises(AccessRefused) as info:
        access.transfer(db, alice, portal.private_key(alice), submitted.handle, slug, NOW)
    db.rollback()

    assert info.value.reason is reason
    assert _holders(db, submitted.case_id) == {alice.id}
    assert db.get_one(Case, submitted.case_id).queue_id == _queue(db, "general").id
    assert _events(db, Action.CASE_TRANSFERRED) == []


def test_a_transfer_settles_pending_regrants_without_sealing_to_an_unchecked_key(
    portal: Portal, db: Session
) -> None:
    # A transfer used to seal the key to a waiting member's new key pair: a way round the
    # fingerprint check of a re-grant (issue 13, finding 7). Now they keep waiting.
    alice = portal.staff("alice")
    bob = portal.staff("bob", queues=("general", "hr"))
    carol = portal.staff("carol")  # not in hr
    dave = portal.staff("dave", queues=("hr",))
    submitted = portal.submit()
    bob_new_key = _lose_key(db, bob, keep_stale_rows=True)
    _lose_key(db, carol, keep_stale_rows=False)

    access.transfer(db, alice, portal.private_key(alice), submitted.handle, "hr", NOW)
    db.commit()

    assert db.execute(select(PendingRegrant.case_id, PendingRegrant.staff_id)).all() == [
        (submitted.case_id, bob.id)
    ]
    assert _holders(db, submitted.case_id) == {dave.id}
    with pytest.raises(NoAccess):
        cases.unlock(db, bob, bob_new_key, submitted.handle)
    fingerprint = crypto.key_fingerprint(crypto.public_key_of(bob_new_key))
    dave_key = portal.private_key(dave)
    access.grant(db, dave, dave_key, submitted.handle, bob.id, NOW, fingerprint=fingerprint)
    db.commit()
    cases.unlock(db, bob, bob_new_key, submitted.handle)  # sealed to bob's checked key


def test_a_transfer_to_a_queue_where_only_waiting_members_are_is_refused(
    portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    bob = portal.staff("bob", queues=("general", "hr"))
    submitted = portal.submit()
    _lose_key(db, bob, keep_stale_rows=False)

    with pytest.raises(AccessRefused) as info:
        access.transfer(db, alice, portal.private_key(alice), submitted.handle, "hr", NOW)

    assert info.value.reason is AccessRefusal.NO_RECIPIENT


# --- the flag itself -----------------------------------------------------------------------------


def test_set_excludable_changes_the_flag_and_audits_a_change_only(
    portal: Portal, db: Session
) -> None:
    dora = portal.staff("dora", queues=("board",))

    assert access.set_excludable(db, dora, "board", False, NOW)
    assert not access.set_excludable(db, dora, "board", False, NOW)
    db.commit()

    membership = db.get_one(QueueMembership, (_queue(db, "board").id, dora.id))
    assert membership.excludable is False
    [event] = _events(db, Action.STAFF_QUEUES_CHANGED)
    assert event.target_staff_id == dora.id
    assert audit.detail_of(event) == {"queue": "board", "excludable": False}
    for slug, reason in [("hr", AccessRefusal.NOT_A_MEMBER), ("nope", AccessRefusal.UNKNOWN_QUEUE)]:
        with pytest.raises(AccessRefused) as info:
            access.set_excludable(db, dora, slug, False, NOW)
        assert info.value.reason is reason
    assert audit.verify(db).ok
