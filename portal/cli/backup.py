"""`portal backup FILE` and `portal restore FILE`: encrypted backups of the database and the
instance secrets (``portal/ops/backup/``). The passphrase comes from a prompt or a file (``-``
for stdin), never from the command line, where the process list and shell history would keep
it."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.clock import utc_now
from portal.db import make_sessionmaker
from portal.ops import migrate
from portal.ops.backup import errors as backup_errors
from portal.ops.backup import make, restore

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState

_PASSPHRASE_FILE = click.option(
    "--passphrase-file",
    metavar="PATH",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read the passphrase from the first line of PATH ('-': stdin) instead of a prompt.",
)


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    return value


def _read_passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is None:
        value: str = click.prompt(
            "Backup passphrase", hide_input=True, confirmation_prompt=confirm, default=""
        )
        return value
    if str(path) == "-":
        return sys.stdin.readline().rstrip("\r\n")
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            click.secho(
                f"warning: {path} can be read by other users; make it mode 0600",
                fg="yellow",
                err=True,
            )
        with path.open() as fh:
            return fh.readline().rstrip("\r\n")
    except OSError as error:
        raise click.ClickException(f"cannot read the passphrase file: {error.strerror}") from error


@click.command("backup")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_PASSPHRASE_FILE
def backup_command(file: Path, passphrase_file: Path | None) -> None:
    """Write an encrypted backup of the database and the instance secrets to FILE."""
    state = _state()
    if state.secrets is None:
        raise click.ClickException("the instance secrets are missing: run `portal init` first")
    passphrase = _read_passphrase(passphrase_file, confirm=True)
    with state.sessions() as session:
        try:
            made = make.create_backup(
                session, state.secrets, file, passphrase, state.settings.kdf_cost, utc_now()
            )
        except backup_errors.BackupError as error:
            raise click.ClickException(str(error)) from error
        session.commit()
    click.echo(
        f"wrote {file} ({made.size} bytes): the {made.database} database at migration"
        f" {made.revision} and the instance secrets, encrypted with the passphrase"
    )
    click.echo("Keep the passphrase apart from the file; without it the backup cannot be read.")
    if made.audit_anchor is not None:
        click.echo(f"audit anchor of this backup: {made.audit_anchor}")
    else:
        click.secho(
            "warning: the audit log's head does not match its seal; run `portal audit verify`",
            fg="yellow",
            err=True,
        )


@click.command("restore")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_PASSPHRASE_FILE
@click.option(
    "--force",
    is_flag=True,
    help="Replace a database that holds tables and instance secrets that exist.",
)
def restore_command(file: Path, passphrase_file: Path | None, force: bool) -> None:
    """Restore the database and the instance secrets from the encrypted backup FILE, into an
    empty database and instance folder (or, with --force, over what is there)."""
    state = _state()
    settings = state.settings
    if not force:
        found = restore.target_contents(state.engine, settings.instance_path)
        if found:  # before asking for the passphrase
            raise click.ClickException(
                "the restore target is not empty: " + "; ".join(found) + " (restore into a new"
                " database and instance folder, or use --force to replace them)"
            )
    passphrase = _read_passphrase(passphrase_file, confirm=False)
    try:
        restored = restore.restore_backup(
            state.engine, settings.instance_path, file, passphrase, force=force
        )
    except backup_errors.BackupError as error:
        raise click.ClickException(f"{error}; nothing was restored") from error
    # The restored chain is keyed with the restored audit key, not whatever this process loaded.
    sessions = make_sessionmaker(state.engine, restored.secrets.audit_key)
    with sessions() as session:
        restore.record_restore(session, restored, utc_now())
        session.commit()
    click.echo(
        f"restored the {restored.database} database and the instance secrets from a backup made"
        f" {restored.created_at}"
    )
    head = migrate.head_revision(state.engine)
    if restored.revision == head:
        click.echo(f"database at migration {restored.revision}, the latest")
    else:
        click.echo(
            f"database at migration {restored.revision}; this portal's latest is {head}:"
            " run `portal init` to migrate it"
        )
    if restored.audit_anchor is not None:
        click.echo(
            f"the backup's audit anchor: {restored.audit_anchor} (events after it, up to the"
            " restore, are not in the restored log)"
        )
    click.echo("Restart the portal's servers so that they read the restored secrets.")
