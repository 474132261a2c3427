"""``qmpdl-diff``: play exchange scripts against real QEMU and qmpdl, show the difference.

    qmpdl-diff script.json [more.json ...] [--target ring] [--version 10.0] [--raw]
               [--record OUT.json]

For every script (see :mod:`qmpdl.tools.exchange` for the format) a fresh QEMU ``V`` and
a fresh ``qmpdl --qemu-version V`` are started (``--version``: 7.2 or 10.0) as the
script's target machine (:mod:`qmpdl.tools.targets`), the script is played against each
(two processes each for the ``migration`` target), and the two transcripts
are compared line by line after the normaliser (:mod:`qmpdl.tools.normalize`; ``--raw``
turns it off).  Exit status 0 when every script matched, 1 otherwise.
``--record`` writes QEMU's normalised transcripts as a golden file.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from qmpdl.tools.exchange import Script, Transcript, load_scripts, run_script
from qmpdl.tools.normalize import normalize_transcript
from qmpdl.tools.targets import TARGETS, VERSIONS, launch


def normalized(transcript: Transcript, raw: bool = False) -> list[str]:
    """The transcript as comparable lines (normalised unless ``raw``)."""
    lines = transcript.lines()
    if raw:
        return lines
    return normalize_transcript(lines)


def play(kind: str, script: Script, version: str = "7.2") -> Transcript:
    """Start ``kind`` ("qemu" or "qmpdl") as the script's target and play the script."""
    with launch(kind, TARGETS[script.target], version=version) as ends:
        return run_script(ends.sock, script, peer=ends.peer, variables=ends.variables)


def diff(expected: list[str], actual: list[str], name: str) -> list[str]:
    return list(
        difflib.unified_diff(expected, actual, f"{name} (QEMU)", f"{name} (qmpdl)", lineterm="")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qmpdl-diff", description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="+", type=Path)
    parser.add_argument("--target", choices=sorted(TARGETS), help="override the scripts' target")
    parser.add_argument("--raw", action="store_true", help="compare without normalising")
    parser.add_argument("--record", type=Path, help="write QEMU's transcripts to this file")
    parser.add_argument("--version", choices=VERSIONS, default="7.2", help="the QEMU to compare")
    opts = parser.parse_args(argv)
    scripts = [s for path in opts.scripts for s in load_scripts(path)]
    if opts.target:
        scripts = [s.model_copy(update={"target": opts.target}) for s in scripts]
    for script in scripts:
        if not script.applies_to(opts.version):
            print(f"skipped  {script.name} (QEMU {script.since}+)", file=sys.stderr)
    scripts = [s for s in scripts if s.applies_to(opts.version)]
    failed = 0
    recorded: dict[str, list[str]] = {}
    for script in scripts:
        qemu = normalized(play("qemu", script, opts.version), opts.raw)
        qmpdl = normalized(play("qmpdl", script, opts.version), opts.raw)
        recorded[script.name] = qemu
        lines = diff(qemu, qmpdl, script.name)
        if lines:
            failed += 1
            print("\n".join(lines))
        print(f"{'DIFFERS' if lines else 'same   '}  {script.name}", file=sys.stderr)
    if opts.record:
        opts.record.write_text(json.dumps(recorded, indent=1, ensure_ascii=True) + "\n")
    print(f"{len(scripts) - failed}/{len(scripts)} scripts byte-identical", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
