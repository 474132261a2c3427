"""The writer in our VM: every page it writes is harvested from the dirty ring, and larger
delays lower its rate.

Nothing here depends on how fast or how busy the host is.  The first test counts (pages
harvested against pages written, from the guest's pass counter); the second compares
rates at different delays in interleaved slices of the same run, each against the CPU
time the vCPU thread (this thread: ``KVM_RUN`` runs here) was given, not the wall
clock.  Measured on this host (PVM): pages per CPU second stay within a few per cent
whether the host is idle or ``stress-ng --cpu 2`` halves the thread's share of the wall
clock (a wall-clock rate then halves, and the fastest of six slices at one delay once
came out below the next delay's: a flake).  The absolute rate of the default delay
against QEMU's guest is a benchmark figure: ``python3 -m bench.kvm_bench``.
"""

from __future__ import annotations

import statistics
import time

import pytest

from qmpdl.kvm import guest
from qmpdl.kvm.vm import KvmVm
from tests.kvm.conftest import MakeVm, load_writer, ring_full_exit

pytestmark = pytest.mark.kvm

MiB = 1 << 20


def harvest_exits(vm: KvmVm, exits: int) -> int:
    """Run vCPU 0 (a loaded writer, dirty logging on) for ``exits`` ring-full exits,
    harvesting each time; returns the entries harvested."""
    vcpu = vm.vcpus[0]
    entries = 0
    for _ in range(exits):
        ring_full_exit(vcpu, 60.0)  # (a bound only: a busy host may take its time)
        entries += vcpu.harvest(offsets=False).count
        vm.reset_dirty_rings()
        assert not vcpu.ring_stuck
    return entries


def start_writer(make_vm: MakeVm) -> KvmVm:
    vm = make_vm(24 << 20, 1, 4096)
    load_writer(vm)  # 23 MiB working set: ~6 ring fills per pass
    vm.memory[guest.WS_BASE :] = 0  # fault the host pages in first
    vm.set_dirty_logging(True)
    return vm


def test_every_page_written_is_harvested(make_vm: MakeVm) -> None:
    vm = start_writer(make_vm)
    harvest_exits(vm, 2)  # the loop is running
    first_pass = guest.passes(vm, 0)
    harvested = harvest_exits(vm, 60)  # ~10 passes
    written = (guest.passes(vm, 0) - first_pass) * guest.working_set_size(vm, 0) // 4096
    assert written >= 8 * guest.working_set_size(vm, 0) // 4096
    # whole passes only: the pages of the pass in progress are harvested, not counted
    print(f"{harvested} pages harvested, {written} written in whole passes")
    assert written <= harvested < written + 2 * guest.working_set_size(vm, 0) // 4096


def test_larger_delays_lower_the_rate(make_vm: MakeVm) -> None:
    vm = start_writer(make_vm)
    delays = (guest.DEFAULT_DELAY, 16, 40)
    slices: dict[int, list[float]] = {d: [] for d in delays}
    for _ in range(6):
        for delay in delays:
            guest.set_delay(vm, 0, delay)  # the running loop re-reads it every page
            harvest_exits(vm, 1)  # pages written at the old delay go with this exit
            start = time.thread_time()
            entries = harvest_exits(vm, 2)
            slices[delay].append(entries * 4096 / MiB / (time.thread_time() - start))
    rates = [statistics.median(slices[d]) for d in delays]
    print("MiB per CPU second at delays 6, 16, 40: " + ", ".join(f"{r:.0f}" for r in rates))
    # ~0.5 us per emulated instruction, 2 * delay + 6 instructions per page: the rate
    # roughly halves from one delay to the next (measured: 1.9x and 2.1x)
    assert rates[0] > rates[1] * 1.4 > rates[2] * 1.4 * 1.4
