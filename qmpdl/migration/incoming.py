"""The incoming migration: listen, load the stream into the backend, resume the guest.

As QEMU's destination: runstate ``inmigrate`` until the stream is loaded; status
``setup`` while listening, ``active`` while loading, ``completed`` once the device state
is in (then the vCPUs run, ``RESUME``).  A stream that fails to load (a damaged pass, a
dropped connection, a machine that does not fit) ends in ``failed`` and - as QEMU - the
process exits with status 1 after printing why.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING

from qmpdl.migration.stream import End, Header, Pages, PassEnd, State, StreamError, StreamReader
from qmpdl.migration.uri import Channel, MigrationAddress, listen

if TYPE_CHECKING:
    from qmpdl.migration.manager import MigrationManager

log = logging.getLogger("qmpdl")


class IncomingMigration:
    """One incoming migration: a listening socket, then one connection."""

    def __init__(self, manager: MigrationManager, address: MigrationAddress) -> None:
        self.manager = manager
        self.backend = manager.machine.backend
        self.address = address
        self.listener: socket.socket | None = None
        self.channel: Channel | None = None
        self.passes = 0
        self.thread = threading.Thread(target=self._run, name="migration-incoming", daemon=True)
        self._stop = threading.Event()

    def start(self) -> None:
        """Listen now (errors raise OSError), accept and load in a thread."""
        self.listener = listen(self.address)
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
        if self.channel is not None:
            self.channel.shutdown()

    def socket_address(self) -> dict[str, str]:
        """What query-migrate shows while listening (QEMU's SocketAddress)."""
        if self.address.transport == "unix":
            return {"path": self.address.path, "type": "unix"}
        assert self.listener is not None
        host, port = self.listener.getsockname()[:2]
        return {
            "port": str(port),
            "ipv6": "true" if ":" in str(host) else "false",
            "host": str(host),
            "type": "inet",
        }

    def _run(self) -> None:
        m = self.manager
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return  # closed before anyone connected
        self.listener.close()
        self.listener = None
        self.channel = Channel(conn)
        m.set_incoming_state("setup", "active")
        try:
            self._load()
        except (StreamError, ValueError, OSError) as e:
            m.incoming_failed(str(e))
            return
        m.incoming_completed()

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
                    self.backend.import_state(record.state)
                elif isinstance(record, End):
                    break
        self.channel.sendall(b"\0")

    def _check_header(self, header: Header) -> None:
        mine = self.manager.machine_description()
        if header.machine != mine:
            raise ValueError(f"the source machine {header.machine} does not match this one {mine}")

    def reply_error(self, message: str) -> None:
        """Tell the source why loading failed (best effort)."""
        if self.channel is None:
            return
        text = message.encode()
        with contextlib.suppress(OSError):
            self.channel.sendall(b"\1" + len(text).to_bytes(4, "little") + text)
