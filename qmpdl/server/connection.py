"""One client on one monitor: asyncio's Protocol around a :class:`MonitorSession`."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from qmpdl.jsontypes import JsonObject
from qmpdl.qmp.session import MonitorSession

if TYPE_CHECKING:
    from qmpdl.server.dispatcher import Dispatcher

log = logging.getLogger(__name__)


class MonitorConnection(asyncio.Protocol):
    """Feeds the session from the socket, writes its replies and events.

    Reading is paused while the session is suspended (QEMU stops reading then), so a
    client that floods requests is held back by the kernel's socket buffer.
    """

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        make_session: Callable[[], MonitorSession],
        on_open: Callable[[MonitorConnection], None],
        on_close: Callable[[MonitorConnection], None],
        name: str,
    ) -> None:
        self.dispatcher = dispatcher
        self._make_session = make_session
        self._on_open = on_open
        self._on_close = on_close
        self.name = name
        self.session = make_session()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._active = False
        self._reading_paused = False
        self._unsubscribe: Callable[[], None] | None = None
        self.closed = asyncio.Event()

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()
        self._reading_paused = True
        self._on_open(self)

    def activate(self) -> None:
        """This client now owns the monitor: greet it and start reading."""
        if self.transport is None or self.transport.is_closing():
            return
        self._active = True
        self.session = self._make_session()
        self._unsubscribe = self.dispatcher.machine.events.subscribe(self._event_from_any_thread)
        self.dispatcher.add(self)
        self.write(self.session.greeting_bytes())
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if not self._active:
            return
        self.session.receive_data(data)
        self.pump()

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._active = False
        self.session.reset()
        self.dispatcher.remove(self)
        self.closed.set()
        self._on_close(self)

    # ------------------------------------------------------------------ protocol

    def pump(self) -> None:
        """Parse what the session will read now; run OOB requests; wake the dispatcher."""
        oob = self.session.pump()
        for request in oob:
            self.dispatcher.run_oob(self, request)
        if self.session.has_in_band:
            self.dispatcher.submit(self)
        self._update_reading()

    def _update_reading(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.session.suspended and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True
        elif not self.session.suspended and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, message: JsonObject) -> None:
        self.write(self.session.encode(message))

    # ------------------------------------------------------------------ events

    def _event_from_any_thread(self, event: JsonObject) -> None:
        if threading.get_ident() == self._loop_thread:
            self._send_event(event)
        else:
            self.loop.call_soon_threadsafe(self._send_event, event)

    def _send_event(self, event: JsonObject) -> None:
        if self._active and self.session.wants_event():
            self.send(event)

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
