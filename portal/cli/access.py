"""`portal membership ...`: list queue memberships and mark members reporters cannot exclude."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.clock import utc_now
from portal.errors import AccessRefusal, AccessRefused
from portal.models import Queue, QueueMembership, StaffUser
from portal.services.accounts import accounts as staff
from portal.services.casework import access

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    return value


@click.group("membership")
def membership_group() -> None:
    """Queue memberships, and which members reporters may exclude."""


@membership_group.command("list")
@click.argument("queue", required=False)
@with_appcontext
def list_command(queue: str | None) -> None:
    """Every membership (of QUEUE only, if given), with whether reporters may exclude it."""
    with _state().sessions() as session:
        stmt = (
            select(Queue.slug, StaffUser.email, QueueMembership.excludable)
            .join(QueueMembership, QueueMembership.queue_id == Queue.id)
            .join(StaffUser, StaffUser.id == QueueMembership.staff_id)
            .order_by(Queue.slug, StaffUser.email)
        )
        if queue is not None:
            if session.scalar(select(Queue.id).where(Queue.slug == queue)) is None:
                raise click.ClickException(f"no queue {queue!r}")
            stmt = stmt.where(Queue.slug == queue)
        rows = session.execute(stmt).all()
    for slug, email, excludable in rows:
        flag = "excludable" if excludable else "NOT excludable"
        click.echo(f"{slug:<16} {email:<40} {flag}")
    if not rows:
        click.echo("no memberships")


@membership_group.command("excludable")
@click.argument("email")
@click.argument("queue")
@click.argument("answer", type=click.Choice(["yes", "no"]))
@with_appcontext
def excludable_command(email: str, queue: str, answer: str) -> None:
    """Whether reporters may exclude EMAIL from QUEUE (yes or no). Applies to concerns received,
    and grants and transfers made, from now on."""
    if _state().secrets is None:  # the change is audited, under the instance's audit key
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    with _state().sessions() as session:
        member = session.scalar(
            select(StaffUser).where(StaffUser.email == staff.normalise_email(email))
        )
        if member is None:
            raise click.ClickException(f"no staff account {email!r}")
        try:
            changed = access.set_excludable(session, member, queue, answer == "yes", utc_now())
        except AccessRefused as error:
            if error.reason is AccessRefusal.UNKNOWN_QUEUE:
                raise click.ClickException(f"no queue {queue!r}") from error
            raise click.ClickException(f"{member.email} is not a member of {queue!r}") from error
        session.commit()
    what = "may" if answer == "yes" else "may not"
    if changed:
        click.echo(f"reporters {what} exclude {member.email} from {queue} from now on")
    else:
        click.echo(f"unchanged: reporters already {what} exclude {member.email} from {queue}")
