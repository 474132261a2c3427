"""The throttle's periods as timers of the virtual clock, not a thread.

Under the virtual clock the ``dirtyrate-stat`` loop runs as three timer stages on the
stepping thread, each what the thread would do between two of its waits:

1. *begin*: note the time and every vCPU's harvested pages; the period ends
   ``period_ms`` later;
2. *end*: the window's length as QEMU takes it, then the dirty-ring flush: on QEMU 8.2+
   the kick waits for vCPUs in a penalty sleep, so the flush may be due later;
3. *flush*: harvest every ring, read the counters, publish the rates, adjust the
   penalties (:meth:`~qmpdl.dirtylimit.service.DirtyLimit.complete_period`), and
   begin the next period at once.

The arithmetic is the thread's (:mod:`qmpdl.dirtyrate.measure`); only the waiting is
different, and no thread has to be woken and waited for per period.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qmpdl.backend.sim import SimBackend
from qmpdl.dirtyrate.measure import VcpuRates, now_ms, rate_mib_per_s

if TYPE_CHECKING:
    from qmpdl.dirtylimit.service import DirtyLimit
    from qmpdl.vtime.clock import SteppedClock, Timer


class TimerThrottle:
    """Runs a :class:`~qmpdl.dirtylimit.service.DirtyLimit`'s periods on clock timers."""

    def __init__(self, limit: DirtyLimit, clock: SteppedClock) -> None:
        self.limit = limit
        self.clock = clock
        self._timer: Timer | None = None
        self._active = False
        self._start_ms = 0
        self._period_ms = 0
        self._t0 = 0.0
        self._start: list[int] = []
        self._slept0: list[float] | None = None
        self._duration = 0

    # ------------------------------------------------------------------ PeriodDriver

    def start(self) -> None:
        self._active = True
        self._begin()

    def stop(self) -> None:
        """Finish the period in progress: time runs to its end (QEMU's join)."""
        self._active = False
        timer = self._timer
        if timer is None or timer.cancelled:
            return
        while self._timer is not None and not self._timer.cancelled:
            self.clock.advance_to(self._timer.deadline)

    def cancel(self) -> None:
        self._active = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ stages

    def _schedule(self, at: float, stage: Callable[[], None]) -> None:
        self._timer = self.clock.call_at(at, stage)

    def _begin(self) -> None:
        self._timer = None
        if not self._active:
            return
        delay = self.limit.period_delay()
        if delay > 0:
            self._schedule(self.clock.monotonic() + delay, self._begin)
            return
        limit = self.limit
        backend = limit.backend
        self._slept0 = (
            backend.penalty_sleep_seconds() if limit.throttle_controller.uses_sleep_time else None
        )
        self._t0 = self.clock.monotonic()
        self._period_ms = limit.period_length_ms()
        self._start_ms = now_ms(self.clock)
        self._start = limit.dirty_log.dirty_pages()
        self._schedule((self._start_ms + self._period_ms) / 1000, self._end)

    def _end(self) -> None:
        profile = self.limit.profile
        duration = max(now_ms(self.clock) - self._start_ms, self._period_ms)
        if profile.has("dirtyrate-measured-duration"):
            duration = now_ms(self.clock) - self._start_ms
        self._duration = duration
        backend = self.limit.backend
        if backend.ring_size and isinstance(backend, SimBackend):
            done = backend.kick_completion_time()
            if done > self.clock.monotonic():
                self._schedule(done, lambda: self._flush(done))
                return
            self._flush(done)
            return
        self._flush(None)

    def _flush(self, kicked: float | None) -> None:
        self._timer = None
        limit = self.limit
        backend = limit.backend
        if kicked is not None and isinstance(backend, SimBackend):
            backend.flush_after_kick(kicked)
        else:
            limit.dirty_log.sync()
        end = limit.dirty_log.dirty_pages()
        profile = limit.profile
        rates = [
            rate_mib_per_s(e - s, self._duration, profile)
            for s, e in zip(self._start, end, strict=True)
        ]
        limit.complete_period(VcpuRates(self._duration, rates), self._t0, self._slept0)
        if self._active:
            self._begin()
