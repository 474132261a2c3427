"""``-machine`` and ``-cpu``, checked against what the QEMU version has: its machine
types and their properties, its CPU models (recorded from the binaries, see
:mod:`qmpdl.qemudata` - the same data ``query-machines``, ``qom-list-properties`` and
``query-cpu-definitions`` answer from).

QEMU reads ``-machine`` with keyval (``type`` implied) and applies the properties when it
creates the machine, so its errors there carry no option location.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from qmpdl.profile import Profile
from qmpdl.qemuopts import OptionError, parse_bool, split_opts

#: ``-machine`` keys that set accelerator properties (QEMU's legacy spellings).
ACCEL_KEYS = frozenset(("accel", "kernel-irqchip", "kvm-shadow-mem"))


def parse_machine(text: str) -> dict[str, str]:
    """``-machine TEXT`` as keyval with ``type`` implied (the later key wins)."""
    out: dict[str, str] = {}
    for i, part in enumerate(split_opts(text)):
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0:
                out["type"] = part
                continue
            raise OptionError(f"Expected '=' after parameter '{part}'")
        out[key] = value
    return out


@cache
def _index(version: str) -> dict[str, Any]:
    from qmpdl.cmdline.machine_data import VERSIONS

    index: dict[str, Any] = VERSIONS[version]
    return index


def data_version(profile: Profile) -> str:
    """The recorded version whose data ``profile`` uses, by
    :func:`qmpdl.qemudata.store.data_version`'s rule (its own, else the nearest earlier
    one, else the oldest) over the versions in the generated data: without the store,
    which would import gzip and importlib.resources at start-up."""
    from qmpdl.cmdline.machine_data import VERSIONS

    versions = sorted(tuple(int(n) for n in v.split(".")) for v in VERSIONS)
    earlier = [v for v in versions if v <= profile.version[:2]]
    major, minor = earlier[-1] if earlier else versions[0]
    return f"{major}.{minor}"


def _for(profile: Profile) -> dict[str, Any]:
    return _index(data_version(profile))


def machine_type_name(profile: Profile, machine_type: str | None) -> str:
    """The machine type ``-machine TYPE`` stands for (``pc`` -> ``pc-i440fx-7.2``; the
    default machine without one); QEMU's error for a type it does not have."""
    index = _for(profile)
    name = index["default"] if machine_type is None else index["types"].get(machine_type)
    if name is None:
        raise OptionError("unsupported machine type\nUse -machine help to list supported machines")
    return str(name)


def check_machine(
    profile: Profile, machine_type: str | None, props: dict[str, str], *, no_acpi: bool
) -> None:
    """What QEMU checks when it creates the machine: the type, and each property (its
    name, and the value of a boolean or on/off/auto one)."""
    name = machine_type_name(profile, machine_type)
    index = _for(profile)
    kinds: dict[str, str] = index["property-sets"][index["properties"][name]]
    if no_acpi and "acpi" not in kinds:
        raise OptionError(f"Property '{name}-machine.acpi' not found")
    for key, value in props.items():
        if key in ACCEL_KEYS:
            continue
        if key not in kinds:
            raise OptionError(f"Property '{name}-machine.{key}' not found")
        if kinds[key] == "bool":
            parse_bool(key, value)
        elif kinds[key] == "OnOffAuto" and value not in ("on", "off", "auto"):
            raise OptionError(f"Parameter '{key}' does not accept value '{value}'")


def check_cpu(profile: Profile, accel: str, text: str) -> str:
    """``-cpu MODEL[,features]``: the model (QEMU: ``unable to find CPU model``)."""
    model = text.split(",", 1)[0]
    if model not in _for(profile)["cpu-models"][accel]:
        raise OptionError(f"unable to find CPU model '{model}'")
    return model


def render_machine_data() -> str:
    """The source of :mod:`qmpdl.cmdline.machine_data`: per recorded QEMU version, the
    machine types (and aliases), each one's properties with their types, and the CPU
    models - what the checks above need, without loading the recordings they come from
    (tens of milliseconds and megabytes at every start-up)."""
    import json

    from qmpdl.datamodule import json_module, raw_text
    from qmpdl.qemudata import store
    from qmpdl.qemudata.properties import _properties

    versions: dict[str, Any] = {}
    for major, minor in store.recorded_versions():
        version = f"{major}.{minor}"
        machines = store.load_version(version, "machine.json.gz")["query-machines"]
        types: dict[str, str] = {}
        default = None
        for entry in machines:
            types[entry["name"]] = entry["name"]
            if entry.get("alias"):
                types[entry["alias"]] = entry["name"]
            if entry.get("is-default"):
                default = entry["name"]
        sets: list[dict[str, str]] = []
        properties: dict[str, int] = {}
        table, _, qom = _properties(version)
        for name in sorted(set(types.values())):
            recorded = qom.get(f"{name}-machine", [])
            if not isinstance(recorded, list):  # a type QEMU cannot list
                recorded = []
            kinds = {table[i]["name"]: table[i].get("type", "") for i in recorded}
            if kinds not in sets:
                sets.append(kinds)
            properties[name] = sets.index(kinds)
        cpu = store.load_version(version, "cpu.json.gz")
        models = {
            accel: sorted(d["name"] for d in cpu[accel]["query-cpu-definitions"])
            for accel in ("kvm", "tcg")
        }
        versions[version] = {
            "types": dict(sorted(types.items())),
            "default": default,
            "properties": properties,
            "property-sets": sets,
            "cpu-models": models,
        }
    text = json.dumps(versions, indent=None, separators=(",", ":"), sort_keys=False)
    return json_module(
        _MACHINE_DATA_DOC, f"VERSIONS: dict[str, Any] = json.loads({raw_text(text)})\n"
    )


#: The generated module's docstring.
_MACHINE_DATA_DOC = """\
Machine types, their properties and the CPU models of each recorded QEMU version.

GENERATED by ``python -m qmpdl.qapi.gen`` from ``qmpdl/data/qemu-*.json.gz``; do
not edit.  A test fails when this file is out of date with the recordings."""
