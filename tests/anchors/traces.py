"""Readers for the real QEMU traces: QEMU 7.2's in ../shared/anchors (see its README),
QEMU 10.0's recorded here (``tests/anchors/qemu-10.0``, by :mod:`tests.anchors.record_qemu`)."""

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


#: The runs recorded in this repository, per QEMU version.
RECORDED = {
    "10.0": [
        "smp1-fresh-q50",
        "smp1-fresh-q100",
        "smp1-fresh-q200",
        "smp1-fresh-q300",
        "smp1-fresh-q400",
        "smp1-nocalc",
        "smp1-calc2s",
    ],
}


def recorded_dir(version: str) -> Path:
    """Where the traces of QEMU ``version`` recorded here live."""
    return Path(__file__).with_name(f"qemu-{version}")


def required(directory: Path, what: str) -> Path:
    """``directory`` of ../shared/anchors; skip without it, unless
    QMPDL_REQUIRE_ANCHORS=1 (set by .ci/run)."""
    if not directory.is_dir():
        message = f"{what} not found at {directory}"
        if os.environ.get("QMPDL_REQUIRE_ANCHORS", "") not in ("", "0"):
            pytest.fail(message + " (QMPDL_REQUIRE_ANCHORS=1)")
        pytest.skip(message)
    return directory


def traces_dir(version: str = "7.2") -> Path:
    """The traces of QEMU ``version``.  7.2's live in ../shared/anchors (see
    :func:`required`)."""
    if version in RECORDED:
        return recorded_dir(version)
    return required(TRACES, "anchor traces")


def trace_names(version: str = "7.2") -> list[str]:
    return list(RECORDED.get(version, RUNS))


def read_trace(run: str, version: str = "7.2") -> Iterator[TraceEvent]:
    with gzip.open(traces_dir(version) / f"{run}.qemu-trace.log.gz", "rt") as f:
        for line in f:
            m = _LINE.match(line.strip())
            if m:
                yield TraceEvent(int(m[1]), float(m[2]), m[3], m[4])


def read_samples(run: str) -> list[dict[str, str]]:
    with open(traces_dir() / f"{run}.samples.csv", newline="") as f:
        return list(csv.DictReader(f))
