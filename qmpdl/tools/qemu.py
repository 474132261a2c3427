"""Start real QEMU (the oracle) with a QMP socket, for tests and the differential tools.

Two real QEMUs serve as oracles, one per profile they verify (:data:`ORACLES`): Debian
12's QEMU 7.2 from the system's ``qemu-system-x86`` package, and QEMU 10.0 from Debian's
``bookworm-backports``, extracted (``dpkg -x``, by ``.ci/fetch-qemu-10.0``) into a cache
directory outside the checkout and run with ``-L DIR/usr/share/qemu`` so that it finds its
own option ROMs (the BIOS comes from the system's seabios package), and with its own
modules (:func:`with_modules`): Debian's QEMU looks for them in a compiled-in directory
that holds 7.2's, and 10.0 aborts when it loads one (``qom-list-types`` loads them all).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP

QEMU_BINARY = "qemu-system-x86_64"

#: What qmpdl's tests compare against by default: QEMU with KVM's dirty ring, no guest.
DEFAULT_ARGS = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "none"]

#: Where ``.ci/fetch-qemu-10.0`` extracts QEMU 10.0 (overridden by ``QMPDL_QEMU_10_0_DIR``).
QEMU_10_0_DIR = "/var/cache/qmpdl/qemu-10.0"


@dataclass(frozen=True)
class Oracle:
    """A real QEMU binary and the qmpdl profile (``--qemu-version``) it verifies."""

    #: the profile's name, also the key of :data:`ORACLES`
    profile: str
    #: how ``--version`` begins for the right binary
    banner: str
    #: a path, or a name looked up in ``PATH``
    binary: str
    #: the ``-L`` directory (None: the binary's built-in data directory only)
    datadir: str | None = None
    #: the binary's own modules directory (None: the installed ones are its own)
    moduledir: str | None = None
    #: where the binary comes from (for messages)
    source: str = ""

    def path(self) -> str | None:
        """The binary's path when it exists and is this version, else ``None``."""
        return _checked_path(self.binary, self.banner)

    def command(self) -> list[str] | None:
        """The binary and its ``-L`` option, run with its own modules, or ``None`` when
        it is not available."""
        path = self.path()
        if path is None:
            return None
        return with_modules(self.moduledir, [path, *(["-L", self.datadir] if self.datadir else [])])

    def missing(self) -> str:
        """Why :meth:`command` is ``None`` (for skip and failure messages)."""
        return f"QEMU {self.profile} ({self.binary}) is not available: {self.source}"


#: Where Debian's QEMU looks for its modules (compiled in).
SYSTEM_MODULE_DIR = "/usr/lib/x86_64-linux-gnu/qemu"


def with_modules(module_dir: str | None, argv: list[str]) -> list[str]:
    """``argv`` run where QEMU finds the modules of ``module_dir`` in its compiled-in
    module directory: as root, a private mount namespace with ``module_dir`` bound
    there (a binary that loads another build's module aborts; ``QEMU_MODULE_DIR``
    alone is not enough, as QEMU falls back to the compiled-in directory for a module
    that its own directory lacks); otherwise ``QEMU_MODULE_DIR``, the best it gets.
    The command execs the binary: its pid is QEMU's."""
    if module_dir is None:
        return argv
    if os.geteuid() != 0:
        return ["env", f"QEMU_MODULE_DIR={module_dir}", *argv]
    mount = 'mount --bind "$0" "$1" && shift && exec "$@"'
    return ["unshare", "-m", "sh", "-c", mount, module_dir, SYSTEM_MODULE_DIR, *argv]


def _qemu_10_0_dir() -> str:
    return os.environ.get("QMPDL_QEMU_10_0_DIR", QEMU_10_0_DIR)


#: The oracles by profile name, oldest first.
ORACLES: dict[str, Oracle] = {
    o.profile: o
    for o in (
        Oracle(
            "7.2",
            "QEMU emulator version 7.2.",
            QEMU_BINARY,
            source="apt-get install qemu-system-x86 (Debian 12)",
        ),
        Oracle(
            "10.0",
            "QEMU emulator version 10.0.",
            f"{_qemu_10_0_dir()}/usr/bin/{QEMU_BINARY}",
            f"{_qemu_10_0_dir()}/usr/share/qemu",
            f"{_qemu_10_0_dir()}/usr/lib/x86_64-linux-gnu/qemu",
            source="as root: .ci/fetch-qemu-10.0 (Debian's bookworm-backports, dpkg -x)",
        ),
    )
}


@cache
def _checked_path(binary: str, banner: str) -> str | None:
    path = shutil.which(binary)
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if out.startswith(banner) else None


def oracle(version: str = "7.2") -> Oracle:
    """The oracle that verifies profile ``version``."""
    try:
        return ORACLES[version]
    except KeyError:
        raise ValueError(
            f"no QEMU oracle for {version!r} (oracles: {', '.join(ORACLES)})"
        ) from None


def qemu_command(version: str = "7.2") -> list[str] | None:
    """QEMU ``version``'s command (:meth:`Oracle.command`), or ``None`` when not
    available."""
    return oracle(version).command()


def qemu_binary(version: str = "7.2") -> str | None:
    """Path of QEMU ``version``'s ``qemu-system-x86_64`` or ``None``."""
    return oracle(version).path()


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
    """A real QEMU (``version``, an oracle) with one QMP unix socket, stopped on exit.

    ``args`` are the machine options (accelerator, machine, smp, ...); the display,
    defaults and the QMP socket are added here.  The monitor is settled (:func:`settle`)
    before the constructor returns.
    """

    def __init__(
        self,
        args: list[str] | None = None,
        *,
        workdir: Path | None = None,
        timeout: float = 60.0,
        version: str = "7.2",
    ) -> None:
        command = qemu_command(version)
        if command is None:
            raise FileNotFoundError(oracle(version).missing())
        super().__init__(workdir=workdir)
        self.workdir = self.dir
        self.version = version
        self.socket_path = str(self.dir / "qmp.sock")
        self.spawn(
            [
                *command,
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
