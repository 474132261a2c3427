"""Record real QEMU's normalised transcripts: ``python -m tests.differential.record``.

Plays every script of ``corpus/`` on each real QEMU (the oracles, 7.2 and 10.0; each
script's target machine, processes shared as :mod:`tests.differential.runner` does) and
writes ``golden-qemu-VERSION.json``: case name -> normalised lines, in corpus order (the
format of ``qmpdl-diff --record``).  ``--version V`` records only that oracle; ``--only
NAME`` re-records some cases and keeps the others.  ``--check`` writes nothing and exits
1 when a recording differs from the file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from qmpdl.tools.targets import VERSIONS
from tests.differential.corpus import load_corpus, scripts_for
from tests.differential.runner import play_normalized

Golden = dict[str, list[str]]


def golden_path(version: str) -> Path:
    """The golden file of QEMU ``version``."""
    return Path(__file__).with_name(f"golden-qemu-{version}.json")


def load_golden(version: str = "7.2") -> Golden:
    data = json.loads(golden_path(version).read_text(encoding="ascii"))
    assert isinstance(data, dict)
    return data


def write_golden(version: str, golden: Golden) -> None:
    text = json.dumps(golden, indent=1, ensure_ascii=True) + "\n"
    golden_path(version).write_text(text, encoding="ascii")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.record")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="re-record only these cases")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument(
        "--version", action="append", choices=VERSIONS, help="record this QEMU (default: all)"
    )
    opts = parser.parse_args(argv)
    if opts.only:
        unknown = set(opts.only) - {s.name for s in load_corpus()}
        if unknown:
            parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    status = 0
    for version in opts.version or VERSIONS:
        scripts = [s for s in scripts_for(version) if not opts.only or s.name in opts.only]
        started = time.monotonic()
        recorded = play_normalized("qemu", scripts, version=version)
        elapsed = time.monotonic() - started
        path = golden_path(version)
        old = load_golden(version) if path.exists() else {}
        changed = sorted(name for name, lines in recorded.items() if old.get(name) != lines)
        print(
            f"{len(recorded)} cases played on QEMU {version} in {elapsed:.1f} s; "
            f"{len(changed)} changed"
        )
        for name in changed:
            print(f"  changed: {name}")
        if opts.check:
            status |= 1 if changed else 0
            continue
        merged = {s.name: recorded.get(s.name, old.get(s.name, [])) for s in scripts_for(version)}
        write_golden(version, merged)
        print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
