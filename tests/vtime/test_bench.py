"""The virtual-time benchmark still runs and its runs converge (no timing asserted:
figures come from ``python3 -m bench.vtime_bench``)."""

from __future__ import annotations

from bench import vtime_bench


def test_minute_in_process_converges() -> None:
    result = vtime_bench.minute_8(seconds=10, vcpus=2)
    assert result["last_rates"] == [63, 63]


def test_hour_through_qmp_steps() -> None:
    result = vtime_bench.hour_64(seconds=20, vcpus=4)
    assert result["time_ns"] == (1000 + 20) * 1_000_000_000
    assert result["last_rates"] == [63, 63]
