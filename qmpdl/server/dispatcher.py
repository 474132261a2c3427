"""The in-band dispatcher: one request at a time across all monitors, round-robin.

Like QEMU's ``monitor_qmp_dispatcher_co``: it takes the oldest request of the next
monitor that has one (a monitor that was just served goes to the back of the line),
runs it to completion, sends the reply, and lets that monitor read again.  Out-of-band
requests bypass it (:meth:`Dispatcher.run_oob`).
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
from qmpdl.vm.machine import Machine

if TYPE_CHECKING:
    from qmpdl.server.connection import MonitorConnection

log = logging.getLogger(__name__)

#: How long stopping waits for the command in flight (none blocks for more than ~1 s).
STOP_TIMEOUT = 10.0


class Dispatcher:
    """Serialises in-band commands of every connected monitor."""

    def __init__(
        self, machine: Machine, executor: CommandExecutor, on_shutdown: Callable[[], None]
    ) -> None:
        self.machine = machine
        self.executor = executor
        self._on_shutdown = on_shutdown
        self._connections: list[MonitorConnection] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def add(self, connection: MonitorConnection) -> None:
        if connection not in self._connections:
            self._connections.append(connection)

    def remove(self, connection: MonitorConnection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="qmp-dispatcher")

    async def stop(self) -> None:
        """Take no more requests.  A command already running finishes first and its
        reply still goes out, as in QEMU, whose main loop only sees the shutdown
        request once the command returned (a client waiting for it gets its answer)."""
        self._stopping = True
        self._wakeup.set()
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
                await self._wakeup.wait()
                continue
            connection, request = item
            try:
                response = await self._dispatch(
                    connection, request.error if request.error is not None else request.value
                )
            except Exception:  # a bug in a handler must not take the monitor down
                log.exception("command failed unexpectedly")
                response = {"error": {"class": "GenericError", "desc": "internal error"}}
            connection.send(response)
            connection.session.in_band_done(request)
            if self.machine.shutdown_reason is not None:
                self._on_shutdown()
                return
            connection.pump()

    async def _dispatch(self, connection: MonitorConnection, request: object) -> JsonObject:
        session = connection.session

        async def run(command: str, arguments: JsonObject) -> JsonValue:
            return await self.executor.call(command, arguments, session)

        return await dispatch(
            request,  # type: ignore[arg-type]
            commands=self.executor.command_set(negotiating=not session.negotiated),
            negotiating=not session.negotiated,
            oob_enabled=session.oob_enabled,
            run=run,
        )

    def run_oob(self, connection: MonitorConnection, request: OutOfBandRequest) -> None:
        """Answer an ``exec-oob`` request right away, before anything parsed after it
        (QEMU runs it in the I/O thread as soon as it is parsed; it may overtake queued
        in-band requests, and without OOB its error comes out in input order)."""
        session = connection.session

        def run(command: str, arguments: JsonObject) -> JsonValue:
            # Out-of-band commands never block (checked at start-up): run them here.
            return self.executor.call_sync(command, arguments, session, out_of_band=True)

        try:
            response = dispatch_now(
                request.value,
                commands=self.executor.command_set(negotiating=not session.negotiated),
                negotiating=not session.negotiated,
                oob_enabled=session.oob_enabled,
                run=run,
            )
        except Exception:  # a bug in a handler must not take the monitor down
            log.exception("out-of-band command failed unexpectedly")
            response = {"error": {"class": "GenericError", "desc": "internal error"}}
        connection.send(response)
