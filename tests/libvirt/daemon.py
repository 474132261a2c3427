"""A libvirtd of the tests' own, isolated from the host's.

libvirtd runs in a private mount namespace (``unshare --mount``) in which temporary
directories are bind-mounted over ``/etc/libvirt``, ``/run/libvirt``,
``/var/lib/libvirt``, ``/var/cache/libvirt`` and ``/var/log/libvirt``: its
configuration, its sockets, its domain definitions and its emulator capability cache
all live in the test's directory, and the host's stay untouched.  The sockets are
reached from outside through the bind source (``qemu:///system?socket=...``).  Only
the daemon started here is ever touched: :meth:`PrivateLibvirtd.stop` destroys its
domains and stops it by pid.

The configuration is the one ``../shared/anchors/libvirt-9.0`` describes for running
libvirtd as root without systemd, plus ``cgroup_controllers = []`` (no cgroups are
created for the domains) and the monitor debug log (``log/libvirtd.log``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

#: What is bind-mounted over what, inside the daemon's mount namespace.
MOUNTS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}

#: The monitor debug log of ../shared/anchors/libvirt-9.0 (every QMP exchange).
LOG_FILTERS = (
    "1:qemu.qemu_monitor 1:qemu.qemu_monitor_json 1:qemu.qemu_process 1:qemu.qemu_capabilities 3:*"
)

LIBVIRTD_CONF = """\
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_filters = "{filters}"
log_outputs = "1:file:{log}"
"""

QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
stdio_handler = "file"
remember_owner = 0
namespaces = [ ]
cgroup_controllers = [ ]
"""


def libvirt_missing() -> str | None:
    """Why a private libvirtd cannot run here (None when it can)."""
    for tool in ("libvirtd", "virsh", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run .ci/install-libvirt)"
    if os.geteuid() != 0:
        return "a private libvirtd needs root (mount namespace, qemu:///system)"
    try:
        import pwd

        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        return "the libvirt-qemu user does not exist (run .ci/install-libvirt)"
    return None


class VirshError(RuntimeError):
    """virsh exited with a non-zero status."""


class PrivateLibvirtd:
    """libvirtd with its state in ``workdir``; ``uri`` reaches it."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.paths = {name: workdir / name for name in MOUNTS}
        self.uri = f"qemu:///system?socket={self.paths['run']}/libvirt-sock"
        self.log = self.paths["log"] / "libvirtd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 120.0) -> None:
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        for target in MOUNTS.values():
            # empty mount points on the host (the package's own install creates them)
            os.makedirs(target, exist_ok=True)
        conf = self.paths["etc"] / "libvirtd.conf"
        conf.write_text(LIBVIRTD_CONF.format(filters=LOG_FILTERS, log=self.log))
        (self.paths["etc"] / "qemu.conf").write_text(QEMU_CONF)
        script = "set -e\n" + "".join(
            f"mount --bind {self.paths[name]} {target}\n" for name, target in MOUNTS.items()
        )
        script += f"exec libvirtd --config {MOUNTS['etc']}/libvirtd.conf\n"
        with open(self.dir / "libvirtd.stderr", "wb") as err:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        socket_path = self.paths["run"] / "libvirt-sock"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"libvirtd exited with {self.proc.returncode}: {self.stderr()}")
            if socket_path.exists() and self._answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"libvirtd did not start: {self.stderr()}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        result = subprocess.run(
            ["virsh", "-c", self.uri, "uri"], capture_output=True, timeout=60, check=False
        )
        return result.returncode == 0

    def stderr(self) -> str:
        path = self.dir / "libvirtd.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Destroy this daemon's domains, then stop it (SIGTERM, SIGKILL if need be)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for name in self.domains():
                self.virsh("destroy", name, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ virsh

    def virsh(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["virsh", "-c", self.uri, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise VirshError(
                f"virsh {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def domains(self) -> list[str]:
        """Names of this daemon's running domains."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        result = self.virsh("list", "--name", check=False)
        return [line for line in result.stdout.split() if line]

    def domain_log(self, name: str) -> str:
        """What the emulator of domain ``name`` wrote (libvirt's per-domain log)."""
        path = self.paths["log"] / "qemu" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""
