"""``--metrics HOST:PORT``: the machine's throttle in Prometheus' text format.

A custom collector reads the machine when Prometheus scrapes (:class:`ThrottleCollector`
over a :class:`~qmpdl.observe.readings.ReadingsSource`): nothing is pushed from the hot
paths except the few counters kept where they happen.  The HTTP server is
prometheus-client's, in its own daemon thread, so scrapes never wait for the QMP
event loop.  This module is imported only when ``--metrics`` is given.

Units are QEMU's where a figure is QEMU's: rates in MiB/s (QEMU writes "MB/s"),
``throttle_us_per_full`` and the ring-full time in microseconds.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from qmpdl.observe.readings import MigrationReading, ReadingsSource, VcpuReading

PREFIX = "qmpdl"

#: Per-vCPU figures: (name, kind, help, value).
_VCPU: list[tuple[str, str, str, str]] = [
    (
        "vcpu_dirty_rate_mib_per_second",
        "gauge",
        "Dirty rate of the throttle's last period (query-vcpu-dirty-limit's current-rate)",
        "dirty_rate",
    ),
    (
        "vcpu_dirty_limit_mib_per_second",
        "gauge",
        "Dirty page rate limit of the vCPU (0: none; query-vcpu-dirty-limit's limit-rate)",
        "limit",
    ),
    (
        "vcpu_throttle_us_per_full",
        "gauge",
        "Penalty: microseconds the vCPU sleeps each time its dirty ring fills",
        "throttle_us_per_full",
    ),
    (
        "vcpu_ring_full_time_us",
        "gauge",
        "QEMU's ring-full time at the vCPU's rate (the controller's unit of penalty)",
        "ring_full_time_us",
    ),
    (
        "vcpu_penalty_seconds",
        "counter",
        "Seconds the vCPU spent in dirty-limit penalty sleeps",
        "penalty_seconds",
    ),
    ("vcpu_ring_full_exits", "counter", "Dirty-ring-full exits of the vCPU", "ring_full_exits"),
    (
        "vcpu_harvested_pages",
        "counter",
        "Dirty-ring entries (pages) harvested from the vCPU's ring",
        "harvested_pages",
    ),
]

#: Migration figures: (name, kind, help, field of MigrationReading).
_MIGRATION: list[tuple[str, str, str, str]] = [
    ("migration_setup_time_ms", "gauge", "Setup time of the migration", "setup_time_ms"),
    ("migration_total_time_ms", "gauge", "Time since the migration started", "total_time_ms"),
    ("migration_downtime_ms", "gauge", "Downtime of the completed migration", "downtime_ms"),
    ("migration_transferred_bytes", "gauge", "Bytes sent so far", "transferred_bytes"),
    ("migration_remaining_bytes", "gauge", "Bytes still to send", "remaining_bytes"),
    ("migration_precopy_bytes", "gauge", "Bytes sent while the guest ran", "precopy_bytes"),
    ("migration_downtime_bytes", "gauge", "Bytes sent while it was stopped", "downtime_bytes"),
    ("migration_normal_pages", "gauge", "Pages sent with their content", "normal_pages"),
    ("migration_duplicate_pages", "gauge", "All-zero pages sent as entries", "duplicate_pages"),
    ("migration_dirty_sync_count", "gauge", "Dirty-log syncs (passes)", "dirty_sync_count"),
    (
        "migration_dirty_pages_rate",
        "gauge",
        "Pages dirtied per second at the last sync",
        "dirty_pages_rate",
    ),
    ("migration_mbps", "gauge", "Measured bandwidth, Mbit/s", "mbps"),
    (
        "migration_cpu_throttle_percentage",
        "gauge",
        "auto-converge's CPU throttle",
        "cpu_throttle_percentage",
    ),
]

#: Every status query-migrate can show (a state set: exactly one is 1).
MIGRATION_STATUSES = (
    "none",
    "setup",
    "cancelling",
    "cancelled",
    "active",
    "postcopy-active",
    "postcopy-paused",
    "postcopy-recover-setup",
    "postcopy-recover",
    "completed",
    "failed",
    "colo",
    "pre-switchover",
    "device",
    "wait-unplug",
)


def _family(
    name: str, kind: str, text: str, labels: list[str] | None = None, value: float | None = None
) -> CounterMetricFamily | GaugeMetricFamily:
    family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return family(f"{PREFIX}_{name}", text, labels=labels, value=value)


class ThrottleCollector(Collector):
    """Builds every metric from one :meth:`ReadingsSource.read` per scrape."""

    def __init__(self, source: ReadingsSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        r = self.source.read()
        yield from self._vcpus(r.vcpus)
        runstate = GaugeMetricFamily(
            f"{PREFIX}_runstate", "The VM's run state (query-status)", labels=["status"]
        )
        runstate.add_metric([r.runstate], 1)
        yield runstate
        yield GaugeMetricFamily(
            f"{PREFIX}_dirtylimit_in_service",
            "1 while a dirty limit is in service (the throttle thread runs)",
            value=int(r.in_service),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_dirtylimit_periods",
            "Throttle periods measured (one per second outside a dirty-limit migration)",
            value=r.throttle_periods,
        )
        requests = CounterMetricFamily(
            f"{PREFIX}_qmp_requests",
            "QMP replies by command and result (ok, or the error class)",
            labels=["command", "result"],
        )
        for (command, result), count in sorted(r.requests.items()):
            requests.add_metric([command, result], count)
        yield requests
        yield from self._migration(r.migration)

    def _vcpus(self, vcpus: tuple[VcpuReading, ...]) -> Iterator[Metric]:
        for name, kind, text, attr in _VCPU:
            family = _family(name, kind, text, ["cpu_index"])
            for v in vcpus:
                value = getattr(v, attr)
                if value is not None:
                    family.add_metric([str(v.cpu_index)], value)
            yield family

    def _migration(self, m: MigrationReading) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            f"{PREFIX}_migration_status",
            "The outgoing migration's status (query-migrate): 1 for the current one",
            labels=["status"],
        )
        for name in MIGRATION_STATUSES:
            status.add_metric([name], int(m.status == name))
        yield status
        for name, kind, text, attr in _MIGRATION:
            yield _family(name, kind, text, value=getattr(m, attr))


def registry_for(source: ReadingsSource) -> CollectorRegistry:
    """A registry with the throttle collector and the process' own CPU and memory."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ThrottleCollector(source))
    registry.register(ProcessCollector(namespace=PREFIX, registry=None))
    return registry


class MetricsServer:
    """The HTTP endpoint (``/metrics``; any path answers the same)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @classmethod
    def start(cls, host: str, port: int, source: ReadingsSource) -> MetricsServer:
        """Listen on ``host:port`` (port 0: any free port); raises OSError."""
        server, thread = start_http_server(port, host, registry_for(source))
        return cls(server, thread)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def announce(self) -> None:
        print(f"qmpdl: metrics on {self.url()}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
