"""A raw QMP client: send exact bytes, receive exact lines.

Used by tests and tools that compare qmpdl with real QEMU byte for byte.  It does no
JSON processing at all: what QEMU (or qmpdl) sends is returned as ``bytes`` lines,
each still ending in ``\\r\\n``.
"""

from __future__ import annotations

import socket
import time

from qmpdl.closing import Closing


class RawQMP(Closing):
    """A blocking socket to a QMP server with line-level reads and a deadline on each."""

    def __init__(self, address: str | tuple[str, int], timeout: float | None = 60.0) -> None:
        """``timeout``: the default deadline of each read; ``None`` reads block without
        one (no per-read poll, for benchmarks that time the server, not the client)."""
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        deadline = time.monotonic() + (10.0 if timeout is None else timeout)
        while True:
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(address)
                break
            except (ConnectionRefusedError, FileNotFoundError, BlockingIOError):
                # The socket file can exist a moment before its server listens, and a
                # monitor's queue of waiting clients (two, as QEMU's) can be full.
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.timeout = timeout
        self._buf = b""

    @classmethod
    def adopt(cls, sock: socket.socket, timeout: float | None = 10.0) -> RawQMP:
        """A client on an already connected socket (made blocking, with ``timeout``)."""
        conn = cls.__new__(cls)
        sock.setblocking(True)
        sock.settimeout(timeout)
        conn.sock, conn.timeout, conn._buf = sock, timeout, b""
        return conn

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self, timeout: float | None = None) -> bytes:
        """The next line, including its line end; raises ``TimeoutError`` after ``timeout``."""
        if timeout is None and self.timeout is None:
            return self._read_line_blocking()
        limit = timeout if timeout is not None else self.timeout
        assert limit is not None
        deadline = time.monotonic() + limit
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete line within the deadline; have {self._buf!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except ConnectionResetError as err:
                # A server that exits with input still unread resets the connection.
                raise EOFError(f"connection reset; pending {self._buf!r}") from err
            if not chunk:
                raise EOFError(f"connection closed; pending {self._buf!r}")
            self._buf += chunk
        if self.timeout is None:
            self.sock.settimeout(None)  # back to blocking reads
        return self._take_line()

    def _read_line_blocking(self) -> bytes:
        while b"\n" not in self._buf:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError as err:
                raise EOFError(f"connection reset; pending {self._buf!r}") from err
            if not chunk:
                raise EOFError(f"connection closed; pending {self._buf!r}")
            self._buf += chunk
        return self._take_line()

    def _take_line(self) -> bytes:
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"

    def read_lines(self, count: int, timeout: float | None = None) -> list[bytes]:
        return [self.read_line(timeout) for _ in range(count)]

    def read_available(self, quiet: float = 0.2) -> list[bytes]:
        """Every line that arrives until the connection is quiet for ``quiet`` seconds
        (or closed)."""
        lines: list[bytes] = []
        while True:
            try:
                lines.append(self.read_line(quiet))
            except (TimeoutError, EOFError):
                return lines

    def reply(self, timeout: float | None = None) -> bytes:
        """The next line that is not an event."""
        while True:
            line = self.read_line(timeout)
            if not line.startswith(b'{"timestamp"'):
                return line

    def command(self, data: bytes, timeout: float | None = None) -> bytes:
        """Send ``data`` and return the next line that is not an event."""
        self.send(data)
        return self.reply(timeout)

    def negotiate(self) -> bytes:
        """Read the greeting, send ``qmp_capabilities``; returns the greeting line."""
        greeting = self.read_line()
        reply = self.command(b'{"execute": "qmp_capabilities"}')
        if reply != b'{"return": {}}\r\n':
            raise RuntimeError(f"negotiation failed: {reply!r}")
        return greeting
