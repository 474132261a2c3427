"""A migration peer killed mid-stream leaves the survivor as it was before the migration:
the same descriptors and threads (the migration thread, its socket and the
destination's listening socket all gone), the guest running, ready to migrate again.
(The errors themselves are in test_rules: dropped connection, source gone.)"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

from tests.migration.harness import Peer, peer, wait_exit
from tests.migration.test_rules import MACHINE, SLOW


def resources(p: Peer) -> tuple[int, int]:
    pid = p.proc.proc.pid
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


async def back_to(p: Peer, expected: tuple[int, int]) -> tuple[int, int]:
    """``p``'s resources once they are ``expected`` again (a generous deadline)."""
    deadline = time.monotonic() + 60
    now = resources(p)
    while now != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = resources(p)
    return now


async def test_destination_killed_mid_stream(tmp_path: Path) -> None:
    uri = f"tcp:127.0.0.1:{free_port()}"
    async with peer("src", MACHINE) as src:
        await src.cmd("migrate-set-parameters", SLOW)
        # The simulated vCPUs' model (numpy, whose import starts a BLAS thread for good)
        # is made on first use: make it before counting.
        await src.cmd("human-monitor-command", {"command-line": "xp /1xb 0"})
        before = resources(src)
        for attempt in range(2):
            async with peer(f"dst{attempt}", [*MACHINE, "-incoming", uri]) as dst:
                await src.cmd("migrate", {"uri": uri})
                await src.wait_migration("active")
                dst.proc.signal(signal.SIGKILL)
                assert (await src.wait_migration("failed"))["error-desc"].startswith(
                    "Unable to write to socket: "
                )
            assert await src.runstate() == "running"
            assert await back_to(src, before) == before


async def test_source_killed_mid_stream(tmp_path: Path) -> None:
    """The destination exits (status 1) and its sockets go: its monitor's file, and
    the incoming one is taken over by the next destination."""
    incoming = tmp_path / "m.sock"
    async with peer("dst", [*MACHINE, "-incoming", f"unix:{incoming}"]) as dst:
        async with peer("src", MACHINE) as src:
            await src.cmd("migrate-set-parameters", SLOW)
            await src.cmd("migrate", {"uri": f"unix:{incoming}"})
            await dst.wait_migration("active")
            src.proc.signal(signal.SIGKILL)
            assert await wait_exit(dst.proc) == 1
        assert not Path(dst.proc.socket_path).exists()
        assert "Traceback" not in dst.proc.stderr()
    async with peer("dst2", [*MACHINE, "-incoming", f"unix:{incoming}"]) as dst2:
        assert await dst2.runstate() == "inmigrate"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
