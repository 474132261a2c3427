"""Where QEMU's x86 pc machine puts its vCPUs: QOM paths, model, topology ids and
APIC ids (nothing recorded is read here: query-cpus-fast uses it at every call)."""

from __future__ import annotations

from qmpdl.config import MachineConfig
from qmpdl.topology import SmpTopology

#: The machine without a board: no vCPUs (libvirt's capability probe runs it).
MACHINE_NONE = "none"
#: The vCPU model of the pc and q35 machines when -cpu is not given.
DEFAULT_MODEL = "qemu64"


def has_vcpus(config: MachineConfig) -> bool:
    """``-machine none`` has no vCPUs (QEMU only creates one with -cpu; qmpdl's none
    machine never has any)."""
    return config.machine_type != MACHINE_NONE


def vcpu_model(config: MachineConfig) -> str:
    """The ``-cpu`` model's name (without its property settings)."""
    if not config.cpu_model:
        return DEFAULT_MODEL
    return config.cpu_model.split(",", 1)[0]


def cpu_type(model: str) -> str:
    """The QOM type of an x86-64 CPU model."""
    return model + "-x86_64-cpu"


def vcpu_qom_path(cpu_index: int) -> str:
    """The QOM path of vCPU ``cpu_index`` on a pc board: ``device[1]`` is created
    between the first and the second vCPU."""
    return f"/machine/unattached/device[{0 if cpu_index == 0 else cpu_index + 1}]"


def _bit_width(count: int) -> int:
    """Bits an APIC id field needs for ``count`` values (QEMU: ceil(log2(count)))."""
    return (count - 1).bit_length()


def apic_id(topology: SmpTopology, cpu_index: int) -> int:
    """The initial APIC id of vCPU ``cpu_index``: thread, core, die and socket ids
    packed in fields as wide as their counts need."""
    threads, cores, dies = topology.threads, topology.cores, topology.dies
    thread = cpu_index % threads
    core = cpu_index // threads % cores
    die = cpu_index // (threads * cores) % dies
    socket = cpu_index // (threads * cores * dies)
    core_offset = _bit_width(threads)
    die_offset = core_offset + _bit_width(cores)
    socket_offset = die_offset + _bit_width(dies)
    return (socket << socket_offset) | (die << die_offset) | (core << core_offset) | thread


def die_id(topology: SmpTopology, cpu_index: int) -> int:
    return cpu_index // (topology.threads * topology.cores) % topology.dies
