"""Staff accounts in the admin console: list, create, roles, queues, disable, enable, and the
protection of the last admin. Accounts made through the console are checked in the database
(the log-in flow is someone else's), never by logging in as them."""

from __future__ import annotations

import re
from typing import cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from portal import crypto
from portal.crypto import Argon2Cost
from portal.models import CaseAccess, Queue, QueueMembership, Role, StaffSession, StaffUser
from portal.services.accounts import administration as admin
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from tests.support.admin_helpers import (
    admin_user,
    approve_all,
    checked,
    client_for,
    detail,
    events,
    field_errors,
    fresh,
    input_value,
    post,
    snapshot,
    tables_containing,
    waiting_request_ids,
)
from tests.support.factories import Portal
from tests.support.pages import login
from tests.support.smtp_server import app_mailbox


@pytest.fixture
def root(portal: Portal) -> StaffUser:
    return admin_user(portal)


@pytest.fixture
def console(app: Flask, root: StaffUser) -> FlaskClient:
    return client_for(app, root)


def _user(db: Session, email: str) -> StaffUser:
    return fresh(db).scalars(select(StaffUser).where(StaffUser.email == email)).one()


def _memberships(db: Session, user: StaffUser) -> dict[str, bool]:
    stmt = (
        select(Queue.slug, QueueMembership.excludable)
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .where(QueueMembership.staff_id == user.id)
    )
    return {slug: excludable for slug, excludable in fresh(db).execute(stmt)}


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_roles_queues_markers_state_and_second_factor(
    console: FlaskClient, portal: Portal, db: Session
) -> None:
    chair = portal.staff("chair", queues=("board", "general"))
    db.execute(
        cast(Table, QueueMembership.__table__)
        .update()
        .where(QueueMembership.staff_id == chair.id)
        .where(
            QueueMembership.queue_id
            == select(Queue.id).where(Queue.slug == "board").scalar_subquery()
        )
        .values(excludable=False)
    )
    chair.totp_sealed = b"sealed"
    gone = portal.staff("gone")
    gone.active = False
    gone.totp_sealed = None  # never enrolled
    db.commit()

    page = console.get("/staff/admin/staff").text

    chair_row = re.search(rf'<tr id="staff-{chair.id}">(.*?)</tr>', page, re.S)
    assert chair_row, page
    row = chair_row.group(1)
    assert "chair@example.org" in row and "Chair" in row and "Ombudsperson" in row
    assert 'Board-level queue <strong class="marker">(cannot be excluded)</strong>' in row
    assert "General ombuds office" in row and row.count("cannot be excluded") == 1
    assert re.search(r"<td>yes</td>\s*<td>yes</td>", row)  # active, second factor
    gone_row = re.search(rf'<tr id="staff-{gone.id}" class="inactive">(.*?)</tr>', page, re.S)
    assert gone_row and "disabled" in gone_row.group(1)
    assert re.search(r"<td>no</td>\s*</tr>", gone_row.group(0))  # no second factor


# --- create --------------------------------------------------------------------------------------


def test_create_mails_a_one_time_password_to_the_owner_only_and_stores_only_its_hash(
    app: Flask, console: FlaskClient, db: Session, portal: Portal, root: StaffUser
) -> None:
    with app_mailbox(app) as mailbox:
        response = post(
            console,
            "/staff/admin/staff/new",
            {
                "email": "New.Person@Example.org",
                "name": "New Person",
                "roles": ["ombudsperson"],
                "queues": ["hr", "board"],
                "not_excludable_in": ["board"],
            },
        )

    assert response.status_code == 200, response.text
    # Mailed to the account's own address only (issue 13, finding 7): the admin who made it
    # must not be able to log in first and own its key pair.
    [mail] = mailbox.received
    assert mail.rcpt_tos == ["new.person@example.org"]
    password = re.search(r"^    (\S+)$", mail.body, re.M)
    assert password
    temporary = password.group(1).strip()
    assert temporary not in response.text and 'id="account-mailed"' in response.text
    assert "Case" not in mail.body and "case" not in mail.message["Subject"]
    assert len(temporary) >= portal.settings.staff_password_min_chars
    user = _user(db, "new.person@example.org")
    assert user.must_change_password and user.active and user.totp_sealed is None
    assert (
        user.one_time_password_expires_at is not None
    )  # it lapses (tests/services/accounts/test_reset_chain.py)
    # The role and the queues give case access: they wait for a second admin (four eyes).
    assert user.roles == set() and _memberships(db, user) == {}
    assert len(waiting_request_ids(db)) == 3
    assert 'id="waiting-requests"' in response.text
    approve_all(client_for(app, admin_user(portal, "second")), db)
    user = _user(db, "new.person@example.org")
    assert user.roles == {Role.OMBUDSPERSON}
    assert _memberships(db, user) == {"hr": True, "board": False}
    # Only the hash and the key it wraps are stored: the password itself is nowhere.
    assert crypto.verify_password(user.password_hash, temporary, portal.settings.password_cost)
    crypto.unwrap_with_password(
        temporary, user.password_salt, user.key_by_password, Argon2Cost.decode(user.password_kdf)
    )
    assert tables_containing(db, temporary) == []
    # The recovery key made with the account is shown to nobody.
    assert not re.search(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){7}", response.text)
    # Not flashed either: the flash cookie is readable by whoever holds the browser.
    assert temporary not in response.headers.get("Set-Cookie", "")
    assert temporary not in console.get("/staff/admin/staff").text
    [event] = events(db, Action.STAFF_CREATED)
    assert (event.actor_id, event.target_staff_id) == (root.id, user.id)
    # What the account had when it was made: nothing that gives access yet.
    assert detail(event) == {"roles": [], "queues": [], "not_excludable": []}
    assert len(events(db, Action.STAFF_ACCESS_REQUESTED)) == 3
    assert len(events(db, Action.STAFF_ACCESS_APPROVED)) == 3
    assert audit.verify(db).ok


