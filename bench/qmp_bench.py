"""QMP round trips: qmpdl against QEMU 7.2, side by side in one run.

For ``query-status`` and ``query-vcpu-dirty-limit`` (with and without a limit in
service) over raw sockets:

* ``sequential``: one connection, send a request, read its reply, repeat;
* ``pipelined``: one connection, a writer sends every request (one write each) while a
  reader collects the replies; latency is reply time minus send time;
* ``monitors-8`` / ``monitors-64``: that many monitors of one VM, each with its own
  connection doing sequential round trips at the same time (aggregate requests/s,
  latencies over all of them).

Every reply is checked against the first one of its kind, so speed never comes from
answering differently; replies must come back in order.  Medians over ``--runs``.

QEMU runs as ``-machine pc -S -smp 1`` with ``-accel kvm,dirty-ring-size=4096`` (a vCPU
is needed for a limit); qmpdl as ``--qemu-version 7.2 -accel sim,dirty-ring-size=4096
-smp 1 -S``.  The
client is the same Python code for both and costs its share of the 2 cores, so the
ratios are the figures to read.

    python3 -m bench.qmp_bench [--quick] [--runs N] [--n N]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import median, parser, qemu_argv, qmpdl_argv, save
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP

KINDS = ("qemu", "qmpdl")
MONITORS = (1, 8, 64)


@contextmanager
def vm(kind: str, monitors: int) -> Iterator[list[Path]]:
    """A VM of ``kind`` with ``monitors`` QMP sockets; yields their paths."""
    proc = ManagedProcess()
    paths = [proc.dir / f"m{i}.sock" for i in range(monitors)]
    qmp: list[str] = []
    for p in paths:
        qmp += ["-qmp", f"unix:{p},server=on,wait=off"]
    shape = ["-smp", "1", "-m", "128M", "-S", *qmp]
    if kind == "qemu":
        argv = qemu_argv(*shape)
    else:
        argv = qmpdl_argv("--qemu-version", "7.2", "-accel", "sim,dirty-ring-size=4096", *shape)
    with proc:
        proc.spawn(argv)
        for p in paths:
            proc.wait_for_path(str(p))
        yield paths


def stats(lat: list[float], wall: float, n: int) -> dict[str, float]:
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 4)

    return {
        "n": n,
        "req_per_s": round(n / wall, 1),
        "lat_ms_p50": pct(0.50),
        "lat_ms_p99": pct(0.99),
        "lat_ms_max": round(lat[-1] * 1000, 4),
    }


def connect(path: Path) -> RawQMP:
    """A negotiated connection to the monitor at ``path``."""
    conn = RawQMP(str(path), timeout=None)  # blocking reads: the client adds the least
    conn.negotiate()
    return conn


def sequential(conn: RawQMP, request: bytes, n: int, lat: list[float]) -> bytes:
    first = conn.command(request)
    for _ in range(n):
        t = time.perf_counter()
        reply = conn.command(request)
        lat.append(time.perf_counter() - t)
        if reply != first:
            raise AssertionError(f"reply changed: {first!r} -> {reply!r}")
    return first


def pipelined(conn: RawQMP, request: bytes, n: int) -> tuple[dict[str, float], bytes]:
    first = conn.command(request)
    sent: list[float] = [0.0] * n

    def writer() -> None:
        for i in range(n):
            sent[i] = time.perf_counter()
            conn.send(request)

    t0 = time.perf_counter()
    thread = threading.Thread(target=writer)
    thread.start()
    lat = []
    for i in range(n):
        reply = conn.reply()
        lat.append(time.perf_counter() - sent[i])
        if reply != first:
            raise AssertionError(f"reply changed: {first!r} -> {reply!r}")
    wall = time.perf_counter() - t0
    thread.join()
    return stats(lat, wall, n), first


def concurrent(paths: list[Path], request: bytes, n: int) -> tuple[dict[str, float], bytes]:
    """Every monitor does ``n // len(paths)`` sequential round trips at once."""
    conns = [connect(p) for p in paths]
    each = max(1, n // len(paths))
    lats: list[list[float]] = [[] for _ in conns]
    firsts: list[bytes] = [b""] * len(conns)
    start = threading.Barrier(len(conns) + 1)

    def run(i: int) -> None:
        start.wait()
        firsts[i] = sequential(conns[i], request, each, lats[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    if len(set(firsts)) != 1:
        raise AssertionError(f"monitors answered differently: {set(firsts)}")
    return stats([x for lat in lats for x in lat], wall, each * len(conns)), firsts[0]


REQUESTS: dict[str, bytes] = {
    "query-status": b'{"execute": "query-status"}\n',
    "query-vcpu-dirty-limit": b'{"execute": "query-vcpu-dirty-limit"}\n',
}


def one_run(kind: str, n: int) -> dict[str, Any]:
    """Every case of one run, each on a fresh VM of ``kind`` with only the monitors it
    uses (QEMU's main loop polls every monitor, so idle ones would slow it)."""
    out: dict[str, Any] = {}
    replies: dict[str, str] = {}
    set_limit = b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 100}}\n'
    for tag in ("", "[limit-set]"):
        for monitors in MONITORS:
            # monitor 0 sets the limit (and carries the one-connection cases)
            with vm(kind, monitors + (monitors > 1)) as paths:
                conn = connect(paths[0])
                if tag:
                    conn.command(set_limit)
                for name, request in REQUESTS.items():
                    label = f"{name}{tag}"
                    if monitors == 1:
                        lat: list[float] = []
                        t0 = time.perf_counter()
                        replies[label] = sequential(conn, request, n, lat).decode()
                        out[f"{label}/sequential"] = stats(lat, time.perf_counter() - t0, n)
                        out[f"{label}/pipelined"], _ = pipelined(conn, request, n)
                    else:
                        out[f"{label}/monitors-{monitors}"], _ = concurrent(paths[1:], request, n)
                conn.close()
    out["replies"] = replies
    return out


_MODES = ("sequential", "pipelined", *(f"monitors-{m}" for m in MONITORS[1:]))


def _case_order(case: str) -> tuple[str, int]:
    label, mode = case.split("/")
    return label, _MODES.index(mode)


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Medians per kind and case."""
    table: dict[str, dict[str, float]] = {}
    for kind, results in runs.items():
        for case in sorted((c for c in results[0] if c != "replies"), key=_case_order):
            row = table.setdefault(case, {})
            for key in ("req_per_s", "lat_ms_p50", "lat_ms_p99"):
                row[f"{kind}_{key}"] = round(median([r[case][key] for r in results]), 4)
    for row in table.values():
        row["ratio_req_per_s"] = round(row["qmpdl_req_per_s"] / row["qemu_req_per_s"], 2)
    return table


def print_table(results: dict[str, Any], out: Callable[[str], None] = print) -> None:
    out(
        f"QMP round trips, medians of {results['runs']} runs x {results['n']} requests "
        "(qmpdl / QEMU 7.2):\n"
    )
    out("| case | QEMU req/s | qmpdl req/s | ratio | QEMU p50/p99 ms | qmpdl p50/p99 ms |")
    out("|---|---|---|---|---|---|")
    for case, row in results["table"].items():
        out(
            f"| {case} | {row['qemu_req_per_s']:.0f} | {row['qmpdl_req_per_s']:.0f} "
            f"| {row['ratio_req_per_s']:.2f} "
            f"| {row['qemu_lat_ms_p50']:.3g} / {row['qemu_lat_ms_p99']:.3g} "
            f"| {row['qmpdl_lat_ms_p50']:.3g} / {row['qmpdl_lat_ms_p99']:.3g} |"
        )


def main() -> None:
    options = parser(__doc__, "1 run of 500 requests")
    options.add_argument("--n", type=int, default=5000, help="requests per case")
    opts = options.parse_args()
    if opts.report:
        print_table(json.loads(Path(opts.report).read_text()))
        return
    runs, n = (1, 500) if opts.quick else (opts.runs, opts.n)
    raw: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for i in range(runs):
        for kind in KINDS:  # alternate, so drifts in the machine's load hit both
            raw[kind].append(one_run(kind, n))
            print(f"run {i + 1}/{runs} {kind} done", file=sys.stderr)
    mismatched = {
        label
        for label, reply in raw["qmpdl"][0]["replies"].items()
        if reply != raw["qemu"][0]["replies"][label]
    }
    results = {
        "runs": runs,
        "n": n,
        "table": summarise(raw),
        "replies_identical": not mismatched,
        "raw": raw,
    }
    path = save("qmp-quick" if opts.quick else "qmp", results)
    print_table(results)
    print(f"\nreplies identical to QEMU's: {not mismatched} {sorted(mismatched)}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
