"""The Argon2 costs and the two slot pools against the machine and the workers' timeout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portal.crypto import Argon2Cost
from portal.ops.doctor.core import CheckResult, _fail, _ok, _warn
from portal.runtime.capacity import (
    auto_argon2_pool_size,
    auto_attachment_pool_size,
    memory_limit_bytes,
    physical_memory_bytes,
    total_memory_bytes,
    usable_cpus,
)
from portal.runtime.slots import WORKER_TIMEOUT_SECONDS
from portal.settings import PRODUCTION_ARGON2, Settings

#: The most Argon2 computations one request runs, one after the other, each taking its own slot
#: of the pool (so it may wait ``argon2_wait_seconds`` for each): a password change verifies the
#: current password, wraps the key under the new one and hashes the new one. A test counts them.
ARGON2_PER_REQUEST_MAX = 3
#: How much of the machine's memory the Argon2 computations may hold at worst before doctor
#: warns: the rest is for the workers themselves (about 150 MiB each), the database and the
#: uploads in flight (docs/deploy.md, "Sizing workers, threads and the Argon2 pool").
ARGON2_MEMORY_SHARE = 0.5
#: What a worker holds of its own (Python, the app, its database pool), counted in the memory
#: worst case of the attachment-pool check (docs/deploy.md: about 150 MiB; the attachments
#: benchmark's process held 120-180 MiB before any upload).
WORKER_BASE_BYTES = 150 * 1024 * 1024
#: How much of the machine's memory the workers may hold at worst, with every Argon2 and
#: cleaning slot taken and every thread holding an upload, before doctor warns: the rest is for
#: the database, the proxy (which buffers request bodies too) and the system.
WORKERS_MEMORY_SHARE = 0.75
#: The slot waits a concern with files may go through, one after the other: an Argon2 slot for
#: the access code (when one is set), a cleaning slot, an Argon2 slot for the receipt's key.
ARGON2_WAITS_WITH_FILES = 2


def _weaker(cost: Argon2Cost, floor: Argon2Cost) -> bool:
    return (
        cost.time_cost < floor.time_cost
        or cost.memory_kib < floor.memory_kib
        or cost.parallelism < floor.parallelism
    )


def check_argon2(settings: Settings) -> CheckResult:
    name = "argon2"
    floor = PRODUCTION_ARGON2
    weak = [
        f"{prefix}_* is t={cost.time_cost}, m={cost.memory_kib} KiB, p={cost.parallelism}"
        for prefix, cost in (("kdf", settings.kdf_cost), ("password", settings.password_cost))
        if _weaker(cost, floor)
    ]
    wanted = f"t={floor.time_cost}, m={floor.memory_kib} KiB, p={floor.parallelism}"
    if weak:
        return _fail(
            name,
            f"Argon2id costs below the production defaults ({wanted}): {'; '.join(weak)}",
            "remove the kdf_* and password_* overrides (the defaults are RFC 9106's second"
            " option) or raise them to at least those values",
        )
    return _ok(name, f"Argon2id costs at or above {wanted}")


@dataclass(frozen=True)
class Machine:
    """What doctor knows of the machine it runs on (the app server's, when run there)."""

    memory_bytes: int  # what the portal may use: 0 where the system does not say
    memory_source: str  # what that figure is, for the message
    cpus: int
    # What the automatic pool size is computed from, as the app computes it
    # (``settings.total_memory_bytes``: the physical memory or a container's limit, the lower).
    physical_bytes: int


@dataclass(frozen=True)
class Server:
    """How `portal serve` runs the workers, as the operator tells doctor (``--workers`` and
    ``--threads``); None where not told."""

    workers: int | None = None
    threads: int | None = None


def _meminfo_total(path: Path = Path("/proc/meminfo")) -> int:
    try:
        for row in path.read_text().splitlines():
            key, _, value = row.partition(":")
            if key == "MemTotal" and value.split() and value.split()[0].isdigit():
                return int(value.split()[0]) * 1024  # /proc/meminfo counts in kB = KiB
    except OSError:
        pass
    return 0


def this_machine() -> Machine:
    memory, source = _meminfo_total() or physical_memory_bytes(), "the machine's memory"
    limit = memory_limit_bytes()
    if limit and (not memory or limit < memory):
        memory, source = limit, "the container's memory limit"
    return Machine(memory, source, usable_cpus(), total_memory_bytes())


def _size(count: int) -> str:
    mib = count / (1024 * 1024)
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def _argon2_memory_findings(
    settings: Settings, machine: Machine, server: Server, per_process: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """(failures, warnings, what the worst case is) of the memory Argon2 can hold at once."""
    cost = max(settings.kdf_memory_kib, settings.password_memory_kib) * 1024
    workers = server.workers or 1
    worst = workers * per_process * cost
    who = (
        f"{workers} worker(s) × {per_process} × {_size(cost)}"
        if server.workers
        else f"one worker process: {per_process} × {_size(cost)}"
    )
    summary = f"at worst {_size(worst)} of Argon2 memory at once ({who})"
    if not machine.memory_bytes:
        return [], [], summary + "; the machine's memory is unknown, so not compared"
    budget = int(machine.memory_bytes * ARGON2_MEMORY_SHARE)
    if worst <= budget:
        return [], [], f"{summary}, of {_size(machine.memory_bytes)} ({machine.memory_source})"
    fits = budget // (workers * cost)
    fix = (
        f"set argon2_max_concurrent = {fits} (PORTAL_ARGON2_MAX_CONCURRENT)"
        + (" or run fewer workers" if server.workers else "")
        if fits >= 1
        else f"run at most {max(1, budget // cost)} worker(s), or give the machine more memory"
        " (keep the Argon2 costs: lowering them weakens every receipt and password)"
    )
    fix += (
        f": workers × argon2_max_concurrent × {_size(cost)} should stay under half of"
        f" {_size(machine.memory_bytes)} (docs/deploy.md, sizing)"
    )
    if worst > machine.memory_bytes:
        problem = (
            f"{summary}: more than {machine.memory_source} ({_size(machine.memory_bytes)}); a"
            " burst of log-ins or receipts would make it swap or kill the portal"
        )
        return [(problem, fix)], [], summary
    problem = (
        f"{summary}: more than half of {machine.memory_source} ({_size(machine.memory_bytes)}),"
        " leaving little for the workers themselves, the database and uploads in flight"
    )
    return [], [(problem, fix)], summary


def _beyond_cpus(setting: str, pool: int, machine: Machine, what: str) -> tuple[str, str]:
    """The warning for an explicit pool bound above the number of CPUs."""
    return (
        f"{setting} is {pool}, more than the {machine.cpus} CPU(s): {what} beyond one per CPU"
        " run no faster, they only hold their memory longer",
        f"set {setting} to {machine.cpus} or less, or 0 (automatic)",
    )


def _no_wait(setting: str, slot: str, what: str) -> tuple[str, str]:
    """The warning for a pool whose requests do not wait for a slot."""
    return (
        f"{setting} is 0: when every {slot} slot of a worker is busy, {what} gets the 'busy'"
        " page at once instead of waiting a moment for its turn",
        f"set {setting} = 10 (the default)",
    )


def _pool_verdict(
    name: str, fails: list[tuple[str, str]], warns: list[tuple[str, str]], summary: str
) -> CheckResult | None:
    """FAIL or WARN with every problem and its fix (the memory summary added for context), or
    None when there is none."""
    if not fails and not warns:
        return None
    found = fails + warns
    problems = [problem for problem, _fix in found]
    if not any(summary in problem for problem in problems):
        problems.append(summary)
    return (_fail if fails else _warn)(
        name, "; ".join(problems), "; ".join(dict.fromkeys(fix for _problem, fix in found))
    )


def _workers_hint(server: Server) -> str:
    if server.workers:
        return ""
    return " (pass --workers and --threads as given to `portal serve` to count every worker)"


def check_argon2_pool(settings: Settings, machine: Machine, server: Server) -> CheckResult:
    """The bound on concurrent Argon2 computations (``argon2_max_concurrent``, per process) and
    how long a request waits for a slot (``argon2_wait_seconds``), against the machine's memory,
    its CPUs and gunicorn's worker timeout."""
    name = "argon2-pool"
    automatic = settings.argon2_max_concurrent == 0
    cost_kib = max(settings.kdf_memory_kib, settings.password_memory_kib)
    pool = settings.argon2_max_concurrent or auto_argon2_pool_size(
        cost_kib, machine.physical_bytes, machine.cpus
    )
    # A worker never runs more computations at once than it serves requests.
    per_process = pool if server.threads is None else min(pool, server.threads)
    fails, warns, summary = _argon2_memory_findings(settings, machine, server, per_process)
    wait = settings.argon2_wait_seconds
    longest = ARGON2_PER_REQUEST_MAX * wait
    # Only a worker that serves more requests at once than it has slots ever waits for one.
    waits = server.threads is None or server.threads > pool
    wait_fix = f"set argon2_wait_seconds to {WORKER_TIMEOUT_SECONDS // 2 // ARGON2_PER_REQUEST_MAX}"
    wait_fix += " or less (PORTAL_ARGON2_WAIT_SECONDS; the default is 10)"
    if waits and longest >= WORKER_TIMEOUT_SECONDS:
        fails.append(
            (
                f"argon2_wait_seconds is {wait}: a password change runs Argon2"
                f" {ARGON2_PER_REQUEST_MAX} times and may wait that long for each, {longest} s in"
                f" all, not less than gunicorn's {WORKER_TIMEOUT_SECONDS} s worker timeout: the"
                " person gets a proxy error and loses what they typed instead of the 'busy' page",
                wait_fix,
            )
        )
    elif waits and longest > WORKER_TIMEOUT_SECONDS // 2:
        warns.append(
            (
                f"argon2_wait_seconds is {wait}: a request may wait {longest} s for Argon2 slots"
                f" ({ARGON2_PER_REQUEST_MAX} computations), over half of gunicorn's"
                f" {WORKER_TIMEOUT_SECONDS} s worker timeout: under a burst, waiting requests"
                " pile up and hold the workers' threads",
                wait_fix,
            )
        )
    elif waits and wait == 0:
        warns.append(_no_wait("argon2_wait_seconds", "Argon2", "a log-in, receipt or concern"))
    if not automatic and pool > machine.cpus:
        warns.append(_beyond_cpus("argon2_max_concurrent", pool, machine, "computations"))
    verdict = _pool_verdict(name, fails, warns, summary)
    if verdict is not None:
        return verdict
    told = _workers_hint(server)
    setting = "automatic" if automatic else "argon2_max_concurrent"
    return _ok(
        name,
        f"each worker runs at most {per_process} Argon2 computation(s) at once ({setting}:"
        f" {pool}) and waits up to {wait} s for a slot; {summary}{told}",
    )


def _argon2_per_process(settings: Settings, machine: Machine, server: Server) -> int:
    cost_kib = max(settings.kdf_memory_kib, settings.password_memory_kib)
    pool = settings.argon2_max_concurrent or auto_argon2_pool_size(
        cost_kib, machine.physical_bytes, machine.cpus
    )
    return pool if server.threads is None else min(pool, server.threads)


def _workers_memory_findings(
    settings: Settings, machine: Machine, server: Server, per_process: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """(failures, warnings, what the worst case is) of the memory the workers may hold at once:
    every cleaning and Argon2 slot taken, every other thread holding a form's upload while it
    waits for a slot, and each worker's own."""
    form = settings.attachment_form_bytes
    upload = settings.max_request_bytes
    argon2_cost = max(settings.kdf_memory_kib, settings.password_memory_kib) * 1024
    argon2 = _argon2_per_process(settings, machine, server) * argon2_cost
    waiting = 0 if server.threads is None else max(0, server.threads - per_process)
    workers = server.workers or 1
    per_worker = per_process * form + waiting * upload + argon2 + WORKER_BASE_BYTES
    worst = workers * per_worker
    parts = [f"{per_process} × {_size(form)} cleaning forms"]
    if waiting:
        parts.append(f"{waiting} × {_size(upload)} uploads waiting")
    parts += [f"{_size(argon2)} Argon2", f"{_size(WORKER_BASE_BYTES)} its own"]
    who = f"{workers} worker(s)" if server.workers else "one worker process"
    summary = f"at worst {_size(worst)} held at once ({who} × ({' + '.join(parts)}))"
    if not machine.memory_bytes:
        return [], [], summary + "; the machine's memory is unknown, so not compared"
    budget = int(machine.memory_bytes * WORKERS_MEMORY_SHARE)
    if worst <= budget:
        return [], [], f"{summary}, of {_size(machine.memory_bytes)} ({machine.memory_source})"
    # The most slots per worker that stay within the budget: a thread that cleans holds a
    # form instead of an upload, so each slot adds (form - upload) where threads are known.
    others = argon2 + WORKER_BASE_BYTES + (0 if server.threads is None else server.threads * upload)
    step = form if server.threads is None else form - upload
    fits = (budget // workers - others) // step
    fix = (
        f"set attachment_max_concurrent = {fits} (PORTAL_ATTACHMENT_MAX_CONCURRENT)"
        + (" or run fewer workers or threads" if server.workers else "")
        if fits >= 1
        else "run fewer workers or threads, give the machine more memory, or allow fewer or"
        " smaller attachments (attachment_max_count, attachment_max_bytes)"
    )
    fix += (
        f": what the workers hold at worst should stay under"
        f" {WORKERS_MEMORY_SHARE:.0%} of {_size(machine.memory_bytes)} (docs/deploy.md, sizing)"
    )
    if worst > machine.memory_bytes:
        problem = (
            f"{summary}: more than {machine.memory_source} ({_size(machine.memory_bytes)}); a"
            " burst of uploads would make it swap or kill the portal"
        )
        return [(problem, fix)], [], summary
    problem = (
        f"{summary}: more than {WORKERS_MEMORY_SHARE:.0%} of {machine.memory_source}"
        f" ({_size(machine.memory_bytes)}), leaving little for the database, the proxy and the"
        " system"
    )
    return [], [(problem, fix)], summary


def check_attachment_pool(settings: Settings, machine: Machine, server: Server) -> CheckResult:
    """The bound on forms whose attachments are cleaned at once (``attachment_max_concurrent``,
    per process) and how long a form waits for a slot (``attachment_wait_seconds``), against
    the CPUs and gunicorn's worker timeout; and what the workers may hold at worst (cleaning,
    uploads waiting, Argon2 and their own) against the machine's memory."""
    name = "attachment-pool"
    if settings.attachment_max_count == 0:
        return _ok(name, "attachments are off (attachment_max_count = 0): nothing is cleaned")
    automatic = settings.attachment_max_concurrent == 0
    pool = settings.attachment_max_concurrent or auto_attachment_pool_size(
        settings.attachment_form_bytes, machine.physical_bytes, machine.cpus
    )
    # A worker never cleans more forms at once than it serves requests.
    per_process = pool if server.threads is None else min(pool, server.threads)
    fails, warns, summary = _workers_memory_findings(settings, machine, server, per_process)
    wait = settings.attachment_wait_seconds
    longest = wait + ARGON2_WAITS_WITH_FILES * settings.argon2_wait_seconds
    # Only a worker that serves more requests at once than it has slots ever waits for one.
    waits = server.threads is None or server.threads > pool
    how_long = (
        f"a concern with files may wait {wait} s for a cleaning slot and"
        f" {ARGON2_WAITS_WITH_FILES} × {settings.argon2_wait_seconds} s for Argon2 slots"
        f" (the access code, the receipt's key), {longest} s in all"
    )
    wait_fix = "set attachment_wait_seconds to 10 or less (PORTAL_ATTACHMENT_WAIT_SECONDS; the"
    wait_fix += " default is 10) and argon2_wait_seconds to 10 or less"
    if waits and longest >= WORKER_TIMEOUT_SECONDS:
        fails.append(
            (
                f"{how_long}, not less than gunicorn's {WORKER_TIMEOUT_SECONDS} s worker timeout:"
                " the reporter gets a proxy error and loses what they typed instead of the"
                " 'busy' page",
                wait_fix,
            )
        )
    elif waits and longest > WORKER_TIMEOUT_SECONDS // 2:
        warns.append(
            (
                f"{how_long}, over half of gunicorn's {WORKER_TIMEOUT_SECONDS} s worker timeout,"
                " on top of the cleaning itself (seconds for a large form)",
                wait_fix,
            )
        )
    elif waits and wait == 0:
        warns.append(_no_wait("attachment_wait_seconds", "cleaning", "a form with files"))
    if not automatic and pool > machine.cpus:
        warns.append(_beyond_cpus("attachment_max_concurrent", pool, machine, "cleanings"))
    verdict = _pool_verdict(name, fails, warns, summary)
    if verdict is not None:
        return verdict
    told = _workers_hint(server)
    setting = "automatic" if automatic else "attachment_max_concurrent"
    return _ok(
        name,
        f"each worker cleans at most {per_process} form(s) with attachments at once ({setting}:"
        f" {pool}, {_size(settings.attachment_form_bytes)} each at worst) and a form waits up"
        f" to {wait} s for a slot; {summary}{told}",
    )
