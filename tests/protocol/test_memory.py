"""Memory under abuse: what a client can make a monitor hold is bounded, and given back.

A monitor fed random bytes answers every parse error (about 13 bytes of reply per byte
of input).  A client that does not read its replies is not read either once
``OUTPUT_HIGH_WATER`` bytes of them wait (QEMU buffers them without limit: 10 MB of
random input unread cost QEMU 7.2 136 MiB, never returned); one that reads gets every
reply, and afterwards nothing stays allocated.  Measured in Python allocations
(tracemalloc) of an in-process server, which do not depend on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import socket
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

from qmpdl.cli import parse_args
from qmpdl.commands.executor import CommandExecutor
from qmpdl.qapi import QapiSchema
from qmpdl.server.app import Frontends, greeting, open_chardevs
from qmpdl.server.chardev import ChardevEndpoint
from qmpdl.server.connection import OUTPUT_HIGH_WATER, MonitorConnection
from qmpdl.server.dispatcher import Dispatcher
from qmpdl.system import build_machine

MiB = 1 << 20
#: Random input the reading client sends (its replies: ~13 MiB).
ABUSE = 1 * MiB
#: What the client that does not read tries to send (its replies would be ~100 MiB).
FLOOD = 8 * MiB
#: Python allocations a finished abuse may leave behind (caches, the event loop's lists).
SLACK = 256 << 10


@contextlib.asynccontextmanager
async def monitor(tmp_path: Path) -> AsyncIterator[ChardevEndpoint]:
    """qmpdl's monitor machinery on a unix socket, in this event loop."""
    path = str(tmp_path / "m.sock")
    config = parse_args(
        ["-accel", "sim,dirty-ring-size=4096", "-S", "-qmp", f"unix:{path},server=on,wait=off"]
    )
    machine = build_machine(config)
    executor = CommandExecutor(machine, QapiSchema.load(machine.profile))
    dispatcher = Dispatcher(machine, executor, on_shutdown=lambda: None)
    frontends = Frontends(
        config,
        machine,
        dispatcher=dispatcher,
        executor=executor,
        hello=greeting(executor),
        on_shutdown=lambda: None,
    )
    [endpoint] = await open_chardevs(config, machine, frontends)
    machine.start()
    dispatcher.start()
    endpoint.start_serving()
    try:
        yield endpoint
    finally:
        await dispatcher.stop()
        await endpoint.close()
        executor.close()
        await asyncio.to_thread(machine.teardown)


async def negotiate(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(path, limit=64 << 10)
    await reader.readline()
    writer.write(b'{"execute": "qmp_capabilities"}{"execute": "query-status"}')
    await reader.readline()
    await reader.readline()
    return reader, writer


async def gone(endpoint: ChardevEndpoint) -> None:
    """Until the monitor has dropped its client (a generous deadline)."""
    async with asyncio.timeout(60):
        while endpoint.active is not None:
            await asyncio.sleep(0.01)


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_a_client_that_does_not_read_is_not_read(tmp_path: Path) -> None:
    async with monitor(tmp_path) as endpoint:
        path = endpoint.chardev.path
        assert path is not None
        reader, writer = await negotiate(path)
        writer.transport.pause_reading()  # type: ignore[attr-defined]  # reads no reply
        flood = memoryview(random.Random(3).randbytes(FLOOD))
        tracemalloc.start()
        try:
            base = traced()
            raw: socket.socket = writer.get_extra_info("socket").dup()
            raw.setblocking(False)
            sent = 0
            connection = endpoint.active
            assert isinstance(connection, MonitorConnection)
            # send until everything went, or until the monitor stopped reading (its
            # replies backed up) and the kernel's buffers are full
            async with asyncio.timeout(120):
                while sent < FLOOD:
                    try:
                        sent += raw.send(flood[sent : sent + (64 << 10)])
                    except BlockingIOError:
                        if connection._writing_paused:
                            break
                    await asyncio.sleep(0.001)
            assert sent < FLOOD
            assert connection._writing_paused and not connection.transport.is_reading()  # type: ignore[union-attr]
            held = tracemalloc.get_traced_memory()[1] - base
            print(f"non-reading client: {sent} bytes sent, peak {held / MiB:.1f} MiB")
            # replies up to the high-water mark plus one read of input and its parse
            assert held < OUTPUT_HIGH_WATER + 2 * MiB, (held, sent)
            del flood
            raw.close()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            await gone(endpoint)
            left = traced() - base
            tracemalloc.stop()
        assert left < SLACK, left
        del reader


async def test_random_bytes_leave_nothing_behind(tmp_path: Path) -> None:
    async with monitor(tmp_path) as endpoint:
        path = endpoint.chardev.path
        assert path is not None
        # once, so what a first abuse sets up (caches) is there before measuring
        for round_ in range(2):
            reader, writer = await negotiate(path)
            data = random.Random(round_).randbytes(ABUSE) + b'\n\xff\n{"execute": "query-kvm"}'
            if round_:
                tracemalloc.start()
                base = traced()
            received = 0

            async def drain(reader: asyncio.StreamReader) -> None:
                nonlocal received
                while line := await reader.readline():
                    received += len(line)
                    if line.startswith(b'{"return": {"enabled"'):
                        return

            reading = asyncio.create_task(drain(reader))
            view = memoryview(data)
            for at in range(0, len(data), 64 << 10):
                writer.write(view[at : at + (64 << 10)])
                await writer.drain()
            await reading
            peak = tracemalloc.get_traced_memory()[1] if round_ else 0
            del data, view
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            await gone(endpoint)
        left = traced() - base
        tracemalloc.stop()
        print(f"reading client: peak {(peak - base) / MiB:.1f} MiB, left {left} bytes")
        assert received > 10 * ABUSE  # every parse error was answered
        # (the transport's buffer may briefly exist twice while it grows)
        assert peak - base < 2 * OUTPUT_HIGH_WATER + 2 * MiB
        assert left < SLACK, left
