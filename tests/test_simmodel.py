"""The simulated vCPU model: dirty-ring semantics, harvests, penalties, kicks."""

from __future__ import annotations

import pytest

from qmpdl.backend.simlayout import PAGES_PER_MIB
from qmpdl.backend.simmodel import SimModel
from qmpdl.workload import Workload

MiB = 1 << 20
RING = 4096
SOFT_FULL = RING - 64


def model(*workloads: Workload, ram: int = 512 * MiB, interruptible: bool = True) -> SimModel:
    m = SimModel(list(workloads), ram, RING, now=0.0, kick_interrupts_sleep=interruptible)
    m.resume(0.0)
    return m


def test_nothing_is_counted_without_dirty_logging() -> None:
    m = model(Workload(rate=100))
    m.flush(1.0)
    assert int(m.dirty[0]) == 0
    assert m.written[0] == pytest.approx(100 * PAGES_PER_MIB)


def test_every_new_page_takes_one_entry_and_full_rings_are_harvested() -> None:
    m = model(Workload(rate=100))  # 25600 pages/s over 99 MiB
    m.set_logging(0.0, True)
    m.advance(0.99)
    # 25344 pages = 6 full rings of 4032 entries, each harvested at its ring-full exit
    assert int(m.dirty[0]) == 6 * SOFT_FULL
    assert int(m.ring_full_exits[0]) == 6
    m.flush(0.99)
    assert int(m.dirty[0]) == 25344
    # At 1.0 s the reaper harvests every ring.
    m.advance(1.0)
    assert int(m.dirty[0]) == 25600


def test_a_page_rewritten_before_its_harvest_counts_once() -> None:
    # 4 MiB working set (1024 pages) rewritten 25 times a second: the ring never fills;
    # the reaper harvests once a second, so each page counts once per second.
    m = model(Workload(rate=100, wss=4 * MiB))
    m.set_logging(0.0, True)
    m.advance(3.0)
    assert int(m.ring_full_exits[0]) == 0
    m.flush(3.0)
    assert int(m.dirty[0]) == 3 * 1024


def test_ring_full_harvests_every_ring_outside_the_limit() -> None:
    big, small = Workload(rate=400), Workload(rate=100, wss=8 * MiB)
    m = model(big, small)
    m.set_logging(0.0, True)
    m.advance(0.999)
    # vCPU 0 fills its ring about every 39 ms; each time vCPU 1's 2048 pages are
    # harvested too, so vCPU 1 is credited with everything it wrote, page by page.
    m.flush(0.999)
    assert int(m.dirty[1]) == pytest.approx(100 * PAGES_PER_MIB * 0.999, abs=2)


def test_in_service_each_vcpu_harvests_only_its_own_ring() -> None:
    big, small = Workload(rate=400), Workload(rate=100, wss=8 * MiB)
    m = model(big, small)
    m.set_logging(0.0, True)
    m.set_throttle(0.0, True, [0, 0])
    m.advance(0.999)
    m.flush(0.999)
    # vCPU 1's working set is only harvested by the flush: each page counts once.
    assert int(m.dirty[1]) == 2048


def test_penalty_sleeps_at_each_ring_full() -> None:
    m = model(Workload(rate=450))
    m.set_logging(0.0, True)
    m.set_throttle(0.0, True, [100_000])
    m.advance(10.0)
    fill = SOFT_FULL / (450 * PAGES_PER_MIB)
    cycles = 10.0 / (fill + 0.1)
    assert int(m.ring_full_exits[0]) == int(cycles) or int(m.ring_full_exits[0]) == int(cycles) + 1
    assert int(m.penalty_sleeps[0]) == int(m.ring_full_exits[0])
    # A vCPU the limit does not apply to runs free.
    m.set_throttle(10.0, True, [0])
    before = int(m.ring_full_exits[0])
    m.advance(11.0)
    assert int(m.ring_full_exits[0]) - before in (int(1 / fill), int(1 / fill) + 1)


@pytest.mark.parametrize("interruptible", [True, False])
def test_a_kick_cuts_a_sleep_short_only_before_82(interruptible: bool) -> None:
    m = model(Workload(rate=450), interruptible=interruptible)
    m.set_logging(0.0, True)
    m.set_throttle(0.0, True, [500_000])
    fill = SOFT_FULL / (450 * PAGES_PER_MIB)
    m.advance(fill + 0.1)  # asleep until fill + 0.5
    assert m.asleep()[0]
    done = m.kick_completion(fill + 0.1)
    assert done == pytest.approx(fill + 0.1 if interruptible else fill + 0.5)
    m.flush(done)
    assert bool(m.asleep()[0]) is False
    assert m.sleeps_cut_short == (1 if interruptible else 0)


def test_a_paused_guest_dirties_nothing_and_readers_never_sleep() -> None:
    m = model(Workload(rate=450), Workload(kind="read", rate=300), Workload(kind="idle"))
    m.set_logging(0.0, True)
    m.set_throttle(0.0, True, [200_000, 200_000, 200_000])
    m.advance(2.0)
    m.pause(2.0)
    written, read = m.written.copy(), m.read.copy()
    m.advance(5.0)
    assert (m.written == written).all() and (m.read == read).all()
    m.resume(5.0)
    m.advance(6.0)
    assert m.read[1] == pytest.approx(300 * PAGES_PER_MIB * 3.0)
    assert int(m.ring_full_exits[1]) == int(m.ring_full_exits[2]) == 0
    assert m.written[2] == 0


def test_bitmap_counts_distinct_pages_per_sync() -> None:
    m = SimModel(
        [Workload(rate=100, wss=16 * MiB)], 256 * MiB, 0, now=0.0, kick_interrupts_sleep=True
    )
    m.resume(0.0)
    m.set_logging(0.0, True)
    m.sync_bitmap(0.0)
    assert m.sync_bitmap(0.5) == 4096  # 12800 pages written over a 4096-page set
    assert m.sync_bitmap(0.55) == 1280


def test_page_digests_change_exactly_when_the_guest_writes_the_page() -> None:
    m = model(Workload(rate=1, wss=4 * MiB))  # 256 pages/s from page 256
    pages = [256, 256 + 100, 256 + 1000, 10_000]
    before = m.page_digests(pages)
    m.advance(0.5)  # pages 256..383 written
    after = m.page_digests(pages)
    assert [a != b for a, b in zip(before, after, strict=True)] == [True, True, False, False]


def test_working_sets_must_fit_in_ram() -> None:
    with pytest.raises(ValueError, match="working sets need"):
        SimModel([Workload(wss=200 * MiB)], 128 * MiB, RING, now=0.0, kick_interrupts_sleep=True)
