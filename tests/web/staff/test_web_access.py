"""The access panel of the case page, the recuse / grant / transfer routes, the re-grant notice
on the case list, and the concern form's notice of members who cannot be excluded."""

from __future__ import annotations

import re
from typing import cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import crypto
from portal.models import AuditEvent, CaseAccess, PendingRegrant, Queue, StaffUser
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from tests.support.factories import Portal
from tests.support.pages import csrf_token, login

SECRET = "The site director falsifies the overtime records."


def _client(app: Flask, user: StaffUser) -> FlaskClient:
    client = app.test_client()
    login(client, user)
    return client


def _post(client: FlaskClient, url: str, **form: str) -> TestResponse:
    token = csrf_token(client.get("/staff/account").text)
    return client.post(url, data={"csrf_token": token, **form})


def _holders(db: Session, case_id: str) -> set[int]:
    db.expire_all()
    return set(db.scalars(select(CaseAccess.staff_id).where(CaseAccess.case_id == case_id)))


def _panel(html: str) -> str:
    start = html.index('<section class="access"')
    return html[start : html.index("</section>", start)]


def _queue_id(db: Session, slug: str) -> int:
    return db.scalars(select(Queue.id).where(Queue.slug == slug)).one()


def _actions(db: Session) -> list[str]:
    """The case actions audited, leaving out the views of the case page between them."""
    stmt = (
        select(AuditEvent.action)
        .where(AuditEvent.action.like("case.%"), AuditEvent.action != Action.CASE_VIEWED.value)
        .order_by(AuditEvent.seq)
    )
    return list(db.scalars(stmt))


