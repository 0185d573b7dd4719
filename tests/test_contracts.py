"""The import contracts (pyproject.toml, ``[tool.importlinter]``) hold, so ``make test`` fails
when one breaks, as ``make lint`` does; and the contracts themselves cannot quietly go blind."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

import portal
from portal.settings import PROJECT_ROOT
from tests.import_contracts import AcyclicModulesContract, shortest_cycle, strongly_connected

CONTRACTS = {
    contract["id"]: contract
    for contract in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]["contracts"]
}
TOP_LEVEL = {f"portal.{module.name}" for module in pkgutil.iter_modules(portal.__path__)}


def test_every_import_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout, result.stdout


def test_only_crypto_is_left_out_of_the_crypto_contract() -> None:
    """A module added to portal/ is not free to import nacl or secrets because nobody listed
    it: the contract's sources are every top-level module but portal.crypto."""
    sources = set(CONTRACTS["crypto-only"]["source_modules"])
    assert sources == TOP_LEVEL - {"portal.crypto"}


def test_only_the_entry_point_may_import_the_app() -> None:
    sources = {
        source.removesuffix(".*") for source in CONTRACTS["app-is-the-root"]["source_modules"]
    }
    assert sources == TOP_LEVEL - {"portal.app", "portal.migrations"}


def test_strongly_connected_components() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert shortest_cycle(graph, "b", {"a", "b", "c"}) == ["b", "c", "a", "b"]


def test_the_module_contract_sees_a_package_cycling_with_its_own_module() -> None:
    """The case acyclic_siblings cannot see: a package's __init__ importing a module that
    imports the package back (a blueprint defined in __init__ and used by its views)."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.blueprint", "pkg.views"):
        graph.add_module(module)
    graph.add_import(importer="pkg", imported="pkg.views", line_number=3, line_contents="x")
    graph.add_import(importer="pkg.views", imported="pkg", line_number=1, line_contents="y")
    contract = AcyclicModulesContract(
        name="test", session_options={}, contract_options={"packages": ["pkg"]}
    )
    check = contract.check(graph, verbose=False)
    assert not check.kept
    assert check.metadata["cycles"][0]["cycle"] == ["pkg", "pkg.views", "pkg"]
    graph.remove_import(importer="pkg.views", imported="pkg")
    graph.add_import(
        importer="pkg.views", imported="pkg.blueprint", line_number=1, line_contents=""
    )
    assert contract.check(graph, verbose=False).kept


@pytest.mark.parametrize(
    "module",
    [
        "portal.web.admin",
        "portal.web.admin.views",
        "portal.web.staff",
        "portal.web.insights",
        "portal.web.api",
        "portal.web.reporter",
        "portal.cli.main",
        "portal.app",
    ],
)
def test_imports_on_its_own(module: str) -> None:
    """Each package that registers views imports first in a fresh interpreter: the package
    imports between the blueprints (staff registers admin) do not depend on who came first."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
