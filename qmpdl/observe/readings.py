"""What ``--metrics`` reads of a running machine, at scrape time.

The Prometheus collector (:mod:`qmpdl.observe.metrics`) depends only on
:class:`ReadingsSource`.  :class:`MachineReadings` is the one adapter that knows where
each figure lives, and it reaches the machine's parts only through the narrow protocols
below (what it reads of the throttle, of the vCPUs, of the migration), never through the
machine itself; :meth:`MachineReadings.of` wires them up.

Reading never changes the machine.  In particular QEMU's ring-full time estimate raises
the controller's sticky maximum when ``query-migrate`` asks for it; here it is computed
without keeping the result, so scraping cannot alter what QMP later answers.

Counters that the machine does not otherwise keep are kept where they happen, at the cost
of an integer increment: ring-full exits (backends), throttle periods (the throttle
thread) and QMP requests (:class:`RequestCounter`, called by the dispatcher).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from qmpdl.dirtylimit.adjust import ControllerState
from qmpdl.jsontypes import JsonObject
from qmpdl.qapi.types import DirtyLimitInfo

if TYPE_CHECKING:
    from qmpdl.migration.source import SourceStats
    from qmpdl.system.machine import Machine


class ThrottleView(Protocol):
    """What the readings use of the dirty limit
    (:class:`~qmpdl.dirtylimit.service.DirtyLimit`)."""

    @property
    def nr_vcpus(self) -> int: ...
    @property
    def ring_size(self) -> int: ...
    @property
    def throttle_us_per_full(self) -> list[int]: ...
    @property
    def controller(self) -> ControllerState: ...
    @property
    def periods(self) -> int: ...
    def in_service(self) -> bool: ...
    def current_rate(self, cpu_index: int) -> int: ...
    def query_vcpu_dirty_limit(self) -> list[DirtyLimitInfo]: ...


class VcpuCounters(Protocol):
    """What the readings use of the vCPUs (a :class:`~qmpdl.backend.base.VcpuBackend`)."""

    def dirty_pages(self) -> list[int]: ...
    def ring_full_exits(self) -> list[int] | None: ...
    def penalty_sleep_seconds(self) -> list[float] | None: ...


class MigrationView(Protocol):
    """What the readings use of the migration
    (:class:`~qmpdl.migration.manager.MigrationManager`)."""

    @property
    def state(self) -> str: ...
    @property
    def cpu_throttle(self) -> int: ...
    def outgoing_stats(self) -> SourceStats | None: ...


@dataclass(frozen=True)
class VcpuReading:
    cpu_index: int
    #: MiB/s of the throttle's last period (query-vcpu-dirty-limit's current-rate)
    dirty_rate: int
    #: MiB/s; 0 = no limit on this vCPU
    limit: int
    #: microseconds slept per ring-full
    throttle_us_per_full: int
    #: QEMU's ring-full time for this vCPU's rate (what its next adjustment uses), us
    ring_full_time_us: int
    #: seconds spent in penalty sleeps so far (None: the backend does not time them)
    penalty_seconds: float | None
    #: dirty-ring-full exits so far (None: not counted)
    ring_full_exits: int | None
    #: dirty-ring entries harvested so far
    harvested_pages: int


@dataclass(frozen=True)
class MigrationReading:
    """The outgoing migration as ``query-migrate`` would show it (zeros before any)."""

    status: str = "none"
    setup_time_ms: int = 0
    total_time_ms: int = 0
    downtime_ms: int = 0
    transferred_bytes: int = 0
    remaining_bytes: int = 0
    precopy_bytes: int = 0
    downtime_bytes: int = 0
    normal_pages: int = 0
    duplicate_pages: int = 0
    dirty_sync_count: int = 0
    dirty_pages_rate: int = 0
    mbps: float = 0.0
    cpu_throttle_percentage: int = 0


@dataclass(frozen=True)
class Readings:
    runstate: str
    in_service: bool
    throttle_periods: int
    vcpus: tuple[VcpuReading, ...]
    migration: MigrationReading
    #: (command, result) -> replies sent; result is ``ok`` or the error class
    requests: Mapping[tuple[str, str], int] = field(default_factory=dict)


class ReadingsSource(Protocol):
    """Anything the metrics can read at scrape time."""

    def read(self) -> Readings: ...


#: Request labels for input that names no command, or one that is not served (the
#: label set must stay bounded whatever clients send).
NO_COMMAND = "(none)"
UNKNOWN_COMMAND = "(unknown)"


class RequestCounter:
    """QMP replies by command and result; the dispatcher calls it for every reply.

    Called on the event loop only; readers in other threads take :meth:`snapshot`.
    """

    def __init__(self, commands: Iterable[str]) -> None:
        self._known = frozenset(commands)
        self._counts: dict[tuple[str, str], int] = {}

    def __call__(self, request: object, response: JsonObject) -> None:
        name = NO_COMMAND
        if isinstance(request, dict):
            command = request.get("execute", request.get("exec-oob"))
            if isinstance(command, str):
                name = command if command in self._known else UNKNOWN_COMMAND
        error = response.get("error")
        result = "ok"
        if isinstance(error, dict):
            cls = error.get("class")
            result = cls if isinstance(cls, str) else "GenericError"
        key = (name, result)
        self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        return dict(self._counts)


def ring_full_time_us(controller: ControllerState, ring_size: int, rate: int) -> int:
    """QEMU's ring-full time at ``rate`` (the sticky maximum counts), without keeping
    the maximum it would raise; 0 without a ring or any rate seen."""
    if not ring_size or not (rate or controller.max_dirtyrate):
        return 0
    return controller.ring_full_time_us(ring_size, rate)[0]


@dataclass(frozen=True, kw_only=True)
class MachineReadings:
    """:class:`ReadingsSource` over a machine's parts."""

    throttle: ThrottleView
    vcpus: VcpuCounters
    migration: MigrationView
    runstate: Callable[[], str]
    requests: RequestCounter | None = None

    @classmethod
    def of(cls, machine: Machine, requests: RequestCounter | None = None) -> MachineReadings:
        return cls(
            throttle=machine.dirtylimit,
            vcpus=machine.backend,
            migration=machine.migration,
            runstate=lambda: machine.runstate.value,
            requests=requests,
        )

    def read(self) -> Readings:
        t = self.throttle
        n = t.nr_vcpus
        limits = {e.cpu_index: e for e in t.query_vcpu_dirty_limit()}
        penalties = list(t.throttle_us_per_full)
        controller = t.controller
        harvested = self.vcpus.dirty_pages()
        exits = self.vcpus.ring_full_exits()
        slept = self.vcpus.penalty_sleep_seconds()
        vcpus = []
        for i in range(n):
            entry = limits.get(i)
            rate = entry.current_rate if entry is not None else t.current_rate(i)
            vcpus.append(
                VcpuReading(
                    cpu_index=i,
                    dirty_rate=rate,
                    limit=entry.limit_rate if entry is not None else 0,
                    throttle_us_per_full=penalties[i],
                    ring_full_time_us=ring_full_time_us(controller, t.ring_size, rate),
                    penalty_seconds=slept[i] if slept is not None else None,
                    ring_full_exits=exits[i] if exits is not None else None,
                    harvested_pages=harvested[i],
                )
            )
        return Readings(
            runstate=self.runstate(),
            in_service=t.in_service(),
            throttle_periods=t.periods,
            vcpus=tuple(vcpus),
            migration=self._migration(),
            requests=self.requests.snapshot() if self.requests is not None else {},
        )

    def _migration(self) -> MigrationReading:
        m = self.migration
        status = m.state
        stats = m.outgoing_stats() if status != "none" else None
        if stats is None:
            return MigrationReading(status=status)
        return MigrationReading(
            status=status,
            setup_time_ms=stats.setup_time,
            total_time_ms=stats.total_time
            if status == "completed"
            else int((time.monotonic() - stats.start_time) * 1000),
            downtime_ms=stats.downtime,
            transferred_bytes=stats.transferred,
            remaining_bytes=0 if status == "completed" else stats.remaining,
            precopy_bytes=stats.precopy_bytes,
            downtime_bytes=stats.downtime_bytes,
            normal_pages=stats.normal_pages,
            duplicate_pages=stats.zero_pages,
            dirty_sync_count=stats.dirty_sync_count,
            dirty_pages_rate=stats.dirty_pages_rate,
            mbps=stats.mbps,
            cpu_throttle_percentage=m.cpu_throttle,
        )
