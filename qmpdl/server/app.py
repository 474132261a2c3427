"""The qmpdl process: build the machine, open the monitors, serve until quit or signal.

Shutdown (``quit``, SIGINT, SIGTERM) is orderly, as QEMU's: a SHUTDOWN event goes to
every negotiated monitor (for ``quit`` before its reply), client connections are
flushed and closed, listening sockets are closed and their files removed, every
thread is joined, and the process exits with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

from qmpdl.backend.base import VcpuBackend
from qmpdl.backend.sim import SimBackend
from qmpdl.clock import Clock, RealClock
from qmpdl.commands.executor import CommandExecutor
from qmpdl.config import ChardevSocket, MachineConfig, MonitorConfig
from qmpdl.errors import QMPError
from qmpdl.profile import Profile, get_profile
from qmpdl.qapi import QapiSchema
from qmpdl.qmp.session import MonitorSession
from qmpdl.server.connection import MonitorConnection
from qmpdl.server.dispatcher import Dispatcher
from qmpdl.server.listener import LISTEN_BACKLOG, Listener, listening_tcp_socket
from qmpdl.server.memory import keep_large_blocks_mapped
from qmpdl.trace import Tracer
from qmpdl.vm.machine import Machine
from qmpdl.workload import Workload, WorkloadError, resolve_workloads

PROG = "qmpdl"

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The machine cannot be built or a monitor cannot be opened (QEMU-style text)."""


def build_backend(config: MachineConfig, profile: Profile, clock: Clock) -> VcpuBackend:
    try:
        workloads = resolve_workloads(config.workloads, config.cpus)
    except WorkloadError as e:
        raise ConfigError(f"--workload: {e}") from None
    kick_interrupts_sleep = not profile.has("dirtylimit-sleep-uninterruptible")
    if config.accel.kind == "kvm":
        return build_kvm_backend(config, workloads, clock, kick_interrupts_sleep, profile)
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
            print(
                f"{PROG}: warning: KVM dirty ring not available, using bitmap method",
                file=sys.stderr,
            )
            ring = 0
        elif ring > maximum:
            raise ConfigError(
                f"{where}: KVM dirty ring size {ring} too big (maximum is {maximum}).  "
                f"Please use a smaller value.\n{PROG}: {where}: failed to initialize kvm: "
                "Invalid argument"
            )
    # Open for the life of the process, like QEMU's -serial file.
    serial = open(config.serial_file, "ab") if config.serial_file else None  # noqa: SIM115
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


def build_machine(config: MachineConfig, clock: Clock | None = None) -> Machine:
    profile = get_profile(config.qemu_version)
    clock = clock or RealClock()
    # The trace file stays open for the life of the process, like QEMU's -D file.
    out = open(config.trace_file, "a") if config.trace_file else None  # noqa: SIM115
    tracer = Tracer(config.trace_patterns, out)
    return Machine(config, profile, build_backend(config, profile, clock), clock, tracer=tracer)


def greeting(executor: CommandExecutor) -> dict[str, object]:
    version = executor.call_sync("query-version", {})
    return {"QMP": {"version": version, "capabilities": ["oob"]}}


