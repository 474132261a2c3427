"""Nothing of the harness commands is built at start-up: their models, the recorded
data and the modules reading it come with the first command that needs them."""

from __future__ import annotations

import json
import subprocess
import sys

_PROGRAM = """
import json, sys
from qmpdl.cli import parse_args
from qmpdl.commands.executor import CommandExecutor
from qmpdl.qapi import QapiSchema
from qmpdl.system import build_machine

machine = build_machine(parse_args(["-accel", "sim", "-S", "--qemu-version", "7.2"]))
executor = CommandExecutor(machine, QapiSchema.load(machine.profile))
before = sorted(sys.modules)
executor.call_sync("query-machines", {})
after = sorted(sys.modules)
machine.teardown()
print(json.dumps([before, after]))
"""

_LAZY = (
    "qmpdl.qapi.types_deferred",
    "qmpdl.qemudata.store",
    "qmpdl.qemudata.machines",
    "qmpdl.qemudata.cpu",
    "qmpdl.qemudata.qomtree",
    "qmpdl.qemudata.block",
)


def test_harness_parts_load_on_first_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, check=True
    ).stdout
    before, after = json.loads(out.splitlines()[-1])
    assert not set(_LAZY) & set(before)
    assert {"qmpdl.qapi.types_deferred", "qmpdl.qemudata.machines"} <= set(after)
