"""Character devices at the I/O edge: sockets (listening, connecting out, or inherited as
``fd=N``), stdio, a pty, null and files, each feeding one frontend - a QMP monitor, a
human monitor or a serial port.

A socket chardev serves one client at a time, as QEMU's does: it listens with QEMU's
backlog and accepts the next client only when the current one leaves.
Each device keeps its ``query-chardev`` state (:mod:`qmpdl.vm.chardevs`) up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any, Protocol

from qmpdl import report
from qmpdl.config import Chardev
from qmpdl.errors import QmpdlError
from qmpdl.server.listener import LISTEN_BACKLOG, Listener, listening_tcp_socket
from qmpdl.vm.chardevs import ChardevState, socket_filename

log = logging.getLogger(__name__)


class ChardevError(QmpdlError):
    """A device cannot be opened: ``location`` is its option, the text QEMU's."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


class Connection(Protocol):
    """What a frontend makes for each client: an asyncio protocol that is greeted
    (:meth:`activate`) when it gets the device, and says when it is gone."""

    closed: asyncio.Event
    #: the client's transport, once connected
    transport: asyncio.Transport | None

    def activate(self) -> None: ...

    def close(self) -> None: ...


#: Makes the frontend's protocol for a new client: (connection opened, connection closed,
#: the client connected now - the reply of a command that outlived its client goes there).
ConnectionFactory = Callable[
    [Callable[[Any], None], Callable[[Any], None], Callable[[], Any]], asyncio.BaseProtocol
]


class FdTransport(asyncio.Transport):
    """A transport over a pair of file descriptors (stdio, a pty master): reads through
    the loop's reader callback, writes without blocking, dropping what a reader that is
    not there (a pty nobody opened) will not take beyond ``limit`` bytes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.Protocol,
        read_fd: int | None,
        write_fd: int,
        *,
        limit: int = 1 << 16,
    ) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._buffer = bytearray()
        self._limit = limit
        self._reading = False
        self._closing = False
        for fd in (read_fd, write_fd):
            if fd is not None:
                os.set_blocking(fd, False)
        loop.call_soon(protocol.connection_made, self)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return self._reading

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """The monitor's flow control does not apply: what a reader will not take is
        dropped beyond ``limit`` (as a pty nobody opened)."""

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def pause_reading(self) -> None:
        if self._reading and self._read_fd is not None:
            self._loop.remove_reader(self._read_fd)
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and self._read_fd is not None and not self._closing:
            try:
                self._loop.add_reader(self._read_fd, self._on_readable)
            except PermissionError:
                # a file or /dev/null as stdin: nothing will ever come (QEMU reads EOF)
                self._read_fd = None
                return
            self._reading = True

    def _on_readable(self) -> None:
        assert self._read_fd is not None
        try:
            data = os.read(self._read_fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:  # a pty whose other side is not open
                return
            data = b""
        if not data:
            self.pause_reading()
            if self._read_fd is not None and self._read_fd != self._write_fd:
                self._read_fd = None  # EOF on stdin: output goes on
            return
        self._protocol.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        if not self._buffer:
            try:
                written = os.write(self._write_fd, data)
            except BlockingIOError:
                written = 0
            except OSError:
                return
            data = bytes(data)[written:]
            if not data:
                return
            self._loop.add_writer(self._write_fd, self._on_writable)
        self._buffer += data
        if len(self._buffer) > self._limit:
            del self._buffer[: len(self._buffer) - self._limit]

    def _on_writable(self) -> None:
        try:
            written = os.write(self._write_fd, self._buffer)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._buffer)
        del self._buffer[:written]
        if not self._buffer:
            self._loop.remove_writer(self._write_fd)

    def close(self) -> None:
        if self._closing:
            return
        self.pause_reading()
        if self._buffer:
            self._loop.remove_writer(self._write_fd)
        self._closing = True
        self._loop.call_soon(self._protocol.connection_lost, None)


class FileTransport(asyncio.Transport):
    """Output to a file (``-chardev file``): written as it comes, input never."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, fd: int
    ) -> None:
        super().__init__()
        self._fd = fd
        self._protocol = protocol
        self._closing = False
        loop.call_soon(protocol.connection_made, self)
        self._loop = loop

    def is_closing(self) -> bool:
        return self._closing

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Written at once: nothing is ever buffered."""

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing:
            with contextlib.suppress(OSError):
                os.write(self._fd, data)

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            os.close(self._fd)
            self._loop.call_soon(self._protocol.connection_lost, None)


class NullTransport(FileTransport):
    """``null``: takes everything, gives nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol) -> None:
        super().__init__(loop, protocol, os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass


def _inherited_socket(chardev: Chardev) -> socket.socket:
    assert chardev.fd is not None
    fd = chardev.fd
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise OSError
    except OSError:
        raise ChardevError(chardev.option, f"File descriptor '{fd}' is not a socket") from None
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    return sock


def _listening(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))


