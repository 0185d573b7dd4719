"""One app per module and database for the route sweeps, each test in a savepoint.

The authorization matrix and the security and audit sweeps send thousands of requests to the
same world of cases and staff (``make_world``). Building an app and that world for every test
was over a third of the whole suite's time; here they are built once per module, database and
worker (``tests/support/isolation.py``), and every test's writes are rolled back after it, so
each test still starts from the same state and keeps its assertions.

The ``app``, ``settings`` and ``secrets`` fixtures of ``tests/conftest.py`` are replaced by the
shared app's, so ``db``, ``client`` and ``portal`` come from it too. Tests that ask for ``world``
get the matrix's world; the others get the shared app with only the default taxonomy, as the
``app`` fixture would give them. Tests are run world-first within each module so the world is
built once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import NestedTransaction

from portal.instance import InstanceSecrets
from portal.settings import Settings
from tests.invariants.matrix.test_authorization import World, make_world
from tests.support.factories import DatabaseUnderTest, Portal
from tests.support.isolation import IsolatedApp, each_test, isolated_app, session_of


@dataclass
class Shared:
    isolated: IsolatedApp
    world: World | None = None
    world_savepoint: NestedTransaction | None = None

    def with_world(self) -> World:
        if self.world is None:
            self.world_savepoint = self.isolated.connection.begin_nested()
            with session_of(self.isolated) as session:
                shared = self.isolated
                self.world = make_world(
                    shared.app, Portal(shared.app, session, shared.settings, shared.secrets)
                )
        return self.world

    def without_world(self) -> None:
        if self.world_savepoint is not None:
            self.world_savepoint.rollback()
        self.world = self.world_savepoint = None


@pytest.fixture(scope="module")
def shared(
    database: DatabaseUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    with isolated_app(database, tmp_path_factory.mktemp("shared") / "instance") as isolated:
        yield Shared(isolated)


@pytest.fixture(autouse=True)
def _one_test(request: pytest.FixtureRequest, shared: Shared) -> Iterator[IsolatedApp]:
    if "world" in request.fixturenames:
        shared.with_world()
    else:
        shared.without_world()
    with each_test(shared.isolated) as isolated:
        yield isolated


@pytest.fixture
def app(_one_test: IsolatedApp) -> Flask:
    return _one_test.app


@pytest.fixture
def settings(_one_test: IsolatedApp) -> Settings:
    return _one_test.settings


@pytest.fixture
def secrets(_one_test: IsolatedApp) -> InstanceSecrets:
    return _one_test.secrets


@pytest.fixture
def world(shared: Shared) -> World:
    assert shared.world is not None
    return shared.world


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within each module of this folder, the tests that use the world first (a stable sort,
    so the order is otherwise unchanged): the world is then built once per module."""
    here = __file__.rsplit("/", 1)[0]

    def key(item: pytest.Item) -> tuple[str, int]:
        path = str(item.path)
        if not path.startswith(here):
            return ("", 0)
        return (path, 0 if "world" in getattr(item, "fixturenames", ()) else 1)

    positions = [i for i, item in enumerate(items) if str(item.path).startswith(here)]
    mine = sorted((items[i] for i in positions), key=key)
    for i, item in zip(positions, mine, strict=True):
        items[i] = item