def test_without_a_mail_server_no_account_is_made_in_the_console(
    console: FlaskClient, db: Session
) -> None:
    before = snapshot(db)

    page = console.get("/staff/admin/staff/new")
    response = post(
        console,
        "/staff/admin/staff/new",
        {"email": "someone@example.org", "name": "Someone", "roles": ["ombudsperson"]},
    )

    assert 'id="no-mail"' in page.text
    assert response.status_code == 400 and "No mail server is configured" in response.text
    assert input_value(response.text, "email") == "someone@example.org"
    assert snapshot(db) == before


def test_a_new_account_whose_mail_the_server_refuses_is_not_made(
    app: Flask, console: FlaskClient, db: Session
) -> None:
    before = snapshot(db)

    with app_mailbox(app) as mailbox:
        mailbox.refuse["someone@example.org"] = "550 no such mailbox"
        response = post(
            console,
            "/staff/admin/staff/new",
            {"email": "someone@example.org", "name": "Someone", "roles": ["ombudsperson"]},
        )

    assert response.status_code == 503 and "no account was made" in response.text
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "That is not an e-mail address."),
        ({"email": ""}, "email", "Give an e-mail address."),
        ({"name": "   "}, "name", "Give the name reporters will see."),
        ({"name": "x" * 201}, "name", "The public name must be 1 to 200 characters."),
        ({"roles": []}, "roles", "Give at least one role."),
        ({"roles": ["superuser"]}, "roles", "'superuser' is not a valid choice for this field."),
        (
            {"queues": ["hr"], "not_excludable_in": ["board"]},
            "not_excludable_in",
            "A queue can be marked 'cannot be excluded' only if the person is a member of it.",
        ),
        ({"queues": ["nope"]}, "queues", "'nope' is not a valid choice for this field."),
    ],
)
def test_create_refuses_bad_input_next_to_the_field_and_keeps_it(
    console: FlaskClient,
    db: Session,
    changes: dict[str, object],
    field: str,
    message: str,
) -> None:
    form: dict[str, object] = {
        "email": "kept@example.org",
        "name": "Kept Name",
        "roles": ["ombudsperson"],
        "queues": ["hr"],
    }
    form.update(changes)
    before = snapshot(db)

    response = post(console, "/staff/admin/staff/new", form)

    assert response.status_code == 400
    assert message in field_errors(response.text, field)
    assert "temporary-password" not in response.text
    if field != "email":
        assert input_value(response.text, "email") == "kept@example.org"
    if field != "name":
        assert input_value(response.text, "name") == "Kept Name"
    assert snapshot(db) == before


def test_create_refuses_an_e_mail_already_in_use(
    console: FlaskClient, db: Session, portal: Portal
) -> None:
    portal.staff("taken")
    before = snapshot(db)

    response = post(
        console,
        "/staff/admin/staff/new",
        {"email": "TAKEN@example.org", "name": "Someone", "roles": ["admin"]},
    )

    assert response.status_code == 400
    assert field_errors(response.text, "email") == [
        "An account with this e-mail address already exists."
    ]
    assert snapshot(db) == before


# --- roles and queues ----------------------------------------------------------------------------


