"""The database: reachable, and at the Alembic head."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from portal.ops import migrate
from portal.ops.doctor.core import CheckResult, _fail, _ok, _skip


def check_database(engine: Engine) -> list[CheckResult]:
    """Reachable, and migrated to the Alembic head this code ships."""
    where = engine.url.render_as_string(hide_password=True)
    sqlite_file = engine.url.database if engine.dialect.name == "sqlite" else None
    if sqlite_file and sqlite_file != ":memory:" and not Path(sqlite_file).exists():
        # Connecting would create an empty file: doctor writes nothing.
        return [
            _fail(
                "database",
                f"there is no SQLite database at {sqlite_file}",
                "run `portal init`, or set database_url to the production database",
            ),
            _skip("migrations", "the database is not reachable"),
        ]
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = type(getattr(error, "orig", None) or error).__name__
        return [
            _fail(
                "database",
                f"cannot connect to {where} ({reason})",
                "check database_url, that the database server is running and reachable from"
                " this host, and the database user's password (PORTAL_DATABASE_URL)",
            ),
            _skip("migrations", "the database is not reachable"),
        ]
    reachable = _ok("database", f"connected to {where}")
    head = migrate.head_revision(engine)
    current = migrate.current_revision(engine)
    if current is None:
        return [
            reachable,
            _fail(
                "migrations",
                "the database has no schema (no Alembic revision)",
                "run `portal init`, which creates the schema and loads the taxonomy",
            ),
        ]
    if current == head:
        return [reachable, _ok("migrations", f"at the Alembic head {head}")]
    try:
        ScriptDirectory.from_config(migrate.alembic_config(engine)).get_revision(current)
    except CommandError:
        return [
            reachable,
            _fail(
                "migrations",
                f"the database is at revision {current}, which this code does not know"
                f" (its head is {head}): it was migrated by a newer release",
                "deploy the release that migrated this database (downgrading the code under a"
                " newer schema loses data)",
            ),
        ]
    return [
        reachable,
        _fail(
            "migrations",
            f"the database is at revision {current}, behind the head {head}",
            "back up the database, then run `portal init` (it applies the missing migrations"
            " and changes nothing else)",
        ),
    ]
