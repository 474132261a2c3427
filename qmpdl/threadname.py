"""Give the calling thread its Python name at the OS level too (``/proc/PID/task/*/comm``).

QEMU names its threads this way with ``-name debug-threads=on`` ("CPU 0/KVM",
"dirtyrate-stat", "live_migration"); qmpdl always does, so ``top -H`` and the
benchmarks can tell the throttle thread from the vCPUs.  Linux keeps 15 bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

_PR_SET_NAME = 15
_libc: ctypes.CDLL | None = None


def name_this_thread() -> None:
    """Copy ``threading.current_thread().name`` to the OS thread; silently a no-op where
    ``prctl`` is missing."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        name = threading.current_thread().name.encode()[:15]
        _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
    except (OSError, AttributeError):
        pass
