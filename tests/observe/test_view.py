"""qmpdl-top's state and rendering, without a terminal: where each figure comes from,
what a missing command costs, the sparkline of the last minute, the recording."""

from __future__ import annotations

import io
import json

from qmpdl.observe.view import COMMANDS, Recorder, TopState, sparkline


def test_sparkline() -> None:
    assert sparkline([0, 4, 8], 5, 8.0) == "  ▁▅█"
    assert sparkline([], 3) == "   "
    assert sparkline([0, 0], 2) == "▁▁"
    assert sparkline(list(range(8)), 8) == "▁▂▃▄▅▆▇█"
    assert sparkline(list(range(100)), 2) == "██"  # the last 2 only, scaled to their max


def test_rates_come_from_the_limit_else_from_calc() -> None:
    s = TopState(commands=frozenset(COMMANDS))
    s.set_vcpus([0, 1])
    assert s.update_calc(
        {
            "status": "measured",
            "vcpu-dirty-rate": [{"id": 0, "dirty-rate": 450}, {"id": 1, "dirty-rate": 300}],
        }
    )
    s.update_limits([{"cpu-index": 0, "limit-rate": 100, "current-rate": 113}])
    assert (s.vcpus[0].rate, s.vcpus[0].source, s.vcpus[0].limit) == (113, "limit", 100)
    assert (s.vcpus[1].rate, s.vcpus[1].source, s.vcpus[1].limit) == (300, "calc", None)
    assert s.needs_calc()
    assert not s.update_calc({"status": "measuring"})
    s.update_limits([])
    assert s.vcpus[0].source == "calc" and s.vcpus[0].limit is None
    assert s.row(0)[:4] == ("0", "450", "calc", "-")
    assert s.row(0)[5:] == ("n/a", "n/a")  # no metrics endpoint
    s.update_metrics({0: 75000.0}, {0: 35634.0})
    assert s.row(0)[5:] == ("75000", "35634")
    assert s.row(1)[5:] == ("-", "-")


def test_page_sampling_gives_a_vm_wide_rate() -> None:
    s = TopState()
    s.set_vcpus([0])
    assert s.update_calc({"status": "measured", "dirty-rate": 12})
    assert s.vm_rate == 12 and s.vcpus[0].rate is None


def test_missing_commands_are_named_with_what_they_cost() -> None:
    s = TopState(commands=frozenset({"query-status", "query-migrate"}))
    assert "set-vcpu-dirty-limit (setting limits)" in s.missing()
    assert "query-migrate (the migration panel)" not in s.missing()
    assert TopState(commands=frozenset()).migration_line() == ("migration: n/a (no query-migrate)")


def test_migration_line() -> None:
    s = TopState(commands=frozenset(COMMANDS))
    assert s.migration_line() == "migration: none"
    s.migration = {
        "status": "active",
        "total-time": 2500,
        "ram": {"remaining": 3 << 20, "transferred": 10 << 20, "dirty-sync-count": 4},
        "dirty-limit-throttle-time-per-round": 3891888,
        "dirty-limit-ring-full-time": 35634,
    }
    assert s.migration_line() == (
        "migration: active, remaining 3.0 MiB, transferred 10.0 MiB, passes 4, time 2.5 s, "
        "throttle-time-per-round 3891888 us, ring-full-time 35634 us"
    )


def test_the_last_minute_in_slices() -> None:
    s = TopState()
    s.set_vcpus([0])
    v = s.vcpus[0]
    for second in range(120):
        v.rate = 100 if second < 90 else 400
        s.tick(float(second))
    slices = v.last_minute(s.now, 30)
    assert len(slices) == 30
    assert slices[:14] == [100.0] * 14 and slices[-14:] == [400.0] * 14


def test_the_recording() -> None:
    out = io.StringIO()
    s = TopState(commands=frozenset(COMMANDS))
    s.set_vcpus([0])
    s.update_limits([{"cpu-index": 0, "limit-rate": 100, "current-rate": 113}])
    r = Recorder(out, "QEMU 7.2.22 at x.sock", start=10.0)
    r.sample(s, 11.5)
    r.action("limit vCPU 0 to 100 MB/s: done", 12.0)
    header, sample, action = (json.loads(x) for x in out.getvalue().splitlines())
    assert header["qmpdl-top-recording"] == 1 and header["target"] == "QEMU 7.2.22 at x.sock"
    assert sample["t"] == 1.5
    assert sample["vcpus"] == [
        {
            "cpu": 0,
            "rate": 113,
            "source": "limit",
            "limit": 100,
            "penalty_us": None,
            "ring_full_us": None,
        }
    ]
    assert action == {"t": 2.0, "action": "limit vCPU 0 to 100 MB/s: done"}
