"""The migration state of one machine, outgoing and incoming, as QEMU keeps it.

Commands (``migrate``, ``migrate-incoming``, ``migrate_cancel``, ``migrate-continue``,
``query-migrate``) call in here; the outgoing and incoming threads report back.  Status
changes send the ``MIGRATION`` event and syncs ``MIGRATION_PASS`` when the ``events``
capability is on.  While a migration with the ``dirty-limit`` capability runs, the dirty
limit's period becomes ``x-vcpu-dirty-limit-period`` and users may not set or cancel
limits once one is in service; ``migrate_cancel`` lifts the limit, success does not.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from qmpdl.errors import QMPError
from qmpdl.migration.incoming import IncomingMigration
from qmpdl.migration.source import OutgoingMigration, SourceStats
from qmpdl.migration.uri import parse_uri
from qmpdl.qapi.types import RunState

if TYPE_CHECKING:
    from qmpdl.vm.machine import Machine

log = logging.getLogger("qmpdl")

#: States in which a migration counts as running (QEMU's migration_is_running).
RUNNING_STATES = frozenset(
    {
        "active",
        "postcopy-active",
        "postcopy-paused",
        "postcopy-recover",
        "setup",
        "pre-switchover",
        "device",
        "wait-unplug",
        "cancelling",
    }
)
#: States whose query-migrate carries times and RAM statistics.
RAM_INFO_STATES = frozenset(
    {
        "active",
        "cancelling",
        "postcopy-active",
        "pre-switchover",
        "device",
        "postcopy-paused",
        "postcopy-recover",
        "completed",
    }
)


class MigrationSettings(Protocol):
    """The capabilities and parameters the engine reads (migrate-set-*)."""

    @property
    def events(self) -> bool: ...
    @property
    def auto_converge(self) -> bool: ...
    @property
    def dirty_limit(self) -> bool: ...
    @property
    def pause_before_switchover(self) -> bool: ...
    @property
    def max_bandwidth(self) -> int: ...
    @property
    def downtime_limit(self) -> int: ...
    @property
    def throttle_trigger_threshold(self) -> int: ...
    @property
    def cpu_throttle_initial(self) -> int: ...
    @property
    def cpu_throttle_increment(self) -> int: ...
    @property
    def cpu_throttle_tailslow(self) -> bool: ...
    @property
    def max_cpu_throttle(self) -> int: ...
    @property
    def vcpu_dirty_limit(self) -> int: ...
    @property
    def x_vcpu_dirty_limit_period(self) -> int: ...


@dataclass(frozen=True)
class MigrationSnapshot:
    """Everything query-migrate may show, read at one moment."""

    status: str | None
    stats: SourceStats | None
    total_time: int | None
    cpu_throttle: int
    error_desc: str | None
    dirty_limit_fields: tuple[int, int] | None
    socket_address: list[dict[str, str]] | None


class MigrationManager:
    """Outgoing and incoming migration of one machine."""

    def __init__(self, machine: Machine, config: MigrationSettings) -> None:
        self.machine = machine
        self.config = config
        self._lock = threading.RLock()
        #: outgoing status (QEMU's MigrationState.state); "none" before any migration
        self.state = "none"
        self.error: str | None = None
        self.outgoing: OutgoingMigration | None = None
        self._last_stats: SourceStats | None = None
        #: auto-converge throttle, percent (0: off)
        self.cpu_throttle = 0
        #: migration_dirty_limit_guest's static quota (process-wide, never reset)
        self._dirty_limit_quota = 0
        self.incoming: IncomingMigration | None = None
        self.incoming_state = "none"
        self._incoming_once = False
        #: called with the exit status when the process must end (a failed load)
        self.exit: Any = lambda status: None

    # ------------------------------------------------------------------ queries

    def running(self) -> bool:
        return self.state in RUNNING_STATES

    def in_migration_thread(self) -> bool:
        out = self.outgoing
        return out is not None and threading.current_thread() is out.thread

    def dirty_limit_allowed(self) -> bool:
        """set/cancel-vcpu-dirty-limit are refused while a dirty-limit migration has
        the limit in service (the migration thread itself may)."""
        return not (
            self.running()
            and not self.in_migration_thread()
            and self.config.dirty_limit
            and self.machine.dirtylimit.in_service()
        )

    def dirty_limit_period_ms(self) -> int:
        if self.config.dirty_limit and self.running():
            return self.config.x_vcpu_dirty_limit_period
        return 1000

    def machine_description(self) -> dict[str, Any]:
        """What source and destination must agree on."""
        c = self.machine.config
        return {
            "ram": c.ram_size,
            "cpus": c.cpus,
            "accel": c.accel.kind,
            "ring": self.machine.backend.ring_size > 0,
        }

    def snapshot(self) -> MigrationSnapshot:
        with self._lock:
            out = self.outgoing
            stats = out.stats if out is not None else self._last_stats
            status = None if self.state == "none" else self.state
            total = None
            if stats is not None and self.state in RAM_INFO_STATES:
                total = (
                    stats.total_time
                    if self.state == "completed"
                    else int((time.monotonic() - stats.start_time) * 1000)
                )
            dl = None
            if (
                self.config.dirty_limit
                and self.machine.dirtylimit.in_service()
                and self.state in RAM_INFO_STATES
            ):
                running = [self.machine.running] * self.machine.backend.nr_vcpus
                dl = (
                    self.machine.dirtylimit.throttle_time_per_round(),
                    self.machine.dirtylimit.ring_full_time(running),
                )
            address = None
            if (
                self.incoming is not None
                and self.incoming_state in ("setup",)
                and self.incoming.listener is not None
            ):
                address = [self.incoming.socket_address()]
            return MigrationSnapshot(
                status=status,
                stats=stats if self.state in RAM_INFO_STATES else None,
                total_time=total,
                cpu_throttle=self.cpu_throttle,
                error_desc=self.error,
                dirty_limit_fields=dl,
                socket_address=address,
            )

    # ------------------------------------------------------------------ events and state

    def set_state(self, old: str, new: str) -> None:
        with self._lock:
            if self.state != old:
                return
            self.state = new
        if self.config.events:
            self.machine.events.emit("MIGRATION", {"status": new})

    def event_pass(self, number: int) -> None:
        if self.config.events:
            self.machine.events.emit("MIGRATION_PASS", {"pass": number})

    def fail(self, message: str, from_state: str | None = None) -> None:
        """The outgoing migration failed: remember why, status ``failed``."""
        with self._lock:
            if self.state in ("cancelling", "cancelled", "failed", "completed"):
                return
            if self.error is None:
                self.error = message
            old = from_state or self.state
        print(f"qmpdl: {message}", file=sys.stderr, flush=True)
        self.set_state(old, "failed")

    @staticmethod
    def stream_error(e: OSError) -> str:
        text = str(e)
        if text.startswith(("Unable to", "Sibling", "Failed")):
            return text
        return f"Unable to write to socket: {e.strerror or text}"

    # ------------------------------------------------------------------ the outgoing side

    def migrate(self, uri: str) -> None:
        """QMP ``migrate`` (the checks and texts of QEMU's migrate_prepare)."""
        address = parse_uri(uri, self.machine.profile)
        if self.running():
            raise QMPError("There's a migration process in progress")
        runstate = self.machine.runstate
        if runstate == RunState.INMIGRATE:
            raise QMPError("Guest is waiting for an incoming migration")
        if runstate == RunState.POSTMIGRATE:
            raise QMPError("Can't migrate the vm that was paused due to previous migration")
        with self._lock:
            self.error = None
            self.state = "none"
            self.outgoing = OutgoingMigration(self, address)
            self.outgoing.stats.expected_downtime = self.config.downtime_limit
        self.set_state("none", "setup")
        self.outgoing.start()

    def stop_vm(self) -> bool:
        """Switchover: stop the vCPUs (runstate ``finish-migrate``); True if they ran."""
        return self.machine.stop_for_migration()

    def finished(self, outgoing: OutgoingMigration) -> None:
        """The outgoing thread ended: settle the run state as QEMU does."""
        with self._lock:
            self._last_stats = outgoing.stats
            state = self.state
        if state == "cancelling":
            self.set_state("cancelling", "cancelled")
            state = "cancelled"
        if state == "completed":
            self.machine.set_runstate(RunState.POSTMIGRATE)
        elif state in ("failed", "cancelled"):
            self.machine.restart_after_migration(outgoing.was_running)

    def cancel(self) -> None:
        """QMP ``migrate_cancel`` (and machine shutdown): first try to lift the dirty
        limit when the capability is on, then stop the transfer.

        As in QEMU's code, the lifting is refused (silently) while the migration still
        runs with the limit in service: QEMU's own check for user cancels applies to it.
        The limit thus stays after a cancelled migration; query-migrate stops showing
        its fields because a cancelled migration shows only its status.  At shutdown,
        with no migration running, it is lifted."""
        if self.config.dirty_limit:
            with contextlib.suppress(QMPError):
                self.machine.dirtylimit.cancel_vcpu_dirty_limit(None)
        with self._lock:
            if not self.running():
                return
            old = self.state
        self.set_state(old, "cancelling")
        out = self.outgoing
        if out is not None:
            out.cancel()
            out.thread.join()

    def continue_(self, state: str) -> None:
        """QMP ``migrate-continue``."""
        if self.state != state:
            raise QMPError(f"Migration not in expected state: {self.state}")
        if self.outgoing is not None:
            self.outgoing.resume_from_pause()

    # ------------------------------------------------------------------ throttling

    def throttle_guest_down(self, bytes_dirty: int, bytes_threshold: int) -> None:
        """Auto-converge: start at cpu-throttle-initial, then step up (QEMU's
        mig_throttle_guest_down, tail-slow included)."""
        c = self.config
        now = self.cpu_throttle
        if not now:
            new = c.cpu_throttle_initial
        else:
            if c.cpu_throttle_tailslow and bytes_dirty:
                cpu_now = 100 - now
                ideal = int(cpu_now * (bytes_threshold / bytes_dirty))
                inc = min(cpu_now - ideal, c.cpu_throttle_increment)
            else:
                inc = c.cpu_throttle_increment
            new = min(now + inc, c.max_cpu_throttle)
        self.cpu_throttle = new
        self.machine.backend.set_cpu_throttle(new)

    def dirty_limit_guest(self) -> None:
        """Limit every vCPU at vcpu-dirty-limit (QEMU's migration_dirty_limit_guest)."""
        quota = self.config.vcpu_dirty_limit
        if self.machine.dirtylimit.in_service() and self._dirty_limit_quota == quota:
            return
        self._dirty_limit_quota = quota
        with contextlib.suppress(QMPError):
            self.machine.dirtylimit.set_vcpu_dirty_limit(None, quota)
        self.machine.tracer(
            "migration_dirty_limit_guest", f"guest dirty page rate limit {quota} MB/s"
        )

    # ------------------------------------------------------------------ the incoming side

    def start_incoming(self, uri: str) -> None:
        """``-incoming URI`` at start-up, or QMP ``migrate-incoming``."""
        address = parse_uri(uri, self.machine.profile)
        incoming = IncomingMigration(self, address)
        incoming.start()
        with self._lock:
            self.incoming = incoming
            self.incoming_state = "setup"
            self._incoming_once = True
        if self.config.events:
            self.machine.events.emit("MIGRATION", {"status": "setup"})

    def migrate_incoming(self, uri: str) -> None:
        if self._incoming_once:
            raise QMPError("The incoming migration has already been started")
        if self.machine.runstate != RunState.INMIGRATE:
            raise QMPError("'-incoming' was not specified on the command line")
        try:
            self.start_incoming(uri)
        except OSError as e:
            raise QMPError(f"Failed to bind socket: {e.strerror or e}") from None

    def set_incoming_state(self, old: str, new: str) -> None:
        with self._lock:
            if self.incoming_state != old:
                return
            self.incoming_state = new
        if self.config.events:
            self.machine.events.emit("MIGRATION", {"status": new})

    def incoming_completed(self) -> None:
        self.machine.start_after_incoming()
        self.set_incoming_state("active", "completed")

    def incoming_failed(self, message: str) -> None:
        if self.incoming is not None:
            self.incoming.reply_error(message)
        self.set_incoming_state("active", "failed")
        print(f"qmpdl: {message}", file=sys.stderr)
        print("qmpdl: load of migration failed: Invalid argument", file=sys.stderr, flush=True)
        self.exit(1)

    def shutdown(self) -> None:
        """Machine exit: cancel an outgoing migration, stop listening."""
        if self.running():
            self.cancel()
        if self.incoming is not None:
            self.incoming.close()


@dataclass
class DefaultMigrationSettings:
    """QEMU's defaults, for machines without a configuration object (tests)."""

    events: bool = False
    auto_converge: bool = False
    dirty_limit: bool = False
    pause_before_switchover: bool = False
    max_bandwidth: int = 128 << 20
    downtime_limit: int = 300
    throttle_trigger_threshold: int = 50
    cpu_throttle_initial: int = 20
    cpu_throttle_increment: int = 10
    cpu_throttle_tailslow: bool = False
    max_cpu_throttle: int = 99
    vcpu_dirty_limit: int = 1
    x_vcpu_dirty_limit_period: int = 1000
