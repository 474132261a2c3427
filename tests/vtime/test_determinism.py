"""With ``clock=virtual`` and a seed, two processes given the same QMP script answer
with the same bytes, event timestamps included.

The scripts are the differential suite's (``tests/differential/corpus``), for the
machines of one process (their ``sleep`` steps become clock steps, and a ``poll`` gets a
clock step before it).  Per target, every script plays in corpus order on one process
(a new one, at the same path, after a script that ends it); both runs must give the same
transcript, byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qmpdl.tools.exchange import Script, Step, run_script
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.targets import TARGETS
from tests.differential.corpus import load_corpus

#: single-process machines whose options qmpdl's command line says in full
PLAYED = ("ring", "ring-smp", "noring", "tcg")
SEED = 11
#: the stateful groups: limits, measurements, run states, HMP on them
GROUPS = ("dirtylimit", "dirtylimit-smp", "dirtyrate", "runstate", "noring", "tcg", "hmp")


def _virtual(args: tuple[str, ...]) -> list[str]:
    out = list(args)
    i = out.index("-accel")
    out[i + 1] = out[i + 1] + ",clock=virtual"
    return [*out, "--seed", str(SEED)]


def _step(seconds: float) -> Step:
    ns = int(seconds * 1e9)
    request = {"execute": "__com.qmpdl_clock-step", "arguments": {"ns": ns}}
    return Step(send=json.dumps(request), through_reply=True)


def virtual_script(script: Script) -> Script:
    """``script`` with real-time waits made clock steps."""
    steps: list[Step] = []
    for step in script.steps:
        if step.sleep is not None:
            steps.append(_step(step.sleep))
        elif step.poll is not None:
            if "measuring" not in (step.until or ""):  # a state that needs time
                steps.append(_step(2.0))
            steps.append(step.model_copy(update={"timeout": 1.0}))
        else:
            steps.append(step)
    # a reply never waits for real time here: what does not come at once never will
    steps = [s.model_copy(update={"timeout": min(s.timeout, 3.0)}) for s in steps]
    return script.model_copy(update={"steps": steps, "drain": 0.05})


def scripts_for(target: str) -> list[Script]:
    out = []
    for script in load_corpus():
        text = script.model_dump_json()
        if script.target != target or "@" in text or '"dst"' in text:
            continue
        if script.group not in GROUPS:
            continue
        out.append(virtual_script(script))
    return out


def play(target: str, workdir: Path) -> list[str]:
    """Every script of ``target`` on qmpdl processes at ``workdir``; the transcript."""
    args = _virtual(TARGETS[target].qmpdl)
    sock = str(workdir / "qmp.sock")
    argv = [sys.executable, "-m", "qmpdl", "--qemu-version", "10.0", *args]
    argv += ["-qmp", f"unix:{sock},server=on,wait=off"]
    lines: list[str] = []
    proc: ManagedProcess | None = None
    try:
        for script in scripts_for(target):
            if proc is None or proc.proc.poll() is not None:
                if proc is not None:
                    proc.close()
                Path(sock).unlink(missing_ok=True)
                proc = ManagedProcess(workdir=workdir)
                proc.spawn(argv)
                proc.wait_for_path(sock, 60)
                lines.append("<process>")
            lines.append(f"== {script.name}")
            transcript = run_script(sock, script).lines()
            lines += transcript
            if any('"SHUTDOWN"' in line for line in transcript):
                # quit, or a guest powering off: the process ends (with -no-shutdown
                # it stays)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.proc.wait(5)
    finally:
        if proc is not None:
            proc.close()
    return lines


@pytest.mark.parametrize("target", PLAYED)
def test_two_processes_answer_the_same_bytes(target: str, tmp_path: Path) -> None:
    workdir = tmp_path / "vm"  # the same path in both runs (query-chardev shows it)
    workdir.mkdir()
    first = play(target, workdir)
    second = play(target, workdir)
    assert len(first) > 10
    if target == "ring":
        assert any('"timestamp"' in line for line in first)  # events, with their times
    diff = [(a, b) for a, b in zip(first, second, strict=False) if a != b]
    assert not diff, diff[:5]
    assert len(first) == len(second)


def test_the_virtual_time_is_in_the_transcript(tmp_path: Path) -> None:
    """The events' timestamps are the virtual clock's (2027-01-15 onwards), not the
    host's: a time that no real run could reproduce twice."""
    workdir = tmp_path / "vm"
    workdir.mkdir()
    with ThreadPoolExecutor(1) as pool:
        lines = pool.submit(play, "ring", workdir).result()
    stamps = [
        json.loads(line[line.index('{"timestamp"') :])["timestamp"]["seconds"]
        for line in lines
        if '{"timestamp"' in line
    ]
    assert stamps and all(1_800_000_000 <= s < 1_800_100_000 for s in stamps)
