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
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qmpdl import report
from qmpdl.backend.base import VcpuBackend
from qmpdl.clock import Clock
from qmpdl.commands.executor import CommandExecutor
from qmpdl.config import Chardev, MachineConfig, MonitorConfig
from qmpdl.errors import QMPError
from qmpdl.profile import Profile, get_profile
from qmpdl.qapi import QapiSchema
from qmpdl.qmp.session import MonitorSession
from qmpdl.server.chardev import ChardevEndpoint, ChardevError
from qmpdl.server.connection import MonitorConnection
from qmpdl.server.dispatcher import Dispatcher
from qmpdl.server.frontends import HmpConnection, SerialConnection
from qmpdl.server.memory import keep_large_blocks_mapped
from qmpdl.trace import Tracer
from qmpdl.vm.machine import Machine
from qmpdl.vm.powerbutton import PowerButton
from qmpdl.workload import Workload, WorkloadError, resolve_workloads

if TYPE_CHECKING:
    from qmpdl.backend.kvm import SerialPort
    from qmpdl.hmp.session import HmpSession
    from qmpdl.observe.metrics import MetricsServer

PROG = report.PROG


class ConfigError(Exception):
    """The machine cannot be built or a device cannot be opened: QEMU's text, and the
    option it is about (None: the text says it all)."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location


def build_backend(
    config: MachineConfig, profile: Profile, clock: Clock, serial: SerialPort | None = None
) -> VcpuBackend:
    try:
        workloads = resolve_workloads(config.workloads, config.cpus)
    except WorkloadError as e:
        raise ConfigError(f"--workload: {e}") from None
    kick_interrupts_sleep = not profile.has("dirtylimit-sleep-uninterruptible")
    if config.accel.kind == "kvm":
        return build_kvm_backend(
            config, workloads, clock, kick_interrupts_sleep, profile, serial=serial
        )
    from qmpdl.backend.sim import SimBackend

    try:
        return SimBackend(
            workloads,
            config.ram_size,
            config.accel.dirty_ring_size,
            clock,
            kick_interrupts_sleep=kick_interrupts_sleep,
            start_paused=config.start_paused or config.incoming is not None,
        )
    except ValueError as e:
        raise ConfigError(f"--workload: {e}") from None


def build_kvm_backend(
    config: MachineConfig,
    workloads: list[Workload],
    clock: Clock,
    kick_interrupts_sleep: bool,
    profile: Profile,
    *,
    serial: SerialPort | None = None,
) -> VcpuBackend:
    """Real vCPUs; the accelerator's checks and texts are QEMU's."""
    from qmpdl.backend.kvm import KvmBackend
    from qmpdl.kvm.vm import dirty_ring_max_entries, kvm_init_error

    accel = "kvm" + (
        f",dirty-ring-size={config.accel.dirty_ring_size}" if config.accel.dirty_ring_size else ""
    )
    where = f"-accel {accel}"
    problem = kvm_init_error()
    if problem is not None:
        message, error = problem
        failed = f"{where}: failed to initialize kvm: {os.strerror(error)}"
        if profile.has("kvm-init-error-report"):
            raise ConfigError(f"{where}: {message}\n{PROG}: {failed}")
        print(message, file=sys.stderr, flush=True)  # QEMU: a bare line before 9.2
        raise ConfigError(failed)
    ring = config.accel.dirty_ring_size
    if ring:
        maximum = dirty_ring_max_entries()
        if not maximum:
            report.warning("KVM dirty ring not available, using bitmap method")
            ring = 0
        elif ring > maximum:
            raise ConfigError(
                f"{where}: KVM dirty ring size {ring} too big (maximum is {maximum}).  "
                f"Please use a smaller value.\n{PROG}: {where}: failed to initialize kvm: "
                "Invalid argument"
            )
    try:
        return KvmBackend(
            workloads,
            config.ram_size,
            ring,
            clock,
            kick_interrupts_sleep=kick_interrupts_sleep,
            start_paused=config.start_paused or config.incoming is not None,
            serial=serial,
        )
    except ValueError as e:
        raise ConfigError(f"--workload: {e}") from None
    except OSError as e:
        raise ConfigError(f"-accel kvm: failed to initialize kvm: {e.strerror or e}") from None


def build_machine(
    config: MachineConfig, clock: Clock | None = None, *, serial: SerialPort | None = None
) -> Machine:
    """The machine of ``config``; ``serial`` is where its guests' COM1 output goes."""
    from qmpdl import vtime

    config = vtime.prepare(config)  # a scenario's workloads
    profile = vtime.profile_for(get_profile(config.qemu_version), config)
    clock = clock or vtime.clock_for(config)
    # The trace file stays open for the life of the process, like QEMU's -D file.
    out = open(config.trace_file, "a") if config.trace_file else None  # noqa: SIM115
    tracer = Tracer(config.trace_patterns, out)
    if serial is None and config.serials:
        # no server around the machine (tests, tools): a file port is written directly
        port = config.chardev(config.serials[0])
        if port.backend == "file" and port.path is not None:
            serial = open(port.path, "ab" if port.append else "wb")  # noqa: SIM115
    backend = build_backend(config, profile, clock, serial)
    machine = Machine(config, profile, backend, clock, tracer=tracer)
    vtime.install(machine)  # virtual time, seed, scenario (no-ops without them)
    return machine


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


