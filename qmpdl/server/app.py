"""The qmpdl process: build the machine, open the character devices with their monitors
and serial ports, serve until quit or signal.

Shutdown (``quit``, SIGINT, SIGTERM) is orderly, as QEMU's: a SHUTDOWN event goes to
every negotiated monitor (for ``quit`` before its reply), client connections are
flushed and closed, listening sockets are closed and their files removed, every
thread is joined, and the process exits with status 0.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING

from qmpdl import report
from qmpdl.commands.executor import CommandExecutor
from qmpdl.config import Chardev, MachineConfig, MonitorConfig
from qmpdl.errors import ConfigError, QMPError
from qmpdl.profile import Profile
from qmpdl.qapi import QapiSchema
from qmpdl.qmp.session import MonitorSession
from qmpdl.server.chardev import ChardevEndpoint, ChardevError, ConnectionFactory
from qmpdl.server.connection import MonitorConnection
from qmpdl.server.dispatcher import Dispatcher
from qmpdl.server.frontends import HmpConnection, SerialConnection
from qmpdl.server.memory import keep_large_blocks_mapped
from qmpdl.system import Machine, build_machine
from qmpdl.system.powerbutton import PowerButton

if TYPE_CHECKING:
    from qmpdl.hmp.session import HmpSession
    from qmpdl.observe.metrics import MetricsServer
    from qmpdl.observe.readings import RequestCounter

PROG = report.PROG


def greeting(executor: CommandExecutor) -> dict[str, object]:
    version = executor.call_sync("query-version", {})
    return {"QMP": {"version": version, "capabilities": ["oob"]}}


class GuestSerial:
    """COM1 as the vCPU threads see it: what they write goes, on the event loop, to the
    first serial port's chardev (dropped before it is open, as QEMU's chardevs drop
    output nobody reads)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoint: ChardevEndpoint | None = None
        self._lock = threading.Lock()

    def attach(self, loop: asyncio.AbstractEventLoop, endpoint: ChardevEndpoint) -> None:
        with self._lock:
            self._loop, self._endpoint = loop, endpoint

    def detach(self) -> None:
        with self._lock:
            self._loop = self._endpoint = None

    def write(self, data: bytes, /) -> int:
        with self._lock:
            if self._loop is not None and self._endpoint is not None:
                self._loop.call_soon_threadsafe(self._endpoint.write, bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def hmp_version(profile: Profile) -> str:
    """What the human monitor's banner calls the version (``7.2.22``)."""
    return ".".join(str(n) for n in profile.version)


@dataclass
class Frontends:
    """Who uses which chardev: monitors (QMP or human) and serial ports."""

    config: MachineConfig
    machine: Machine
    _: KW_ONLY
    dispatcher: Dispatcher
    executor: CommandExecutor
    hello: dict[str, object]
    on_shutdown: Callable[[], None]
    monitors: dict[str, MonitorConfig] = field(init=False)
    serials: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.monitors = {m.chardev: m for m in self.config.monitors}
        self.serials = set(self.config.serials)

    def factory(self, chardev: Chardev) -> ConnectionFactory:
        monitor = self.monitors.get(chardev.id)
        if monitor is not None and monitor.mode == "control":
            return self._qmp(monitor)
        if monitor is not None:
            from qmpdl.hmp.session import HmpSession
            from qmpdl.hmp.table import commands_for

            session = HmpSession(
                hmp_version(self.machine.profile), commands_for(self.machine.profile)
            )
            return lambda on_open, on_close, current_client: HmpConnection(
                session, self._hmp_line, on_open, on_close
            )
        return lambda on_open, on_close, current_client: SerialConnection(on_open, on_close)

    def _qmp(self, monitor: MonitorConfig) -> ConnectionFactory:
        hello, pretty = self.hello, monitor.pretty

        def session() -> MonitorSession:
            return MonitorSession(hello, oob_offered=True, pretty=pretty)  # type: ignore[arg-type]

        return lambda on_open, on_close, current_client: MonitorConnection(
            dispatcher=self.dispatcher,
            make_session=session,
            on_open=on_open,
            on_close=on_close,
            name=monitor.chardev,
            current_client=current_client,
        )

    async def _hmp_line(self, line: str, session: HmpSession) -> str:
        from qmpdl.commands.hmp import run_line

        def run() -> str:
            with self.machine.bql:
                text, session.cpu_index = run_line(
                    self.machine, self.executor, line, session.cpu_index
                )
            return text

        text = await asyncio.to_thread(run)
        if self.machine.shutdown_reason is not None:
            self.on_shutdown()
        return text


async def open_chardevs(
    config: MachineConfig, machine: Machine, frontends: Frontends
) -> list[ChardevEndpoint]:
    """Every chardev, in creation order; servers with ``wait=on`` get their first
    client before the next device opens, as in QEMU."""
    endpoints: list[ChardevEndpoint] = []
    try:
        for chardev in config.chardevs:
            used = chardev.id in frontends.monitors or chardev.id in frontends.serials
            state = machine.chardevs.add(chardev.id, chardev.backend, frontend_open=used)
            endpoint = ChardevEndpoint(chardev, state, frontends.factory(chardev))
            endpoints.append(endpoint)
            await endpoint.open()
            if chardev.backend == "socket" and chardev.server and chardev.wait:
                await endpoint.wait_connected()
    except BaseException:
        for endpoint in endpoints:
            await endpoint.close()
        raise
    return endpoints


async def serve(
    config: MachineConfig,
    *,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Run qmpdl until it shuts down; returns the exit status.  ``on_ready`` runs once
    every device is open and the machine built (``-daemonize`` detaches then)."""
    from qmpdl.server.signals import TerminationSignals

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    shutdown_cause: list[str] = []

    def on_signal(signum: int, pid: int) -> None:
        if shutdown_cause or stopping.is_set():
            return  # QEMU reports the request once, when its main loop takes it
        if pid:
            report.error(f"terminating on signal {signum} from pid {pid} ({_process_name(pid)})")
        else:
            report.error(f"terminating on signal {signum}")
        shutdown_cause.append("host-signal")
        stopping.set()

    # before any other thread exists: they all inherit the blocked signals
    signals = TerminationSignals(loop, on_signal)
    signals.install()
    exit_status = [0]

    def exit_process(status: int) -> None:
        """A failed incoming migration ends the process (QEMU exits with status 1)."""
        exit_status[0] = status
        loop.call_soon_threadsafe(stopping.set)

    try:
        serial = GuestSerial()
        machine = build_machine(
            config, serial=serial if config.serials else None, exit_process=exit_process
        )
        await _serve(
            config,
            machine,
            serial=serial,
            stopping=stopping,
            shutdown_cause=shutdown_cause,
            on_ready=on_ready,
        )
        return exit_status[0]
    finally:
        signals.remove()


async def _serve(
    config: MachineConfig,
    machine: Machine,
    *,
    serial: GuestSerial,
    stopping: asyncio.Event,
    shutdown_cause: list[str],
    on_ready: Callable[[], None] | None,
) -> None:
    loop = asyncio.get_running_loop()
    keep_large_blocks_mapped()
    schema = QapiSchema.load(machine.profile)
    executor = CommandExecutor(machine, schema)
    requests: RequestCounter | None = None
    if config.metrics is not None:
        # Imported only here: without --metrics qmpdl never loads prometheus-client.
        from qmpdl.observe.readings import RequestCounter

        requests = RequestCounter(executor.command_set(negotiating=False).commands)
    dispatcher = Dispatcher(machine, executor, on_shutdown=stopping.set, on_reply=requests)
    frontends = Frontends(
        config,
        machine,
        dispatcher=dispatcher,
        executor=executor,
        hello=greeting(executor),
        on_shutdown=stopping.set,
    )
    try:
        endpoints = await open_chardevs(config, machine, frontends)
    except ChardevError as e:
        await asyncio.to_thread(machine.teardown)
        raise ConfigError(e.message, e.location) from None
    if config.serials:
        first = next(e for e in endpoints if e.chardev.id == config.serials[0])
        serial.attach(loop, first)

    def later(work: Callable[[], None]) -> None:
        """Run ``work`` in a worker thread, soon (called from any thread)."""
        loop.call_soon_threadsafe(lambda: loop.run_in_executor(None, work))

    def guest_exit() -> None:
        loop.call_soon_threadsafe(stopping.set)

    power_button = PowerButton(machine, later, guest_exit)
    metrics: MetricsServer | None = None
    try:
        if config.metrics is not None and requests is not None:
            from qmpdl.observe.endpoint import start_metrics

            try:
                metrics = start_metrics(config.metrics, machine, requests)
            except OSError as e:
                host, port = config.metrics
                raise ConfigError(
                    f"--metrics {host}:{port}: Failed to bind socket: {e.strerror or e}"
                ) from None
        if config.incoming is not None and config.incoming != "defer":
            try:
                machine.migration.start_incoming(config.incoming)
            except (OSError, QMPError) as e:
                text = e.desc if isinstance(e, QMPError) else f"Failed to bind socket: {e.strerror}"
                raise ConfigError(text, f"-incoming {config.incoming}") from None
        # Everything built so far (schema, models, machine) lives until exit: keep it out
        # of the collector's full passes, which would otherwise scan it and stall replies.
        gc.freeze()
        gc.enable()  # off while qmpdl started (qmpdl.cli.main)
        machine.start()
        dispatcher.start()
        if on_ready is not None:
            on_ready()
        for endpoint in endpoints:
            endpoint.start_serving()
        await stopping.wait()
        if shutdown_cause:
            machine.request_shutdown(shutdown_cause.pop())
    finally:
        power_button.close()
        serial.detach()
        await dispatcher.stop()
        for endpoint in endpoints:
            await endpoint.close()
        executor.close()
        await asyncio.to_thread(machine.teardown)
        if metrics is not None:
            metrics.stop()


def _process_name(pid: int) -> str:
    """What QEMU shows for the sender of a signal: its command (``argv[0]``)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return "<unknown process>"
