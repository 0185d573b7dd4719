"""Four eyes on access (issue 13, finding 6): an admin could make themself an ombudsperson,
join a queue as a member reporters cannot exclude, and read the next concerns.

Nobody changes their own roles or queue memberships; a change that gives access (the
ombudsperson, custodian and admin roles, joining a queue, becoming not excludable) waits for a
second admin, who is neither the one who asked nor the one it is for; requests are audited,
lapse after seven days, and are shown to the queue's members. The operator at the server (the
command line) is the audited break-glass path. Checked on the case pages and in the database,
not only in what the console shows."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.app import create_app
from portal.db import make_sessionmaker
from portal.instance import InstanceSecrets
from portal.models import (
    AccessChange,
    AccessRequest,
    AuditEvent,
    CaseAccess,
    Queue,
    QueueMembership,
    RequestState,
    Role,
    StaffUser,
)
from portal.ops.demo import DEMO_STAFF
from portal.services.accounts import administration as admin
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.casework import access, access_requests
from tests.support.admin_helpers import (
    admin_user,
    approve_all,
    client_for,
    decide,
    detail,
    events,
    field_errors,
    fresh,
    post,
    waiting_request_ids,
)
from tests.support.factories import Portal, cheap_settings
from tests.support.smtp_server import app_mailbox

SECRET = "The plant manager falsified the emission readings for the inspectors."
NOW = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def root(portal: Portal) -> StaffUser:
    return admin_user(portal)


@pytest.fixture
def second(portal: Portal, root: StaffUser) -> StaffUser:
    return admin_user(portal, "second")


@pytest.fixture
def console(app: Flask, root: StaffUser) -> FlaskClient:
    return client_for(app, root)


def _user(db: Session, user: StaffUser) -> StaffUser:
    return fresh(db).get_one(StaffUser, user.id)


def _memberships(db: Session, user: StaffUser) -> dict[str, bool]:
    stmt = (
        select(Queue.slug, QueueMembership.excludable)
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .where(QueueMembership.staff_id == user.id)
    )
    return {slug: excludable for slug, excludable in fresh(db).execute(stmt)}


def _holds(db: Session, user: StaffUser, case_id: str) -> bool:
    row = fresh(db).get(CaseAccess, (case_id, user.id))
    return row is not None


def _requests_for(db: Session, user: StaffUser) -> list[AccessRequest]:
    stmt = select(AccessRequest).where(AccessRequest.target_id == user.id)
    return list(fresh(db).scalars(stmt))


def _all_queues(db: Session) -> list[str]:
    return list(fresh(db).scalars(select(Queue.slug).order_by(Queue.slug)))


# --- nobody changes their own roles or queue memberships ----------------------------------------


def _own_account_routes(app: Flask) -> list[str]:
    """Every POST route of the admin console that acts on one account (``<staff_id>``)."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("staff.admin.")
        and "staff_id" in rule.arguments
        and "POST" in (rule.methods or ())
    )


def test_no_console_route_changes_ones_own_roles_or_queues(
    app: Flask, portal: Portal, db: Session, second: StaffUser
) -> None:
    routes = _own_account_routes(app)
    assert {
        "/staff/admin/staff/<int:staff_id>/roles",
        "/staff/admin/staff/<int:staff_id>/queues",
    } <= set(routes)
    everything = {
        "roles": [r.value for r in Role],
        "queues": _all_queues(db),
        "not_excludable_in": _all_queues(db),
        "confirm": "y",
    }
    for n, rule in enumerate(routes):
        me = admin_user(portal, f"self{n}")  # a fresh admin each time: a reset may end a login
        client = client_for(app, me)
        response = post(client, rule.replace("<int:staff_id>", str(me.id)), everything)

        assert _user(db, me).roles == {Role.ADMIN}, rule
        assert _memberships(db, me) == {}, rule
        assert _requests_for(db, me) == [], rule  # not even asked for
        if rule.endswith(("/roles", "/queues")):
            assert response.status_code == 400, rule
            field = rule.rsplit("/", 1)[1]
            what = "roles" if field == "roles" else "queue memberships"
            assert field_errors(response.text, field) == [
                f"You cannot change your own {what}; ask another admin to do it."
            ]


