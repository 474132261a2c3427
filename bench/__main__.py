"""Every benchmark, one after the other: ``python3 -m bench [--quick] [--only NAME ...]``.

Each one runs qmpdl side by side with real QEMU (7.2; the kvm and migration benchmarks
also 10.0) where QEMU has a counterpart and writes
``bench/results/<name>[-quick].json``; ``--quick`` is the smoke variant (one short run
each).  Each prints its own table; ``--report`` on a benchmark module re-prints one.
The machine is shared and noisy, so read medians and ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

#: In the order they run (the long live migrations last).
BENCHMARKS = (
    "qjson_micro",
    "startup_bench",
    "qmp_bench",
    "metrics_bench",
    "scale_bench",
    "kvm_bench",
    "controller_bench",
    "vtime_bench",
    "migration_bench",
    "fuzz",
    "soak",
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run of each")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run just these")
    opts = parser.parse_args()
    failed = []
    for name in opts.only or BENCHMARKS:
        if importlib.util.find_spec(f"bench.{name}") is None:
            continue
        argv = [sys.executable, "-m", f"bench.{name}"]
        if opts.quick and name != "qjson_micro":
            argv.append("--quick")
        print(f"\n=== {name} ===", flush=True)
        start = time.monotonic()
        status = subprocess.run(argv, check=False).returncode
        print(f"=== {name}: exit {status} after {time.monotonic() - start:.0f} s", flush=True)
        if status:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
