"""Which backend serves which ``-accel``, and what each presents itself as.

One :class:`Accelerator` entry per ``-accel`` name: the class that serves it (imported
when a machine is built, so that ``qmpdl --help`` never loads numpy or KVM's ioctls),
what QMP clients see (``kvm`` or ``tcg``: ``query-kvm``, the recorded QOM tree, CPU
models and statistics), and what it can do.  The command line, the machine and the
commands ask this table; none of them compares accelerator names.

Adding a backend is one module (a :class:`~qmpdl.backend.base.VcpuBackend` subclass with
a :meth:`BackendClass.build` class method) plus one :func:`register` call
(``tests/backends/`` does it with a toy backend).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, cast

if TYPE_CHECKING:
    from qmpdl.backend.base import VcpuBackend
    from qmpdl.clock import Clock
    from qmpdl.config import MachineConfig
    from qmpdl.profile import Profile
    from qmpdl.trace import Tracer
    from qmpdl.workload import Workload

#: What a backend presents itself as to clients: the accelerator of QEMU's answers.
PresentsAs = Literal["kvm", "tcg"]


class SerialPort(Protocol):
    """Where a guest's COM1 output goes (a file, or a chardev's serial frontend)."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> None: ...


class BackendRequest(NamedTuple):
    """Everything a backend is built from."""

    config: MachineConfig
    profile: Profile
    clock: Clock
    tracer: Tracer
    #: one per present vCPU
    workloads: Sequence[Workload]
    #: dirty ring entries per vCPU (0: the bitmap)
    ring_size: int
    #: a kick cuts a penalty sleep short (QEMU before 8.2)
    kick_interrupts_sleep: bool
    #: the vCPUs do not run until ``cont`` (``-S``, ``-incoming``)
    start_paused: bool
    serial: SerialPort | None = None
    #: the vCPU thread id the backend shows (``query-cpus-fast``) instead of its own:
    #: the same on every run under the virtual clock (simulated backends)
    thread_id: int | None = None


class BackendClass(Protocol):
    """A backend class as the registry knows it."""

    @classmethod
    def build(cls, request: BackendRequest, accelerator: Accelerator) -> VcpuBackend:
        """The backend of ``request``; raises :class:`~qmpdl.errors.ConfigError` with
        QEMU's text."""


class Accelerator(NamedTuple):
    """One ``-accel`` name and the backend behind it."""

    #: ``-accel NAME``
    name: str
    #: ``module:Class`` of the backend (imported on first use)
    backend: str
    #: what clients see: the accelerator whose recorded answers the machine gives
    presents_as: PresentsAs
    #: takes ``dirty-ring-size`` (KVM's dirty ring)
    dirty_ring: bool = True
    #: the accelerator whose vCPUs this one stands in for when real ones are not wanted
    #: (``--backend sim``, ``-machine none``): ``kvm`` is served by ``sim`` then
    stand_in: str | None = None

    def backend_class(self) -> BackendClass:
        module, name = self.backend.split(":")
        return cast("BackendClass", getattr(importlib.import_module(module), name))

    def build(self, request: BackendRequest) -> VcpuBackend:
        return self.backend_class().build(request, self)


class Registry:
    """The accelerators by name, in the order the command line lists them."""

    def __init__(self, entries: Sequence[Accelerator]) -> None:
        self._entries = {a.name: a for a in entries}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Accelerator]:
        return iter(self._entries.values())

    def __getitem__(self, name: str) -> Accelerator:
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def serving(self, name: str) -> list[str]:
        """The backends ``--backend`` may choose for ``-accel name``: its own and the one
        standing in for it."""
        entry = self._entries[name]
        return [a.name for a in self if a.name in (entry.stand_in, name)]

    def register(self, entry: Accelerator) -> None:
        self._entries[entry.name] = entry

    def unregister(self, name: str) -> None:
        del self._entries[name]


ACCELERATORS = Registry(
    [
        # simulated vCPUs presenting themselves as KVM with its dirty ring
        Accelerator("sim", "qmpdl.backend.sim:SimBackend", presents_as="kvm"),
        # real vCPUs in /dev/kvm
        Accelerator(
            "kvm",
            "qmpdl.backend.kvm:KvmBackend",
            presents_as="kvm",
            stand_in="sim",
        ),
        # simulated vCPUs presenting themselves as TCG: no KVM, no dirty ring
        Accelerator("tcg", "qmpdl.backend.sim:SimBackend", presents_as="tcg", dirty_ring=False),
    ]
)


def accelerator(name: str) -> Accelerator:
    """The entry of ``-accel name`` (the command line accepted only registered names)."""
    return ACCELERATORS[name]
