"""The machine and monitor configuration, as parsed from QEMU-style options."""

from __future__ import annotations

from typing import Any, Literal

from qmpdl.record import Record
from qmpdl.topology import SmpTopology
from qmpdl.workload import WorkloadOption

ChardevBackend = Literal["socket", "stdio", "pty", "null", "file"]


class Chardev(Record):
    """A character device: ``-chardev``, or the one ``-qmp``, ``-monitor`` or ``-serial``
    creates (QEMU names those ``compat_monitorN`` and ``serialN``)."""

    id: str
    backend: ChardevBackend = "socket"
    #: socket: a unix socket path; file: the file
    path: str | None = None
    host: str | None = None
    port: int | None = None
    #: socket: an inherited socket (``fd=N``), listening or connected
    fd: int | None = None
    #: socket: listen (True) or connect out to a listening client (False)
    server: bool = False
    #: socket, with server=on: block start-up until the first client connects
    wait: bool = True
    #: file: append instead of truncating
    append: bool = False
    #: the option that created it, as QEMU names it in errors (``-chardev ...``)
    option: str = ""

    def describe(self) -> str:
        """The address as QEMU's ``disconnected:`` filename shows it."""
        if self.path is not None:
            where = f"unix:{self.path}"
        elif self.fd is not None:
            where = f"fd:{self.fd}"
        else:
            where = f"tcp:{self.host}:{self.port}"
        return where + (",server=on" if self.server else "")


class MonitorConfig(Record):
    """A monitor: QMP (``-qmp``, ``-qmp-pretty``, ``-mon mode=control``) or the human
    monitor with its line editor (``-monitor``, ``-mon mode=readline``)."""

    #: id of its chardev
    chardev: str
    pretty: bool = False
    mode: Literal["control", "readline"] = "control"
    #: ``-mon id=``
    id: str | None = None


class AccelConfig(Record):
    #: the ``-accel`` name, an entry of :data:`qmpdl.backend.registry.ACCELERATORS`
    #: (``sim``: simulated vCPUs presenting themselves as KVM; ``kvm``: real ones;
    #: ``tcg``: simulated vCPUs presenting themselves as TCG, no KVM, no dirty ring)
    kind: str = "sim"
    #: entries per vCPU dirty ring; 0 = no ring (dirty bitmap)
    dirty_ring_size: int = 0
    #: ``clock=``: ``host`` (real time) or ``virtual`` (moves when stepped; qmpdl.vtime)
    clock: Literal["host", "virtual"] = "host"


class MachineConfig(Record):
    """Everything a qmpdl process runs."""

    qemu_version: str | None = None
    name: str | None = None
    cpus: int = 1
    max_cpus: int = 1
    sockets: int = 1
    dies: int = 1
    cores: int = 1
    threads: int = 1
    ram_size: int = 128 << 20
    accel: AccelConfig = AccelConfig()
    workloads: list[WorkloadOption] = []
    start_paused: bool = False
    #: chardevs in the order they were created (``query-yank`` lists the sockets so)
    chardevs: list[Chardev] = []
    monitors: list[MonitorConfig] = []

    @property
    def topology(self) -> SmpTopology:
        return SmpTopology(
            self.cpus, self.max_cpus, self.sockets, self.dies, self.cores, self.threads
        )

    def chardev(self, chardev_id: str) -> Chardev:
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
    #: ``--dirtylimit-controller NAME``: the throttle's CALCULATE step (``qemu``: QEMU's)
    dirtylimit_controller: str = "qemu"
    #: ``-uuid``: the VM's UUID in canonical lower-case form (None: QEMU's all-zero UUID)
    uuid: str | None = None
    #: ``-machine TYPE`` as given (an alias such as ``pc`` kept as written); None: the default
    machine_type: str | None = None
    #: the other ``-machine`` properties, as strings, in command-line order
    machine_props: dict[str, str] = {}
    #: ``-cpu MODEL`` (None: the machine's default model, ``qemu64`` on x86)
    cpu_model: str | None = None
    #: ``-object`` in command-line order: ``{"qom-type": ..., "id": ..., **props}`` (JSON form keeps its
    #: JSON types; key=value form gives strings)
    objects: list[dict[str, Any]] = []
    #: ``-device`` in command-line order: ``{"driver": ..., **props}`` (same typing rule)
    devices: list[dict[str, Any]] = []
    #: ``-netdev``, ``-blockdev``, ``-drive`` in command-line order (same typing rule)
    netdevs: list[dict[str, Any]] = []
    blockdevs: list[dict[str, Any]] = []
    drives: list[dict[str, Any]] = []
    #: ``-no-shutdown``
    no_shutdown: bool = False
    # contract: the fields below are harness-opts' own (the command line's process model
    # and character devices); harness-cmds does not need them.
    #: the serial ports, COM1 first: the id of each one's chardev (``-serial``, and
    #: ``-device isa-serial,chardev=ID``); the guests' output goes to the first
    serials: list[str] = []
    #: ``-name ...,debug-threads=on``: threads carry QEMU's names
    debug_threads: bool = False
    #: ``-msg timestamp=on``: stderr lines start with QEMU's UTC timestamp
    msg_timestamp: bool = False
    #: ``-daemonize``: fork once the monitors listen, the parent exits 0 then
    daemonize: bool = False
    #: ``-pidfile PATH``: written and locked after daemonizing, removed at exit
    pidfile: str | None = None
    #: ``--backend``: which vCPUs serve ``-accel kvm`` (None: ``kvm``, real ones)
    backend: str | None = None
    #: ``--seed N``: every random choice of the run (None: unseeded)
    seed: int | None = None
    #: ``--scenario FILE``: workload phases, machine events and faults (qmpdl.vtime)
    scenario: str | None = None
