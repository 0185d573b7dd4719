"""The savepoint isolation of tests/support/isolation.py holds: what a test commits through the
app (a request's commit, a session's commit, a rolled-back failure) is gone for the next test,
and nothing of the shared app is ever committed to the database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from portal.models import Category, StaffUser
from portal.services.reporting.throttle import MemoryThrottle
from tests.support.factories import DatabaseUnderTest, Portal
from tests.support.isolation import each_test, isolated_app, session_of


def _staff_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(StaffUser)) or 0)


def _committed_staff(database: DatabaseUnderTest) -> int:
    """Staff rows committed to the database (what other tests of this worker left there)."""
    with database.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(StaffUser)) or 0)


def test_a_tests_commits_are_rolled_back_and_nothing_is_ever_committed(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    committed = _committed_staff(database)
    with isolated_app(database, tmp_path / "instance") as shared:
        sessions = shared.state.sessions
        with each_test(shared):
            with session_of(shared) as session:
                Portal(shared.app, session, shared.settings, shared.secrets).staff("first")
            # A failed commit inside the test returns to the test's own state, as it would
            # in a real transaction.
            with session_of(shared) as session:
                session.add(Category(code="other", label="a duplicate code", position=99))
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                else:  # pragma: no cover - the unique code must refuse it
                    raise AssertionError("a duplicate category code was accepted")
            assert _staff_count(sessions) == 1
        with each_test(shared):
            assert _staff_count(sessions) == 0
            with session_of(shared) as session:
                assert session.scalars(select(Category.code)).first() is not None  # taxonomy
                Portal(shared.app, session, shared.settings, shared.secrets).staff("second")
            assert _staff_count(sessions) == 1
            # Committed as far as the app can tell, yet not in the database.
            assert _committed_staff(database) == committed
    assert _committed_staff(database) == committed


def test_each_test_gets_fresh_counters_and_its_clock_back(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    with isolated_app(database, tmp_path / "instance") as shared:
        state = shared.state
        clock = state.clock
        with each_test(shared):
            throttle = state.login_throttle
            assert isinstance(throttle, MemoryThrottle)
            throttle.record_failure("someone")
            state.clock = lambda: clock().replace(year=2000)
        with each_test(shared):
            assert state.login_throttle is not throttle
            assert state.login_throttle.failures("someone") == 0
            assert state.clock is clock
