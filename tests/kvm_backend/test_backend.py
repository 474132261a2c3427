"""The kvm backend: real vCPUs throttled through real KVM_EXIT_DIRTY_RING_FULL exits.

Real vCPUs run in real time on a host that may be busy, so these tests assert what the
throttle decides and does (penalties, who sleeps, rates below a quota the writer is far
above even on a busy host), never how fast a guest runs; deadlines only bound them.
How fast the guests run under a limit, side by side with QEMU, is
``python3 -m bench.kvm_bench``'s."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qmpdl.backend.kvm import KvmBackend
from qmpdl.jsontypes import JsonObject
from qmpdl.kvm import guest
from tests.machine.conftest import Harness, MakeHarness

RING = "kvm,dirty-ring-size=4096"


def poll(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def backend(h: Harness) -> KvmBackend:
    b = h.machine.backend
    assert isinstance(b, KvmBackend)
    return b


def measure(h: Harness, args: JsonObject | None = None) -> list[int]:
    h.qmp("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-ring", **(args or {})})
    deadline = time.monotonic() + 120
    while (info := h.qmp("query-dirty-rate"))["status"] != "measured":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return [v["dirty-rate"] for v in info["vcpu-dirty-rate"]]


def current_rates(h: Harness) -> dict[int, int]:
    return {r["cpu-index"]: r["current-rate"] for r in h.qmp("query-vcpu-dirty-limit")}


def test_limit_one_of_two_vcpus(make_machine: MakeHarness) -> None:
    """vCPU 0 limited to 50 MB/s (the writer runs ~420 on an idle host, and far above 50
    on a busy one): it is penalised and settles below quota + 25; vCPU 1 never sleeps."""
    h = make_machine("-accel", RING, "-smp", "2", "-m", "256M", "--qemu-version", "7.2")
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 50, "cpu-index": 0})
    rates: list[int] = []

    def settled() -> bool:
        rates.append(current_rates(h)[0])
        time.sleep(0.3)
        return len(rates) > 3 and all(0 < r <= 75 for r in rates[-3:])

    poll(settled, "vCPU 0 below 50 + 25 MB/s")
    b = backend(h)
    assert h.machine.dirtylimit.throttle_us_per_full[0] > 0
    assert h.machine.dirtylimit.throttle_us_per_full[1] == 0
    assert b._penalties[0] > 0 and b._penalties[1] == 0  # what its ring-full exits sleep
    # vCPU 1 is not limited: it dirties at its unthrottled pace, above vCPU 0's limit.
    assert measure(h)[1] > 75
    assert list(current_rates(h)) == [0]


def test_a_reader_is_never_penalised_while_the_writer_is_limited(
    make_machine: MakeHarness,
) -> None:
    """A reader never fills its ring, so it never sleeps: its passes go on, its penalty
    stays zero (its speed beside a limited writer: bench.kvm_bench)."""
    h = make_machine("-accel", RING, "-smp", "2", "-m", "256M", "--workload", "1:read,wss=64M")
    b = backend(h)
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 50})  # every vCPU, the reader included
    poll(lambda: b._penalties[0] > 0, "the writer's penalty")
    start = guest.passes(b.vm, 1)
    poll(lambda: guest.passes(b.vm, 1) > start + 2, "the reader's passes")
    assert h.machine.dirtylimit.throttle_us_per_full[1] == 0
    assert b._penalties[1] == 0
    assert current_rates(h)[1] == 0


def test_stop_and_cont(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING, "-m", "256M")
    events: list[JsonObject] = []
    h.machine.events.subscribe(events.append)
    b = backend(h)
    poll(lambda: guest.passes(b.vm, 0) > 0, "a first pass")
    h.qmp("stop")
    stopped = guest.passes(b.vm, 0)
    time.sleep(0.5)
    assert guest.passes(b.vm, 0) == stopped
    assert measure(h) == [0]
    assert h.qmp("query-status")["status"] == "paused"
    h.qmp("cont")
    poll(lambda: guest.passes(b.vm, 0) > stopped, "progress after cont")
    assert [e["event"] for e in events] == ["STOP", "RESUME"]


def test_internal_error_stops_the_vm(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING, "-m", "64M")
    events: list[JsonObject] = []
    h.machine.events.subscribe(events.append)
    b = backend(h)
    poll(lambda: guest.passes(b.vm, 0) > 0, "a first pass")
    # Replace the guest programs with ud2: no IDT, so the vCPU triple-faults.
    code = guest.CODE_BASE
    b.vm.memory[code : code + 0xC0] = [0x0F, 0x0B] * 0x60
    poll(lambda: h.qmp("query-status")["status"] == "internal-error", "internal-error")
    assert h.qmp("query-status") == {"status": "internal-error", "running": False}
    poll(lambda: [e["event"] for e in events] == ["STOP"], "the STOP event")
    assert h.error("cont") == "Resetting the Virtual Machine is required"


def test_an_overflowing_ring_never_spins(make_machine: MakeHarness) -> None:
    """delay=0 is the unpadded loop that overflows this host's rings (anchors README)."""
    h = make_machine("-accel", RING, "-m", "64M", "--workload", "0:write,delay=0")
    rates = measure(h)
    b = backend(h)
    start = guest.passes(b.vm, 0)
    poll(lambda: guest.passes(b.vm, 0) > start + 2, "progress")
    assert rates[0] > 0
    assert h.qmp("query-status")["status"] == "running"


