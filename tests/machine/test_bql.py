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
