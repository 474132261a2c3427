"""Wiring ``--metrics`` into a running qmpdl: the readings over the machine's parts and
the request counter (which the server handed its dispatcher) go into the collector, and
the HTTP server starts.  Imported by the server only when ``--metrics`` is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpdl.observe.metrics import MetricsServer
from qmpdl.observe.readings import MachineReadings, RequestCounter

if TYPE_CHECKING:
    from qmpdl.system.machine import Machine


def start_metrics(
    address: tuple[str, int], machine: Machine, requests: RequestCounter
) -> MetricsServer:
    """Serve the machine's metrics on ``address``; raises OSError if it cannot bind."""
    host, port = address
    server = MetricsServer.start(host, port, MachineReadings.of(machine, requests))
    server.announce()
    return server
