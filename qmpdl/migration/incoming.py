"""The incoming migration: listen (or open the stream), load it into the backend, resume
the guest.

As QEMU's destination: runstate ``inmigrate`` until the stream is loaded; status
``active`` while loading, ``completed`` once the device state is in (then the vCPUs
run, ``RESUME``, or the run state the source had).  While listening, query-migrate
shows the addresses listened on.  A stream that fails to load (a damaged pass, a dropped
connection, a machine that does not fit) ends in ``failed`` and - as QEMU - the process
exits with status 1 after printing why.

On a virtual clock (:mod:`qmpdl.vtime`) the loading thread is a machine thread of that
clock: a reply waits while it loads, not while it waits for the stream (it is *parked*
then).  A source on a virtual clock stamps its stream with its time (SYNC records): the
destination's clock catches up with each stamp, running what falls due meanwhile, so
its events (``MIGRATION``, ``RESUME``) carry the source's times - the guest resumes at
the instant the source's downtime ends - and it answers the stamp once caught up; the
end of such a stream is answered once the guest has started.  A destination on the
host clock ignores the stamps (and answers them).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from qmpdl.clock import Clock, RealClock, catch_up, parked, start_thread
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.migration.host import IncomingHost
from qmpdl.migration.uri import Channel, MigrationAddress, listen, open_incoming
from qmpdl.threadname import name_this_thread

if TYPE_CHECKING:
    from qmpdl.backend.base import VcpuBackend
    from qmpdl.migration.stream import Header

log = logging.getLogger("qmpdl")


class IncomingMigration:
    """One incoming migration: listening sockets (or a command / file), one stream."""

    def __init__(
        self,
        host: IncomingHost,
        backend: VcpuBackend,
        address: MigrationAddress,
        *,
        clock: Clock | None = None,
        qemu_open_texts: bool = False,
        channel_filter: Callable[[Channel], Channel] | None = None,
    ) -> None:
        self.host = host
        self.backend = backend
        self.address = address
        #: 9.1+'s texts for a file that cannot be opened
        self.qemu_open_texts = qemu_open_texts
        self.clock: Clock = clock or RealClock()
        #: a scenario's faults (a refusing destination)
        self._channel_filter = channel_filter
        #: the source stamps the stream with its (virtual) time: END is answered once
        #: the guest has started
        self._synchronous = False
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
        start_thread(self.thread, self.clock)

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
        with parked(self.clock):  # waiting for the source: outside the machine
            return self._accept_parked()

    def _accept_parked(self) -> Channel | None:
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
        # the stream's code (numpy) is loaded now, not when the process starts to
        # listen: a destination is up as fast as any qmpdl
        from qmpdl.migration.stream import StreamError

        if self._channel_filter is not None:
            self.channel = self._channel_filter(self.channel)
        m.incoming_connected()
        try:
            self._load()
        except (StreamError, ValueError, OSError) as e:
            m.incoming_failed(str(e))
            return
        finally:
            self._close_listeners()
        m.incoming_completed(self.source_runstate)
        if self._synchronous:
            self._answer()

    def _answer(self) -> None:
        """Tell the source everything up to here is loaded."""
        assert self.channel is not None
        if self.channel.duplex:
            with contextlib.suppress(OSError):  # (a source that gave up)
                self.channel.sendall(b"\0")

    def _load(self) -> None:
        from qmpdl.migration.stream import (
            End,
            Header,
            Pages,
            PassEnd,
            State,
            StreamError,
            StreamReader,
            Sync,
        )

        assert self.channel is not None
        reader = StreamReader()
        while not reader.ended:
            with parked(self.clock):  # waiting for the source: outside the machine
                data = self.channel.recv(1 << 20)
            if not data:
                raise StreamError("the source closed the connection before the end")
            reader.feed(data)
            for record in reader.records():
                if isinstance(record, Header):
                    self._check_header(record)
                elif isinstance(record, Pages):
                    pages = record.pages.astype("int64")
                    if record.marks is not None:
                        self.backend.write_page_marks(pages, record.zero, record.marks)
                    else:
                        self.backend.write_pages(pages, record.zero, record.data)
                elif isinstance(record, Sync):
                    self._synchronous = True
                    catch_up(self.clock, record.time)
                    self._answer()
                elif isinstance(record, PassEnd):
                    self.passes += 1
                elif isinstance(record, State):
                    runstate = record.state.get("runstate")
                    self.source_runstate = runstate if isinstance(runstate, str) else None
                    self.backend.import_state(record.state)
                elif isinstance(record, End):
                    break
        if self.channel.duplex and not self._synchronous:
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
