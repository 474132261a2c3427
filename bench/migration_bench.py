"""Live migration of a write-heavy guest: dirty-limit vs auto-converge vs neither.

    python3 -m bench.migration_bench [--quick] [--runs N] [--report JSON] [--cancel]

The shape of the cover letter's table (spec clients.md 5.1): a guest whose writer
re-dirties ``wss`` MiB as fast as it can migrates over a 1 GbE-like link
(``max-bandwidth`` 125000000, ``downtime-limit`` 300 ms).  Without throttling every pass
finds the whole working set dirty again, so it never converges; ``auto-converge``
throttles every vCPU (20 %, +10 % per trigger); ``dirty-limit`` limits every vCPU to
``vcpu-dirty-limit`` (the default, 1 MB/s) with QEMU's controller.

Rows: qmpdl (``--qemu-version 10.0``) with simulated vCPUs and with real vCPUs
(``/dev/kvm``), and real QEMU 7.2 and 10.0: two processes of each, migrating over a unix
socket, the same writer loop (QEMU boots it as a multiboot kernel).  QEMU 7.2 has no
``dirty-limit`` capability.  The simulated writer runs at the rate QEMU's loop reaches
on this host (measured first; it is emulation-bound on the host's KVM).  The qmpdl guests
have a second vCPU that reads 64 MiB over and over: its throughput during the migration,
relative to before, shows who pays for the throttle (QEMU's image has one vCPU).  Guest
progress is read from the programs' pass counters in guest memory with HMP ``xp``, the
same way on QEMU and qmpdl.

Per run: total time, downtime, passes (``dirty-sync-count``), whether it completed
within the cap (then it is cancelled, and the time until ``cancelled`` is taken), the
writer's and the reader's MiB/s during the migration, the largest
``dirty-limit-throttle-time-per-round`` and ``dirty-limit-ring-full-time`` seen, what
``query-vcpu-dirty-limit`` shows at the end, and the load average.  Medians over the
runs.  Results: ``bench/results/migration.json``.

``--cancel`` times ``migrate_cancel`` instead: a dirty-limit migration of a 256 MiB
writer too slow to converge, cancelled a few seconds after the limit engaged (QEMU 10.0
and qmpdl; ``bench/results/migration-cancel.json``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS,
    machine,
    median,
    parser,
    qemu_argv,
    qemu_available,
    qmpdl_argv,
    save,
)
from qmpdl.kvm import guest
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import ORACLES, kvm_usable
from qmpdl.tools.rawqmp import RawQMP

BANDWIDTH = 125_000_000
READER_WSS = 64  # MiB
MODES = ("none", "auto-converge", "dirty-limit")
#: The profile qmpdl answers as (the newest QEMU measured beside it).
PROFILE = "10.0"
#: The simulated writer's MiB/s when no QEMU runs to measure it (the anchors' guest).
SIM_RATE = 450.0


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
def vm(
    kind: str, wss: int, workdir: Path, name: str, incoming: str | None, *, sim_rate: float
) -> Iterator[Guest]:
    """A source (``incoming`` None) or destination VM of ``kind`` (sim, kvm, or
    qemu-VERSION)."""
    sock = workdir / f"{name}.sock"
    ram = wss + READER_WSS + 64
    if kind.startswith("qemu-"):
        image = workdir / "writer.img"
        if not image.exists():
            base = guest.MULTIBOOT_WS[0]
            guest.write_multiboot_image(image, ws_base=base, ws_end=base + wss * (1 << 20))
        argv = qemu_argv(
            "-kernel", str(image), "-m", str(ram), "-smp", "1", version=kind.removeprefix("qemu-")
        )
        blocks = [(guest.MULTIBOOT_LOAD + 0x1000, wss)]
    else:
        argv = qmpdl_argv("-accel", f"{kind},dirty-ring-size=4096", "-m", f"{ram}M", "-smp", "2")
        writer = f"0:write,wss={wss}M" + (f",rate={sim_rate:.0f}" if kind == "sim" else "")
        argv += ["--qemu-version", PROFILE, "--workload", writer]
        argv += ["--workload", f"1:read,wss={READER_WSS}M"]
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


def writer_rate(wss: int) -> float:
    """The MiB/s QEMU's writer loop reaches on this host (10.0, else 7.2, else
    :data:`SIM_RATE`): the simulated writer runs at it."""
    for version in reversed(ORACLES):
        if qemu_available(version) and kvm_usable():
            with (
                tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp,
                vm(f"qemu-{version}", wss, Path(tmp), "src", None, sim_rate=SIM_RATE) as g,
            ):
                wait_first_pass(g)
                return rates(g, 3.0)[0]
    return SIM_RATE


def one_run(kind: str, mode: str, wss: int, cap: float, sim_rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-mig-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        uri = f"unix:{workdir / 'migrate.sock'}"
        load = os.getloadavg()[0]
        src = stack.enter_context(vm(kind, wss, workdir, "src", None, sim_rate=sim_rate))
        stack.enter_context(vm(kind, wss, workdir, "dst", uri, sim_rate=sim_rate))
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
        throttle = ring_full = 0
        while time.monotonic() - t0 < cap:
            info = src.call("query-migrate")
            throttle = max(throttle, info.get("dirty-limit-throttle-time-per-round", 0))
            ring_full = max(ring_full, info.get("dirty-limit-ring-full-time", 0))
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
        cancel_s = None
        if not converged:
            t_cancel = time.monotonic()
            src.call("migrate_cancel")
            end = {"cancelled", "completed", "failed"}
            while src.call("query-migrate").get("status") not in end:
                if time.monotonic() - t_cancel > 60:
                    raise TimeoutError("migrate_cancel did not end the migration")
                time.sleep(0.05)
            cancel_s = round(time.monotonic() - t_cancel, 2)
        limits = src.call("query-vcpu-dirty-limit")
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
            "throttle_time_per_round_us": throttle or None,
            "ring_full_time_us": ring_full or None,
            "cancel_s": cancel_s,
            "limit_after": [x["limit-rate"] for x in limits],
            "loadavg_1min": round(load, 2),
        }
        if len(before) > 1 and during:
            result["reader_MiBps_before"] = round(before[1], 1)
            result["reader_MiBps_during"] = round(during[1], 1)
            result["reader_ratio"] = round(during[1] / before[1], 3) if before[1] else None
        return result


#: ``--cancel``: a dirty-limit migration too slow to converge (one ring of fresh pages per
#: pass, 16.8 MB, is more than 50 MB/s x 300 ms), cancelled this long after the limit
#: engaged: the migration thread spends most of each pass in the dirty-bitmap sync that
#: waits for the sleeping writer.
CANCEL_BANDWIDTH = 50_000_000
CANCEL_AFTER = 6.0


def cancel_run(kind: str, wss: int, sim_rate: float) -> dict[str, Any]:
    """How long ``migrate_cancel`` takes to end a dirty-limit migration (QEMU waits for
    the sleeping writer when the migration thread is in a dirty-bitmap sync), and what
    limit it leaves."""
    with tempfile.TemporaryDirectory(prefix="bench-mig-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        uri = f"unix:{workdir / 'migrate.sock'}"
        load = os.getloadavg()[0]
        src = stack.enter_context(vm(kind, wss, workdir, "src", None, sim_rate=sim_rate))
        stack.enter_context(vm(kind, wss, workdir, "dst", uri, sim_rate=sim_rate))
        wait_first_pass(src)
        caps = [{"capability": "dirty-limit", "state": True}]
        src.call("migrate-set-capabilities", {"capabilities": caps})
        src.call("migrate-set-parameters", {"max-bandwidth": CANCEL_BANDWIDTH})
        src.call("migrate", {"uri": uri})
        deadline = time.monotonic() + 60
        while "dirty-limit-throttle-time-per-round" not in src.call("query-migrate"):
            if time.monotonic() > deadline:
                raise TimeoutError("the dirty limit did not engage")
            time.sleep(0.1)
        time.sleep(CANCEL_AFTER)
        throttle = src.call("query-migrate").get("dirty-limit-throttle-time-per-round")
        t0 = time.monotonic()
        src.call("migrate_cancel")
        reply_s = time.monotonic() - t0
        while src.call("query-migrate").get("status") != "cancelled":
            if time.monotonic() - t0 > 60:
                raise TimeoutError("migrate_cancel did not end the migration")
            time.sleep(0.02)
        return {
            "reply_s": round(reply_s, 3),
            "cancelled_s": round(time.monotonic() - t0, 3),
            "throttle_time_per_round_us": throttle,
            "limit_after": [x["limit-rate"] for x in src.call("query-vcpu-dirty-limit")],
            "loadavg_1min": round(load, 2),
        }


def cancel_main(runs: int, wss: int) -> int:
    kinds = ["sim"]
    if kvm_usable():
        kinds.append("kvm")
        kinds += [f"qemu-{v}" for v in ORACLES if qemu_available(v) and v != "7.2"]
    sim_rate = round(writer_rate(wss), 1)
    results: dict[str, Any] = {"wss_MiB": wss, "sim_writer_MiBps": sim_rate, "kinds": {}}
    for kind in kinds:
        results["kinds"][kind] = [cancel_run(kind, wss, sim_rate) for _ in range(runs)]
        print(f"{kind}: {results['kinds'][kind]}", file=sys.stderr)
    path = save("migration-cancel", results)
    print(cancel_report(results))
    print(f"\n(results: {path})")
    return 0


def cancel_report(results: dict[str, Any]) -> str:
    lines = [
        f"dirty-limit migration of a {results['wss_MiB']} MiB writer at "
        f"{CANCEL_BANDWIDTH / 1e6:.0f} MB/s, cancelled {CANCEL_AFTER:.0f} s after the limit "
        "engaged (medians)",
        "",
        "| VM | throttle/round (ms) | migrate_cancel reply (s) | until cancelled (s) "
        "| limit after |",
        "|---|---|---|---|---|",
    ]
    for kind, rs in results["kinds"].items():
        limits = {str(r["limit_after"]) for r in rs}
        lines.append(
            f"| {_name(kind)} "
            f"| {_fmt([r['throttle_time_per_round_us'] / 1000 for r in rs])} "
            f"| {_fmt([r['reply_s'] for r in rs], 2)} "
            f"| {_fmt([r['cancelled_s'] for r in rs], 2)} | {', '.join(sorted(limits))} |"
        )
    return "\n".join(lines)


def main() -> int:
    cli = parser(__doc__, "1 run, 64 MiB only, 30 s cap")
    cli.add_argument(
        "--cancel", action="store_true", help="only time migrate_cancel of a dirty-limit run"
    )
    cli.add_argument(
        "--kinds",
        nargs="+",
        metavar="KIND",
        help="re-run only these rows (sim, kvm, qemu-7.2, qemu-10.0) into the saved results",
    )
    cli.add_argument(
        "--sim-rate", type=float, help="the simulated writer's MiB/s (default: measured)"
    )
    opts = cli.parse_args()
    if opts.report:
        data = json.loads(Path(opts.report).read_text())
        print(cancel_report(data) if "kinds" in data else report(data))
        return 0
    if opts.cancel:
        return cancel_main(1 if opts.quick else opts.runs, 256)
    runs = 1 if opts.quick else opts.runs
    sizes = [64] if opts.quick else [64, 256]
    cap = 30.0 if opts.quick else 45.0
    kinds = ["sim"]
    if kvm_usable():
        kinds.append("kvm")
        kinds += [f"qemu-{v}" for v in ORACLES if qemu_available(v)]
    if opts.kinds:
        kinds = [k for k in kinds if k in opts.kinds]
    sim_rate = opts.sim_rate or round(writer_rate(max(sizes)), 1)
    print(f"simulated writer: {sim_rate} MiB/s", file=sys.stderr)
    results: dict[str, Any] = {
        "runs": runs,
        "cap_s": cap,
        "bandwidth": BANDWIDTH,
        "downtime_limit_ms": 300,
        "profile": PROFILE,
        "sim_writer_MiBps": sim_rate,
        "cells": [],
    }
    for wss in sizes:
        for kind in kinds:
            for mode in MODES:
                if kind == "qemu-7.2" and mode == "dirty-limit":
                    continue  # QEMU 7.2 has no dirty-limit capability
                done: list[dict[str, Any]] = []
                for _ in range(runs):
                    done.append(one_run(kind, mode, wss, cap, sim_rate))
                    print(f"{kind} {mode} {wss} MiB: {done[-1]}", file=sys.stderr)
                results["cells"].append({"kind": kind, "mode": mode, "wss_MiB": wss, "runs": done})
    name = "migration" + ("-quick" if opts.quick else "")
    saved = RESULTS / f"{name}.json"
    if opts.kinds and saved.exists():
        # the other rows stay as they were measured
        old = json.loads(saved.read_text())
        fresh = {(c["kind"], c["mode"], c["wss_MiB"]): c for c in results["cells"]}
        results["cells"] = [
            fresh.pop((c["kind"], c["mode"], c["wss_MiB"]), c) for c in old["cells"]
        ] + list(fresh.values())
        results["rerun"] = {"kinds": opts.kinds, "machine": machine()}
    path = save(name, results)
    print(report(results))
    print(f"\n(results: {path})")
    return 0


def _fmt(values: list[Any], digits: int = 0) -> str:
    clean = [float(v) for v in values if v is not None]
    return f"{median(clean):.{digits}f}" if clean else "-"


def _name(kind: str) -> str:
    return {"sim": "qmpdl-sim", "kvm": "qmpdl-kvm"}.get(kind, kind.replace("qemu-", "QEMU "))


def report(results: dict[str, Any]) -> str:
    loads = [r["loadavg_1min"] for c in results["cells"] for r in c["runs"] if "loadavg_1min" in r]
    lines = [
        f"max-bandwidth {results['bandwidth'] / 1e6:.0f} MB/s, downtime-limit "
        f"{results['downtime_limit_ms']} ms, cap {results['cap_s']:.0f} s, medians of "
        f"{results['runs']} run(s); qmpdl as {results.get('profile', '7.2')}, simulated writer "
        f"{results.get('sim_writer_MiBps', SIM_RATE):.0f} MiB/s; load average (1 min) at the "
        f"runs' start: median {_fmt(loads, 1)}, max {max(loads, default=0):.1f}",
        "",
        "| writer wss | VM | mode | converged | total time (s) | downtime (ms) | passes "
        "| writer MiB/s during | reader during/before | throttle/round (ms) "
        "| ring-full (ms) | cancel (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in results["cells"]:
        rs = cell["runs"]
        done = sum(1 for r in rs if r["converged"])
        # a converged run without times: QEMU answered before filling them in
        timed = [r for r in rs if r["converged"] and r["total_time_ms"]]
        total = _fmt([r["total_time_ms"] / 1000 for r in timed], 1)
        throttle = [r.get("throttle_time_per_round_us") for r in rs]
        ring_full = [r.get("ring_full_time_us") for r in rs]
        lines.append(
            f"| {cell['wss_MiB']} MiB | {_name(cell['kind'])} | {cell['mode']} "
            f"| {done}/{len(rs)} | {total if done else 'never'} "
            f"| {_fmt([r['downtime_ms'] for r in timed])} "
            f"| {_fmt([r['passes'] for r in rs])} "
            f"| {_fmt([r['writer_MiBps_during'] for r in rs])} "
            f"| {_fmt([r.get('reader_ratio') for r in rs], 3)} "
            f"| {_fmt([t / 1000 if t else None for t in throttle])} "
            f"| {_fmt([t / 1000 if t else None for t in ring_full], 1)} "
            f"| {_fmt([r.get('cancel_s') for r in rs], 1)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
