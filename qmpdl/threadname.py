"""Give the calling thread its Python name at the OS level too (``/proc/PID/task/*/comm``).

QEMU names its threads this way with ``-name debug-threads=on`` ("CPU 0/KVM",
"dirtyrate-stat", "live_migration"); qmpdl always does, so ``top -H`` and the
benchmarks can tell the throttle thread from the vCPUs.  Linux keeps 15 bytes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

_PR_SET_NAME = 15


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (looked up when a thread first names itself: ctypes costs every
    start-up a millisecond)."""
    import ctypes

    try:
        # the process's own symbols include libc's (no library search, which would spawn
        # ldconfig and stall the first thread that names itself)
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


def name_this_thread() -> None:
    """Copy ``threading.current_thread().name`` to the OS thread; a no-op where
    ``prctl`` is missing."""
    prctl = _prctl()
    if prctl is not None:
        import ctypes

        name = threading.current_thread().name.encode()[:15]
        prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
