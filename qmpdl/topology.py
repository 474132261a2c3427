"""``-smp``: present and possible vCPUs and their topology, computed as QEMU does
(machines since 6.2 prefer cores over sockets), with QEMU's error texts."""

from __future__ import annotations

from typing import NamedTuple

from qmpdl.errors import QmpdlError

#: qmpdl's machine takes up to this many vCPUs (QEMU's pc board: 255; q35 in 8.1+: 1024).
MAX_CPUS = 4096
MACHINE_NAME = "qmpdl"


class TopologyError(QmpdlError, ValueError):
    """An impossible -smp; the message is QEMU's text."""


class SmpTopology(NamedTuple):
    cpus: int
    max_cpus: int
    sockets: int
    dies: int
    cores: int
    threads: int

    def props(self, cpu_index: int) -> dict[str, int]:
        """socket-id / die-id (only with several dies, as QEMU reports it) / core-id /
        thread-id of a vCPU (x86 order: threads within cores within dies)."""
        thread = cpu_index % self.threads
        core = (cpu_index // self.threads) % self.cores
        socket = cpu_index // (self.threads * self.cores * self.dies)
        props = {"socket_id": socket, "core_id": core, "thread_id": thread}
        if self.dies > 1:
            props["die_id"] = cpu_index // (self.threads * self.cores) % self.dies
        return props

    def describe(self) -> str:
        return (
            f"sockets ({self.sockets}) * dies ({self.dies}) * cores ({self.cores}) "
            f"* threads ({self.threads})"
        )


def smp_topology(
    *,
    cpus: int = 0,
    max_cpus: int = 0,
    sockets: int = 0,
    dies: int = 0,
    cores: int = 0,
    threads: int = 0,
) -> SmpTopology:
    """Fill in what ``-smp`` left out (0 = not given)."""
    dies = dies or 1
    if cpus == 0 and max_cpus == 0:
        sockets, cores, threads = sockets or 1, cores or 1, threads or 1
    else:
        max_cpus = max_cpus or cpus
        if cores == 0:
            sockets, threads = sockets or 1, threads or 1
            cores = max_cpus // (sockets * dies * threads)
        elif sockets == 0:
            threads = threads or 1
            sockets = max_cpus // (dies * cores * threads)
        if threads == 0:
            threads = max_cpus // (sockets * dies * cores)
    max_cpus = max_cpus or sockets * dies * cores * threads
    cpus = cpus or max_cpus
    topology = SmpTopology(cpus, max_cpus, sockets, dies, cores, threads)
    if sockets * dies * cores * threads != max_cpus:
        raise TopologyError(
            "Invalid CPU topology: product of the hierarchy must match maxcpus: "
            f"{topology.describe()} != maxcpus ({max_cpus})"
        )
    if max_cpus < cpus:
        raise TopologyError(
            "Invalid CPU topology: maxcpus must be equal to or greater than smp: "
            f"{topology.describe()} == maxcpus ({max_cpus}) < smp_cpus ({cpus})"
        )
    if max_cpus > MAX_CPUS:
        raise TopologyError(
            f"Invalid SMP CPUs {max_cpus}. The max CPUs supported by machine "
            f"'{MACHINE_NAME}' is {MAX_CPUS}"
        )
    return topology