def test_roles_change_is_saved_and_audited(
    app: Flask, console: FlaskClient, db: Session, portal: Portal, root: StaffUser
) -> None:
    olga = portal.staff("olga")

    response = post(
        console,
        f"/staff/admin/staff/{olga.id}/roles",
        {"roles": ["ombudsperson", "custodian", "management"]},
    )

    assert response.status_code == 302
    assert response.location.endswith(f"/staff/admin/staff/{olga.id}")
    # Management (aggregates only) at once; custodian (identities) waits for a second admin.
    assert _user(db, olga.email).roles == {Role.OMBUDSPERSON, Role.MANAGEMENT}
    [event] = events(db, Action.STAFF_ROLES_CHANGED)
    assert (event.actor_id, event.target_staff_id) == (root.id, olga.id)
    assert detail(event) == {
        "roles": ["management", "ombudsperson"],
        "added": ["management"],
        "removed": [],
    }
    page = console.get(f"/staff/admin/staff/{olga.id}").text
    assert "Roles saved." in page and "wait for a second admin" not in page
    assert "waits for a second admin" in page  # the flash and the waiting list
    assert checked(page, "roles") == {"ombudsperson", "management"}
    [requested] = events(db, Action.STAFF_ACCESS_REQUESTED)
    assert (requested.actor_id, requested.target_staff_id) == (root.id, olga.id)
    approve_all(client_for(app, admin_user(portal, "second")), db)
    assert _user(db, olga.email).roles == {Role.OMBUDSPERSON, Role.CUSTODIAN, Role.MANAGEMENT}
    # Saving the same again changes nothing and logs nothing.
    post(
        console,
        f"/staff/admin/staff/{olga.id}/roles",
        {"roles": ["ombudsperson", "custodian", "management"]},
    )
    assert len(events(db, Action.STAFF_ROLES_CHANGED)) == 1
    assert len(events(db, Action.STAFF_ACCESS_REQUESTED)) == 1
    assert "Nothing changed." in console.get(f"/staff/admin/staff/{olga.id}").text


def test_roles_need_at_least_one(console: FlaskClient, db: Session, portal: Portal) -> None:
    olga = portal.staff("olga")

    response = post(console, f"/staff/admin/staff/{olga.id}/roles", {})

    assert response.status_code == 400
    assert field_errors(response.text, "roles") == ["Give at least one role."]
    assert _user(db, olga.email).roles == {Role.OMBUDSPERSON}


def test_queue_memberships_and_the_excludable_flag(
    app: Flask, console: FlaskClient, db: Session, portal: Portal, root: StaffUser
) -> None:
    olga = portal.staff("olga", queues=("general", "hr"))

    response = post(
        console,
        f"/staff/admin/staff/{olga.id}/queues",
        {"queues": ["general", "board"], "not_excludable_in": ["board"]},
    )

    assert response.status_code == 302
    # Leaving hr takes effect at once; joining board (not excludable) waits for a second admin.
    assert _memberships(db, olga) == {"general": True}
    [event] = events(db, Action.STAFF_QUEUES_CHANGED)
    assert (event.actor_id, event.target_staff_id) == (root.id, olga.id)
    assert detail(event) == {
        "queues": ["general"],
        "not_excludable": [],
        "joined": [],
        "left": ["hr"],
    }
    approve_all(client_for(app, admin_user(portal, "second")), db)
    assert _memberships(db, olga) == {"general": True, "board": False}
    page = console.get(f"/staff/admin/staff/{olga.id}").text
    assert checked(page, "queues") == {"general", "board"}
    assert checked(page, "not_excludable_in") == {"board"}

    # Only the flag changes, back to excludable (less access: at once): one event, naming it.
    post(console, f"/staff/admin/staff/{olga.id}/queues", {"queues": ["general", "board"]})
    assert _memberships(db, olga) == {"general": True, "board": True}
    assert detail(events(db, Action.STAFF_QUEUES_CHANGED)[-1])["not_excludable"] == []
    assert len(events(db, Action.STAFF_QUEUES_CHANGED)) == 2
    assert audit.verify(db).ok


def test_not_excludable_needs_membership_and_keeps_what_was_ticked(
    console: FlaskClient, db: Session, portal: Portal
) -> None:
    olga = portal.staff("olga", queues=("general",))

    response = post(
        console,
        f"/staff/admin/staff/{olga.id}/queues",
        {"queues": ["hr"], "not_excludable_in": ["board"]},
    )

    assert response.status_code == 400
    assert field_errors(response.text, "not_excludable_in") == [
        "Tick “Member of” for a queue before marking that reporters cannot exclude them."
    ]
    assert checked(response.text, "queues") == {"hr"}
    assert checked(response.text, "not_excludable_in") == {"board"}
    assert _memberships(db, olga) == {"general": True}


# --- disable and enable --------------------------------------------------------------------------


