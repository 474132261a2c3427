"""QEMU's migration qtest ``test_dirty_limit``, written anew and run between two qmpdl
processes over a unix socket with qemu.qmp, on simulated and on real (KVM) vCPUs.

The qtest's constants: period 1000 ms, limit 50 MB/s, a non-convergent first setting
(max-bandwidth 3000000, downtime-limit 1), then max-bandwidth 400000000 and
downtime-limit 250, whose expected threshold is 100000000 bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need_kvm
from tests.migration.harness import Peer, peer, poll, wait_exit

DIRTYLIMIT_PERIOD = 1000
DIRTYLIMIT_VALUE = 50
MAX_BANDWIDTH = 400000000
DOWNTIME_LIMIT = 250
EXPECTED_THRESHOLD = MAX_BANDWIDTH * DOWNTIME_LIMIT // 1000


def machine(accel: str) -> list[str]:
    """The qtest's VM shape (1 vCPU, 150 MiB, 4096-entry ring); the writer works over
    16 MiB instead of the qtest guest's 100 MB so that each pass at 3 MB/s takes
    seconds, not half a minute (the flow is the same)."""
    return [
        "-accel",
        f"{accel},dirty-ring-size=4096",
        "-m",
        "150M",
        "-smp",
        "1",
        "--workload",
        "0:write,wss=16M",
    ]


async def throttle_time(src: Peer) -> int:
    """``dirty-limit-throttle-time-per-round``, 0 when absent (as the qtest reads it)."""
    info = await src.migrate_info()
    return int(info.get("dirty-limit-throttle-time-per-round", 0))


async def wait_throttling(src: Peer) -> None:
    """Until the migration put the limit in service; the source must never stop."""

    async def throttling() -> bool:
        info = await src.migrate_info()
        assert info.get("status") in ("setup", "active"), info
        assert await src.runstate() == "running"
        return int(info.get("dirty-limit-throttle-time-per-round", 0)) > 0

    await poll(throttling, 180, "dirty-limit-throttle-time-per-round > 0")


@pytest.mark.parametrize("accel", ["sim", "kvm"])
async def test_dirty_limit(accel: str, tmp_path: Path) -> None:
    if accel == "kvm":
        need_kvm()
    uri = f"unix:{tmp_path / 'migrate.sock'}"
    async with peer("src", machine(accel)) as src:
        await src.cmd(
            "migrate-set-capabilities",
            {"capabilities": [{"capability": "dirty-limit", "state": True}]},
        )
        await src.cmd(
            "migrate-set-parameters",
            {
                "x-vcpu-dirty-limit-period": DIRTYLIMIT_PERIOD,
                "vcpu-dirty-limit": DIRTYLIMIT_VALUE,
                "max-bandwidth": 3000000,
                "downtime-limit": 1,
            },
        )
        await src.cmd(
            "migrate-set-capabilities",
            {"capabilities": [{"capability": "pause-before-switchover", "state": True}]},
        )

        # First migration: cancelled once the limit is throttling the guest.
        async with peer("dst", [*machine(accel), "-incoming", uri]) as dst:
            assert await src.cmd("migrate", {"uri": uri}) == {}
            await wait_throttling(src)
            assert await src.cmd("migrate_cancel") == {}
            await src.wait_migration("cancelled", 30)
            # The destination sees the stream end early: it fails and exits with 1.
            assert await wait_exit(dst.proc) == 1
            assert "load of migration failed" in dst.proc.stderr()

        async def no_throttle_time() -> bool:
            return await throttle_time(src) == 0

        await poll(no_throttle_time, 60, "the throttle time to read 0 after migrate_cancel")
        assert await throttle_time(src) == 0
        assert await src.runstate() == "running"

        # Second migration: throttled at the capability's limit, then let converge.
        uri2 = f"unix:{tmp_path / 'migrate2.sock'}"
        async with peer("dst2", [*machine(accel), "-incoming", uri2]) as dst:
            await dst.cmd(
                "migrate-set-capabilities",
                {"capabilities": [{"capability": "events", "state": True}]},
            )
            assert await src.cmd("migrate", {"uri": uri2}) == {}
            await wait_throttling(src)
            limits = await src.cmd("query-vcpu-dirty-limit")
            assert limits[0]["limit-rate"] == DIRTYLIMIT_VALUE

            await src.cmd(
                "migrate-set-parameters",
                {"downtime-limit": DOWNTIME_LIMIT, "max-bandwidth": MAX_BANDWIDTH},
            )
            info = await src.wait_migration("pre-switchover", 60)
            remaining = info["ram"]["remaining"]
            assert remaining < EXPECTED_THRESHOLD + EXPECTED_THRESHOLD // 100, info
            assert await src.runstate() == "finish-migrate"
            assert await src.cmd("migrate-continue", {"state": "pre-switchover"}) == {}
            await dst.wait_event("RESUME")
            await src.wait_migration("completed", 30)
            assert (await dst.wait_migration("completed", 10))["status"] == "completed"
            assert await dst.runstate() == "running"
            await src.wait_runstate("postmigrate")
            assert dst.event_names()[-3:] == ["MIGRATION:active", "RESUME", "MIGRATION:completed"]
