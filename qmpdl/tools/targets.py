"""Machine configurations the differential tools run QEMU and qmpdl in.

Each target names one configuration for both: QEMU's options, and the qmpdl options
that present the same machine (qmpdl answers as QEMU 7.2, Debian's package).  Guests are
started paused (``-S``): no guest code runs, so no measurement depends on a guest, and
QEMU's SeaBIOS never meets dirty logging (on this host that livelocks a vCPU).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import qemu_binary


@dataclass(frozen=True)
class Target:
    name: str
    qemu: tuple[str, ...]
    qmpdl: tuple[str, ...]
    description: str
    #: MachineConfig fields qmpdl's options cannot set (python -m qmpdl.tools.serve_config)
    fields: dict[str, Any] = field(default_factory=dict)


_PC = ("-machine", "pc", "-m", "128", "-S")
_DEFER = ("-incoming", "defer")
_UUID = "3299e1a1-adc5-4a41-afdc-39b4896cf560"
_RAM = {"qom-type": "memory-backend-ram", "id": "pc.ram", "size": 134217728}
_IOTHREAD = {"qom-type": "iothread", "id": "iothread1"}
_DOMAIN_SMP = ("-smp", "2,sockets=2,cores=1,threads=1")
_DOMAIN_QEMU = (
    *("-name", "guest=dom", "-machine", "pc-i440fx-7.2,usb=off,memory-backend=pc.ram"),
    *("-cpu", "qemu64", "-m", "128", "-S", *_DOMAIN_SMP),
    *("-object", json.dumps(_RAM), "-object", json.dumps(_IOTHREAD), "-uuid", _UUID),
)
_DOMAIN_FIELDS: dict[str, Any] = {
    "name": "dom",
    "machine_type": "pc-i440fx-7.2",
    "machine_props": {"usb": "off", "memory-backend": "pc.ram"},
    "cpu_model": "qemu64",
    "objects": [_RAM, _IOTHREAD],
    "uuid": _UUID,
}
TARGETS = {
    t.name: t
    for t in (
        Target(
            "ring",
            ("-accel", "kvm,dirty-ring-size=4096", *_PC, "-smp", "1"),
            ("-accel", "sim,dirty-ring-size=4096", "-m", "128", "-S", "-smp", "1"),
            "KVM with a 4096-entry dirty ring, 1 vCPU",
        ),
        Target(
            "ring-smp",
            ("-accel", "kvm,dirty-ring-size=4096", *_PC, "-smp", "2,maxcpus=4"),
            ("-accel", "sim,dirty-ring-size=4096", "-m", "128", "-S", "-smp", "2,maxcpus=4"),
            "KVM with a dirty ring, 2 vCPUs present of 4",
        ),
        Target(
            "noring",
            ("-accel", "kvm", *_PC, "-smp", "1"),
            ("-accel", "sim", "-m", "128", "-S", "-smp", "1"),
            "KVM without a dirty ring",
        ),
        Target(
            "incoming",
            ("-accel", "kvm,dirty-ring-size=4096", *_PC, "-smp", "1", *_DEFER),
            ("-accel", "sim,dirty-ring-size=4096", "-m", "128", "-S", "-smp", "1", *_DEFER),
            "KVM with a dirty ring, waiting for an incoming migration (-incoming defer)",
        ),
        Target(
            "tcg",
            ("-accel", "tcg", *_PC, "-smp", "1"),
            ("-accel", "tcg", "-m", "128", "-S", "-smp", "1"),
            "TCG (no KVM)",
        ),
        Target(
            "none",
            ("-accel", "kvm", "-machine", "none", "-S"),
            ("-accel", "sim", "-S"),
            "the machine libvirt's capability probe runs: no board, no vCPUs, KVM",
            {"machine_type": "none"},
        ),
        Target(
            "domain",
            ("-accel", "kvm,dirty-ring-size=4096", *_DOMAIN_QEMU),
            ("-accel", "sim,dirty-ring-size=4096", "-m", "128", "-S", *_DOMAIN_SMP),
            "a libvirt domain: pc-i440fx-7.2, -cpu qemu64, a name, a UUID, a memory "
            "backend, an I/O thread, 2 vCPUs in 2 sockets",
            _DOMAIN_FIELDS,
        ),
    )
}


@contextlib.contextmanager
def start(kind: str, target: Target, workdir: Path | None = None) -> Iterator[str]:
    """Run QEMU (``kind`` "qemu") or qmpdl ("qmpdl") as ``target``; yield its socket."""
    with ManagedProcess(workdir=workdir) as proc:
        sock = str(proc.dir / "qmp.sock")
        monitor = ("-qmp", f"unix:{sock},server=on,wait=off")
        if kind == "qemu":
            binary = qemu_binary()
            if binary is None:
                raise FileNotFoundError("qemu-system-x86_64 is not installed")
            argv = [binary, *target.qemu, "-nographic", "-nodefaults", *monitor]
        elif target.fields:
            fields = json.dumps(target.fields)
            serve = [sys.executable, "-m", "qmpdl.tools.serve_config", fields]
            argv = [*serve, "--qemu-version", "7.2", *target.qmpdl, *monitor]
        else:
            argv = [sys.executable, "-m", "qmpdl", "--qemu-version", "7.2", *target.qmpdl, *monitor]
        proc.spawn(argv)
        proc.wait_for_path(sock, 30)
        yield sock
