"""Record real QEMU's normalised transcripts: ``python -m tests.differential.record``.

Plays every script of ``corpus/`` on QEMU 7.2 (each script's target machine, processes
shared as :mod:`tests.differential.runner` does) and writes
``golden-qemu-7.2.json``: case name -> normalised lines, in corpus order (the format of
``qmpdl-diff --record``).  ``--only NAME`` re-records some cases and keeps the others.
``--check`` writes nothing and exits 1 when a recording differs from the file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.differential.corpus import load_corpus
from tests.differential.runner import play_normalized

GOLDEN = Path(__file__).with_name("golden-qemu-7.2.json")

Golden = dict[str, list[str]]


def load_golden() -> Golden:
    data = json.loads(GOLDEN.read_text(encoding="ascii"))
    assert isinstance(data, dict)
    return data


def write_golden(golden: Golden) -> None:
    GOLDEN.write_text(json.dumps(golden, indent=1, ensure_ascii=True) + "\n", encoding="ascii")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.record")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="re-record only these cases")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    opts = parser.parse_args(argv)
    scripts = list(load_corpus())
    if opts.only:
        unknown = set(opts.only) - {s.name for s in scripts}
        if unknown:
            parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
        scripts = [s for s in scripts if s.name in opts.only]
    started = time.monotonic()
    recorded = play_normalized("qemu", scripts)
    elapsed = time.monotonic() - started
    old = load_golden() if GOLDEN.exists() else {}
    changed = sorted(name for name, lines in recorded.items() if old.get(name) != lines)
    print(f"{len(recorded)} cases played on QEMU in {elapsed:.1f} s; {len(changed)} changed")
    for name in changed:
        print(f"  changed: {name}")
    if opts.check:
        return 1 if changed else 0
    merged = {s.name: recorded.get(s.name, old.get(s.name, [])) for s in load_corpus()}
    write_golden(merged)
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
