"""Limit phases of a real QEMU trace: each set-vcpu-dirty-limit until its cancel."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.anchors.traces import read_trace

_SET = re.compile(r"CPU\[(\d+)\] set dirty page rate limit (\d+)")
_RATE = re.compile(r"vcpu\[(\d+)\]: (\d+) MB/s")


@dataclass
class Phase:
    """One quota applied to every vCPU of a 1-vCPU run, and what QEMU measured."""

    quota: int
    start: float
    end: float | None = None
    #: the throttle thread's per-period rates of vCPU 0
    rates: list[int] = field(default_factory=list)


def limit_phases(run: str, version: str = "7.2") -> list[Phase]:
    events = list(read_trace(run, version))
    calc_tids = {e.tid for e in events if e.name == "dirtyrate_calculate"}
    phases: list[Phase] = []
    current: Phase | None = None
    for e in events:
        if e.name == "dirtylimit_set_vcpu":
            m = _SET.search(e.args)
            assert m
            quota = int(m[2])
            if quota and (current is None or current.end is not None):
                current = Phase(quota, e.time)
                phases.append(current)
            elif not quota and current is not None and current.end is None:
                current.end = e.time
        elif (
            e.name == "dirtyrate_do_calculate_vcpu"
            and e.tid not in calc_tids
            and current is not None
            and current.end is None
        ):
            m = _RATE.search(e.args)
            assert m
            if m[1] == "0":
                current.rates.append(int(m[2]))
    return phases


def converged_at(rates: list[int], quota: int) -> int | None:
    """First period (1-based) whose rate is within QEMU's tolerance band of the quota."""
    for i, rate in enumerate(rates, 1):
        if abs(rate - quota) <= 25:
            return i
    return None
