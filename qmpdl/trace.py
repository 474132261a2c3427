"""QEMU-style trace events (``-trace PATTERN``, ``-D FILE``).

Names and messages follow QEMU's trace-events for the dirty limit, so traces of qmpdl
and of real QEMU can be read by the same scripts: ``pid@seconds.micros:name message``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import sys
import threading
import time
from typing import TextIO


class Tracer:
    """Writes enabled trace events to a stream."""

    def __init__(self, patterns: list[str] | None = None, out: TextIO | None = None) -> None:
        self.patterns = list(patterns or [])
        self.out = out if out is not None else sys.stderr
        self._lock = threading.Lock()
        self._enabled: dict[str, bool] = {}

    def enabled(self, name: str) -> bool:
        hit = self._enabled.get(name)
        if hit is None:
            hit = any(fnmatch.fnmatchcase(name, p) for p in self.patterns)
            self._enabled[name] = hit
        return hit

    def __call__(self, name: str, message: str) -> None:
        if not self.patterns or not self.enabled(name):
            return
        line = f"{threading.get_native_id() or os.getpid()}@{time.time():.6f}:{name} {message}\n"
        # A line that cannot be written (a full disk, a closed pipe) is lost, as in QEMU,
        # whose log is a stdio stream nobody checks: never the caller's error.
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.out.write(line)
            self.out.flush()


#: The tracer used when none is configured: records nothing.
NULL_TRACER = Tracer()
