"""The differential suite in figures: ``python -m tests.differential.summary [--qemu]``.

For each QEMU version (7.2 and 10.0; ``--version V`` picks one), plays every corpus script
on qmpdl answering as that version and compares with that QEMU's golden transcripts (or,
with ``--qemu``, with live QEMU), then prints the figures the README quotes: cases per
group and target, how many are byte-identical after normalising, the intended
differences with their reasons, and the known ones.  ``--readme`` also writes the
figures into README.md (the number of scripts and the table's rows per version).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qmpdl.tools.exchange import Script
from qmpdl.tools.targets import VERSIONS
from tests.differential.corpus import load_corpus, scripts_for
from tests.differential.intended import intended
from tests.differential.known import KNOWN
from tests.differential.record import load_golden
from tests.differential.runner import play_normalized

Transcripts = dict[str, list[str]]

README = Path(__file__).resolve().parents[2] / "README.md"
_SCRIPTS = re.compile(r"(?:@SCRIPTS@|\d+)( exchange scripts - greeting)")
_ROWS = re.compile(r"^(  )(?:@DIFF_ROWS@|\| \d+\.\d+ \|.*\|)\n(?:  \| \d+\.\d+ \|.*\|\n)*", re.M)


@dataclass
class Figures:
    """How qmpdl's transcripts compare with QEMU's."""

    version: str = "7.2"
    total: int = 0
    identical: list[str] = field(default_factory=list)
    intended: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    #: differences that are in no list (a failing test)
    unexplained: list[str] = field(default_factory=list)
    #: intended or known cases that are identical after all (also a failing test)
    stale: list[str] = field(default_factory=list)


def figures(
    scripts: Sequence[Script], qmpdl: Transcripts, qemu: Transcripts, version: str = "7.2"
) -> Figures:
    out = Figures(version=version, total=len(scripts))
    wanted = intended(version)
    known = KNOWN[version]
    for script in scripts:
        name = script.name
        same = qmpdl[name] == qemu[name]
        if name in wanted:
            good = not same and qmpdl[name] == wanted[name].expected(qemu[name])
            (out.intended if good else out.unexplained).append(name)
        elif name in known:
            (out.stale if same else out.known).append(name)
        elif same:
            out.identical.append(name)
        else:
            out.unexplained.append(name)
    return out


def per_group_and_target(scripts: Sequence[Script]) -> list[str]:
    """A table: one row per group, one column per target."""
    count = Counter((s.group, s.target) for s in scripts)
    groups = sorted({s.group for s in scripts})
    targets = sorted({s.target for s in scripts})
    width = max(len(g) for g in groups)
    rows = ["  " + " " * width + "".join(f"{t:>10}" for t in targets) + "     all"]
    for group in groups:
        cells = "".join(f"{count[group, t] or '':>10}" for t in targets)
        rows.append(f"  {group:<{width}}{cells}{sum(count[group, t] for t in targets):>8}")
    totals = "".join(f"{sum(count[g, t] for g in groups):>10}" for t in targets)
    rows.append(f"  {'all':<{width}}{totals}{len(scripts):>8}")
    return rows


def corpus_table(scripts: Sequence[Script]) -> list[str]:
    fresh = sum(1 for s in scripts if s.fresh)
    newer = sorted({s.since for s in scripts if s.since is not None})
    limited = ", ".join(f"{sum(s.since == v for s in scripts)} only from {v}" for v in newer)
    return [
        f"{len(scripts)} cases ({fresh} on a fresh process, {len(scripts) - fresh} sharing one "
        f"per target{'; ' + limited if limited else ''}):",
        *per_group_and_target(scripts),
    ]


def report(result: Figures) -> list[str]:
    wanted = intended(result.version)
    lines = [
        f"QEMU {result.version}: {len(result.identical)} byte-identical after normalising, "
        f"{len(result.intended)} intended, {len(result.known)} known "
        f"(of {result.total})",
        f"intended differences from QEMU {result.version}: {len(result.intended)}",
    ]
    reasons = Counter(wanted[name].reason for name in result.intended)
    for reason, n in reasons.items():
        names = ", ".join(name for name in result.intended if wanted[name].reason == reason)
        lines.append(f"  {n} x {reason}\n      ({names})")
    lines.append(f"known differences from QEMU {result.version} (xfail): {len(result.known)}")
    lines += [f"  {name}: {KNOWN[result.version][name]}" for name in result.known]
    if result.unexplained:
        lines.append(f"UNEXPLAINED differences: {', '.join(result.unexplained)}")
    if result.stale:
        lines.append(f"known differences that no longer differ: {', '.join(result.stale)}")
    return lines


def readme_row(result: Figures) -> str:
    """The README table's row of one version."""
    cells = (result.total, len(result.identical), len(result.intended), len(result.known))
    return f"| {result.version} | " + " | ".join(str(c) for c in cells) + " |"


def with_figures(text: str, scripts: int, results: Sequence[Figures]) -> str:
    """README.md's text with the corpus size and the per-version rows replaced."""
    text, found = _SCRIPTS.subn(rf"{scripts}\1", text, count=1)
    rows = "".join(f"  {readme_row(r)}\n" for r in results)
    text, placed = _ROWS.subn(lambda _: rows, text, count=1)
    if not (found and placed):
        raise ValueError("README.md: the differential figures' places were not found")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.summary")
    parser.add_argument("--qemu", action="store_true", help="compare with live QEMU")
    parser.add_argument("--version", action="append", choices=VERSIONS, help="default: all")
    parser.add_argument("--readme", action="store_true", help="write the figures into README.md")
    opts = parser.parse_args(argv)
    if opts.readme and opts.version:
        parser.error("--readme needs every version")
    print("\n".join(corpus_table(list(load_corpus()))))
    status = 0
    results: list[Figures] = []
    for version in opts.version or VERSIONS:
        scripts = scripts_for(version)
        started = time.monotonic()
        qmpdl = play_normalized("qmpdl", scripts, version=version)
        if opts.qemu:
            qemu = play_normalized("qemu", scripts, version=version)
        else:
            qemu = load_golden(version)
        elapsed = time.monotonic() - started
        result = figures(scripts, qmpdl, qemu, version)
        results.append(result)
        print("\n".join(report(result)))
        source = "live QEMU" if opts.qemu else "goldens"
        print(f"(played in {elapsed:.1f} s; compared with {source})")
        status |= 1 if result.unexplained or result.stale else 0
    if opts.readme and status == 0:
        text = README.read_text(encoding="utf-8")
        README.write_text(with_figures(text, len(load_corpus()), results), encoding="utf-8")
        print(f"wrote the figures into {README}")
    return status


if __name__ == "__main__":
    sys.exit(main())
