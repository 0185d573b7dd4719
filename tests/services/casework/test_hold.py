"""Legal hold (issue 6): placing and lifting it on the case page, what is stored (the day, and
the reason only as ciphertext), the audit events, who may do it, and bad input. What a hold
does to the retention job is in tests/services/casework/test_retention_hold.py."""

from __future__ import annotations

import datetime as dt
import html
import re
import threading

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Date, inspect, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.errors import InvalidInput, InvalidTransition, NoAccess
from portal.models import AuditEvent, Case, Message, Role, StaffUser, Visibility
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import cases, hold, retention
from tests.services.casework.test_retention import _close
from tests.support.admin_helpers import client_for, post
from tests.support.factories import DatabaseUnderTest, Portal, utc_today
from tests.support.html import field_errors, form_problems, textarea
from tests.support.pages import csrf_token, login, open_followup
from tests.support.stored import assert_nowhere_in_the_database

REASON = "Litigation hold asked for by outside counsel in the Miller case, marker 5813."
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


_client = client_for


def _post(client: FlaskClient, url: str, **form: str) -> TestResponse:
    return post(client, url, form)


def _case(db: Session, case_id: str) -> Case:
    db.expire_all()
    return db.get_one(Case, case_id)


def _hold_events(db: Session, case_id: str) -> list[tuple[str, dict[str, object]]]:
    db.expire_all()
    stmt = (
        select(AuditEvent)
        .where(
            AuditEvent.case_id == case_id,
            AuditEvent.action.in_([Action.CASE_HOLD_PLACED, Action.CASE_HOLD_LIFTED]),
        )
        .order_by(AuditEvent.seq)
    )
    return [(e.action, audit.detail_of(e)) for e in db.scalars(stmt)]


def _notes(db: Session, case_id: str) -> int:
    db.expire_all()
    return len(list(db.scalars(select(Message.id).where(Message.case_id == case_id))))


def _panel(page: str) -> str:
    match = re.search(r'<section class="panel" id="hold-panel">(.*?)</section>', page, re.S)
    assert match, "the case page has no hold panel"
    return match.group(1)


def _flashes(page: str) -> list[str]:
    return [
        html.unescape(m)
        for m in re.findall(r'<p class="notice notice-\w+" role="status">(.*?)</p>', page)
    ]


# --- what is stored -----------------------------------------------------------------------------


def test_placing_a_hold_stores_the_day_and_the_reason_only_as_an_encrypted_note(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit(description="The concern itself, marker 2071.")
    client = _client(app, olga)
    url = f"/staff/cases/{submitted.handle}"
    assert "Place a legal hold" in _panel(client.get(url).text)

    response = _post(client, f"{url}/hold", hold_reason=REASON)

    assert response.status_code == 302 and response.location == url
    case = _case(db, submitted.case_id)
    assert case.held_on == utc_today()
    # A day, never a time: the column is a DATE like every other date of a case.
    assert isinstance(inspect(Case).columns["held_on"].type, Date)
    # The reason is an internal note that the holders read, and ciphertext everywhere else.
    detail = cases.open_case(
        db, portal.settings, olga, portal.private_key(olga), submitted.handle, utc_today()
    )
    notes = [e for e in detail.thread if e.visibility == Visibility.INTERNAL]
    assert [n.text for n in notes] == [hold.HOLD_NOTE_PREFIX + REASON]
    assert notes[0].author_name == "Olga"
    assert_nowhere_in_the_database(db, REASON)
    assert_nowhere_in_the_database(db, "marker 5813")
    # The chain records that it happened and who did it; not why.
    assert _hold_events(db, submitted.case_id) == [(Action.CASE_HOLD_PLACED, {})]
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == Action.CASE_HOLD_PLACED.value)
    ).one()
    assert event.actor_id == olga.id and event.case_handle == submitted.handle
    assert audit.verify(db).ok
    # The reporter sees nothing of it.
    reporter_client = app.test_client()
    open_followup(reporter_client, submitted.receipt)
    seen = reporter_client.get("/followup/case").text
    assert "5813" not in seen and "legal hold" not in seen.lower()

    page = client.get(url).text
    assert "The case is on legal hold" in " ".join(_flashes(page))
    assert f'id="case-hold"><strong class="on-hold">On hold since {utc_today()}' in page
    panel = _panel(page)
    assert f"On legal hold since {utc_today()}." in panel and "Lift the legal hold" in panel
    assert "Place a legal hold" not in panel
    assert REASON in page  # in the thread, for the holders


