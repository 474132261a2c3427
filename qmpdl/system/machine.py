"""The machine: one backend's vCPUs, the run state, the dirty limit and dirty rate, and
the migration.

:func:`qmpdl.system.build.build_machine` makes one.  :class:`Machine` builds its parts in
dependency order, each handed the narrow interface it uses (the backend's roles, the
BQL, the dirty log), so nothing is patched after construction.

Command handlers and background threads share it.  Handlers run one at a time (the QMP
dispatcher serialises them, like QEMU's main loop); background threads (the throttle
thread, a dirty-rate measurement) use the finer locks of the parts they touch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from qmpdl.backend.base import VcpuBackend
from qmpdl.backend.registry import Accelerator
from qmpdl.clock import Clock, release
from qmpdl.config import MachineConfig
from qmpdl.dirtylimit.service import DirtyLimit, PeriodDriver
from qmpdl.dirtyrate.calc import DirtyRateCalc
from qmpdl.errors import QMPError
from qmpdl.profile import Profile
from qmpdl.qapi.types import RunState
from qmpdl.qemudata.vmstate import VmState
from qmpdl.trace import NULL_TRACER, Tracer
from qmpdl.vm.bottomhalf import BottomHalves
from qmpdl.vm.bql import BigLock
from qmpdl.vm.chardevs import ChardevRegistry
from qmpdl.vm.dirtylog import DirtyLog
from qmpdl.vm.events import EventBus

if TYPE_CHECKING:
    import random

    from qmpdl.migration.host import StreamFaults
    from qmpdl.migration.manager import MigrationManager
    from qmpdl.migration.params import MigrationConfig

log = logging.getLogger("qmpdl")

#: Run states ``cont`` refuses to leave (QEMU: the VM must be reset first).
_NEEDS_RESET = (RunState.INTERNAL_ERROR, RunState.SHUTDOWN, RunState.GUEST_PANICKED)


def no_exit(status: int) -> None:
    """Without a server around the machine (tests, tools) nothing ends the process."""


class PartHooks(NamedTuple):
    """What the composition root hands the parts besides the clock: the choices of
    :mod:`qmpdl.vtime` (a seed, the virtual clock's throttle, a scenario's faults).  The
    defaults are a plain machine's."""

    #: page sampling's random choices (``--seed``)
    rng: random.Random | None = None
    #: what measurements read as the vCPUs' harvested pages (``bad-measurement``)
    counters: Callable[[], list[int]] | None = None
    #: runs the throttle periods instead of a thread (the virtual clock's timers)
    period_driver: Callable[[DirtyLimit], PeriodDriver] | None = None
    #: seconds the next throttle period begins late (``late-throttle-period``)
    period_delay: Callable[[], float] | None = None
    #: the migration streams' faults (``migration-stream``, ``destination-refuse``)
    stream_faults: StreamFaults | None = None
    #: the clock is a stepped virtual one: the migration stream takes its time
    virtual_clock: bool = False


#: a plain machine's hooks
PLAIN = PartHooks()


