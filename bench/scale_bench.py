"""Scale: the throttle and QMP with many vCPUs, every one of them limited.

For qmpdl (sim vCPUs, every one a writer over 16 MiB, ``-smp`` 1, 64, 256, 1024) and for
QEMU 7.2 (KVM vCPUs of a ``-machine pc`` guest without a disk - the BIOS idles them -
``-smp`` 1, 64, 255, the most its pc board takes), with ``set-vcpu-dirty-limit`` on all:

* the throttle thread's CPU time (``dirtyrate-stat``, found by its OS name; QEMU names
  it with ``-name debug-threads=on``) per period, as % of one core;
* resident memory per vCPU (RSS at N vCPUs minus RSS at 1, over N - 1);
* ``query-vcpu-dirty-limit`` and ``query-status`` latency (p50/p99 of sequential
  round trips) while the throttle runs.

QEMU's idle vCPUs dirty nothing, so its throttle has less to do than qmpdl's, whose
vCPUs all write: the comparison favours QEMU.

    python3 -m bench.scale_bench [--quick] [--runs N]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import median, parser, qemu_argv, qmpdl_argv, save
from bench.qmp_bench import connect, stats
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP

SIZES = {"qmpdl": (1, 64, 256, 1024), "qemu": (1, 64, 255)}
#: the kernel reports thread times in these ticks (USER_HZ)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@contextmanager
def vm(kind: str, vcpus: int) -> Iterator[tuple[ManagedProcess, RawQMP]]:
    proc = ManagedProcess()
    sock = proc.dir / "qmp.sock"
    qmp = ["-qmp", f"unix:{sock},server=on,wait=off", "-smp", str(vcpus)]
    if kind == "qemu":
        argv = qemu_argv("-m", "512M", "-name", "scale,debug-threads=on", *qmp)
    else:
        argv = qmpdl_argv(
            "--qemu-version",
            "7.2",
            "-accel",
            "sim,dirty-ring-size=4096",
            "-m",
            f"{128 + 16 * vcpus}M",
            "--workload",
            "all:write,wss=16M",
            *qmp,
        )
    with proc:
        proc.spawn(argv)
        proc.wait_for_path(str(sock), 60)
        conn = connect(sock)
        try:
            yield proc, conn
        finally:
            conn.close()


def thread_cpu_s(pid: int, name: str) -> float:
    """CPU seconds (user + system) of the thread of ``pid`` called ``name``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == name:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except FileNotFoundError:
            continue
    raise LookupError(f"no thread {name!r} in {pid}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError("VmRSS")


def latency(conn: RawQMP, request: bytes, n: int) -> dict[str, float]:
    """p50/p99 of ``n`` sequential round trips (the replies change while the throttle
    runs, so they are not compared)."""
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        conn.command(request)
        lat.append(time.perf_counter() - t)
    found = stats(lat, time.perf_counter() - t0, n)
    return {"p50_ms": found["lat_ms_p50"], "p99_ms": found["lat_ms_p99"]}


def one_run(kind: str, vcpus: int, seconds: float, n: int) -> dict[str, Any]:
    with vm(kind, vcpus) as (proc, conn):
        pid = proc.proc.pid
        time.sleep(1.0)  # let the BIOS / the workloads start
        rss = rss_kib(pid)
        conn.command(b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 50}}\n')
        time.sleep(2.5)  # two periods: the penalties are in place
        cpu0, t0 = thread_cpu_s(pid, "dirtyrate-stat"), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = thread_cpu_s(pid, "dirtyrate-stat"), time.monotonic()
        limits = json.loads(conn.command(b'{"execute": "query-vcpu-dirty-limit"}\n'))["return"]
        if len(limits) != vcpus:
            raise AssertionError(f"{len(limits)} limits for {vcpus} vCPUs")
        return {
            "throttle_cpu_pct": round((cpu1 - cpu0) / (t1 - t0) * 100, 2),
            "rss_kib": rss,
            "query-vcpu-dirty-limit": latency(conn, b'{"execute": "query-vcpu-dirty-limit"}\n', n),
            "query-status": latency(conn, b'{"execute": "query-status"}\n', n),
            "writers_limited_mean": round(sum(x["current-rate"] for x in limits) / vcpus, 1),
        }


def summarise(raw: dict[str, dict[int, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    rows = []
    for kind, by_size in raw.items():
        base = median([r["rss_kib"] for r in by_size[min(by_size)]])
        for vcpus, runs in by_size.items():
            rss = median([r["rss_kib"] for r in runs])
            rows.append(
                {
                    "kind": kind,
                    "vcpus": vcpus,
                    "throttle_cpu_pct": median([r["throttle_cpu_pct"] for r in runs]),
                    "rss_mib": round(rss / 1024, 1),
                    "kib_per_vcpu": round((rss - base) / (vcpus - 1), 1) if vcpus > 1 else None,
                    "qvdl_p50_ms": median([r["query-vcpu-dirty-limit"]["p50_ms"] for r in runs]),
                    "qvdl_p99_ms": median([r["query-vcpu-dirty-limit"]["p99_ms"] for r in runs]),
                    "status_p99_ms": median([r["query-status"]["p99_ms"] for r in runs]),
                    "current_rate_mean": median([r["writers_limited_mean"] for r in runs]),
                }
            )
    return rows


def print_table(results: dict[str, Any], out: Callable[[str], None] = print) -> None:
    out(
        f"Scale, all vCPUs limited to 50 MB/s, medians of {results['runs']} runs "
        f"({results['seconds']:.0f} s of throttling, {results['n']} round trips each):\n"
    )
    out(
        "| | vCPUs | throttle thread, % of a core | RSS MiB | KiB per vCPU "
        "| query-vcpu-dirty-limit p50/p99 ms | query-status p99 ms |"
    )
    out("|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        per = "-" if r["kib_per_vcpu"] is None else f"{r['kib_per_vcpu']:.0f}"
        out(
            f"| {r['kind']} | {r['vcpus']} | {r['throttle_cpu_pct']:.2f} | {r['rss_mib']:.0f} "
            f"| {per} | {r['qvdl_p50_ms']:.3g} / {r['qvdl_p99_ms']:.3g} "
            f"| {r['status_p99_ms']:.3g} |"
        )


def main() -> None:
    opts = parser(__doc__, "1 run, 3 s, 200 round trips").parse_args()
    if opts.report:
        print_table(json.loads(Path(opts.report).read_text()))
        return
    runs, seconds, n = (1, 3.0, 200) if opts.quick else (opts.runs, 10.0, 1000)
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {k: {} for k in SIZES}
    for i in range(runs):
        for kind, sizes in SIZES.items():
            for vcpus in sizes:
                result = one_run(kind, vcpus, seconds, n)
                raw[kind].setdefault(vcpus, []).append(result)
                print(f"run {i + 1}/{runs} {kind} {vcpus}: {result}", file=sys.stderr)
    results = {
        "runs": runs,
        "seconds": seconds,
        "n": n,
        "rows": summarise(raw),
        "raw": {k: {str(s): v for s, v in d.items()} for k, d in raw.items()},
    }
    path = save("scale-quick" if opts.quick else "scale", results)
    print_table(results)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
