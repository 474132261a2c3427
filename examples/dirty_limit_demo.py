#!/usr/bin/env python3
"""Watch QEMU's dirty limit take effect, through qemu.qmp's QMPClient.

By default this starts qmpdl (2 simulated vCPUs writing ~450 MiB/s, a 4096-entry dirty
ring), measures the dirty rate, limits every vCPU to a quarter of it, prints the rate
of each throttle period until it settles, cancels the limit and shows the recovery.

With ``--qmp PATH`` it drives an already running qmpdl - or a real QEMU started with
``-accel kvm,dirty-ring-size=4096`` - instead: the script cannot tell them apart.

Only vCPUs that dirty more than the quota (plus QEMU's tolerance of 25 MiB/s) before the
limit can show it working; the others are reported as below the quota.  If no vCPU
does (an idle guest, ``--workload all:idle``), there is nothing to limit: the script
says so and exits with status 2 instead of "passing" on rates that were never above it.

    python3 examples/dirty_limit_demo.py [--qmp PATH] [--quota MiB/s] [--qemu-version 7.2]
        [--workload CPUS:KIND[,...]] [--trace FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from qemu.qmp import QMPClient

TOLERANCE = 25  # MiB/s: QEMU's dead band


async def wait_for_socket(path: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise SystemExit(f"qmpdl exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit("qmpdl did not open its QMP socket")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def qmpdl(args: list[str]) -> AsyncIterator[str]:
    """Run qmpdl with a QMP socket in a temporary directory; yield the socket path."""
    with tempfile.TemporaryDirectory(prefix="qmpdl-demo-") as tmp:
        path = os.path.join(tmp, "qmp.sock")
        argv = [sys.executable, "-m", "qmpdl", "-qmp", f"unix:{path},server=on,wait=off", *args]
        print("$ qmpdl " + " ".join(argv[3:]))
        proc = subprocess.Popen(argv)
        try:
            await wait_for_socket(path, proc)
            yield path
        finally:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(10)


async def measure(qmp: QMPClient, seconds: int = 1) -> list[int]:
    """One dirty-ring measurement: per-vCPU MiB/s."""
    await qmp.execute("calc-dirty-rate", {"calc-time": seconds, "mode": "dirty-ring"})
    deadline = time.monotonic() + seconds + 10
    while True:
        info: Any = await qmp.execute("query-dirty-rate")
        if info["status"] == "measured":
            return [v["dirty-rate"] for v in info["vcpu-dirty-rate"]]
        if time.monotonic() > deadline:
            raise SystemExit(f"measurement did not finish: {info}")
        await asyncio.sleep(0.05)


async def next_period(qmp: QMPClient, last: list[Any], timeout: float = 5) -> list[Any]:
    """Poll query-vcpu-dirty-limit until the throttle thread publishes a new period."""
    deadline = time.monotonic() + timeout
    while True:
        limits: Any = await qmp.execute("query-vcpu-dirty-limit")
        if limits != last:
            return list(limits)
        if time.monotonic() > deadline:
            return list(limits)
        await asyncio.sleep(0.05)


def row(label: str, rates: list[int]) -> str:
    return f"{label:>12} " + " ".join(f"{r:>6}" for r in rates)


async def demo(path: str, quota: int | None, periods: int, quit_after: bool) -> int:
    qmp = QMPClient("dirty-limit-demo")
    await qmp.connect(path)
    try:
        assert qmp.greeting is not None
        version: Any = qmp.greeting.QMP.version["qemu"]
        print(f"connected: QEMU {version['major']}.{version['minor']}.{version['micro']}")
        cpus: Any = await qmp.execute("query-cpus-fast")  # JSON, as QEMU sent it
        print(f"{len(cpus)} vCPUs; MiB/s per vCPU below\n")
        print(row("vCPU", list(range(len(cpus)))))
        before = await measure(qmp)
        print(row("unthrottled", before))
        quota = quota or max(1, max(before) // 4)
        # Only a vCPU that dirtied more than the quota allows can show the limit working.
        judged = [i for i, rate in enumerate(before) if rate > quota + TOLERANCE]
        if not judged:
            print(
                f"\nnothing to limit: no vCPU dirties more than {quota}+{TOLERANCE} MiB/s "
                f"(the most is {max(before, default=0)} MiB/s); a limit of {quota} would "
                "hold trivially"
            )
            if quit_after:
                await qmp.execute("quit")
            return 2
        if len(judged) < len(before):
            below = ", ".join(str(i) for i in range(len(before)) if i not in judged)
            print(f"\nvCPU {below}: already below the quota, not judged")
        print(f"\nset-vcpu-dirty-limit dirty-rate={quota}")
        await qmp.execute("set-vcpu-dirty-limit", {"dirty-rate": quota})
        # current-rate reads 0 until the throttle thread's first period ends.
        first: Any = await qmp.execute("query-vcpu-dirty-limit")
        last: list[Any] = list(first)
        settled = 0
        for period in range(1, periods + 1):
            last = await next_period(qmp, last)
            rates = [entry["current-rate"] for entry in last]
            within = all(abs(rates[i] - quota) <= TOLERANCE for i in judged)
            settled = settled + 1 if within else 0
            print(row(f"period {period}", rates) + ("   within quota+-25" if within else ""))
            if settled >= 3:
                break
        hmp = await qmp.execute("human-monitor-command", {"command-line": "info vcpu_dirty_limit"})
        print("\n(hmp) info vcpu_dirty_limit\n" + str(hmp).replace("\r\n", "\n").rstrip())
        started = time.monotonic()
        await qmp.execute("cancel-vcpu-dirty-limit")
        print(f"\ncancel-vcpu-dirty-limit (returned after {time.monotonic() - started:.2f} s)")
        print(row("recovered", await measure(qmp)))
        if quit_after:
            await qmp.execute("quit")
        return 0 if settled >= 3 else 1
    finally:
        # After quit the server closes the connection (as QEMU does): EOF is expected.
        with contextlib.suppress(EOFError):
            await qmp.disconnect()


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--qmp", help="QMP socket of a running qmpdl or QEMU (default: start qmpdl)"
    )
    parser.add_argument(
        "--quota", type=int, help="MiB/s per vCPU (default: a quarter of the measured rate)"
    )
    parser.add_argument("--periods", type=int, default=20, help="throttle periods to watch at most")
    parser.add_argument("--qemu-version", default=None, help="QEMU version qmpdl answers as")
    parser.add_argument("--smp", default="2")
    parser.add_argument(
        "--workload",
        action="append",
        default=[],
        metavar="CPUS:KIND[,...]",
        help="what qmpdl's vCPUs run (see qmpdl --help), e.g. all:idle",
    )
    parser.add_argument(
        "--trace", metavar="FILE", help="qmpdl writes its dirtylimit_*/dirtyrate_* trace to FILE"
    )
    opts = parser.parse_args()
    if opts.qmp:
        return await demo(opts.qmp, opts.quota, opts.periods, quit_after=False)
    args = ["-smp", opts.smp, "-accel", "sim,dirty-ring-size=4096"]
    if opts.qemu_version:
        args += ["--qemu-version", opts.qemu_version]
    for workload in opts.workload:
        args += ["--workload", workload]
    if opts.trace:
        args += ["-trace", "dirtylimit_*", "-trace", "dirtyrate_*"]
        args += ["-D", os.path.abspath(opts.trace)]
    async with qmpdl(args) as path:
        return await demo(path, opts.quota, opts.periods, quit_after=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
