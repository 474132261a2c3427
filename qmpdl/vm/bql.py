"""The big QEMU lock (BQL), as far as the dirty limit can observe it.

In-band command handlers hold it while they run (QEMU runs them in the main loop with the
BQL held).  Background threads take it for the moments QEMU's do: the throttle thread
and a dirty-rate measurement start and stop dirty logging under it.  Code that waits
inside a handler - joining the throttle thread, waiting for vCPUs to pause - drops it
meanwhile, as QEMU does, so the threads it waits for can finish.

The observable consequence: a ``cancel-vcpu-dirty-limit`` that follows its
``set-vcpu-dirty-limit`` closely enough finds the throttle thread still waiting for the
lock to start dirty logging, and returns at once instead of after a period.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType


class BigLock:
    """A recursive lock that its owner can drop entirely and take back."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0

    def held(self) -> bool:
        return self._owner == threading.get_ident()

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            while self._owner not in (None, me):
                self._cond.wait()
            self._owner = me
            self._depth += 1

    def release(self) -> None:
        with self._cond:
            assert self._owner == threading.get_ident(), "BQL released by a thread not holding it"
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._cond.notify()

    def __enter__(self) -> BigLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @contextmanager
    def dropped(self) -> Iterator[None]:
        """Let go of the lock (all levels) for the block, if this thread holds it."""
        if not self.held():
            yield
            return
        with self._cond:
            depth, self._depth, self._owner = self._depth, 0, None
            self._cond.notify()
        try:
            yield
        finally:
            me = threading.get_ident()
            with self._cond:
                while self._owner is not None:
                    self._cond.wait()
                self._owner, self._depth = me, depth
