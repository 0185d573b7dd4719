"""`portal totp SECRET` (a code calculator), `portal reset-password EMAIL` and
`portal access-code-hash` (the value of the ``report_access_code_hash`` setting)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal import crypto
from portal.clock import utc_now
from portal.errors import InvalidInput
from portal.models import StaffUser
from portal.services.accounts import accounts as staff
from portal.services.reporting import access_code

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    return value


@click.command("totp")
@click.argument("secret", nargs=-1, required=True)
def totp_command(secret: tuple[str, ...]) -> None:
    """Print the current TOTP code for SECRET (as shown at enrolment or by `portal demo`;
    spaces allowed). A calculator for demos and scripts: it reads nothing from the database."""
    try:
        normalised = crypto.normalise_totp_secret("".join(secret))
    except crypto.MalformedSecret as error:
        raise click.BadParameter(str(error), param_hint="SECRET") from error
    now = utc_now()
    step = crypto.totp_step(now)
    left = crypto.TOTP_STEP_SECONDS - int(now.timestamp()) % crypto.TOTP_STEP_SECONDS
    click.echo(crypto.totp_code(normalised, step))
    click.echo(f"(valid for {left} more seconds, and the 30 after them)", err=True)


@click.command("reset-password")
@with_appcontext
@click.argument("email")
@click.option(
    "--recovery-key",
    metavar="KEY",
    help="The account's recovery key, to keep its case access; '-' reads it from stdin.",
)
@click.option(
    "--reset-second-factor",
    is_flag=True,
    help="With --recovery-key, also clear the TOTP secret (without it, it is always cleared).",
)
def reset_password_command(email: str, recovery_key: str | None, reset_second_factor: bool) -> None:
    """Give EMAIL a temporary password (printed once; to be changed at the next log-in) and log
    out all its sessions. Without the recovery key the account gets a new key pair and its cases
    await re-grant by colleagues."""
    if recovery_key == "-":
        recovery_key = sys.stdin.readline().strip()
    with _state().sessions() as session:
        user = session.scalar(
            select(StaffUser).where(StaffUser.email == staff.normalise_email(email))
        )
        if user is None:
            raise click.ClickException(f"no staff account has the e-mail {email}")
        try:
            done = staff.reset_password(
                session,
                _state().settings,
                user,
                utc_now(),
                actor=None,
                recovery_key=recovery_key,
                reset_second_factor=reset_second_factor,
            )
        except InvalidInput as error:
            raise click.ClickException(error.message) from error
        session.commit()
    click.echo(f"reset the password of {user.email}")
    click.echo("Temporary password (shown once; hand it over in person, it must be changed):")
    click.echo(f"  {done.temporary_password}")
    if done.kept_access:
        click.echo("The recovery key was right: the account keeps its access to every case.")
    else:
        click.echo(
            f"No recovery key: new key pair; {done.pending_regrants} case(s) await re-grant by a"
            " colleague (see /staff/admin/regrants)."
        )
    click.echo(
        "Second factor cleared: set up again at the next log-in."
        if done.second_factor_reset
        else "Second factor kept."
    )
    click.echo(f"{done.sessions_revoked} session(s) logged out.")


@click.command("access-code-hash")
@with_appcontext
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the code from standard input.")
def access_code_hash_command(from_stdin: bool) -> None:
    """Print the Argon2id hash of an access code for the `report_access_code_hash` setting.
    The code itself is never stored; give it to employees by your own channels."""
    if from_stdin:
        code = sys.stdin.readline().rstrip("\n")
    else:
        code = click.prompt("Access code", hide_input=True, confirmation_prompt=True)
    try:
        click.echo(access_code.hash_code(code, _state().settings.password_cost))
    except InvalidInput as error:
        raise click.ClickException(str(error.message)) from error
