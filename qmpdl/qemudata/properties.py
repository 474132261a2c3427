"""The types' properties: ``device-list-properties`` and ``qom-list-properties``.

Recorded for every type with every module loaded (as after the probe's
``qom-list-types``); property descriptions shared by many types are stored once.
A request QEMU aborts on (``qom-list-properties`` of a few types whose instances
cannot be created outside a machine) is recorded as a crash; qmpdl refuses it
instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from qmpdl.errors import QMPError
from qmpdl.profile import Profile
from qmpdl.qemudata import store
from qmpdl.qemudata.qom import LoadedModules, TypeTable


@cache
def type_table(version: str) -> TypeTable:
    return TypeTable.from_data(store.load_version(version, "qom-types.json.gz"))


def types_of(profile: Profile) -> TypeTable:
    return type_table(store.data_version(profile))


@cache
def _properties(version: str) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    data = store.load_version(version, "qom-properties.json.gz")
    return data["properties"], data["device"], data["qom"]


def _answer(profile: Profile, kind: str, typename: str) -> list[Any]:
    table, device, qom = _properties(store.data_version(profile))
    recorded = (device if kind == "device" else qom)[typename]
    if isinstance(recorded, list):
        return [table[i] for i in recorded]
    if "crash" in recorded:
        raise QMPError(f"Cannot list the properties of '{typename}' (QEMU aborts here)")
    error = recorded["error"]
    raise QMPError(error["desc"], error["class"])


def device_properties(profile: Profile, modules: LoadedModules, typename: str) -> list[Any]:
    """``device-list-properties``: the type's module is loaded first."""
    if not modules.table.exists(typename):
        raise QMPError(f"Device '{typename}' not found", "DeviceNotFound")
    modules.load_for(typename)
    if not modules.knows(typename):
        raise QMPError(f"Device '{typename}' not found", "DeviceNotFound")
    return _answer(profile, "device", typename)


def qom_properties(profile: Profile, modules: LoadedModules, typename: str) -> list[Any]:
    """``qom-list-properties``: only types already known."""
    if not modules.knows(typename):
        raise QMPError(f"Class '{typename}' not found", "DeviceNotFound")
    return _answer(profile, "qom", typename)


def type_properties(profile: Profile, typename: str) -> list[Any]:
    """The properties of a type as ``qom-list-properties`` lists them once its module
    is loaded (empty for a type without a recorded list)."""
    table, _, qom = _properties(store.data_version(profile))
    recorded = qom.get(typename)
    return [table[i] for i in recorded] if isinstance(recorded, list) else []