class Frontends:
    """Who uses which chardev: monitors (QMP or human) and serial ports."""

    def __init__(
        self,
        config: MachineConfig,
        machine: Machine,
        *,
        dispatcher: Dispatcher,
        executor: CommandExecutor,
        hello: dict[str, object],
        on_shutdown: Callable[[], None],
    ) -> None:
        self.config = config
        self.machine = machine
        self.dispatcher = dispatcher
        self.executor = executor
        self.hello = hello
        self.on_shutdown = on_shutdown
        self.monitors = {m.chardev: m for m in config.monitors}
        self.serials = set(config.serials)

    def factory(self, chardev: Chardev) -> Callable[[Any, Any], Any]:
        monitor = self.monitors.get(chardev.id)
        if monitor is not None and monitor.mode == "control":
            return self._qmp(monitor)
        if monitor is not None:
            from qmpdl.hmp.session import HmpSession
            from qmpdl.hmp.table import commands_for

            session = HmpSession(
                hmp_version(self.machine.profile), commands_for(self.machine.profile)
            )
            return lambda on_open, on_close: HmpConnection(
                session, self._hmp_line, on_open, on_close
            )
        return SerialConnection

    def _qmp(self, monitor: MonitorConfig) -> Callable[[Any, Any], Any]:
        hello, pretty = self.hello, monitor.pretty

        def session() -> MonitorSession:
            return MonitorSession(hello, oob_offered=True, pretty=pretty)  # type: ignore[arg-type]

        return lambda on_open, on_close: MonitorConnection(
            dispatcher=self.dispatcher,
            make_session=session,
            on_open=on_open,
            on_close=on_close,
            name=monitor.chardev,
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
            endpoint = ChardevEndpoint(chardev, state)
            endpoint.factory = frontends.factory(chardev)
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
    machine: Machine | None = None,
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
    try:
        serial = GuestSerial()
        if machine is None:
            machine = build_machine(config, serial=serial if config.serials else None)
        return await _serve(
            config,
            machine,
            serial=serial,
            stopping=stopping,
            shutdown_cause=shutdown_cause,
            on_ready=on_ready,
        )
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
) -> int:
    loop = asyncio.get_running_loop()
    keep_large_blocks_mapped()
    schema = QapiSchema.load(machine.profile)
    executor = CommandExecutor(machine, schema)
    dispatcher = Dispatcher(machine, executor, on_shutdown=stopping.set)
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
    exit_status = 0

    def exit_process(status: int) -> None:
        """A failed incoming migration ends the process (QEMU exits with status 1)."""
        nonlocal exit_status
        exit_status = status
        loop.call_soon_threadsafe(stopping.set)

    machine.migration.exit = exit_process

    def later(work: Callable[[], None]) -> None:
        """Run ``work`` in a worker thread, soon (called from any thread)."""
        loop.call_soon_threadsafe(lambda: loop.run_in_executor(None, work))

    def guest_exit() -> None:
        loop.call_soon_threadsafe(stopping.set)

    power_button = PowerButton(machine, later, guest_exit)
    metrics: MetricsServer | None = None
    try:
        if config.metrics is not None:
            # Imported only here: without --metrics qmpdl never loads prometheus-client.
            from qmpdl.observe.endpoint import start_metrics

            try:
                metrics = start_metrics(config.metrics, machine, executor, dispatcher)
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
    return exit_status


def _process_name(pid: int) -> str:
    """What QEMU shows for the sender of a signal: its command (``argv[0]``)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return "<unknown process>"
