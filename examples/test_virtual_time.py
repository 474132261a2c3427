"""Testing VM-management code against qmpdl on a virtual clock: copy this file.

Each test starts qmpdl with ``-accel sim,clock=virtual``: the emulated machine's time
stands still until the test advances it with ``__com.qmpdl_clock-step``, so a five-second
throttle scenario or a whole live migration runs in a fraction of a second, and gives
the same numbers on every run.  Run with ``pytest examples`` (needs ``qemu.qmp``:
``pip install -e '.[examples]'``).

The code under test here is two tiny "policies"; in your tests it is your own code
talking QMP to the socket.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

qmp_legacy = pytest.importorskip("qemu.qmp.legacy")

SECOND = 1_000_000_000  # the clock steps in nanoseconds


@contextmanager
def qmpdl(*options: str, name: str = "vm", ring: int = 4096) -> Iterator[Any]:
    """A qmpdl process on a virtual clock and a connected QMP client."""
    workdir = tempfile.mkdtemp(prefix="qmpdl-example-")
    sock = os.path.join(workdir, f"{name}.sock")
    argv = [sys.executable, "-m", "qmpdl", "-qmp", f"unix:{sock},server=on,wait=off"]
    argv += ["-accel", f"sim,dirty-ring-size={ring},clock=virtual", "--seed", "1", *options]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"qmpdl did not start: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.01)
        client = qmp_legacy.QEMUMonitorProtocol(sock)
        client.connect()
        try:
            yield client
        finally:
            # a destination whose migration was cancelled exits (as QEMU's does)
            with contextlib.suppress(EOFError, OSError):
                client.close()
    finally:
        proc.terminate()
        proc.wait(30)


def step(vm: Any, seconds: float) -> int:
    """Advance the VM's clock; returns its time in ns."""
    info = vm.cmd("__com.qmpdl_clock-step", ns=int(seconds * SECOND))
    return int(info["time-ns"])


# ---------------------------------------------------------------- a dirty-limit policy


def limit_noisy_vcpus(vm: Any, threshold: int, quota: int) -> list[int]:
    """The code under test: measure each vCPU (a 1 s dirty-ring measurement) and limit
    the ones dirtying more than ``threshold`` MB/s to ``quota``."""
    vm.cmd("calc-dirty-rate", **{"calc-time": 1, "mode": "dirty-ring"})
    step(vm, 1.0)  # on a real VM the policy would sleep; here the test moves time
    rates = vm.cmd("query-dirty-rate")["vcpu-dirty-rate"]
    noisy = [r["id"] for r in rates if r["dirty-rate"] > threshold]
    for cpu in noisy:
        vm.cmd("set-vcpu-dirty-limit", **{"cpu-index": cpu, "dirty-rate": quota})
    return noisy


def test_dirty_limit_policy_converges() -> None:
    # vCPU 0 writes 400 MiB/s, vCPU 1 only reads
    with qmpdl("-smp", "2", "--workload", "0:write,rate=400", "--workload", "1:read") as vm:
        assert limit_noisy_vcpus(vm, threshold=100, quota=150) == [0]
        step(vm, 5.0)
        (limited,) = vm.cmd("query-vcpu-dirty-limit")
        assert limited["cpu-index"] == 0
        # QEMU's controller settles within its dead band (+-25 MB/s) of the quota
        assert abs(limited["current-rate"] - 150) <= 25


# ---------------------------------------------------------------- a migration policy

#: A guest that rewrites 12 MiB 21 times a second, over a 20 MB/s link with 400 ms of
#: downtime allowed: every pass finds the whole 12 MiB dirty again, more than the 8 MB
#: that fit in the downtime, so without help the migration never converges.  Under the
#: dirty limit the writer dirties one ring (1024 entries, 4 MiB) per penalty sleep.
WRITER = ("-m", "32M", "--workload", "0:write,rate=256,wss=12M")
RING = 1024


def migrate(src: Any, uri: str, *, dirty_limit: bool, give_up_after: float) -> str:
    """The code under test: start a migration (with the dirty-limit capability or not),
    wait for it; cancel it if it has not finished after ``give_up_after`` seconds."""
    caps = [{"capability": "dirty-limit", "state": dirty_limit}]
    src.cmd("migrate-set-capabilities", capabilities=caps)
    src.cmd("migrate-set-parameters", **{"max-bandwidth": 20_000_000, "downtime-limit": 400})
    src.cmd("migrate", uri=uri)
    waited = 0.0
    while waited < give_up_after:
        status = str(src.cmd("query-migrate")["status"])
        if status in ("completed", "failed"):
            return status
        step(src, 0.5)
        waited += 0.5
    src.cmd("migrate_cancel")
    return "cancelled"


@pytest.mark.parametrize("dirty_limit", [False, True])
def test_migration_converges_only_with_dirty_limit(dirty_limit: bool) -> None:
    with ExitStack() as stack:
        workdir = tempfile.mkdtemp(prefix="qmpdl-example-mig-")
        uri = f"unix:{workdir}/migration.sock"
        dst = stack.enter_context(qmpdl(*WRITER, "-incoming", uri, name="dst", ring=RING))
        src = stack.enter_context(qmpdl(*WRITER, name="src", ring=RING))
        step(src, 1.0)  # the guest runs a while first
        status = migrate(src, uri, dirty_limit=dirty_limit, give_up_after=8.0)
        if dirty_limit:
            assert status == "completed"
            # the destination follows the source's clock: once the source says
            # completed, the guest runs there (no need to step or wait for it)
            assert dst.cmd("query-status")["status"] == "running"
        else:
            assert status == "cancelled"
