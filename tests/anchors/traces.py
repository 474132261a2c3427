"""Readers for the real QEMU 7.2 traces in ../shared/anchors (see its README)."""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ANCHORS = Path(
    os.environ.get("QMPDL_ANCHORS", Path(__file__).parents[2] / ".." / "shared" / "anchors")
)
TRACES = ANCHORS / "qemu-7.2" / "traces"

_LINE = re.compile(r"^(\d+)@(\d+\.\d+):(\w+) (.*)$")


@dataclass(frozen=True)
class TraceEvent:
    tid: int
    time: float
    name: str
    args: str


#: The runs recorded in ../shared/anchors/qemu-7.2/traces (see its README).
RUNS = [
    "smp1-calc2s",
    "smp1-fresh-q100",
    "smp1-fresh-q200",
    "smp1-fresh-q300",
    "smp1-fresh-q400",
    "smp1-fresh-q50",
    "smp1-nocalc",
    "smp1-period50ms",
    "smp2-percpu",
]


def required(directory: Path, what: str) -> Path:
    """``directory`` of ../shared/anchors; skip without it, unless
    QMPDL_REQUIRE_ANCHORS=1 (set by .ci/run)."""
    if not directory.is_dir():
        message = f"{what} not found at {directory}"
        if os.environ.get("QMPDL_REQUIRE_ANCHORS", "") not in ("", "0"):
            pytest.fail(message + " (QMPDL_REQUIRE_ANCHORS=1)")
        pytest.skip(message)
    return directory


def traces_dir() -> Path:
    """The traces (see :func:`required`)."""
    return required(TRACES, "anchor traces")


def trace_names() -> list[str]:
    return list(RUNS)


def read_trace(run: str) -> Iterator[TraceEvent]:
    with gzip.open(traces_dir() / f"{run}.qemu-trace.log.gz", "rt") as f:
        for line in f:
            m = _LINE.match(line.strip())
            if m:
                yield TraceEvent(int(m[1]), float(m[2]), m[3], m[4])


def read_samples(run: str) -> list[dict[str, str]]:
    with open(traces_dir() / f"{run}.samples.csv", newline="") as f:
        return list(csv.DictReader(f))
