"""The QEMU 10.0 data against the QEMU 10.0 binary, where this host has it
(/var/cache/qmpdl/qemu-10.0): libvirt's probe requests, answered by both.

The profile is ``10.0`` where qmpdl has one, else ``10.1`` (which uses the 10.0 data:
the nearest earlier recording).  The binary runs with its own modules (the oracle's
command: a private mount namespace, as the recorder runs it: root only).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from qmpdl.profile import profile_names
from qmpdl.tools.normalize import normalize_line
from qmpdl.tools.qemu import oracle
from tests.qemudata import live
from tests.replay.recording import load

#: Answers that are not the recorded data's: the schema and the command list (qmpdl
#: describes only what it serves), the version, the host-dependent KVM answers.
SKIP = {"query-qmp-schema", "query-commands", "query-version", "query-migrate-capabilities"}


def answers(argv: list[str], requests: list[str]) -> list[str]:
    return [normalize_line(line) for line in live.answers(argv, requests)]


@pytest.mark.qemu("10.0")
@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_probe_answers_match_qemu_10(accel: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("QEMU 10.0's own modules need a private mount namespace (root)")
    session = load("a-probe-real-x86_64")[0 if accel == "kvm" else 1]
    requests = [e.sent for e in session.exchanges if e.command not in SKIP and e.sent]
    # the host model depends on the host: compare the models QEMU defines
    requests = [r for r in requests if '"host"' not in r]
    machine = ["-S", "-no-user-config", "-nodefaults", "-nographic", "-machine"]
    machine.append(f"none,accel={accel}")
    command = oracle("10.0").command()
    assert command is not None
    qemu = [*command, *machine]
    version = "10.0" if "10.0" in profile_names() else "10.1"
    fields = json.dumps({"machine_type": "none"})
    ours = [sys.executable, "-m", "qmpdl.tools.serve_config", fields, "--qemu-version", version]
    ours += ["-S", "-accel", "sim" if accel == "kvm" else "tcg"]
    theirs = answers(qemu, requests)
    mine = answers(ours, requests)
    for request, a, b in zip(requests, mine, theirs, strict=True):
        assert a == b, request
