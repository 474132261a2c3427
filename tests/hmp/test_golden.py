"""qmpdl's monitor against outputs recorded from real QEMU 7.2 (tests/hmp/golden.json).

Offline, every recorded step is replayed: the monitor must make exactly the recorded QMP
calls and, given their recorded replies, print exactly what QEMU printed.  With QEMU
installed, the sessions are run again live (regenerate with
``python -m tests.hmp.regenerate_golden``).
"""

from __future__ import annotations

from typing import Any

import pytest

from qmpdl.hmp import cpu_index_error, execute
from qmpdl.profile import get_profile
from tests.hmp.fakes import ScriptedQmp
from tests.hmp.live import PROFILE, load_golden, run_session, subset_of
from tests.hmp.sessions import SESSIONS

GOLDEN = load_golden()


def _hmp_steps() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{session['name']}[{index}] {step['hmp']!r}", step)
        for session in GOLDEN["sessions"]
        for index, step in enumerate(session["steps"])
        if "hmp" in step
    ]


def test_golden_was_recorded_from_the_profile_it_claims() -> None:
    assert GOLDEN["profile"] == PROFILE
    version = GOLDEN["qemu"]["qemu"]
    assert get_profile(PROFILE).version[:2] == (version["major"], version["minor"])
    assert [s["name"] for s in GOLDEN["sessions"]] == [s["name"] for s in SESSIONS]


@pytest.mark.parametrize(("label", "step"), _hmp_steps(), ids=[label for label, _ in _hmp_steps()])
def test_replay(label: str, step: dict[str, Any]) -> None:
    qmp = ScriptedQmp(step["calls"])
    ours = execute(
        step["hmp"], profile=get_profile(PROFILE), qmp=qmp, cpu_index=step.get("cpu_index")
    )
    assert qmp.finished(), f"{label}: only {qmp.position} of {len(step['calls'])} calls made"
    if step.get("subset"):
        assert subset_of(ours, step["output"]), f"{label}: {ours!r}"
    else:
        assert ours == step["output"]


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
                assert live["output"] == old["output"]
        elif live.get("stable"):
            assert live["reply"] == old["reply"], live["qmp"]
