"""`portal taxonomy ...`: the configuration as code, the same export and import as the console.

portal taxonomy export [FILE]    write the taxonomy as TOML (to stdout without FILE)
portal taxonomy import FILE      check FILE completely, then load it (nothing changes on error)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.clock import utc_now
from portal.errors import TaxonomyError
from portal.services.configuration import export as taxonomy_export

if TYPE_CHECKING:  # the type only: portal.app builds the commands, never the reverse
    from portal.app import PortalState


def _state() -> PortalState:
    value: PortalState = current_app.extensions["portal"]
    if value.secrets is None:
        raise click.ClickException("instance secrets are missing: run `portal init` first")
    return value


@click.group("taxonomy")
def taxonomy_group() -> None:
    """Export and import the taxonomy file (queues, categories, rules, workflow, policy)."""


@taxonomy_group.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_command(file: Path | None) -> None:
    """Write the configuration as TOML to FILE, or to standard output."""
    with _state().sessions() as session:
        exported = taxonomy_export.export(session, actor=None, now=utc_now(), via="cli")
        if file is not None:
            try:
                file.write_text(exported.text, encoding="utf-8")
            except OSError as error:
                raise click.ClickException(f"cannot write {file}: {error.strerror}") from error
        session.commit()  # the export is audited once it has been written
    if file is None:
        click.echo(exported.text, nl=False)
    else:
        counts = exported.counts
        click.echo(
            f"wrote {file}: {counts['queues']} queues, {counts['categories']} categories,"
            f" {counts['routing']} routing rules",
            err=True,
        )


@taxonomy_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_command(file: Path) -> None:
    """Check FILE completely, then load it. On any error nothing changes."""
    try:
        with file.open("rb") as fh:
            raw = fh.read(taxonomy_export.IMPORT_MAX_BYTES + 1)
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror}") from error
    with _state().sessions() as session:
        try:
            imported = taxonomy_export.import_taxonomy(
                session, raw, actor=None, now=utc_now(), via="cli"
            )
        except TaxonomyError as error:
            session.rollback()
            raise click.ClickException(f"{file}: nothing was changed: {error}") from error
        session.commit()
    report = imported.report
    click.echo(
        f"loaded {file}: {report.queues} queues, {report.categories} categories,"
        f" {report.sites} sites, {report.departments} departments, {report.rules} routing rules,"
        f" {report.statuses} statuses, {report.outcomes} outcomes"
    )
