"""CPU models: definitions, expansions and the properties of vCPU objects.

All of it is recorded per accelerator: under KVM, QEMU filters features by what the
host's KVM offers (this host's PVM KVM lacks ``pni``), under TCG by what TCG
emulates.  qmpdl's ``sim`` and ``kvm`` backends present themselves as KVM, ``tcg`` as
TCG.

An expansion with properties is the recorded one when the probe asked for exactly
that; otherwise the properties are applied on top of the plain expansion, as QEMU
applies them to the model before expanding it.  Properties with effects beyond their
own value (``migratable``, ``hv-passthrough``, ...) are exact only where recorded.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from qmpdl.errors import QMPError
from qmpdl.profile import Profile
from qmpdl.qemudata import store
from qmpdl.qemudata.vcpus import DEFAULT_MODEL, cpu_type
from qmpdl.qjson.qdict import qdict_order


def accel_of(kind: str) -> str:
    """The accelerator whose recorded answers a backend kind gets."""
    return "tcg" if kind == "tcg" else "kvm"


def definitions(profile: Profile, accel: str) -> list[Any]:
    data: list[Any] = store.load(profile, "cpu.json.gz")[accel]["query-cpu-definitions"]
    return data


def _check_props(profile: Profile, typename: str, props: dict[str, Any]) -> None:
    """QEMU sets the properties one by one in QDict order: the first unknown one, or
    the first boolean one given something else, fails."""
    from qmpdl.qemudata.properties import type_properties

    known = {p["name"]: p["type"] for p in type_properties(profile, typename)}
    prefix = "model.props." if profile.has("cpu-model-props-visited") else ""
    for name in qdict_order(list(props)):
        kind = known.get(name)
        if kind is None:
            raise QMPError(f"Property '{typename}.{name}' not found")
        if kind == "bool" and not isinstance(props[name], bool):
            raise QMPError(f"Invalid parameter type for '{prefix}{name}', expected: boolean")


def expansion(profile: Profile, accel: str, kind: str, name: str, given: Any) -> Any:
    """``query-cpu-model-expansion``'s answer (``kind``: static or full; ``given``: the
    model's ``props``, None when absent)."""
    props: dict[str, Any] | None = given if isinstance(given, dict) else None
    data = store.load(profile, "cpu.json.gz")[accel]
    request: dict[str, Any] = {"type": kind, "model": {"name": name}}
    if props is not None:
        request["model"]["props"] = props
    for recorded, reply in data["with-props"]:
        if recorded == request:
            return _reply(reply)
    expansions = data["expansions"]
    plain = expansions.get(name)
    if plain is None:
        raise QMPError(f"CPU model '{name}' not found")
    result = _expanded(expansions, plain[kind], kind)
    if given is not None and props is None and profile.has("cpu-model-props-visited"):
        raise QMPError("Invalid parameter type for 'model.props', expected: object")
    if props:
        _check_props(profile, cpu_type(name), props)
        result["model"]["props"].update(props)
    return result


def _expanded(expansions: dict[str, Any], recorded: Any, kind: str) -> Any:
    """A recorded expansion (one stored as its differences from another model's:
    the same properties in the same order, some values changed) in full."""
    if not (isinstance(recorded, dict) and "like" in recorded):
        return copy.deepcopy(_reply(recorded))
    base = expansions[recorded["like"]][kind]["model"]["props"]
    changed = recorded["props"]
    props = {key: changed.get(key, value) for key, value in base.items()}
    return {"model": {"name": recorded["name"], "props": props}}


def compact_expansions(expansions: dict[str, Any], base: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The recorded expansions, each one with the properties of ``base``'s (same
    kind, same order) stored as its name and changed values."""
    out: dict[str, Any] = {}
    for name, kinds in expansions.items():
        out[name] = {}
        for kind, reply in kinds.items():
            reference = expansions[base][kind]
            if name == base or "model" not in reply or "model" not in reference:
                out[name][kind] = reply
                continue
            mine, theirs = reply["model"]["props"], reference["model"]["props"]
            if list(mine) != list(theirs):
                out[name][kind] = reply
                continue
            changed = {k: v for k, v in mine.items() if theirs[k] != v}
            out[name][kind] = {"like": base, "name": reply["model"]["name"], "props": changed}
    return out


def _reply(recorded: Any) -> Any:
    if isinstance(recorded, dict) and "error" in recorded:
        error = recorded["error"]
        raise QMPError(error["desc"], error["class"])
    return recorded


@dataclass(frozen=True)
class VcpuModel:
    """The recorded QOM view of a vCPU of one model: its property list and, for the
    first vCPU of the recorded machine, each property's ``qom-get`` answer."""

    model: str
    listing: list[Any]
    values: dict[str, Any]


def vcpu_model(profile: Profile, accel: str, model: str) -> VcpuModel | None:
    """The recorded vCPU of ``model`` (None when QEMU refused to run it)."""
    models = store.load(profile, "vcpu.json.gz")[accel]
    recorded = models.get(model)
    if recorded is None or "refused" in recorded:
        return None
    base = models[recorded.get("like", model)]
    listing = recorded.get("qom-list", base["qom-list"])
    values = {p["name"]: base["qom-get"].get(p["name"]) for p in listing}
    values.update(recorded["qom-get"])
    return VcpuModel(model, listing, values)


def compact_vcpus(models: dict[str, Any], base: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The recorded vCPUs with every model but ``base`` stored as its differences
    from ``base`` (``like``): the models share most properties and values."""
    full = models[base]
    out: dict[str, Any] = {base: full}
    for name, recorded in models.items():
        if name == base or "refused" in recorded:
            out.setdefault(name, recorded)
            continue
        delta: dict[str, Any] = {"like": base}
        if recorded["qom-list"] != full["qom-list"]:
            delta["qom-list"] = recorded["qom-list"]
        delta["qom-get"] = {
            prop: value
            for prop, value in recorded["qom-get"].items()
            if prop not in full["qom-get"] or full["qom-get"][prop] != value
        }
        out[name] = delta
    return out


def parse_cpu_option(option: str | None) -> tuple[str, dict[str, Any]]:
    """``-cpu MODEL[,+FEAT][,-FEAT][,PROP=VALUE]...`` as the model and the property
    values it sets (on/off become booleans, other values stay strings)."""
    if not option:
        return DEFAULT_MODEL, {}
    model, *rest = option.split(",")
    props: dict[str, Any] = {}
    for item in rest:
        if not item:
            continue
        if item[0] in "+-" and "=" not in item:
            props[item[1:]] = item[0] == "+"
            continue
        key, _, value = item.partition("=")
        flag = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
        props[key] = flag.get(value, value)
    return model, props
