"""The command line: QEMU's option spelling and QEMU's error texts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qmpdl.cli import UsageError, parse_args
from qmpdl.workload import Workload, WorkloadError, parse_workload, resolve_workloads

MiB = 1 << 20


def error(*argv: str) -> str:
    with pytest.raises(UsageError) as info:
        parse_args(list(argv))
    return str(info.value)


def test_defaults() -> None:
    c = parse_args([])
    assert (c.cpus, c.max_cpus, c.ram_size, c.accel.kind, c.accel.dirty_ring_size) == (
        1,
        1,
        128 * MiB,
        "sim",
        0,
    )
    assert c.qemu_version is None and c.monitors == []


def test_the_issue_command_line() -> None:
    c = parse_args(
        [
            "-qmp",
            "unix:qmp.sock,server=on,wait=off",
            "-smp",
            "4",
            "-accel",
            "sim,dirty-ring-size=4096",
        ]
    )
    assert c.cpus == 4 and c.accel.dirty_ring_size == 4096
    (mon,) = c.monitors
    (dev,) = c.chardevs
    assert (mon.chardev, dev.id, dev.path, dev.server, dev.wait) == (
        "compat_monitor0",
        "compat_monitor0",
        "qmp.sock",
        True,
        False,
    )


def test_monitor_forms() -> None:
    c = parse_args(
        [
            "-qmp",
            "tcp:127.0.0.1:4444,server=on,wait=off",
            "-qmp-pretty",
            "unix:/tmp/p.sock,server,nowait",
            "-chardev",
            "socket,id=mon,path=/tmp/m.sock",
            "-mon",
            "chardev=mon,mode=control,pretty=on",
            "--qmp",
            "unix:/tmp/out.sock",
        ]
    )
    assert [d.id for d in c.chardevs] == [
        "compat_monitor0",
        "compat_monitor1",
        "mon",
        "compat_monitor2",
    ]
    tcp, pretty, mon, out = c.chardevs
    assert (tcp.host, tcp.port, tcp.server, tcp.wait) == ("127.0.0.1", 4444, True, False)
    assert (pretty.server, pretty.wait) == (True, False)
    assert (mon.server, out.server) == (False, False)
    assert [m.pretty for m in c.monitors] == [False, True, True, False]


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (
            ["-accel", "sim,dirty-ring-size=3"],
            "qmpdl: -accel sim,dirty-ring-size=3: dirty-ring-size must be a power of two.",
        ),
        (
            ["-accel", "sim,dirty-ring-size=131072"],
            "qmpdl: -accel sim,dirty-ring-size=131072: KVM dirty ring size 131072 too big "
            "(maximum is 65536).  Please use a smaller value.\nqmpdl: -accel "
            "sim,dirty-ring-size=131072: failed to initialize kvm: Invalid argument",
        ),
        (
            ["-accel", "sim,dirty-ring-size=128"],
            "qmpdl: -accel sim,dirty-ring-size=128: Enabling of KVM dirty ring failed: Invalid "
            "argument. Suggested minimum value is 1024.\nqmpdl: -accel sim,dirty-ring-size=128: "
            "failed to initialize kvm: Invalid argument",
        ),
        (
            ["-accel", "sim,dirty-ring-size=-1"],
            "qmpdl: -accel sim,dirty-ring-size=-1: Parameter 'dirty-ring-size' expects uint32_t",
        ),
        (
            ["-accel", "sim,dirty-ring-size=abc"],
            "qmpdl: -accel sim,dirty-ring-size=abc: Parameter 'dirty-ring-size' expects uint64",
        ),
        (
            ["-smp", "4,maxcpus=2"],
            "qmpdl: Invalid CPU topology: maxcpus must be equal to or greater than smp: "
            "sockets (1) * dies (1) * cores (2) * threads (1) == maxcpus (2) < smp_cpus (4)",
        ),
        (["-smp", "abc"], "qmpdl: Parameter 'smp.cpus' expects integer"),
        (["-bogus"], "qmpdl: -bogus: invalid option"),
        (
            ["-mon", "chardev=nope,mode=control"],
            'qmpdl: -mon chardev=nope,mode=control: chardev "nope" not found',
        ),
        (
            ["--workload", "0:spin"],
            "qmpdl: --workload 0:spin: 'spin': KIND must be write, read or idle",
        ),
        (
            ["--qemu-version", "6.0"],
            "qmpdl: --qemu-version 6.0: unknown QEMU version '6.0' "
            "(known: 7.2, 8.1, 8.2, 9.0, 9.1, 9.2, 10.0, 10.1, 10.2)",
        ),
    ],
)
def test_errors_read_like_qemus(argv: list[str], text: str) -> None:
    assert error(*argv) == text


def test_smp_topology_as_qemu_computes_it() -> None:
    c = parse_args(["-smp", "sockets=2,cores=2"])
    assert (c.cpus, c.max_cpus) == (4, 4)
    assert c.topology.props(3) == {"socket_id": 1, "core_id": 1, "thread_id": 0}
    c = parse_args(["-smp", "maxcpus=4"])
    assert (c.cpus, c.max_cpus) == (4, 4)
    c = parse_args(["-smp", "2,maxcpus=4"])
    assert (c.cpus, c.max_cpus, c.cores) == (2, 4, 4)


def test_qemu_options_that_do_not_matter_are_accepted() -> None:
    c = parse_args(
        [
            "-nographic",
            "-nodefaults",
            "-display",
            "none",
            "-machine",
            "pc",
            "-m",
            "256",
            "-S",
            "-name",
            "vm",
        ]
    )
    assert c.ram_size == 256 * MiB and c.start_paused and c.name == "vm"


def test_workloads() -> None:
    options = [
        parse_workload("all:write,rate=300,wss=64M"),
        parse_workload("1:read"),
        parse_workload("2-3:idle"),
    ]
    assert resolve_workloads(options, 4) == [
        Workload(rate=300, wss=64 * MiB),
        Workload(kind="read"),
        Workload(kind="idle"),
        Workload(kind="idle"),
    ]
    with pytest.raises(WorkloadError, match="vCPU 5 does not exist"):
        resolve_workloads([parse_workload("5:idle")], 4)
    for bad in ("0", "x:write", "0:write,rate=fast", "0:write,speed=1", "3-1:idle"):
        with pytest.raises(WorkloadError):
            parse_workload(bad)


def test_the_command_exits_1_with_the_message_on_stderr() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qmpdl", "-accel", "sim,dirty-ring-size=3"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "qmpdl: -accel sim,dirty-ring-size=3: dirty-ring-size must be a power of two.\n"
    )


def test_help_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qmpdl", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and "-qmp dev" in result.stdout and "--workload" in result.stdout
