"""`portal notify` and `portal sla-check`: batched new-case notices and deadline reminders.

Both are meant for cron (see docs/operations.md): `portal notify` may run as often as every few
minutes, it sends at most one batch per `notify_interval_hours`; `portal sla-check` sends
reminders at most once per UTC day unless --force.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import click
import flask_babel
from flask import current_app
from flask.cli import with_appcontext

from portal.i18n import labels as i18n
from portal.services.casework.deadlines import DeadlineKind, DeadlineState
from portal.services.notifications import mail, notify
from portal.services.notifications.notify import Notice, RunResult

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState

KIND_LABELS = {DeadlineKind.ACKNOWLEDGE: "acknowledgement", DeadlineKind.FEEDBACK: "feedback"}
STATE_LABELS = {DeadlineState.DUE_SOON: "due soon", DeadlineState.OVERDUE: "OVERDUE"}


class BabelTexts:
    """The mails' wording through Flask-Babel (the application's locale)."""

    def gettext(self, string: str, **variables: Any) -> str:
        return str(flask_babel.gettext(string, **variables))

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str:
        return str(flask_babel.ngettext(singular, plural, num, **variables))


def mail_locale() -> AbstractContextManager[None]:
    """Configured labels (queues, categories, units) in the language of the mails' wording."""
    return i18n.bind_locale_source(lambda: str(flask_babel.get_locale() or i18n.DEFAULT_LOCALE))


def portal_state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    if value.secrets is None:
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    return value


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def show_notices(notices: list[Notice]) -> None:
    for notice in notices:
        click.echo(mail.render(notice.message))


def report_deliveries(run: RunResult, what: str, mailer: mail.Mailer) -> None:
    """Say what was handed over; name each failure on stderr; exit 1 if any failed (after the
    caller committed the rest, so a failure never loses the others)."""
    click.echo(f"{what}: {len(run.sent)} sent, {len(run.failed)} failed ({mailer.description})")
    for delivery in run.failed:
        click.secho(f"could not send to {delivery.recipient}: {delivery.error}", fg="red", err=True)
    if run.failed:
        raise SystemExit(1)


@click.command("notify")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show whether a batch is due and what it would send; change nothing.",
)
@with_appcontext
def notify_command(dry_run: bool) -> None:
    """Send the batched new-case notices (counts only), at most once per notify_interval_hours.

    Safe to run from cron every few minutes: inside the interval it does nothing."""
    state = portal_state()
    settings = state.settings
    now = state.clock()
    mailer = mail.mailer_for(settings, click.echo)
    with state.sessions() as session:
        run = notify.notify_new_cases(session, settings, mailer, now, BabelTexts(), dry_run=dry_run)
        if not dry_run:
            session.commit()
    next_at = notify.next_batch_at(settings, run.last_run_at)
    if dry_run:
        click.echo("dry run: nothing is sent and nothing is changed")
        click.echo(f"last batch: {_when(run.last_run_at)}")
        if run.due:
            click.echo(f"a batch is due now; it would send {len(run.notices)} message(s):")
        else:
            click.echo(
                f"no batch is due before {_when(next_at)}; that batch would now send"
                f" {len(run.notices)} message(s):"
            )
        show_notices(run.notices)
        return
    if not run.due:
        click.echo(
            f"last batch {_when(run.last_run_at)}; the next is not due before {_when(next_at)}:"
            " nothing sent"
        )
        return
    report_deliveries(run, "new-case notices", mailer)


@click.command("sla-check")
@click.option("--force", is_flag=True, help="Send the reminders even if they went out today.")
@click.option(
    "--dry-run", is_flag=True, help="List the deadlines and show the reminders; change nothing."
)
@with_appcontext
def sla_check_command(force: bool, dry_run: bool) -> None:
    """List open cases whose deadline is due soon or overdue, per queue, and remind the
    ombudspersons who hold them (counts only), at most once per UTC day."""
    state = portal_state()
    settings = state.settings
    now = state.clock()
    mailer = mail.mailer_for(settings, click.echo)
    with state.sessions() as session, mail_locale():
        # The listing first, so that in print mode the reminders follow it.
        listing = notify.due_deadlines(session, now.astimezone(dt.UTC).date())
        _list(listing, now)
        run = notify.remind_deadlines(
            session,
            settings,
            mailer,
            now,
            BabelTexts(),
            force=force,
            dry_run=dry_run,
            listing=listing,
        )
        if not dry_run:
            session.commit()
    if dry_run:
        click.echo("dry run: nothing is sent and nothing is changed")
    if not run.due:
        click.echo(
            f"reminders already sent today ({_when(run.last_run_at)}); use --force to send them"
            " again"
        )
        return
    if dry_run:
        click.echo(f"it would send {len(run.notices)} reminder(s):")
        show_notices(run.notices)
        return
    report_deliveries(run, "deadline reminders", mailer)


def _list(listing: list[notify.DueDeadline], now: dt.datetime) -> None:
    today = now.astimezone(dt.UTC).date()
    if not listing:
        click.echo(f"no open case has a deadline due soon or overdue ({today.isoformat()})")
        return
    click.echo(f"deadlines due soon or overdue ({today.isoformat()}):")
    queue = None
    for item in listing:
        if item.queue_slug != queue:
            queue = item.queue_slug
            click.echo(f"{item.queue_name} ({item.queue_slug})")
        line = (
            f"  {item.handle}  {KIND_LABELS[item.kind]:<15}  due {item.due_on.isoformat()}"
            f"  {STATE_LABELS[item.state]}"
        )
        if item.holders == 0:
            line += "  (no active ombudsperson holds this case: nobody is reminded)"
        click.echo(line)
