"""Per-vCPU dirty rate over one window, from the dirty ring (QEMU's
``vcpu_calculate_dirtyrate``), shared by the throttle thread and ``calc-dirty-rate``.

1. snapshot every vCPU's harvested-page counter and note the time (ms);
2. sleep until the window ends;
3. sync the dirty log (with the ring: kick every vCPU and harvest every ring), and for a
   one-shot measurement stop this user's logging;
4. snapshot again; rate = MiB dirtied / window, in integer MiB/s.

Profile differences: before 8.2 the window length is the requested one (or the elapsed
time if the clock had already passed it) and pages are truncated to whole MiB before
scaling to a second; from 8.2 the elapsed time is re-read after the sleep and pages are
scaled first (``dirtyrate-measured-duration``, ``dirtyrate-mib-after-scaling``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from qmpdl.cint import U64_MASK
from qmpdl.clock import Clock
from qmpdl.errors import QmpdlError
from qmpdl.profile import Profile
from qmpdl.target import PAGE_SIZE
from qmpdl.vm.dirtylog import DirtyLog, DirtyLogUser


class MeasurementAbortedError(QmpdlError):
    """The machine is shutting down: the window was cut short and means nothing."""


@dataclass(frozen=True)
class VcpuRates:
    """One window's result."""

    duration_ms: int
    rates: list[int]


def rate_mib_per_s(pages: int, duration_ms: int, profile: Profile) -> int:
    """Integer MiB/s of ``pages`` dirtied in ``duration_ms``, with the profile's rounding."""
    if duration_ms <= 0:
        return 0
    pages &= U64_MASK
    if profile.has("dirtyrate-mib-after-scaling"):
        return ((pages * 1000 * PAGE_SIZE) >> 20) // duration_ms
    return ((pages * PAGE_SIZE) >> 20) * 1000 // duration_ms


def now_ms(clock: Clock) -> int:
    """QEMU_CLOCK_REALTIME in whole milliseconds."""
    return int(clock.monotonic() * 1000)


def wait_window(
    clock: Clock, period_ms: int, start_ms: int, profile: Profile, abort: threading.Event | None
) -> int:
    """Sleep until ``start_ms + period_ms``; return the window length QEMU would use."""
    elapsed = now_ms(clock) - start_ms
    if elapsed >= period_ms:
        duration = elapsed
    else:
        if clock.sleep_until((start_ms + period_ms) / 1000, abort):
            raise MeasurementAbortedError
        duration = period_ms
    if profile.has("dirtyrate-measured-duration"):
        duration = now_ms(clock) - start_ms
    return duration


def vcpu_calculate_dirtyrate(
    *,
    clock: Clock,
    dirty_log: DirtyLog,
    period_ms: int,
    user: DirtyLogUser,
    one_shot: bool,
    profile: Profile,
    abort: threading.Event | None = None,
) -> VcpuRates:
    """Measure every present vCPU's dirty rate over one window of ``period_ms``."""
    start_ms = now_ms(clock)
    start = dirty_log.dirty_pages()
    duration = wait_window(clock, period_ms, start_ms, profile, abort)
    # QEMU holds the BQL here but drops it while waiting for the kicked vCPUs; the
    # backend and the dirty log lock themselves, so no machine-wide lock is taken.
    dirty_log.sync()
    if one_shot:
        dirty_log.stop(user)
    end = dirty_log.dirty_pages()
    return VcpuRates(
        duration,
        [rate_mib_per_s(e - s, duration, profile) for s, e in zip(start, end, strict=True)],
    )
