"""The incoming migration: listen (or open the stream), load it into the backend, resume
the guest.

As QEMU's destination: runstate ``inmigrate`` until the stream is loaded; status
``active`` while loading, ``completed`` once the device state is in (then the vCPUs
run, ``RESUME``, or the run state the source had).  While listening, query-migrate
shows the addresses listened on.  A stream that fails to load (a damaged pass, a dropped
connection, a machine that does not fit) ends in ``failed`` and - as QEMU - the process
exits with status 1 after printing why.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from typing import TYPE_CHECKING

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.migration.host import IncomingHost
from qmpdl.migration.stream import End, Header, Pages, PassEnd, State, StreamError, StreamReader
from qmpdl.migration.uri import Channel, MigrationAddress, listen, open_incoming
from qmpdl.threadname import name_this_thread

if TYPE_CHECKING:
    from qmpdl.backend.base import VcpuBackend

log = logging.getLogger("qmpdl")


class IncomingMigration:
    """One incoming migration: listening sockets (or a command / file), one stream."""

    def __init__(
        self,
        host: IncomingHost,
        backend: VcpuBackend,
        address: MigrationAddress,
        *,
        qemu_open_texts: bool = False,
    ) -> None:
        self.host = host
        self.backend = backend
        self.address = address
        #: 9.1+'s texts for a file that cannot be opened
        self.qemu_open_texts = qemu_open_texts
        self.listeners: list[socket.socket] = []
        self.channel: Channel | None = None
        self.passes = 0
        #: the run state the source had (QEMU's global state), once received
        self.source_runstate: str | None = None
        self.thread = threading.Thread(target=self._bh_run, name="migration-incoming", daemon=True)
        self._stop = threading.Event()
        self._addresses: list[JsonObject] = []

    def start(self) -> None:
        """Listen (or open the stream) now - errors raise OSError with QEMU's text - then
        accept and load in a thread."""
        self.listeners = listen(self.address)
        if not self.listeners:
            self.channel = open_incoming(self.address, qemu_open_texts=self.qemu_open_texts)
        self._addresses = [self._socket_address(s) for s in self.listeners]
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self._close_listeners()
        if self.channel is not None:
            self.channel.shutdown()

    def _close_listeners(self) -> None:
        for sock in self.listeners:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.listeners = []

    def socket_addresses(self) -> list[JsonValue]:
        """What query-migrate shows while the transport is up: every listening socket,
        the last opened first (QEMU prepends them to its list)."""
        return list(reversed(self._addresses))

    def _socket_address(self, sock: socket.socket) -> JsonObject:
        if self.address.transport == "unix":
            return {"type": "unix", "path": self.address.path}
        host, port = sock.getsockname()[:2]
        flag = "ipv6" if sock.family == socket.AF_INET6 else "ipv4"
        return {"type": "inet", "host": str(host), "port": str(port), flag: True}

    def _accept(self) -> Channel | None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select(self.listeners, [], [], 0.2)
            except (OSError, ValueError):
                return None
            for sock in ready:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return None
                return Channel(conn)
        return None

    def _bh_run(self) -> None:
        name_this_thread()
        m = self.host
        if self.channel is None:
            channel = self._accept()
            if channel is None:
                return  # closed before anyone connected
            self.channel = channel
        channel_filter = getattr(m, "channel_filter", None)  # a scenario's faults
        if channel_filter is not None:
            self.channel = channel_filter(self.channel, "incoming")
        m.incoming_connected()
        try:
            self._load()
        except (StreamError, ValueError, OSError) as e:
            m.incoming_failed(str(e))
            return
        finally:
            self._close_listeners()
        m.incoming_completed(self.source_runstate)

    def _load(self) -> None:
        assert self.channel is not None
        reader = StreamReader()
        while not reader.ended:
            data = self.channel.recv(1 << 20)
            if not data:
                raise StreamError("the source closed the connection before the end")
            reader.feed(data)
            for record in reader.records():
                if isinstance(record, Header):
                    self._check_header(record)
                elif isinstance(record, Pages):
                    self.backend.write_pages(record.pages.astype("int64"), record.zero, record.data)
                elif isinstance(record, PassEnd):
                    self.passes += 1
                elif isinstance(record, State):
                    runstate = record.state.get("runstate")
                    self.source_runstate = runstate if isinstance(runstate, str) else None
                    self.backend.import_state(record.state)
                elif isinstance(record, End):
                    break
        if self.channel.duplex:
            self.channel.sendall(b"\0")

    def _check_header(self, header: Header) -> None:
        mine = self.host.machine_description()
        if header.machine != mine:
            raise ValueError(f"the source machine {header.machine} does not match this one {mine}")

    def reply_error(self, message: str) -> None:
        """Tell the source why loading failed (best effort)."""
        if self.channel is None or not self.channel.duplex:
            return
        text = message.encode()
        with contextlib.suppress(OSError):
            self.channel.sendall(b"\1" + len(text).to_bytes(4, "little") + text)