def listening_unix_socket(path: str) -> socket.socket:
    """A unix socket already listening when ``path`` appears: bound under a temporary
    name, then renamed into place, so a client that connects as soon as it sees the
    path is never refused (bind-then-listen leaves a window in which it would be)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = f"{path}.{os.getpid()}.tmp"
    if len(os.fsencode(staging)) > 107:  # no room in sun_path for the staging name
        staging = path
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        sock.bind(staging)
        sock.listen(LISTEN_BACKLOG)
        if staging != path:
            os.rename(staging, path)
    except OSError as e:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        # report the path the user gave, as a plain bind would
        raise OSError(e.errno, e.strerror, path) from None
    return sock


class ChardevEndpoint:
    """One chardev: its backend's I/O and the clients of its frontend.  A listening
    socket accepts as QEMU's does: one client at a time, accepted only while the
    frontend has none (see :mod:`qmpdl.server.listener`)."""

    def __init__(self, chardev: Chardev, state: ChardevState, factory: ConnectionFactory) -> None:
        self.chardev = chardev
        self.state = state
        self.factory = factory
        self.listener: Listener | None = None
        self.active: Any = None
        #: the client that came before the frontend served (activated by start_serving)
        self._early: Any = None
        #: accepted sockets whose connection is being set up
        self._opening: set[asyncio.Task[tuple[asyncio.Transport, asyncio.BaseProtocol]]] = set()
        self.connections: list[Any] = []
        self.first_client = asyncio.Event()
        self._accepting = False
        self._listening = False
        self._family = socket.AF_UNIX
        self._local: object = ""
        self._unlink: str | None = None
        self._pty_slave: int | None = None
        #: the transport of a device that is always "connected" (stdio, pty, file, null)
        self._fixed: asyncio.Transport | None = None

    # ------------------------------------------------------------------ clients

    def _factory(self) -> asyncio.BaseProtocol:
        protocol = self.factory(self._arrived, self._closed, self._current_client)
        self.connections.append(protocol)
        return protocol

    def _current_client(self) -> Any:
        return self.active

    def _accepted(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(self._factory, sock))
        self._opening.add(task)
        task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[tuple[asyncio.Transport, asyncio.BaseProtocol]]) -> None:
        self._opening.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("client connection failed: %s", task.exception())
        # (a client that left at once may already be gone: then take the next one)
        self._listen()

    def _arrived(self, connection: Any) -> None:
        if connection.closed.is_set():
            return
        self.first_client.set()
        self.active = connection
        self._update_filename(connection)
        if self._accepting:
            connection.activate()
        else:
            self._early = connection

    def _closed(self, connection: Any) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
        if self._early is connection:
            self._early = None
        if self.active is connection:
            self.active = None
            if self.chardev.backend == "socket":
                self.state.filename = self._disconnected()
            self._listen()

    def _listen(self) -> None:
        """Accept the next client if the frontend has none: once serving, or before that
        for ``wait=on`` until the first client came (QEMU waits for it at start-up)."""
        if self.listener is None or self.active is not None or self._opening:
            return
        if self._accepting or (self.chardev.wait and not self.first_client.is_set()):
            self.listener.enable()

    def start_serving(self) -> None:
        """Greet clients from now on (after the machine exists)."""
        self._accepting = True
        early, self._early = self._early, None
        if early is not None and early is self.active and not early.closed.is_set():
            early.activate()
        self._listen()

    # ------------------------------------------------------------------ filename

    def _disconnected(self) -> str:
        return socket_filename(
            self._family, self._local, None, listening=self._listening, connected=False
        )

    def _update_filename(self, connection: Connection) -> None:
        if self.chardev.backend != "socket":
            return
        transport = connection.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return
        try:
            local, peer = sock.getsockname(), sock.getpeername()
        except OSError:
            return
        if self._listening and sock.family == socket.AF_UNIX:
            # a listener of ours was bound under a staging name (listening_unix_socket)
            local = self._local
        self.state.filename = socket_filename(
            sock.family, local, peer, listening=self._listening, connected=True
        )

    # ------------------------------------------------------------------ opening

    async def open(self) -> None:
        backend = self.chardev.backend
        if backend == "socket":
            await self._open_socket()
        elif backend == "stdio":
            self._fixed = self._fixed_transport(0, 1)
        elif backend == "pty":
            master, slave = os.openpty()
            import tty  # only for a pty

            tty.setraw(slave)
            self._pty_slave = slave
            name = os.ttyname(slave)
            self.state.filename = f"pty:{name}"
            # QEMU says so on stdout (the monitor's printf with no monitor)
            sys.stdout.write(f"char device redirected to {name} (label {self.chardev.id})\n")
            sys.stdout.flush()
            self._fixed = self._fixed_transport(master, master)
        elif backend == "file":
            assert self.chardev.path is not None
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
            flags |= os.O_APPEND if self.chardev.append else os.O_TRUNC
            try:
                fd = os.open(self.chardev.path, flags, 0o666)
            except OSError as e:
                raise ChardevError(
                    self.chardev.option, f"Could not open '{self.chardev.path}': {e.strerror}"
                ) from None
            loop = asyncio.get_running_loop()
            self._fixed = FileTransport(loop, self._factory(), fd)  # type: ignore[arg-type]
        else:
            loop = asyncio.get_running_loop()
            self._fixed = NullTransport(loop, self._factory())  # type: ignore[arg-type]

    def _fixed_transport(self, read_fd: int, write_fd: int) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        protocol = self._factory()
        return FdTransport(loop, protocol, read_fd, write_fd)  # type: ignore[arg-type]

    async def _open_socket(self) -> None:
        loop = asyncio.get_running_loop()
        c = self.chardev
        if c.fd is not None:
            sock = _inherited_socket(c)
            self._family = sock.family
            if _listening(sock):
                self._listening = True
                self._local = sock.getsockname()
                self.state.filename = self._disconnected()
                self._serve(sock)
            else:
                self._local = sock.getsockname()
                self.state.filename = self._disconnected()
                await loop.connect_accepted_socket(self._factory, sock)
            return
        try:
            if c.server:
                self._listening = True
                if c.path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(c.path)
                    sock = listening_unix_socket(c.path)
                    self._unlink = os.path.abspath(c.path)
                    self._local = c.path
                    self.state.filename = self._disconnected()
                    self._serve(sock)
                else:
                    assert c.port is not None
                    sock = listening_tcp_socket(c.host, c.port)
                    self._family = sock.family
                    self._local = sock.getsockname()
                    self.state.filename = self._disconnected()
                    self._serve(sock)
            elif c.path is not None:
                self._local = ""
                self.state.filename = self._disconnected()
                await loop.create_unix_connection(self._factory, c.path)
            else:
                assert c.host is not None and c.port is not None
                self._family = socket.AF_INET
                await loop.create_connection(self._factory, c.host, c.port)
        except OSError as e:
            strerror = e.strerror or str(e)
            if c.server and c.path is not None:
                text = f"Failed to bind socket to {c.path}: {strerror}"
            elif c.server:
                text = f"Failed to bind socket: {strerror}"
            elif c.path is not None:
                text = f"Failed to connect to '{c.path}': {strerror}"
            else:
                text = f"Failed to connect to '{c.host}:{c.port}': {strerror}"
            raise ChardevError(c.option, text) from None

    def _serve(self, sock: socket.socket) -> None:
        self.listener = Listener(sock, self._accepted)
        self._listen()

    async def wait_connected(self) -> None:
        """``server=on,wait=on``: QEMU's start-up blocks until the first client."""
        report.info(f"QEMU waiting for connection on: {self.state.filename}", self.chardev.option)
        await self.first_client.wait()

    # ------------------------------------------------------------------ output

    def write(self, data: bytes) -> None:
        """Output of the frontend (a serial port's guest output); dropped while no
        client is connected, as QEMU's socket chardev does."""
        if self._fixed is not None:
            self._fixed.write(data)
            return
        transport = self.active.transport if self.active is not None else None
        if transport is not None and not transport.is_closing():
            transport.write(data)

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        self._accepting = False
        if self.listener is not None:
            self.listener.close()
        for task in list(self._opening):
            task.cancel()
        for connection in list(self.connections):
            connection.close()
        if self._fixed is not None:
            self._fixed.close()
        for connection in list(self.connections):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.closed.wait(), 2)
        if self._unlink is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unlink)
        if self._pty_slave is not None:
            os.close(self._pty_slave)
            self._pty_slave = None
