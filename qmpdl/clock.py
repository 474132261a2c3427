"""Time, through one interface, so a virtual clock can replace the real one.

QEMU reads two clocks for the dirty limit: ``QEMU_CLOCK_REALTIME`` (monotonic, used for
measurement windows and, before 8.2, for ``start-time``) and the host wall clock (event
timestamps, ``start-time`` from 8.2).  Every sleep in qmpdl's machine model goes through
:meth:`Clock.sleep_until` so it can be interrupted (a kick, a shutdown) and so a virtual
clock can run the same code faster than real time.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from typing import Protocol


class Clock(Protocol):
    """What the machine model needs from time."""

    def monotonic(self) -> float:
        """Seconds of a monotonic clock (QEMU_CLOCK_REALTIME; on Linux: since host boot)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (the host clock)."""
        ...

    def sleep_until(self, deadline: float, wakeup: threading.Event | None = None) -> bool:
        """Block until ``monotonic() >= deadline``; return True early if ``wakeup`` is set."""
        ...


class RealClock:
    """The host's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep_until(self, deadline: float, wakeup: threading.Event | None = None) -> bool:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if wakeup is None:
                time.sleep(left)
            elif wakeup.wait(left):
                return True


class VirtualClock:
    """Time that only moves when someone sleeps: for deterministic, fast runs driven
    from a single thread (the throttle loop stepped by hand, see
    :meth:`qmpdl.dirtylimit.service.DirtyLimit.run_period`).  Sleeping jumps straight
    to the deadline."""

    def __init__(self, start: float = 1000.0, epoch: float = 1_800_000_000.0) -> None:
        self._now = start
        self._epoch = epoch - start

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def sleep_until(self, deadline: float, wakeup: threading.Event | None = None) -> bool:
        if wakeup is not None and wakeup.is_set():
            return True
        self._now = max(self._now, deadline)
        return False


def start_thread(thread: threading.Thread, clock: Clock) -> None:
    """Start a machine thread that waits on ``clock``.  A stepped virtual clock
    (:mod:`qmpdl.vtime`) adopts it first, so a clock step waits until it is asleep
    again (or gone) and every run interleaves the same way."""
    adopt = getattr(clock, "adopt", None)
    if adopt is not None:
        adopt(thread)
    thread.start()


class _NoPark:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def wake(clock: Clock, event: threading.Event) -> None:
    """Set ``event``, the ``wakeup`` of a :meth:`Clock.sleep_until`: the sleeper returns
    at once (on a stepped virtual clock, too: it is told)."""
    event.set()
    notify = getattr(clock, "notify", None)
    if notify is not None:
        notify()


def unpark(clock: Clock, thread: threading.Thread | None) -> None:
    """Before releasing what a parked ``thread`` waits for (see :func:`parked`)."""
    release = getattr(clock, "unpark", None)
    if release is not None and thread is not None:
        release(thread)


def catch_up(clock: Clock, deadline: float) -> None:
    """Another machine's time has reached ``deadline`` (a migration source's): a stepped
    virtual clock behind it moves there, running what falls due meanwhile (a machine
    thread may call it); other clocks go their own way."""
    advance = getattr(clock, "advance_to", None)
    if advance is not None and deadline > clock.monotonic():
        advance(deadline)


def release(clock: Clock) -> None:
    """The machine goes away: a stepped virtual clock ends every sleep, now and later,
    so threads being joined do not wait for a step that never comes."""
    free = getattr(clock, "release", None)
    if free is not None:
        free()


def parked(clock: Clock) -> AbstractContextManager[None]:
    """Around a wait for something outside the machine (a QMP command, a peer): a
    stepped virtual clock does not wait for the thread meanwhile."""
    park = getattr(clock, "parked", None)
    if park is None:
        return _NoPark()
    result: AbstractContextManager[None] = park()
    return result
