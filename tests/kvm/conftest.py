"""Fixtures for the KVM layer: skip (or fail under ``QMPDL_REQUIRE_KVM=1``) without
``/dev/kvm`` and its dirty ring; VMs closed after each test; a watchdog so that no
``KVM_RUN`` can hang a test."""

from __future__ import annotations

import os
import signal
import threading
import types
from collections.abc import Callable, Iterator

import pytest

from qmpdl.kvm import guest, uapi
from qmpdl.kvm.vm import KvmVcpu, KvmVm, dirty_ring_max_entries
from tests.conftest import need_kvm

KICK_SIGNAL = signal.SIGUSR1


def need_kvm_ring() -> None:
    """Skip (fail under QMPDL_REQUIRE_KVM=1) unless /dev/kvm offers the dirty ring."""
    need_kvm()
    if dirty_ring_max_entries() == 0:
        message = "KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)"
        if os.environ.get("QMPDL_REQUIRE_KVM", "") not in ("", "0"):
            pytest.fail(f"{message} (QMPDL_REQUIRE_KVM=1)")
        pytest.skip(message)


MakeVm = Callable[..., KvmVm]


@pytest.fixture
def make_vm() -> Iterator[MakeVm]:
    """``make_vm(ram_size, nr_vcpus, ring_entries)``; every VM is closed afterwards."""
    need_kvm_ring()
    vms: list[KvmVm] = []

    def make(ram_size: int = 16 << 20, nr_vcpus: int = 1, ring_entries: int = 4096) -> KvmVm:
        vm = KvmVm(ram_size, nr_vcpus, ring_entries)
        vms.append(vm)
        return vm

    yield make
    for vm in vms:
        vm.close()


def _ignore(signum: int, frame: types.FrameType | None) -> None:
    """The kick's only job is to interrupt ``KVM_RUN`` with EINTR."""


@pytest.fixture(autouse=True)
def kick_handler() -> Iterator[None]:
    """A Python handler for the kick signal, so it interrupts instead of killing."""
    previous = signal.signal(KICK_SIGNAL, _ignore)
    yield
    signal.signal(KICK_SIGNAL, previous)


def kick(vcpu: KvmVcpu, thread_id: int) -> None:
    """Force ``vcpu`` (run by thread ``thread_id``) out of ``KVM_RUN``: what a backend does."""
    vcpu.immediate_exit = True
    signal.pthread_kill(thread_id, KICK_SIGNAL)


class Watchdog:
    """Kicks the calling thread's vCPU if it is still running after ``seconds``."""

    def __init__(self, vcpu: KvmVcpu, seconds: float) -> None:
        self.vcpu = vcpu
        self.fired = False
        self._thread = threading.get_ident()
        self._timer = threading.Timer(seconds, self._fire)

    def _fire(self) -> None:
        self.fired = True
        kick(self.vcpu, self._thread)

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._timer.join()
        self.vcpu.immediate_exit = False


def run_exit(vcpu: KvmVcpu, timeout: float = 10.0) -> int:
    """One ``KVM_RUN``; fails the test if the guest does not exit within ``timeout``."""
    with Watchdog(vcpu, timeout) as dog:
        try:
            return vcpu.run()
        except InterruptedError:
            if dog.fired:
                pytest.fail(f"vCPU {vcpu.index} did not exit within {timeout} s")
            raise


def load_writer(vm: KvmVm, index: int = 0, pages: int = 0, **kwargs: int) -> guest.GuestParams:
    """Load the writer on vCPU ``index`` over ``pages`` pages (0: its share of RAM)."""
    base, size = guest.split_working_sets(vm.ram_size, len(vm.vcpus))[index]
    params = guest.GuestParams(guest.Program.WRITE, base, pages * 4096 or size, **kwargs)
    guest.load(vm, index, params)
    return params


def set_limit(vm: KvmVm, index: int, limit: int) -> None:
    """Write a new pass limit into vCPU ``index``'s parameter block."""
    at = guest.block_address(index) + guest.OFF_LIMIT
    vm.memory[at : at + 4] = memoryview(limit.to_bytes(4, "little"))


def ring_full_exit(vcpu: KvmVcpu, timeout: float = 10.0) -> None:
    """Run until the next exit and require it to be the ring-full exit."""
    reason = run_exit(vcpu, timeout)
    assert reason == uapi.KVM_EXIT_DIRTY_RING_FULL, uapi.exit_reason_name(reason)
