"""Record tests/hmp/golden-qemu-VERSION.json from the real QEMUs:
``python -m tests.hmp.regenerate_golden [--version V]``.

Runs every session of :mod:`tests.hmp.sessions` on each oracle (about 30 s each,
short-lived QEMUs) and writes its file; ``--only NAME...`` records just those sessions and
keeps the others' recordings.  Differences between QEMU and qmpdl are printed; the file
is written anyway, so that the offline test shows them too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from tests.hmp.live import VERSIONS, golden_path, load_golden, qemu_version, run_session
from tests.hmp.sessions import SESSIONS


def _entry(session: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A session as the golden file keeps it."""
    keys = ("name", "args", "boot_wait", "cpu")
    return {key: session[key] for key in keys if key in session} | {"steps": steps}


def main(argv: Sequence[str] | None = None) -> int:
    """Record, write, report; exit status 1 when qmpdl disagreed with QEMU."""
    parser = argparse.ArgumentParser(prog="python -m tests.hmp.regenerate_golden")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="record only these sessions")
    parser.add_argument("--version", action="append", choices=VERSIONS)
    opts = parser.parse_args(argv)
    status = 0
    for version in opts.version or VERSIONS:
        status |= _record(version, opts.only, parser)
    return status


def _record(version: str, only: list[str] | None, parser: argparse.ArgumentParser) -> int:
    names = [session["name"] for session in SESSIONS]
    wanted = set(only or names)
    if wanted - set(names):
        parser.error(f"unknown sessions: {', '.join(sorted(wanted - set(names)))}")
    old = {s["name"]: s for s in load_golden(version)["sessions"]} if only else {}
    runs = {s["name"]: run_session(s, version) for s in SESSIONS if s["name"] in wanted}
    golden = {
        "profile": version,
        "qemu": qemu_version(version),
        "sessions": [
            _entry(session, runs[session["name"]].steps)
            if session["name"] in runs
            else old[session["name"]]
            for session in SESSIONS
        ],
    }
    path = golden_path(version)
    path.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    mismatches = [m for run in runs.values() for m in run.mismatches]
    for mismatch in mismatches:
        print(mismatch, file=sys.stderr)
    steps = sum(len(r.steps) for r in runs.values())
    print(f"wrote {path} ({steps} steps recorded, {len(mismatches)} mismatches)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
