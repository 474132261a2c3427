"""The in-band dispatcher: one request at a time across all monitors, round-robin.

Like QEMU's ``monitor_qmp_dispatcher_co``: it takes the oldest request of the next
monitor that has one (a monitor that was just served goes to the back of the line),
runs it to completion, sends the reply, and lets that monitor read again.  Out-of-band
requests bypass it (:meth:`Dispatcher.run_oob`).

When the dispatcher is idle and no other monitor waits, a request for a command that
does not block is answered at once, in the callback that parsed it
(:meth:`Dispatcher.submit`): the order of everything a client can see is the same as
through the dispatcher task, and a round trip costs one pass of the event loop instead
of two (plus a pause and a resume of reading).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from qmpdl.commands.executor import CommandExecutor
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qmp.dispatch import dispatch, dispatch_now
from qmpdl.qmp.session import InBandRequest, OutOfBandRequest
from qmpdl.system.machine import Machine

if TYPE_CHECKING:
    from qmpdl.server.connection import MonitorConnection

log = logging.getLogger(__name__)

#: How long stopping waits for the command in flight (none blocks for more than ~1 s).
STOP_TIMEOUT = 10.0


class Dispatcher:
    """Serialises in-band commands of every connected monitor."""

    def __init__(
        self,
        machine: Machine,
        executor: CommandExecutor,
        on_shutdown: Callable[[], None],
        *,
        on_reply: Callable[[object, JsonObject], None] | None = None,
    ) -> None:
        self.machine = machine
        self.executor = executor
        self._on_shutdown = on_shutdown
        self._connections: list[MonitorConnection] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: the dispatcher task waits for work (nothing is being dispatched)
        self._idle = False
        #: a request is being answered inline (see :meth:`submit`)
        self._inline = False
        #: the task is answering a request (bottom halves wait for its reply)
        self._busy = False
        #: bottom halves that came while a request was being answered
        self._pending_bh: list[Callable[[], None]] = []
        #: called with each request and its response before it is sent (``--metrics``
        #: counts them: a client that has its reply finds it counted)
        self.on_reply = on_reply

    def add(self, connection: MonitorConnection) -> None:
        if connection not in self._connections:
            self._connections.append(connection)

    def remove(self, connection: MonitorConnection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)

    def wake(self) -> None:
        self._wakeup.set()

    def submit(self, connection: MonitorConnection) -> None:
        """``connection`` has in-band requests queued: answer the first one here and
        now when nothing else could go before it, else leave it to the task."""
        session = connection.session
        request = session.peek_in_band()
        if (
            request is None
            or not self._idle
            or self._inline
            or self._stopping
            or self._wakeup.is_set()
            or self._blocks(request)
            or any(c.session.has_in_band for c in self._connections if c is not connection)
        ):
            self.wake()
            return
        self._inline = True
        try:
            popped = session.pop_in_band()
            assert popped is request
            try:
                response = self._dispatch_now(connection, _value(request))
            except Exception:
                response = _internal_error("command failed unexpectedly")
            self._finish(connection, request, response)
        finally:
            self._inline = False
        if session.has_in_band:
            self.wake()

    def _blocks(self, request: InBandRequest) -> bool:
        value = request.value
        if request.error is not None or not isinstance(value, dict):
            return False
        name = value.get("execute")
        return isinstance(name, str) and self.executor.blocks(name)

    def _finish(
        self, connection: MonitorConnection, request: InBandRequest, response: JsonObject
    ) -> bool:
        """Send the reply and let the monitor read again; True when the command asked
        the machine to shut down (then nothing more is dispatched)."""
        if self.on_reply is not None:
            self.on_reply(request.value, response)
        connection.reply(response)
        connection.session.in_band_done(request)
        self._busy = False
        while self._pending_bh:
            self._run_bh(self._pending_bh.pop(0))
        if self.machine.shutdown_reason is not None:
            self._stopping = True
            self._wakeup.set()
            self._on_shutdown()
            return True
        connection.pump()
        return False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="qmp-dispatcher")

        def hand_over(work: Callable[[], None]) -> None:
            loop.call_soon_threadsafe(self._bottom_half, work)

        self.machine.bottom_halves.attach(hand_over)

    def _bottom_half(self, work: Callable[[], None]) -> None:
        """A bottom half in the event loop: now, or after the reply being worked on."""
        if self._busy:
            self._pending_bh.append(work)
        else:
            self._run_bh(work)

    def _run_bh(self, work: Callable[[], None]) -> None:
        try:
            with self.machine.bql:
                work()
        except Exception:  # a bug in a bottom half must not take the server down
            log.exception("bottom half failed unexpectedly")

    async def stop(self) -> None:
        """Take no more requests.  A command already running finishes first and its
        reply still goes out, as in QEMU, whose main loop only sees the shutdown
        request once the command returned (a client waiting for it gets its answer)."""
        self._stopping = True
        self._wakeup.set()
        self.machine.bottom_halves.attach(None)
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT)
        except TimeoutError:
            log.error("the command in flight did not finish within %s s", STOP_TIMEOUT)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _next(self) -> tuple[MonitorConnection, InBandRequest] | None:
        for i, connection in enumerate(self._connections):
            request = connection.session.pop_in_band()
            if request is not None:
                self._connections.append(self._connections.pop(i))
                # Popping a full OOB queue lets the monitor read again at once.
                connection.pump()
                return connection, request
        return None

    async def _run(self) -> None:
        while not self._stopping:
            item = self._next()
            if item is None:
                self._wakeup.clear()
                self._idle = True
                try:
                    await self._wakeup.wait()
                finally:
                    self._idle = False
                continue
            connection, request = item
            self._busy = True
            try:
                response = await self._dispatch(connection, _value(request))
            except Exception:
                response = _internal_error("command failed unexpectedly")
            if self._finish(connection, request, response):
                return

    async def _dispatch(self, connection: MonitorConnection, request: object) -> JsonObject:
        session = connection.session

        async def run(command: str, arguments: JsonObject) -> JsonValue:
            return await self.executor.call(command, arguments, session)

        negotiating = not session.negotiated
        return await dispatch(
            request,  # type: ignore[arg-type]
            commands=self.executor.command_set(negotiating=negotiating),
            negotiating=negotiating,
            oob_enabled=session.oob_enabled,
            run=run,
        )

    def _dispatch_now(
        self, connection: MonitorConnection, request: object, *, out_of_band: bool = False
    ) -> JsonObject:
        """:meth:`_dispatch` for a command that does not block, without the task."""
        session = connection.session

        def run(command: str, arguments: JsonObject) -> JsonValue:
            return self.executor.call_sync(command, arguments, session, out_of_band=out_of_band)

        negotiating = not session.negotiated
        return dispatch_now(
            request,  # type: ignore[arg-type]
            commands=self.executor.command_set(negotiating=negotiating),
            negotiating=negotiating,
            oob_enabled=session.oob_enabled,
            run=run,
        )

    def run_oob(self, connection: MonitorConnection, request: OutOfBandRequest) -> None:
        """Answer an ``exec-oob`` request right away, before anything parsed after it
        (QEMU runs it in the I/O thread as soon as it is parsed; it may overtake queued
        in-band requests, and without OOB its error comes out in input order)."""
        try:
            # Out-of-band commands never block (checked at start-up): run them here.
            response = self._dispatch_now(connection, request.value, out_of_band=True)
        except Exception:
            response = _internal_error("out-of-band command failed unexpectedly")
        if self.on_reply is not None:
            self.on_reply(request.value, response)
        connection.send(response)


def _value(request: InBandRequest) -> object:
    """What a queued request is to the dispatch: its parse error, or its value."""
    return request.error if request.error is not None else request.value


def _internal_error(message: str) -> JsonObject:
    """A bug in a handler must not take the monitor down: log it (with the traceback of
    the exception being handled) and answer as QEMU would to a failed command."""
    log.exception(message)
    return {"error": {"class": "GenericError", "desc": "internal error"}}
