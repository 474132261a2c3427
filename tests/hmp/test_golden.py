"""qmpdl's monitor against outputs recorded from real QEMU 7.2 (tests/hmp/golden.json).

Offline, every recorded step is replayed: the monitor must make exactly the recorded QMP
calls and memory reads and, given their recorded replies and bytes, print exactly what
QEMU printed.  With QEMU installed, the sessions are run again live (regenerate with
``python -m tests.hmp.regenerate_golden``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from qmpdl.hmp import DumpDefaults, cpu_index_error, execute
from qmpdl.profile import get_profile
from tests.hmp.fakes import ScriptedMemory, ScriptedQmp
from tests.hmp.live import PROFILE, load_golden, run_session, subset_of
from tests.hmp.sessions import SESSIONS

GOLDEN = load_golden()
#: Sessions on a machine without a CPU: the monitor gets no guest memory.
_NO_CPU = {s["name"] for s in SESSIONS if not s.get("cpu", True)}


def _hmp_steps() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            f"{session['name']}[{index}] {step['hmp']!r}",
            step | {"cpu": session["name"] not in _NO_CPU},
        )
        for session in GOLDEN["sessions"]
        for index, step in enumerate(session["steps"])
        if "hmp" in step
    ]


def _replay(
    step: dict[str, Any], defaults: DumpDefaults
) -> tuple[str, ScriptedQmp, ScriptedMemory]:
    """Run a recorded step with its recorded replies and memory."""
    qmp = ScriptedQmp(step["calls"])
    memory = ScriptedMemory(step.get("reads", []))
    ours = execute(
        step["hmp"],
        profile=get_profile(PROFILE),
        qmp=qmp,
        cpu_index=step.get("cpu_index"),
        memory=memory if step["cpu"] else None,
        dump_defaults=defaults,
    )
    return ours, qmp, memory


def test_golden_was_recorded_from_the_profile_it_claims() -> None:
    assert GOLDEN["profile"] == PROFILE
    version = GOLDEN["qemu"]["qemu"]
    assert get_profile(PROFILE).version[:2] == (version["major"], version["minor"])
    assert [s["name"] for s in GOLDEN["sessions"]] == [s["name"] for s in SESSIONS]


@pytest.mark.parametrize(("label", "step"), _hmp_steps(), ids=[label for label, _ in _hmp_steps()])
def test_replay(label: str, step: dict[str, Any]) -> None:
    ours, qmp, memory = _replay(step, DumpDefaults(**step.get("dump_defaults", {})))
    assert qmp.finished(), f"{label}: only {qmp.position} of {len(step['calls'])} calls made"
    assert memory.finished(), f"{label}: only {memory.position} of the recorded reads made"
    if step.get("subset"):
        assert subset_of(ours, step["output"]), f"{label}: {ours!r}"
    else:
        assert ours == step["output"]


def test_dump_defaults_carry_over_between_steps() -> None:
    """Replayed in order with one remembered format per session, every step starts from
    the format recorded for it (the replays above start from the recording)."""
    for session in GOLDEN["sessions"]:
        defaults = DumpDefaults()
        for index, step in enumerate(session["steps"]):
            if "hmp" not in step:
                continue
            recorded = step.get("dump_defaults", asdict(DumpDefaults()))
            assert asdict(defaults) == recorded, f"{session['name']}[{index}] {step['hmp']!r}"
            _replay(step | {"cpu": session["name"] not in _NO_CPU}, defaults)
    assert any("dump_defaults" in s for _, s in _hmp_steps())


def test_subset_check_is_strict() -> None:
    listing = next(s for _, s in _hmp_steps() if s["hmp"] == "help")["output"]
    ours = execute("help", profile=get_profile(PROFILE), qmp=ScriptedQmp([]))
    assert subset_of(ours, listing)
    assert not subset_of(ours.replace("stop emulation", "stop it"), listing)
    lines = ours.split("\r\n")
    swapped = "\r\n".join([lines[1], lines[0], *lines[2:]])
    assert not subset_of(swapped, listing)
    assert not subset_of(ours + "bogus\r\n", listing)


def test_cpu_index_error_matches_qemu() -> None:
    replies = [
        step["reply"]
        for session in GOLDEN["sessions"]
        for step in session["steps"]
        if step.get("qmp", {}).get("execute") == "human-monitor-command"
    ]
    assert replies == [{"error": {"class": "GenericError", "desc": cpu_index_error().desc}}]


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("session", SESSIONS, ids=[s["name"] for s in SESSIONS])
def test_live_against_qemu(session: dict[str, Any]) -> None:
    """Run the session again: qmpdl must agree with QEMU on every step, and whatever
    does not depend on measurements or host thread ids must equal the recording."""
    run = run_session(session)
    assert run.mismatches == []
    recorded = next(s for s in GOLDEN["sessions"] if s["name"] == session["name"])["steps"]
    assert len(run.steps) == len(recorded)
    for live, old in zip(run.steps, recorded, strict=True):
        if "hmp" in live:
            assert live["hmp"] == old["hmp"]
            if not any(str(c["execute"]).startswith("query-") for c in live["calls"]):
                assert live["calls"] == old["calls"]
                assert live.get("reads") == old.get("reads")
                assert live.get("dump_defaults") == old.get("dump_defaults")
                assert live["output"] == old["output"]
        elif live.get("stable"):
            assert live["reply"] == old["reply"], live["qmp"]
