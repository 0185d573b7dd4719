"""The ``portal`` command (also ``flask --app portal ...``). It calls the same services as the web.

portal init                      create secrets, migrate the database, load the taxonomy
portal create-staff EMAIL ...    add a staff user and print their recovery key once
portal load-taxonomy [FILE]      (re)load queues, categories, units and routing rules
portal membership ...            who reporters may exclude from which queue
portal taxonomy export|import    the configuration as code (see cli_taxonomy.py)
portal staff list|disable|...    staff administration (see cli_staff.py)
portal demo                      demo staff (enrolled, TOTP secrets printed) and demo cases
portal totp SECRET               the current second-factor code for a secret (reads no database)
portal reset-password EMAIL      temporary password; keeps access with --recovery-key
portal serve                     serve with gunicorn
portal notify / sla-check        batched new-case notices, deadline reminders (cli_notify.py)
portal doctor [--json] ...       check the deployment and print what to fix (cli_doctor.py)
portal backup / restore FILE     encrypted backups of the database and secrets (cli_backup.py)
portal purge [--dry-run]         retention: warn about, then delete, long-closed cases
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from portal.clock import utc_now
from portal.db import AUDIT_KEY
from portal.errors import InvalidInput, PortalError
from portal.instance import SECRET_FILES, SecretsMissing, ensure_secrets, load_secrets
from portal.models import AuditEvent, Case, Role
from portal.ops import demo, demo_history, migrate
from portal.services.accounts import accounts as staff
from portal.services.accounts import administration as admin
from portal.services.configuration import taxonomy
from portal.services.reporting import routing

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    return value


def _session() -> Session:
    return _state().sessions()


def _warn_if_unstaffed(session: Session) -> None:
    if not routing.channel_open(session):
        click.secho(
            "warning: no ombudsperson sits in any queue, so the portal cannot accept concerns yet;"
            " add one with `portal create-staff EMAIL --role ombudsperson --queue general`",
            fg="yellow",
            err=True,
        )
    elif not routing.fallback_staffed(session):
        click.secho(
            "warning: the fallback queue has no ombudsperson; concerns whose queue is empty (or"
            " fully excluded by the reporter) cannot be accepted",
            fg="yellow",
            err=True,
        )


def _holds_audit_events(state: PortalState) -> bool:
    if not inspect(state.engine).has_table(AuditEvent.__tablename__):
        return False
    with state.sessions() as session:
        return session.scalar(select(AuditEvent.seq).limit(1)) is not None


def _holds_cases(state: PortalState) -> bool:
    if not inspect(state.engine).has_table(Case.__tablename__):
        return False
    with state.sessions() as session:
        return session.scalar(select(Case.id).limit(1)) is not None


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create instance secrets if missing, migrate the database, load the default taxonomy."""
    state = _state()
    settings = state.settings
    settings.instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    missing = [n for n in SECRET_FILES if not (settings.instance_path / n).exists()]
    # The audit key arrived with migration 0002: an older instance may create it, as long as
    # no audit event was written under another one.
    restorable = [n for n in missing if n != "audit_key" or _holds_audit_events(state)]
    if restorable and _holds_cases(state):
        # A new pepper would orphan every receipt, a new audit key would break the chain; a new
        # secret key is harmless but they are restored together.
        raise click.ClickException(
            f"instance secret(s) {', '.join(restorable)} missing in {settings.instance_path},"
            " but the database already holds cases: restore the secrets from your backup"
        )
    created = ensure_secrets(settings.instance_path)
    for name in created:
        click.echo(f"created instance secret {settings.instance_path / name} (mode 0600)")
    load_secrets(settings.instance_path)  # proves they are readable
    migrate.upgrade(state.engine)
    click.echo(f"database at revision {migrate.current_revision(state.engine)}")
    with _session() as session:
        if taxonomy.is_loaded(session):
            click.echo("taxonomy already loaded (use `portal load-taxonomy` to replace it)")
        else:
            report = taxonomy.load_taxonomy(
                session, taxonomy.read_taxonomy_file(settings.taxonomy_file)
            )
            session.commit()
            click.echo(
                f"loaded taxonomy from {settings.taxonomy_file}: {report.queues} queues,"
                f" {report.categories} categories, {report.rules} routing rules"
            )
        _warn_if_unstaffed(session)


@click.command("load-taxonomy")
@with_appcontext
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def load_taxonomy_command(file: Path | None) -> None:
    """Create or update queues, categories, sites, departments and routing rules from FILE."""
    path = file or _state().settings.taxonomy_file
    with _session() as session:
        try:
            report = taxonomy.load_taxonomy(session, taxonomy.read_taxonomy_file(path))
        except PortalError as error:
            raise click.ClickException(str(error)) from error
        session.commit()
    click.echo(
        f"loaded {path}: {report.queues} queues, {report.categories} categories,"
        f" {report.rules} rules"
    )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@click.command("create-staff")
