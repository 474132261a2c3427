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
from typing import NamedTuple

from qmpdl.cint import U64_MASK
from qmpdl.clock import Clock
from qmpdl.errors import QmpdlError
from qmpdl.profile import Profile
from qmpdl.target import PAGE_SIZE
from qmpdl.trace import Tracer
from qmpdl.vm.bql import BigLock
from qmpdl.vm.dirtylog import DirtyLog, DirtyLogUser


class MeasurementAbortedError(QmpdlError):
    """The machine is shutting down: the window was cut short and means nothing."""


class VcpuRates(NamedTuple):
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


class DirtyRateMeasurer:
    """A part that measures dirty rates in a machine thread: the dirty limit's
    (``dirtyrate-stat``) and ``calc-dirty-rate``'s (``get_dirtyrate``).  It holds the
    dirty log it reads, the clock and QEMU version the windows follow, the event that
    cuts a window short at shutdown, the BQL (its own when the part runs alone) and
    where its trace events go."""

    def __init__(
        self,
        dirty_log: DirtyLog,
        clock: Clock,
        profile: Profile,
        shutdown: threading.Event,
        *,
        bql: BigLock | None,
        tracer: Tracer,
    ) -> None:
        self.dirty_log = dirty_log
        self.clock = clock
        self.profile = profile
        self._bql = bql or BigLock()
        self._shutdown = shutdown
        self._trace = tracer

    def wait_window(self, period_ms: int, start_ms: int) -> int:
        """Sleep until ``start_ms + period_ms``; return the window length QEMU would use.
        Raises :class:`MeasurementAbortedError` when the machine shuts down meanwhile."""
        clock = self.clock
        elapsed = now_ms(clock) - start_ms
        if elapsed >= period_ms:
            duration = elapsed
        else:
            if clock.sleep_until((start_ms + period_ms) / 1000, self._shutdown):
                raise MeasurementAbortedError
            duration = period_ms
        if self.profile.has("dirtyrate-measured-duration"):
            duration = now_ms(clock) - start_ms
        return duration

    def vcpu_calculate_dirtyrate(
        self, period_ms: int, user: DirtyLogUser, *, one_shot: bool
    ) -> VcpuRates:
        """Measure every present vCPU's dirty rate over one window of ``period_ms``."""
        dirty_log = self.dirty_log
        start_ms = now_ms(self.clock)
        start = dirty_log.dirty_pages()
        duration = self.wait_window(period_ms, start_ms)
        # QEMU holds the BQL here but drops it while waiting for the kicked vCPUs; the
        # backend and the dirty log lock themselves, so no machine-wide lock is taken.
        dirty_log.sync()
        if one_shot:
            dirty_log.stop(user)
        end = dirty_log.dirty_pages()
        return VcpuRates(
            duration,
            [
                rate_mib_per_s(e - s, duration, self.profile)
                for s, e in zip(start, end, strict=True)
            ],
        )
