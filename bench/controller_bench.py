"""Throttle controllers side by side: real QEMU 7.2, qmpdl-kvm and the sim model, each
with QEMU's controller and (qmpdl only) ``--dirtylimit-controller target``.

    python3 -m bench.controller_bench [--quick] [--runs N] [--unthrottled MIBPS] [--no-real]

Every machine runs the same writer (QEMU: the multiboot image of ``qmpdl.kvm.guest``
through SeaBIOS; qmpdl-kvm: the same loop loaded directly; sim: a writer at the measured
unthrottled rate), one vCPU, a 4096-entry dirty ring, the 7.2 profile.  Per-period rates
come from each machine's own ``dirtyrate_do_calculate_vcpu`` trace events (QEMU's trace
format; qmpdl writes the same), so no period is missed or read twice.

Scenarios (quotas as fractions of the unthrottled rate ``U``, measured first with
``calc-dirty-rate`` on QEMU):

* ``fresh``: a fresh machine per quota 10/30/50/70/90 % of ``U``, 16 periods;
* ``sequence``: one machine: 10 % -> 70 % (raised mid-run) -> 30 % (lowered) -> ``stop``
  for 3 s -> ``cont`` (the workload stops and restarts) -> cancel, 3 s, 50 % (a limit
  after an earlier one, where QEMU's stale penalty creeps);
* ``reader`` (qmpdl-kvm only, QEMU's image has one vCPU): a reader vCPU's throughput
  beside a writer limited to 10 % of ``U``, against no limit.

Every phase is judged by :func:`qmpdl.dirtylimit.goals.judge` (issue #6's goals).  Real
runs are repeated ``--runs`` times (medians); the sim is deterministic and runs once.
Results: ``bench/results/controller.json`` (``controller-quick.json`` with ``--quick``),
PNG plots ``bench/results/controller-*.png`` when matplotlib is installed
(``pip install -e '.[bench]'``), and Markdown tables on stdout.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import kvm_bench
from bench.common import RESULTS, median, parser, save
from bench.kvm_bench import calc_dirty_rate
from qmpdl.dirtylimit.goals import judge
from qmpdl.tools.qemu import qemu_binary
from qmpdl.tools.rawqmp import RawQMP
from qmpdl.tools.simrun import VirtualMachine
from qmpdl.workload import Workload

FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
REAL_KINDS = ("qemu", "kvm-qemu", "kvm-target")
SIM_KINDS = ("sim-qemu", "sim-target")
KIND_LABEL = {
    "qemu": "QEMU 7.2",
    "kvm-qemu": "qmpdl-kvm qemu",
    "kvm-target": "qmpdl-kvm target",
    "sim-qemu": "sim qemu",
    "sim-target": "sim target",
}
#: the goal's sd floor: one 4096-entry ring (16 MiB) per 1 s period
RING_MIB = 16
_RATE = re.compile(rb"@(\d+\.\d+):dirtyrate_do_calculate_vcpu vcpu\[0\]: (\d+) MB/s")


@dataclass(frozen=True)
class Step:
    """One step of a scenario: a QMP action, then ``periods`` periods observed."""

    action: str  # set | stop | cont | cancel-set
    fraction: float | None
    periods: int
    #: judged against the goals (the stopped phase is not)
    judged: bool = True


def scenarios(periods: int, quick: bool) -> dict[str, list[Step]]:
    fractions = (0.1, 0.5) if quick else FRACTIONS
    out = {f"fresh-{round(f * 100)}": [Step("set", f, periods)] for f in fractions}
    seq = [
        Step("set", 0.1, periods),
        Step("set", 0.7, periods),
        Step("set", 0.3, periods),
        Step("stop", None, 3, judged=False),
        Step("cont", 0.3, periods),
    ]
    if not quick:
        seq.append(Step("cancel-set", 0.5, periods))
    out["sequence"] = seq
    return out


# ---------------------------------------------------------------------- real machines


@contextlib.contextmanager
def machine(kind: str, workdir: Path) -> Iterator[tuple[RawQMP, Path]]:
    """QEMU or qmpdl-kvm (``kvm-<controller>``) with the writer, tracing each period's
    rate; yields once the guest's own loop runs (QEMU: after SeaBIOS)."""
    trace = workdir / "trace.log"
    with kvm_bench.machine(
        "qemu" if kind == "qemu" else "qmpdl",
        workdir,
        extra=["-trace", "enable=dirtyrate_do_calculate_vcpu", "-D", str(trace)],
        # trace lines carry pid@time only with timestamps on
        qemu_extra=["-msg", "timestamp=on"],
        qmpdl_extra=["--dirtylimit-controller", kind.removeprefix("kvm-")],
    ) as (qmp, _):
        yield qmp, trace


