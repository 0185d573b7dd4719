"""Alembic: head equals the models; every revision upgrades and downgrades."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from portal import migrate
from portal.db import Base, make_engine
from tests.conftest import DatabaseUnderTest


def test_head_matches_models(database: DatabaseUnderTest) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], diff
    assert migrate.current_revision(database.engine) == migrate.head_revision(database.engine)


def test_single_head_and_linear_history(database: DatabaseUnderTest) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(database.engine))
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_round_trip_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    script = ScriptDirectory.from_config(migrate.alembic_config(engine))
    revisions = [r.revision for r in script.walk_revisions()][::-1]
    for revision in revisions:
        migrate.upgrade(engine, revision)
        assert migrate.current_revision(engine) == revision
    assert set(inspect(engine).get_table_names()) >= {t.name for t in Base.metadata.sorted_tables}
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == revisions[-1]
    engine.dispose()