def test_nobody_removes_their_own_roles_or_queues_either(
    app: Flask, portal: Portal, db: Session, second: StaffUser
) -> None:
    both = portal.staff("both", roles=(Role.ADMIN, Role.OMBUDSPERSON), queues=("general", "hr"))
    client = client_for(app, both)

    roles = post(client, f"/staff/admin/staff/{both.id}/roles", {"roles": ["admin"]})
    queues = post(client, f"/staff/admin/staff/{both.id}/queues", {"queues": ["general"]})

    assert (roles.status_code, queues.status_code) == (400, 400)
    assert _user(db, both).roles == {Role.ADMIN, Role.OMBUDSPERSON}
    assert _memberships(db, both) == {"general": True, "hr": True}
    assert "This is your own account" in client.get(f"/staff/admin/staff/{both.id}").text


def test_the_services_refuse_a_change_to_ones_own_account(
    portal: Portal, db: Session, root: StaffUser
) -> None:
    dora = portal.staff("dora", roles=(Role.ADMIN, Role.OMBUDSPERSON), queues=("board",))
    refused = [
        lambda: admin.set_roles(db, root, [Role.ADMIN, Role.OMBUDSPERSON], actor=root, now=NOW),
        lambda: admin.set_queues(db, root, {"general": False}, actor=root, now=NOW),
        lambda: access.set_excludable(db, dora, "board", False, NOW, actor=dora),
        lambda: access_requests.ask(
            db, root, AccessChange.ROLE, actor=root, now=NOW, role=Role.CUSTODIAN
        ),
    ]
    for attempt in refused:
        with pytest.raises(access_requests.OwnAccount):
            attempt()
        db.rollback()
    assert _user(db, root).roles == {Role.ADMIN}
    assert _memberships(db, root) == {} and _memberships(db, dora) == {"board": True}


# --- one admin alone gives no access ------------------------------------------------------------