def trace_rates(trace: Path) -> list[tuple[float, int]]:
    data = trace.read_bytes() if trace.exists() else b""
    return [(float(m[1]), int(m[2])) for m in _RATE.finditer(data)]


def wait_periods(trace: Path, since: float, count: int) -> None:
    """Until ``count`` periods ended after ``since`` (wall clock) - or the time they
    take, in case the trace file is written in blocks (it is read again at the end)."""
    deadline = since + count * 1.02 + 1.2
    while sum(1 for t, _ in trace_rates(trace) if t > since) < count:
        if time.time() > deadline:
            return
        time.sleep(0.1)


def set_limit(qmp: RawQMP, quota: int) -> None:
    reply = qmp.command(
        b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": %d}}' % quota
    )
    assert reply.startswith(b'{"return"'), reply


def real_run(kind: str, steps: list[Step], unthrottled: float) -> list[list[int]]:
    """The per-period rates of each step's phase."""
    marks: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix=f"ctlbench-{kind}-") as tmp,
        machine(kind, Path(tmp)) as (qmp, trace),
    ):
        for step in steps:
            quota = round(step.fraction * unthrottled) if step.fraction else 0
            if step.action == "cancel-set":
                qmp.command(b'{"execute": "cancel-vcpu-dirty-limit"}', timeout=10)
                time.sleep(3)
            marks.append(time.time())
            if step.action in ("set", "cancel-set"):
                set_limit(qmp, quota)
            elif step.action == "stop":
                qmp.command(b'{"execute": "stop"}')
            elif step.action == "cont":
                qmp.command(b'{"execute": "cont"}')
            wait_periods(trace, marks[-1], step.periods)
        # A clean exit flushes the trace file.
        with contextlib.suppress(EOFError, OSError, TimeoutError):
            qmp.command(b'{"execute": "quit"}')
        time.sleep(0.5)
        rates = trace_rates(trace)
    return [
        [r for t, r in rates if t > mark][: step.periods]
        for mark, step in zip(marks, steps, strict=True)
    ]


def calibrate() -> float:
    """The unthrottled rate as QEMU's dirty-ring calc-dirty-rate reads it (median of 3)."""
    with (
        tempfile.TemporaryDirectory(prefix="ctlbench-cal-") as tmp,
        machine("qemu", Path(tmp)) as (qmp, _),
    ):
        return float(statistics.median(calc_dirty_rate(qmp) for _ in range(3)))


# ---------------------------------------------------------------------- sim


def sim_run(kind: str, steps: list[Step], unthrottled: float) -> list[list[int]]:
    vm = VirtualMachine(
        [Workload(rate=unthrottled)], qemu_version="7.2", controller=kind.removeprefix("sim-")
    )
    out = []
    for step in steps:
        quota = round(step.fraction * unthrottled) if step.fraction else 0
        if step.action == "cancel-set":
            vm.cancel()
            vm.run(3)
        if step.action in ("set", "cancel-set"):
            vm.set_limit(quota)
        elif step.action == "stop":
            vm.backend.pause()
        elif step.action == "cont":
            vm.backend.resume()
        out.append([r[0] for r in vm.run(step.periods)])
    return out


