"""The machine and monitor configuration, as parsed from QEMU-style options."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qmpdl.topology import SmpTopology
from qmpdl.workload import WorkloadOption


class ChardevSocket(BaseModel):
    """A ``-chardev socket`` (or the socket behind ``-qmp``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    #: listen (True) or connect out to a listening client (False)
    server: bool = False
    #: with server=on: block start-up until the first client connects
    wait: bool = True

    def describe(self) -> str:
        where = f"unix:{self.path}" if self.path is not None else f"tcp:{self.host}:{self.port}"
        return where + (",server=on" if self.server else "")


class MonitorConfig(BaseModel):
    """A QMP monitor (``-qmp``, ``-qmp-pretty`` or ``-mon mode=control``)."""

    model_config = ConfigDict(frozen=True)

    #: id of its chardev
    chardev: str
    pretty: bool = False


class AccelConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    #: ``sim``: simulated vCPUs presenting themselves as KVM; ``kvm``: real ones;
    #: ``tcg``: simulated vCPUs presenting themselves as TCG (no KVM, no dirty ring)
    kind: Literal["sim", "kvm", "tcg"] = "sim"
    #: entries per vCPU dirty ring; 0 = no ring (dirty bitmap)
    dirty_ring_size: int = 0


class MachineConfig(BaseModel):
    """Everything a qmpdl process runs."""

    model_config = ConfigDict(frozen=True)

    qemu_version: str | None = None
    name: str | None = None
    cpus: int = Field(default=1, ge=1)
    max_cpus: int = Field(default=1, ge=1)
    sockets: int = 1
    dies: int = 1
    cores: int = 1
    threads: int = 1
    ram_size: int = 128 << 20
    accel: AccelConfig = AccelConfig()
    workloads: list[WorkloadOption] = []
    start_paused: bool = False
    #: socket chardevs in the order they were created (``query-yank`` lists them so)
    chardevs: list[ChardevSocket] = []
    monitors: list[MonitorConfig] = []

    @property
    def topology(self) -> SmpTopology:
        return SmpTopology(
            self.cpus, self.max_cpus, self.sockets, self.dies, self.cores, self.threads
        )

    def chardev(self, chardev_id: str) -> ChardevSocket:
        for c in self.chardevs:
            if c.id == chardev_id:
                return c
        raise KeyError(chardev_id)

    trace_patterns: list[str] = []
    trace_file: str | None = None
    #: ``--metrics HOST:PORT``: serve Prometheus metrics there (None: off)
    metrics: tuple[str, int] | None = None
    #: ``-incoming URI`` (``defer``: wait for migrate-incoming)
    incoming: str | None = None
    #: ``-global migration.PROP=VALUE`` settings, in command-line order
    migration_globals: list[tuple[str, str]] = []
    #: ``-serial file:PATH``: the guests' pass characters (kvm backend)
    serial_file: str | None = None
    #: ``--dirtylimit-controller NAME``: the throttle's CALCULATE step (``qemu``: QEMU's)
    dirtylimit_controller: str = "qemu"
