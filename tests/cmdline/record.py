"""Record what QEMU 7.2 does with every case of :mod:`tests.cmdline.cases`.

python -m tests.cmdline.record      # writes tests/cmdline/golden-qemu-7.2.json
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cmdline.cases import CASES
from tests.cmdline.runner import GOLDEN, run_case


def main() -> int:
    version = subprocess.run(
        ["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    cases = {}
    for case in CASES:
        outcome = run_case(["qemu-system-x86_64"], case.base, list(case.args))
        cases[case.name] = outcome.as_json()
        print(f"{case.name}: {outcome.status}", file=sys.stderr)
    data = {
        "qemu": version,
        "note": "Recorded from real QEMU by python -m tests.cmdline.record; do not edit.",
        "cases": cases,
    }
    GOLDEN.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
