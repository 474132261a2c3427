"""A virtual clock for a whole machine, threads included, that moves only when stepped.

:class:`SteppedClock` is the :class:`~qmpdl.clock.Clock` of ``-accel sim,clock=virtual``.
Time stands still until someone *steps* it (``__com.qmpdl_clock-step``, or a command
that waits for the guest, see below).  A step to time ``T`` runs, in order of their
deadlines (ties: in the order they were set), everything due up to ``T``:

* *timers* (:meth:`call_at`): callbacks run on the stepping thread itself - the throttle
  periods and the scenario's actions, so an hour of throttling costs no thread switches;
* *sleepers*: machine threads (a ``calc-dirty-rate`` measurement, the migration thread)
  blocked in :meth:`sleep_until`.  One is released at a time, and the step waits until
  it sleeps again, ends, or parks (waits for something outside the machine, such as
  ``migrate-continue``) before it goes on.

Machine threads are *adopted* when they start (:func:`qmpdl.clock.start_thread`), so a
step, and every command's reply (:meth:`settle`), waits for a thread that has just been
started to reach its first wait: with the same commands, the threads interleave the
same way on every run, and the replies and events are the same bytes.

A thread that is neither adopted nor stepping (a command handler) and sleeps on the
clock advances it itself to its deadline, running what falls due meanwhile: a command
that waits in QEMU for something that takes guest time (``stop`` waiting for a vCPU's
penalty sleep, ``cancel-vcpu-dirty-limit`` for the end of the throttle period) takes that
much virtual time, and replies at the virtual instant QEMU would.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("qmpdl")

#: The virtual clock's monotonic time at start (seconds) and its wall clock then.
START = 1000.0
EPOCH = 1_800_000_000.0
#: Wall seconds a step or a reply waits for a busy machine thread before it gives up
#: waiting (a thread blocked on something the clock cannot see: a bug, logged).
QUIET_DEADLINE = 30.0
#: Wall seconds between two looks at a sleeper's ``wakeup`` and at the machine's threads
#: while waiting.  Only a safety net: what ends a wait (a sleep, a park, a thread's end,
#: :meth:`SteppedClock.notify` after setting a ``wakeup``) wakes the waiters at once.
RECHECK = 0.1

_BUSY, _ASLEEP, _PARKED = "busy", "asleep", "parked"


@dataclass(order=True)
class Timer:
    """A callback due at ``deadline`` (see :meth:`SteppedClock.call_at`)."""

    deadline: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class _Sleep:
    deadline: float
    seq: int
    thread: threading.Thread
    released: bool = False


class SteppedClock:
    """Virtual monotonic and wall time for a machine and its threads."""

    def __init__(self, start: float = START, epoch: float = EPOCH) -> None:
        self._now = start
        self._epoch = epoch - start
        self._cond = threading.Condition(threading.Lock())
        self._seq = itertools.count()
        self._timers: list[Timer] = []
        self._sleeps: dict[threading.Thread, _Sleep] = {}
        self._threads: dict[threading.Thread, str] = {}
        #: the thread that moves time now (re-entrant: a timer may wait too)
        self._step_lock = threading.RLock()
        self._stepper: threading.Thread | None = None
        #: timers run and threads released so far (for tests and the benchmark)
        self.dispatched = 0
        #: the machine is going away: sleeps end at once (time jumps to their end)
        self._free = False

    # ------------------------------------------------------------------ Clock

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._epoch + self._now

    def now_ns(self) -> int:
        return round(self._now * 1e9)

    def sleep_until(self, deadline: float, wakeup: threading.Event | None = None) -> bool:
        me = threading.current_thread()
        if wakeup is not None and wakeup.is_set():
            return True
        if deadline <= self._now:
            return False
        with self._cond:
            if self._free:
                self._now = max(self._now, deadline)
                return False
            adopted = me in self._threads
        if not adopted:
            # a command (or a timer) waiting for the guest: time runs for it
            return self.advance_to(deadline, wakeup)
        with self._cond:
            sleep = _Sleep(deadline, next(self._seq), me)
            self._sleeps[me] = sleep
            self._threads[me] = _ASLEEP
            self._cond.notify_all()
            try:
                while not sleep.released:
                    if wakeup is not None and wakeup.is_set():
                        return True
                    if self._free:
                        self._now = max(self._now, deadline)
                        return False
                    self._cond.wait(RECHECK if wakeup is not None else None)
                return False
            finally:
                self._sleeps.pop(me, None)
                self._threads[me] = _BUSY
                self._cond.notify_all()

    # ------------------------------------------------------------------ threads

    def adopt(self, thread: threading.Thread) -> None:
        """``thread`` (not started yet) belongs to the machine: steps and replies wait
        for it whenever it is neither asleep on this clock nor parked."""
        with self._cond:
            self._threads[thread] = _BUSY
        run = thread.run

        def run_then_leave() -> None:
            try:
                run()
            finally:
                self._leave(thread)

        thread.run = run_then_leave  # type: ignore[method-assign]

    def _leave(self, thread: threading.Thread) -> None:
        """``thread`` is about to end: a step or a reply waiting for it goes on now."""
        with self._cond:
            self._threads.pop(thread, None)
            self._sleeps.pop(thread, None)
            self._cond.notify_all()

    def notify(self) -> None:
        """A sleeper's ``wakeup`` was set (see :func:`qmpdl.clock.wake`): it returns now."""
        with self._cond:
            self._cond.notify_all()

    @contextmanager
    def parked(self) -> Iterator[None]:
        """The calling thread waits for something outside the machine meanwhile."""
        me = threading.current_thread()
        with self._cond:
            before = self._threads.get(me)
            if before is not None:
                self._threads[me] = _PARKED
                self._cond.notify_all()
        try:
            yield
        finally:
            if before is not None:
                with self._cond:
                    self._threads[me] = before

    def unpark(self, thread: threading.Thread) -> None:
        """Another thread releases what ``thread`` waits for while parked: it counts as
        running from now on, so a step right after waits for it (not only once it is
        scheduled and leaves its wait)."""
        with self._cond:
            if self._threads.get(thread) == _PARKED:
                self._threads[thread] = _BUSY

    def _busy(self) -> list[threading.Thread]:
        gone = [t for t in self._threads if not t.is_alive() and t.ident is not None]
        for t in gone:
            del self._threads[t]
        return [t for t, s in self._threads.items() if s == _BUSY]

    def _wait_quiet(self) -> None:
        """Until no adopted thread is running (lock held)."""
        busy = self._busy()
        if not busy:
            return
        give_up = time.monotonic() + QUIET_DEADLINE
        while busy:
            if threading.current_thread() in busy and len(busy) == 1:
                return  # an adopted thread moving time itself
            if time.monotonic() > give_up:
                log.warning(
                    "virtual clock: %s still running after %.0f s; going on without it",
                    ", ".join(t.name for t in busy),
                    QUIET_DEADLINE,
                )
                return
            self._cond.wait(RECHECK)
            busy = self._busy()

    def settle(self) -> None:
        """Wait until every adopted thread sleeps, parks or has ended (a command's
        reply goes out only then)."""
        with self._cond:
            self._wait_quiet()

    def release(self) -> None:
        """The machine shuts down: every sleep, now and later, ends at once (time jumps
        to its deadline), so threads being joined can finish without a step."""
        with self._cond:
            self._free = True
            for sleep in self._sleeps.values():
                sleep.released = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ timers

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the stepping thread when time reaches ``deadline``."""
        timer = Timer(deadline, next(self._seq), callback)
        with self._cond:
            heapq.heappush(self._timers, timer)
        return timer

    def next_deadline(self) -> float | None:
        """The earliest pending timer or sleep, if any."""
        with self._cond:
            return self._next()

    def _next(self) -> float | None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        times = [s.deadline for s in self._sleeps.values() if not s.released]
        if self._timers:
            times.append(self._timers[0].deadline)
        return min(times) if times else None

    # ------------------------------------------------------------------ stepping

    def step(self, seconds: float | None = None) -> float:
        """Advance by ``seconds`` (None: to the next deadline, if any); the new time."""
        if seconds is None:
            self.settle()
            deadline = self.next_deadline()
            if deadline is None:
                return self._now
            self.advance_to(deadline)
        else:
            self.advance_to(self._now + max(seconds, 0.0))
        return self._now

    def advance_to(self, target: float, wakeup: threading.Event | None = None) -> bool:
        """Move time to ``target``, running everything due on the way; True if
        ``wakeup`` was set first (time then stops where it was)."""
        me = threading.current_thread()
        if not self._step_lock.acquire(blocking=False):
            # a machine thread moving time (a migration's destination catching up)
            # while a step runs: that step must not wait for it meanwhile
            with self.parked():
                self._step_lock.acquire()
        try:
            outer, self._stepper = self._stepper, me
            try:
                return self._advance(target, wakeup)
            finally:
                self._stepper = outer
        finally:
            self._step_lock.release()

    def _advance(self, target: float, wakeup: threading.Event | None) -> bool:
        with self._cond:
            self._wait_quiet()
            while True:
                if wakeup is not None and wakeup.is_set():
                    return True
                item = self._due(target)
                if item is None:
                    break
                if isinstance(item, Timer):
                    heapq.heappop(self._timers)
                    self._now = max(self._now, item.deadline)
                    self.dispatched += 1
                    self._cond.release()
                    try:
                        item.callback()
                    finally:
                        self._cond.acquire()
                else:
                    self._now = max(self._now, item.deadline)
                    self.dispatched += 1
                    item.released = True
                    self._sleeps.pop(item.thread, None)
                    self._threads[item.thread] = _BUSY
                    self._cond.notify_all()
                self._wait_quiet()
            self._now = max(self._now, target)
        return False

    def _due(self, target: float) -> Timer | _Sleep | None:
        """The earliest timer or sleep due at or before ``target`` (lock held)."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        best: Timer | _Sleep | None = None
        if self._timers and self._timers[0].deadline <= target:
            best = self._timers[0]
        for sleep in self._sleeps.values():
            if sleep.released or sleep.deadline > target:
                continue
            if best is None or (sleep.deadline, sleep.seq) < (best.deadline, best.seq):
                best = sleep
        return best
