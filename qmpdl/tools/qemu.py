"""Start real QEMU (the oracle) with a QMP socket, for tests and the differential tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

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


class QemuProcess:
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
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="qmpdl-qemu-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.socket_path = str(workdir / "qmp.sock")
        self.argv = [
            binary,
            *(DEFAULT_ARGS if args is None else args),
            "-nographic",
            "-nodefaults",
            "-qmp",
            f"unix:{self.socket_path},server=on,wait=off",
        ]
        self.stderr_path = workdir / "qemu.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket_path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited early: {self.stderr_path.read_text()}")
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError("QEMU did not create its QMP socket")
            time.sleep(0.01)

    def __enter__(self) -> QemuProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
