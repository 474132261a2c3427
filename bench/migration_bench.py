"""Live migration of a write-heavy guest: dirty-limit vs auto-converge vs neither.

    python3 -m bench.migration_bench [--quick] [--runs N] [--report JSON]

The shape of the cover letter's table (spec clients.md 5.1): a guest whose writer
re-dirties ``wss`` MiB at about 450 MiB/s migrates over a 1 GbE-like link
(``max-bandwidth`` 125000000, ``downtime-limit`` 300 ms).  Without throttling every pass
finds the whole working set dirty again, so it never converges; ``auto-converge``
throttles every vCPU (20 %, +10 % per trigger); ``dirty-limit`` limits every vCPU to
``vcpu-dirty-limit`` (the default, 1 MB/s) with QEMU's controller.

Rows: qmpdl with simulated vCPUs, qmpdl with real vCPUs (``/dev/kvm``), and real QEMU
7.2 running the same writer loop as a multiboot kernel (QEMU 7.2 has no ``dirty-limit``
capability; its image has one vCPU, so no reader).  The qmpdl guests have a second
vCPU that reads 64 MiB over and over: its throughput during the migration, relative to
before, shows who pays for the throttle.  Guest progress is read from the programs' pass
counters in guest memory with HMP ``xp``, the same way on QEMU and qmpdl.

Per run: total time, downtime, passes (``dirty-sync-count``), whether it completed
within the cap (then it is cancelled), the writer's and the reader's MiB/s during the
migration.  Medians over the runs.  Results: ``bench/results/migration.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.common import median, parser, qemu_argv, qmpdl_argv, save
from qmpdl.kvm import guest
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import kvm_usable, qemu_binary
from qmpdl.tools.rawqmp import RawQMP

BANDWIDTH = 125_000_000
READER_WSS = 64  # MiB
MODES = ("none", "auto-converge", "dirty-limit")


class Guest:
    """One VM (source or destination) behind a QMP connection."""

    def __init__(self, qmp: RawQMP, blocks: list[tuple[int, int]]) -> None:
        self.qmp = qmp
        #: (parameter block address, working set MiB) per observed program
        self.blocks = blocks

    def call(self, name: str, args: dict[str, Any] | None = None) -> Any:
        request: dict[str, Any] = {"execute": name}
        if args:
            request["arguments"] = args
        reply = json.loads(self.qmp.command(json.dumps(request).encode(), timeout=30))
        if "error" in reply:
            raise RuntimeError(f"{name}: {reply['error']['desc']}")
        return reply["return"]

    def passes(self) -> list[int]:
        out = []
        for address, _ in self.blocks:
            text = self.call("human-monitor-command", {"command-line": f"xp /4wx {address:#x}"})
            out.append(int(text.split()[4], 16))
        return out

    def mib_done(self) -> list[float]:
        return [p * wss for p, (_, wss) in zip(self.passes(), self.blocks, strict=True)]


@contextmanager
def vm(kind: str, wss: int, workdir: Path, name: str, incoming: str | None) -> Iterator[Guest]:
    """A source (``incoming`` None) or destination VM of ``kind`` (sim, kvm, qemu)."""
    sock = workdir / f"{name}.sock"
    ram = wss + READER_WSS + 64
    if kind == "qemu":
        image = workdir / "writer.img"
        if not image.exists():
            base = guest.MULTIBOOT_WS[0]
            guest.write_multiboot_image(image, ws_base=base, ws_end=base + wss * (1 << 20))
        argv = qemu_argv("-kernel", str(image), "-m", str(ram), "-smp", "1")
        blocks = [(guest.MULTIBOOT_LOAD + 0x1000, wss)]
    else:
        argv = qmpdl_argv("-accel", f"{kind},dirty-ring-size=4096", "-m", f"{ram}M", "-smp", "2")
        argv += ["--workload", f"0:write,wss={wss}M", "--workload", f"1:read,wss={READER_WSS}M"]
        blocks = [(guest.BLOCK_BASE, wss), (guest.BLOCK_BASE + 0x1000, READER_WSS)]
    argv += ["-qmp", f"unix:{sock},server=on,wait=off"]
    if incoming:
        argv += ["-incoming", incoming]
    with ManagedProcess(argv, workdir=workdir) as proc:
        proc.wait_for_path(str(sock), 30)
        with RawQMP(str(sock), timeout=30) as qmp:
            qmp.negotiate()
            yield Guest(qmp, blocks)


def wait_first_pass(g: Guest, timeout: float = 60.0) -> None:
    """Until every program completed a pass (QEMU boots SeaBIOS first)."""
    deadline = time.monotonic() + timeout
    while min(g.passes()) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("the guest made no pass")
        time.sleep(0.1)


def rates(g: Guest, seconds: float) -> list[float]:
    before, t0 = g.mib_done(), time.monotonic()
    time.sleep(seconds)
    after = g.mib_done()
    return [(a - b) / (time.monotonic() - t0) for a, b in zip(after, before, strict=True)]


def one_run(kind: str, mode: str, wss: int, cap: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-mig-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        uri = f"unix:{workdir / 'migrate.sock'}"
        src = stack.enter_context(vm(kind, wss, workdir, "src", None))
        stack.enter_context(vm(kind, wss, workdir, "dst", uri))
        wait_first_pass(src)
        before = rates(src, 3.0)
        caps = [{"capability": "events", "state": True}]
        if mode != "none":
            caps.append({"capability": mode, "state": True})
        src.call("migrate-set-capabilities", {"capabilities": caps})
        src.call("migrate-set-parameters", {"max-bandwidth": BANDWIDTH, "downtime-limit": 300})
        done0, t0 = src.mib_done(), time.monotonic()
        src.call("migrate", {"uri": uri})
        info: dict[str, Any] = {}
        during: list[float] = []
        while time.monotonic() - t0 < cap:
            info = src.call("query-migrate")
            if info.get("status") in ("completed", "failed"):
                break
            # guest progress up to the switchover (the vCPUs stop there)
            if info.get("status") == "active":
                done, elapsed = src.mib_done(), time.monotonic() - t0
                during = [(d - s) / elapsed for d, s in zip(done, done0, strict=True)]
            time.sleep(0.1)
        converged = info.get("status") == "completed"
        if converged and not info.get("total-time"):
            # QEMU reports "completed" a moment before it has filled in the times
            time.sleep(0.5)
            info = src.call("query-migrate")
        if not converged:
            src.call("migrate_cancel")
        ram = info.get("ram", {})
        result: dict[str, Any] = {
            "converged": converged,
            "status": info.get("status"),
            "total_time_ms": info.get("total-time") if converged else int(cap * 1000),
            "downtime_ms": info.get("downtime"),
            "passes": ram.get("dirty-sync-count"),
            "transferred_MB": round(ram.get("transferred", 0) / 1e6, 1),
            "cpu_throttle_last": info.get("cpu-throttle-percentage"),
            "writer_MiBps_before": round(before[0], 1),
            "writer_MiBps_during": round(during[0], 1) if during else None,
        }
        if len(before) > 1 and during:
            result["reader_MiBps_before"] = round(before[1], 1)
            result["reader_MiBps_during"] = round(during[1], 1)
            result["reader_ratio"] = round(during[1] / before[1], 3) if before[1] else None
        return result


def main() -> int:
    opts = parser(__doc__, "1 run, 64 MiB only, 30 s cap").parse_args()
    if opts.report:
        print(report(json.loads(Path(opts.report).read_text())))
        return 0
    runs = 1 if opts.quick else opts.runs
    sizes = [64] if opts.quick else [64, 256]
    cap = 30.0 if opts.quick else 45.0
    kinds = ["sim"]
    if kvm_usable():
        kinds.append("kvm")
        if qemu_binary() is not None:
            kinds.append("qemu")
    results: dict[str, Any] = {
        "runs": runs,
        "cap_s": cap,
        "bandwidth": BANDWIDTH,
        "downtime_limit_ms": 300,
        "cells": [],
    }
    for wss in sizes:
        for kind in kinds:
            for mode in MODES:
                if kind == "qemu" and mode == "dirty-limit":
                    continue
                done: list[dict[str, Any]] = []
                for _ in range(runs):
                    done.append(one_run(kind, mode, wss, cap))
                    print(f"{kind} {mode} {wss} MiB: {done[-1]}", file=sys.stderr)
                results["cells"].append({"kind": kind, "mode": mode, "wss_MiB": wss, "runs": done})
    path = save("migration" + ("-quick" if opts.quick else ""), results)
    print(report(results))
    print(f"\n(results: {path})")
    return 0


def _fmt(values: list[Any], digits: int = 0) -> str:
    clean = [float(v) for v in values if v is not None]
    return f"{median(clean):.{digits}f}" if clean else "-"


def report(results: dict[str, Any]) -> str:
    names = {"sim": "qmpdl-sim", "kvm": "qmpdl-kvm", "qemu": "QEMU 7.2"}
    lines = [
        f"max-bandwidth {results['bandwidth'] / 1e6:.0f} MB/s, downtime-limit "
        f"{results['downtime_limit_ms']} ms, cap {results['cap_s']:.0f} s, medians of "
        f"{results['runs']} run(s)",
        "",
        "| writer wss | VM | mode | converged | total time (s) | downtime (ms) | passes "
        "| writer MiB/s during | reader during/before |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in results["cells"]:
        rs = cell["runs"]
        done = sum(1 for r in rs if r["converged"])
        # a converged run without times: QEMU answered before filling them in
        timed = [r for r in rs if r["converged"] and r["total_time_ms"]]
        total = _fmt([r["total_time_ms"] / 1000 for r in timed], 1)
        lines.append(
            f"| {cell['wss_MiB']} MiB | {names[cell['kind']]} | {cell['mode']} "
            f"| {done}/{len(rs)} | {total if done else 'never'} "
            f"| {_fmt([r['downtime_ms'] for r in timed])} "
            f"| {_fmt([r['passes'] for r in rs])} "
            f"| {_fmt([r['writer_MiBps_during'] for r in rs])} "
            f"| {_fmt([r.get('reader_ratio') for r in rs], 3)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
