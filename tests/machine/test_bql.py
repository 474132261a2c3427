"""The BQL model: handlers hold it, waits inside them drop it."""

from __future__ import annotations

import threading

from qmpdl.vm.bql import BigLock
from tests.machine.conftest import MakeHarness


def test_recursive_and_dropped() -> None:
    bql = BigLock()
    taken = threading.Event()

    def other() -> None:
        with bql:
            taken.set()

    with bql, bql:
        thread = threading.Thread(target=other)
        thread.start()
        assert not taken.wait(0.05)  # held twice by us
        with bql.dropped():
            assert taken.wait(60)  # dropped completely: the other thread gets it
            thread.join(60)
        assert bql.held()
    assert not bql.held()


def test_cancel_right_after_set_does_not_wait_a_period(make_machine: MakeHarness) -> None:
    """The throttle thread starts dirty logging under the BQL, which the set handler
    holds; a cancel in the same BQL section finds it not yet measuring (as in QEMU)."""
    h = make_machine("-accel", "sim,dirty-ring-size=4096")
    limit = h.machine.dirtylimit
    periods = 0
    run_period = limit.run_period

    def counted() -> bool:
        nonlocal periods
        periods += 1
        return run_period()

    limit.run_period = counted  # type: ignore[method-assign]
    with h.machine.bql:
        h.qmp("set-vcpu-dirty-limit", {"dirty-rate": 100})
        h.qmp("cancel-vcpu-dirty-limit")
    assert periods == 0  # the thread ended before its first period
    assert not h.machine.dirtylimit.in_service()
    assert not h.machine.dirty_log.mask


def test_stop_waits_for_the_vcpus_holding_no_other_lock(make_machine: MakeHarness) -> None:
    """``stop`` drops the BQL while the vCPUs pause; a thread that takes it meanwhile and
    changes the run state (the migration thread does, completing) must not deadlock
    with it (found by bench.soak: stop/cont racing with migrations)."""
    h = make_machine("-accel", "sim,dirty-ring-size=4096")
    machine = h.machine
    pause = machine.backend.pause
    other_done = threading.Event()

    def other() -> None:
        with machine.bql:
            machine.set_runstate(machine.runstate)
        other_done.set()

    def pause_while_another_takes_the_bql() -> None:
        thread = threading.Thread(target=other, daemon=True)
        thread.start()
        other_done.wait(5)  # the other thread gets the BQL now, and then the state lock
        pause()

    machine.backend.pause = pause_while_another_takes_the_bql  # type: ignore[method-assign]
    stopper = threading.Thread(target=lambda: h.qmp("stop"), daemon=True)
    stopper.start()
    stopper.join(60)
    assert not stopper.is_alive(), "stop deadlocked with a thread holding the BQL"
    assert other_done.is_set()
    assert h.qmp("query-status")["status"] == "paused"
