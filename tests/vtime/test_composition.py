"""Virtual time, a seed and a scenario are choices of the composition root: a machine
built with all of them has its parts made with their hooks, and nothing patched after
construction (no instance attribute hides a method of its class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from qmpdl.config import AccelConfig, MachineConfig
from qmpdl.system.build import build_machine
from qmpdl.vtime.clock import SteppedClock
from qmpdl.vtime.faults import ScenarioFaults
from qmpdl.vtime.throttle import TimerThrottle

EVERY_FAULT = """
[[vcpus]]
cpus = "0"
phases = [{ at = 0, kind = "write", rate = 100, wss = "8M" }, { at = 2, kind = "idle" }]

[[events]]
at = 3
action = "stop-work"

[[faults]]
kind = "ring-overflow-storm"
at = 1
cpu = 0
duration = 1

[[faults]]
kind = "late-throttle-period"
at = 1
delay = 1

[[faults]]
kind = "bad-measurement"
at = 1
duration = 1
value = "garbage"

[[faults]]
kind = "kvm-internal-error"
at = 5
cpu = 0

[[faults]]
kind = "migration-stream"
action = "cut"
offset = 100
migration = 2

[[faults]]
kind = "destination-refuse"
"""


def _patched(obj: Any) -> list[str]:
    """Instance attributes that stand in for a method of the object's class."""
    cls = type(obj)
    return [
        name
        for name, value in vars(obj).items()
        if callable(value) and callable(getattr(cls, name, None)) and not name.startswith("__")
    ]


@pytest.mark.parametrize("clock", ["virtual", "host"])
def test_nothing_is_patched(tmp_path: Path, clock: Literal["host", "virtual"]) -> None:
    scenario = tmp_path / "every.toml"
    scenario.write_text(EVERY_FAULT)
    config = MachineConfig(
        cpus=1,
        max_cpus=1,
        ram_size=64 << 20,
        accel=AccelConfig(kind="sim", dirty_ring_size=4096, clock=clock),
        seed=5,
        scenario=str(scenario),
    )
    machine = build_machine(config)
    try:
        parts = [
            machine,
            machine.backend,
            machine.dirty_log,
            machine.dirtylimit,
            machine.dirtyrate,
            machine.migration,
        ]
        for part in parts:
            assert _patched(part) == [], type(part).__name__
        # the hooks went in through the constructors
        faults = machine.migration._stream_faults
        assert isinstance(faults, ScenarioFaults)
        assert machine.dirty_log._counters is faults.counters
        assert machine.dirtylimit.period_delay == faults.period_delay
        if clock == "virtual":
            assert isinstance(machine.clock, SteppedClock)
            assert isinstance(machine.dirtylimit._driver, TimerThrottle)
            assert machine.backend.thread_ids() == [1005]
        else:
            assert machine.dirtylimit._driver is None
    finally:
        machine.teardown()
