"""calc-dirty-rate / query-dirty-rate: checks, texts per profile, states and fields
(spec 2.4-2.5)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from qmpdl.clock import VirtualClock
from qmpdl.jsontypes import JsonObject
from qmpdl.qjson import encode_message
from tests.machine.conftest import Harness, MakeHarness

RING = "sim,dirty-ring-size=4096"


def wait_measured(h: Harness, args: JsonObject | None = None, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        info = h.qmp("query-dirty-rate", args)
        assert isinstance(info, dict)
        if info["status"] == "measured":
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.02)


def test_unstarted_reply_is_byte_identical_to_qemu_72(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING, "--qemu-version", "7.2")
    reply = encode_message({"return": h.qmp("query-dirty-rate")})
    assert reply == (
        b'{"return": {"status": "unstarted", "sample-pages": 0, "mode": "page-sampling", '
        b'"start-time": 0, "calc-time": 0}}\r\n'
    )


def test_unstarted_reply_newest(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING)
    assert encode_message({"return": h.qmp("query-dirty-rate")}) == (
        b'{"return": {"status": "unstarted", "sample-pages": 0, "mode": "page-sampling", '
        b'"calc-time-unit": "second", "start-time": 0, "calc-time": 0}}\r\n'
    )


@pytest.mark.parametrize(
    ("version", "args", "text"),
    [
        ("7.2", {"calc-time": 0}, "calc-time is out of range[1, 60]."),
        ("7.2", {"calc-time": 61}, "calc-time is out of range[1, 60]."),
        ("7.2", {"calc-time": -1}, "calc-time is out of range[1, 60]."),
        ("10.1", {"calc-time": 0}, "Calculation time is out of range [50ms, 60000ms]."),
        ("10.1", {"calc-time": 61}, "Calculation time is out of range [50ms, 60000ms]."),
        (
            "10.1",
            {"calc-time": 49, "calc-time-unit": "millisecond"},
            "Calculation time is out of range [50ms, 60000ms].",
        ),
        (
            "10.1",
            {"calc-time": 60001, "calc-time-unit": "millisecond"},
            "Calculation time is out of range [50ms, 60000ms].",
        ),
        (
            "7.2",
            {"calc-time": 1, "sample-pages": 512, "mode": "dirty-ring"},
            "either sample-pages or dirty-ring can be specified.",
        ),
        (
            "10.1",
            {"calc-time": 1, "sample-pages": 512, "mode": "dirty-ring"},
            "sample-pages is used only in page-sampling mode",
        ),
        (
            "10.1",
            {"calc-time": 1, "sample-pages": 512, "mode": "dirty-bitmap"},
            "sample-pages is used only in page-sampling mode",
        ),
        # 7.2 ignores sample-pages in dirty-bitmap mode; the ring makes the mode invalid.
        (
            "7.2",
            {"calc-time": 1, "sample-pages": 512, "mode": "dirty-bitmap"},
            "mode dirty-bitmap is not enabled, use other method instead.",
        ),
        ("7.2", {"calc-time": 1, "sample-pages": 127}, "sample-pages is out of range[128, 16384]."),
        ("7.2", {"calc-time": 1, "sample-pages": -5}, "sample-pages is out of range[128, 16384]."),
        (
            "10.1",
            {"calc-time": 1, "sample-pages": 16385},
            "sample-pages is out of range[128, 16384].",
        ),
        (
            "7.2",
            {"calc-time": 1, "mode": "dirty-bitmap"},
            "mode dirty-bitmap is not enabled, use other method instead.",
        ),
        # The range check comes before the mode checks.
        ("7.2", {"calc-time": 0, "mode": "dirty-bitmap"}, "calc-time is out of range[1, 60]."),
    ],
)
def test_calc_checks_with_a_ring(
    make_machine: MakeHarness, version: str, args: JsonObject, text: str
) -> None:
    h = make_machine("-accel", RING, "--qemu-version", version)
    assert h.error("calc-dirty-rate", args) == text
    assert h.qmp("query-dirty-rate")["status"] == "unstarted"


@pytest.mark.parametrize("version", ["7.2", "10.1"])
def test_dirty_ring_mode_needs_the_ring(make_machine: MakeHarness, version: str) -> None:
    h = make_machine("-accel", "sim", "--qemu-version", version)
    assert h.error("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-ring"}) == (
        "mode dirty-ring is not enabled, use other method instead."
    )


def test_calc_time_unit_does_not_exist_in_72(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING, "--qemu-version", "7.2")
    assert h.error("calc-dirty-rate", {"calc-time": 1, "calc-time-unit": "second"}) == (
        "Parameter 'calc-time-unit' is unexpected"
    )
    assert h.error("query-dirty-rate", {"calc-time-unit": "second"}) == (
        "Parameter 'calc-time-unit' is unexpected"
    )


def test_dirty_ring_measurement_states_and_fields_72(make_machine: MakeHarness) -> None:
    h = make_machine(
        "-smp",
        "2",
        "-accel",
        RING,
        "--qemu-version",
        "7.2",
        "--workload",
        "0:write,rate=300",
        "--workload",
        "1:idle",
        clock=VirtualClock(),
    )
    assert h.qmp("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-ring"}) == {}
    info = h.qmp("query-dirty-rate")
    assert isinstance(info, dict)
    assert info["status"] in ("unstarted", "measuring")
    assert (info["sample-pages"], info["mode"], info["calc-time"]) == (512, "dirty-ring", 1)
    assert "dirty-rate" not in info and "vcpu-dirty-rate" not in info
    assert h.error("calc-dirty-rate", {"calc-time": 1}) == (
        "the dirty rate is already being measured."
    )
    info = wait_measured(h)
    # 7.2: start-time is QEMU_CLOCK_REALTIME (monotonic) seconds when it started
    assert info["start-time"] == int(h.machine.clock.monotonic()) - 1
    rates = info["vcpu-dirty-rate"]
    assert isinstance(rates, list)
    assert [r["id"] for r in rates] == [0, 1]
    assert rates[1]["dirty-rate"] == 0
    assert rates[0]["dirty-rate"] == 299  # 300 MiB/s, whole MiB truncated (7.2)
    assert info["dirty-rate"] == rates[0]["dirty-rate"]
    assert info["sample-pages"] == 0
    assert info["calc-time"] == 1
    assert list(encode_message({"return": info}).split(b'"', 3)[1:3]) == [b"return", b": {"]


def test_page_sampling_and_time_units_newest(make_machine: MakeHarness) -> None:
    clock = VirtualClock()
    h = make_machine(
        "-accel", RING, "-m", "256", "--workload", "all:write,rate=400,wss=128M", clock=clock
    )
    started = clock.wall()
    h.qmp("calc-dirty-rate", {"calc-time": 200, "calc-time-unit": "millisecond"})
    info = wait_measured(h, {"calc-time-unit": "millisecond"})
    assert info["mode"] == "page-sampling"
    assert info["sample-pages"] == 512
    assert info["calc-time-unit"] == "millisecond"
    assert info["calc-time"] == 200
    # 8.2+: start-time is the host (wall) clock's seconds when it started
    assert info["start-time"] == int(started)
    # In 200 ms the writer dirties 80 MiB of its 128 MiB: about 80/256 of the samples.
    assert 150 <= info["dirty-rate"] <= 650
    assert "vcpu-dirty-rate" not in info
    # Reported in seconds, the same measurement truncates to 0.
    assert h.qmp("query-dirty-rate")["calc-time"] == 0


def test_dirty_bitmap_without_a_ring(make_machine: MakeHarness) -> None:
    h = make_machine(
        "-accel", "sim", "--workload", "all:write,rate=300,wss=16M", clock=VirtualClock()
    )
    h.qmp(
        "calc-dirty-rate",
        {"calc-time": 100, "calc-time-unit": "millisecond", "mode": "dirty-bitmap"},
    )
    info = wait_measured(h)
    # A 16 MiB working set rewritten for 100 ms: each page counts once per window.
    assert info["dirty-rate"] == 160
    assert info["sample-pages"] == 0
    assert "vcpu-dirty-rate" not in info


@pytest.mark.parametrize(
    ("version", "range_text", "ring_sample_text"),
    [
        (
            "7.2",
            "calc-time is out of range[1, 60].",
            "either sample-pages or dirty-ring can be specified.",
        ),
        (
            "8.1",
            "calc-time is out of range[1, 60].",
            "sample-pages is used only in page-sampling mode",
        ),
        (
            "8.2",
            "Calculation time is out of range [50ms, 60000ms].",
            "sample-pages is used only in page-sampling mode",
        ),
        (
            "9.0",
            "Calculation time is out of range [50ms, 60000ms].",
            "sample-pages is used only in page-sampling mode",
        ),
        (
            "10.1",
            "Calculation time is out of range [50ms, 60000ms].",
            "sample-pages is used only in page-sampling mode",
        ),
    ],
)
def test_texts_of_every_profile(
    make_machine: MakeHarness, version: str, range_text: str, ring_sample_text: str
) -> None:
    h = make_machine("-accel", RING, "--qemu-version", version)
    assert h.error("calc-dirty-rate", {"calc-time": 61}) == range_text
    assert (
        h.error("calc-dirty-rate", {"calc-time": 1, "sample-pages": 256, "mode": "dirty-ring"})
        == ring_sample_text
    )


def test_a_stopped_guest_dirties_nothing(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", RING, "--qemu-version", "10.1", clock=VirtualClock())
    h.qmp("stop")
    h.qmp(
        "calc-dirty-rate", {"calc-time": 100, "calc-time-unit": "millisecond", "mode": "dirty-ring"}
    )
    assert wait_measured(h)["vcpu-dirty-rate"] == [{"dirty-rate": 0, "id": 0}]
    h.qmp("cont")
    h.qmp(
        "calc-dirty-rate", {"calc-time": 100, "calc-time-unit": "millisecond", "mode": "dirty-ring"}
    )
    assert wait_measured(h)["dirty-rate"] >= 400
