"""``-machine`` and ``-cpu``, checked against what the QEMU version has: its machine
types and their properties, its CPU models (recorded from the binaries, see
:mod:`qmpdl.qemudata` - the same data ``query-machines``, ``qom-list-properties`` and
``query-cpu-definitions`` answer from).

QEMU reads ``-machine`` with keyval (``type`` implied) and applies the properties when it
creates the machine, so its errors there carry no option location.
"""

from __future__ import annotations

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


def machine_type_name(profile: Profile, machine_type: str | None) -> str:
    """The machine type ``-machine TYPE`` stands for (``pc`` -> ``pc-i440fx-7.2``; the
    default machine without one); QEMU's error for a type it does not have."""
    from qmpdl.qemudata.machines import machine_info

    info = machine_info(profile, machine_type)
    if info is None:
        raise OptionError("unsupported machine type\nUse -machine help to list supported machines")
    return str(info["name"])


def check_machine(
    profile: Profile, machine_type: str | None, props: dict[str, str], *, no_acpi: bool
) -> None:
    """What QEMU checks when it creates the machine: the type, and each property (its
    name, and the value of a boolean or on/off/auto one)."""
    from qmpdl.qemudata.properties import type_properties

    name = machine_type_name(profile, machine_type)
    kinds = {p["name"]: p.get("type") for p in type_properties(profile, f"{name}-machine")}
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
    from qmpdl.qemudata.cpu import accel_of, definitions

    model = text.split(",", 1)[0]
    if model not in {d["name"] for d in definitions(profile, accel_of(accel))}:
        raise OptionError(f"unable to find CPU model '{model}'")
    return model
