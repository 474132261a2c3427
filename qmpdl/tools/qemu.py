"""Start real QEMU (the oracle) with a QMP socket, for tests and the differential tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP

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


def settle(address: str | tuple[str, int], timeout: float = 30.0) -> None:
    """Wait until a fresh QEMU's monitor at ``address`` serves clients normally.

    QEMU 7.2 has two start-up races that only a client connecting while the monitor is
    being set up can meet: the main thread may accept it before the monitor's I/O
    thread has installed its handlers, and then

    * the RESUME of the machine's start can reach it *before* the greeting (events go
      to every monitor that is not in negotiation mode, and a monitor that has not
      seen its client yet is not), and
    * it can be greeted twice: both threads see the connection open and each sends a
      greeting (seen with ``--preconfig``, where the main loop starts at once).

    One throw-away session that gets a reply from the main loop takes whatever such a
    client gets and proves start-up is over; later clients are accepted by the I/O
    thread and see neither.
    """
    with RawQMP(address, timeout) as conn:
        while b'"QMP"' not in conn.read_line():  # (pretty monitors: not the first line)
            pass
        conn.send(b'{"execute": "qmp_capabilities"}{"execute": "query-status", "id": "settled"}')
        while b'"id": "settled"' not in conn.read_line():
            pass


class QemuProcess(ManagedProcess):
    """A real ``qemu-system-x86_64`` with one QMP unix socket, stopped on exit.

    ``args`` are the machine options (accelerator, machine, smp, ...); the display,
    defaults and the QMP socket are added here.  The monitor is settled (:func:`settle`)
    before the constructor returns.
    """

    def __init__(
        self, args: list[str] | None = None, *, workdir: Path | None = None, timeout: float = 60.0
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
        try:
            settle(self.socket_path, max(timeout, 30.0))
        except BaseException:
            self.close()
            raise
