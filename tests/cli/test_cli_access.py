"""`portal create-staff --not-excludable-in` and `portal membership ...`."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from portal.app import create_app
from portal.models import AuditEvent, Queue, QueueMembership, StaffUser
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from tests.support.factories import cheap_settings

PASSWORD_LINE = "a very long password\n"


def _initialised(tmp_path: Path) -> Flask:
    settings = cheap_settings(tmp_path / "instance")
    result = create_app(settings).test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    return create_app(settings)  # a new process would read the secrets init created


def _run(app: Flask, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args), input=stdin)
    return result.exit_code, result.output


def _flags(app: Flask, email: str) -> dict[str, bool]:
    with app.extensions["portal"].sessions() as session:
        rows = session.execute(
            select(Queue.slug, QueueMembership.excludable)
            .join(QueueMembership, QueueMembership.queue_id == Queue.id)
            .join(StaffUser, StaffUser.id == QueueMembership.staff_id)
            .where(StaffUser.email == email)
        )
        return {slug: excludable for slug, excludable in rows}


def _create_chair(app: Flask) -> None:
    code, output = _run(
        app,
        "create-staff",
        "chair@example.org",
        "--role",
        "ombudsperson",
        "--queue",
        "general",
        "--not-excludable-in",
        "board",
        "--password-stdin",
        stdin=PASSWORD_LINE,
    )
    assert code == 0, output


def test_create_staff_not_excludable_in_joins_the_queue_as_such(tmp_path: Path) -> None:
    app = _initialised(tmp_path)

    _create_chair(app)

    assert _flags(app, "chair@example.org") == {"general": True, "board": False}
    code, output = _run(app, "membership", "list", "board")
    assert code == 0 and "chair@example.org" in output and "NOT excludable" in output
    code, output = _run(app, "membership", "list", "nope")
    assert code != 0 and "no queue 'nope'" in output


def test_create_staff_refuses_an_unknown_not_excludable_queue(tmp_path: Path) -> None:
    app = _initialised(tmp_path)

    code, output = _run(
        app,
        "create-staff",
        "x@example.org",
        "--role",
        "ombudsperson",
        "--not-excludable-in",
        "nope",
        "--password-stdin",
        stdin=PASSWORD_LINE,
    )

    assert code != 0 and "nope" in output
    with app.extensions["portal"].sessions() as session:
        assert session.scalars(select(StaffUser)).all() == []


def test_membership_excludable_flips_the_flag_and_audits_it(tmp_path: Path) -> None:
    app = _initialised(tmp_path)
    _create_chair(app)

    code, output = _run(app, "membership", "excludable", "Chair@example.org", "board", "yes")
    assert code == 0 and "reporters may exclude chair@example.org from board" in output
    code, output = _run(app, "membership", "excludable", "chair@example.org", "general", "no")
    assert code == 0 and "may not exclude" in output
    code, output = _run(app, "membership", "excludable", "chair@example.org", "general", "no")
    assert code == 0 and "unchanged" in output

    assert _flags(app, "chair@example.org") == {"general": False, "board": True}
    with app.extensions["portal"].sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == Action.STAFF_QUEUES_CHANGED.value)
        ).all()
        assert [audit.detail_of(e) for e in events] == [
            {"queue": "board", "excludable": True},
            {"queue": "general", "excludable": False},
        ]
        assert all(e.actor_id is None for e in events)  # an operator at the command line
        assert audit.verify(session).ok


def test_membership_excludable_explains_what_is_wrong(tmp_path: Path) -> None:
    app = _initialised(tmp_path)
    _create_chair(app)

    for args, message in [
        (("nobody@example.org", "board", "no"), "no staff account"),
        (("chair@example.org", "nope", "no"), "no queue 'nope'"),
        (("chair@example.org", "hr", "no"), "is not a member of 'hr'"),
        (("chair@example.org", "hr", "maybe"), "Invalid value"),
    ]:
        code, output = _run(app, "membership", "excludable", *args)
        assert code != 0 and message in output, (args, output)
