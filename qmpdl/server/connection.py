"""One client on one monitor: asyncio's Protocol around a :class:`MonitorSession`."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from qmpdl.jsontypes import JsonObject
from qmpdl.qmp.session import MonitorSession
from qmpdl.server import hangup

if TYPE_CHECKING:
    from qmpdl.server.dispatcher import Dispatcher

log = logging.getLogger(__name__)

#: Replies waiting in the transport beyond this stop the reading of requests until
#: they drain below :data:`OUTPUT_LOW_WATER` (a client that does not read its replies
#: is not read either; QEMU buffers them without limit).
OUTPUT_HIGH_WATER = 4 << 20
OUTPUT_LOW_WATER = 1 << 20


class MonitorConnection(asyncio.Protocol):
    """Feeds the session from the socket, writes its replies and events.

    Reading is paused while the session is suspended (QEMU stops reading then), so a
    client that floods requests is held back by the kernel's socket buffer; and while
    more than :data:`OUTPUT_HIGH_WATER` bytes of replies wait to be sent, so what a
    client that does not read costs stays bounded.
    """

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        make_session: Callable[[], MonitorSession],
        on_open: Callable[[MonitorConnection], None],
        on_close: Callable[[MonitorConnection], None],
        name: str,
        current_client: Callable[[], MonitorConnection | None] | None = None,
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
        self._writing_paused = False
        #: the client connected to this monitor now (the endpoint knows; without one,
        #: this connection)
        self.current_client = current_client or (lambda: self)
        self._unsubscribe: Callable[[], None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self.closed = asyncio.Event()

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(OUTPUT_HIGH_WATER, OUTPUT_LOW_WATER)
        transport.pause_reading()
        self._reading_paused = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # a client that hangs up is dropped at once, even mid-command (as QEMU)
            self._unwatch = hangup.watch(sock.fileno(), transport.abort)
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

    @property
    def serving(self) -> bool:
        """Greeted, and not gone."""
        return self._active

    def data_received(self, data: bytes) -> None:
        if not self._active:
            return
        self.session.receive_data(data)
        self.pump()

    def eof_received(self) -> bool | None:
        return False

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
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
        """Parse what the session will read now; run OOB requests; wake the dispatcher.

        Nothing more is parsed while replies are backed up (see :meth:`pause_writing`).
        """
        oob = [] if self._writing_paused else self.session.pump()
        for request in oob:
            self.dispatcher.run_oob(self, request)
        if self.session.has_in_band:
            self.dispatcher.submit(self)
        self._update_reading()

    def _update_reading(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        hold = self.session.suspended or self._writing_paused
        if hold and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True
        elif not hold and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, message: JsonObject) -> None:
        self.write(self.session.encode(message))

    def reply(self, message: JsonObject) -> None:
        """Send the reply to a request of this client's.

        QEMU writes replies to the monitor, not to a connection: the reply of a command
        that was still running when its client left goes to the client connected to the
        monitor by the time it completes (after that client's greeting), or nowhere.
        """
        target = self if self._active else self.current_client()
        if target is not None and target.serving:
            target.send(message)

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
