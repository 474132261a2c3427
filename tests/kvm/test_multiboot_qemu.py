"""The writer as a multiboot kernel under real QEMU 7.2: it boots, prints a pass
character per pass to COM1, and keeps running with dirty logging on, as it does in our
VM.  (Its rate against our VM's, 416 vs 416 MiB/s on this host, is a benchmark
figure: ``python3 -m bench.kvm_bench``.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu.qmp.legacy import QEMUMonitorProtocol

from qmpdl.kvm import guest
from qmpdl.tools.qemu import QemuProcess
from tests.conftest import need_qemu
from tests.kvm.conftest import MakeVm
from tests.kvm.test_rates import harvest_exits

pytestmark = [pytest.mark.qemu, pytest.mark.kvm, pytest.mark.slow]

#: Bounds only (SeaBIOS takes a few seconds under PVM; a pass ~0.5 s on an idle host).
BOOT_TIMEOUT = 120.0
PASSES_TIMEOUT = 120.0


@pytest.fixture
def sync_loop() -> Iterator[None]:
    """qemu.qmp's legacy client runs its asyncio client on the thread's current loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _passes(serial: Path) -> int:
    return guest.serial_passes(serial.read_bytes()) if serial.exists() else 0


def test_multiboot_writer_under_qemu(tmp_path: Path, make_vm: MakeVm, sync_loop: None) -> None:
    need_qemu()
    image = guest.write_multiboot_image(tmp_path / "writer.img")
    serial = tmp_path / "serial.log"
    args = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "pc", "-m", "256"]
    args += ["-serial", f"file:{serial}", "-kernel", str(image)]
    with QemuProcess(args, workdir=tmp_path) as qemu:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while _passes(serial) == 0:
            assert qemu.proc.poll() is None, qemu.stderr()
            assert time.monotonic() < deadline, f"no pass within {BOOT_TIMEOUT} s"
            time.sleep(0.05)
        # Only now turn dirty logging on (during SeaBIOS it livelocks PVM): a dirty
        # limit far above any rate keeps the log on without ever throttling.
        qmp = QEMUMonitorProtocol(qemu.socket_path)
        qmp.connect()
        try:
            qmp.settimeout(60)
            assert qmp.cmd("set-vcpu-dirty-limit", **{"dirty-rate": 100000}) == {}
            # three more passes with the log on: the loop runs on (a count, not a rate)
            before = _passes(serial)
            deadline = time.monotonic() + PASSES_TIMEOUT
            while _passes(serial) < before + 3:
                assert time.monotonic() < deadline, f"fewer than 3 passes in {PASSES_TIMEOUT} s"
                time.sleep(0.05)
            limits = qmp.cmd("query-vcpu-dirty-limit")
        finally:
            qmp.close()
    assert isinstance(limits, list) and limits[0]["limit-rate"] == 100000
    # The same loop and working set in our VM: every page it writes is logged.
    vm = make_vm(guest.MULTIBOOT_WS[1], 1, 4096)
    params = guest.GuestParams(
        guest.Program.WRITE, guest.MULTIBOOT_WS[0], guest.MULTIBOOT_WS[1] - guest.MULTIBOOT_WS[0]
    )
    guest.load(vm, 0, params)
    vm.set_dirty_logging(True)
    harvested = harvest_exits(vm, 3 * params.ws_size // 4096 // vm.vcpus[0].soft_limit + 3)
    assert guest.passes(vm, 0) >= 3
    assert harvested >= 3 * params.ws_size // 4096
