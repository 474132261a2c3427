"""virsh driving qmpdl as a domain's QEMU, unchanged, on simulated and on real vCPUs.

Every flow of issue #9: define/start (libvirt's capability probe of the emulator with
``-daemonize``/``-pidfile`` included), the dirty-limit commands through
``qemu-monitor-command`` (QMP and ``--hmp``), ``domdirtyrate-calc`` in its three modes
and ``domstats --dirtyrate`` with rates measured on qmpdl's vCPUs, ``domstats`` with
every group, suspend/resume, dominfo, the serial console, destroy and shutdown.  Only
behaviour is asserted; rates are compared with each other, never with the clock.
"""

from __future__ import annotations

import os
import select
import time

import pytest

from tests.libvirt.conftest import DomainFactory

pytestmark = pytest.mark.slow


def test_dirty_limit_through_qemu_monitor_command(domains: DomainFactory, backend: str) -> None:
    dom = domains.start(backend)
    assert dom.state() == "running (booted)"
    assert dom.qmp("query-vcpu-dirty-limit") == []
    assert dom.qmp("set-vcpu-dirty-limit", {"dirty-rate": 100}) == {}
    limits = dom.qmp("query-vcpu-dirty-limit")
    assert [(v["cpu-index"], v["limit-rate"]) for v in limits] == [(0, 100), (1, 100)]
    assert dom.qmp("set-vcpu-dirty-limit", {"cpu-index": 1, "dirty-rate": 50}) == {}
    lines = dom.hmp("info vcpu_dirty_limit").splitlines()
    assert [line.split(", current")[0] for line in lines[:2]] == [
        "vcpu[0], limit rate 100 (MB/s)",
        "vcpu[1], limit rate 50 (MB/s)",
    ]
    assert dom.qmp("cancel-vcpu-dirty-limit") == {}
    assert dom.qmp("query-vcpu-dirty-limit") == []
    # (QEMU 7.2 adds a hint after set_vcpu_dirty_limit; the default profile is newer)
    dom.hmp("set_vcpu_dirty_limit 200")
    assert dom.hmp("info vcpu_dirty_limit").startswith("vcpu[0], limit rate 200 (MB/s)")
    dom.hmp("cancel_vcpu_dirty_limit")
    assert dom.hmp("info vcpu_dirty_limit").startswith("Dirty page limit not enabled!")


@pytest.mark.parametrize(
    ("ring", "modes"),
    [(True, ("page-sampling", "dirty-ring")), (False, ("page-sampling", "dirty-bitmap"))],
    ids=["dirty-ring", "no-ring"],
)
def test_dirty_rate_in_every_mode(
    domains: DomainFactory, backend: str, ring: bool, modes: tuple[str, ...]
) -> None:
    dom = domains.start(backend, dirty_ring=ring)
    before = dom.stats("dirtyrate")
    assert before["dirtyrate.calc_status"] == "0"
    refused = "dirty-bitmap" if ring else "dirty-ring"
    result = dom.libvirtd.virsh(
        "domdirtyrate-calc", dom.name, "--seconds", "1", "--mode", refused, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        # qmpdl refuses as QEMU; without the ring libvirt refuses before asking
        "error: internal error: unable to execute QEMU command 'calc-dirty-rate': "
        "mode dirty-bitmap is not enabled, use other method instead."
        if ring
        else "error: Operation not supported: dirty-ring calculation mode requires "
        "dirty-ring feature enabled."
    )
    for mode in modes:
        stats = dom.dirty_rate(mode)
        assert stats["dirtyrate.calc_status"] == "2", stats
        assert stats["dirtyrate.calc_mode"] == mode
        assert stats["dirtyrate.calc_period"] == "1"
        # the default guests write hundreds of MiB/s
        assert int(stats["dirtyrate.megabytes_per_second"]) > 50, stats
        if mode == "dirty-ring":
            per_vcpu = [int(stats[f"dirtyrate.vcpu.{i}.megabytes_per_second"]) for i in (0, 1)]
            assert all(rate > 25 for rate in per_vcpu), stats


