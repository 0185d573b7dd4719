"""`portal audit ...`: check the audit chain and append the daily reporter-event counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.cli.notify import BabelTexts, report_deliveries
from portal.clock import utc_now
from portal.services.audit import chain as audit
from portal.services.notifications import mail, notify

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    return value


def _anchor(text: str | None) -> audit.Anchor | None:
    if not text:
        return None
    try:
        return audit.parse_anchor(text)
    except audit.AnchorMalformed:
        raise click.BadParameter(
            "give the anchor as SEQ:HASH:DAY:MAC (or SEQ:HASH), as the portal printed it"
        ) from None


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@click.option(
    "--anchor",
    "anchor_text",
    metavar="SEQ:HASH:DAY:MAC",
    help="An anchor published earlier (admins' digest, a backup, an earlier run); the chain"
    " must still hold it, which catches a database rolled back to an older copy.",
)
@click.option("--expect", metavar="SEQ:HASH", help="The same as --anchor (the older name).")
@with_appcontext
def verify_command(anchor_text: str | None, expect: str | None) -> None:
    """Check every link of the chain up to its sealed head; report the first broken one, or
    a truncated log (exit status 1)."""
    if anchor_text and expect:
        raise click.UsageError("give --anchor or --expect, not both")
    anchor = _anchor(anchor_text or expect)
    if _state().secrets is None:
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    with _state().sessions() as session:
        result = audit.verify(session, anchor)
    if result.ok:
        click.echo(f"audit chain intact: {result.checked} events")
        if anchor is not None:
            click.echo(f"the anchor's event {anchor.seq} is in the chain")
        click.echo(f"anchor (note it down elsewhere): {result.anchor}")
        return
    what = "TRUNCATED" if result.truncated else "BROKEN"
    click.secho(
        f"audit chain {what} at event {result.broken_seq}: {result.reason}"
        f" ({result.checked} events before it verified)",
        fg="red",
        err=True,
    )
    raise SystemExit(1)


@audit_group.command("roll-up")
@click.option(
    "--force-digest", is_flag=True, help="Send the admins' anchor digest even if it went out today."
)
@with_appcontext
def roll_up_command(force_digest: bool) -> None:
    """Append the reporter-event counts of every finished day not yet in the chain (run daily;
    staff activity also triggers it), then mail the admins the log's anchor, once per UTC day."""
    state = _state()
    if state.secrets is None:
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    mailer = mail.mailer_for(state.settings, click.echo)
    with state.sessions() as session:
        added = audit.roll_up_reporter_days(session, utc_now().date())
        # Committed first: a digest that cannot be sent never loses the day counts.
        session.commit()
        run = notify.send_audit_digest(
            session, state.settings, mailer, state.clock(), BabelTexts(), force=force_digest
        )
        session.commit()
    click.echo(f"added {added} day(s) of reporter-event counts to the audit chain")
    if not run.due:
        click.echo("the admins' anchor digest went out today already")
        return
    report_deliveries(run, "admins' anchor digest", mailer)
