"""qmpdl's kvm backend side by side with real QEMU 7.2 and 10.0, on the same guest loop.

    python3 -m bench.kvm_bench [--quick] [--runs N] [--version V]

For each QEMU version (qmpdl answers as the same version: 7.2's interruptible penalty
sleep, 10.0's uninterruptible one):

Both run the writer of ``qmpdl.kvm.guest`` (QEMU boots it as a multiboot image through
SeaBIOS; qmpdl loads it directly), one vCPU, a 4096-entry dirty ring, 256 MiB, and print
one ``#`` per 99 MiB pass to a serial file.  Measured:

* the unthrottled rate: guest passes over 5 s (MiB/s written) and three 1 s
  ``calc-dirty-rate`` dirty-ring readings;
* per quota (50, 100, 200, 300, 400 MiB/s; a fresh process each, as the anchors'
  "fresh" runs): the per-period ``current-rate`` for 20 periods, the first period, the
  period in which the rate first comes within +-25 of the quota, mean +- sd after that,
  and the guest's own rate under the limit;
* (qmpdl only, QEMU's image has one vCPU) a reader vCPU's throughput while a writer
  vCPU is limited, against the same reader with no limit.

Results: ``bench/results/kvm.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.common import mean_sd, median, parser, qemu_argv, qemu_available, qmpdl_argv, save
from qmpdl.kvm import guest
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import ORACLES
from qmpdl.tools.rawqmp import RawQMP

PASS_MIB = 99  # one pass of the writer: 2..101 MiB (QEMU) / 99 MiB (qmpdl)
QUOTAS = [50, 100, 200, 300, 400]


@contextlib.contextmanager
def machine(
    kind: str,
    workdir: Path,
    *,
    extra: Sequence[str] = (),
    qemu_extra: Sequence[str] = (),
    qmpdl_extra: Sequence[str] = (),
    version: str = "7.2",
) -> Iterator[tuple[RawQMP, Path]]:
    """QEMU ``version`` (``kind`` "qemu") or qmpdl-kvm answering as it with the writer, a
    serial file and a negotiated QMP connection; returns once the guest completed its
    first pass.  ``extra`` options go to both, ``qemu_extra``/``qmpdl_extra`` to one."""
    sock, serial = workdir / "qmp.sock", workdir / "serial"
    common = [
        "-m",
        "256",
        "-smp",
        "1",
        "-serial",
        f"file:{serial}",
        "-qmp",
        f"unix:{sock},server=on,wait=off",
        *extra,
    ]
    if kind == "qemu":
        image = guest.write_multiboot_image(workdir / "writer.img")
        argv = qemu_argv("-kernel", str(image), *qemu_extra, *common, version=version)
    else:
        argv = qmpdl_argv(
            "-accel", "kvm,dirty-ring-size=4096", "--qemu-version", version, *qmpdl_extra, *common
        )
    with ManagedProcess(argv, workdir=workdir) as proc:
        proc.wait_for_path(str(sock))
        with RawQMP(str(sock), timeout=30) as qmp:
            qmp.negotiate()
            # SeaBIOS first (QEMU): no dirty logging before the guest's own loop runs.
            wait_passes(serial, 1, 60)
            yield qmp, serial


def passes(serial: Path) -> int:
    return serial.read_bytes().count(b"#") if serial.exists() else 0


def wait_passes(serial: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while passes(serial) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"guest made no {count} passes in {timeout} s")
        time.sleep(0.05)


def guest_rate(serial: Path, seconds: float) -> float:
    start, t0 = passes(serial), time.monotonic()
    time.sleep(seconds)
    return (passes(serial) - start) * PASS_MIB / (time.monotonic() - t0)


def calc_dirty_rate(qmp: RawQMP) -> int:
    qmp.command(
        b'{"execute": "calc-dirty-rate", "arguments": {"calc-time": 1, "mode": "dirty-ring"}}'
    )
    time.sleep(1)
    deadline = time.monotonic() + 10
    while True:
        info = json.loads(qmp.command(b'{"execute": "query-dirty-rate"}'))["return"]
        if info["status"] == "measured":
            return int(info["dirty-rate"])
        assert time.monotonic() < deadline
        time.sleep(0.02)


def unthrottled(kind: str, seconds: float, version: str = "7.2") -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp,
        machine(kind, Path(tmp), version=version) as (qmp, serial),
    ):
        rate = guest_rate(serial, seconds)
        calcs = [calc_dirty_rate(qmp) for _ in range(3)]
    return {"guest_MiBps": round(rate, 1), "calc_dirty_rate": calcs}


def convergence(kind: str, quota: int, periods: int, version: str = "7.2") -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp,
        machine(kind, Path(tmp), version=version) as (qmp, serial),
    ):
        first_pass = passes(serial)
        qmp.command(b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": %d}}' % quota)
        t_set = time.monotonic()
        rates: list[int] = []
        guest_start = None
        for k in range(1, periods + 1):
            # The throttle thread publishes a period about every 1.0 s after the set.
            delay = t_set + k + 0.5 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            reply = json.loads(qmp.command(b'{"execute": "query-vcpu-dirty-limit"}'))
            rates.append(int(reply["return"][0]["current-rate"]))
            if k == periods // 2:
                guest_start = (passes(serial), time.monotonic())
        assert guest_start is not None
        guest_mibps = (
            (passes(serial) - guest_start[0]) * PASS_MIB / (time.monotonic() - guest_start[1])
        )
        del first_pass
    conv = next((i for i, r in enumerate(rates, 1) if abs(r - quota) <= 25), None)
    after = rates[conv:] if conv is not None else rates[-10:]
    m, sd = mean_sd([float(r) for r in after])
    return {
        "quota": quota,
        "rates": rates,
        "first": rates[0],
        "converged_period": conv,
        "mean_after": round(m, 1),
        "sd_after": round(sd, 1),
        "guest_MiBps_2nd_half": round(guest_mibps, 1),
    }


def reader_under_limit(seconds: float, quota: int = 50, args: Sequence[str] = ()) -> dict[str, Any]:
    """qmpdl-kvm only: vCPU 1 reads a 16 MiB working set while vCPU 0 writes; the
    reader's MiB/s with no limit, then with every vCPU limited to ``quota`` MiB/s (only
    the writer fills its ring).  ``args``: more qmpdl options."""
    from qmpdl.cli import parse_args
    from qmpdl.system import build_machine

    m = build_machine(
        parse_args(
            [
                "-accel",
                "kvm,dirty-ring-size=4096",
                "-smp",
                "2",
                "-m",
                "256M",
                "--workload",
                "1:read,wss=16M",
                *args,
            ]
        )
    )
    m.start()
    vm = m.backend.vm  # type: ignore[attr-defined]

    def reader_rate() -> float:
        start, t0 = guest.passes(vm, 1), time.monotonic()
        time.sleep(seconds)
        return (guest.passes(vm, 1) - start) * 16 / (time.monotonic() - t0)

    try:
        time.sleep(1)
        free = reader_rate()
        m.dirtylimit.set_vcpu_dirty_limit(None, quota)
        time.sleep(3)
        limited = reader_rate()
        writer = m.dirtylimit.current_rate(0)
        penalty = m.dirtylimit.throttle_us_per_full[1]
    finally:
        m.teardown()
    return {
        "reader_free_MiBps": round(free, 1),
        "reader_limited_MiBps": round(limited, 1),
        "ratio": round(limited / free, 3),
        "writer_current_rate": writer,
        "reader_penalty_us": penalty,
    }


def main() -> int:
    cli = parser(__doc__, "1 run, 8 periods, 2 quotas")
    cli.add_argument("--version", action="append", choices=list(ORACLES))
    opts = cli.parse_args()
    if opts.report:
        print(report(json.loads(Path(opts.report).read_text())))
        return 0
    runs = 1 if opts.quick else opts.runs
    periods = 8 if opts.quick else 20
    quotas = [100, 300] if opts.quick else QUOTAS
    versions = [v for v in (opts.version or ORACLES) if qemu_available(v)]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not versions:
        print("needs /dev/kvm and a QEMU oracle", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"runs": runs, "periods": periods, "versions": {}}
    for version in versions:
        one: dict[str, Any] = {"loadavg_start": os.getloadavg()}
        for kind in ("qemu", "qmpdl"):
            one[kind] = {
                "unthrottled": [unthrottled(kind, 5.0, version) for _ in range(runs)],
                "quotas": {
                    q: [convergence(kind, q, periods, version) for _ in range(runs)] for q in quotas
                },
            }
            print(f"{version} {kind}: done", file=sys.stderr, flush=True)
        results["versions"][version] = one
    results["reader"] = [reader_under_limit(5.0) for _ in range(runs)]
    path = save("kvm" + ("-quick" if opts.quick else ""), results)
    print(report(results))
    print(f"\n(results: {path})")
    return 0


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for version, one in results["versions"].items():
        lines += [*_report_version(version, one, results["runs"]), ""]
    ratio = median([r["ratio"] for r in results["reader"]])
    lines += [
        f"Reader vCPU under a writer's limit: {ratio:.3f} of its unthrottled MiB/s "
        f"(median of {len(results['reader'])})",
    ]
    return "\n".join(lines)


def _report_version(version: str, results: dict[str, Any], runs: int) -> list[str]:
    q_rate = median([r["guest_MiBps"] for r in results["qemu"]["unthrottled"]])
    d_rate = median([r["guest_MiBps"] for r in results["qmpdl"]["unthrottled"]])
    q_calc = median([c for r in results["qemu"]["unthrottled"] for c in r["calc_dirty_rate"]])
    d_calc = median([c for r in results["qmpdl"]["unthrottled"] for c in r["calc_dirty_rate"]])
    load = results.get("loadavg_start", [float("nan")])[0]
    lines = [
        f"QEMU {version} (qmpdl --qemu-version {version}); load average at the start {load:.1f}",
        f"Unthrottled writer (median of {runs} runs): guest passes QEMU "
        f"{q_rate:.0f} MiB/s, qmpdl-kvm {d_rate:.0f} (ratio {d_rate / q_rate:.2f}); "
        f"calc-dirty-rate dirty-ring QEMU {q_calc:.0f}, qmpdl-kvm {d_calc:.0f} "
        f"(ratio {d_calc / q_calc:.2f})",
        "",
        f"| quota | QEMU {version}: first / conv. period / mean+-sd after "
        "| qmpdl-kvm: first / conv. / mean+-sd |",
        "|---|---|---|",
    ]
    for quota in results["qemu"]["quotas"]:
        cells = []
        for kind in ("qemu", "qmpdl"):
            rs = results[kind]["quotas"][quota]
            conv = [r["converged_period"] for r in rs if r["converged_period"] is not None]
            cells.append(
                f"{median([r['first'] for r in rs]):.0f} / "
                f"{median(conv) if conv else float('nan'):.0f} "
                f"({len(conv)}/{len(rs)} runs) / "
                f"{median([r['mean_after'] for r in rs]):.1f}+-"
                f"{median([r['sd_after'] for r in rs]):.1f}"
            )
        lines.append(f"| {quota} | {cells[0]} | {cells[1]} |")
    return lines


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
