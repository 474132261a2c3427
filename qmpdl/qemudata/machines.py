"""Machine types (``query-machines``) and the machine a qmpdl process presents."""

from __future__ import annotations

import copy
from typing import Any

from qmpdl.profile import Profile
from qmpdl.qemudata import store
from qmpdl.qemudata.properties import type_properties

#: ``-machine none``: no vCPUs, no devices (libvirt's capability probe uses it).
NONE = "none"


def _recorded(profile: Profile) -> dict[str, Any]:
    data: dict[str, Any] = store.load(profile, "machine.json.gz")
    return data


def machines(profile: Profile, *, compat_props: bool = False) -> list[Any]:
    """``query-machines``; machine types recorded from an older QEMU get the members
    this version has (``acpi``: whether the type has an ``acpi`` property)."""
    data = _recorded(profile)
    found = data.get("query-machines-compat-props") if compat_props else None
    entries: list[Any] = copy.deepcopy(found or data["query-machines"])
    if profile.has("machine-info-acpi"):
        for entry in entries:
            if "acpi" not in entry:
                names = {p["name"] for p in type_properties(profile, entry["name"] + "-machine")}
                entry["acpi"] = "acpi" in names
    return entries


def machine_info(profile: Profile, machine_type: str | None) -> dict[str, Any] | None:
    """The ``query-machines`` entry of ``-machine TYPE`` (an alias as ``pc`` names the
    type it stands for; None: the default machine).  None for an unknown type."""
    for entry in _recorded(profile)["query-machines"]:
        if machine_type is None:
            if entry.get("is-default"):
                return dict(entry)
        elif machine_type in (entry["name"], entry.get("alias")):
            return dict(entry)
    return None


def recorded(profile: Profile, command: str, accel: str | None = None) -> Any:
    """A recorded machine-level answer (``query-target``, ...; per accelerator for
    the SEV and SGX queries and the statistics)."""
    data = _recorded(profile)
    return data[accel][command] if accel is not None else data[command]