@with_appcontext
@click.argument("email")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="Role; repeat for several.",
)
@click.option("--name", help="Public name reporters see when choosing whom to exclude.")
@click.option("--queue", "queues", multiple=True, help="Queue slug to join; repeat for several.")
@click.option(
    "--not-excludable-in",
    "not_excludable_in",
    multiple=True,
    metavar="SLUG",
    help="Queue to join as a member reporters cannot exclude (e.g. the board's chair); repeat"
    " for several.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
def create_staff_command(
    email: str,
    roles: tuple[str, ...],
    name: str | None,
    queues: tuple[str, ...],
    not_excludable_in: tuple[str, ...],
    password_stdin: bool,
) -> None:
    """Create a staff user with a key pair and print their recovery key (shown once)."""
    settings = _state().settings
    try:  # the new account is audited, under the instance's audit key (loaded by `init`)
        secrets = _state().secrets or load_secrets(settings.instance_path)
    except SecretsMissing as error:
        raise click.ClickException(
            "instance secrets are missing: run `portal init` first"
        ) from error
    password = _read_password(password_stdin)
    with _session() as session:
        session.info[AUDIT_KEY] = secrets.audit_key
        try:
            created = staff.create_staff(
                session,
                settings,
                email=email,
                display_name=name or email.split("@")[0],
                roles=[Role(r) for r in roles],
                queue_slugs=queues,
                password=password,
                now=utc_now(),
                not_excludable_in=not_excludable_in,
            )
        except InvalidInput as error:
            raise click.ClickException(error.message) from error
        except PortalError as error:
            raise click.ClickException(f"{type(error).__name__}: {error}") from error
        # The operator at the server is the break-glass path (the first admin is made here):
        # no second admin approves, so the account is audited and shown to its queues' members.
        admin.note_created_at_server(session, created.user, utc_now())
        session.commit()
        click.echo(f"created {created.user.email} ({', '.join(sorted(roles))})")
        click.echo(
            "Recovery key (shown once; store it offline: it is the second copy of this"
            " account's private key, needed to keep case access if the password is lost):"
        )
        click.echo(f"  {created.recovery_key}")
        _warn_if_unstaffed(session)


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load demo staff and demo cases (through the real intake service) into an empty portal."""
    state = _state()
    if state.secrets is None:
        raise click.ClickException("run `portal init` first")
    with _session() as session:
        try:
            loaded = demo.load(session, state.settings, state.secrets, utc_now())
        except demo.RealStaffPresent as error:
            raise click.ClickException(str(error)) from error
        if loaded.receipts:
            click.echo(
                f"Loaded {loaded.history} made-up concerns over the last"
                f" {demo_history.QUARTERS} quarters and computed their insight figures (log in as"
                f" manager@{demo.DEMO_DOMAIN} to see them at /insights/)."
            )
        session.commit()
    click.echo(f"Demo staff (password for all: {demo.DEMO_PASSWORD}):")
    secret = demo.DEMO_TOTP_SECRET
    for spec in demo.DEMO_STAFF:
        roles = ", ".join(r.value for r in spec["roles"])
        queues = ", ".join(spec["queues"]) or "-"
        click.echo(f"  {spec['email'] + '@' + demo.DEMO_DOMAIN:<24} {roles:<13} queues: {queues}")
    click.echo(f"TOTP secret of every demo account (second factor): {secret}")
    click.echo(f"  current code: `portal totp {secret}` (or add the secret to any TOTP app)")
    if loaded.receipts:
        click.echo("Demo receipts (try them at /followup):")
        for category, receipt in loaded.receipts:
            click.echo(f"  {receipt}  ({category})")
    else:
        click.echo("Demo cases were already loaded; their receipts were shown only once.")


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Requests each worker serves at once (above 1: threaded workers).",
)
def serve_command(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the portal (gunicorn; no access log, so no client addresses are written)."""
    settings = _state().settings
    click.echo(f"Serving the portal on http://{host}:{port}/  (staff: http://{host}:{port}/staff/)")
    if sys.platform.startswith("win"):  # pragma: no cover - gunicorn needs a POSIX system
        from werkzeug.serving import run_simple

        run_simple(host, port, _state().app_factory(settings), threaded=True)
        return
    from portal.runtime.serving import run_gunicorn

    run_gunicorn(
        settings, _state().app_factory, host=host, port=port, workers=workers, threads=threads
    )


COMMANDS = [init_command, load_taxonomy_command, create_staff_command, demo_command, serve_command]


def register(app: Flask) -> None:
    # Command groups of later features live in their own modules (cli_*.py).
    from portal.cli.access import membership_group
    from portal.cli.audit import audit_group
    from portal.cli.backup import backup_command, restore_command
    from portal.cli.doctor import doctor_command
    from portal.cli.insights import insights_group
    from portal.cli.notify import notify_command, sla_check_command
    from portal.cli.retention import purge_command
    from portal.cli.security import access_code_hash_command, reset_password_command, totp_command
    from portal.cli.staff import staff_group
    from portal.cli.taxonomy import taxonomy_group

    for command in [
        *COMMANDS,
        audit_group,
        doctor_command,
        backup_command,
        restore_command,
        insights_group,
        membership_group,
        notify_command,
        purge_command,
        sla_check_command,
        totp_command,
        reset_password_command,
        access_code_hash_command,
        staff_group,
        taxonomy_group,
    ]:
        app.cli.add_command(command)
