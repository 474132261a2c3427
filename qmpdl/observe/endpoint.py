"""Wiring ``--metrics`` into a running qmpdl: the request counter goes into the
dispatcher, the readings over the machine's parts into the collector, and the HTTP
server starts.  Imported by the server only when ``--metrics`` is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpdl.observe.metrics import MetricsServer
from qmpdl.observe.readings import MachineReadings, RequestCounter

if TYPE_CHECKING:
    from qmpdl.commands.executor import CommandExecutor
    from qmpdl.server.dispatcher import Dispatcher
    from qmpdl.vm.machine import Machine


def start_metrics(
    address: tuple[str, int],
    machine: Machine,
    executor: CommandExecutor,
    dispatcher: Dispatcher,
) -> MetricsServer:
    """Serve the machine's metrics on ``address``; raises OSError if it cannot bind."""
    requests = RequestCounter(executor.command_set(negotiating=False).commands)
    host, port = address
    server = MetricsServer.start(host, port, MachineReadings.of(machine, requests))
    dispatcher.on_reply = requests
    server.announce()
    return server
