"""Adding a backend is one module (``toy.py``) and one registry entry: the toy runs on
the command line, presents itself as KVM and QEMU's throttle limits it.

The machine runs on a virtual clock: every throttle period is exactly one second of the
toy's time however slowly this host runs the throttle thread, so the figures do not
depend on the machine's speed (the test only waits, with a generous bound, for the
periods to have happened)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from qmpdl.backend.registry import ACCELERATORS
from qmpdl.cli import UsageError, parse_args
from qmpdl.clock import VirtualClock
from qmpdl.commands.executor import CommandExecutor
from qmpdl.qapi import QapiSchema
from qmpdl.system import Machine, build_machine
from tests.backends.toy import ENTRY, ToyBackend

UNTHROTTLED = 400
QUOTA = 100


@pytest.fixture
def toy_accelerator() -> Iterator[None]:
    ACCELERATORS.register(ENTRY)
    yield
    ACCELERATORS.unregister(ENTRY.name)


@pytest.fixture
def machine(toy_accelerator: None) -> Iterator[Machine]:
    argv = ["-accel", "toy,dirty-ring-size=4096", "-smp", "2"]
    argv += ["--workload", f"all:write,rate={UNTHROTTLED}"]
    m = build_machine(parse_args(argv), VirtualClock())
    m.start()
    yield m
    m.teardown()


def _periods(machine: Machine, count: int) -> None:
    deadline = time.monotonic() + 120  # a bound for a very busy host, not a measurement
    while machine.dirtylimit.periods < count:
        assert time.monotonic() < deadline, "the throttle thread did not run"
        time.sleep(0.01)


def test_the_toy_is_what_runs(machine: Machine) -> None:
    assert isinstance(machine.backend, ToyBackend)
    executor = CommandExecutor(machine, QapiSchema.load(machine.profile))
    assert executor.call_sync("query-kvm", {}) == {"enabled": True, "present": True}


def test_qemus_throttle_limits_the_toy(machine: Machine) -> None:
    executor = CommandExecutor(machine, QapiSchema.load(machine.profile))
    executor.call_sync("set-vcpu-dirty-limit", {"dirty-rate": QUOTA})
    _periods(machine, 12)
    limits = executor.call_sync("query-vcpu-dirty-limit", {})
    assert isinstance(limits, list) and len(limits) == 2
    for entry in limits:
        assert isinstance(entry, dict)
        assert entry["limit-rate"] == QUOTA
        current = entry["current-rate"]
        assert isinstance(current, int) and abs(current - QUOTA) <= 25, limits
    executor.call_sync("cancel-vcpu-dirty-limit", {})


def test_without_the_entry_there_is_no_toy() -> None:
    with pytest.raises(UsageError, match=r"invalid accelerator toy \(qmpdl has sim, kvm and tcg\)"):
        parse_args(["-accel", "toy"])
