"""The parts of QEMU's QOM tree that harnesses walk: the vCPU objects and the
containers of devices and objects.

* ``/machine/unattached/device[N]``: the vCPUs (libvirt reads the first one's
  properties at domain start).  Their property lists and values are the recorded
  ones of the vCPU model under the accelerator qmpdl presents; what differs from
  vCPU to vCPU (topology ids, APIC id, the local APIC's path) comes from the
  topology, and ``-cpu MODEL,feature=on`` settings override the recorded values.
* ``/machine/peripheral`` (devices with an id), ``/machine/peripheral-anon``
  (devices without) and ``/objects`` (``-object``; with ``/backend`` there from the
  start in 10.0+): containers listing their children.  QEMU lists an object's own
  properties in the order of their GLib hash table and then its class's, and builds
  the reply by prepending: the class property
  ``type`` comes first, the children follow in reverse table order
  (:class:`qmpdl.qapi.ghash.GStrHashTable` models the table).

Any other path answers as a path QEMU does not have (``Device '...' not found``).
A partial path (``device[0]``) names the one known object whose path ends in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from qmpdl.config import MachineConfig
from qmpdl.errors import QMPError
from qmpdl.profile import Profile
from qmpdl.qapi.ghash import GStrHashTable
from qmpdl.qemudata import cpu
from qmpdl.qemudata.machines import machine_info
from qmpdl.qemudata.vcpus import (
    DEFAULT_MODEL,
    MACHINE_NONE,
    apic_id,
    cpu_type,
    die_id,
    has_vcpus,
    vcpu_qom_path,
)

#: ``-object`` types QEMU creates after the machine's chardevs and monitors (the
#: rest comes first, each group in command-line order).
_LATE_OBJECT_PREFIXES = ("memory-backend-", "filter-")
_LATE_OBJECTS = frozenset(
    {"colo-compare", "cryptodev-vhost-user", "dbus-vmstate", "input-barrier", "rng-egd"}
)


def _late(qom_type: str) -> bool:
    return qom_type in _LATE_OBJECTS or qom_type.startswith(_LATE_OBJECT_PREFIXES)


@dataclass
class Container:
    """A container object and its children (name, type) in creation order."""

    children: list[tuple[str, str]]

    def listing(self) -> list[dict[str, str]]:
        types = dict(self.children)
        table = GStrHashTable(name for name, _ in self.children)
        out = [{"name": "type", "type": "string"}]
        out += [{"name": n, "type": f"child<{types[n]}>"} for n in reversed(list(table))]
        return out

    def get(self, prop: str) -> Any:
        if prop == "type":
            return "container"
        raise QMPError(f"Property 'container.{prop}' not found")


@dataclass
class Vcpu:
    """vCPU ``index`` of the machine."""

    index: int
    path: str
    typename: str
    model: cpu.VcpuModel
    overrides: dict[str, Any]

    def listing(self) -> list[Any]:
        return self.model.listing

    def get(self, prop: str) -> Any:
        if prop in self.overrides:
            return self.overrides[prop]
        if prop not in self.model.values:
            raise QMPError(f"Property '{self.typename}.{prop}' not found")
        recorded = self.model.values[prop]
        if isinstance(recorded, dict) and set(recorded) == {"error"}:
            raise QMPError(recorded["error"]["desc"], recorded["error"]["class"])
        return recorded


Node = Container | Vcpu


class QomTree:
    """The known objects of one machine, by absolute path."""

    def __init__(self, config: MachineConfig, profile: Profile, accel: str) -> None:
        self.nodes: dict[str, Node] = {}
        named = [(str(d["id"]), str(d["driver"])) for d in config.devices if "id" in d]
        anonymous = [
            (f"device[{i}]", str(d["driver"]))
            for i, d in enumerate(d for d in config.devices if "id" not in d)
        ]
        self.nodes["/machine/peripheral"] = Container(named)
        self.nodes["/machine/peripheral-anon"] = Container(anonymous)
        objects = [(str(o["id"]), str(o["qom-type"])) for o in config.objects]
        ordered = [o for o in objects if not _late(o[1])] + [o for o in objects if _late(o[1])]
        info = machine_info(profile, config.machine_type) or {}
        default_ram = info.get("default-ram-id")
        board = config.machine_type != MACHINE_NONE
        if default_ram and board and "memory-backend" not in config.machine_props:
            # the machine makes the RAM's backend itself, after the -object ones (not
            # the none machine: it has no RAM unless -m asks for some)
            ordered.append((str(default_ram), "memory-backend-ram"))
        if profile.has("qom-system-containers"):
            # QEMU 10.0 makes the system containers at start (/chardevs too)
            self.nodes["/objects"] = Container(ordered)
            self.nodes["/backend"] = Container([])
        elif ordered:
            # QEMU makes the container with its first object
            self.nodes["/objects"] = Container(ordered)
        if has_vcpus(config):
            self._add_vcpus(config, profile, accel)

    def _add_vcpus(self, config: MachineConfig, profile: Profile, accel: str) -> None:
        name, settings = cpu.parse_cpu_option(config.cpu_model)
        model = cpu.vcpu_model(profile, accel, name) or cpu.vcpu_model(
            profile, accel, DEFAULT_MODEL
        )
        assert model is not None
        topology = config.topology
        booleans = {k: v for k, v in settings.items() if isinstance(v, bool)}
        for i in range(config.cpus):
            path = vcpu_qom_path(i)
            ids = topology.props(i)
            overrides: dict[str, Any] = {
                name: value
                for name, value in booleans.items()
                if isinstance(model.values.get(name), bool)
            }
            overrides |= {
                "apic-id": apic_id(topology, i),
                "socket-id": ids["socket_id"],
                "core-id": ids["core_id"],
                "thread-id": ids["thread_id"],
                "die-id": die_id(topology, i),
                "lapic": f"{path}/lapic",
            }
            self.nodes[path] = Vcpu(i, path, cpu_type(model.model), model, overrides)

    def resolve(self, path: str, *, ambiguity: bool = True) -> Node:
        """The object at ``path``; an ambiguous partial path is an error of its own
        for ``qom-list`` (``ambiguity``), not found for ``qom-get``."""
        node = self.nodes.get(path)
        if node is None and not path.startswith("/"):
            found = [p for p in self._paths() if p.endswith("/" + path)]
            if len(found) > 1 and ambiguity:
                raise QMPError(f"Path '{path}' is ambiguous")
            if len(found) == 1:
                node = self.nodes.get(found[0])
        if node is None:
            raise QMPError(f"Device '{path}' not found", "DeviceNotFound")
        return node

    def _paths(self) -> Iterator[str]:
        """Every known path, the containers' children included."""
        for path, node in self.nodes.items():
            yield path
            if isinstance(node, Container):
                yield from (f"{path}/{name}" for name, _ in node.children)

    def listing(self, path: str) -> list[Any]:
        return self.resolve(path).listing()

    def get(self, path: str, prop: str) -> Any:
        return self.resolve(path, ambiguity=False).get(prop)
