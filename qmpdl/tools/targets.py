"""Machine configurations the differential tools run QEMU and qmpdl in.

Each target names one configuration for both: QEMU's options, and the qmpdl options
that present the same machine.  Both run as one oracle version (:data:`ORACLES`): the
real QEMU of that version, and qmpdl with the matching ``--qemu-version``.  Most guests
are started paused (``-S``): no guest code runs, so no measurement depends on a guest,
and QEMU's SeaBIOS never meets dirty logging (on this host that livelocks a vCPU).

The ``migration`` target is two processes: a source whose one vCPU runs the writer loop
of the anchors (QEMU: qmpdl's multiboot image, ``-kernel``; qmpdl: its simulated writer)
and a destination waiting for it (``-incoming unix:...``).  Scripts name the
destination's monitor per step and use placeholders for what differs between the
processes (:attr:`Target.variables`, ``@NAME@`` in a request).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qmpdl.kvm import guest
from qmpdl.tools.exchange import substitute
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import ORACLES, oracle, settle


@dataclass(frozen=True)
class Target:
    name: str
    qemu: tuple[str, ...]
    qmpdl: tuple[str, ...]
    description: str
    #: MachineConfig fields qmpdl's options cannot set (python -m qmpdl.tools.serve_config)
    fields: dict[str, Any] = field(default_factory=dict)
    #: a migration destination started beside the machine: (QEMU's, qmpdl's) options
    peer: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    #: ``@NAME@`` placeholders of the scripts' requests, for "qemu" and for "qmpdl"
    variables: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoints:
    """Where a started target answers."""

    sock: str
    #: the destination's monitor (targets with a peer)
    peer: str | None = None
    #: the placeholders' values for this kind and process
    variables: Mapping[str, str] = field(default_factory=dict)


_KVM_RING = "kvm,dirty-ring-size=4096"
_SIM_RING = "sim,dirty-ring-size=4096"
_DEFER = ("-incoming", "defer")


def _pc(
    qemu_accel: str, qmpdl_accel: str, smp: str, *extra: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """QEMU's and qmpdl's options of a paused 128 MiB ``pc`` with ``-smp SMP``."""
    return (
        ("-accel", qemu_accel, "-machine", "pc", "-m", "128", "-S", "-smp", smp, *extra),
        ("-accel", qmpdl_accel, "-m", "128", "-S", "-smp", smp, *extra),
    )


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
#: The migration stream between a target and its peer (``@DIR@``: the scratch directory).
_MIGRATION_URI = "unix:@DIR@/migration.sock"
#: The source's writer: QEMU boots qmpdl's multiboot image (``@IMAGE@``), qmpdl simulates
#: the same loop (one vCPU writing ~450 MiB/s over 99 MiB, the default workload).
_WRITER_QEMU = ("-accel", _KVM_RING, "-machine", "pc", "-m", "128")
_WRITER_QMPDL = ("-accel", _SIM_RING, "-m", "128", "--workload", "0:write")
TARGETS = {
    t.name: t
    for t in (
        Target("ring", *_pc(_KVM_RING, _SIM_RING, "1"), "KVM with a 4096-entry dirty ring, 1 vCPU"),
        Target(
            "ring-smp",
            *_pc(_KVM_RING, _SIM_RING, "2,maxcpus=4"),
            "KVM with a dirty ring, 2 vCPUs present of 4",
        ),
        Target("noring", *_pc("kvm", "sim", "1"), "KVM without a dirty ring"),
        Target(
            "incoming",
            *_pc(_KVM_RING, _SIM_RING, "1", *_DEFER),
            "KVM with a dirty ring, waiting for an incoming migration (-incoming defer)",
        ),
        Target("tcg", *_pc("tcg", "tcg", "1"), "TCG (no KVM)"),
        Target(
            "none",
            ("-accel", "kvm", "-machine", "none", "-S"),
            ("-accel", "sim", "-S"),
            "the machine libvirt's capability probe runs: no board, no vCPUs, KVM",
            {"machine_type": "none"},
        ),
        Target(
            "domain",
            ("-accel", _KVM_RING, *_DOMAIN_QEMU),
            ("-accel", _SIM_RING, "-m", "128", "-S", *_DOMAIN_SMP),
            "a libvirt domain: pc-i440fx-7.2, -cpu qemu64, a name, a UUID, a memory "
            "backend, an I/O thread, 2 vCPUs in 2 sockets",
            _DOMAIN_FIELDS,
        ),
        Target(
            "migration",
            (*_WRITER_QEMU, "-smp", "1", "-kernel", "@IMAGE@"),
            (*_WRITER_QMPDL, "-smp", "1"),
            "a writer guest (1 vCPU, dirty ring) and a destination to migrate it to",
            peer=(
                (*_WRITER_QEMU, "-smp", "1", "-kernel", "@IMAGE@", "-incoming", _MIGRATION_URI),
                (*_WRITER_QMPDL, "-smp", "1", "-incoming", _MIGRATION_URI),
            ),
            variables={
                # the writer's pass counter (its parameter block + 0x0c)
                "qemu": {"PASSES": f"{guest.MULTIBOOT_LOAD + 0x1000 + 0x0C:#x}"},
                "qmpdl": {"PASSES": f"{guest.BLOCK_BASE + 0x0C:#x}"},
            },
        ),
    )
}

#: The versions the differential tools compare, oldest first.
VERSIONS = tuple(ORACLES)


def _argv(
    kind: str,
    version: str,
    args: tuple[str, ...],
    monitor: str,
    fields: Mapping[str, Any] | None = None,
) -> list[str]:
    qmp = ("-qmp", f"unix:{monitor},server=on,wait=off")
    if kind == "qemu":
        command = oracle(version).command()
        if command is None:
            raise FileNotFoundError(oracle(version).missing())
        return [*command, *args, "-nographic", "-nodefaults", *qmp]
    if fields:
        serve = [sys.executable, "-m", "qmpdl.tools.serve_config", json.dumps(fields)]
        return [*serve, "--qemu-version", version, *args, *qmp]
    return [sys.executable, "-m", "qmpdl", "--qemu-version", version, *args, *qmp]


def _spawn(proc: ManagedProcess, kind: str, argv: list[str], sock: str) -> None:
    """Start ``argv`` in ``proc`` and wait for its monitor ``sock`` (QEMU's: until it
    settled)."""
    proc.spawn(argv)
    proc.wait_for_path(sock, 30)
    if kind == "qemu":
        settle(sock)


def _substituted(args: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(substitute(arg, values) for arg in args)


@contextlib.contextmanager
def launch(
    kind: str, target: Target, workdir: Path | None = None, version: str = "7.2"
) -> Iterator[Endpoints]:
    """Run QEMU ``version`` (``kind`` "qemu") or qmpdl answering as it ("qmpdl") as
    ``target`` (and its peer, started first); yield where they answer."""
    with contextlib.ExitStack() as stack:
        proc = stack.enter_context(ManagedProcess(workdir=workdir))
        values = {"DIR": str(proc.dir)}
        values["MIGRATION_URI"] = substitute(_MIGRATION_URI, values)
        if kind == "qemu" and any("@IMAGE@" in arg for arg in target.qemu):
            values["IMAGE"] = str(guest.write_multiboot_image(proc.dir / "writer.img"))
        peer_sock = None
        if target.peer is not None:
            peer = stack.enter_context(ManagedProcess(workdir=proc.dir))
            peer_sock = str(proc.dir / "peer.sock")
            args = target.peer[0] if kind == "qemu" else target.peer[1]
            argv = _argv(kind, version, _substituted(args, values), peer_sock)
            _spawn(peer, kind, argv, peer_sock)
        sock = str(proc.dir / "qmp.sock")
        args = _substituted(target.qemu if kind == "qemu" else target.qmpdl, values)
        _spawn(proc, kind, _argv(kind, version, args, sock, target.fields), sock)
        variables = {**values, **target.variables.get(kind, {})}
        yield Endpoints(sock, peer_sock, variables)


@contextlib.contextmanager
def start(
    kind: str, target: Target, workdir: Path | None = None, version: str = "7.2"
) -> Iterator[str]:
    """:func:`launch` for a target without a peer; yield its socket."""
    with launch(kind, target, workdir, version) as endpoints:
        yield endpoints.sock
