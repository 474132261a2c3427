"""Notice a client hanging up even while its connection is not being read.

QEMU watches each monitor connection for ``G_IO_HUP`` separately from reading it, so a
client that goes away while its command runs (the monitor is suspended and reads
nothing) is dropped at once: its unread requests are discarded, the next client is
accepted and greeted, and the running command's reply goes to that client.  asyncio
only learns of a hang-up by reading or writing, which a suspended monitor does not do.

:func:`watch` registers a socket with one ``epoll`` instance per event loop, asking for
no events at all: epoll then reports only ``EPOLLHUP`` and ``EPOLLERR``, which is what
``G_IO_HUP`` is (on a unix socket when the peer closed; on TCP once the connection is
reset, not on a mere FIN).  The epoll descriptor itself is watched by the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import weakref
from collections.abc import Callable


class _Watcher:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callable[[], None]] = {}
        loop.add_reader(self._epoll.fileno(), self._ready)

    def add(self, fd: int, callback: Callable[[], None]) -> None:
        self._epoll.register(fd, 0)
        self._callbacks[fd] = callback

    def remove(self, fd: int) -> None:
        if self._callbacks.pop(fd, None) is not None:
            # (already closed: the kernel dropped it with the socket)
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    def _ready(self) -> None:
        for fd, _ in self._epoll.poll(0):
            callback = self._callbacks.get(fd)
            self.remove(fd)
            if callback is not None:
                callback()


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watcher] = (
    weakref.WeakKeyDictionary()
)


def watch(fd: int, on_hangup: Callable[[], None]) -> Callable[[], None]:
    """Call ``on_hangup`` once when the peer of socket ``fd`` hangs up; returns a
    function that cancels the watch (call it before the socket is closed)."""
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop)
    if watcher is None:
        watcher = _watchers[loop] = _Watcher(loop)
    watcher.add(fd, on_hangup)
    return lambda: watcher.remove(fd)
