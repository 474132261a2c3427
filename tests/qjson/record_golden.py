"""Regenerate ``golden.json`` from real QEMU 7.2.

    python -m tests.qjson.record_golden            # normal and slow cases (~30 s)
    python -m tests.qjson.record_golden --huge     # also the 64 MiB cases (~12 minutes)

QEMU reads its monitor one byte per system call (about 0.35 MB/s here).

Cases not recorded in this run keep their previous recording, if any.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tests.qjson.golden_cases import CASES
from tests.qjson.oracle import GOLDEN_PATH, encode_case, load_golden, oracle, qemu_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--huge", action="store_true", help="also record the 64 MiB cases")
    parser.add_argument("--only", action="append", default=[], help="record just these cases")
    args = parser.parse_args(argv)

    previous: dict[str, dict[str, Any]] = {}
    if GOLDEN_PATH.exists():
        previous = {entry["name"]: entry for entry in load_golden()["cases"]}
    entries: list[dict[str, Any]] = []
    with oracle() as qemu:
        for case in CASES:
            wanted = case.name in args.only if args.only else case.kind != "huge" or args.huge
            if not wanted:
                if case.name in previous:
                    entries.append(previous[case.name])
                continue
            start = time.monotonic()
            entries.append(encode_case(case, qemu.run(case)))
            took = time.monotonic() - start
            if took > 1:
                print(f"{case.name}: {took:.1f}s", file=sys.stderr)
    golden = {
        "qemu": qemu_version(),
        "note": "Recorded from real QEMU by tests/qjson/record_golden.py; do not edit.",
        "cases": entries,
    }
    with open(GOLDEN_PATH, "w", encoding="ascii") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"{len(entries)} cases written to {GOLDEN_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
