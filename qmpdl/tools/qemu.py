"""Start real QEMU (the oracle) with a QMP socket, for tests and the differential tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from qmpdl.tools.process import ManagedProcess

QEMU_BINARY = "qemu-system-x86_64"

#: What qmpdl's tests compare against by default: QEMU with KVM's dirty ring, no guest.
DEFAULT_ARGS = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "none"]


def qemu_binary() -> str | None:
    """Path of ``qemu-system-x86_64`` or ``None``."""
    return shutil.which(QEMU_BINARY)


def kvm_usable() -> bool:
    """True when ``/dev/kvm`` can be opened read-write."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


class QemuProcess(ManagedProcess):
    """A real ``qemu-system-x86_64`` with one QMP unix socket, stopped on exit.

    ``args`` are the machine options (accelerator, machine, smp, ...); the display,
    defaults and the QMP socket are added here.
    """

    def __init__(
        self, args: list[str] | None = None, *, workdir: Path | None = None, timeout: float = 10.0
    ) -> None:
        binary = qemu_binary()
        if binary is None:
            raise FileNotFoundError(QEMU_BINARY)
        super().__init__(workdir=workdir)
        self.workdir = self.dir
        self.socket_path = str(self.dir / "qmp.sock")
        self.spawn(
            [
                binary,
                *(DEFAULT_ARGS if args is None else args),
                "-nographic",
                "-nodefaults",
                "-qmp",
                f"unix:{self.socket_path},server=on,wait=off",
            ]
        )
        self.wait_for_path(self.socket_path, timeout)
