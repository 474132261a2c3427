"""QEMU's main-loop bottom halves, as far as a client can see them.

A background thread (the migration thread, say) hands work to the main loop; the main
loop runs it under the BQL between commands, never while a command is being answered.
So whatever it emits comes after the reply of the command in flight: ``migrate_cancel``
replies before its migration reaches ``cancelled`` (QEMU sets that state in the
migration's cleanup bottom half).

Without a server attached (in-process machines, tests), scheduled work runs at once on
the scheduling thread, under the BQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from qmpdl.vm.bql import BigLock

Work = Callable[[], None]


class BottomHalves:
    """Where background threads schedule main-loop work."""

    def __init__(self, bql: BigLock) -> None:
        self._bql = bql
        self._lock = threading.Lock()
        self._runner: Callable[[Work], None] | None = None

    def attach(self, runner: Callable[[Work], None] | None) -> None:
        """From now on hand work to ``runner`` (the server's main loop); None detaches."""
        with self._lock:
            self._runner = runner

    def schedule(self, work: Work) -> None:
        """Run ``work`` in the main loop, between commands."""
        with self._lock:
            runner = self._runner
        if runner is not None:
            try:
                runner(work)
                return
            except RuntimeError:  # the loop is gone (shutting down): run it here
                pass
        with self._bql:
            work()