def _listening_unix_socket(path: str) -> socket.socket:
    """A unix socket already listening when ``path`` appears: bound under a temporary
    name, then renamed into place, so a client that connects as soon as it sees the
    path is never refused (bind-then-listen leaves a window in which it would be)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = f"{path}.{os.getpid()}.tmp"
    if len(os.fsencode(staging)) > 107:  # no room in sun_path for the staging name
        staging = path
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        sock.bind(staging)
        sock.listen(LISTEN_BACKLOG)
        if staging != path:
            os.rename(staging, path)
    except OSError as e:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        # report the path the user gave, as a plain bind would
        raise OSError(e.errno, e.strerror, path) from None
    return sock


class MonitorEndpoint:
    """One monitor's socket: listening (one client at a time, accepted only while the
    monitor has none, as QEMU does: see :mod:`qmpdl.server.listener`) or connected out
    to a listening client."""

    def __init__(
        self,
        chardev: ChardevSocket,
        monitor: MonitorConfig,
        dispatcher: Dispatcher,
        make_session: Callable[[], MonitorSession],
    ) -> None:
        self.chardev = chardev
        self.monitor = monitor
        self.dispatcher = dispatcher
        self.make_session = make_session
        self.listener: Listener | None = None
        self.active: MonitorConnection | None = None
        self.connections: list[MonitorConnection] = []
        self.first_client = asyncio.Event()
        self._accepting = False
        #: accepted sockets whose connection is being set up
        self._opening: set[asyncio.Task[tuple[asyncio.Transport, MonitorConnection]]] = set()

    def _factory(self) -> MonitorConnection:
        connection = MonitorConnection(
            dispatcher=self.dispatcher,
            make_session=self.make_session,
            on_open=self._arrived,
            on_close=self._closed,
            name=self.chardev.id,
        )
        connection.current_client = lambda: self.active
        self.connections.append(connection)
        return connection

    def _accepted(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(self._factory, sock))
        self._opening.add(task)
        task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[tuple[asyncio.Transport, MonitorConnection]]) -> None:
        self._opening.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("client connection failed: %s", task.exception())
        # (a client that left at once may already be gone: then take the next one)
        self._listen()

    def _arrived(self, connection: MonitorConnection) -> None:
        if connection.closed.is_set():
            return
        self.first_client.set()
        self.active = connection
        if self._accepting:
            connection.activate()

    def _closed(self, connection: MonitorConnection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
        if self.active is connection:
            self.active = None
            self._listen()

    def _listen(self) -> None:
        """Accept the next client if the monitor has none: once serving, or before that
        for ``wait=on`` until the first client came (QEMU waits for it at start-up)."""
        if self.listener is None or self.active is not None or self._opening:
            return
        if self._accepting or (self.chardev.wait and not self.first_client.is_set()):
            self.listener.enable()

    def start_serving(self) -> None:
        """Greet clients from now on (after the machine exists)."""
        self._accepting = True
        if self.active is not None and not self.active.serving:
            self.active.activate()
        self._listen()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        c = self.chardev
        where = f"-qmp {c.describe()}"
        try:
            if c.server:
                if c.path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(c.path)
                    sock = _listening_unix_socket(c.path)
                else:
                    assert c.port is not None
                    sock = listening_tcp_socket(c.host, c.port)
                self.listener = Listener(sock, self._accepted)
                self._listen()
            elif c.path is not None:
                await loop.create_unix_connection(self._factory, c.path)
            else:
                assert c.host is not None and c.port is not None
                await loop.create_connection(self._factory, c.host, c.port)
        except OSError as e:
            target = c.path if c.path is not None else f"{c.host}:{c.port}"
            verb = "bind" if c.server else "connect to"
            raise ConfigError(
                f"{where}: Failed to {verb} {'socket' if c.server else ''}"
                f"{' ' if c.server else ''}'{target}': {e.strerror or e}".replace("  ", " ")
            ) from None

    async def close(self) -> None:
        self._accepting = False
        if self.listener is not None:
            self.listener.close()
        for task in list(self._opening):
            task.cancel()
        for connection in list(self.connections):
            connection.close()
        for connection in list(self.connections):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.closed.wait(), 2)
        if self.listener is not None and self.chardev.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.chardev.path)


async def serve(config: MachineConfig, *, machine: Machine | None = None) -> int:
    """Run qmpdl until it shuts down; returns the exit status."""
    loop = asyncio.get_running_loop()
    keep_large_blocks_mapped()
    machine = machine or build_machine(config)
    schema = QapiSchema.load(machine.profile)
    executor = CommandExecutor(machine, schema)
    stopping = asyncio.Event()
    dispatcher = Dispatcher(machine, executor, on_shutdown=stopping.set)
    hello = greeting(executor)

    def make_session(monitor: MonitorConfig) -> Callable[[], MonitorSession]:
        return lambda: MonitorSession(hello, oob_offered=True, pretty=monitor.pretty)  # type: ignore[arg-type]

    endpoints = [
        MonitorEndpoint(config.chardev(m.chardev), m, dispatcher, make_session(m))
        for m in config.monitors
    ]
    try:
        for endpoint in endpoints:
            await endpoint.open()
        for endpoint in endpoints:
            c = endpoint.chardev
            if c.server and c.wait:
                print(
                    f"{PROG}: waiting for connection on: disconnected:{c.describe()}",
                    file=sys.stderr,
                    flush=True,
                )
                await endpoint.first_client.wait()
    except BaseException:
        for endpoint in endpoints:
            await endpoint.close()
        raise

    def on_signal(signum: int) -> None:
        print(f"{PROG}: terminating on signal {signum}", file=sys.stderr, flush=True)
        machine.request_shutdown("host-signal")
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, on_signal, signum)
    # Everything built so far (schema, models, machine) lives until exit: keep it out of
    # the collector's full passes, which would otherwise scan it and stall replies.
    gc.freeze()
    exit_status = 0

    def exit_process(status: int) -> None:
        """A failed incoming migration ends the process (QEMU exits with status 1)."""
        nonlocal exit_status
        exit_status = status
        loop.call_soon_threadsafe(stopping.set)

    machine.migration.exit = exit_process
    if config.incoming is not None and config.incoming != "defer":
        try:
            machine.migration.start_incoming(config.incoming)
        except (OSError, QMPError) as e:
            for endpoint in endpoints:
                await endpoint.close()
            text = e.desc if isinstance(e, QMPError) else f"Failed to bind socket: {e.strerror}"
            raise ConfigError(f"-incoming {config.incoming}: {text}") from None
    try:
        machine.start()
        dispatcher.start()
        for endpoint in endpoints:
            endpoint.start_serving()
        await stopping.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await dispatcher.stop()
        for endpoint in endpoints:
            await endpoint.close()
        executor.close()
        await asyncio.to_thread(machine.teardown)
    return exit_status
