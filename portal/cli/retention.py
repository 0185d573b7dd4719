"""`portal purge [--dry-run]`: the retention job (services/retention.py). Meant for cron, daily
(see docs/operations.md): it warns the holders of closed cases whose retention period ends within
the warning period, and purges those whose period and warning have both run out. Cases on legal
hold are neither warned about nor purged; the run says how many it kept past their period."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import Engine, text

from portal.cli.notify import BabelTexts, mail_locale, portal_state
from portal.services.casework import retention
from portal.services.notifications import mail


def _counts(title: str, pairs: list[tuple[str, int]]) -> None:
    click.echo(f"  {title}:")
    for code, count in pairs:
        click.echo(f"    {code:<24} {count}")


def compact(engine: Engine) -> str:
    """Clear what the purge left behind in the database files, as far as the database can: on
    PostgreSQL a plain VACUUM of the purged tables (deleted tuples stay in the table files
    until then); on SQLite, whose connections already overwrite deleted content
    (secure_delete), a checkpoint that empties the write-ahead log of older page images."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in retention.PURGED_TABLES:
                conn.execute(text(f"VACUUM {table}"))
        return f"VACUUM {', '.join(retention.PURGED_TABLES)}"
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return "PRAGMA wal_checkpoint(TRUNCATE)"
    return "nothing (unknown database)"


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Show what would be warned about and deleted.")
@click.option(
    "--no-vacuum",
    is_flag=True,
    help="Do not VACUUM (PostgreSQL) or checkpoint (SQLite) after deleting.",
)
@with_appcontext
def purge_command(dry_run: bool, no_vacuum: bool) -> None:
    """Warn about closed cases near the end of their retention period, and delete for good
    those past it (and warned about): content, messages, notes, attachments and every key.
    Only the counts the insights already use stay. Cases on legal hold are kept. One audit
    event, counts only."""
    state = portal_state()
    now = state.clock()
    mailer = mail.mailer_for(state.settings, click.echo)
    with state.sessions() as session, mail_locale():
        result = retention.run(session, state.settings, mailer, now, BabelTexts(), dry_run=dry_run)
        if not dry_run:
            session.commit()
    prefix = "dry run: nothing is sent and nothing is changed; would " if dry_run else ""
    click.echo(
        f"{prefix}warn about {result.warned} closed case(s) "
        f"({len(result.notices)} message(s)); {'would ' if dry_run else ''}"
        f"delete {result.purged} case(s); keep {result.held} case(s) past their period "
        "on legal hold"
    )
    if result.purged:
        _counts("by outcome", retention.summary(result.by_outcome))
        _counts("by queue", retention.summary(result.by_queue))
    for delivery in result.failed:
        click.secho(f"could not send to {delivery.recipient}: {delivery.error}", fg="red", err=True)
    if not dry_run and result.purged and not no_vacuum:
        click.echo(f"then: {compact(state.engine)}")
    if result.failed:
        raise SystemExit(1)
