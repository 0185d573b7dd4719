"""The Makefile's install stamps: `make run` installs the runtime dependencies only (a newcomer's
first page must not wait for pytest, playwright and mypy), `make test` adds the extras, and
neither installs again what the other already installed (issue 14).

Make runs for real in a temporary folder holding copies of the Makefile and pyproject.toml, with
a fake virtualenv whose ``python`` only writes down how it was called."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from portal.settings import PROJECT_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")

RUNTIME_INSTALL = "-m pip install --quiet --no-compile -e ."
TEST_INSTALL = "-m pip install --quiet -e .[test]"


class Checkout:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(exist_ok=True)
        shutil.copy(PROJECT_ROOT / "Makefile", root / "Makefile")
        shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
        self.log = root / "calls.log"
        python = root / ".venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(f'#!/bin/sh\necho "$*" >> {self.log}\n')
        python.chmod(python.stat().st_mode | stat.S_IXUSR)

    def make(self, target: str) -> list[str]:
        """Run the install that ``target`` depends on (its stamp), for real; the pip calls made."""
        self.log.write_text("")
        stamp = self.stamp_of(target)
        subprocess.run(
            ["make", "--no-print-directory", stamp], cwd=self.root, check=True, capture_output=True
        )
        return self.log.read_text().splitlines()

    def stamp_of(self, target: str) -> str:
        """The one install stamp ``target`` depends on, from make's own database."""
        database = subprocess.run(
            ["make", "-pn", "--no-print-directory", target],
            cwd=self.root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for line in database.splitlines():
            if line.startswith(f"{target}:") and ".venv/.installed" in line:
                stamps = [word for word in line.split() if ".venv/.installed" in word]
                assert len(stamps) == 1, line
                return stamps[0]
        raise AssertionError(f"{target} depends on no install stamp")

    def pending(self, target: str) -> list[str]:
        """The pip calls ``make -n target`` would make now."""
        planned = subprocess.run(
            ["make", "-n", "--no-print-directory", target],
            cwd=self.root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [line for line in planned.splitlines() if "pip install" in line]


def _pip(calls: list[str]) -> list[str]:
    return [call.replace("'", "") for call in calls if "pip install" in call]


def test_run_installs_the_runtime_dependencies_only(tmp_path: Path) -> None:
    checkout = Checkout(tmp_path)
    assert [line.replace("'", "") for line in checkout.pending("run")] == [
        f".venv/bin/python {RUNTIME_INSTALL}"
    ]
    assert _pip(checkout.make("run")) == [RUNTIME_INSTALL]
    assert checkout.pending("run") == []  # a second `make run` installs nothing


@pytest.mark.parametrize("target", ["test", "pytest", "lint"])
def test_the_test_targets_install_the_extras(tmp_path: Path, target: str) -> None:
    checkout = Checkout(tmp_path)
    assert [line.replace("'", "") for line in checkout.pending(target)] == [
        f".venv/bin/python {TEST_INSTALL}"
    ]


def test_run_then_test_installs_the_extras_and_test_then_run_installs_nothing(
    tmp_path: Path,
) -> None:
    checkout = Checkout(tmp_path)
    assert _pip(checkout.make("run")) == [RUNTIME_INSTALL]
    assert _pip(checkout.make("pytest")) == [TEST_INSTALL]  # the extras come with `make test`
    assert checkout.pending("run") == [] and checkout.pending("pytest") == []

    other = Checkout(tmp_path / "other")
    assert _pip(other.make("pytest")) == [TEST_INSTALL]
    assert other.pending("run") == []  # the extras' install holds the runtime one


def test_a_changed_pyproject_reinstalls_for_each_target(tmp_path: Path) -> None:
    checkout = Checkout(tmp_path)
    checkout.make("pytest")
    stamps = [tmp_path / checkout.stamp_of(target) for target in ("run", "pytest")]
    earlier = (tmp_path / "pyproject.toml").stat().st_mtime - 10
    for stamp in stamps:  # installed, then pyproject.toml changed
        os.utime(stamp, (earlier, earlier))
    assert _pip(checkout.make("run")) == [RUNTIME_INSTALL]
    assert _pip(checkout.make("pytest")) == [TEST_INSTALL]
    assert checkout.pending("run") == [] and checkout.pending("pytest") == []
