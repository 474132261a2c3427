"""The stepped clock: timers and machine threads, in deadline order, one at a time."""

from __future__ import annotations

import threading

import pytest

from qmpdl.clock import parked, start_thread, wake
from qmpdl.vtime import clock as vclock
from qmpdl.vtime.clock import START, SteppedClock


def test_time_stands_still_until_stepped() -> None:
    clock = SteppedClock()
    assert clock.monotonic() == START
    assert clock.step(None) == START  # nothing waits: no move
    assert clock.step(2.5) == START + 2.5
    assert clock.wall() - clock.monotonic() == SteppedClock().wall() - START


def test_timers_run_in_deadline_then_creation_order() -> None:
    clock = SteppedClock()
    seen: list[tuple[str, float]] = []

    def mark(name: str) -> None:
        seen.append((name, clock.monotonic()))

    clock.call_at(START + 2, lambda: mark("b"))
    clock.call_at(START + 1, lambda: mark("a"))
    clock.call_at(START + 2, lambda: mark("c"))
    cancelled = clock.call_at(START + 1.5, lambda: mark("never"))
    cancelled.cancel()
    assert clock.next_deadline() == START + 1
    clock.step(1.5)
    assert seen == [("a", START + 1)]
    clock.step(None)
    assert seen == [("a", START + 1), ("b", START + 2), ("c", START + 2)]


def test_a_timer_may_set_timers_within_the_same_step() -> None:
    clock = SteppedClock()
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(clock.monotonic())
        clock.call_at(clock.monotonic() + 0.25, tick)

    clock.call_at(START, tick)
    clock.step(1.0)
    assert ticks == [START + 0.25 * i for i in range(5)]


def test_adopted_threads_are_released_one_at_a_time_and_waited_for() -> None:
    clock = SteppedClock()
    log: list[str] = []

    def worker(name: str, period: float) -> None:
        for _ in range(3):
            clock.sleep_until(clock.monotonic() + period)
            log.append(f"{name}@{clock.monotonic() - START:g}")

    threads = [
        threading.Thread(target=worker, args=("a", 1.0)),
        threading.Thread(target=worker, args=("b", 1.5)),
    ]
    for t in threads:
        start_thread(t, clock)
    clock.settle()  # both asleep now
    clock.step(3.0)
    # ties go in the order the sleeps began: b slept at 1.5, a at 2
    assert log == ["a@1", "b@1.5", "a@2", "b@3", "a@3"]
    clock.step(2.0)
    for t in threads:
        t.join(5)
    assert log[-1] == "b@4.5"


def test_a_wakeup_event_ends_a_sleep_without_time_moving() -> None:
    clock = SteppedClock()
    wakeup = threading.Event()
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(clock.sleep_until(START + 10, wakeup)))
    start_thread(t, clock)
    clock.settle()
    wakeup.set()
    t.join(5)
    assert result == [True] and clock.monotonic() == START


def test_wake_and_a_threads_end_are_told_not_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the safety-net recheck an hour long, a woken sleeper still returns and a
    reply waiting for a thread still goes on as soon as the thread ends."""
    monkeypatch.setattr(vclock, "RECHECK", 3600.0)
    clock = SteppedClock()
    wakeup, woke, finish = threading.Event(), threading.Event(), threading.Event()
    result: list[bool] = []

    def sleeps_then_works() -> None:
        result.append(clock.sleep_until(START + 10, wakeup))
        woke.set()  # busy from here on, for the clock
        finish.wait(60)

    t = threading.Thread(target=sleeps_then_works)
    start_thread(t, clock)
    clock.settle()
    wake(clock, wakeup)
    assert woke.wait(60) and result == [True]
    ended = threading.Event()

    def settles() -> None:
        clock.settle()  # the thread is busy after its wakeup: this waits for its end
        ended.set()

    threading.Thread(target=settles, daemon=True).start()
    assert not ended.wait(0.05)
    finish.set()
    assert ended.wait(60)
    t.join(60)


def test_a_command_thread_that_sleeps_moves_time_itself() -> None:
    clock = SteppedClock()
    fired: list[float] = []
    clock.call_at(START + 0.5, lambda: fired.append(clock.monotonic()))
    assert clock.sleep_until(START + 1.0) is False  # not adopted: time runs for it
    assert fired == [START + 0.5] and clock.monotonic() == START + 1.0


def test_parked_threads_do_not_hold_a_step() -> None:
    clock = SteppedClock()
    go = threading.Event()

    def waits_for_a_command() -> None:
        with parked(clock):
            go.wait(10)

    t = threading.Thread(target=waits_for_a_command)
    start_thread(t, clock)
    clock.step(1.0)  # returns although the thread runs (parked)
    go.set()
    t.join(5)


def test_release_ends_every_sleep() -> None:
    clock = SteppedClock()
    done = threading.Event()

    def sleeper() -> None:
        clock.sleep_until(START + 100)
        done.set()

    t = threading.Thread(target=sleeper)
    start_thread(t, clock)
    clock.settle()
    clock.release()
    assert done.wait(5)
    assert clock.sleep_until(START + 200) is False and clock.monotonic() == START + 200
