"""Units of :mod:`qmpdl.qemudata`: the type table, module loading, vCPU topology,
-cpu parsing, the QOM containers' order, statistics order, data lookup per profile."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qmpdl.config import MachineConfig
from qmpdl.profile import Profile, get_profile, known_features, profile_names
from qmpdl.qemudata import store
from qmpdl.qemudata.cpu import parse_cpu_option
from qmpdl.qemudata.machines import machine_info, recorded
from qmpdl.qemudata.properties import types_of
from qmpdl.qemudata.qom import LoadedModules, TypeTable
from qmpdl.qemudata.qomtree import Container
from qmpdl.qemudata.stats import Recorded, query
from qmpdl.qemudata.vcpus import apic_id, die_id, vcpu_qom_path
from qmpdl.qjson.encoder import to_json
from qmpdl.topology import smp_topology


def profile(version: tuple[int, int, int]) -> Profile:
    features = frozenset(f.name for f in known_features().values() if version[:2] >= f.since)
    return Profile(
        name=".".join(map(str, version[:2])),
        version=version,
        package="",
        description="",
        features=features,
        checked="sources",
    )


def test_each_profile_uses_the_nearest_earlier_recording() -> None:
    versions = store.recorded_versions()
    assert (7, 2) in versions
    for name in profile_names():
        used = tuple(int(x) for x in store.data_version(get_profile(name)).split("."))
        assert used in versions
        assert used <= get_profile(name).version[:2]
        assert not [v for v in versions if used < v <= get_profile(name).version[:2]]
    assert store.data_version(profile((6, 2, 0))) == "7.2"  # older than every recording


def test_recorded_objects_encode_as_recorded() -> None:
    """Keys come back in an insertion order that QDict prints as QEMU did."""
    sample = recorded(get_profile("7.2"), "query-machines")[0]
    text = to_json(sample)
    assert text.startswith('{"hotpluggable-cpus": ')  # QEMU's wire order
    assert json.loads(text) == sample


TABLE = TypeTable(
    [
        ["pci-e1000", "pci-device", False],
        ["pci-device", "device", True],
        ["device", "object", True],
        ["resettable", "interface", True],
        ["interface", None, True],
        ["object", None, True],
        ["bus", "object", True],
        ["pci-bus", "bus", False],
        ["qxl", "pci-device", False],
        ["qxl-vga", "pci-device", False],
    ],
    {"resettable": ["pci-bus", "bus"], "interface": ["pci-bus", "bus", "resettable"]},
    {
        "missing": {"kvm": ["qxl", "qxl-vga"], "tcg": ["qxl"]},
        "loads": {"qxl": ["qxl", "qxl-vga"]},
        "options": {"qxl": ["spice"]},
    },
)


def test_type_table_lists_as_qemu_filters() -> None:
    assert [r[0] for r in TABLE.list()] == ["pci-e1000", "pci-bus", "qxl", "qxl-vga"]
    assert [r[0] for r in TABLE.list(abstract=True, implements="device")] == [
        "pci-e1000",
        "pci-device",
        "device",
        "qxl",
        "qxl-vga",
    ]
    # the table's order, whatever the interface's list says
    assert [r[0] for r in TABLE.list(implements="resettable", abstract=True)] == ["bus", "pci-bus"]
    assert TABLE.list(implements="nonexistent", abstract=True) == []
    assert TABLE.ancestors("pci-e1000") == ["pci-e1000", "pci-device", "device", "object"]


def test_modules_load_per_type_and_all_at_once() -> None:
    modules = LoadedModules(TABLE, "kvm")
    assert not modules.knows("qxl-vga") and modules.knows("pci-e1000")
    assert not modules.has_option("spice")
    modules.load_for("qxl")
    assert modules.knows("qxl-vga") and modules.has_option("spice")
    tcg = LoadedModules(TABLE, "tcg")
    assert tcg.knows("qxl-vga") and not tcg.knows("qxl")
    tcg.load_all()
    assert tcg.knows("qxl") and tcg.has_option("spice")
    assert not tcg.knows("nonexistent")


def test_recorded_type_table_is_consistent() -> None:
    table = types_of(get_profile("7.2"))
    names = [r[0] for r in table.rows]
    assert len(names) == len(set(names)) > 700
    assert all(parent is None or table.exists(parent) for _, parent, _ in table.rows)
    assert table.is_a("qemu64-x86_64-cpu", "device")
    for loaded in table.loads.values():
        assert all(table.exists(name) for name in loaded)


@pytest.mark.parametrize(
    ("smp", "expected"),
    [
        ("4", [0, 1, 2, 3]),
        ("4,sockets=2,cores=2,threads=1", [0, 1, 2, 3]),
        ("6,sockets=2,cores=3,threads=1", [0, 1, 2, 4, 5, 6]),
        ("4,sockets=1,cores=2,threads=2", [0, 1, 2, 3]),
        ("6,sockets=1,cores=3,threads=2", [0, 1, 2, 3, 4, 5]),
        ("8,sockets=2,dies=2,cores=1,threads=2", [0, 1, 2, 3, 4, 5, 6, 7]),
        ("6,sockets=1,dies=3,cores=1,threads=2", [0, 1, 2, 3, 4, 5]),
        ("6,sockets=3,dies=1,cores=1,threads=2", [0, 1, 2, 3, 4, 5]),
        ("3,sockets=1,cores=3,threads=1", [0, 1, 2]),
        ("6,sockets=2,cores=3,threads=1,max_cpus=6", [0, 1, 2, 4, 5, 6]),
    ],
)
def test_apic_ids_pack_topology_fields(smp: str, expected: list[int]) -> None:
    numbers = dict(item.split("=") for item in smp.split(",")[1:])
    topology = smp_topology(
        cpus=int(smp.split(",", maxsplit=1)[0]), **{k: int(v) for k, v in numbers.items()}
    )
    assert [apic_id(topology, i) for i in range(topology.cpus)] == expected


def test_die_ids() -> None:
    topology = smp_topology(cpus=8, sockets=2, dies=2, cores=1, threads=2)
    assert [die_id(topology, i) for i in range(8)] == [0, 0, 1, 1, 0, 0, 1, 1]
    assert [vcpu_qom_path(i) for i in range(3)] == [
        "/machine/unattached/device[0]",
        "/machine/unattached/device[2]",
        "/machine/unattached/device[3]",
    ]


def test_cpu_option() -> None:
    assert parse_cpu_option(None) == ("qemu64", {})
    assert parse_cpu_option("host") == ("host", {})
    assert parse_cpu_option("EPYC,+x2apic,-svm,vmx=on,level=13,") == (
        "EPYC",
        {"x2apic": True, "svm": False, "vmx": True, "level": "13"},
    )


def test_container_lists_children_in_hash_table_order() -> None:
    """Observed on QEMU 7.2: /objects with two I/O threads and the RAM's backend."""
    container = Container(
        [("iothread1", "iothread"), ("iothread2", "iothread"), ("pc.ram", "memory-backend-ram")]
    )
    assert [p["name"] for p in container.listing()] == ["type", "iothread1", "iothread2", "pc.ram"]
    peripheral = Container([("virtio-disk0", "virtio-blk-pci"), ("net0", "virtio-net-pci")])
    assert peripheral.listing()[1:] == [
        {"name": "virtio-disk0", "type": "child<virtio-blk-pci>"},
        {"name": "net0", "type": "child<virtio-net-pci>"},
    ]


