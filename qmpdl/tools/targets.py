"""Machine configurations the differential tools run QEMU and qmpdl in.

Each target names one configuration for both: QEMU's options, and the qmpdl options
that present the same machine (qmpdl answers as QEMU 7.2, Debian's package).  Guests are
started paused (``-S``): no guest code runs, so no measurement depends on a guest, and
QEMU's SeaBIOS never meets dirty logging (on this host that livelocks a vCPU).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import qemu_binary, settle


@dataclass(frozen=True)
class Target:
    name: str
    qemu: tuple[str, ...]
    qmpdl: tuple[str, ...]
    description: str


_PC = ("-machine", "pc", "-m", "128", "-S")
_DEFER = ("-incoming", "defer")
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
        else:
            argv = [sys.executable, "-m", "qmpdl", "--qemu-version", "7.2", *target.qmpdl, *monitor]
        proc.spawn(argv)
        proc.wait_for_path(sock, 30)
        if kind == "qemu":
            settle(sock)
        yield sock
