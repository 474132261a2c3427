"""The writer as a multiboot kernel under real QEMU 7.2: it boots, prints a pass
character per pass to COM1, and with dirty logging on runs at about our VM's rate."""

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
from tests.kvm.test_rates import measure_writer

pytestmark = [pytest.mark.qemu, pytest.mark.kvm, pytest.mark.slow]

BOOT_TIMEOUT = 60.0  # SeaBIOS takes a few seconds under PVM
WINDOW = 3.0


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
            qmp.settimeout(10)
            assert qmp.cmd("set-vcpu-dirty-limit", **{"dirty-rate": 100000}) == {}
            time.sleep(0.5)
            before, start = _passes(serial), time.monotonic()
            time.sleep(WINDOW)
            after, elapsed = _passes(serial), time.monotonic() - start
            limits = qmp.cmd("query-vcpu-dirty-limit")
        finally:
            qmp.close()
    ws_mib = (guest.MULTIBOOT_WS[1] - guest.MULTIBOOT_WS[0]) / (1 << 20)
    qemu_rate = (after - before) * ws_mib / elapsed
    assert isinstance(limits, list)
    # The same loop and working set in our VM.
    vm = make_vm(guest.MULTIBOOT_WS[1], 1, 4096)
    params = guest.GuestParams(
        guest.Program.WRITE, guest.MULTIBOOT_WS[0], guest.MULTIBOOT_WS[1] - guest.MULTIBOOT_WS[0]
    )
    guest.load(vm, 0, params)
    ours, _ = measure_writer(vm, 1.5)
    print(
        f"QEMU: {after - before} passes in {elapsed:.1f} s = {qemu_rate:.0f} MiB/s "
        f"(its current-rate {limits[0]['current-rate']}); our VM: {ours:.0f} MiB/s"
    )
    assert after - before >= 3
    assert 0.6 < qemu_rate / ours < 1.6
