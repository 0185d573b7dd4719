"""`portal insights refresh` and `portal insights signals`: the management figures and the
systemic-signal alerts. Both are meant for cron, daily (see docs/operations.md)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext

from portal.cli.notify import (
    BabelTexts,
    mail_locale,
    portal_state,
    report_deliveries,
    show_notices,
)
from portal.services.audit import chain as audit
from portal.services.audit.chain import Action
from portal.services.insights import figures as insights
from portal.services.insights import signals
from portal.services.insights import store as insights_store
from portal.services.notifications import mail

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState


def _release_key(state: PortalState) -> bytes:
    if state.secrets is None:
        raise click.ClickException(
            "the instance secrets are missing: run `portal init` (the insights need the key"
            " that chooses which counts are hidden)"
        )
    return insights.release_key(state.secrets.secret_key)


@click.group("insights")
def insights_group() -> None:
    """Management insights: compute the published figures; raise systemic-signal alerts."""


@insights_group.command("refresh")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Compute as if on this day (default: today, UTC). Figures are as of the 1st.",
)
@with_appcontext
def refresh_command(today: dt.datetime | None) -> None:
    """Compute the figures of every quarter that has ended and has none yet, and bring the
    progress figures (outcomes, deadlines) up to the first of this month. Idempotent."""
    state = portal_state()
    now = state.clock()
    day = today.date() if today is not None else now.astimezone(dt.UTC).date()
    with state.sessions() as session:
        report = insights_store.refresh(session, day, _release_key(state))
        if report.computed:
            audit.record(
                session,
                Action.INSIGHTS_REFRESHED,
                now,
                as_of=report.as_of.isoformat(),
                releases=len(report.computed),
            )
        session.commit()
    if not report.computed:
        click.echo(f"insight figures are up to date (as of {report.as_of.isoformat()})")
        return
    click.echo(f"computed {len(report.computed)} release(s) as of {report.as_of.isoformat()}:")
    for item in report.computed:
        click.echo(f"  {item}")


@insights_group.command("signals")
@click.option("--dry-run", is_flag=True, help="Show the alerts that would be sent; change nothing.")
@with_appcontext
def signals_command(dry_run: bool) -> None:
    """Alert queues to several concerns about one category in one site or department this
    quarter (counts only, each alert once)."""
    state = portal_state()
    settings = state.settings
    now = state.clock()
    mailer = mail.mailer_for(settings, click.echo)
    with state.sessions() as session, mail_locale():
        run = signals.raise_alerts(session, settings, mailer, now, BabelTexts(), dry_run=dry_run)
        if not dry_run:
            session.commit()
    if dry_run:
        click.echo(f"dry run: nothing is sent and nothing is changed; {len(run.notices)} alert(s):")
        show_notices(run.notices)
        return
    if not run.notices:
        click.echo("no new systemic signal")
        return
    report_deliveries(run, "signal alerts", mailer)
