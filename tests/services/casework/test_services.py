"""Services without Flask: routing, intake, follow-up, staff log-in and sessions, casework."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.errors import (
    InvalidCredentials,
    InvalidInput,
    InvalidTransition,
    MalformedReceipt,
    NoAccess,
    NoEligibleRecipient,
    StaffExists,
    TaxonomyError,
    UnknownCategory,
    UnknownOrgUnit,
    UnknownQueue,
    UnknownReceipt,
)
from portal.models import Case, CaseAccess, Message, Role, StaffSession, Visibility
from portal.services.accounts import accounts as staff
from portal.services.accounts import sessions as staff_sessions
from portal.services.casework import cases
from portal.services.configuration import taxonomy
from portal.services.reporting import followup, routing
from tests.support.factories import PASSWORD, Portal


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- routing -----------------------------------------------------------------------------------


def test_first_matching_rule_wins(portal: Portal) -> None:
    portal.staff("hr1", queues=("hr",))
    submitted = portal.submit(category_code="harassment")
    assert submitted.queue_slug == "hr"


def test_unmatched_category_goes_to_fallback(portal: Portal) -> None:
    portal.staff("gen", queues=("general",))
    assert portal.submit(category_code="other").queue_slug == "general"


def test_rule_on_site_matches_only_that_site(portal: Portal, db: Session) -> None:
    data = taxonomy.read_taxonomy_file(portal.settings.taxonomy_file)
    data["routing"] = [{"category": "pay", "site": "shanghai", "queue": "ethics"}]
    taxonomy.load_taxonomy(db, data)
    db.commit()
    portal.staff("gen", queues=("general",))
    portal.staff("eth", queues=("ethics",))
    assert portal.submit(category_code="pay", site_code="shanghai").queue_slug == "ethics"
    assert portal.submit(category_code="pay", site_code="hq").queue_slug == "general"
    assert portal.submit(category_code="pay").queue_slug == "general"


def test_queue_without_members_falls_back(portal: Portal) -> None:
    portal.staff("gen", queues=("general",))
    assert portal.submit(category_code="safety").queue_slug == "general"


def test_all_members_excluded_falls_back_and_excluded_get_no_key(
    portal: Portal, db: Session
) -> None:
    hr = portal.staff("hr1", queues=("hr",))
    gen = portal.staff("gen", queues=("general",))
    submitted = portal.submit(category_code="harassment", excluded_staff_ids=[hr.id])
    assert submitted.queue_slug == "general"
    holders = set(
        db.scalars(select(CaseAccess.staff_id).where(CaseAccess.case_id == submitted.case_id))
    )
    assert holders == {gen.id}


def test_no_eligible_recipient_stores_nothing(portal: Portal, db: Session) -> None:
    gen = portal.staff("gen", queues=("general",))
    with pytest.raises(NoEligibleRecipient) as info:
        portal.submit(excluded_staff_ids=[gen.id])
    assert info.value.because_of_exclusions
    db.rollback()
    assert _count(db, Case) == 0


def test_no_ombudsperson_at_all(portal: Portal, db: Session) -> None:
    portal.staff("boss", roles=(Role.ADMIN,), queues=("general",))
    assert not routing.channel_open(db)
    with pytest.raises(NoEligibleRecipient) as info:
        portal.submit()
    assert not info.value.because_of_exclusions


def test_disabled_and_non_ombudsperson_members_get_no_key(portal: Portal, db: Session) -> None:
    active = portal.staff("active", queues=("general",))
    gone = portal.staff("gone", queues=("general",))
    portal.staff("admin", roles=(Role.ADMIN,), queues=("general",))
    gone.active = False
    db.commit()
    submitted = portal.submit()
    holders = set(
        db.scalars(select(CaseAccess.staff_id).where(CaseAccess.case_id == submitted.case_id))
    )
    assert holders == {active.id}


def test_excludable_staff_lists_queue_members_only(portal: Portal, db: Session) -> None:
    portal.staff("member", queues=("hr",))
    portal.staff("loner", queues=())
    assert [s.display_name for s in routing.excludable_staff(db)] == ["Member"]


# --- intake ------------------------------------------------------------------------------------


def test_submission_stores_day_status_and_ciphertext(portal: Portal, db: Session) -> None:
    portal.staff("gen")
    day = dt.date(2026, 2, 3)
    submitted = portal.submit(today=day, description="Unique marker text 7731", happened="2026-01")
    case = db.get(Case, submitted.case_id)
    assert case is not None
    assert case.received_on == day
    assert case.status == "new"
    assert case.is_anonymous
    assert b"7731" not in case.report_ciphertext
    assert case.contact_ciphertext is None


def test_named_submission_encrypts_contact(portal: Portal, db: Session) -> None:
    gen = portal.staff("gen")
    submitted = portal.submit(contact_name="Jo Bloggs", contact_details="jo@example.org")
    case = db.get(Case, submitted.case_id)
    assert case is not None and not case.is_anonymous
    assert case.contact_ciphertext is not None and b"Bloggs" not in case.contact_ciphertext
    detail = cases.open_case(
        db,
        portal.settings,
        gen,
        portal.private_key(gen),
        case.handle,
        dt.datetime.now(dt.UTC).date(),
    )
    assert detail.contact is not None
    assert (detail.contact.name, detail.contact.details) == ("Jo Bloggs", "jo@example.org")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"category_code": "nope"}, UnknownCategory),
        ({"site_code": "nowhere"}, UnknownOrgUnit),
        ({"department_code": "nowhere"}, UnknownOrgUnit),
        ({"description": "   \n "}, InvalidInput),
        ({"description": "x" * 20_001}, InvalidInput),
        ({"happened": "2099-01"}, InvalidInput),
        ({"happened": "2026-13"}, InvalidInput),
        ({"happened": "last week"}, InvalidInput),
        ({"contact_name": "Jo", "contact_details": ""}, InvalidInput),
        ({"contact_name": "", "contact_details": "jo@example.org"}, InvalidInput),
    ],
)
def test_invalid_concerns_are_refused_before_anything_is_stored(
    portal: Portal, db: Session, fields: dict[str, Any], error: type[Exception]
) -> None:
    portal.staff("gen")
    with pytest.raises(error):
        portal.submit(**fields)
    db.rollback()
    assert _count(db, Case) == 0


def test_description_limit_is_inclusive(portal: Portal) -> None:
    portal.staff("gen")
    portal.submit(description="x" * portal.settings.description_max_chars)


def test_text_is_normalised(portal: Portal, db: Session) -> None:
    gen = portal.staff("gen")
    submitted = portal.submit(description="  line one\r\nline\x00 two\x1b  ")
    detail = cases.open_case(
        db,
        portal.settings,
        gen,
        portal.private_key(gen),
        submitted.handle,
        dt.datetime.now(dt.UTC).date(),
    )
    assert detail.report.description == "line one\nline two"


# --- follow-up ---------------------------------------------------------------------------------


def test_receipt_unlocks_own_case_only(portal: Portal, db: Session) -> None:
    portal.staff("gen")
    a = portal.submit(description="case A text")
    b = portal.submit(description="case B text")
    key_a = followup.unlock(db, portal.settings, portal.secrets.pepper, a.receipt.lower())
    assert key_a.case_id == a.case_id
    assert followup.view(db, key_a).description == "case A text"
    key_b = followup.unlock(db, portal.settings, portal.secrets.pepper, b.receipt)
    assert followup.view(db, key_b).description == "case B text"


def test_wrong_and_malformed_receipts(portal: Portal, db: Session) -> None:
    portal.staff("gen")
    submitted = portal.submit()
    with pytest.raises(UnknownReceipt):
        followup.unlock(db, portal.settings, portal.secrets.pepper, crypto.new_receipt())
    with pytest.raises(MalformedReceipt):
        followup.unlock(db, portal.settings, portal.secrets.pepper, "not a receipt")
    with pytest.raises(UnknownReceipt):  # a different pepper finds nothing
        followup.unlock(db, portal.settings, crypto.random_bytes(), submitted.receipt)


def test_reporter_key_for_another_case_is_refused(portal: Portal, db: Session) -> None:
    portal.staff("gen")
    a = portal.submit()
    b = portal.submit()
    key_a = followup.unlock(db, portal.settings, portal.secrets.pepper, a.receipt)
    forged = followup.ReporterKey(b.case_id, key_a.private_key)
    with pytest.raises(UnknownReceipt):
        followup.view(db, forged)


def test_reporter_message_is_day_only_and_moves_awaiting_case_on(
    portal: Portal, db: Session
) -> None:
    gen = portal.staff("gen")
    submitted = portal.submit()
    key = portal.private_key(gen)
    now = dt.datetime.now(dt.UTC)
    cases.set_status(db, gen, key, submitted.handle, "awaiting_reporter", now)
    db.commit()
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    followup.add_message(db, portal.settings, reporter, "more detail", now.date())
    db.commit()
    message = db.scalars(select(Message).where(Message.author == "reporter")).one()
    assert message.created_at is None and message.created_on == now.date()
    case = db.get_one(Case, submitted.case_id)
    assert case.status == "investigating"
    assert case.reporter_wrote_on == now.date()
    assert [e.text for e in followup.view(db, reporter).thread][-1] == "more detail"


def test_reporter_never_sees_internal_notes(portal: Portal, db: Session) -> None:
    gen = portal.staff("gen")
    submitted = portal.submit()
    now = dt.datetime.now(dt.UTC)
    key = portal.private_key(gen)
    cases.add_message(
        db, portal.settings, gen, key, submitted.handle, "internal only", Visibility.INTERNAL, now
    )
    cases.add_message(
        db, portal.settings, gen, key, submitted.handle, "hello reporter", Visibility.REPORTER, now
    )
    db.commit()
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    texts = [e.text for e in followup.view(db, reporter).thread]
    assert texts == ["hello reporter"]
    staff_texts = [
        e.text
        for e in cases.open_case(db, portal.settings, gen, key, submitted.handle, now.date()).thread
    ]
    assert staff_texts == ["internal only", "hello reporter"]


# --- staff accounts and sessions ---------------------------------------------------------------


def test_create_staff_validates(portal: Portal, db: Session) -> None:
    portal.staff("alice")
    with pytest.raises(StaffExists):
        portal.staff("ALICE")
    with pytest.raises(UnknownQueue):
        portal.staff("bob", queues=("nope",))
    with pytest.raises(InvalidInput):
        portal.staff("carol", password="short")
    with pytest.raises(InvalidInput):
        portal.staff("dan", roles=())


def test_authenticate(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    user, key = staff.authenticate(db, portal.settings, " Alice@Example.org ", PASSWORD)
    assert user.id == alice.id and crypto.public_key_of(key) == alice.public_key
    for email, password in (("alice@example.org", "wrong"), ("nobody@example.org", PASSWORD)):
        with pytest.raises(InvalidCredentials):
            staff.authenticate(db, portal.settings, email, password)
    alice.active = False
    db.commit()
    with pytest.raises(InvalidCredentials):
        staff.authenticate(db, portal.settings, alice.email, PASSWORD)


def test_session_round_trip_idle_expiry_and_end(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    key = portal.private_key(alice)
    start = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    cookie = staff_sessions.start_session(db, alice, key, start)
    db.commit()
    row = db.scalars(select(StaffSession)).one()
    assert key not in row.wrapped_private_key and cookie.split(".")[0].encode() not in row.id_digest
    user, unlocked = staff_sessions.resume_session(
        db, portal.settings, cookie, start + dt.timedelta(minutes=29)
    )
    assert user.id == alice.id and unlocked == key
    with pytest.raises(staff_sessions.SessionInvalid):  # right id, wrong key
        staff_sessions.resume_session(db, portal.settings, cookie.split(".")[0] + ".AAAA", start)
    idle = dt.timedelta(minutes=portal.settings.staff_session_idle_minutes + 1)
    with pytest.raises(staff_sessions.SessionInvalid):
        staff_sessions.resume_session(
            db, portal.settings, cookie, start + dt.timedelta(minutes=29) + idle
        )
    assert _count(db, StaffSession) == 0
    cookie = staff_sessions.start_session(db, alice, key, start)
    staff_sessions.end_session(db, cookie)
    with pytest.raises(staff_sessions.SessionInvalid):
        staff_sessions.resume_session(db, portal.settings, cookie, start)


# --- casework ----------------------------------------------------------------------------------


def test_list_groups_by_queue_and_needs_no_key(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice", queues=("general", "hr"))
    portal.submit(category_code="harassment")
    portal.submit(category_code="other")
    groups = cases.list_for(db, portal.settings, alice, dt.datetime.now(dt.UTC).date())
    assert sorted(g.queue.slug for g in groups) == ["general", "hr"]
    assert all(len(g.rows) == 1 for g in groups)


def test_acknowledge_tells_the_reporter_and_only_once(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()
    key = portal.private_key(alice)
    now = dt.datetime.now(dt.UTC)
    cases.acknowledge(db, alice, key, submitted.handle, now)
    db.commit()
    case = db.get_one(Case, submitted.case_id)
    assert case.status == "acknowledged" and case.acknowledged_on == now.date()
    reporter = followup.unlock(db, portal.settings, portal.secrets.pepper, submitted.receipt)
    assert followup.view(db, reporter).thread[0].text == cases.ACKNOWLEDGEMENT_TEXT
    with pytest.raises(InvalidTransition):
        cases.acknowledge(db, alice, key, submitted.handle, now)


def test_status_changes(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()
    key = portal.private_key(alice)
    now = dt.datetime.now(dt.UTC)
    cases.set_status(db, alice, key, submitted.handle, "investigating", now)
    case = db.get_one(Case, submitted.case_id)
    assert case.acknowledged_on == now.date(), "moving a new case on acknowledges it"
    with pytest.raises(InvalidTransition):
        cases.set_status(db, alice, key, submitted.handle, "investigating", now)
    with pytest.raises(InvalidTransition):
        cases.set_status(db, alice, key, submitted.handle, "new", now)
    cases.set_status(db, alice, key, submitted.handle, "closed", now, outcome="withdrawn")
    assert case.closed_on == now.date()
    cases.set_status(db, alice, key, submitted.handle, "investigating", now, reason="New facts.")
    assert case.closed_on is None


def test_reply_records_feedback_day(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()
    key = portal.private_key(alice)
    now = dt.datetime.now(dt.UTC)
    cases.add_message(
        db, portal.settings, alice, key, submitted.handle, "note", Visibility.INTERNAL, now
    )
    assert db.get_one(Case, submitted.case_id).feedback_on is None
    cases.add_message(
        db, portal.settings, alice, key, submitted.handle, "reply", Visibility.REPORTER, now
    )
    assert db.get_one(Case, submitted.case_id).feedback_on == now.date()
    with pytest.raises(InvalidInput):
        cases.add_message(
            db, portal.settings, alice, key, submitted.handle, " ", Visibility.REPORTER, now
        )


def test_no_access_without_a_sealed_key(portal: Portal, db: Session) -> None:
    alice = portal.staff("alice", queues=("general",))
    bob = portal.staff("bob", queues=("hr",))
    submitted = portal.submit(category_code="other")
    now = dt.datetime.now(dt.UTC)
    for handle in (submitted.handle, "ZZZZ-ZZZZ"):
        with pytest.raises(NoAccess):
            cases.open_case(db, portal.settings, bob, portal.private_key(bob), handle, now.date())
        with pytest.raises(NoAccess):
            cases.acknowledge(db, bob, portal.private_key(bob), handle, now)
    # Holding the row is not enough: the key must open it.
    with pytest.raises(NoAccess):
        cases.open_case(
            db, portal.settings, alice, portal.private_key(bob), submitted.handle, now.date()
        )


# --- taxonomy ----------------------------------------------------------------------------------


def test_reloading_taxonomy_deactivates_removed_entries(portal: Portal, db: Session) -> None:
    data = taxonomy.read_taxonomy_file(portal.settings.taxonomy_file)
    data["categories"] = [c for c in data["categories"] if c["code"] != "privacy"]
    data["routing"] = [r for r in data["routing"] if r.get("category") != "privacy"]
    taxonomy.load_taxonomy(db, data)
    db.commit()
    assert "privacy" not in [c.code for c in taxonomy.active_categories(db)]
    with pytest.raises(UnknownCategory):
        taxonomy.category_by_code(db, "privacy")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fallback_queue": "nope"}, "fallback queue"),
        ({"categories": []}, "at least one category"),
        ({"routing": [{"category": "nope", "queue": "hr"}]}, "unknown category"),
        ({"routing": [{"queue": "nope"}]}, "unknown queue"),
        ({"routing": [{"site": "nope", "queue": "hr"}]}, "unknown site"),
        ({"routing": [{"category": "pay", "colour": "red", "queue": "hr"}]}, "unknown keys"),
        ({"queues": [{"slug": "general"}]}, "non-empty 'name'"),
    ],
)
def test_invalid_taxonomy_is_refused(
    portal: Portal, db: Session, change: dict[str, object], message: str
) -> None:
    data = taxonomy.read_taxonomy_file(portal.settings.taxonomy_file)
    data.update(change)
    with pytest.raises(TaxonomyError, match=message):
        taxonomy.load_taxonomy(db, data)


def test_changing_argon2_costs_keeps_old_receipts_and_passwords_working(
    portal: Portal, db: Session
) -> None:
    """Costs are settings: raising them must not lock out what was derived under the old ones."""
    alice = portal.staff("alice")
    submitted = portal.submit(description="before the change")
    stronger = portal.settings.replace(kdf_time_cost=2, kdf_memory_kib=16)
    key = followup.unlock(db, stronger, portal.secrets.pepper, submitted.receipt)
    assert followup.view(db, key).description == "before the change"
    user, private_key = staff.authenticate(db, stronger, alice.email, PASSWORD)
    assert crypto.public_key_of(private_key) == user.public_key
    assert db.get_one(Case, submitted.case_id).reporter_kdf == "argon2id:t=1,m=8,p=1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"categorys": []}, "unknown top-level keys"),
        ({"categories": [{"code": "x" * 65, "label": "X"}]}, "longer than 64"),
    ],
)
def test_taxonomy_typos_and_overlong_values_are_refused(
    portal: Portal, db: Session, change: dict[str, object], message: str
) -> None:
    data = taxonomy.read_taxonomy_file(portal.settings.taxonomy_file)
    data.update(change)
    with pytest.raises(TaxonomyError, match=message):
        taxonomy.load_taxonomy(db, data)