# ---------------------------------------------------------------------- summary


def summarise(runs: list[list[list[int]]], steps: list[Step], unthrottled: float) -> list[Any]:
    """Per phase: the median curve and the goals, per run and as medians."""
    phases = []
    for i, step in enumerate(steps):
        curves = [run[i] for run in runs]
        n = min(len(c) for c in curves)
        entry: dict[str, Any] = {
            "action": step.action,
            "fraction": step.fraction,
            "curves": curves,
            "median_curve": [median([float(c[k]) for c in curves]) for k in range(n)],
        }
        if step.judged and step.fraction:
            quota = round(step.fraction * unthrottled)
            reports = [judge(c, quota, RING_MIB) for c in curves]
            settled = [r.settled_from if r.settled_from is not None else math.inf for r in reports]
            entry.update(
                quota=quota,
                goals=[r.as_dict() for r in reports],
                met=sum(r.met for r in reports),
                settled_from=median(settled),
                worst_window_error=median([r.worst_window_error for r in reports]),
                long_error=median(
                    [r.long_error if r.long_error is not None else math.inf for r in reports]
                ),
                settled_mean=median([r.settled_mean for r in reports]),
                sd=median([r.sd for r in reports]),
                sd_limit=reports[0].sd_limit,
            )
        phases.append(entry)
    return phases


def _fmt_settled(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:g}"


