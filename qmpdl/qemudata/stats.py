"""KVM's statistics as ``query-stats`` and ``query-stats-schemas`` report them.

QEMU reads KVM's binary statistics (one file per VM and per vCPU: descriptors, then
values) and builds each reply by prepending: the statistics come in reverse
descriptor order (a histogram's buckets reversed too), the vCPUs in reverse order,
the VM schema after the vCPU schema, a provider's results of several requests in
reverse request order.  It leaves out statistics of a type, unit or base it does not
know.  KVM provides statistics; from 8.0 (``stats-cryptodev``) the cryptodev backends
do too, a provider registered before KVM whatever the accelerator: its schema comes
last in ``query-stats-schemas`` (recorded with KVM's, as QEMU describes it), and with
no cryptodev object (qmpdl never has one) it has no statistics.  Under TCG
``query-stats`` is empty and ``query-stats-schemas`` has cryptodev's schema, if any.

* ``-accel kvm``: qmpdl's VM and vCPUs live in KVM, whose statistics are read as QEMU
  reads them.
* ``-accel sim``: the schemas recorded from this host's KVM (``machine.json.gz``),
  every value zero (false, empty buckets): the simulated vCPUs never enter a kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from qmpdl.kvm import stats as kvm
from qmpdl.profile import Profile
from qmpdl.qemudata.machines import recorded

_TYPES = {
    kvm.TYPE_CUMULATIVE: "cumulative",
    kvm.TYPE_INSTANT: "instant",
    kvm.TYPE_PEAK: "peak",
    kvm.TYPE_LINEAR_HIST: "linear-histogram",
    kvm.TYPE_LOG_HIST: "log2-histogram",
}
_UNITS = {
    kvm.UNIT_NONE: None,
    kvm.UNIT_BYTES: "bytes",
    kvm.UNIT_SECONDS: "seconds",
    kvm.UNIT_CYCLES: "cycles",
    kvm.UNIT_BOOLEAN: "boolean",
}
_BASES = {kvm.BASE_POW10: 10, kvm.BASE_POW2: 2}


class Source(Protocol):
    """Where the statistics of one target (``vm``, or ``vcpu`` and an index) come from."""

    def schema(self, target: str) -> list[Any]:
        """The ``StatsSchemaValue`` entries, in reply order."""
        ...

    def values(self, target: str, index: int) -> list[tuple[str, Any]]:
        """(name, value) of each statistic, in reply order."""
        ...


def schema_entry(desc: kvm.Descriptor) -> dict[str, Any] | None:
    """A descriptor as QEMU describes it (None: QEMU leaves it out)."""
    kind = _TYPES.get(desc.flags & kvm.TYPE_MASK)
    unit_flag = desc.flags & kvm.UNIT_MASK
    base = _BASES.get(desc.flags & kvm.BASE_MASK)
    if kind is None or unit_flag not in _UNITS or base is None:
        return None
    entry: dict[str, Any] = {"name": desc.name, "type": kind}
    if _UNITS[unit_flag] is not None:
        entry["unit"] = _UNITS[unit_flag]
    if desc.exponent:
        entry["base"] = base
    entry["exponent"] = desc.exponent
    if desc.flags & kvm.TYPE_MASK == kvm.TYPE_LINEAR_HIST:
        entry["bucket-size"] = desc.bucket_size
    return entry


def stat_value(desc: kvm.Descriptor, values: list[int]) -> Any:
    if desc.flags & kvm.UNIT_MASK == kvm.UNIT_BOOLEAN:
        return bool(values[0])
    if desc.size == 1:
        return values[0]
    return values[::-1]


class LiveKvm:
    """The statistics of qmpdl's own KVM VM and vCPUs."""

    def __init__(self, vm_fd: int, vcpu_fds: Sequence[int]) -> None:
        self.files = {"vm": [kvm.StatsFile(vm_fd)], "vcpu": [kvm.StatsFile(f) for f in vcpu_fds]}

    def _descriptors(self, target: str) -> list[kvm.Descriptor]:
        files = self.files[target]
        return [d for d in reversed(files[0].descriptors) if schema_entry(d)] if files else []

    def schema(self, target: str) -> list[Any]:
        return [schema_entry(d) for d in self._descriptors(target)]

    def values(self, target: str, index: int) -> list[tuple[str, Any]]:
        read = self.files[target][index].values()
        return [(d.name, stat_value(d, read[d.name])) for d in self._descriptors(target)]


class Recorded:
    """This host's KVM schemas as recorded; every value zero."""

    def __init__(self, profile: Profile) -> None:
        self.schemas: list[Any] = recorded(profile, "query-stats-schemas", "kvm")
        self.samples: dict[str, Any] = recorded(profile, "query-stats", "kvm")

    def schema(self, target: str) -> list[Any]:
        found = [s["stats"] for s in self.schemas if s["target"] == target]
        return list(found[0]) if found else []

    def values(self, target: str, index: int) -> list[tuple[str, Any]]:
        samples = self.samples[target]
        shapes = {s["name"]: s["value"] for s in samples[0]["stats"]} if samples else {}
        return [(s["name"], _zero(shapes.get(s["name"], 0))) for s in self.schema(target)]


def _zero(sample: Any) -> Any:
    if isinstance(sample, bool):
        return False
    if isinstance(sample, list):
        return [0] * len(sample)
    return 0


def cryptodev_schemas(profile: Profile) -> list[Any]:
    """The cryptodev provider's ``query-stats-schemas`` entries (none before 8.0)."""
    if not profile.has("stats-cryptodev"):
        return []
    entries = recorded(profile, "query-stats-schemas", "kvm")
    return [e for e in entries if e["provider"] == "cryptodev"]


def schemas(
    source: Source | None,
    *,
    vcpus: bool,
    provider: str | None = None,
    cryptodev: Sequence[Any] = (),
) -> list[Any]:
    """``query-stats-schemas`` of ``provider`` (None: all): KVM's vCPU schema (when
    there is a vCPU), then its VM's (nothing without KVM: ``source`` None), then the
    ``cryptodev`` entries (:func:`cryptodev_schemas`)."""
    out: list[Any] = []
    if source is not None and provider in (None, "kvm"):
        if vcpus:
            out.append({"provider": "kvm", "target": "vcpu", "stats": source.schema("vcpu")})
        out.append({"provider": "kvm", "target": "vm", "stats": source.schema("vm")})
    if provider in (None, "cryptodev"):
        out += cryptodev
    return out


def query(
    source: Source | None,
    target: str,
    requests: Sequence[tuple[str, list[str] | None]] | None,
    vcpus: Sequence[tuple[int, str]],
) -> list[Any]:
    """``query-stats``: ``requests`` are (provider, names or None for all), None when
    the filter names no providers; ``vcpus`` the (index, QOM path) of the vCPUs
    wanted, in vCPU order."""
    if source is None or target not in ("vm", "vcpu"):
        return []  # (KVM has no statistics of other targets, cryptodev has no objects)
    results: list[Any] = []
    for provider, names in requests if requests is not None else [("kvm", None)]:
        if provider != "kvm" or names == []:
            continue
        targets = [(0, None)] if target == "vm" else list(vcpus)
        for index, path in targets:
            stats = [
                {"name": n, "value": v}
                for n, v in source.values(target, index)
                if names is None or n in names
            ]
            if not stats:
                continue
            result: dict[str, Any] = {"provider": "kvm", "stats": stats}
            if path is not None:
                result["qom-path"] = path
            results.insert(0, result)
    return results
