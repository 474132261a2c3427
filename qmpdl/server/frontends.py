"""The frontends of character devices other than QMP monitors: the human monitor with
its line editor (:class:`HmpConnection`, around :class:`~qmpdl.hmp.session.HmpSession`)
and a serial port (:class:`SerialConnection`: guest output out, input ignored)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qmpdl.hmp.session import HmpSession

log = logging.getLogger(__name__)

#: Runs one HMP command line for a session: its output (line ends ``\r\n``).
LineRunner = Callable[[str, "HmpSession"], Awaitable[str]]


class _Client(asyncio.Protocol):
    """A chardev client: tells its endpoint when it arrives and leaves."""

    def __init__(self, on_open: Callable[[Any], None], on_close: Callable[[Any], None]) -> None:
        self._on_open = on_open
        self._on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.Event()
        self.active = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()
        self._on_open(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.active = False
        self.closed.set()
        self._on_close(self)

    def eof_received(self) -> bool | None:
        return False

    def write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def activate(self) -> None:
        self.active = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class SerialConnection(_Client):
    """A serial port's end of a chardev: the guest's output goes out through the
    endpoint; what the client types is read and dropped (qmpdl's guests read nothing)."""

    def data_received(self, data: bytes) -> None:
        pass


class HmpConnection(_Client):
    """One client of a human monitor."""

    def __init__(
        self,
        session: HmpSession,
        run: LineRunner,
        on_open: Callable[[Any], None],
        on_close: Callable[[Any], None],
    ) -> None:
        super().__init__(on_open, on_close)
        self.session = session
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def activate(self) -> None:
        self.write(self.session.open())
        super().activate()

    def data_received(self, data: bytes) -> None:
        if not self.active:
            return
        self.session.receive(data)
        self._pump()

    def _pump(self) -> None:
        out, line = self.session.pump()
        self.write(out)
        if line is not None:
            self._task = asyncio.get_running_loop().create_task(self._command(line))

    async def _command(self, line: str) -> None:
        try:
            output = await self._run(line, self.session)
        except Exception:  # a bug in a command must not take the monitor down
            log.exception("HMP command failed unexpectedly")
            output = ""
        if self.closed.is_set():
            return
        self.write(self.session.done(output))
        self._pump()