def test_shutdown_under_load_leaks_nothing(make_machine: MakeHarness) -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    h = make_machine("-accel", RING, "-smp", "2", "-m", "128M")
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 80})
    poll(lambda: h.machine.dirtylimit.throttle_us_per_full[0] > 0, "throttling")
    h.close()
    names = {t.name for t in threading.enumerate()}
    assert not {n for n in names if n.endswith("/KVM") or n in ("kvm-reaper", "dirtyrate-stat")}
    assert set(os.listdir("/proc/self/fd")) <= fds_before


def test_serial_gets_a_character_per_pass(make_machine: MakeHarness, tmp_path: Path) -> None:
    serial = tmp_path / "serial"
    h = make_machine("-accel", RING, "-m", "64M", "-serial", f"file:{serial}")
    b = backend(h)
    poll(lambda: guest.passes(b.vm, 0) >= 3, "three passes")
    text = serial.read_bytes()
    assert set(text) == {ord("#")}
    assert abs(len(text) - guest.passes(b.vm, 0)) <= 1


def test_accel_kvm_ring_checks_as_qemu() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "qmpdl", "-accel", "kvm,dirty-ring-size=131072"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "qmpdl: -accel kvm,dirty-ring-size=131072: KVM dirty ring size 131072 too big "
        "(maximum is 65536).  Please use a smaller value.\n"
        "qmpdl: -accel kvm,dirty-ring-size=131072: failed to initialize kvm: Invalid argument\n"
    )


def test_without_a_ring_the_bitmap_measures(make_machine: MakeHarness) -> None:
    # 7.2 divides by the nominal window (1000 ms), so a measuring thread that a busy host
    # wakes late changes nothing: distinct pages per window, exactly.
    h = make_machine(
        "-accel", "kvm", "-m", "64M", "--workload", "0:write,wss=16M", "--qemu-version", "7.2"
    )
    assert h.error("set-vcpu-dirty-limit", {"dirty-rate": 10}).startswith(
        "dirty page limit feature requires KVM"
    )
    assert h.error("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-ring"}) == (
        "mode dirty-ring is not enabled, use other method instead."
    )
    h.qmp("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-bitmap"})
    poll(lambda: h.qmp("query-dirty-rate")["status"] == "measured", "the measurement")
    # 16 MiB rewritten many times a second: the bitmap counts each page once.
    assert 14 <= h.qmp("query-dirty-rate")["dirty-rate"] <= 16


def test_the_process_exits_cleanly_under_load() -> None:
    from qmpdl.tools.launch import QmpdlProcess
    from qmpdl.tools.rawqmp import RawQMP

    with QmpdlProcess(["-accel", RING, "-smp", "2", "-m", "128M"]) as proc:
        with RawQMP(proc.socket_path) as qmp:
            qmp.negotiate()
            qmp.command(b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 60}}')
            deadline = time.monotonic() + 120
            while b'"current-rate": 0' in qmp.command(b'{"execute": "query-vcpu-dirty-limit"}'):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert proc.terminate() == 0
            assert b'"reason": "host-signal"' in qmp.read_line()
        assert not os.path.exists(proc.socket_path)
        assert "Traceback" not in proc.stderr()