def test_stats_come_in_qemu_order() -> None:
    p = get_profile("7.2")
    source = Recorded(p)
    paths = [vcpu_qom_path(i) for i in range(2)]
    vcpus = list(enumerate(paths))
    out: list[Any] = query(source, "vcpu", [("kvm", ["halt_exits", "exits"])], vcpus)
    assert [r["qom-path"] for r in out] == paths[::-1]
    # the schema's order (KVM's descriptors, reversed), not the request's
    schema = next(s for s in recorded(p, "query-stats-schemas", "kvm") if s["target"] == "vcpu")
    order = [s["name"] for s in schema["stats"]]
    names = [s["name"] for s in out[0]["stats"]]
    assert sorted(names, key=order.index) == names == ["halt_exits", "exits"]
    two = query(source, "vm", [("kvm", ["pages_4k"]), ("kvm", ["pages_2m"])], [])
    assert [r["stats"][0]["name"] for r in two] == ["pages_2m", "pages_4k"]
    assert query(source, "vm", [("kvm", [])], []) == []
    assert query(None, "vm", None, []) == []


def test_machine_types() -> None:
    p = get_profile("7.2")
    default = machine_info(p, None)
    assert default is not None and default["name"] == "pc-i440fx-7.2"
    assert machine_info(p, "pc") == default
    assert machine_info(p, "none") is not None and machine_info(p, "bogus") is None
    config = MachineConfig(machine_type="q35")
    q35 = machine_info(p, config.machine_type)
    assert q35 is not None and q35["name"].startswith("pc-q35-")
