"""`portal audit ...`: check the audit chain and append the daily reporter-event counts."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.services import audit
from portal.web.state import PortalState, utc_now


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    return value


def _anchor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise click.BadParameter("give the anchor as SEQ:HASH, as `portal audit verify` prints it")
    return int(seq), digest


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@click.option(
    "--expect",
    metavar="SEQ:HASH",
    help="An anchor printed by an earlier run; it must still be in the chain.",
)
@with_appcontext
def verify_command(expect: str | None) -> None:
    """Check every link of the chain; report the first broken one (exit status 1)."""
    anchor = _anchor(expect)
    if _state().secrets is None:
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    with _state().sessions() as session:
        result = audit.verify(session, anchor)
    if result.ok:
        click.echo(f"audit chain intact: {result.checked} events")
        click.echo(f"anchor (note it down elsewhere): {result.head_seq}:{result.head_hash}")
        return
    click.secho(
        f"audit chain BROKEN at event {result.broken_seq}: {result.reason}"
        f" ({result.checked} events before it verified)",
        fg="red",
        err=True,
    )
    raise SystemExit(1)


@audit_group.command("roll-up")
@with_appcontext
def roll_up_command() -> None:
    """Append the reporter-event counts of every finished day not yet in the chain (run daily;
    staff activity also triggers it)."""
    if _state().secrets is None:
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    with _state().sessions() as session:
        added = audit.roll_up_reporter_days(session, utc_now().date())
        session.commit()
    click.echo(f"added {added} day(s) of reporter-event counts to the audit chain")
