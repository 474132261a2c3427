"""KVM's statistics as ``query-stats`` and ``query-stats-schemas`` report them.

QEMU reads KVM's binary statistics (one file per VM and per vCPU: a header, one
descriptor per statistic, the values) and builds each reply by prepending: the
statistics come in reverse descriptor order, the vCPUs in reverse order, the VM
schema after the vCPU schema, a provider's results of several requests in reverse
request order.  Only KVM provides statistics: under TCG both replies are empty.

The descriptors are the ones recorded from this host's KVM (``machine.json.gz``).
qmpdl's vCPUs run no operating system that would halt, take interrupts or fault
pages in, so every statistic reads zero (false for booleans, zero buckets for
histograms).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qmpdl.profile import Profile
from qmpdl.qemudata.machines import recorded


def _schemas(profile: Profile) -> list[Any]:
    schemas: list[Any] = recorded(profile, "query-stats-schemas", "kvm")
    return schemas


def schemas(profile: Profile, accel: str, *, vcpus: bool) -> list[Any]:
    """``query-stats-schemas``: the vCPU schema (when there is a vCPU), then the VM's."""
    if accel != "kvm":
        return []
    return [s for s in _schemas(profile) if vcpus or s["target"] != "vcpu"]


def _zero(sample: Any) -> Any:
    if isinstance(sample, bool):
        return False
    if isinstance(sample, list):
        return [0] * len(sample)
    return 0


def _values(profile: Profile, target: str) -> list[tuple[str, Any]]:
    """Each statistic of ``target`` with its value, in reply order."""
    samples = recorded(profile, "query-stats", "kvm")[target]
    shapes = {s["name"]: s["value"] for s in samples[0]["stats"]} if samples else {}
    schema = next(s for s in _schemas(profile) if s["target"] == target)
    return [(s["name"], _zero(shapes.get(s["name"], 0))) for s in schema["stats"]]


def query(
    profile: Profile,
    accel: str,
    target: str,
    requests: Sequence[tuple[str, list[str] | None]] | None,
    vcpu_paths: Sequence[str],
) -> list[Any]:
    """``query-stats``: ``requests`` are (provider, names or None for all), None when
    the filter names no providers; ``vcpu_paths`` the vCPUs wanted, in vCPU order."""
    if accel != "kvm":
        return []
    results: list[Any] = []
    for provider, names in requests if requests is not None else [("kvm", None)]:
        if provider != "kvm" or names == []:
            continue
        stats = [
            {"name": n, "value": v}
            for n, v in _values(profile, target)
            if names is None or n in names
        ]
        if not stats:
            continue
        if target == "vm":
            results.insert(0, {"provider": "kvm", "stats": stats})
            continue
        for path in vcpu_paths:
            results.insert(0, {"provider": "kvm", "qom-path": path, "stats": stats})
    return results
