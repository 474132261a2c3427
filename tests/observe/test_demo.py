"""examples/dirty_limit_demo.py keeps working, and its "within quota" check is honest:
a vCPU that never dirtied more than the quota is not evidence, and a guest that dirties
nothing has nothing to limit."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from qmpdl.observe.run import load

DEMO = Path(__file__).parents[2] / "examples" / "dirty_limit_demo.py"


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_idle_guest_has_nothing_to_limit() -> None:
    run = _demo("--workload", "all:idle")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "unthrottled      0      0" in run.stdout
    assert (
        "nothing to limit: no vCPU dirties more than 1+25 MiB/s (the most is 0 MiB/s); "
        "a limit of 1 would hold trivially" in run.stdout
    )
    assert "within quota" not in run.stdout and "set-vcpu-dirty-limit" not in run.stdout


def test_only_vcpus_above_the_quota_are_judged(tmp_path: Path) -> None:
    trace = tmp_path / "demo.log"
    run = _demo("--workload", "1:idle", "--trace", str(trace))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "vCPU 1: already below the quota, not judged" in run.stdout
    periods = [line for line in run.stdout.splitlines() if line.strip().startswith("period")]
    assert sum("within quota+-25" in line for line in periods) == 3
    # vCPU 1 dirtied nothing throughout; vCPU 0 was limited to a quarter of its rate.
    assert all(line.split()[3] == "0" for line in periods)
    r = load(trace)
    assert r.limits[0].v[0] == r.limits[1].v[0] > 0
    assert len([v for v in r.rates[0].v if not math.isnan(v)]) >= 4
