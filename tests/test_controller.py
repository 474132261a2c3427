"""The controller against spec 1.5 and against every adjustment in the real QEMU traces
(7.2's in ../shared/anchors, 10.0's recorded here)."""

from __future__ import annotations

import re

import pytest

from qmpdl.dirtylimit.adjust import (
    ControllerState,
    adjust,
    done,
    need_linear_adjustment,
    ring_memory_mib,
    set_throttle,
)
from tests.anchors.traces import read_trace, trace_names

U64_MAX = (1 << 64) - 1


def test_worked_example_of_the_spec() -> None:
    first = adjust(0, 100, 500, 4096, ControllerState())
    assert first.ring_full_time_us == 32000
    assert first.linear == (80, 128000)
    assert first.throttle_us_per_full == 128000
    # Inside the dead band: nothing changes.
    assert adjust(128000, 100, 120, 4096, first.state) == type(first)(128000, first.state)
    # 40 off, 28 % < 50 %: the fixed step F/10, with F still from the maximum 500.
    fixed = adjust(128000, 100, 140, 4096, first.state)
    assert fixed.linear is None
    assert fixed.throttle_us_per_full == 131200


def test_band_and_linear_thresholds() -> None:
    assert done(100, 125) and done(125, 100) and not done(100, 126)
    assert not need_linear_adjustment(100, 200)  # 50 % is not above 50
    # Integer percent: 104 * 100 // 204 == 50, still not above.
    assert not need_linear_adjustment(100, 204)
    assert need_linear_adjustment(100, 205)
    assert need_linear_adjustment(205, 100)


def test_ring_sizes_in_mib() -> None:
    assert [ring_memory_mib(n) for n in (255, 256, 1024, 4096, 65536)] == [0, 1, 4, 16, 256]
    # Rings below 256 entries make F = 0: every adjustment is 0 and the limit does nothing.
    assert set_throttle(0, 10, 400, 128, ControllerState()).throttle_us_per_full == 0


def test_idle_vcpu_drops_its_penalty_only_outside_the_band() -> None:
    assert adjust(5000, 100, 0, 4096, ControllerState(300)).throttle_us_per_full == 0
    # quota <= 25: done(quota, 0) is true, the stale penalty stays.
    assert adjust(5000, 20, 0, 4096, ControllerState(300)).throttle_us_per_full == 5000


def test_max_rate_is_sticky_and_shortens_f() -> None:
    state = ControllerState()
    a = adjust(0, 100, 800, 4096, state)
    b = adjust(0, 100, 200, 4096, a.state)
    assert a.state.max_dirtyrate == b.state.max_dirtyrate == 800
    assert b.ring_full_time_us == 16 * 1_000_000 // 800


def test_clamps() -> None:
    # Upper clamp: 99 ring-full times.
    big = set_throttle(10**9, 100, 5000, 4096, ControllerState())
    assert big.throttle_us_per_full == big.ring_full_time_us * 99  # type: ignore[operator]
    # Lower clamp: never negative.
    assert set_throttle(10, 400, 100, 4096, ControllerState()).throttle_us_per_full == 0


def test_uint64_quota_from_a_negative_rate_wraps_like_qemu() -> None:
    # set-vcpu-dirty-limit dirty-rate=-1 stores 2**64-1; QEMU's uint64 arithmetic wraps.
    quota = U64_MAX
    assert not done(quota, 400)
    adj = adjust(50_000, quota, 400, 4096, ControllerState())
    # (q-c)*100 wraps, the relative error reads small: the fixed step lowers the penalty.
    assert adj.linear is None
    assert adj.throttle_us_per_full == 50_000 - (16 * 1_000_000 // 400) // 10


_RATE = re.compile(r"vcpu\[(\d+)\]: (\d+) MB/s")
_SET = re.compile(r"CPU\[(\d+)\] set dirty page rate limit (\d+)")
_PCT = re.compile(r"CPU\[(\d+)\] throttle percent: (\d+), throttle adjust time (\d+) us")
_SLEEP = re.compile(r"CPU\[(\d+)\] sleep (\d+) us")


@pytest.mark.parametrize(
    ("version", "run"),
    [pytest.param(v, run, id=f"{v}-{run}") for v in ("7.2", "10.0") for run in trace_names(v)],
)
def test_replays_every_adjustment_of_the_real_qemu_trace(version: str, run: str) -> None:
    """Feed the throttle thread's measured rates through the controller; every linear
    step must equal QEMU's ``dirtylimit_throttle_pct`` and every penalty a vCPU then
    sleeps must equal what QEMU's vCPU slept (``dirtylimit_vcpu_execute``)."""
    events = list(read_trace(run, version))
    # The throttle thread measures per-vCPU rates but, unlike calc-dirty-rate threads,
    # never traces a VM-wide ``dirtyrate_calculate``.
    calc_tids = {e.tid for e in events if e.name == "dirtyrate_calculate"}
    quota: dict[int, int] = {}
    throttle: dict[int, int] = {}
    state = ControllerState()
    expected_pct: list[tuple[int, int, int]] = []
    rates: dict[int, int] = {}
    checked_sleeps = checked_steps = 0

    def process() -> None:
        nonlocal state
        for cpu, current in sorted(rates.items()):
            if cpu not in quota:
                continue
            adj = adjust(throttle.get(cpu, 0), quota[cpu], current, 4096, state)
            state = adj.state
            throttle[cpu] = adj.throttle_us_per_full
            if adj.linear is not None:
                expected_pct.append((cpu, *adj.linear))
        rates.clear()

    for e in events:
        if e.name == "dirtyrate_do_calculate_vcpu" and e.tid not in calc_tids:
            m = _RATE.search(e.args)
            assert m
            cpu = int(m[1])
            if cpu in rates:  # a new period started without a visible boundary
                process()
            rates[cpu] = int(m[2])
            continue
        if rates:
            process()
        if e.name == "dirtylimit_set_vcpu":
            m = _SET.search(e.args)
            assert m
            if int(m[2]):
                quota[int(m[1])] = int(m[2])
            else:
                quota.pop(int(m[1]), None)
        elif e.name == "dirtylimit_throttle_pct":
            m = _PCT.search(e.args)
            assert m
            assert expected_pct, f"QEMU adjusted unexpectedly: {e}"
            assert expected_pct.pop(0) == (int(m[1]), int(m[2]), int(m[3])), e
            checked_steps += 1
        elif e.name == "dirtylimit_vcpu_execute":
            m = _SLEEP.search(e.args)
            assert m
            assert throttle.get(int(m[1])) == int(m[2]), e
            checked_sleeps += 1
    assert not expected_pct
    assert checked_sleeps > 10
    assert checked_steps >= (1 if "q300" not in run and "q400" not in run else 0)