class Machine:
    """An emulated VM as QMP sees it."""

    def __init__(
        self,
        config: MachineConfig,
        profile: Profile,
        accelerator: Accelerator,
        backend: VcpuBackend,
        clock: Clock,
        *,
        tracer: Tracer = NULL_TRACER,
        exit_process: Callable[[int], None] = no_exit,
        hooks: PartHooks = PLAIN,
    ) -> None:
        self.config = config
        self.profile = profile
        #: the ``-accel`` entry: what the machine presents itself as to clients
        self.accelerator = accelerator
        self.backend = backend
        self.clock = clock
        self.tracer = tracer
        self.events = EventBus(clock)
        #: set when the machine shuts down: background threads stop waiting
        self.shutdown_event = threading.Event()
        #: QEMU's BQL: held by in-band command handlers (see qmpdl.vm.bql)
        self.bql = BigLock()
        #: main-loop work handed over by background threads (see qmpdl.vm.bottomhalf)
        self.bottom_halves = BottomHalves(self.bql)
        self._state_lock = threading.Lock()
        if config.incoming is not None:
            self.runstate = RunState.INMIGRATE
        else:
            self.runstate = RunState.PRELAUNCH if config.start_paused else RunState.RUNNING
        self._before_migration = self.runstate
        #: QEMU's autostart: run when an incoming migration completes (no -S, or a
        #: ``cont`` during ``inmigrate``; a ``stop`` then clears it)
        self.autostart = not config.start_paused
        self.dirty_log = DirtyLog(backend, hooks.counters)

        # QEMU's one cycle among the parts: the migration drives the dirty limit, which
        # asks the migration whether users may change limits and how long a period is.
        # The manager is built from the parts above when first used (see
        # ``migration``): these two reach it, and nothing calls them during construction.
        def dirty_limit_allowed() -> bool:
            return self.migration.dirty_limit_allowed()

        def dirty_limit_period_ms() -> int:
            return self.migration.dirty_limit_period_ms()

        self.dirtylimit = DirtyLimit(
            backend=backend,
            dirty_log=self.dirty_log,
            clock=clock,
            profile=profile,
            max_cpus=config.max_cpus,
            shutdown=self.shutdown_event,
            bql=self.bql,
            tracer=tracer,
            period_ms=dirty_limit_period_ms,
            allowed=dirty_limit_allowed,
            controller=config.dirtylimit_controller,
            period_driver=hooks.period_driver,
            period_delay=hooks.period_delay,
        )
        self.dirtyrate = DirtyRateCalc(
            dirty_log=self.dirty_log,
            memory=backend,
            clock=clock,
            profile=profile,
            shutdown=self.shutdown_event,
            bql=self.bql,
            tracer=tracer,
            rng=hooks.rng,
        )
        #: the migration's parts are built when first used (most machines never
        #: migrate, and a start-up without them is the shorter): see ``migration``
        self._exit_process = exit_process
        self._migration_lock = threading.RLock()
        self._migration_config: MigrationConfig | None = None
        self._migration: MigrationManager | None = None
        self._hooks = hooks
        #: socket chardevs, in creation order (``query-yank`` lists them)
        self.chardev_ids = [c.id for c in config.chardevs if c.backend == "socket"]
        #: every chardev as ``query-chardev`` reports it (the server keeps it current)
        self.chardevs = ChardevRegistry()
        #: why the machine shut down (a ShutdownCause value), once it has
        self.shutdown_reason: str | None = None
        #: QEMU's state around the VM that the harness commands read (QOM, actions)
        self.vmstate = VmState(config, profile, accelerator.presents_as, backend)

    # ------------------------------------------------------------------ migration

    @property
    def migration_config(self) -> MigrationConfig:
        """The migration's capabilities and parameters (``-global migration.*`` applied)."""
        with self._migration_lock:
            if self._migration_config is None:
                from qmpdl.migration.params import MigrationConfig

                self._migration_config = MigrationConfig(
                    self.profile,
                    kvm_dirty_ring=self.backend.ring_size > 0
                    and self.accelerator.presents_as == "kvm",
                    global_properties=self.config.migration_globals,
                )
            return self._migration_config

    @property
    def migration(self) -> MigrationManager:
        """The migration manager: outgoing and incoming migration, their status."""
        if self._migration is None:
            config = self.migration_config
            with self._migration_lock:
                if self._migration is None:
                    from qmpdl.migration.manager import MigrationManager

                    self._migration = MigrationManager(
                        self,
                        config,
                        exit=self._exit_process,
                        stream_faults=self._hooks.stream_faults,
                        virtual_time=self._hooks.virtual_clock,
                    )
        return self._migration

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.backend.start(self.internal_error)

    @property
    def running(self) -> bool:
        return self.runstate == RunState.RUNNING

    def stop(self) -> None:
        """QMP ``stop``: pause the vCPUs; STOP is emitted only if they were running."""
        with self._state_lock:
            if self.runstate == RunState.INMIGRATE:
                self.autostart = False
                return
            if self.runstate != RunState.RUNNING:
                return
            self.runstate = RunState.PAUSED
        # QEMU waits for the vCPUs to stop with the BQL dropped - and nothing else held:
        # a thread that takes the BQL meanwhile may want the state lock (the migration
        # thread completing does), and this one needs the BQL back.
        with self.bql.dropped():
            self.backend.pause()
        self.events.emit("STOP")

    def cont(self) -> None:
        """QMP ``cont``: run the vCPUs; RESUME is emitted only if they were not running."""
        with self._state_lock:
            if self.runstate == RunState.RUNNING:
                return
            if self.runstate in _NEEDS_RESET:
                raise QMPError("Resetting the Virtual Machine is required")
            if self.runstate == RunState.INMIGRATE:
                self.autostart = True
                return
            self.backend.resume()
            self.runstate = RunState.RUNNING
        self.events.emit("RESUME")

    def set_runstate(self, state: RunState) -> None:
        with self._state_lock:
            self.runstate = state

    def stop_for_migration(self) -> bool:
        """Switchover: vCPUs stop, runstate ``finish-migrate``; True if they were running."""
        with self._state_lock:
            was_running = self.runstate == RunState.RUNNING
            self._before_migration = self.runstate
            self.runstate = RunState.FINISH_MIGRATE
        # Without the BQL, as QEMU waits for its vCPUs with it released: a vCPU in a
        # long dirty-limit penalty sleep delays the switchover, not the monitor.
        self.backend.pause()
        if was_running:
            self.events.emit("STOP")
        return was_running

    def restart_after_migration(self, was_running: bool) -> None:
        """A failed or cancelled migration: the VM runs again if it ran before."""
        with self._state_lock:
            if self.runstate != RunState.FINISH_MIGRATE:
                return
            if not was_running:
                self.runstate = self._before_migration
                return
            self.runstate = RunState.RUNNING
        self.backend.resume()
        self.events.emit("RESUME")

    @property
    def runstate_before_migration(self) -> RunState:
        """The run state an outgoing migration found (QEMU's global state)."""
        return self._before_migration

    def start_after_incoming(self, source_runstate: str | None) -> None:
        """The incoming migration loaded: take the run state the source had if it was
        not running; else run if autostart, or pause."""
        with self._state_lock:
            if source_runstate is not None and source_runstate not in ("running", "suspended"):
                self.runstate = RunState(source_runstate)
                return
            if not self.autostart:
                self.runstate = RunState.PAUSED
                return
            self.runstate = RunState.RUNNING
        self.backend.resume()
        self.events.emit("RESUME")

    def internal_error(self, message: str) -> None:
        """A vCPU cannot go on (unexpected exit, a ring KVM reports full but empty):
        say why on stderr and stop the VM in ``internal-error``, as QEMU does."""
        log.error("%s", message)
        with self._state_lock:
            if self.runstate in (RunState.INTERNAL_ERROR, RunState.SHUTDOWN):
                return
            was_running = self.runstate == RunState.RUNNING
            self.runstate = RunState.INTERNAL_ERROR
        with self.bql.dropped():
            self.backend.pause()
        if was_running:
            self.events.emit("STOP")

    def guest_shutdown(self, *, pause: bool) -> bool:
        """The guest powered itself off: SHUTDOWN with ``guest`` true.  With the shutdown
        action ``pause`` (``-no-shutdown``) the vCPUs stop in run state ``shutdown``
        (STOP if they ran) and the process stays; otherwise it is to exit: returns True
        then.  Called with the BQL held."""
        with self._state_lock:
            if self.shutdown_reason is not None:
                return False
            if not pause:
                self.shutdown_reason = "guest-shutdown"
        self.events.emit("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"})
        if not pause:
            return True
        with self._state_lock:
            was_running = self.runstate == RunState.RUNNING
            self.runstate = RunState.SHUTDOWN
            if was_running:
                with self.bql.dropped():
                    self.backend.pause()
        if was_running:
            self.events.emit("STOP")
        return False

    def request_shutdown(self, reason: str) -> None:
        """``quit`` or a signal: emit SHUTDOWN once; the server then exits."""
        with self._state_lock:
            if self.shutdown_reason is not None:
                return
            self.shutdown_reason = reason
        self.events.emit("SHUTDOWN", {"guest": False, "reason": reason})

    def teardown(self) -> None:
        """Stop every thread and the vCPUs (after the last reply went out)."""
        release(self.clock)  # threads being joined must not wait for a virtual step
        if self._migration is not None:
            self._migration.shutdown()
        self.shutdown_event.set()
        self.dirtylimit.shutdown()
        self.dirtyrate.join(5)
        self.backend.shutdown()
