"""QEMU's penalty adjustment as pure functions (CALCULATE + SET PENALTY): the arithmetic
of the ``qemu`` throttle controller (:mod:`qmpdl.dirtylimit.controllers` lists them all).

Every period the throttle thread compares each limited vCPU's measured dirty rate
(``current``, MiB/s) with its ``quota`` and nudges ``throttle_us_per_full``: the
microseconds the vCPU sleeps each time its dirty ring fills.  The arithmetic follows
QEMU's C types exactly - unsigned 64-bit differences that wrap, an integer percentage,
a step computed in double precision and truncated - so that every adjustment equals the
one QEMU's trace shows for the same inputs (see tests/test_controller.py, which replays
the real traces in ../shared/anchors).

The ring-full time ``F`` is the time one dirty ring takes to fill at the largest rate
ever measured (QEMU keeps that maximum in a function-static variable: process-wide,
never reset).  :class:`ControllerState` carries it explicitly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from qmpdl.cint import to_i64, to_u64
from qmpdl.target import PAGE_SIZE

#: No adjustment while ``|quota - current| <= 25`` MiB/s.
TOLERANCE_RANGE = 25
#: Relative error (percent) above which the step is proportional instead of fixed.
LINEAR_ADJUSTMENT_PCT = 50
#: The penalty may reach at most 99 ring-full times.
THROTTLE_PCT_MAX = 99


def done(quota: int, current: int) -> bool:
    """True when the rate is within the tolerance band of the quota (no adjustment)."""
    low, high = min(quota, current), max(quota, current)
    return to_u64(high - low) <= TOLERANCE_RANGE


def need_linear_adjustment(quota: int, current: int) -> bool:
    """True when the relative error exceeds 50 % (uint64 arithmetic, as QEMU)."""
    low, high = min(quota, current), max(quota, current)
    return to_u64(to_u64(high - low) * 100) // high > LINEAR_ADJUSTMENT_PCT


def ring_memory_mib(ring_entries: int) -> int:
    """MiB covered by one full ring (integer; rings below 256 entries give 0)."""
    return (ring_entries * PAGE_SIZE) >> 20


class ControllerState(NamedTuple):
    """The controller's only memory: the largest dirty rate it was ever given."""

    max_dirtyrate: int = 0

    def ring_full_time_us(self, ring_entries: int, rate: int) -> tuple[int, ControllerState]:
        """Microseconds to fill one ring at the largest rate seen (including ``rate``)."""
        state = self if rate <= self.max_dirtyrate else ControllerState(rate)
        return ring_memory_mib(ring_entries) * 1_000_000 // state.max_dirtyrate, state


class Adjustment(NamedTuple):
    """The result of one CALCULATE step for one vCPU."""

    throttle_us_per_full: int
    state: ControllerState
    #: ``F``, when it was computed (not when the rate was 0).
    ring_full_time_us: int | None = None
    #: (percent, step) when the proportional branch ran - QEMU's ``dirtylimit_throttle_pct`` trace.
    linear: tuple[int, int] | None = None


def set_throttle(
    throttle_us_per_full: int,
    quota: int,
    current: int,
    ring_entries: int,
    state: ControllerState,
) -> Adjustment:
    """One adjustment of a vCPU's penalty towards ``quota`` (QEMU's ``set_throttle``)."""
    if current == 0:
        return Adjustment(0, state)
    full_us, state = state.ring_full_time_us(ring_entries, current)
    t = throttle_us_per_full
    linear = None
    if need_linear_adjustment(quota, current):
        if quota < current:
            pct = to_u64(to_u64(current - quota) * 100) // current
        else:
            pct = to_u64(to_u64(quota - current) * 100) // quota
        step = _double_to_u64(float(to_u64(full_us * pct)) / float(to_u64(100 - pct)))
        t = to_i64(t + step) if quota < current else to_i64(t - step)
        linear = (pct, step)
    else:
        t = t + full_us // 10 if quota < current else t - full_us // 10
    t = min(t, full_us * THROTTLE_PCT_MAX)
    t = max(t, 0)
    return Adjustment(t, state, full_us, linear)


def adjust(
    throttle_us_per_full: int,
    quota: int,
    current: int,
    ring_entries: int,
    state: ControllerState,
) -> Adjustment:
    """One vCPU's step of the throttle thread: nothing inside the band, else
    :func:`set_throttle`."""
    if done(quota, current):
        return Adjustment(throttle_us_per_full, state)
    return set_throttle(throttle_us_per_full, quota, current, ring_entries, state)


def _double_to_u64(value: float) -> int:
    """C's conversion of a double to uint64 on x86-64 (truncation; inf/NaN give 2**63)."""
    if math.isnan(value) or math.isinf(value) or value >= 2.0**64:
        return 1 << 63
    return to_u64(int(value))
