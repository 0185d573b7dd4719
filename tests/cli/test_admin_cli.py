"""`portal staff ...`: the console's staff administration from the command line, through the
same services, audited with no actor (the operator at the server)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Queue, QueueMembership, Role, StaffUser
from portal.services.audit.chain import Action
from tests.support.admin_helpers import admin_user, detail, events, fresh, snapshot
from tests.support.factories import Portal


def _run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args))
    return result.exit_code, result.output


def test_list_shows_every_account(app: Flask, portal: Portal, db: Session) -> None:
    admin_user(portal)
    olga = portal.staff("olga", queues=("general", "board"))
    board = db.scalars(select(Queue).where(Queue.slug == "board")).one()
    db.get_one(QueueMembership, (board.id, olga.id)).excludable = False
    olga.totp_sealed = None  # not enrolled yet
    db.commit()

    code, output = _run(app, "staff", "list")

    assert code == 0
    lines = {line.split()[0]: line for line in output.splitlines()}
    assert set(lines) == {"root@example.org", "olga@example.org"}
    assert "admin" in lines["root@example.org"] and "active" in lines["root@example.org"]
    assert "board!,general" in lines["olga@example.org"]
    assert "no-2fa" in lines["olga@example.org"]


def test_disable_enable_roles_and_queues(app: Flask, portal: Portal, db: Session) -> None:
    admin_user(portal)
    olga = portal.staff("olga")

    results = [
        _run(app, "staff", "disable", "OLGA@example.org"),
        _run(app, "staff", "enable", "olga@example.org"),
        _run(app, "staff", "roles", "olga@example.org", "--role", "custodian"),
        _run(
            app,
            "staff",
            "queues",
            "olga@example.org",
            "--queue",
            "hr",
            "--queue",
            "board",
            "--not-excludable-in",
            "board",
        ),
        _run(app, "staff", "enable", "olga@example.org"),
    ]

    assert [code for code, _ in results] == [0, 0, 0, 0, 0]
    assert results[0][1] == "OLGA@example.org: disabled\n"
    assert results[4][1] == "olga@example.org: nothing changed\n"
    user = fresh(db).get_one(StaffUser, olga.id)
    assert user.active and user.roles == {Role.CUSTODIAN}
    memberships = {
        slug: excludable
        for slug, excludable in db.execute(
            select(Queue.slug, QueueMembership.excludable)
            .join(Queue, Queue.id == QueueMembership.queue_id)
            .where(QueueMembership.staff_id == olga.id)
        )
    }
    assert memberships == {"hr": True, "board": False}
    for action in (
        Action.STAFF_DISABLED,
        Action.STAFF_ENABLED,
        Action.STAFF_ROLES_CHANGED,
        Action.STAFF_QUEUES_CHANGED,
    ):
        [event] = events(db, action)
        assert (event.actor_id, event.target_staff_id) == (None, olga.id)
    assert detail(events(db, Action.STAFF_QUEUES_CHANGED)[0])["not_excludable"] == ["board"]


def test_refusals_change_nothing(app: Flask, portal: Portal, db: Session) -> None:
    admin_user(portal)
    portal.staff("olga")
    before = snapshot(db)

    refused = [
        _run(app, "staff", "disable", "root@example.org"),
        _run(app, "staff", "roles", "root@example.org", "--role", "management"),
        _run(app, "staff", "disable", "nobody@example.org"),
        _run(app, "staff", "queues", "olga@example.org", "--queue", "nowhere"),
        _run(app, "staff", "queues", "olga@example.org", "--not-excludable-in", "hr"),
    ]

    assert all(code != 0 for code, _ in refused)
    assert "last active admin" in refused[0][1] and "last active admin" in refused[1][1]
    assert "no staff account nobody@example.org" in refused[2][1]
    assert "no queue nowhere" in refused[3][1]
    assert "name each of them with --queue too" in refused[4][1]
    assert snapshot(db) == before
