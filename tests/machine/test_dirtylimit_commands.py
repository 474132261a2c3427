"""set/cancel/query-vcpu-dirty-limit: QEMU's checks, texts, order and state (spec 2.1-2.3)."""

from __future__ import annotations

import threading
import time

import pytest

from qmpdl.clock import VirtualClock
from qmpdl.qjson import encode_message
from tests.machine.conftest import MakeHarness

RING = "sim,dirty-ring-size=4096"
NO_RING_TEXT = (
    "dirty page limit feature requires KVM with accelerator property 'dirty-ring-size' set'"
)
U64_MAX = (1 << 64) - 1


@pytest.mark.parametrize("version", ["7.2", "10.1"])
def test_without_a_dirty_ring(make_machine: MakeHarness, version: str) -> None:
    h = make_machine("-accel", "sim", "--qemu-version", version)
    assert h.error("set-vcpu-dirty-limit", {"dirty-rate": 100}) == NO_RING_TEXT
    # Even a bad index: the ring check comes first.
    assert h.error("set-vcpu-dirty-limit", {"dirty-rate": 100, "cpu-index": 99}) == NO_RING_TEXT
    # cancel succeeds silently without checking anything else.
    assert h.qmp("cancel-vcpu-dirty-limit", {"cpu-index": 99}) == {}
    assert h.qmp("query-vcpu-dirty-limit") == []


def test_cpu_index_is_checked_against_maxcpus(make_machine: MakeHarness) -> None:
    h = make_machine("-smp", "2,maxcpus=4", "-accel", RING)
    # QEMU checks the index as a C int: (1 << 40) + 4 is 4.
    for bad in (4, -1, (1 << 40) + 4):
        assert h.error("set-vcpu-dirty-limit", {"dirty-rate": 1, "cpu-index": bad}) == (
            "incorrect cpu index specified"
        )
        # ... also by cancel, even while the limit is not in service.
        assert h.error("cancel-vcpu-dirty-limit", {"cpu-index": bad}) == (
            "incorrect cpu index specified"
        )
    # An absent hot-pluggable vCPU is a valid index.
    assert h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 30, "cpu-index": 3}) == {}
    assert h.qmp("query-vcpu-dirty-limit") == [
        {"limit-rate": 30, "current-rate": 0, "cpu-index": 3}
    ]
    # ... and so is 2^32 + 3, which a C int makes 3 (as QEMU 7.2 does: tests/differential).
    assert h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 40, "cpu-index": (1 << 32) + 3}) == {}
    assert h.qmp("query-vcpu-dirty-limit") == [
        {"limit-rate": 40, "current-rate": 0, "cpu-index": 3}
    ]


def test_set_all_covers_absent_vcpus_and_later_writes_win(make_machine: MakeHarness) -> None:
    h = make_machine("-smp", "2,maxcpus=4", "-accel", RING)
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 200})
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 50, "cpu-index": 1})
    rows = h.qmp("query-vcpu-dirty-limit")
    assert [(r["cpu-index"], r["limit-rate"]) for r in rows] == [
        (0, 200),
        (1, 50),
        (2, 200),
        (3, 200),
    ]
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 70})
    rows = h.qmp("query-vcpu-dirty-limit")
    assert {r["limit-rate"] for r in rows} == {70}


def test_negative_rate_is_cast_to_uint64(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING)
    assert h.qmp("set-vcpu-dirty-limit", {"dirty-rate": -1}) == {}
    rows = h.qmp("query-vcpu-dirty-limit")
    assert rows == [{"limit-rate": U64_MAX, "current-rate": 0, "cpu-index": 0}]
    hmp = h.qmp("human-monitor-command", {"command-line": "info vcpu_dirty_limit"})
    assert hmp == "vcpu[0], limit rate -1 (MB/s), current rate 0 (MB/s)\r\n"


def test_reply_bytes_have_qemus_key_order(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING)
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 200})
    reply = {"return": h.qmp("query-vcpu-dirty-limit")}
    assert encode_message(reply) == (
        b'{"return": [{"limit-rate": 200, "current-rate": 0, "cpu-index": 0}]}\r\n'
    )


def test_rate_zero_cancels_one_vcpu_and_the_service_stays(make_machine: MakeHarness) -> None:
    h = make_machine("-smp", "2", "-accel", RING)
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 100})
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 0, "cpu-index": 0})
    assert h.qmp("query-vcpu-dirty-limit") == [
        {"limit-rate": 100, "current-rate": 0, "cpu-index": 1}
    ]
    assert h.machine.dirtylimit.in_service()
    h.qmp("cancel-vcpu-dirty-limit", {"cpu-index": 1})
    assert not h.machine.dirtylimit.in_service()
    assert h.qmp("query-vcpu-dirty-limit") == []


def test_cancelling_the_last_vcpu_waits_for_the_throttle_thread(make_machine: MakeHarness) -> None:
    """The reply comes once the throttle thread has finished its period and exited (QEMU
    joins it: 0.15-1.0 s observed), and no new period starts after the cancel."""
    h = make_machine("-accel", RING, clock=VirtualClock())
    limit = h.machine.dirtylimit
    periods: list[bool] = []  # one entry per period started: was the cancel under way?
    cancelling = threading.Event()
    run_period = limit.run_period

    def counted() -> bool:
        periods.append(cancelling.is_set())
        return run_period()

    limit.run_period = counted  # type: ignore[method-assign]
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 50})
    # Wait for the first adjustment (virtual time: the periods run back to back).
    deadline = time.monotonic() + 60
    while limit.throttle_us_per_full[0] == 0:
        assert time.monotonic() < deadline, "the throttle never adjusted"
        time.sleep(0.01)
    cancelling.set()
    assert h.qmp("cancel-vcpu-dirty-limit") == {}
    assert not limit.in_service()
    assert "dirtyrate-stat" not in {t.name for t in threading.enumerate()}
    # at most the period that had begun as the cancel came (QEMU's thread checks its
    # quit flag between periods)
    assert periods.count(True) <= 1
    # The penalty survives the cancel, as in QEMU (it seeds the next limit).
    penalty = limit.throttle_us_per_full[0]
    assert penalty > 0
    h.qmp("query-vcpu-dirty-limit")
    assert limit.throttle_us_per_full[0] == penalty


def test_query_rates_are_published_once_per_period(make_machine: MakeHarness) -> None:
    clock = VirtualClock()
    h = make_machine("-accel", RING, "--workload", "all:write,rate=300", clock=clock)
    h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 1000})
    start = clock.monotonic()
    rows = h.qmp("query-vcpu-dirty-limit")
    if clock.monotonic() < start + 1:  # (no period has ended yet)
        assert rows == [{"limit-rate": 1000, "current-rate": 0, "cpu-index": 0}]
    deadline = time.monotonic() + 60
    while True:
        (row,) = h.qmp("query-vcpu-dirty-limit")
        if row["current-rate"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # A quota above the rate never throttles: it reads the writer's rate.
    assert row["current-rate"] == 300
