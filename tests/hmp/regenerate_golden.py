"""Record tests/hmp/golden.json from the real QEMU: ``python -m tests.hmp.regenerate_golden``.

Runs every session of :mod:`tests.hmp.sessions` (about 20 s, two short-lived QEMUs) and
writes the file.  Differences between QEMU and qmpdl are printed; the file is written
anyway, so that the offline test shows them too.
"""

from __future__ import annotations

import json
import sys

from tests.hmp.live import GOLDEN, PROFILE, qemu_version, run_session
from tests.hmp.sessions import SESSIONS


def main() -> int:
    """Record, write, report; exit status 1 when qmpdl disagreed with QEMU."""
    runs = [run_session(session) for session in SESSIONS]
    golden = {
        "profile": PROFILE,
        "qemu": qemu_version(),
        "sessions": [
            {
                "name": session["name"],
                "args": session["args"],
                "boot_wait": session["boot_wait"],
                "steps": run.steps,
            }
            for session, run in zip(SESSIONS, runs, strict=True)
        ],
    }
    GOLDEN.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    mismatches = [m for run in runs for m in run.mismatches]
    for mismatch in mismatches:
        print(mismatch, file=sys.stderr)
    print(f"wrote {GOLDEN} ({sum(len(r.steps) for r in runs)} steps, {len(mismatches)} mismatches)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
