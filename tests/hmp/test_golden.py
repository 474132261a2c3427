"""qmpdl's monitor against outputs recorded from real QEMU 7.2 and 10.0
(tests/hmp/golden-qemu-VERSION.json), each replayed with the profile of its version.

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
from tests.conftest import need_qemu
from tests.hmp.fakes import ScriptedMemory, ScriptedQmp
from tests.hmp.live import VERSIONS, load_golden, run_session, subset_of
from tests.hmp.sessions import SESSIONS

GOLDEN = {version: load_golden(version) for version in VERSIONS}
#: Sessions on a machine without a CPU: the monitor gets no guest memory.
_NO_CPU = {s["name"] for s in SESSIONS if not s.get("cpu", True)}


def _hmp_steps(version: str = "7.2") -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            f"{session['name']}[{index}] {step['hmp']!r}",
            step | {"cpu": session["name"] not in _NO_CPU, "version": version},
        )
        for session in GOLDEN[version]["sessions"]
        for index, step in enumerate(session["steps"])
        if "hmp" in step
    ]


def _all_steps() -> list[Any]:
    return [
        pytest.param(label, step, id=f"{version}-{label}")
        for version in VERSIONS
        for label, step in _hmp_steps(version)
    ]


def _replay(
    step: dict[str, Any], defaults: DumpDefaults
) -> tuple[str, ScriptedQmp, ScriptedMemory]:
    """Run a recorded step with its recorded replies and memory."""
    qmp = ScriptedQmp(step["calls"])
    memory = ScriptedMemory(step.get("reads", []))
    ours = execute(
        step["hmp"],
        profile=get_profile(step["version"]),
        qmp=qmp,
        cpu_index=step.get("cpu_index"),
        memory=memory if step["cpu"] else None,
        dump_defaults=defaults,
    )
    return ours, qmp, memory


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_was_recorded_from_the_profile_it_claims(version: str) -> None:
    golden = GOLDEN[version]
    assert golden["profile"] == version
    qemu = golden["qemu"]["qemu"]
    assert get_profile(version).version[:2] == (qemu["major"], qemu["minor"])
    assert [s["name"] for s in golden["sessions"]] == [s["name"] for s in SESSIONS]


@pytest.mark.parametrize(("label", "step"), _all_steps())
def test_replay(label: str, step: dict[str, Any]) -> None:
    ours, qmp, memory = _replay(step, DumpDefaults(**step.get("dump_defaults", {})))
    assert qmp.finished(), f"{label}: only {qmp.position} of {len(step['calls'])} calls made"
    assert memory.finished(), f"{label}: only {memory.position} of the recorded reads made"
    if step.get("subset"):
        assert subset_of(ours, step["output"]), f"{label}: {ours!r}"
    else:
        assert ours == step["output"]


@pytest.mark.parametrize("version", VERSIONS)
def test_dump_defaults_carry_over_between_steps(version: str) -> None:
    """Replayed in order with one remembered format per session, every step starts from
    the format recorded for it (the replays above start from the recording)."""
    for session in GOLDEN[version]["sessions"]:
        defaults = DumpDefaults()
        for index, step in enumerate(session["steps"]):
            if "hmp" not in step:
                continue
            recorded = step.get("dump_defaults", asdict(DumpDefaults()))
            assert asdict(defaults) == recorded, f"{session['name']}[{index}] {step['hmp']!r}"
            cpu = session["name"] not in _NO_CPU
            _replay(step | {"cpu": cpu, "version": version}, defaults)
    assert any("dump_defaults" in s for _, s in _hmp_steps(version))


def test_subset_check_is_strict() -> None:
    listing = next(s for _, s in _hmp_steps() if s["hmp"] == "help")["output"]
    ours = execute("help", profile=get_profile("7.2"), qmp=ScriptedQmp([]))
    assert subset_of(ours, listing)
    assert not subset_of(ours.replace("stop emulation", "stop it"), listing)
    lines = ours.split("\r\n")
    swapped = "\r\n".join([lines[1], lines[0], *lines[2:]])
    assert not subset_of(swapped, listing)
    assert not subset_of(ours + "bogus\r\n", listing)


def test_cpu_index_error_matches_qemu() -> None:
    replies = [
        step["reply"]
        for version in VERSIONS
        for session in GOLDEN[version]["sessions"]
        for step in session["steps"]
        if step.get("qmp", {}).get("execute") == "human-monitor-command"
    ]
    error = {"error": {"class": "GenericError", "desc": cpu_index_error().desc}}
    assert replies == [error] * len(VERSIONS)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("session", SESSIONS, ids=[s["name"] for s in SESSIONS])
def test_live_against_qemu(session: dict[str, Any], version: str) -> None:
    """Run the session again: qmpdl must agree with QEMU on every step, and whatever
    does not depend on measurements or host thread ids must equal the recording."""
    need_qemu(version)
    run = run_session(session, version)
    assert run.mismatches == []
    sessions = GOLDEN[version]["sessions"]
    recorded = next(s for s in sessions if s["name"] == session["name"])["steps"]
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