def test_the_case_list_shows_which_cases_are_on_hold(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    held, free = portal.submit(), portal.submit()
    hold.place(db, olga, portal.private_key(olga), held.handle, REASON, NOW)
    db.commit()

    page = _client(app, olga).get("/staff/").text

    rows = dict(
        (m.group(2), m.group(1))
        for m in re.finditer(
            r'(<tr class="case-row.*?href="/staff/cases/([^"]+)".*?</tr>)', page, re.S
        )
    )
    assert '<strong class="hold-marker"' in rows[held.handle] and "On hold" in rows[held.handle]
    assert "hold-marker" not in rows[free.handle]
    assert REASON not in page


def test_lifting_a_hold_is_audited_without_content_and_forgets_any_warning(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    key = portal.private_key(olga)
    cases.set_status(db, olga, key, submitted.handle, "closed", NOW, outcome="withdrawn")
    hold.place(db, olga, key, submitted.handle, REASON, NOW)
    db.commit()
    # As if a retention warning had been stamped on it meanwhile (another app server's run).
    case = _case(db, submitted.case_id)
    case.purge_warned_on = utc_today()
    db.commit()
    client = _client(app, olga)
    url = f"/staff/cases/{submitted.handle}"
    assert "Lift the legal hold" in _panel(client.get(url).text)

    response = _post(client, f"{url}/hold/lift")

    assert response.status_code == 302 and response.location == url
    case = _case(db, submitted.case_id)
    assert (case.held_on, case.purge_warned_on, case.status) == (None, None, "closed")
    assert _hold_events(db, submitted.case_id) == [
        (Action.CASE_HOLD_PLACED, {}),
        (Action.CASE_HOLD_LIFTED, {}),
    ]
    page = client.get(url).text
    assert "its holders are warned again, at least 30 days ahead" in " ".join(_flashes(page))
    assert "Place a legal hold" in _panel(page) and 'id="case-hold"' not in page
    history = page.split('id="history-panel"')[1]
    assert "Legal hold placed" in history and "Legal hold lifted" in history
    assert "5813" not in history
    # The note with the reason stays in the thread, as the record of why the case was kept.
    assert REASON in page
    assert audit.verify(db).ok


def test_a_hold_stays_when_the_case_is_closed_and_reopened(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    hold.place(db, olga, key, submitted.handle, REASON, NOW)
    cases.set_status(db, olga, key, submitted.handle, "closed", NOW, outcome="referred")
    assert _case(db, submitted.case_id).held_on == NOW.date()
    cases.set_status(db, olga, key, submitted.handle, "investigating", NOW, reason="New facts.")
    assert _case(db, submitted.case_id).held_on == NOW.date()


def test_the_service_refuses_a_second_hold_and_a_lift_without_one(
    portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    with pytest.raises(InvalidTransition) as info:
        hold.lift(db, olga, key, submitted.handle, NOW)
    assert info.value.message == "This case is not on legal hold."
    hold.place(db, olga, key, submitted.handle, REASON, NOW)
    with pytest.raises(InvalidTransition) as info:
        hold.place(db, olga, key, submitted.handle, "Another reason.", NOW)
    assert info.value.field == "hold_reason"
    # Only the first reason became a note.
    assert _notes(db, submitted.case_id) == 1


def test_the_reason_is_cleaned_and_limited(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    key = portal.private_key(olga)
    submitted = portal.submit()
    for empty in ("", "  \n\t ", "\x00\x07"):
        with pytest.raises(InvalidInput) as refused:
            hold.place(db, olga, key, submitted.handle, empty, NOW)
        assert refused.value.field == "hold_reason"
        assert refused.value.message == "Give the reason for the legal hold."
    with pytest.raises(InvalidInput) as refused:
        hold.place(db, olga, key, submitted.handle, "x" * (hold.HOLD_REASON_MAX_CHARS + 1), NOW)
    assert refused.value.message == "This is 1,001 characters long; the limit is 1,000."
    assert _case(db, submitted.case_id).held_on is None

    exact = " \x00" + "y" * hold.HOLD_REASON_MAX_CHARS + "\r\n"
    hold.place(db, olga, key, submitted.handle, exact, NOW)
    detail = cases.open_case(db, portal.settings, olga, key, submitted.handle, NOW.date())
    assert detail.thread[-1].text == hold.HOLD_NOTE_PREFIX + "y" * 1000


# --- bad input on the page ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Give the reason for the legal hold."),
        ("   \n  ", "Give the reason for the legal hold."),
        ("z" * 1001, "This is 1,001 characters long; the limit is 1,000."),
    ],
)
def test_a_bad_reason_is_refused_next_to_the_field_with_the_text_kept(
    app: Flask, portal: Portal, db: Session, typed: str, message: str
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)
    url = f"/staff/cases/{submitted.handle}"

    response = _post(client, f"{url}/hold", hold_reason=typed)

    assert response.status_code == 400
    assert field_errors(response.text, "hold_reason") == [message]
    assert "Nothing was sent yet" in form_problems(response.text)
    # WTForms shows line ends as \r\n; what was typed is there, character for character.
    assert textarea(response.text, "hold_reason").replace("\r\n", "\n") == typed
    assert _case(db, submitted.case_id).held_on is None
    assert _hold_events(db, submitted.case_id) == []
    assert _notes(db, submitted.case_id) == 0


def test_a_hold_placed_meanwhile_by_a_colleague_keeps_what_was_typed(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    bob = portal.staff("bob")
    submitted = portal.submit()
    client = _client(app, olga)
    url = f"/staff/cases/{submitted.handle}"
    token = csrf_token(client.get(url).text)
    hold.place(db, bob, portal.private_key(bob), submitted.handle, "Bob's reason.", NOW)
    db.commit()

    response = client.post(f"{url}/hold", data={"csrf_token": token, "hold_reason": REASON})

    assert response.status_code == 400
    assert field_errors(response.text, "hold_reason") == [
        "This case is already on legal hold. Add what you typed as an internal note."
    ]
    assert textarea(response.text, "hold_reason") == REASON
    assert _hold_events(db, submitted.case_id) == [(Action.CASE_HOLD_PLACED, {})]
    assert _notes(db, submitted.case_id) == 1


def test_lifting_a_case_that_is_not_on_hold_says_so_and_records_nothing(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)
    url = f"/staff/cases/{submitted.handle}"

    response = _post(client, f"{url}/hold/lift")

    assert response.status_code == 302 and response.location == url
    assert "This case is not on legal hold." in _flashes(client.get(url).text)
    assert _hold_events(db, submitted.case_id) == []


def test_an_expired_hold_form_keeps_the_reason(app: Flask, portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)

    response = client.post(
        f"/staff/cases/{submitted.handle}/hold",
        data={"csrf_token": "stale", "hold_reason": REASON},
    )

    assert response.status_code == 400
    assert "had been open too long" in form_problems(response.text)
    assert textarea(response.text, "hold_reason") == REASON
    assert _case(db, submitted.case_id).held_on is None
    assert _hold_events(db, submitted.case_id) == []


def test_a_lift_without_a_valid_token_changes_nothing(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    hold.place(db, olga, portal.private_key(olga), submitted.handle, REASON, NOW)
    db.commit()
    client = _client(app, olga)

    response = client.post(
        f"/staff/cases/{submitted.handle}/hold/lift", data={"csrf_token": "stale"}
    )

    assert response.status_code == 400
    assert _case(db, submitted.case_id).held_on == NOW.date()
    assert _hold_events(db, submitted.case_id) == [(Action.CASE_HOLD_PLACED, {})]


def test_a_reason_typed_after_the_session_ended_is_shown_back(
    app: Flask, portal: Portal, db: Session
) -> None:
    olga = portal.staff("olga")
    submitted = portal.submit()
    client = _client(app, olga)
    token = csrf_token(client.get(f"/staff/cases/{submitted.handle}").text)
    idle = dt.timedelta(minutes=portal.settings.staff_session_idle_minutes + 1)
    app.extensions["portal"].clock = lambda: dt.datetime.now(dt.UTC) + idle

    response = client.post(
        f"/staff/cases/{submitted.handle}/hold",
        data={"csrf_token": token, "hold_reason": REASON},
    )

    assert response.status_code == 401 and REASON in html.unescape(response.text)
    assert _case(db, submitted.case_id).held_on is None


# --- who may ------------------------------------------------------------------------------------


@pytest.fixture
def outsiders(portal: Portal, db: Session) -> tuple[dict[str, StaffUser | None], str, str]:
    """A case in "general" held by Olga, and everyone else who must not touch its hold: a member
    of the same queue whom the reporter excluded, an ombudsperson of another queue, management,
    an admin, and nobody logged in (None)."""
    olga = portal.staff("olga")
    people: dict[str, StaffUser | None] = {
        "excluded member of the queue": portal.staff("excluded"),
        "ombudsperson of another queue": portal.staff("hrmember", queues=("hr",)),
        "management": portal.staff("manager", roles=(Role.MANAGEMENT,), queues=()),
        "admin": portal.staff("admin", roles=(Role.ADMIN,), queues=()),
        "not logged in": None,
    }
    excluded = people["excluded member of the queue"]
    assert excluded is not None
    held = portal.submit(category_code="other", excluded_staff_ids=(excluded.id,))
    free = portal.submit(category_code="other", excluded_staff_ids=(excluded.id,))
    hold.place(db, olga, portal.private_key(olga), held.handle, REASON, NOW)
    db.commit()
    return people, held.handle, free.handle


EXPECTED = {
    "excluded member of the queue": 404,
    "ombudsperson of another queue": 404,
    "management": 403,
    "admin": 403,
    "not logged in": 401,
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_only_a_holder_of_the_case_key_places_or_lifts_a_hold(
    app: Flask,
    db: Session,
    outsiders: tuple[dict[str, StaffUser | None], str, str],
    who: str,
) -> None:
    people, held, free = outsiders
    user = people[who]
    client = app.test_client()
    if user is not None:
        login(client, user)
    token = csrf_token(client.get("/followup").text)
    before = {
        handle: (c.held_on, c.purge_warned_on)
        for handle in (held, free)
        for c in db.scalars(select(Case).where(Case.handle == handle))
    }
    events = db.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).first()

    placed = client.post(
        f"/staff/cases/{free}/hold", data={"csrf_token": token, "hold_reason": REASON}
    )
    lifted = client.post(f"/staff/cases/{held}/hold/lift", data={"csrf_token": token})

    assert (placed.status_code, lifted.status_code) == (EXPECTED[who], EXPECTED[who])
    for response, handle in ((placed, free), (lifted, held)):
        assert handle not in response.text  # not even whether the case exists
    db.expire_all()
    after = {
        handle: (c.held_on, c.purge_warned_on)
        for handle in (held, free)
        for c in db.scalars(select(Case).where(Case.handle == handle))
    }
    assert after == before
    newer = select(AuditEvent.action).where(AuditEvent.seq > (events or 0))
    assert not {Action.CASE_HOLD_PLACED, Action.CASE_HOLD_LIFTED} & set(db.scalars(newer))


def test_the_service_refuses_anyone_without_the_key(portal: Portal, db: Session) -> None:
    olga = portal.staff("olga")
    stranger = portal.staff("stranger", queues=("hr",))
    submitted = portal.submit(category_code="other")
    with pytest.raises(NoAccess):
        hold.place(db, stranger, portal.private_key(stranger), submitted.handle, REASON, NOW)
    hold.place(db, olga, portal.private_key(olga), submitted.handle, REASON, NOW)
    with pytest.raises(NoAccess):
        hold.lift(db, stranger, portal.private_key(stranger), submitted.handle, NOW)
    assert _case(db, submitted.case_id).held_on == NOW.date()


def test_a_hold_placed_while_the_purge_deletes_the_case_finds_it_gone(
    portal: Portal, db: Session, database: DatabaseUnderTest
) -> None:
    """The race the retention job's re-check leaves: the purge has locked and deleted the case
    but not committed when an ombudsperson places a hold. The hold waits for the purge's lock
    and then finds no case (NoAccess: the 404 page), instead of updating a row that has gone
    (a 500). SQLite has one writer at a time, so there the two cannot overlap."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: a purge and a hold cannot overlap")
    olga = portal.staff("olga")
    submitted = portal.submit()
    _close(db, submitted.case_id, dt.date(2025, 1, 1), "unsubstantiated")
    key = portal.private_key(olga)
    purger = Session(database.engine)
    doomed = purger.get(Case, submitted.case_id)
    assert doomed is not None
    assert retention.purge(purger, [doomed]) == 1  # locked and deleted, not yet committed
    outcome: list[str] = []

    def place_hold() -> None:
        with Session(database.engine) as other:
            user = other.get(StaffUser, olga.id)
            assert user is not None
            try:
                hold.place(other, user, key, submitted.handle, REASON, NOW)
                other.commit()
                outcome.append("placed")
            except NoAccess:
                outcome.append("gone")

    ombudsperson = threading.Thread(target=place_hold)
    ombudsperson.start()
    ombudsperson.join(1.0)
    assert ombudsperson.is_alive()  # waiting for the purge's row lock
    purger.commit()
    purger.close()
    ombudsperson.join(30)
    assert outcome == ["gone"]
