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


def traces_dir() -> Path:
    if not TRACES.is_dir():
        pytest.skip(f"anchor traces not found at {TRACES}")
    return TRACES


def trace_names() -> list[str]:
    if not TRACES.is_dir():
        return []
    return sorted(
        p.name.removesuffix(".qemu-trace.log.gz") for p in TRACES.glob("*.qemu-trace.log.gz")
    )


def read_trace(run: str) -> Iterator[TraceEvent]:
    with gzip.open(traces_dir() / f"{run}.qemu-trace.log.gz", "rt") as f:
        for line in f:
            m = _LINE.match(line.strip())
            if m:
                yield TraceEvent(int(m[1]), float(m[2]), m[3], m[4])


def read_samples(run: str) -> list[dict[str, str]]:
    with open(traces_dir() / f"{run}.samples.csv", newline="") as f:
        return list(csv.DictReader(f))
