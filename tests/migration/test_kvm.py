"""Live migration of real vCPUs: the destination runs the guest on from the memory it
received.  The guest programs keep their pass counters in guest memory (vCPU ``i``'s
parameter block at ``0x10000 + i * 0x1000``), read here with HMP ``xp`` as one would
read them in QEMU."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmpdl.kvm.vm import dirty_ring_max_entries
from tests.conftest import need_kvm
from tests.migration.harness import Peer, peer, poll

MACHINE = [
    "-accel",
    "kvm,dirty-ring-size=4096",
    "-m",
    "192M",
    "-smp",
    "2",
    "--workload",
    "0:write,wss=64M",
    "--workload",
    "1:read,wss=16M",
]


async def counters(p: Peer) -> list[tuple[int, int, int]]:
    """(base, end, passes) of each vCPU's program."""
    out = []
    for cpu in range(2):
        text = await p.hmp(f"xp /4wx {0x10000 + cpu * 0x1000:#x}")
        base, end, _, passes = (int(word, 16) for word in text.split()[1:5])
        out.append((base, end, passes))
    return out


@pytest.fixture(autouse=True)
def _kvm() -> None:
    need_kvm()
    if dirty_ring_max_entries() < 4096:
        pytest.skip("KVM has no dirty ring of 4096 entries")


async def test_guest_runs_on_at_the_destination(tmp_path: Path) -> None:
    uri = f"unix:{tmp_path / 'm.sock'}"
    async with peer("src", MACHINE) as src, peer("dst", [*MACHINE, "-incoming", uri]) as dst:

        async def warmed_up() -> bool:
            return all(passes >= 2 for _, _, passes in await counters(src))

        await poll(warmed_up, 120, "both programs to make two passes")
        # 100 MB/s: unthrottled, the writer (about 400 MiB/s over 64 MiB) re-dirties its
        # whole working set every pass, so the dirty limit comes into service.
        await src.cmd(
            "migrate-set-capabilities",
            {
                "capabilities": [
                    {"capability": "dirty-limit", "state": True},
                    {"capability": "events", "state": True},
                ]
            },
        )
        await src.cmd(
            "migrate-set-parameters", {"max-bandwidth": 100_000_000, "vcpu-dirty-limit": 10}
        )
        await src.cmd("migrate", {"uri": uri})

        async def throttled() -> bool:
            info = await src.migrate_info()
            assert info["status"] in ("setup", "active", "completed"), info
            return bool(info.get("dirty-limit-throttle-time-per-round"))

        await poll(throttled, 120, "the dirty limit to throttle the writer")
        # Whether the limited writer then leaves less than the 30 MB a pass may end with
        # depends on the CPU each side gets (QEMU's controller settles anywhere in its
        # 25 MB/s dead band above the quota): a 10 s downtime limit ends it for sure.
        await src.cmd("migrate-set-parameters", {"downtime-limit": 10_000})
        info = await src.wait_migration({"completed", "failed"}, 120)
        assert info["status"] == "completed", info
        assert info["dirty-limit-throttle-time-per-round"] > 0
        await src.wait_runstate("postmigrate")
        stopped = await counters(src)  # frozen: the source's vCPUs are stopped
        assert await counters(src) == stopped

        await dst.wait_migration("completed", 10)
        assert await dst.runstate() == "running"
        arrived = await counters(dst)
        # the same programs over the same working sets, counting on from where the
        # source stopped (the destination may already have gone further)
        for (base, end, passes), (dbase, dend, dpasses) in zip(stopped, arrived, strict=True):
            assert (dbase, dend) == (base, end)
            assert dpasses >= passes

        async def counting_on() -> bool:
            now = await counters(dst)
            return all(n[2] >= s[2] + 2 for n, s in zip(now, stopped, strict=True))

        await poll(counting_on, 120, "both programs to go on at the destination")