def test_the_panel_shows_holders_grantable_colleagues_and_queues(
    app: Flask, portal: Portal
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    portal.staff("carol", queues=("hr",))
    excluded = portal.staff("xavier", queues=("hr",))
    submitted = portal.submit(excluded_staff_ids=[excluded.id])

    panel = _panel(_client(app, alice).get(f"/staff/cases/{submitted.handle}").text)

    holders = re.search(r'<ul id="key-holders">(.*?)</ul>', panel, re.S)
    assert holders is not None
    assert "Alice (you)" in holders.group(1) and bob.display_name in holders.group(1)
    grant = re.search(r'<select[^>]*name="colleague"[^>]*>(.*?)</select>', panel, re.S)
    assert grant is not None
    assert "Carol" in grant.group(1)
    assert "Xavier" not in panel  # excluded by the reporter: neither offered nor named
    assert "Bob" not in grant.group(1)  # already holds it
    assert "HR ombuds (you are not a member: you lose access)" in panel
    assert 'value="general"' not in panel  # the case's own queue is not offered
    assert 'action="/staff/cases/' + submitted.handle + '/recuse"' in panel


def test_grant_via_the_web_lets_the_colleague_read_the_case(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice, carol = portal.staff("alice"), portal.staff("carol", queues=("hr",))
    submitted = portal.submit(description=SECRET)
    carol_client = _client(app, carol)
    assert carol_client.get(f"/staff/cases/{submitted.handle}").status_code == 404
    alice_client = _client(app, alice)

    response = _post(
        alice_client, f"/staff/cases/{submitted.handle}/grant", colleague=str(carol.id)
    )

    assert response.status_code == 302
    page = alice_client.get(f"/staff/cases/{submitted.handle}").text
    assert "Carol now holds the key to this case." in page
    assert _holders(db, submitted.case_id) == {alice.id, carol.id}
    opened = carol_client.get(f"/staff/cases/{submitted.handle}")
    assert opened.status_code == 200 and SECRET in opened.text
    assert _actions(db) == [Action.CASE_GRANTED.value]
    assert audit.verify(db).ok


def test_recusal_needs_the_confirmation_box(app: Flask, portal: Portal, db: Session) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit()
    client = _client(app, alice)

    response = _post(client, f"/staff/cases/{submitted.handle}/recuse")

    assert response.status_code == 400
    assert "Tick the box to confirm that you step away." in response.text
    assert _holders(db, submitted.case_id) == {alice.id, bob.id}


def test_after_recusal_via_the_web_the_case_answers_404(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit(description=SECRET)
    client = _client(app, alice)

    response = _post(client, f"/staff/cases/{submitted.handle}/recuse", confirm="y")

    assert response.status_code == 302
    assert response.location == "/staff/"
    listing = client.get("/staff/").text
    assert "You recused yourself from case" in listing
    assert f'href="/staff/cases/{submitted.handle}"' not in listing
    gone = client.get(f"/staff/cases/{submitted.handle}")
    made_up = client.get("/staff/cases/XXXX-0000")
    assert gone.status_code == 404 and gone.text == made_up.text
    assert _holders(db, submitted.case_id) == {bob.id}
    for sealed in db.scalars(select(CaseAccess.sealed_key)):
        with pytest.raises(crypto.DecryptionFailed):
            crypto.unseal(portal.private_key(alice), sealed)
    assert _actions(db) == [Action.CASE_RECUSED.value]


def test_the_last_holder_is_told_to_grant_first_and_keeps_the_case(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice")
    submitted = portal.submit()
    client = _client(app, alice)
    page = client.get(f"/staff/cases/{submitted.handle}").text
    assert 'id="last-holder"' in page
    assert 'action="/staff/cases/' + submitted.handle + '/recuse"' not in page

    response = _post(client, f"/staff/cases/{submitted.handle}/recuse", confirm="y")

    assert response.status_code == 400
    assert "grant a colleague access first" in response.text
    assert _holders(db, submitted.case_id) == {alice.id}
    assert _actions(db) == []


def test_transfer_to_a_queue_one_is_not_in_ends_ones_access(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice, carol = portal.staff("alice"), portal.staff("carol", queues=("hr",))
    submitted = portal.submit(description=SECRET)
    client = _client(app, alice)

    response = _post(client, f"/staff/cases/{submitted.handle}/transfer", queue="hr")

    assert response.location == "/staff/"
    assert "You are not a member of that queue" in client.get("/staff/").text
    assert client.get(f"/staff/cases/{submitted.handle}").status_code == 404
    assert _holders(db, submitted.case_id) == {carol.id}
    carol_page = _client(app, carol).get(f"/staff/cases/{submitted.handle}")
    assert SECRET in carol_page.text and "HR ombuds" in carol_page.text
    assert _actions(db) == [Action.CASE_TRANSFERRED.value]


def test_transfer_within_ones_queues_stays_on_the_case(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = portal.staff("alice", queues=("general", "hr"))
    submitted = portal.submit()
    client = _client(app, alice)

    response = _post(client, f"/staff/cases/{submitted.handle}/transfer", queue="hr")

    assert response.location == f"/staff/cases/{submitted.handle}"
    page = client.get(response.location).text
    assert "Case moved to “HR ombuds”" in page


@pytest.mark.parametrize(
    ("route", "form", "message"),
    [
        ("grant", {}, "Choose a colleague."),
        ("grant", {"colleague": ""}, "Choose a colleague."),
        ("grant", {"colleague": "abc"}, "Choose a colleague."),
        ("grant", {"colleague": "-3"}, "Choose a colleague."),
        ("grant", {"colleague": "٣"}, "Choose a colleague."),  # a non-ASCII digit
        ("grant", {"colleague": "9" * 30}, "Choose a colleague."),
        ("grant", {"colleague": "99999"}, "choose an active ombudsperson"),
        ("grant", {"colleague": "2147483648"}, "choose an active ombudsperson"),
        ("transfer", {}, "Choose a queue."),
        ("transfer", {"queue": "nope"}, "Choose one of the queues offered."),
        ("transfer", {"queue": "q" * 5000}, "Choose one of the queues offered."),
        ("transfer", {"queue": "general"}, "The case is already in that queue."),
        ("transfer", {"queue": "safety"}, "Nobody in that queue can receive this case"),
        ("recuse", {"confirm": ""}, "Tick the box"),
    ],
)
def test_bad_input_gets_a_message_next_to_the_field_not_a_500(
    app: Flask, portal: Portal, db: Session, route: str, form: dict[str, str], message: str
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit(description=SECRET)
    client = _client(app, alice)

    response = _post(client, f"/staff/cases/{submitted.handle}/{route}", **form)

    assert response.status_code == 400
    html = response.text
    assert message in _panel(html)
    assert 'class="field-errors"' in _panel(html)
    assert SECRET in html  # the case page is shown again, whole
    assert _holders(db, submitted.case_id) == {alice.id, bob.id}
    assert _actions(db) == []


def test_a_grant_refused_because_of_the_reporters_exclusion_says_so(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice, carol = portal.staff("alice"), portal.staff("carol", queues=("hr",))
    submitted = portal.submit(excluded_staff_ids=[carol.id])

    response = _post(
        _client(app, alice), f"/staff/cases/{submitted.handle}/grant", colleague=str(carol.id)
    )

    assert response.status_code == 400
    assert "The reporter excluded that person" in response.text
    assert _holders(db, submitted.case_id) == {alice.id}
    assert _client(app, carol).get(f"/staff/cases/{submitted.handle}").status_code == 404


def test_the_case_list_asks_for_regrants_and_one_click_answers_them(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice, bob = portal.staff("alice"), portal.staff("bob")
    submitted = portal.submit(description=SECRET)
    other = portal.submit()
    # Bob's password was reset without his recovery key: a new key pair, his cases pending.
    bob_private, bob_public = crypto.new_keypair()
    db.get_one(StaffUser, bob.id).public_key = bob_public
    db.execute(cast(Table, CaseAccess.__table__).delete().where(CaseAccess.staff_id == bob.id))
    db.add(PendingRegrant(case_id=submitted.case_id, staff_id=bob.id))
    db.commit()
    client = _client(app, alice)

    listing = client.get("/staff/").text
    notice = re.search(
        r'<div class="notice notice-warning" id="regrant-notice">(.*?)</div>', listing, re.S
    )
    assert notice is not None
    assert submitted.handle in notice.group(1) and "1 colleague" in notice.group(1)
    assert other.handle not in notice.group(1)
    page = client.get(f"/staff/cases/{submitted.handle}").text
    awaiting = re.search(r'<ul id="awaiting-regrant">(.*?)</ul>', page, re.S)
    assert awaiting is not None and "Bob" in awaiting.group(1)

    # One click is not enough any more (issue 13, finding 7): the fingerprint Bob reads out.
    assert 'name="fingerprint"' in awaiting.group(1)
    one_click = client.post(
        f"/staff/cases/{submitted.handle}/grant",
        data={"csrf_token": csrf_token(awaiting.group(1)), "colleague": str(bob.id)},
    )
    assert one_click.status_code == 400 and "not the fingerprint" in one_click.text
    response = client.post(
        f"/staff/cases/{submitted.handle}/regrant",
        data={
            "csrf_token": csrf_token(awaiting.group(1)),
            "colleague": str(bob.id),
            "fingerprint": crypto.key_fingerprint(bob_public),
        },
    )

    assert response.status_code == 302
    assert "Bob can open this case again." in client.get(f"/staff/cases/{submitted.handle}").text
    assert 'id="regrant-notice"' not in client.get("/staff/").text
    db.expire_all()
    assert db.scalars(select(PendingRegrant)).all() == []
    sealed = db.get_one(CaseAccess, (submitted.case_id, bob.id)).sealed_key
    crypto.unseal(bob_private, sealed)  # opens with his new key
    assert _actions(db) == [Action.CASE_REGRANT_REFUSED.value, Action.CASE_REGRANTED.value]
