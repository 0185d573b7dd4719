"""`portal staff ...`: the staff administration of the console, from the command line. Each
command calls the same service as the console and is audited the same way (with no actor: the
operator at the server).

This is the break-glass path of the four eyes (``services/access_requests.py``): a role or a
queue that gives access applies at once, with no second admin, because whoever runs these
commands already holds the database and the instance secrets. What it gives is recorded so the
queue's members see it, like a change another admin approved.

portal staff list
portal staff disable EMAIL | enable EMAIL
portal staff roles EMAIL --role ROLE [--role ROLE ...]
portal staff queues EMAIL [--queue SLUG ...] [--not-excludable-in SLUG ...]

New accounts: `portal create-staff`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from portal.clock import utc_now
from portal.errors import InvalidInput, UnknownQueue
from portal.models import Role, StaffUser
from portal.services.accounts import administration as admin

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    if value.secrets is None:
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    return value


def _change(email: str, change: Callable[[Session, StaffUser], object], done: str) -> None:
    with _state().sessions() as session:
        try:
            user = admin.user_by_email(session, email)
            changed = bool(change(session, user))
        except admin.UnknownStaff as error:
            raise click.ClickException(f"no staff account {email}") from error
        except UnknownQueue as error:
            raise click.ClickException(f"no queue {error}") from error
        except InvalidInput as error:
            raise click.ClickException(error.message) from error
        session.commit()
    click.echo(f"{email}: {done}" if changed else f"{email}: nothing changed")


@click.group("staff")
def staff_group() -> None:
    """Staff accounts: list, disable, enable, roles, queue memberships."""


@staff_group.command("list")
@with_appcontext
def list_command() -> None:
    """Every account with its roles, queues (! = cannot be excluded), state and second factor."""
    with _state().sessions() as session:
        rows = admin.list_staff(session)
    for row in rows:
        queues = ",".join(m.slug + ("" if m.excludable else "!") for m in row.memberships) or "-"
        click.echo(
            f"{row.email:<32} {','.join(row.roles):<26} {queues:<24}"
            f" {'active' if row.active else 'DISABLED':<8}"
            f" {'2fa' if row.enrolled else 'no-2fa'}"
        )


@staff_group.command("disable")
@click.argument("email")
@with_appcontext
def disable_command(email: str) -> None:
    """Disable an account: its sessions end; it cannot log in and gets no new cases."""
    _change(
        email,
        lambda s, u: admin.set_active(s, u, False, actor=None, now=utc_now()),
        "disabled",
    )


@staff_group.command("enable")
@click.argument("email")
@with_appcontext
def enable_command(email: str) -> None:
    """Enable a disabled account again."""
    _change(email, lambda s, u: admin.set_active(s, u, True, actor=None, now=utc_now()), "enabled")


@staff_group.command("roles")
@click.argument("email")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="A role the account has afterwards; repeat for several.",
)
@with_appcontext
def roles_command(email: str, roles: tuple[str, ...]) -> None:
    """Set the roles of an account (the last active admin keeps theirs)."""
    _change(
        email,
        lambda s, u: admin.set_roles(s, u, [Role(r) for r in roles], actor=None, now=utc_now()),
        f"roles now {', '.join(sorted(set(roles)))}",
    )


@staff_group.command("queues")
@click.argument("email")
@click.option("--queue", "queues", multiple=True, help="A queue slug; repeat for several.")
@click.option(
    "--not-excludable-in",
    "fixed",
    multiple=True,
    help="One of those queues where reporters cannot exclude this member; repeatable.",
)
@with_appcontext
def queues_command(email: str, queues: tuple[str, ...], fixed: tuple[str, ...]) -> None:
    """Set the queue memberships of an account (none given: leaves every queue)."""
    if set(fixed) - set(queues):
        raise click.BadParameter(
            "name each of them with --queue too", param_hint="--not-excludable-in"
        )
    memberships = {slug: slug not in fixed for slug in queues}
    _change(
        email,
        lambda s, u: admin.set_queues(s, u, memberships, actor=None, now=utc_now()),
        f"queues now {', '.join(sorted(queues)) or 'none'}",
    )
