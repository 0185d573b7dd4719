"""The machine, probed once per process (portal/runtime/capacity.py), and settings that never
probe it: reading a setting is reading a value."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal import crypto
from portal.app import create_app
from portal.instance import InstanceSecrets
from portal.runtime import capacity
from portal.runtime.capacity import Capacity
from portal.services.attachments import store as attachments
from portal.settings import TEST_ARGON2, Settings, load_settings

GIB = 1024**3

#: Set while a test watches: every file opened under /sys or /proc is written down.
_watched: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    path = str(args[0]) if event == "open" and args and isinstance(args[0], str | Path) else ""
    if _watched is not None and path.startswith(("/sys", "/proc")):
        _watched.append(path)


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one only looks while watched


@pytest.fixture
def no_probing(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Whatever asks the system about its CPUs or memory fails the test; files opened under
    /sys and /proc are collected."""
    global _watched

    def refuse(*_args: object) -> int:
        raise AssertionError("the settings asked the machine")

    for name in ("sysconf", "sched_getaffinity", "cpu_count"):
        monkeypatch.setattr(os, name, refuse)
    _watched = []
    try:
        yield _watched
    finally:
        _watched = None


def _read_every_property(settings: Settings) -> None:
    for name in dir(Settings):
        if isinstance(getattr(Settings, name), property):
            getattr(settings, name)


def test_reading_settings_never_probes_the_machine(no_probing: list[str], tmp_path: Path) -> None:
    """Issue 14: every read of ``argon2_pool_size`` used to read the cgroup file and ask for
    the CPUs. Now loading and reading settings, automatic pool bounds included, asks nothing."""
    for settings in (
        Settings(),
        load_settings({"PORTAL_INSTANCE_PATH": str(tmp_path)}),
        Settings(argon2_max_concurrent=0, attachment_max_concurrent=0),
    ):
        _read_every_property(settings)
    assert no_probing == []


def test_the_watch_sees_a_probe(no_probing: list[str], tmp_path: Path) -> None:
    """The fixture above is not blind: a probe trips it."""
    with pytest.raises(AssertionError, match="asked the machine"):
        capacity.probe(tmp_path / "memory.max")
    capacity.memory_limit_bytes()  # reads /sys/fs/cgroup/memory.max (or finds it missing)
    assert no_probing == [str(capacity.CGROUP_MEMORY_MAX)]


def test_probe_reads_the_cgroup_limit(tmp_path: Path) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text("536870912\n")
    probed = capacity.probe(limit)
    assert probed.memory_limit_bytes == 512 * 1024**2
    assert probed.cpus == len(os.sched_getaffinity(0))
    assert probed.physical_memory_bytes == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit.write_text("max\n")
    assert capacity.probe(limit).memory_limit_bytes == 0


def test_this_process_is_probed_once() -> None:
    assert capacity.this_process() is capacity.this_process()


def test_create_app_sizes_the_automatic_pools_from_the_capacity_given(
    tmp_path: Path, secrets: InstanceSecrets
) -> None:
    pools = [
        (pool, pool.size, pool.wait_seconds)
        for pool in (crypto.ARGON2_POOL, attachments.CLEANING_POOL)
    ]
    try:
        machine = Capacity(physical_memory_bytes=64 * GIB, memory_limit_bytes=2 * GIB, cpus=32)
        settings = Settings(instance_path=tmp_path).with_argon2(TEST_ARGON2)
        app = create_app(settings, secrets=secrets, capacity=machine)
        # TEST_ARGON2 holds 8 KiB: the 32 CPUs bound it; one 533 MiB form fits a quarter of 2 GiB.
        assert crypto.argon2_pool_size() == 32
        assert attachments.cleaning_pool_size() == 1
        assert app.extensions["portal"].capacity is machine
    finally:
        for pool, size, wait in pools:
            pool.configure(size, wait)
