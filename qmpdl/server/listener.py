"""A monitor's listening socket, accepting as QEMU's socket chardev does.

QEMU listens with a backlog of 1 and accepts only while its monitor has no client: the
next client is accepted when the current one leaves.  Meanwhile the kernel queues at
most two connections (backlog + 1); a further unix ``connect()`` fails at once with
EAGAIN (a blocking one waits), a TCP SYN is dropped and retried.  A server that accepts
everything at once and queues the clients itself is kinder than QEMU: clients that
count on a refusal, or that connect many times, see a different monitor.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

#: QEMU's socket chardev listens with a backlog of 1 (``qio_net_listener_open_sync``).
LISTEN_BACKLOG = 1
#: After EMFILE/ENFILE/ENOBUFS/ENOMEM, wait this long before accepting again.
ACCEPT_RETRY_DELAY = 1.0
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def listening_tcp_socket(host: str | None, port: int) -> socket.socket:
    """A TCP socket listening on the first address ``host`` resolves to that can be
    bound, as QEMU's ``inet_listen_saddr`` does (an empty host: every interface)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
        except OSError as e:
            sock.close()
            error = e
            continue
        return sock
    assert error is not None
    raise error


class Listener:
    """Accepts one connection at a time from ``sock``, and only while enabled.

    ``on_accept`` receives each accepted socket (non-blocking); accepting stops with
    it and resumes when the owner calls :meth:`enable` again.
    """

    def __init__(self, sock: socket.socket, on_accept: Callable[[socket.socket], None]) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._on_accept = on_accept
        self._loop = asyncio.get_running_loop()
        self._enabled = False
        self._retry: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        if not self._enabled and self.sock.fileno() >= 0:
            self._enabled = True
            self._loop.add_reader(self.sock.fileno(), self._accept)

    def disable(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._enabled:
            self._enabled = False
            self._loop.remove_reader(self.sock.fileno())

    def close(self) -> None:
        self.disable()
        self.sock.close()

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as e:
            if e.errno not in _RESOURCE_ERRORS:
                raise
            # Out of descriptors or memory: the pending connection stays queued; try
            # again later instead of spinning on a socket that stays readable.
            log.warning("accept failed: %s; retrying in %s s", e.strerror, ACCEPT_RETRY_DELAY)
            self.disable()
            self._retry = self._loop.call_later(ACCEPT_RETRY_DELAY, self._retry_accept)
            return
        self.disable()
        conn.setblocking(False)
        self._on_accept(conn)

    def _retry_accept(self) -> None:
        self._retry = None
        self.enable()
