"""Virtual time, measured: ``python3 -m bench.vtime_bench`` (``--quick``: one run each).

* ``hour-64``: one hour of a 64-vCPU guest (every vCPU a writer limited to 50 MB/s under
  QEMU's controller), driven through QMP: ``__com.qmpdl_clock-step`` of 1 s, 3600
  times, over one connection, on ``-accel sim,clock=virtual``.  Goal: under 2 s of wall
  time (QMP round trips included; process start-up not).
* ``minute-8``: 60 s of an 8-vCPU guest under the same limit, in process (the machine's
  stepped clock and its timer-driven throttle, no QMP).  Goal: under 0.1 s.
* ``examples``: each test of ``examples/test_virtual_time.py``, as pytest times its call
  (processes started and stopped included), medians of 5 runs (``--quick``: 1).  Goal:
  well under a second.  ``--examples-root DIR`` times another tree's examples with its
  own qmpdl (an older commit, for a before/after figure).

Medians of 3 runs (``--quick``: 1), results in ``bench/results/vtime.json``; the last
period's rates are checked to have converged, so a fast but wrong run does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import save
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP

QUOTA = 50
STEP = b'{"execute": "__com.qmpdl_clock-step", "arguments": {"ns": 1000000000}}'


def hour_64(seconds: int = 3600, vcpus: int = 64) -> dict[str, Any]:
    """Wall time of ``seconds`` 1-second clock steps of a ``vcpus``-vCPU guest."""
    with ManagedProcess() as proc:
        sock = str(Path(proc.dir) / "qmp.sock")
        proc.spawn(
            [
                sys.executable,
                "-m",
                "qmpdl",
                *("-qmp", f"unix:{sock},server=on,wait=off"),
                *("-accel", "sim,dirty-ring-size=4096,clock=virtual", "--seed", "1"),
                *("-smp", str(vcpus), "-m", f"{vcpus * 128}M"),
            ]
        )
        proc.wait_for_path(sock, 60)
        with RawQMP(sock, timeout=60) as conn:
            conn.negotiate()
            limit = {"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": QUOTA}}
            conn.command(json.dumps(limit).encode())
            conn.command(b'{"execute": "query-vcpu-dirty-limit"}')  # the model is built
            start = time.perf_counter()
            for _ in range(seconds):
                conn.command(STEP)
            wall = time.perf_counter() - start
            rates = json.loads(conn.command(b'{"execute": "query-vcpu-dirty-limit"}'))["return"]
            clock = json.loads(conn.command(b'{"execute": "__com.qmpdl_query-clock"}'))
            conn.command(b'{"execute": "quit"}')
    current = [r["current-rate"] for r in rates]
    return {
        "virtual_s": seconds,
        "vcpus": vcpus,
        "wall_s": wall,
        "steps_per_s": seconds / wall,
        "time_ns": clock["return"]["time-ns"],
        "last_rates": [min(current), max(current)],
    }


def minute_8(seconds: int = 60, vcpus: int = 8) -> dict[str, Any]:
    """Wall time of ``seconds`` of an ``vcpus``-vCPU machine stepped in process."""
    from qmpdl.config import AccelConfig, MachineConfig
    from qmpdl.system.build import build_machine

    config = MachineConfig(
        cpus=vcpus,
        max_cpus=vcpus,
        ram_size=vcpus * 128 << 20,
        accel=AccelConfig(kind="sim", dirty_ring_size=4096, clock="virtual"),
        seed=1,
    )
    machine = build_machine(config)
    machine.start()
    clock: Any = machine.clock
    try:
        with machine.bql:
            machine.dirtylimit.set_vcpu_dirty_limit(None, QUOTA)
        machine.dirtylimit.query_vcpu_dirty_limit()
        start = time.perf_counter()
        for _ in range(seconds):
            clock.step(1.0)
        wall = time.perf_counter() - start
        current = [machine.dirtylimit.current_rate(i) for i in range(vcpus)]
    finally:
        machine.teardown()
    return {"virtual_s": seconds, "vcpus": vcpus, "wall_s": wall, "last_rates": current}


ROOT = Path(__file__).resolve().parent.parent
_DURATION = re.compile(r"\s*([\d.]+)s call\s+examples/test_virtual_time\.py::(\S+)")


def examples(runs: int = 5, root: Path = ROOT) -> dict[str, Any]:
    """Wall time of each example test, from pytest's durations, ``runs`` times: the
    examples of ``root`` with the qmpdl of ``root``."""
    times: dict[str, list[float]] = {}
    env = {**os.environ, "PYTHONPATH": str(root)}
    for _ in range(runs):
        out = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
                *("--durations=0", "-vv", "examples/test_virtual_time.py"),
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"the examples failed:\n{out.stdout}{out.stderr}")
        for line in out.stdout.splitlines():
            found = _DURATION.match(line)
            if found:
                times.setdefault(found.group(2), []).append(float(found.group(1)))
    return {
        "root": str(root),
        "tests": {
            name: {"runs": t, "median_wall_s": statistics.median(t)} for name, t in times.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.vtime_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run of each")
    parser.add_argument(
        "--examples-root",
        type=Path,
        metavar="DIR",
        help="time only the examples of this tree (with its qmpdl); results not saved",
    )
    opts = parser.parse_args()
    if opts.examples_root is not None:
        found = examples(1 if opts.quick else 5, opts.examples_root.resolve())
        for name, row in found["tests"].items():
            print(f"{name}: median {row['median_wall_s']:.3f} s  runs {row['runs']}")
        return 0
    runs = 1 if opts.quick else 3
    hours = [hour_64(600 if opts.quick else 3600) for _ in range(runs)]
    minutes = [minute_8() for _ in range(runs)]
    out: dict[str, Any] = {
        "hour-64": {
            "runs": hours,
            "median_wall_s": statistics.median(r["wall_s"] for r in hours),
            "goal_wall_s": 2.0,
        },
        "minute-8": {
            "runs": minutes,
            "median_wall_s": statistics.median(r["wall_s"] for r in minutes),
            "goal_wall_s": 0.1,
        },
    }
    found = examples(1 if opts.quick else 5)
    out["examples"] = found
    path = save("vtime-quick" if opts.quick else "vtime", out)
    for name in ("hour-64", "minute-8"):
        row = out[name]
        print(f"{name}: median {row['median_wall_s']:.3f} s (goal < {row['goal_wall_s']} s)")
    for name, row in found["tests"].items():
        print(f"examples {name}: median {row['median_wall_s']:.3f} s")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