def test_domstats_every_group_suspend_resume_dominfo(domains: DomainFactory, backend: str) -> None:
    dom = domains.start(backend)
    stats = dom.stats()
    assert stats["state.state"] == "1"
    assert stats["vcpu.current"] == "2"
    assert stats["vcpu.maximum"] == "2"
    assert stats["balloon.current"] == "131072"
    info = dict(line.split(":", 1) for line in dom.virsh("dominfo").splitlines() if ":" in line)
    assert info["State"].strip() == "running"
    assert info["CPU(s)"].strip() == "2"
    assert info["Max memory"].strip() == "131072 KiB"
    dom.virsh("suspend")
    assert dom.state() == "paused (user)"
    assert dom.qmp("query-status")["status"] == "paused"
    dom.virsh("resume")
    assert dom.state() == "running (unpaused)"
    assert dom.qmp("query-status")["status"] == "running"


def test_destroy(domains: DomainFactory, backend: str) -> None:
    dom = domains.start(backend)
    dom.virsh("destroy")
    assert dom.wait_state("shut off") == "shut off (destroyed)"
    assert "terminating on signal 15 from pid" in dom.libvirtd.domain_log(dom.name)


def test_shutdown_powers_the_guest_off(domains: DomainFactory, backend: str) -> None:
    dom = domains.start(backend)
    dom.virsh("shutdown")
    assert dom.wait_state("shut off") == "shut off (shutdown)"


def test_a_domain_with_a_disk_and_a_nic(domains: DomainFactory) -> None:
    dom = domains.start("sim", disk=True, nic=True)
    assert dom.state() == "running (booted)"
    assert dom.qmp("query-status")["status"] == "running"


def _read_pty(path: str, want: int, timeout: float = 60.0) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while data.count(b"#") < want and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                data += os.read(fd, 256)
    finally:
        os.close(fd)
    return data


def test_serial_console_shows_the_guest(domains: DomainFactory) -> None:
    """``virsh console`` reads the pty libvirt reads from ``query-chardev``: the kvm
    guests print ``#`` per pass on COM1."""
    from tests.conftest import need_kvm

    need_kvm()
    dom = domains.start("kvm", qmpdl_args=("--workload", "all:write,wss=4M"))
    tty = dom.virsh("ttyconsole").strip()
    chardevs = {c["label"]: c for c in dom.qmp("query-chardev")}
    assert chardevs["charserial0"] == {
        "frontend-open": True,
        "filename": f"pty:{tty}",
        "label": "charserial0",
    }
    assert _read_pty(tty, 3).count(b"#") >= 3


def test_four_vcpus_one_limited_one_reading(domains: DomainFactory, backend: str) -> None:
    """vCPU 0 writes and is limited, vCPU 1 reads, 2 and 3 idle."""
    dom = domains.start(
        backend,
        vcpus=4,
        memory_mib=256,
        qmpdl_args=(
            "--workload",
            "0:write",
            "--workload",
            "1:read",
            "--workload",
            "2-3:idle",
        ),
    )

    def rates() -> list[int]:
        stats = dom.dirty_rate("dirty-ring")
        return [int(stats[f"dirtyrate.vcpu.{i}.megabytes_per_second"]) for i in range(4)]

    free = rates()
    assert free[0] > 100 and free[1:] == [0, 0, 0], free
    dom.qmp("set-vcpu-dirty-limit", {"cpu-index": 0, "dirty-rate": 50})
    limits = dom.qmp("query-vcpu-dirty-limit")
    assert [(v["cpu-index"], v["limit-rate"]) for v in limits] == [(0, 50)]
    # QEMU's throttle needs a few one-second periods to bring the writer down
    deadline = time.monotonic() + 120
    limited = rates()
    while limited[0] > free[0] / 2 and time.monotonic() < deadline:
        limited = rates()
    assert limited[0] < free[0] / 2 and limited[1:] == [0, 0, 0], (free, limited)
    dom.qmp("cancel-vcpu-dirty-limit", {"cpu-index": 0})
    assert dom.qmp("query-vcpu-dirty-limit") == []


def test_the_probe_runs_qmpdl_daemonized(domains: DomainFactory) -> None:
    """libvirt probed the emulator with ``-daemonize``/``-pidfile`` and cached what it
    learnt under its name."""
    dom = domains.start("sim")
    cache = dom.libvirtd.paths["cache"] / "qemu" / "capabilities"
    files = list(cache.glob("*.xml"))
    assert any(str(domains.emulator) in f.read_text() for f in files), files
