"""The dirty ring through KvmVcpu.harvest: exact counts and offsets, reset semantics,
the soft-full point, the PVM overflow (detected, and recovered with resync), cost."""

from __future__ import annotations

import threading
import time

import numpy as np
import numpy.typing as npt
import pytest

from qmpdl.kvm import guest, uapi
from qmpdl.kvm.vm import STUCK_RING_FULL_EXITS, host_is_pvm
from tests.kvm.conftest import (
    MakeVm,
    Watchdog,
    kick,
    load_writer,
    ring_full_exit,
    run_exit,
    set_limit,
)

pytestmark = pytest.mark.kvm

WS_GFN = guest.WS_BASE // 4096


def test_harvest_counts_exactly_the_written_pages(make_vm: MakeVm) -> None:
    vm = make_vm(4 << 20, 1, 4096)
    pages = 100
    load_writer(vm, 0, pages=pages, pass_limit=1)
    vcpu = vm.vcpus[0]
    vm.set_dirty_logging(True)
    assert vcpu.harvest().count == 0
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    assert vcpu.dirty_pending() == pages + 1
    result = vcpu.harvest()
    # The working set in the order written, then the pass counter's page.
    block_gfn = guest.block_address(0) // 4096
    assert result.count == pages + 1 and result.skipped == 0
    assert result.offsets.tolist() == [*range(WS_GFN, WS_GFN + pages), block_gfn]
    assert vcpu.harvested == pages + 1 and vcpu.dirty_pending() == 0
    assert vcpu.harvest().count == 0  # nothing new
    assert vm.reset_dirty_rings() == pages + 1


def test_rewrites_before_and_after_reset(make_vm: MakeVm) -> None:
    """Hardware KVM logs a page once per reset; PVM emulates every write and pushes an
    entry for each, dirty or not (a host deviation the backend must know)."""
    vm = make_vm(4 << 20, 1, 4096)
    pages = 64
    load_writer(vm, 0, pages=pages, pass_limit=1)
    vcpu = vm.vcpus[0]
    vm.set_dirty_logging(True)
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    assert vcpu.harvest(offsets=False).count == pages + 1
    set_limit(vm, 0, 2)  # the same pages again, harvested but not reset
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    rewritten = vcpu.harvest(offsets=False).count
    assert rewritten == (pages + 1 if host_is_pvm() else 0)
    assert vm.reset_dirty_rings() == pages + 1 + rewritten
    set_limit(vm, 0, 3)  # after the reset they count again
    assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    assert vcpu.harvest(offsets=False).count == pages + 1


