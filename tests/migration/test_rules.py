"""Migration between two qmpdl processes: QEMU's rules (spec §4), transports, and the
failures a management tool must survive.  Simulated vCPUs, the default (newest)
profile; the texts of QEMU 7.2's commands are checked byte for byte by the
differential suite (``tests/differential/corpus/migration.json``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.migration.harness import Peer, peer, poll, wait_exit

#: A writer over 16 MiB (about 450 MiB/s) and a reader, in 128 MiB.
MACHINE = [
    "-accel",
    "sim,dirty-ring-size=4096",
    "-m",
    "128M",
    "-smp",
    "2",
    "--workload",
    "0:write,wss=16M",
    "--workload",
    "1:read,wss=16M",
]
#: Slow enough that the writer outpaces the transfer: never converges unthrottled.
SLOW = {"max-bandwidth": 10_000_000, "downtime-limit": 300}
#: A writer over 64 MiB at 100 MB/s: unthrottled every pass finds the whole working set
#: dirty again (more than the 30 MB max-bandwidth x downtime-limit allows), limited it
#: dirties one ring (~16 MiB) per penalty - and from 8.2 each pass's sync waits for the
#: writer's penalty to end, so a pass sees one ring's pages: below 30 MB, it converges.
WIDE = [a.replace("0:write,wss=16M", "0:write,wss=64M") for a in MACHINE]
FAST = {"max-bandwidth": 100_000_000, "downtime-limit": 300}


async def caps(p: Peer, **states: bool) -> None:
    await p.cmd(
        "migrate-set-capabilities",
        {
            "capabilities": [
                {"capability": name.replace("_", "-"), "state": on} for name, on in states.items()
            ]
        },
    )


async def wait_dirty_limit_in_service(src: Peer) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def throttling() -> bool:
        nonlocal found
        found = await src.migrate_info()
        assert found.get("status") in ("setup", "active"), found
        return int(found.get("dirty-limit-throttle-time-per-round", 0)) > 0

    await poll(throttling, 120, "the migration's dirty limit")
    return found


async def test_user_limits_refused_while_the_migration_limits(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    async with peer("src", MACHINE) as src, peer("dst", [*MACHINE, "-incoming", uri]):
        await caps(src, dirty_limit=True)
        await src.cmd("migrate-set-parameters", {**SLOW, "vcpu-dirty-limit": 20})
        # Before the migration the user's limit is welcome ...
        assert await src.cmd("set-vcpu-dirty-limit", {"dirty-rate": 300}) == {}
        await src.cmd("migrate", {"uri": uri})
        # The user's limit in service already shows in query-migrate ...
        info = await wait_dirty_limit_in_service(src)
        assert info["dirty-limit-ring-full-time"] > 0

        # ... until the migration's trigger overwrites it with vcpu-dirty-limit ...
        async def overwritten() -> bool:
            limits = await src.cmd("query-vcpu-dirty-limit")
            return [x["limit-rate"] for x in limits] == [20, 20]

        await poll(overwritten, 120, "the migration to set vcpu-dirty-limit")
        assert (await src.migrate_info())["status"] == "active"
        # ... and meanwhile the user may neither set nor cancel.
        for name, args, text in [
            (
                "set-vcpu-dirty-limit",
                {"dirty-rate": 100},
                "can't set dirty page rate limit while migration is running",
            ),
            (
                "cancel-vcpu-dirty-limit",
                {"cpu-index": 0},
                "can't cancel dirty page rate limit while migration is running",
            ),
        ]:
            with pytest.raises(Exception, match=text):
                await src.cmd(name, args)
        # migrate_cancel tries to lift the limit, but QEMU's own check refuses it while
        # the migration still runs: the limit stays, the fields go with the status.
        await src.cmd("migrate_cancel")
        info = await src.wait_migration("cancelled")
        assert info == {"status": "cancelled"}
        limits = await src.cmd("query-vcpu-dirty-limit")
        assert [x["limit-rate"] for x in limits] == [20, 20]
        assert await src.cmd("cancel-vcpu-dirty-limit") == {}
        assert await src.cmd("query-vcpu-dirty-limit") == []
        assert await src.runstate() == "running"


async def test_non_convergent_migration_converges_with_dirty_limit(tmp_path: Path) -> None:
    # Unthrottled: every pass finds the whole working set dirty again.
    uri = f"unix:{tmp_path / 'a.sock'}"
    async with peer("src", WIDE) as src, peer("dst", [*WIDE, "-incoming", uri]):
        await src.cmd("migrate-set-parameters", FAST)
        await src.cmd("migrate", {"uri": uri})

        async def four_passes() -> bool:
            info = await src.migrate_info()
            assert info["status"] in ("setup", "active"), info
            return "ram" in info and info["ram"]["dirty-sync-count"] >= 4

        await poll(four_passes, 120, "four passes")
        info = await src.migrate_info()
        assert info["status"] == "active"
        assert info["ram"]["remaining"] >= 48 << 20  # still most of the 64 MiB

        # remaining is live: it falls as pages are sent, not only at syncs.
        seen: list[tuple[int, int]] = []

        async def falls_within_a_pass() -> bool:
            ram = (await src.migrate_info())["ram"]
            seen.append((ram["dirty-sync-count"], ram["remaining"]))
            if len(seen) < 2:
                return False
            (sync0, left0), (sync1, left1) = seen[-2:]
            return sync0 == sync1 and left1 < left0

        await poll(falls_within_a_pass, 120, "remaining to fall during a pass")
        await src.cmd("migrate_cancel")
        await src.wait_migration("cancelled")

    # With the dirty-limit capability the same migration completes.
    uri = f"unix:{tmp_path / 'b.sock'}"
    async with peer("src", WIDE) as src, peer("dst", [*WIDE, "-incoming", uri]) as dst:
        await caps(src, dirty_limit=True, events=True)
        await src.cmd("migrate-set-parameters", {**FAST, "vcpu-dirty-limit": 5})
        await src.cmd("migrate", {"uri": uri})
        info = await src.wait_migration({"completed", "failed"}, 90)
        assert info["status"] == "completed", info
        assert info["dirty-limit-throttle-time-per-round"] > 0
        assert info["downtime"] < 2000
        # the destination runs once it has loaded what came last (a moment after the
        # source says completed, as on QEMU)
        await dst.wait_runstate("running", 60)
        # Success leaves the limit in service on the stopped source.
        limits = await src.cmd("query-vcpu-dirty-limit")
        assert [x["limit-rate"] for x in limits] == [5, 5]
        await src.wait_runstate("postmigrate")
        names = src.event_names()
        assert names[:3] == ["MIGRATION:setup", "MIGRATION_PASS", "MIGRATION:active"]
        # 10.0+: the switchover passes through status device (QEMU 10.0, verified)
        assert names[-4:] == ["STOP", "MIGRATION:device", "MIGRATION_PASS", "MIGRATION:completed"]


async def test_auto_converge_throttles_the_cpus(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    async with peer("src", MACHINE) as src, peer("dst", [*MACHINE, "-incoming", uri]):
        await caps(src, auto_converge=True)
        await src.cmd(
            "migrate-set-parameters",
            {**SLOW, "cpu-throttle-initial": 30, "cpu-throttle-increment": 15},
        )
        with pytest.raises(Exception, match="dirty-limit conflicts with auto-converge"):
            await caps(src, dirty_limit=True)
        await src.cmd("migrate", {"uri": uri})
        seen: list[int] = []

        async def stepped() -> bool:
            info = await src.migrate_info()
            value = info.get("cpu-throttle-percentage")
            if value is not None and value not in seen:
                seen.append(value)
            return len(seen) >= 2

        await poll(stepped, 120, "two auto-converge steps")
        assert seen[:2] == [30, 45]
        await src.cmd("migrate_cancel")
        info = await src.wait_migration("cancelled")
        assert "cpu-throttle-percentage" not in info
        assert await src.runstate() == "running"


async def test_dropped_connection_fails_and_the_source_runs_on(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    async with peer("src", MACHINE) as src, peer("dst", [*MACHINE, "-incoming", uri]) as dst:
        await caps(src, events=True)
        await src.cmd("migrate-set-parameters", SLOW)
        await src.cmd("migrate", {"uri": uri})
        await src.wait_migration("active")
        dst.proc.signal(signal.SIGKILL)
        info = await src.wait_migration("failed")
        assert info["error-desc"] in (
            "Unable to write to socket: Broken pipe",
            "Unable to write to socket: Connection reset by peer",
        )
        assert await src.runstate() == "running"
        assert "STOP" not in src.event_names()
        assert src.event_names()[-1] == "MIGRATION:failed"
        # and it may migrate again
        uri2 = f"unix:{tmp_path / 'm2.sock'}"
        async with peer("dst2", [*MACHINE, "-incoming", uri2]):
            await src.cmd("migrate_cancel")  # nothing running: a no-op
            await src.cmd("migrate", {"uri": uri2})
            assert (await src.wait_migration("active"))["status"] == "active"


async def test_source_gone_fails_the_destination(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    async with peer("src", MACHINE) as src, peer("dst", [*MACHINE, "-incoming", uri]) as dst:
        await caps(dst, events=True)
        await src.cmd("migrate-set-parameters", SLOW)
        await src.cmd("migrate", {"uri": uri})
        await dst.wait_migration("active")
        src.proc.signal(signal.SIGKILL)
        assert await wait_exit(dst.proc) == 1
        err = dst.proc.stderr()
        assert "the source closed the connection before the end" in err
        assert "load of migration failed" in err


async def test_failure_after_switchover_restarts_the_source(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    async with peer("src", MACHINE) as src, peer("dst", [*MACHINE, "-incoming", uri]) as dst:
        await caps(src, events=True, pause_before_switchover=True)
        await src.cmd("migrate", {"uri": uri})  # fast: converges at once
        await src.wait_migration("pre-switchover")
        assert await src.runstate() == "finish-migrate"
        dst.proc.signal(signal.SIGKILL)
        await wait_exit(dst.proc)
        assert await src.cmd("migrate-continue", {"state": "pre-switchover"}) == {}
        info = await src.wait_migration("failed")
        assert info["error-desc"].startswith("Unable to ")
        await src.wait_event("RESUME")
        assert await src.runstate() == "running"
        names = src.event_names()
        assert names.index("STOP") < names.index("MIGRATION:pre-switchover")
        assert names[-2:] == ["MIGRATION:failed", "RESUME"]


@contextlib.asynccontextmanager
async def corrupting_proxy(listen: str, target: str, after: int) -> AsyncIterator[None]:
    """A unix proxy that flips one byte of page data at least ``after`` bytes into the
    stream (it follows the stream's framing to land inside a page)."""
    walker = _PageDataFinder(after)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(target)

        async def down() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        task = asyncio.create_task(down())
        try:
            while data := await reader.read(65536):
                up_writer.write(walker.feed(data))
                await up_writer.drain()
        except ConnectionError:
            pass
        finally:
            task.cancel()
            up_writer.close()
            writer.close()

    server = await asyncio.start_unix_server(handle, listen)
    try:
        yield
    finally:
        server.close()


class _PageDataFinder:
    """Walks the migration stream's records (see qmpdl.migration.stream) and flips the
    first byte of page data that lies at least ``after`` bytes in."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.buf = bytearray()
        self.offset = 0  # stream offset of buf[0]
        self.pos = 0  # walker position in buf
        self.need_header = True
        self.done = False

    def feed(self, data: bytes) -> bytes:
        start = self.offset + len(self.buf)
        self.buf += data
        target = self._find()
        out = bytearray(data)
        if target is not None and start <= target < start + len(data):
            out[target - start] ^= 0x5A
            self.done = True
        return bytes(out)

    def _find(self) -> int | None:
        while not self.done:
            avail = len(self.buf) - self.pos
            if self.need_header:
                if avail < 32:
                    return None
                (jlen,) = struct.unpack_from("<I", self.buf, self.pos + 28)
                self.pos += 32 + jlen
                self.need_header = False
                continue
            if avail < 5 or self.buf[self.pos] != 1:
                return None
            (n,) = struct.unpack_from("<I", self.buf, self.pos + 1)
            head = 5 + 8 * n
            if avail < head:
                return None
            entries = struct.unpack_from(f"<{n}Q", self.buf, self.pos + 5)
            data_pages = sum(1 for e in entries if not e >> 63)
            data_start: int = self.offset + self.pos + head
            if data_pages and data_start >= self.after:
                return data_start
            self.pos += head + data_pages * 4096
        return None


async def test_damaged_stream_fails_both_sides(tmp_path: Path) -> None:
    dst_uri = tmp_path / "dst.sock"
    proxy = tmp_path / "proxy.sock"
    async with (
        peer("src", MACHINE) as src,
        peer("dst", [*MACHINE, "-incoming", f"unix:{dst_uri}"]) as dst,
        corrupting_proxy(str(proxy), str(dst_uri), after=1 << 20),
    ):
        await caps(dst, events=True)
        await src.cmd("migrate", {"uri": f"unix:{proxy}"})
        assert await wait_exit(dst.proc) == 1
        assert "arrived damaged" in dst.proc.stderr()
        assert "load of migration failed" in dst.proc.stderr()
        info = await src.wait_migration("failed")
        assert info["error-desc"].startswith(("Unable to ", "Sibling indicated error")), info
        await poll(_running(src), 60, "the source to run again")


def _written(p: Peer, size: int) -> Any:
    """Whether vCPU 0 (the writer) has completed a pass over ``size`` bytes."""

    async def check() -> bool:
        text = await p.hmp("xp /4wx 0x10000")
        base, end, _, passes = (int(word, 16) for word in text.split()[1:5])
        return end - base == size and passes >= 1

    return check


def _running(p: Peer) -> Any:
    async def check() -> bool:
        return await p.runstate() == "running"

    return check


async def test_mismatched_destination_is_refused(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    other = [a.replace("128M", "256M") for a in MACHINE]
    async with peer("src", MACHINE) as src, peer("dst", [*other, "-incoming", uri]) as dst:
        await src.cmd("migrate", {"uri": uri})
        assert await wait_exit(dst.proc) == 1
        assert "does not match this one" in dst.proc.stderr()
        info = await src.wait_migration("failed")
        assert info["error-desc"].startswith("Unable to ")
        assert await src.runstate() == "running"


async def test_tcp_with_deferred_incoming(tmp_path: Path) -> None:
    async with peer("src", MACHINE) as src, peer("dst", [*MACHINE, "-incoming", "defer"]) as dst:
        await caps(dst, events=True)
        assert await dst.migrate_info() == {}
        assert await dst.runstate() == "inmigrate"
        await dst.cmd("migrate-incoming", {"uri": "tcp:127.0.0.1:0"})
        info = await dst.migrate_info()
        assert info["status"] == "setup"  # QEMU 9.0+: the destination shows setup
        [address] = info["socket-address"]
        assert address["type"] == "inet" and address["host"] == "127.0.0.1"
        assert address["ipv4"] is True
        await src.cmd("migrate", {"uri": f"tcp:127.0.0.1:{address['port']}"})
        await src.wait_migration("completed")
        info = await dst.wait_migration("completed")
        assert info == {"status": "completed"}  # the listener is gone
        assert dst.event_names() == [
            "MIGRATION:setup",
            "MIGRATION:active",
            "RESUME",
            "MIGRATION:completed",
        ]
        with pytest.raises(Exception, match="The incoming migration has already been started"):
            await dst.cmd("migrate-incoming", {"uri": "tcp:127.0.0.1:0"})


@pytest.mark.parametrize("transport", ["exec", "file"])
async def test_stream_through_a_file(transport: str, tmp_path: Path) -> None:
    image = tmp_path / "vm.mig"
    out = f"exec:cat > {image}" if transport == "exec" else f"file:{image}"
    into = f"exec:cat {image}" if transport == "exec" else f"file:{image}"
    async with peer("src", MACHINE) as src:
        await poll(_written(src, 16 << 20), 60, "the writer to cover its working set")
        await src.cmd("stop")  # a saved VM: no precopy, everything goes in one pass
        await src.cmd("migrate", {"uri": out})
        info = await src.wait_migration("completed")
        assert info["ram"]["precopy-bytes"] == 0
        await src.wait_runstate("postmigrate")
    assert image.stat().st_size > 16 << 20  # the written pages, whole
    async with peer("dst", [*MACHINE, "-incoming", into]) as dst:
        await dst.wait_migration("completed")
        # the source was paused: the destination takes its run state
        assert await dst.runstate() == "paused"
        assert await dst.cmd("cont") == {}
        assert await dst.runstate() == "running"


async def test_cont_during_inmigrate_starts_after_loading(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    async with (
        peer("src", MACHINE) as src,
        peer("dst", [*MACHINE, "-S", "-incoming", uri]) as dst,
    ):
        # -S: the destination would stay paused; cont while waiting sets autostart
        assert await dst.cmd("cont") == {}
        assert await dst.runstate() == "inmigrate"
        await src.cmd("migrate", {"uri": uri})
        await dst.wait_migration("completed")
        assert await dst.runstate() == "running"