def report(results: dict[str, Any]) -> str:
    kinds = [k for k in (*REAL_KINDS, *SIM_KINDS) if k in results["kinds"]]
    lines = [
        f"Unthrottled U = {results['unthrottled']:.0f} MiB/s; real runs: {results['runs']} "
        "(medians); cells: periods until every 3-period mean is within +-10 % / mean of "
        "periods 3.. / sd / worst 3-period error / 10-period error / goals met (runs)",
        "",
        "| scenario | quota | " + " | ".join(KIND_LABEL[k] for k in kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    for name in results["scenarios"]:
        first = results["kinds"][kinds[0]][name]
        for i, phase in enumerate(first):
            if "quota" not in phase:
                continue
            label = f"{name}" + (f" #{i + 1} {phase['action']}" if name == "sequence" else "")
            cells = []
            for k in kinds:
                p = results["kinds"][k][name][i]
                cells.append(
                    f"{_fmt_settled(p['settled_from'])} / {p['settled_mean']:.1f} / "
                    f"{p['sd']:.1f} / {p['worst_window_error']:.0%} / "
                    + ("n/a" if math.isinf(p["long_error"]) else f"{p['long_error']:.1%}")
                    + f" / {p['met']}/{len(p['curves'])}"
                )
            lines.append(f"| {label} | {phase['quota']} | " + " | ".join(cells) + " |")
    for k, r in results.get("reader", {}).items():
        ratio = median([x["ratio"] for x in r])
        lines.append(f"\nReader beside a limited writer, {KIND_LABEL[k]}: {ratio:.3f} of free")
    return "\n".join(lines)


def plot(results: dict[str, Any], prefix: str) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    kinds = [k for k in (*REAL_KINDS, *SIM_KINDS) if k in results["kinds"]]
    styles = {
        "qemu": ("black", "-"),
        "kvm-qemu": ("tab:blue", "-"),
        "kvm-target": ("tab:red", "-"),
        "sim-qemu": ("tab:blue", ":"),
        "sim-target": ("tab:red", ":"),
    }
    for name in results["scenarios"]:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        offset = 0
        for i, phase in enumerate(results["kinds"][kinds[0]][name]):
            n = len(phase["median_curve"])
            if "quota" in phase:
                q = phase["quota"]
                ax.fill_between(
                    [offset + 0.5, offset + n + 0.5], q * 0.9, q * 1.1, color="0.9", lw=0
                )
                ax.hlines(q, offset + 0.5, offset + n + 0.5, color="0.5", lw=1, ls="--")
            for k in kinds:
                curve = results["kinds"][k][name][i]["median_curve"]
                color, ls = styles[k]
                ax.plot(
                    range(offset + 1, offset + len(curve) + 1),
                    curve,
                    color=color,
                    ls=ls,
                    marker=".",
                    label=KIND_LABEL[k] if i == 0 else None,
                )
            offset += n
            ax.axvline(offset + 0.5, color="0.7", lw=0.5)
        quotas = [p["quota"] for p in results["kinds"][kinds[0]][name] if "quota" in p]
        if len(quotas) == 1 and quotas[0] < 250:
            # The unthrottled first period would squash the curves: clip it.
            ax.set_ylim(0, quotas[0] * 2 + 20)
            ax.text(1.1, quotas[0] * 2 + 10, "period 1: unthrottled, off scale", fontsize=8)
        ax.set_xlabel("period (1 s)")
        ax.set_ylabel("current-rate MiB/s")
        ax.set_title(f"{name}: per-period dirty rate (median of runs), quota +-10 % shaded")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = RESULTS / f"{prefix}-{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> int:
    options = parser(__doc__, "1 run, quotas 10 and 50 %%")
    options.add_argument("--periods", type=int, default=16, help="periods per phase")
    options.add_argument("--unthrottled", type=float, help="U in MiB/s (skip calibration)")
    options.add_argument("--no-real", action="store_true", help="the sim only")
    options.add_argument(
        "--kinds",
        default=",".join(REAL_KINDS),
        help="real machines to run (default: %(default)s)",
    )
    opts = options.parse_args()
    if opts.report:
        print(report(json.loads(Path(opts.report).read_text())))
        return 0
    runs = 1 if opts.quick else opts.runs
    real = not opts.no_real
    if real and (not os.access("/dev/kvm", os.R_OK | os.W_OK) or qemu_binary() is None):
        print("needs /dev/kvm and qemu-system-x86_64 (or --no-real)", file=sys.stderr)
        return 2
    unthrottled = opts.unthrottled or (calibrate() if real else 442.0)
    print(f"U = {unthrottled:.0f} MiB/s", file=sys.stderr, flush=True)
    plan = scenarios(opts.periods, opts.quick)
    out_name = "controller" + ("-quick" if opts.quick else "")
    results: dict[str, Any] = {
        "runs": runs,
        "periods": opts.periods,
        "unthrottled": unthrottled,
        "scenarios": {name: [vars(s) for s in steps] for name, steps in plan.items()},
        "kinds": {},
    }
    for kind in SIM_KINDS:
        results["kinds"][kind] = {
            name: summarise([sim_run(kind, steps, unthrottled)], steps, unthrottled)
            for name, steps in plan.items()
        }
    if real:
        for kind in opts.kinds.split(","):
            if kind not in REAL_KINDS:
                options.error(f"--kinds: {kind} is not one of {', '.join(REAL_KINDS)}")
            results["kinds"][kind] = {}
            for name, steps in plan.items():
                curves = []
                for _ in range(runs):
                    curves.append(real_run(kind, steps, unthrottled))
                    print(f"{kind} {name}: {curves[-1]}", file=sys.stderr, flush=True)
                results["kinds"][kind][name] = summarise(curves, steps, unthrottled)
                save(out_name + "-partial", results)  # nothing lost if a later run fails
        quota = round(0.1 * unthrottled)
        results["reader"] = {
            kind: [
                kvm_bench.reader_under_limit(
                    4.0,
                    quota,
                    ["--qemu-version", "7.2", "--dirtylimit-controller", kind.removeprefix("kvm-")],
                )
                for _ in range(runs)
            ]
            for kind in opts.kinds.split(",")
            if kind.startswith("kvm-")
        }
    path = save(out_name, results)
    (RESULTS / f"{out_name}-partial.json").unlink(missing_ok=True)
    pngs = plot(results, out_name)
    print(report(results))
    print(f"\n(results: {path}" + "".join(f", {p}" for p in pngs) + ")")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
