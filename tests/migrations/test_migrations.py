"""Alembic: head equals the models; every revision upgrades and downgrades."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from portal.db import Base, make_engine
from portal.ops import migrate
from tests.support.factories import DatabaseUnderTest


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


def test_0004_carries_recusals_over_from_the_audit_log(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate.upgrade(engine, "0003_security")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO queues VALUES (1, 'g', 'G', '', 1)"))
        conn.execute(text("INSERT INTO categories VALUES (1, 'o', 'O', '', 0, 1)"))
        conn.execute(
            text(
                "INSERT INTO staff_users (id, email, display_name, password_hash, public_key,"
                " password_salt, password_kdf, key_by_password, key_by_recovery, active,"
                " must_change_password, created_at) VALUES (7, 'a@x', 'A', 'h', x'00', x'00',"
                " 'k', x'00', x'00', 1, 0, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO cases (id, handle, sort_key, queue_id, category_id, is_anonymous,"
                " status, received_on, acknowledge_due_on, feedback_due_on, lookup_id,"
                " reporter_salt, reporter_kdf, reporter_public_key, reporter_sealed_key,"
                " report_ciphertext, priority, reporter_at_risk) VALUES ('c1', 'AAAA-AAAA', 1,"
                " 1, 1, 1, 'new', '2026-01-01', '2026-01-08', '2026-04-08', x'01', x'00', 'k',"
                " x'00', x'00', x'00', 'normal', 0)"
            )
        )
        for seq, case_id in ((1, "c1"), (2, "gone")):
            conn.execute(
                text(
                    "INSERT INTO audit_events (seq, at, actor_id, actor_email, action, case_id,"
                    " detail, prev_hash, hash) VALUES (:seq, '2026-01-02 00:00:00', 7, 'a@x',"
                    " 'case.recused', :case, '{}', x'00', x'00')"
                ),
                {"seq": seq, "case": case_id},
            )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT case_id, staff_id FROM case_recusals")).all()
    assert [tuple(r) for r in rows] == [("c1", 7)]
    engine.dispose()
