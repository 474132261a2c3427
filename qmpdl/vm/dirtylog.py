"""QEMU's global dirty log: a bitmask of users; logging is on while any bit is set."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

from qmpdl.backend.base import DirtyTracker


class DirtyLogUser(enum.IntFlag):
    """Who wants guest writes tracked (QEMU's ``GLOBAL_DIRTY_*`` flags)."""

    MIGRATION = 1
    DIRTY_RATE = 2
    LIMIT = 4


class DirtyLog:
    """Starts/stops the backend's dirty tracking as users come and go; counts bitmap pages."""

    def __init__(
        self, backend: DirtyTracker, counters: Callable[[], list[int]] | None = None
    ) -> None:
        self.backend = backend
        #: what measurements read as each vCPU's harvested pages (a scenario's
        #: ``bad-measurement`` fault hands in its own reading: qmpdl.vtime.faults)
        self._counters = counters or backend.dirty_pages
        self._lock = threading.Lock()
        self.mask = DirtyLogUser(0)
        #: pages found dirty by bitmap syncs so far (QEMU's ``total_dirty_pages``)
        self.total_dirty_pages = 0

    def start(self, user: DirtyLogUser) -> None:
        with self._lock:
            was = self.mask
            self.mask |= user
            if not was:
                self.backend.set_dirty_logging(True)

    def stop(self, user: DirtyLogUser) -> None:
        with self._lock:
            if not self.mask & user:
                return
            self.mask &= ~user
            if not self.mask:
                self.backend.set_dirty_logging(False)

    def dirty_pages(self) -> list[int]:
        """Per vCPU: ring entries harvested so far, as the measurements see them."""
        return self._counters()

    def sync(self) -> None:
        """Collect what the guest dirtied so far: a ring flush, or a bitmap sync."""
        if self.backend.ring_size:
            self.backend.flush_dirty_rings()
        else:
            pages = self.backend.sync_dirty_bitmap()
            with self._lock:
                self.total_dirty_pages += pages
