"""What this process may use: its CPUs and memory (a container's limit when lower), and the
default pool bounds the settings' 0 ("automatic") stands for.

The machine is probed here, once per process (``this_process``), never by reading a setting:
``portal.settings`` holds values only. ``create_app`` takes the probe (or one a caller made, as
the tests do) and sizes the Argon2 and cleaning pools from it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the type only: portal.settings re-exports this module's probes (see there)
    from portal.settings import Settings

#: A container's memory limit under cgroup v2 ("max" when there is none).
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def auto_argon2_pool_size(memory_kib: int, total_memory_bytes: int, cpus: int) -> int:
    """The default Argon2 bound: as many computations of ``memory_kib`` as fit in a quarter of
    the machine's memory (one per CPU where the memory is unknown), at most one per CPU, at
    least one."""
    if total_memory_bytes <= 0:
        return max(1, cpus)
    fits = (total_memory_bytes // 4) // (memory_kib * 1024)
    return max(1, min(cpus, fits))


def auto_attachment_pool_size(form_bytes: int, total_memory_bytes: int, cpus: int) -> int:
    """The default bound on forms cleaned at once: as many of ``form_bytes`` as fit in a
    quarter of the machine's memory (one per CPU where the memory is unknown), at most one per
    CPU (cleaning is CPU work), at least one."""
    if total_memory_bytes <= 0 or form_bytes <= 0:
        return max(1, cpus)
    fits = (total_memory_bytes // 4) // form_bytes
    return max(1, min(cpus, fits))


def memory_limit_bytes(path: Path = CGROUP_MEMORY_MAX) -> int:
    """A container's memory limit (cgroup v2), or 0 where there is none."""
    try:
        value = path.read_text().strip()
    except OSError:
        return 0
    return int(value) if value.isdigit() else 0


def physical_memory_bytes() -> int:
    """The machine's physical memory, or 0 where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX systems
        return 0


def usable_cpus() -> int:
    """The CPUs this process may run on (a container or ``taskset`` can allow fewer than the
    machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Capacity:
    """The memory and CPUs one process may use, as probed (or as a test states them)."""

    physical_memory_bytes: int
    memory_limit_bytes: int  # a container's (cgroup v2) limit; 0 where there is none
    cpus: int

    @property
    def total_memory_bytes(self) -> int:
        """The memory the portal's processes may use: the physical memory, or a container's
        limit when that is lower (in a container the physical memory is the host's); 0 where
        neither is known."""
        physical, limit = self.physical_memory_bytes, self.memory_limit_bytes
        return min(physical, limit) if physical and limit else physical or limit

    def argon2_pool_size(self, settings: Settings) -> int:
        """``argon2_max_concurrent``, or the default it stands for when 0 (the larger of the
        two Argon2 memory costs counts)."""
        if settings.argon2_max_concurrent:
            return settings.argon2_max_concurrent
        largest = max(settings.kdf_memory_kib, settings.password_memory_kib)
        return auto_argon2_pool_size(largest, self.total_memory_bytes, self.cpus)

    def attachment_pool_size(self, settings: Settings) -> int:
        """``attachment_max_concurrent``, or the default it stands for when 0."""
        if settings.attachment_max_concurrent:
            return settings.attachment_max_concurrent
        return auto_attachment_pool_size(
            settings.attachment_form_bytes, self.total_memory_bytes, self.cpus
        )


def probe(cgroup_memory_max: Path = CGROUP_MEMORY_MAX) -> Capacity:
    """Ask the system now (reads ``/sys/fs/cgroup``, ``sysconf`` and the CPU affinity)."""
    return Capacity(
        physical_memory_bytes=physical_memory_bytes(),
        memory_limit_bytes=memory_limit_bytes(cgroup_memory_max),
        cpus=usable_cpus(),
    )


@functools.cache
def this_process() -> Capacity:
    """The probe, made once per process: the CPUs and memory do not change under a running
    worker, and each gunicorn worker builds its app (and so asks) after the fork."""
    return probe()


def total_memory_bytes() -> int:
    """``Capacity.total_memory_bytes`` of a fresh probe (``portal doctor`` reports it)."""
    return probe().total_memory_bytes
