"""What ``--metrics`` costs QMP round trips: qmpdl without it, with it (its endpoint
scraped every 0.1 s throughout, far more often than Prometheus would: an upper bound),
and optionally a checkout from before the metrics counters existed (``--baseline DIR``),
side by side with QEMU 7.2 in one run.

The cases are the QMP benchmark's one-connection ones (sequential and pipelined
``query-status`` and ``query-vcpu-dirty-limit``, with a limit in service, so the
throttle's counters run too), each kind on a fresh VM, kinds alternating per run.

    python3 -m bench.metrics_bench [--quick] [--runs N] [--n N] [--baseline DIR]
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import median, parser, qemu_argv, qmpdl_argv, save
from bench.qmp_bench import REQUESTS, connect, pipelined, sequential, stats
from qmpdl.observe.scrape import scrape
from qmpdl.tools.process import ManagedProcess

SET_LIMIT = b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 100}}\n'
_URL = re.compile(r"metrics on (http://\S+)")
#: Far more often than Prometheus (every 15 s by default): an upper bound of the cost.
SCRAPE_INTERVAL = 0.1


@contextmanager
def vm(kind: str, baseline: str | None) -> Iterator[tuple[Path, str | None]]:
    """A VM of ``kind``; yields its QMP socket and metrics URL (if any)."""
    proc = ManagedProcess()
    path = proc.dir / "m.sock"
    shape = ["-smp", "1", "-m", "128M", "-S", "-qmp", f"unix:{path},server=on,wait=off"]
    env = None
    if kind == "qemu":
        argv = qemu_argv(*shape)
    else:
        argv = qmpdl_argv("--qemu-version", "7.2", "-accel", "sim,dirty-ring-size=4096", *shape)
        if kind == "qmpdl+metrics":
            argv += ["--metrics", "127.0.0.1:0"]
        if kind == "qmpdl-baseline":
            env = {"PYTHONPATH": str(baseline)}
    with proc:
        proc.spawn(argv, env)
        proc.wait_for_path(str(path))
        url = None
        if kind == "qmpdl+metrics":
            deadline = time.monotonic() + 15
            while (m := _URL.search(proc.stderr())) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(proc.stderr())
                time.sleep(0.02)
            url = m[1]
        yield path, url


@contextmanager
def scraping(url: str | None) -> Iterator[list[int]]:
    """Scrape ``url`` every SCRAPE_INTERVAL s until the block ends; yields the count."""
    done = threading.Event()
    count = [0]

    def loop() -> None:
        while url is not None and not done.wait(SCRAPE_INTERVAL):
            scrape(url)
            count[0] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield count
    finally:
        done.set()
        thread.join()


def one_run(kind: str, n: int, baseline: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with vm(kind, baseline) as (path, url):
        conn = connect(path)
        conn.command(SET_LIMIT)
        with scraping(url) as scrapes:
            for name, request in REQUESTS.items():
                lat: list[float] = []
                t0 = time.perf_counter()
                sequential(conn, request, n, lat)
                out[f"{name}/sequential"] = stats(lat, time.perf_counter() - t0, n)
                out[f"{name}/pipelined"], _ = pipelined(conn, request, n)
        out["scrapes"] = scrapes[0]
        conn.close()
    return out


def summarise(raw: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for kind, runs in raw.items():
        for case in (c for c in runs[0] if c != "scrapes"):
            row = table.setdefault(case, {})
            for key in ("req_per_s", "lat_ms_p50", "lat_ms_p99"):
                row[f"{kind}_{key}"] = round(median([r[case][key] for r in runs]), 4)
    for row in table.values():
        off = row["qmpdl_req_per_s"]
        row["on_vs_off"] = round(row["qmpdl+metrics_req_per_s"] / off, 3)
        if "qmpdl-baseline_req_per_s" in row:
            row["off_vs_baseline"] = round(off / row["qmpdl-baseline_req_per_s"], 3)
        row["off_vs_qemu"] = round(off / row["qemu_req_per_s"], 2)
    return table


def print_table(results: dict[str, Any], out: Callable[[str], None] = print) -> None:
    kinds = results["kinds"]
    out(
        f"QMP round trips with and without --metrics, medians of {results['runs']} runs x "
        f"{results['n']} requests (req/s; p99 ms):\n"
    )
    out("| case | " + " | ".join(kinds) + " | on/off | off/baseline |")
    out("|---|" + "---|" * (len(kinds) + 2))
    for case, row in results["table"].items():
        cells = [f"{row[f'{k}_req_per_s']:.0f} ({row[f'{k}_lat_ms_p99']:.3g})" for k in kinds]
        base = row.get("off_vs_baseline")
        out(
            f"| {case} | "
            + " | ".join(cells)
            + f" | {row['on_vs_off']:.3f} | "
            + (f"{base:.3f}" if base is not None else "-")
            + " |"
        )


def main() -> None:
    options = parser(__doc__, "1 run of 500 requests")
    options.add_argument("--n", type=int, default=5000, help="requests per case")
    options.add_argument("--baseline", metavar="DIR", help="a qmpdl checkout to compare with")
    opts = options.parse_args()
    if opts.report:
        print_table(json.loads(Path(opts.report).read_text()))
        return
    runs, n = (1, 500) if opts.quick else (opts.runs, opts.n)
    kinds = ["qemu", "qmpdl", "qmpdl+metrics"] + (["qmpdl-baseline"] if opts.baseline else [])
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for i in range(runs):
        for kind in kinds:  # alternate, so drifts in the machine's load hit every kind
            raw[kind].append(one_run(kind, n, opts.baseline))
            print(f"run {i + 1}/{runs} {kind} done", file=sys.stderr)
    results = {"runs": runs, "n": n, "kinds": kinds, "table": summarise(raw), "raw": raw}
    path = save("metrics-quick" if opts.quick else "metrics", results)
    print_table(results)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
