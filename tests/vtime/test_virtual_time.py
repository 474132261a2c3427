"""``-accel sim,clock=virtual`` over QMP: the commands, what reads the clock, and the
commands that block in QEMU under a stopped clock."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests.vtime.helpers import SECOND, VIRTUAL, vm

START_NS = 1000 * SECOND
EPOCH_S = 1_800_000_000
OURS = ("__com.qmpdl_clock-step", "__com.qmpdl_query-clock")


def _commands(machine: object) -> set[str]:
    return {c["name"] for c in machine.ok("query-commands")}  # type: ignore[attr-defined]


def test_the_commands_exist_only_on_the_virtual_clock() -> None:
    with vm("-accel", "sim,dirty-ring-size=4096") as host:
        assert not set(OURS) & _commands(host)
        schema = json.dumps(host.ok("query-qmp-schema"))
        assert "qmpdl" not in schema
        reply = host.call("__com.qmpdl_clock-step", ns=1)
        assert reply["error"]["class"] == "CommandNotFound"
    with vm(*VIRTUAL) as virtual:
        assert set(OURS) <= _commands(virtual)
        names = {e["name"] for e in virtual.ok("query-qmp-schema")}
        assert set(OURS) <= names
        clock = virtual.ok("__com.qmpdl_query-clock")
        assert clock == {"time-ns": START_NS, "wall-ns": EPOCH_S * SECOND, "seed": 3}


def test_time_moves_only_when_stepped_and_runs_the_throttle() -> None:
    with vm(*VIRTUAL, "-smp", "2", "--workload", "all:write,rate=400") as m:
        m.ok("set-vcpu-dirty-limit", **{"dirty-rate": 100})
        assert m.now() == START_NS
        assert m.step(5.0) == START_NS + 5 * SECOND
        rates = m.ok("query-vcpu-dirty-limit")
        assert [r["cpu-index"] for r in rates] == [0, 1]
        assert all(abs(r["current-rate"] - 100) <= 25 for r in rates), rates
        # without ns: to the next deadline (the throttle's next timer)
        before = m.now()
        deadline = m.ok("__com.qmpdl_query-clock")["next-deadline-ns"]
        assert m.step() == deadline > before
        assert m.call("__com.qmpdl_clock-step", ns=-1)["error"]["class"] == "GenericError"


def test_events_and_start_time_read_the_virtual_clock() -> None:
    with vm(*VIRTUAL) as m:
        m.step(2.5)
        m.ok("stop")
        (stop,) = [e for e in m.events if e["event"] == "STOP"]
        assert stop["timestamp"] == {"seconds": EPOCH_S + 2, "microseconds": 500000}
        m.ok("calc-dirty-rate", **{"calc-time": 1, "mode": "dirty-ring"})
        assert m.ok("query-dirty-rate")["start-time"] == EPOCH_S + 2
        m.step(1.0)
        assert m.ok("query-dirty-rate")["status"] == "measured"


def test_a_measurement_waits_for_the_clock() -> None:
    with vm(*VIRTUAL) as m:
        m.ok("calc-dirty-rate", **{"calc-time": 1, "mode": "dirty-ring"})
        m.step(0.999)
        assert m.ok("query-dirty-rate")["status"] == "measuring"
        m.step(0.001)
        result = m.ok("query-dirty-rate")
        assert result["status"] == "measured"
        assert result["vcpu-dirty-rate"][0]["dirty-rate"] > 400


def test_cancel_finishes_the_period_in_virtual_time() -> None:
    """QEMU's cancel joins the throttle thread, which ends its period first: under a
    stopped clock the reply comes once the clock has run to the period's end."""
    with vm(*VIRTUAL) as m:
        m.ok("set-vcpu-dirty-limit", **{"dirty-rate": 100})
        m.step(0.3)
        m.ok("cancel-vcpu-dirty-limit")
        assert m.now() >= START_NS + SECOND  # the period that began at 0 ended
        assert m.ok("query-vcpu-dirty-limit") == []
        assert "next-deadline-ns" not in m.ok("__com.qmpdl_query-clock")


def test_stop_waits_for_a_penalty_sleep_in_virtual_time() -> None:
    """From 8.2 a kick waits for a vCPU in its penalty sleep: ``stop`` takes that long."""
    with vm(*VIRTUAL) as m:
        m.ok("set-vcpu-dirty-limit", **{"dirty-rate": 1})
        m.step(4.0)
        before = m.now()
        m.ok("stop")
        assert m.now() >= before  # never backwards; up to one penalty later
        assert m.ok("query-status")["status"] == "paused"


def test_migration_under_a_stopped_clock_and_pre_switchover() -> None:
    """The migration thread runs until it waits for time; a step that finds it parked in
    pre-switchover (waiting for migrate-continue) returns; nothing deadlocks."""
    workdir = Path(tempfile.mkdtemp(prefix="qmpdl-vtime-"))
    uri = f"unix:{workdir}/mig.sock"
    guest = ("-m", "64M", "--workload", "0:idle")
    with (
        vm(*VIRTUAL, *guest, "-incoming", uri, workdir=workdir, name="dst") as dst,
        vm(*VIRTUAL, *guest, workdir=workdir, name="src") as src,
    ):
        caps = [{"capability": "pause-before-switchover", "state": True}]
        src.ok("migrate-set-capabilities", capabilities=caps)
        src.ok("migrate", uri=uri)
        src.step(1.0)
        assert src.ok("query-migrate")["status"] == "pre-switchover"
        src.step(1.0)  # parked: the step does not wait for it
        src.ok("migrate-continue", state="pre-switchover")
        src.step(0.1)
        assert src.ok("query-migrate")["status"] == "completed"
        assert src.ok("query-status")["status"] == "postmigrate"
        # the destination started the guest before it acknowledged the stream's end
        # (its clock follows the source's: this client never stepped it)
        assert dst.ok("query-status")["status"] == "running"
        # the destination's clock caught up with the source's (the stream carries it)
        assert dst.now() >= START_NS + SECOND


def test_migrate_cancel_under_a_stopped_clock() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="qmpdl-vtime-"))
    uri = f"unix:{workdir}/mig.sock"
    guest = ("-m", "64M", "--workload", "0:write,rate=1024,wss=32M")
    with (
        vm(*VIRTUAL, *guest, "-incoming", uri, workdir=workdir, name="dst"),
        vm(*VIRTUAL, *guest, workdir=workdir, name="src") as src,
    ):
        src.step(1.0)
        src.ok("migrate-set-parameters", **{"max-bandwidth": 10_000_000})
        src.ok("migrate", uri=uri)
        assert src.ok("query-migrate")["status"] == "active"
        src.step(0.5)
        src.ok("migrate_cancel")
        src.step(0.1)
        assert src.ok("query-migrate")["status"] == "cancelled"
        assert src.ok("query-status")["status"] == "running"


def test_host_clock_refuses_nothing_and_kvm_has_no_clock_option() -> None:
    with vm("-accel", "sim,clock=host") as m:
        assert not set(OURS) & _commands(m)
