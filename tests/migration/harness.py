"""Two qmpdl processes and a QMP client each: what the migration tests drive.

A :class:`Peer` is one qmpdl process with a connected ``qemu.qmp`` client that records
every event; waits poll with deadlines (never a bare sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, QMPClient

from qmpdl.tools.launch import QmpdlProcess


class Peer:
    """A running qmpdl and its client."""

    def __init__(self, name: str, proc: QmpdlProcess, qmp: QMPClient) -> None:
        self.name = name
        self.proc = proc
        self.qmp = qmp
        self.events: list[dict[str, Any]] = []
        self._listener = EventListener()
        self._task: asyncio.Task[None] | None = None

    async def start_recording(self) -> None:
        self.qmp.register_listener(self._listener)
        self._task = asyncio.create_task(self._record())

    async def _record(self) -> None:
        async for event in self._listener:
            self.events.append(dict(event))

    async def stop_recording(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            self.qmp.remove_listener(self._listener)

    async def cmd(self, name: str, args: dict[str, Any] | None = None) -> Any:
        return await self.qmp.execute(name, args)

    async def hmp(self, line: str) -> str:
        text = await self.qmp.execute("human-monitor-command", {"command-line": line})
        return str(text)

    async def migrate_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self.cmd("query-migrate")
        return info

    async def runstate(self) -> str:
        status: dict[str, Any] = await self.cmd("query-status")
        return str(status["status"])

    async def wait_runstate(self, state: str, timeout: float = 10.0) -> None:
        """Poll query-status until the run state is ``state`` (a completed migration's
        source reaches postmigrate a moment after the status, as on QEMU)."""

        async def check() -> bool:
            return await self.runstate() == state

        await poll(check, timeout, f"run state {state}")

    def event_names(self) -> list[str]:
        names = []
        for e in self.events:
            data = e.get("data") or {}
            if e["event"] == "MIGRATION":
                names.append(f"MIGRATION:{data['status']}")
            elif e["event"] == "MIGRATION_PASS":
                names.append("MIGRATION_PASS")
            else:
                names.append(str(e["event"]))
        return names

    async def wait_event(self, name: str, timeout: float = 120.0) -> None:
        await poll(lambda: _async_true(name in self.event_names()), timeout, f"{name} event")

    async def wait_migration(
        self, statuses: set[str] | str, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Poll query-migrate until its status is one of ``statuses``."""
        wanted = {statuses} if isinstance(statuses, str) else statuses
        found: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal found
            found = await self.migrate_info()
            return found.get("status") in wanted

        await poll(check, timeout, f"{self.name} migration status in {sorted(wanted)}")
        return found


async def _async_true(value: bool) -> bool:
    return value


async def poll(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> None:
    """Await ``check()`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def peer(name: str, args: list[str], workdir: Path | None = None) -> AsyncIterator[Peer]:
    """Start qmpdl with ``args``, connect, record events; stop everything at the end."""
    with QmpdlProcess(args, workdir=workdir) as proc:
        qmp = QMPClient(name)
        try:
            await qmp.connect(proc.socket_path)
        except Exception as e:
            status = proc.proc.poll()
            raise AssertionError(
                f"{name}: cannot connect ({e}); exit status {status}; stderr: {proc.stderr()}"
            ) from e
        p = Peer(name, proc, qmp)
        await p.start_recording()
        try:
            yield p
        finally:
            await p.stop_recording()
            with contextlib.suppress(Exception):
                await qmp.disconnect()


async def wait_exit(proc: QmpdlProcess, timeout: float = 120.0) -> int:
    """The exit status of a process that is expected to end by itself."""
    return await asyncio.to_thread(proc.wait, timeout)
