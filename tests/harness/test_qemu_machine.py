"""QEMU's own Python harness (QEMUMachine, vendored in tests/vendor) running qmpdl as its
QEMU, unchanged: the monitor comes as an inherited socket (``-chardev socket,id=mon,fd=N``),
the console as a listening socket (``set_console()``) or, as newer QEMUMachines pass it,
an inherited one; ``shutdown()`` is clean."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_kvm
from tests.vendor.qemu_machine import QEMUMachine

#: qmpdl as QEMUMachine starts it: ``python -m qmpdl ARGS`` (``wrapper`` + ``binary``).
WRAPPER = [sys.executable, "-m"]
BINARY = "qmpdl"


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[QEMUMachine]:
    vm = QEMUMachine(BINARY, wrapper=WRAPPER, base_temp_dir=str(tmp_path))
    try:
        yield vm
    finally:
        vm.shutdown()


def test_launch_limit_and_shutdown_with_the_defaults(machine: QEMUMachine) -> None:
    machine.add_args("-smp", "2", "-accel", "sim,dirty-ring-size=4096")
    machine.launch()
    assert machine.command("query-status") == {"status": "running", "running": True}
    machine.command("set-vcpu-dirty-limit", dirty_rate=100)
    limits = machine.command("query-vcpu-dirty-limit")
    assert isinstance(limits, list)
    assert [(v["cpu-index"], v["limit-rate"]) for v in limits] == [(0, 100), (1, 100)]
    machine.command("cancel-vcpu-dirty-limit")
    assert machine.command("query-vcpu-dirty-limit") == []
    chardevs = machine.command("query-chardev")
    assert chardevs == [{"frontend-open": True, "filename": "unix:", "label": "mon"}]
    machine.shutdown()
    assert machine.exitcode() == 0
    log = machine.get_log()
    assert log is not None and "Traceback" not in log


def test_hard_shutdown(machine: QEMUMachine) -> None:
    machine.launch()
    machine.shutdown(hard=True)
    assert machine.exitcode() == -9


def test_a_command_line_qmpdl_refuses_is_a_launch_failure(machine: QEMUMachine) -> None:
    from tests.vendor.qemu_machine import VMLaunchFailure

    machine.add_args("-accel", "sim,dirty-ring-size=3")
    with pytest.raises(VMLaunchFailure) as info:
        machine.launch()
    assert info.value.exitcode == 1
    assert info.value.output == (
        "qmpdl: -accel sim,dirty-ring-size=3: dirty-ring-size must be a power of two.\n"
    )


def _read_console(sock: socket.socket, want: int, timeout: float = 60.0) -> bytes:
    sock.settimeout(1.0)
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < want and time.monotonic() < deadline:
        try:
            data += sock.recv(64)
        except TimeoutError:
            continue
    return data


def test_console_on_sim_vcpus(machine: QEMUMachine) -> None:
    machine.set_console()
    machine.add_args("-accel", "sim")
    machine.launch()
    console = machine.console_socket

    def chardev() -> Any:
        reply = machine.command("query-chardev")
        assert isinstance(reply, list)
        return {c["label"]: c for c in reply}["console"]

    # connected once qmpdl has accepted the console's connection
    deadline = time.monotonic() + 60
    while chardev()["filename"].startswith("disconnected:") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert chardev()["frontend-open"] is True
    assert chardev()["filename"].startswith("unix:")
    assert chardev()["filename"].endswith(".con,server=on")
    console.close()
    machine.shutdown()
    assert machine.exitcode() == 0


def test_console_shows_the_guest_passes_on_kvm(machine: QEMUMachine) -> None:
    need_kvm()
    machine.set_console()
    machine.add_args("-accel", "kvm", "--workload", "all:write,wss=4M")
    machine.launch()
    passes = _read_console(machine.console_socket, 3)
    assert passes.count(b"#") >= 3, passes
    machine.shutdown()
    assert machine.exitcode() == 0


def test_console_as_an_inherited_socket(machine: QEMUMachine) -> None:
    """Newer QEMUMachines pass the console as ``-chardev socket,id=console,fd=N``."""
    need_kvm()
    ours, theirs = socket.socketpair()
    theirs.set_inheritable(True)
    machine.add_args(
        "-accel",
        "kvm",
        "--workload",
        "all:write,wss=4M",
        "-chardev",
        f"socket,id=console,fd={theirs.fileno()}",
        "-serial",
        "chardev:console",
    )
    machine.launch()
    theirs.close()
    try:
        passes = _read_console(ours, 3)
        assert passes.count(b"#") >= 3, passes
    finally:
        ours.close()
    machine.shutdown()
    assert machine.exitcode() == 0