def test_an_admin_cannot_make_themself_a_reader_of_the_next_concern(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    """The finding's attack, step by step, through the console: every step is refused and the
    next concern of the queue stays unreadable to the admin."""
    portal.staff("alice")  # the general queue's ombudsperson
    steps = [
        post(console, f"/staff/admin/staff/{root.id}/roles", {"roles": ["admin", "ombudsperson"]}),
        post(
            console,
            f"/staff/admin/staff/{root.id}/queues",
            {"queues": ["general"], "not_excludable_in": ["general"]},
        ),
    ]
    assert [s.status_code for s in steps] == [400, 400]

    submitted = portal.submit(description=SECRET)

    assert not _holds(db, root, submitted.case_id)
    page = console.get(f"/staff/cases/{submitted.handle}")
    assert page.status_code == 403 and SECRET not in page.text
    assert console.get("/staff/").status_code == 403


def test_one_admins_grant_gives_no_access_until_a_second_admin_approves(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    portal.staff("alice")
    olga = portal.staff("olga", roles=(Role.MANAGEMENT,), queues=())
    olga_client = client_for(app, olga)

    roles = post(
        console, f"/staff/admin/staff/{olga.id}/roles", {"roles": ["management", "ombudsperson"]}
    )
    queues = post(
        console,
        f"/staff/admin/staff/{olga.id}/queues",
        {"queues": ["general"], "not_excludable_in": ["general"]},
    )
    assert (roles.status_code, queues.status_code) == (302, 302)
    assert _user(db, olga).roles == {Role.MANAGEMENT} and _memberships(db, olga) == {}
    assert len(waiting_request_ids(db)) == 2

    before = portal.submit(description=SECRET)

    assert not _holds(db, olga, before.case_id)
    assert olga_client.get("/staff/").status_code == 403
    page = olga_client.get(f"/staff/cases/{before.handle}")
    assert page.status_code == 403 and SECRET not in page.text

    approve_all(client_for(app, second), db)
    assert _user(db, olga).roles == {Role.MANAGEMENT, Role.OMBUDSPERSON}
    assert _memberships(db, olga) == {"general": False}
    after = portal.submit(description=SECRET + " Again.", excluded_staff_ids=())

    assert _holds(db, olga, after.case_id)
    assert SECRET in olga_client.get(f"/staff/cases/{after.handle}").text
    # What came in before the approval was never sealed to her.
    assert olga_client.get(f"/staff/cases/{before.handle}").status_code == 404


def test_an_account_made_in_the_console_gets_access_only_through_a_second_admin(
    app: Flask, portal: Portal, db: Session, root: StaffUser, console: FlaskClient
) -> None:
    """A sock puppet: one admin makes an admin (and ombudsperson) account, and (should they
    read its mail, or should the password be shown as it once was) logs in as it. It gets
    neither role, so it cannot approve its maker's requests."""
    with app_mailbox(app):
        response = post(
            console,
            "/staff/admin/staff/new",
            {
                "email": "puppet@example.org",
                "name": "Puppet",
                "roles": ["admin", "ombudsperson"],
                "queues": ["general"],
            },
        )
    assert response.status_code == 200
    puppet = (
        fresh(db).scalars(select(StaffUser).where(StaffUser.email == "puppet@example.org")).one()
    )
    assert puppet.roles == set() and _memberships(db, puppet) == {}
    assert {r.change for r in _requests_for(db, puppet)} == {"role", "join_queue"}
    assert all(r.state == RequestState.PENDING.value for r in _requests_for(db, puppet))

    olga = portal.staff("olga", roles=(Role.MANAGEMENT,), queues=())
    post(console, f"/staff/admin/staff/{olga.id}/queues", {"queues": ["general"]})
    [olgas] = _requests_for(db, olga)
    with pytest.raises(access_requests.RequestRefused, match="Only an active admin"):
        access_requests.approve(fresh(db), olgas.id, actor=_user(db, puppet), now=NOW)
    db.rollback()
    assert _memberships(db, olga) == {}


def test_taking_access_away_needs_nobody_else(
    app: Flask, portal: Portal, db: Session, root: StaffUser, console: FlaskClient
) -> None:
    olga = portal.staff("olga", roles=(Role.OMBUDSPERSON, Role.CUSTODIAN), queues=("general",))
    portal.staff("alice")

    post(console, f"/staff/admin/staff/{olga.id}/queues", {"queues": []})
    post(console, f"/staff/admin/staff/{olga.id}/roles", {"roles": ["ombudsperson"]})

    assert _memberships(db, olga) == {} and _user(db, olga).roles == {Role.OMBUDSPERSON}
    assert waiting_request_ids(db) == []
    assert not _holds(db, olga, portal.submit().case_id)


# --- who may decide -----------------------------------------------------------------------------


def test_neither_the_requester_nor_the_target_can_approve(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    third = admin_user(portal, "third")
    post(console, f"/staff/admin/staff/{second.id}/roles", {"roles": ["admin", "ombudsperson"]})
    [request_id] = waiting_request_ids(db)
    second_client = client_for(app, second)

    page = console.get("/staff/admin/staff/requests").text
    item = re.search(rf'<li id="request-{request_id}">(.*?)</li>', page, re.S)
    assert item and 'value="approve"' not in item.group(1) and "Withdraw" in item.group(1)
    target_view = second_client.get("/staff/admin/staff/requests").text
    item = re.search(rf'<li id="request-{request_id}">(.*?)</li>', target_view, re.S)
    assert item and 'value="approve"' not in item.group(1)

    by_requester = decide(console, request_id)
    by_target = decide(second_client, request_id)

    assert (by_requester.status_code, by_target.status_code) == (400, 400)
    assert "You asked for this change: a different admin must approve it." in by_requester.text
    assert "This change is for your own account" in by_target.text
    assert _user(db, second).roles == {Role.ADMIN}
    assert waiting_request_ids(db) == [request_id]

    assert decide(client_for(app, third), request_id).status_code == 302
    assert _user(db, second).roles == {Role.ADMIN, Role.OMBUDSPERSON}
    assert decide(client_for(app, third), request_id).status_code == 400  # decided already


def test_rejected_and_withdrawn_requests_change_nothing(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    olga = portal.staff("olga", roles=(Role.MANAGEMENT,), queues=())
    post(console, f"/staff/admin/staff/{olga.id}/roles", {"roles": ["management", "custodian"]})
    post(console, f"/staff/admin/staff/{olga.id}/queues", {"queues": ["board"]})
    role_request, queue_request = waiting_request_ids(db)

    assert decide(client_for(app, second), role_request, "reject").status_code == 302
    assert decide(console, queue_request, "reject").status_code == 302  # the asker: withdrawn

    states = {r.id: r.state for r in _requests_for(db, olga)}
    assert states == {role_request: "rejected", queue_request: "withdrawn"}
    assert _user(db, olga).roles == {Role.MANAGEMENT} and _memberships(db, olga) == {}
    assert decide(client_for(app, admin_user(portal, "third")), role_request).status_code == 400


def test_a_request_lapses_after_seven_days(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    olga = portal.staff("olga", roles=(Role.MANAGEMENT,), queues=())
    other = portal.staff("other", roles=(Role.MANAGEMENT,), queues=())
    post(console, f"/staff/admin/staff/{olga.id}/queues", {"queues": ["general"]})
    post(console, f"/staff/admin/staff/{other.id}/queues", {"queues": ["general"]})
    first, later = waiting_request_ids(db)
    state = app.extensions["portal"]
    previous = state.clock
    state.clock = lambda: previous() + access_requests.LIFETIME + dt.timedelta(minutes=1)
    approver = client_for(app, second)

    response = decide(approver, first)

    assert response.status_code == 400
    assert "This request has expired" in response.text
    assert _memberships(db, olga) == {}
    [expired] = events(db, Action.STAFF_ACCESS_EXPIRED)
    assert (expired.actor_id, expired.target_staff_id) == (None, olga.id)
    # Whoever opens the list next closes (and audits) the other lapsed request.
    page = approver.get("/staff/admin/staff/requests").text
    assert f'id="request-{later}"' not in page and "Nothing is waiting." in page
    assert [e.target_staff_id for e in events(db, Action.STAFF_ACCESS_EXPIRED)] == [
        olga.id,
        other.id,
    ]
    assert waiting_request_ids(db) == []
    assert _memberships(db, other) == {}


# --- audited -------------------------------------------------------------------------------------


def test_every_request_and_decision_is_in_the_audit_chain(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    olga = portal.staff("olga", roles=(Role.MANAGEMENT,), queues=())
    post(console, f"/staff/admin/staff/{olga.id}/roles", {"roles": ["management", "ombudsperson"]})
    post(
        console,
        f"/staff/admin/staff/{olga.id}/queues",
        {"queues": ["board"], "not_excludable_in": ["board"]},
    )
    role_request, queue_request = waiting_request_ids(db)
    decide(client_for(app, second), role_request)
    decide(client_for(app, second), queue_request, "reject")

    [asked_role, asked_queue] = events(db, Action.STAFF_ACCESS_REQUESTED)
    [approved] = events(db, Action.STAFF_ACCESS_APPROVED)
    [rejected] = events(db, Action.STAFF_ACCESS_REJECTED)
    assert {(e.actor_id, e.target_staff_id) for e in (asked_role, asked_queue)} == {
        (root.id, olga.id)
    }
    assert (approved.actor_id, approved.target_staff_id) == (second.id, olga.id)
    assert (rejected.actor_id, rejected.target_staff_id) == (second.id, olga.id)
    assert detail(asked_role) == {
        "request": role_request,
        "change": "role",
        "role": "ombudsperson",
        "queue": None,
        "excludable": True,
        "requested_by": root.id,
    }
    assert detail(approved) == {**detail(asked_role), "requested_by": root.id}
    assert detail(rejected) == {
        "request": queue_request,
        "change": "join_queue",
        "role": None,
        "queue": "board",
        "excludable": False,
        "requested_by": root.id,
    }
    # Codes and ids only: no name or e-mail address in any event's detail.
    for event in fresh(db).scalars(select(AuditEvent)):
        for person in (root, second, olga):
            assert person.email not in event.detail and person.display_name not in event.detail
    assert audit.verify(db).ok
    assert "Access for a staff member approved" in console.get("/staff/admin/audit").text


# --- shown to the queue's members ---------------------------------------------------------------


def _queue_notice(client: FlaskClient) -> str:
    page = client.get("/staff/").text
    found = re.search(r'<div class="notice notice-info" id="queue-changes">(.*?)</div>', page, re.S)
    return found.group(1) if found else ""


def test_the_queues_members_see_who_is_joining_and_who_let_them_in(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    alice = client_for(app, portal.staff("alice", queues=("general",)))
    henry = client_for(app, portal.staff("henry", queues=("hr",)))
    bob = portal.staff("bob", roles=(Role.MANAGEMENT,), queues=())
    assert _queue_notice(alice) == ""

    post(
        console,
        f"/staff/admin/staff/{bob.id}/queues",
        {"queues": ["general"], "not_excludable_in": ["general"]},
    )

    waiting = _queue_notice(alice)
    assert "Bob joins General ombuds office as a member reporters cannot exclude" in waiting
    assert "asked by Root" in waiting and "waits for a second admin" in waiting
    assert _queue_notice(henry) == ""  # not their queue

    approve_all(client_for(app, second), db)

    done = _queue_notice(alice)
    assert "Bob joins General ombuds office" in done
    assert "asked by Root, approved by Second" in done
    assert _queue_notice(henry) == ""


def test_the_command_line_is_the_break_glass_path_and_is_shown_too(
    app: Flask, portal: Portal, db: Session, root: StaffUser
) -> None:
    alice = client_for(app, portal.staff("alice", queues=("general",)))
    carl = portal.staff("carl", roles=(Role.MANAGEMENT,), queues=())
    runner = app.test_cli_runner()

    result = runner.invoke(args=["staff", "queues", carl.email, "--queue", "general"])

    assert result.exit_code == 0, result.output
    assert _memberships(db, carl) == {"general": True}  # at once: no second admin at a shell
    [event] = events(db, Action.STAFF_QUEUES_CHANGED)
    assert (event.actor_id, event.target_staff_id) == (None, carl.id)
    [noted] = _requests_for(db, carl)
    assert noted.state == RequestState.AT_SERVER.value and noted.requested_by_id is None
    assert "Carl joins General ombuds office: made at the server" in _queue_notice(alice)


def test_an_account_made_at_the_server_is_audited_and_shown(
    app: Flask, portal: Portal, db: Session
) -> None:
    alice = client_for(app, portal.staff("alice", queues=("general",)))

    result = app.test_cli_runner().invoke(
        args=[
            "create-staff",
            "nina@example.org",
            "--role",
            "ombudsperson",
            "--name",
            "Nina",
            "--queue",
            "general",
            "--password-stdin",
        ],
        input="a long enough password for nina\n",
    )

    assert result.exit_code == 0, result.output
    [created] = events(db, Action.STAFF_CREATED)
    assert created.actor_id is None
    assert json.loads(created.detail) == {
        "roles": ["ombudsperson"],
        "queues": ["general"],
        "not_excludable": [],
    }
    assert "Nina joins General ombuds office: made at the server" in _queue_notice(alice)
    assert audit.verify(db).ok


def test_the_pages_need_no_javascript(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
) -> None:
    """Deciding is a plain form post (a button's name and value), no script on the pages."""
    olga = portal.staff("olga", roles=(Role.MANAGEMENT,), queues=())
    post(console, f"/staff/admin/staff/{olga.id}/queues", {"queues": ["hr"]})
    page = client_for(app, second).get("/staff/admin/staff/requests").text
    assert "<script" not in page
    form = re.search(
        r'<form method="post" action="/staff/admin/staff/requests">(.*?)</form>', page, re.S
    )
    assert form and 'name="decision" value="approve"' in form.group(1)
    assert 'name="request_id"' in form.group(1) and 'name="csrf_token"' in form.group(1)


def test_an_account_waiting_for_its_roles_can_set_itself_up_but_sees_no_case(
    app: Flask, portal: Portal, db: Session, root: StaffUser
) -> None:
    """Its only role waits for approval: it may log in, choose a password and set up its second
    factor (account pages), and nothing else."""
    waiting = portal.staff("waiting", roles=(Role.MANAGEMENT,), queues=())
    post(client_for(app, root), f"/staff/admin/staff/{waiting.id}/roles", {"roles": ["custodian"]})
    assert _user(db, waiting).roles == set()
    client = client_for(app, waiting)

    assert client.get("/staff/account").status_code == 200
    assert client.get("/staff/").status_code == 403
    assert client.get("/staff/admin/staff").status_code == 403
    assert client.get("/insights/").status_code == 403


def test_the_demo_accounts_are_made_at_the_server_audited_and_shown(tmp_path: Path) -> None:
    """`make run` (portal init, portal demo): two admins, so the console's four eyes can be
    tried; every demo account is audited like `portal create-staff`."""
    settings = cheap_settings(tmp_path / "instance")
    runner = create_app(settings).test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    app = create_app(settings)  # a new process reads the secrets init created

    result = app.test_cli_runner().invoke(args=["demo"])

    assert result.exit_code == 0, result.output
    assert sum(Role.ADMIN in spec["roles"] for spec in DEMO_STAFF) >= 2
    with app.extensions["portal"].sessions() as session:
        created = session.scalars(
            select(AuditEvent).where(AuditEvent.action == Action.STAFF_CREATED.value)
        ).all()
        assert len(created) == len(DEMO_STAFF) and all(e.actor_id is None for e in created)
        alice = session.scalars(select(StaffUser).where(StaffUser.email.startswith("alice@"))).one()
        shown = access_requests.for_queue_members(session, alice, dt.datetime.now(dt.UTC))
        assert {r.target_name for r in shown} >= {"Alice Chen", "Bob Martin", "Carol Okafor"}
        assert {r.state for r in shown} == {RequestState.AT_SERVER}
        assert audit.verify(session).ok


def test_two_admins_approving_at_once_apply_the_change_once(
    app: Flask,
    portal: Portal,
    db: Session,
    root: StaffUser,
    second: StaffUser,
    console: FlaskClient,
    secrets: InstanceSecrets,
) -> None:
    third = admin_user(portal, "third")
    olga = portal.staff("olga", roles=(Role.MANAGEMENT,), queues=())
    post(console, f"/staff/admin/staff/{olga.id}/roles", {"roles": ["management", "custodian"]})
    [request_id] = waiting_request_ids(db)
    # Two requests served at once: two independent sessions (two connections).
    sessions = make_sessionmaker(app.extensions["portal"].engine, secrets.audit_key)
    with sessions() as late, sessions() as first:
        # The late admin's request has read the request while it was still waiting (and holds
        # it, as the approval does between its checks and its write) ...
        seen = late.get_one(AccessRequest, request_id)
        assert seen.state == RequestState.PENDING.value
        late_admin = late.get_one(StaffUser, third.id)
        access_requests.approve(
            first, request_id, actor=first.get_one(StaffUser, second.id), now=NOW
        )
        first.commit()
        # ... and decides after the first admin's approval was committed.
        with pytest.raises(access_requests.RequestRefused, match="already been decided"):
            access_requests.approve(late, request_id, actor=late_admin, now=NOW)
        late.rollback()
    assert _user(db, olga).roles == {Role.MANAGEMENT, Role.CUSTODIAN}
    assert len(events(db, Action.STAFF_ACCESS_APPROVED)) == 1
