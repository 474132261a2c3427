"""KvmVm / KvmVcpu: lifecycle without leaks, kicks, registers, exits, bitmap mode."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from qmpdl.kvm import guest, uapi
from qmpdl.kvm.vm import KvmVm, dirty_ring_max_entries, kvm_available
from qmpdl.workload import Workload
from tests.kvm.conftest import MakeVm, kick, load_writer, need_kvm_ring, run_exit, set_limit

pytestmark = pytest.mark.kvm


def _fds() -> dict[str, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd, gone by now
            fds[name] = os.readlink(f"/proc/self/fd/{name}")
    return fds


def _kvm_mappings() -> list[str]:
    return [line for line in Path("/proc/self/maps").read_text().splitlines() if "kvm" in line]


def _mapped(address: int) -> bool:
    for line in Path("/proc/self/maps").read_text().splitlines():
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= address < end:
            return True
    return False


def test_host_capabilities() -> None:
    need_kvm_ring()
    assert kvm_available()
    entries = dirty_ring_max_entries()
    assert entries >= 4096 and entries & (entries - 1) == 0


def test_close_releases_every_fd_and_mapping() -> None:
    need_kvm_ring()
    fds_before, maps_before = _fds(), _kvm_mappings()
    vm = KvmVm(16 << 20, 2, 4096)
    ram = vm.memory.ctypes.data
    assert vm.ring_acq_rel or dirty_ring_max_entries()
    assert len(_fds()) == len(fds_before) + 3  # VM + 2 vCPUs (/dev/kvm already closed)
    assert len(_kvm_mappings()) > len(maps_before)  # kvm_run pages and rings
    load_writer(vm, 0, pages=8, pass_limit=1)
    vm.set_dirty_logging(True)
    assert run_exit(vm.vcpus[0]) == uapi.KVM_EXIT_HLT
    result = vm.vcpus[0].harvest()
    vm.close()
    assert _fds() == fds_before
    assert _kvm_mappings() == maps_before
    assert not _mapped(ram)
    assert result.count == 9  # harvested data outlives the VM
    vm.close()  # idempotent


def test_memory_view_held_by_caller_is_unmapped_when_dropped() -> None:
    need_kvm_ring()
    with KvmVm(4 << 20, 1, 0) as vm:
        view = vm.memory[guest.WS_BASE :]
        ram = vm.memory.ctypes.data
    assert _mapped(ram)  # the caller's view still uses it
    view[0] = 1
    del view
    assert not _mapped(ram)


@pytest.mark.parametrize(
    ("ram", "vcpus", "ring"),
    [(4 << 20, 1, 1000), (4 << 20, 1, 128), (4 << 20, 1, 1 << 20), (4097, 1, 0), (4 << 20, 0, 0)],
)
def test_bad_arguments_leak_nothing(ram: int, vcpus: int, ring: int) -> None:
    need_kvm_ring()
    before = _fds()
    with pytest.raises(ValueError):
        KvmVm(ram, vcpus, ring)
    assert _fds() == before


def test_flat_protected_mode_start(make_vm: MakeVm) -> None:
    vm = make_vm(4 << 20, 2, 0)
    guest.load(vm, 1, guest.GuestParams(guest.Program.READ, guest.WS_BASE, 4096))
    vcpu = vm.vcpus[1]
    sregs, regs = vcpu.get_sregs(), vcpu.get_regs()
    assert sregs.cr0 & 1 and not sregs.cr0 & 0x80000000
    assert (sregs.cs.base, sregs.cs.limit, sregs.cs.db, sregs.cs.l) == (0, 0xFFFFFFFF, 1, 0)
    assert regs.rip == guest.Program.READ.value
    assert regs.rbx == guest.block_address(1)
    assert not regs.rflags & 0x200  # interrupts off


def test_idle_halts_and_counts_resumptions(make_vm: MakeVm) -> None:
    vm = make_vm(4 << 20, 1, 4096)
    guest.load(vm, 0, guest.GuestParams(guest.Program.IDLE))
    vcpu = vm.vcpus[0]
    for resumed in range(3):
        assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
        assert guest.passes(vm, 0) == resumed
    assert vcpu.get_regs().rip == guest.Program.IDLE.value + 1  # just past the hlt


def test_pass_output_is_an_io_exit_and_the_limit_halts(make_vm: MakeVm) -> None:
    vm = make_vm(4 << 20, 1, 4096)
    load_writer(vm, 0, pages=4, pass_limit=2, port=guest.COM1)
    vcpu = vm.vcpus[0]
    for passes in (1, 2):
        assert run_exit(vcpu) == uapi.KVM_EXIT_IO
        io = vcpu.kvm_run.exit.io
        assert (io.direction, io.port, io.size, io.count) == (uapi.KVM_EXIT_IO_OUT, 0x3F8, 1, 1)
        assert vcpu.io_data() == guest.PASS_CHAR
        assert guest.passes(vm, 0) == passes
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT  # stays halted at the limit
    set_limit(vm, 0, 3)  # raised: the next resumption runs one more pass
    assert run_exit(vcpu) == uapi.KVM_EXIT_IO
    assert guest.passes(vm, 0) == 3


def test_kick_interrupts_a_running_vcpu(make_vm: MakeVm) -> None:
    vm = make_vm(8 << 20, 1, 4096)
    load_writer(vm)  # dirty logging off: runs without exiting
    vcpu = vm.vcpus[0]
    timer = threading.Timer(0.2, kick, (vcpu, threading.get_ident()))
    timer.start()
    with pytest.raises(InterruptedError):
        vcpu.run()
    timer.join()
    assert vcpu.last_exit == uapi.KVM_EXIT_INTR
    assert guest.passes(vm, 0) > 0
    assert vcpu.immediate_exit
    with pytest.raises(InterruptedError):  # still set: returns at once
        vcpu.run()
    vcpu.immediate_exit = False
    assert not vcpu.immediate_exit


def test_run_releases_the_gil(make_vm: MakeVm) -> None:
    vm = make_vm(8 << 20, 1, 4096)
    load_writer(vm)
    vcpu = vm.vcpus[0]
    spins = 0
    started = threading.Event()

    def runner() -> None:
        started.set()
        with contextlib.suppress(InterruptedError):
            vcpu.run()

    thread = threading.Thread(target=runner)
    thread.start()
    started.wait()
    deadline = threading.Event()
    threading.Timer(0.2, deadline.set).start()
    while not deadline.is_set():
        spins += 1
    kick(vcpu, thread.ident or 0)
    thread.join(5)
    assert not thread.is_alive()
    assert spins > 10_000


def test_bitmap_mode_counts(make_vm: MakeVm) -> None:
    vm = make_vm(4 << 20, 1, 0)
    pages = 50
    load_writer(vm, 0, pages=pages, pass_limit=1)
    vcpu = vm.vcpus[0]
    vm.set_dirty_logging(True)
    assert vm.get_dirty_log() == 0
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    bitmap = vm.get_dirty_bitmap()
    written = {guest.block_address(0) // 4096, *range(guest.WS_BASE // 4096, 256 + pages)}
    assert {i for i in range(len(bitmap) * 64) if int(bitmap[i // 64]) >> (i % 64) & 1} == written
    assert vm.get_dirty_log() == 0  # cleared by the previous call
    set_limit(vm, 0, 3)  # two more passes over the same pages before the next call
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    assert guest.passes(vm, 0) == 3
    assert vm.get_dirty_log() == pages + 1  # a page counts once per call
    with pytest.raises(ValueError):
        make_vm(4 << 20, 1, 4096).get_dirty_log()


def test_load_programs_from_workloads(make_vm: MakeVm) -> None:
    vm = make_vm(64 << 20, 4, 4096)
    workloads = [
        Workload(kind="write"),
        Workload(kind="read", rate=100, wss=1 << 20),
        Workload(kind="idle"),
        Workload(kind="write", rate=200, wss=5000),
    ]
    loaded = guest.load_programs(vm, workloads)
    share = (64 << 20) - guest.WS_BASE
    assert [p.program for p in loaded] == [
        guest.Program.WRITE, guest.Program.READ, guest.Program.IDLE, guest.Program.WRITE,
    ]  # fmt: skip
    assert loaded[0].ws_base == guest.WS_BASE and loaded[0].ws_size == share // 4 // 4096 * 4096
    assert loaded[1].ws_base == loaded[0].ws_base + loaded[0].ws_size
    assert loaded[3].ws_base == loaded[1].ws_base + (1 << 20)
    assert [p.wss_pages for p in loaded] == [loaded[0].ws_size // 4096, 256, 0, 2]
    assert [p.delay for p in loaded] == [guest.DEFAULT_DELAY, 36, guest.DEFAULT_DELAY, 16]
    for index, params in enumerate(loaded):
        assert vm.vcpus[index].get_regs().rip == params.program.value
        if params.program is not guest.Program.IDLE:
            assert guest.working_set_size(vm, index) == params.ws_size
    with pytest.raises(ValueError):
        guest.load_programs(vm, [Workload(kind="write", wss=64 << 20)] * 4)
