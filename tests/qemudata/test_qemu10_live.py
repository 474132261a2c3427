"""The QEMU 10.0 data against the QEMU 10.0 binary, where this host has it
(/var/cache/qmpdl/qemu-10.0): libvirt's probe requests, answered by both.

The profile is ``10.0`` where qmpdl has one, else ``10.1`` (which uses the 10.0 data:
the nearest earlier recording).  The binary runs with its own modules (a private
mount namespace, as the recorder runs it: root only).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from qmpdl.profile import profile_names
from qmpdl.tools.normalize import normalize_line
from qmpdl.tools.record_probe import with_modules
from tests.qemudata import live
from tests.replay.recording import load

ROOT = Path("/var/cache/qmpdl/qemu-10.0/usr")
BINARY = ROOT / "bin" / "qemu-system-x86_64"
#: Answers that are not the recorded data's: the schema and the command list (qmpdl
#: describes only what it serves), the version, the host-dependent KVM answers.
SKIP = {"query-qmp-schema", "query-commands", "query-version", "query-migrate-capabilities"}


def answers(argv: list[str], requests: list[str]) -> list[str]:
    return [normalize_line(line) for line in live.answers(argv, requests)]


@pytest.mark.qemu
@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_probe_answers_match_qemu_10(accel: str) -> None:
    if not BINARY.exists() or os.geteuid() != 0:
        pytest.skip("QEMU 10.0 is not extracted at /var/cache/qmpdl/qemu-10.0 (or not root)")
    session = load("a-probe-real-x86_64")[0 if accel == "kvm" else 1]
    requests = [e.sent for e in session.exchanges if e.command not in SKIP and e.sent]
    # the host model depends on the host: compare the models QEMU defines
    requests = [r for r in requests if '"host"' not in r]
    machine = ["-S", "-no-user-config", "-nodefaults", "-nographic", "-machine"]
    machine.append(f"none,accel={accel}")
    modules = str(ROOT / "lib" / "x86_64-linux-gnu" / "qemu")
    qemu = with_modules(modules, [str(BINARY), "-L", str(ROOT / "share" / "qemu"), *machine])
    version = "10.0" if "10.0" in profile_names() else "10.1"
    fields = json.dumps({"machine_type": "none"})
    ours = [sys.executable, "-m", "qmpdl.tools.serve_config", fields, "--qemu-version", version]
    ours += ["-S", "-accel", "sim" if accel == "kvm" else "tcg"]
    theirs = answers(qemu, requests)
    mine = answers(ours, requests)
    for request, a, b in zip(requests, mine, theirs, strict=True):
        assert a == b, request
