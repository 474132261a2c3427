"""Messages on stderr as QEMU's ``error_report`` prints them.

``[TIMESTAMP ][GUEST ]PROG: [LOCATION: ][warning: ]TEXT``: the UTC timestamp with
microseconds when ``-msg timestamp=on``, the guest's name when ``-msg guest-name=on``
and ``-name`` gave one, the location (``-chardev ...``) when the message is about an
option.  Continuation lines of a multi-line text carry no prefix, as in QEMU.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TextIO

PROG = "qmpdl"


class _Settings:
    timestamp = False
    guest_name: str | None = None
    with_guest_name = False
    stream: TextIO | None = None


settings = _Settings()


def configure(
    *, timestamp: bool | None = None, guest_name: str | None = None, with_guest: bool | None = None
) -> None:
    """``-msg timestamp=,guest-name=`` and ``-name guest=``."""
    if timestamp is not None:
        settings.timestamp = timestamp
    if guest_name is not None:
        settings.guest_name = guest_name
    if with_guest is not None:
        settings.with_guest_name = with_guest


def timestamp(now: float | None = None) -> str:
    """``2026-12-02T17:43:47.772700Z`` (QEMU's ``real_time_iso8601``)."""
    now = time.time() if now is None else now
    micros = int(now * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


def prefix(location: str | None = None, kind: str = "") -> str:
    text = ""
    if settings.timestamp:
        text += timestamp() + " "
    if settings.with_guest_name and settings.guest_name is not None:
        text += settings.guest_name + " "
    text += f"{PROG}: "
    if location:
        text += f"{location}: "
    return text + kind


def _write(text: str) -> None:
    stream = settings.stream or sys.stderr
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        # stderr is gone (a pipe whose reader died): QEMU, which ignores SIGPIPE, goes on
        # without it; so does qmpdl - what was lost is lost, and what follows (and the
        # interpreter's last flush at exit) goes to /dev/null
        if stream is sys.stderr:
            _discard_stderr()


def _discard_stderr() -> None:
    """Point file descriptor 2 at /dev/null and drop what ``sys.stderr`` still holds."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
    finally:
        os.close(null)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()


def error(text: str, location: str | None = None) -> None:
    """``error_report``."""
    _write(prefix(location) + text)


def warning(text: str, location: str | None = None) -> None:
    """``warn_report``."""
    _write(prefix(location, "warning: ") + text)


def info(text: str, location: str | None = None) -> None:
    """``info_report``."""
    _write(prefix(location, "info: ") + text)
