"""The benchmarks still run, and the load test still loses nothing (bench/).

Figures are never asserted here (they are recorded in docs/benchmarks.md). What is asserted is
what the scripts check themselves: every submission succeeds in bench/submissions.py, and in
bench/load.py every confirmed concern, follow-up and reply is in the database, decryptable and
routed, and every refusal was told, with app servers killed and restarted mid-run. Each script
runs as a user runs it, in a subprocess with ``--quick``, so a change that breaks a benchmark
(as post/redirect/get once did, unnoticed) or loses a submission when a process dies fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portal.settings import PROJECT_ROOT
from tests.support.factories import NO_POSTGRES, POSTGRES_URL, REDIS_URL

TIMEOUT = 600  # seconds; the quick runs take well under a minute on an idle machine


def run_bench(script: str, out: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "bench" / script),
            "--quick",
            "--json",
            str(out),
            *args,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)
def test_load_and_faults_lose_nothing(tmp_path: Path) -> None:
    # A fifth of the concerns share one address: with Redis the per-client limit is shared by
    # both app servers and their workers, so that address meets it and is told with a 429.
    result = run_bench(
        "load.py",
        tmp_path / "load.json",
        "--database-url",
        POSTGRES_URL,
        "--redis-url",
        REDIS_URL,
        "--shared-share",
        "0.2",
        "--phases",
        "steady,faults",
    )
    assert result["database"].startswith("PostgreSQL")
    phases = {p["name"]: p for p in result["phases"]}
    assert set(phases) == {"steady", "faults"}
    for phase in phases.values():
        check = phase["check"]
        assert check["lost"] == 0, check["problems"]
        assert check["unclear answers"] == 0
        assert check["concerns confirmed (receipt shown)"] > 0
        assert check["concerns confirmed and intact"] == check["concerns confirmed (receipt shown)"]
        assert check["attachments confirmed"] > 0
        assert check["attachments confirmed and intact"] == check["attachments confirmed"]
        # Staff read the files back through either server, whichever stored them.
        assert set(phase["downloads"]) == {"read back"}
        assert check["follow-ups confirmed"] > 0
        assert check["follow-ups confirmed and in the thread"] == check["follow-ups confirmed"]
        assert check["replies confirmed"] > 0
        assert check["replies confirmed and in the thread"] == check["replies confirmed"]
        # Every concern ended one way or the other: a receipt, or a page or error saying no.
        assert sum(phase["concerns"].values()) == 60
        assert "not finished" not in phase["concerns"]
    faults = phases["faults"]
    assert any("SIGKILL to one worker of server A" in e for e in faults["events"])
    assert any("SIGKILL to server A" in e and "all workers" in e for e in faults["events"])
    assert any("server A listening again" in e for e in faults["events"])
    assert faults["failovers"] > 0  # requests did meet the dead server and went to B
    if REDIS_URL:
        assert result["rate_limits"] == "redis"
        refused = sum(
            count
            for phase in phases.values()
            for told, count in phase["concerns"].items()
            if told.startswith("POST /report 429")
        )
        assert refused > 0


def test_submission_benchmark_runs(tmp_path: Path) -> None:
    result = run_bench("submissions.py", tmp_path / "submissions.json", "--profiles", "test")
    names = [p["name"] for p in result["phases"]]
    assert names == ["bare", "portal-test-argon2"]
    for phase in result["phases"]:
        assert phase["failures"] == 0, phase["errors"]
        assert phase["successes"] == phase["planned"]
