"""The recorder against the installed QEMU 7.2: what it records now is what qmpdl ships
(the host-independent parts: the types and the machine-level answers)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from qmpdl.qemudata.store import load_version
from qmpdl.tools.qemu import qemu_binary
from qmpdl.tools.record_probe import main

#: Machine-level answers that do not depend on the host's KVM.
_HOST_INDEPENDENT = (
    "query-machines",
    "query-target",
    "query-tpm-models",
    "query-tpm-types",
    "query-command-line-options",
    "query-command-line-options-all-modules",
)


def _read(path: Path) -> Any:
    return json.loads(gzip.decompress(path.read_bytes()))


@pytest.mark.qemu
def test_recording_is_current(tmp_path: Path) -> None:
    binary = qemu_binary()
    assert binary is not None
    assert (
        main(
            [
                "--qemu",
                binary,
                "--version",
                "7.2",
                "--out",
                str(tmp_path),
                "--only",
                "types",
                "machine",
            ]
        )
        == 0
    )
    shipped_types = load_version("7.2", "qom-types.json.gz")
    types = _read(tmp_path / "qemu-7.2-qom-types.json.gz")
    # the shipped file is read with each object's keys reversed (see qmpdl.qemudata.store)
    assert json.dumps(types, sort_keys=True) == json.dumps(shipped_types, sort_keys=True)
    machine = _read(tmp_path / "qemu-7.2-machine.json.gz")
    shipped = load_version("7.2", "machine.json.gz")
    for key in _HOST_INDEPENDENT:
        assert json.dumps(machine[key], sort_keys=True) == json.dumps(shipped[key], sort_keys=True)