def test_each_vcpu_has_its_ring_and_the_reader_dirties_only_its_counter(
    make_vm: MakeVm,
) -> None:
    vm = make_vm(8 << 20, 2, 1024)
    (base0, _), (base1, _) = guest.split_working_sets(vm.ram_size, 2)
    guest.load(vm, 0, guest.GuestParams(guest.Program.WRITE, base0, 32 * 4096, pass_limit=1))
    guest.load(vm, 1, guest.GuestParams(guest.Program.READ, base1, 32 * 4096, pass_limit=3))
    vm.set_dirty_logging(True)
    for vcpu in vm.vcpus:
        assert run_exit(vcpu) == uapi.KVM_EXIT_HLT
    writer, reader = (vcpu.harvest() for vcpu in vm.vcpus)
    assert set(writer.offsets.tolist()) == {
        *range(base0 // 4096, base0 // 4096 + 32),
        guest.block_address(0) // 4096,
    }
    assert guest.passes(vm, 1) == 3
    assert set(reader.offsets.tolist()) == {guest.block_address(1) // 4096}
    assert reader.count == (3 if host_is_pvm() else 1)


def test_ring_full_exit_at_the_soft_limit(make_vm: MakeVm) -> None:
    """One page write per emulation batch (>1024 instructions apart): the exit comes
    when exactly size - 64 entries are used."""
    vm = make_vm(4 << 20, 1, 256)
    load_writer(vm, 0, pages=256, delay=520)
    vcpu = vm.vcpus[0]
    assert vcpu.soft_limit == 256 - 64
    vm.set_dirty_logging(True)
    for _ in range(3):
        ring_full_exit(vcpu)
        assert vcpu.dirty_pending() == vcpu.soft_limit
        assert vcpu.harvest(offsets=False).count == vcpu.soft_limit
        vm.reset_dirty_rings()


def test_default_delay_stays_inside_the_reserve(make_vm: MakeVm) -> None:
    vm = make_vm(32 << 20, 1, 4096)
    load_writer(vm)
    vcpu = vm.vcpus[0]
    vm.set_dirty_logging(True)
    counts = []
    for _ in range(8):
        ring_full_exit(vcpu)
        counts.append(vcpu.harvest(offsets=False).count)
        vm.reset_dirty_rings()
    print(f"entries per ring-full at delay {guest.DEFAULT_DELAY}: {counts}")
    assert all(vcpu.soft_limit <= c < 4096 for c in counts), counts
    assert vcpu.harvested == sum(counts)


def _overflow_run(make_vm: MakeVm, resync: bool, exits: int) -> tuple[int, int, list[int]]:
    vm = make_vm(32 << 20, 1, 4096)
    load_writer(vm, delay=0)  # 5 instructions per page: no padding
    vcpu = vm.vcpus[0]
    vm.set_dirty_logging(True)
    counts: list[int] = []
    skipped = 0
    for _ in range(exits):
        ring_full_exit(vcpu)
        result = vcpu.harvest(offsets=False, resync=resync)
        counts.append(result.count)
        skipped += result.skipped
        vm.reset_dirty_rings()
        if vcpu.ring_stuck:
            break
    return guest.passes(vm, 0), skipped, counts


def test_ring_overflow_is_detected(make_vm: MakeVm) -> None:
    # PVM's overflow needs an emulation batch that crosses the soft limit with more pages
    # than the reserve: usually within a few rings, but a busy host that cuts batches
    # short once went 40 rings without one - so up to 400 (a count, ~15 s at most).
    exits = 400
    passes, _, counts = _overflow_run(make_vm, resync=False, exits=exits)
    print(f"unpadded writer, {len(counts)} ring-full exits, the last: {counts[-8:]}")
    if host_is_pvm():
        assert counts[-STUCK_RING_FULL_EXITS:] == [0] * STUCK_RING_FULL_EXITS
        assert len(counts) < exits
    else:
        assert 0 not in counts and passes > 0


def test_ring_overflow_is_recovered_by_resync(make_vm: MakeVm) -> None:
    passes, skipped, counts = _overflow_run(make_vm, resync=True, exits=40)
    print(f"unpadded writer with resync: {passes} passes, {skipped} entries skipped")
    assert len(counts) == 40 and 0 not in counts
    assert passes >= 4  # 40 rings of 16 MiB over a 31 MiB working set
    if not host_is_pvm():
        assert skipped == 0


def test_harvest_of_a_full_4096_ring(make_vm: MakeVm) -> None:
    vm = make_vm(32 << 20, 1, 4096)
    load_writer(vm)
    vcpu = vm.vcpus[0]
    vm.set_dirty_logging(True)
    costs: dict[bool, list[float]] = {True: [], False: []}
    with Watchdog(vcpu, 120.0):  # one for the loop (a bound only)
        for i in range(12):
            assert vcpu.run() == uapi.KVM_EXIT_DIRTY_RING_FULL
            start = time.perf_counter()
            result = vcpu.harvest(offsets=bool(i % 2))
            costs[bool(i % 2)].append((time.perf_counter() - start) * 1e6)
            assert result.count >= vcpu.soft_limit
            if result.offsets.size:
                assert result.offsets.dtype == np.uint64
                assert np.all(np.diff(result.offsets.astype(np.int64)) != 0)
            vm.reset_dirty_rings()
    # The cost is measured by bench/kvm_harvest.py, not asserted here.
    assert len(costs[True]) == len(costs[False]) == 6


def test_harvest_while_the_vcpu_runs_loses_and_repeats_nothing(make_vm: MakeVm) -> None:
    """QEMU's flush harvests rings of running vCPUs: entries collected concurrently with
    KVM publishing them, put back in fetch order, are exactly the pages in the order the
    writer wrote them (its pass-counter page aside)."""
    vm = make_vm(36 << 20, 1, 4096)
    params = load_writer(vm, 0, pages=8192)  # more pages than the ring holds
    vcpu = vm.vcpus[0]
    block_gfn = guest.block_address(0) // 4096
    lock = threading.Lock()
    harvests: list[tuple[int, npt.NDArray[np.uint64]]] = []
    stop = threading.Event()

    def harvest() -> None:
        with lock:
            fetch = vcpu.harvested
            result = vcpu.harvest()
            if result.count:
                harvests.append((fetch, result.offsets))
        vm.reset_dirty_rings()

    def runner() -> None:
        while not stop.is_set():
            try:
                reason = vcpu.run()
            except InterruptedError:
                continue
            assert reason == uapi.KVM_EXIT_DIRTY_RING_FULL
            harvest()

    vm.set_dirty_logging(True)
    thread = threading.Thread(target=runner)
    thread.start()
    # Until the writer went round its 8192 pages twice (a count, not a time: a busy host
    # gives the vCPU thread less CPU); the deadline only bounds the test.
    deadline = time.monotonic() + 120
    while True:
        with lock:
            entries, count = sum(offsets.size for _, offsets in harvests), len(harvests)
        if entries > 2 * 8192 and count > 20:
            break
        assert time.monotonic() < deadline, f"only {entries} entries in {count} harvests"
        harvest()  # the vCPU is (mostly) inside KVM_RUN meanwhile
        time.sleep(0.002)
    stop.set()
    while thread.is_alive():
        kick(vcpu, thread.ident or 0)
        thread.join(0.05)
    vcpu.immediate_exit = False
    harvest()
    harvests.sort(key=lambda item: item[0])
    fetches = [fetch for fetch, _ in harvests]
    sizes = [offsets.size for _, offsets in harvests]
    assert fetches == [sum(sizes[:i]) for i in range(len(sizes))]  # contiguous
    sequence = np.concatenate([offsets for _, offsets in harvests])
    pages = sequence[sequence != block_gfn].astype(np.int64)
    first_gfn = params.ws_base // 4096
    expected = first_gfn + (pages[0] - first_gfn + np.arange(pages.size)) % 8192
    assert np.array_equal(pages, expected)
    assert len(harvests) > 20 and pages.size > 8192
    print(f"{len(harvests)} harvests, {sequence.size} entries, in order")
