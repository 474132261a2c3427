"""vCPU slots and objects for several -smp topologies: qmpdl against QEMU 7.2 live
(query-cpus-fast, query-hotpluggable-cpus, and each vCPU's topology properties)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from qmpdl.tools.normalize import normalize_line
from qmpdl.tools.qemu import qemu_binary
from tests.qemudata import live

TOPOLOGIES = [
    "1",
    "3",
    "2,maxcpus=4",
    "6,sockets=2,cores=3,threads=1",
    "4,sockets=2,cores=2,threads=2,maxcpus=8",
    "8,sockets=2,dies=2,cores=1,threads=2",
    "6,sockets=1,dies=3,cores=1,threads=2",
]
PROPS = ("apic-id", "socket-id", "die-id", "core-id", "thread-id", "lapic")


def answers(argv: list[str]) -> list[str]:
    """The vCPU lists, then each vCPU's topology properties."""
    first = live.answers(argv, [{"execute": "query-cpus-fast"}])[0]
    requests: list[dict[str, Any] | str] = [
        {"execute": "query-cpus-fast"},
        {"execute": "query-hotpluggable-cpus"},
    ]
    for cpu in json.loads(first)["return"]:
        requests += [
            {"execute": "qom-get", "arguments": {"path": cpu["qom-path"], "property": prop}}
            for prop in PROPS
        ]
    return [normalize_line(line) for line in live.answers(argv, requests)]


@pytest.mark.qemu
@pytest.mark.parametrize("smp", TOPOLOGIES)
def test_vcpus_match_qemu(smp: str) -> None:
    binary = qemu_binary()
    assert binary is not None
    common = ["-S", "-m", "128", "-smp", smp]
    qemu = answers(
        [binary, "-nodefaults", "-nographic", "-machine", "pc", "-accel", "kvm", *common]
    )
    ours = answers(
        [sys.executable, "-m", "qmpdl", "--qemu-version", "7.2", "-accel", "sim", *common]
    )
    assert ours == qemu
