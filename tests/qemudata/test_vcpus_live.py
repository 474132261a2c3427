"""vCPU slots and objects for several -smp topologies: qmpdl against QEMU 7.2 live
(query-cpus-fast, query-hotpluggable-cpus, and each vCPU's topology properties)."""

from __future__ import annotations

import json
import sys

import pytest

from qmpdl.tools.normalize import normalize_line
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import qemu_binary
from qmpdl.tools.rawqmp import RawQMP

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
    with ManagedProcess() as proc:
        sock = str(proc.dir / "qmp.sock")
        proc.spawn([*argv, "-qmp", f"unix:{sock},server=on,wait=off"])
        proc.wait_for_path(sock, 30)
        with RawQMP(sock, timeout=30) as conn:
            conn.negotiate()
            cpus = conn.command(b'{"execute": "query-cpus-fast"}').decode()
            lines = [cpus, conn.command(b'{"execute": "query-hotpluggable-cpus"}').decode()]
            for cpu in json.loads(cpus)["return"]:
                for prop in PROPS:
                    request = {
                        "execute": "qom-get",
                        "arguments": {"path": cpu["qom-path"], "property": prop},
                    }
                    lines.append(conn.command(json.dumps(request).encode()).decode())
    return [normalize_line(line) for line in lines]


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