def test_disabling_ends_sessions_stops_new_cases_and_is_audited(
    app: Flask, console: FlaskClient, db: Session, portal: Portal, root: StaffUser
) -> None:
    olga = portal.staff("olga")
    portal.staff("pia")  # someone else stays to receive concerns
    olga_client = client_for(app, olga)
    assert olga_client.get("/staff/").status_code == 200
    assert fresh(db).scalar(
        select(func.count()).select_from(StaffSession).where(StaffSession.staff_id == olga.id)
    )

    response = post(console, f"/staff/admin/staff/{olga.id}/disable")

    assert response.status_code == 302
    assert not _user(db, olga.email).active
    assert not fresh(db).scalar(
        select(func.count()).select_from(StaffSession).where(StaffSession.staff_id == olga.id)
    )
    assert olga_client.get("/staff/").status_code == 302  # back to the log-in page
    [event] = events(db, Action.STAFF_DISABLED)
    assert (event.actor_id, event.target_staff_id) == (root.id, olga.id)
    assert detail(event) == {"sessions_ended": 1}
    submitted = portal.submit()
    holders = set(
        fresh(db).scalars(
            select(CaseAccess.staff_id).where(CaseAccess.case_id == submitted.case_id)
        )
    )
    assert olga.id not in holders and holders
    assert "Enable the account" in console.get(f"/staff/admin/staff/{olga.id}").text

    response = post(console, f"/staff/admin/staff/{olga.id}/enable")

    assert response.status_code == 302
    assert _user(db, olga.email).active
    [enabled] = events(db, Action.STAFF_ENABLED)
    assert enabled.target_staff_id == olga.id
    assert audit.verify(db).ok


def test_nobody_can_disable_themselves_or_drop_their_own_admin_role(
    console: FlaskClient, db: Session, portal: Portal, root: StaffUser
) -> None:
    admin_user(portal, "other")  # so that root is not the last admin either
    before = snapshot(db)

    refused = [
        post(console, f"/staff/admin/staff/{root.id}/disable"),
        post(console, f"/staff/admin/staff/{root.id}/roles", {"roles": ["ombudsperson"]}),
    ]

    assert [r.status_code for r in refused] == [400, 400]
    assert field_errors(refused[0].text, "active") == ["You cannot disable your own account."]
    assert field_errors(refused[1].text, "roles") == [
        "You cannot remove your own admin role; ask another admin to do it."
    ]
    assert checked(refused[1].text, "roles") == {"ombudsperson"}  # what was ticked is kept
    assert snapshot(db) == before


def test_the_last_active_admin_cannot_be_disabled_or_demoted(
    db: Session, portal: Portal, root: StaffUser
) -> None:
    # Through the console only an admin acts, so the last admin is always acting on themselves;
    # the command line (no actor) meets this rule on its own.
    other = admin_user(portal, "other")
    assert admin.set_active(db, other, False, actor=root, now=root.created_at)
    db.commit()
    before = snapshot(db)

    with pytest.raises(admin.LastAdmin, match="last active admin"):
        admin.set_active(fresh(db), root, False, actor=None, now=root.created_at)
    db.rollback()
    with pytest.raises(admin.LastAdmin, match="last active admin"):
        admin.set_roles(fresh(db), root, [Role.MANAGEMENT], actor=None, now=root.created_at)
    db.rollback()

    assert snapshot(db) == before
    # Another active admin lifts the restriction; a disabled admin does not count.
    assert admin.set_active(fresh(db), other, True, actor=root, now=root.created_at)
    assert admin.set_roles(db, root, [Role.MANAGEMENT], actor=None, now=root.created_at)
    db.commit()


def test_an_admin_may_demote_another_admin_but_not_themselves(
    app: Flask, db: Session, portal: Portal, root: StaffUser, console: FlaskClient
) -> None:
    other = admin_user(portal, "other")

    own = post(console, f"/staff/admin/staff/{root.id}/roles", {"roles": ["ombudsperson"]})
    theirs = post(console, f"/staff/admin/staff/{other.id}/roles", {"roles": ["management"]})

    assert own.status_code == 400
    assert Role.ADMIN in _user(db, root.email).roles
    assert theirs.status_code == 302
    assert _user(db, other.email).roles == {Role.MANAGEMENT}
    # The demoted admin's next request is turned away from the console.
    other_client = app.test_client()
    login(other_client, other)
    assert other_client.get("/staff/admin/staff").status_code == 403


def test_unknown_account_is_a_404(console: FlaskClient) -> None:
    assert console.get("/staff/admin/staff/999999").status_code == 404
    assert post(console, "/staff/admin/staff/999999/disable").status_code == 404
    assert post(console, "/staff/admin/staff/999999/roles", {"roles": ["admin"]}).status_code == 404


def test_an_expired_form_loses_nothing(console: FlaskClient, db: Session) -> None:
    before = snapshot(db)

    response = console.post(
        "/staff/admin/staff/new",
        data={"email": "kept@example.org", "name": "Kept Name", "roles": ["custodian"]},
    )

    assert response.status_code == 400
    assert "had been open too long" in response.text
    assert input_value(response.text, "email") == "kept@example.org"
    assert checked(response.text, "roles") == {"custodian"}
    assert snapshot(db) == before
