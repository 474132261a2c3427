"""Virtual time, measured: ``python3 -m bench.vtime_bench`` (``--quick``: one run each).

* ``hour-64``: one hour of a 64-vCPU guest (every vCPU a writer limited to 50 MB/s under
  QEMU's controller), driven through QMP: ``__com.qmpdl_clock-step`` of 1 s, 3600
  times, over one connection, on ``-accel sim,clock=virtual``.  Goal: under 2 s of wall
  time (QMP round trips included; process start-up not).
* ``minute-8``: 60 s of an 8-vCPU guest under the same limit, in process (the machine's
  stepped clock and its timer-driven throttle, no QMP).  Goal: under 0.1 s.

Medians of 3 runs (``--quick``: 1), results in ``bench/results/vtime.json``; the last
period's rates are checked to have converged, so a fast but wrong run does not count.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.vtime_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run of each")
    opts = parser.parse_args()
    runs = 1 if opts.quick else 3
    hours = [hour_64(600 if opts.quick else 3600) for _ in range(runs)]
    minutes = [minute_8() for _ in range(runs)]
    out = {
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
    path = save("vtime-quick" if opts.quick else "vtime", out)
    for name, row in out.items():
        print(f"{name}: median {row['median_wall_s']:.3f} s (goal < {row['goal_wall_s']} s)")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
