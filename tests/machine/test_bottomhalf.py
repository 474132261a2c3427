"""Bottom halves: work handed to the main loop, run under the BQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from qmpdl.vm.bottomhalf import BottomHalves
from qmpdl.vm.bql import BigLock


def test_without_a_main_loop_work_runs_at_once_under_the_bql() -> None:
    bql = BigLock()
    halves = BottomHalves(bql)
    seen: list[bool] = []
    halves.schedule(lambda: seen.append(bql.held()))
    assert seen == [True]
    assert not bql.held()


def test_with_a_main_loop_the_loop_decides_when() -> None:
    halves = BottomHalves(BigLock())
    queued: list[Callable[[], None]] = []
    halves.attach(queued.append)
    ran: list[int] = []
    worker = threading.Thread(target=halves.schedule, args=(lambda: ran.append(1),))
    worker.start()
    worker.join()
    assert ran == [] and len(queued) == 1  # handed over, not run by the scheduling thread
    queued.pop()()
    assert ran == [1]


def test_a_loop_that_is_gone_does_not_lose_the_work() -> None:
    halves = BottomHalves(BigLock())

    def closed(work: Callable[[], None]) -> None:
        raise RuntimeError("Event loop is closed")

    halves.attach(closed)
    ran: list[int] = []
    halves.schedule(lambda: ran.append(1))
    assert ran == [1]
