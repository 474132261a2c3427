"""What each vCPU runs: ``--workload CPUS:KIND[,key=value...]``.

``CPUS`` is ``all``, an index (``2``) or a range (``0-3``); ``KIND`` is

* ``write``: writes one byte per 4 KiB page, page after page, over a working set
  (``wss=``, a size like ``64M``), at ``rate=`` MiB/s while running (with ``-accel kvm``
  the guest's pace comes from ``delay=``, a loop count per page, or is derived from the
  rate).  Only the first write to a page after its last harvest dirties it, as with
  KVM's dirty ring;
* ``read``: reads its working set at ``rate=`` MiB/s; never dirties anything;
* ``idle``: halts.

Later options override earlier ones for the vCPUs they name.  Without any, every vCPU
writes at about 450 MiB/s, like the guest of the real QEMU traces in ``../shared/anchors``.
"""

from __future__ import annotations

from typing import Literal

from qmpdl.errors import QmpdlError
from qmpdl.record import Record
from qmpdl.sizes import parse_size

MiB = 1 << 20

#: The real guest's rate under PVM on these machines (anchors: 430-470 MiB/s).
DEFAULT_WRITE_RATE_MIB = 450.0
#: The real guest's working set: one byte per page from 1 MiB to 100 MiB.
DEFAULT_WSS = 99 * MiB


class Workload(Record):
    """One vCPU's guest program."""

    kind: Literal["write", "read", "idle"] = "write"
    #: MiB/s while the vCPU runs (writers: pages written x 4 KiB; readers: bytes read)
    rate: float = DEFAULT_WRITE_RATE_MIB
    #: working set in bytes; ``None``: 99 MiB, or an equal share of RAM if that is less
    wss: int | None = None
    #: kvm only: the guest's pacing loop count per page (``None``: derived from ``rate``;
    #: 0 is the unpadded loop that overflows this host's dirty rings)
    delay: int | None = None


class WorkloadOption(Record):
    """One ``--workload`` option: which vCPUs, and what they run."""

    first: int | None  # None: all
    last: int | None
    workload: Workload

    def covers(self, cpu: int) -> bool:
        if self.first is None or self.last is None:
            return True
        return self.first <= cpu <= self.last


class WorkloadError(QmpdlError, ValueError):
    """A ``--workload`` option that cannot be understood."""


def parse_workload(text: str) -> WorkloadOption:
    """Parse ``CPUS:KIND[,key=value...]``."""
    cpus, sep, rest = text.partition(":")
    if not sep or not rest:
        raise WorkloadError(f"'{text}': expected CPUS:KIND[,key=value...]")
    first: int | None
    last: int | None
    if cpus == "all":
        first = last = None
    else:
        lo, dash, hi = cpus.partition("-")
        try:
            first = int(lo)
            last = int(hi) if dash else first
        except ValueError:
            raise WorkloadError(f"'{cpus}': CPUS must be 'all', N or N-M") from None
        if first < 0 or last < first:
            raise WorkloadError(f"'{cpus}': CPUS must be 'all', N or N-M with N <= M")
    kind, *pairs = rest.split(",")
    if kind not in ("write", "read", "idle"):
        raise WorkloadError(f"'{kind}': KIND must be write, read or idle")
    values: dict[str, object] = {"kind": kind}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise WorkloadError(f"'{pair}': expected key=value")
        if key == "rate":
            try:
                values["rate"] = float(value)
            except ValueError:
                raise WorkloadError(f"'{value}': rate must be a number (MiB/s)") from None
            if not values["rate"] >= 0:  # type: ignore[operator]
                raise WorkloadError(f"'{value}': rate must not be negative")
        elif key == "delay":
            if not value.isdigit():
                raise WorkloadError(f"'{value}': delay must be a whole number")
            values["delay"] = int(value)
        elif key == "wss":
            try:
                values["wss"] = parse_size(value)
            except ValueError as e:
                raise WorkloadError(f"'{value}': {e}") from None
            if values["wss"] == 0:
                raise WorkloadError("wss must be at least one page")
        else:
            raise WorkloadError(f"'{key}': unknown key (rate, wss, delay)")
    return WorkloadOption(first=first, last=last, workload=Workload.model_validate(values))


def resolve_workloads(options: list[WorkloadOption], nr_vcpus: int) -> list[Workload]:
    """The workload of each present vCPU (the last option naming a vCPU wins)."""
    result = [Workload() for _ in range(nr_vcpus)]
    for option in options:
        if option.last is not None and option.last >= nr_vcpus:
            raise WorkloadError(f"vCPU {option.last} does not exist (-smp {nr_vcpus})")
        for cpu in range(nr_vcpus):
            if option.covers(cpu):
                result[cpu] = option.workload
    return result
