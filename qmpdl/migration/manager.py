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
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qmpdl.backend.base import PAGE_SIZE
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject
from qmpdl.migration.host import MigrationMachine, MigrationSettings, StreamFaults
from qmpdl.migration.parameters import DefaultMigrationSettings
from qmpdl.migration.params import MigrationConfig
from qmpdl.migration.state import (
    FINISHED_STATES,
    INCOMING_TRANSITIONS,
    OUTGOING_TRANSITIONS,
    RAM_INFO_STATES,
    RUNNING_STATES,
    StatusMachine,
)
from qmpdl.migration.throttle import ConvergenceThrottle
from qmpdl.migration.uri import (
    MigrationAddress,
    UnknownProtocolError,
    check_transport,
    connect,
    parse_uri,
    resolve,
)
from qmpdl.qapi.types import MigrationStatus, RunState
from qmpdl.vm.dirtylog import DirtyLogUser

if TYPE_CHECKING:
    # the migration's threads and stream (numpy) are imported when one starts
    from qmpdl.migration.incoming import IncomingMigration
    from qmpdl.migration.source import OutgoingMigration, SourceStats

S = MigrationStatus

__all__ = [
    "RAM_INFO_STATES",
    "RUNNING_STATES",
    "DefaultMigrationSettings",
    "MigrationManager",
    "MigrationSettings",
]

#: RAM blocks of QEMU's pc board besides the guest's RAM, which its migration counts in
#: ``ram.total`` (and sends): pc.bios (SeaBIOS, 256 KiB), pc.rom (option ROMs, 128 KiB),
#: /rom@etc/acpi/tables (128 KiB), /rom@etc/table-loader and /rom@etc/acpi/rsdp (4 KiB
#: each) - 520 KiB with ``-nodefaults`` (checked on QEMU 7.2 and 10.0: 131592 KiB for
#: ``-m 128``; default devices such as a VGA card add blocks of their own).
FIRMWARE_RAM = (256 + 128 + 128 + 4 + 4) << 10


class MigrationManager:
    """Outgoing and incoming migration of one machine.

    The outgoing thread sees it as an :class:`~qmpdl.migration.host.OutgoingHost`, the
    incoming one as an :class:`~qmpdl.migration.host.IncomingHost`; the commands call
    the public methods below."""

    def __init__(
        self,
        machine: MigrationMachine,
        config: MigrationSettings,
        *,
        exit: Callable[[int], None] | None = None,
        stream_faults: StreamFaults | None = None,
        virtual_time: bool = False,
    ) -> None:
        self.machine = machine
        self.config = config
        self._lock = threading.RLock()
        #: outgoing status (QEMU's MigrationState.state)
        self._out = StatusMachine("outgoing", OUTGOING_TRANSITIONS)
        self.error: str | None = None
        self.outgoing: OutgoingMigration | None = None
        self._last_stats: SourceStats | None = None
        self.throttle = ConvergenceThrottle(
            config, machine.backend, machine.dirtylimit, machine.tracer
        )
        self.incoming: IncomingMigration | None = None
        #: incoming status (QEMU's MigrationIncomingState.state)
        self._in = StatusMachine("incoming", INCOMING_TRANSITIONS)
        self.incoming_error: str | None = None
        self._incoming_once = False
        self._exit_on_error = True
        #: called with the exit status when the process must end (a failed load)
        self.exit: Callable[[int], None] = exit or (lambda status: None)
        #: a scenario's faults on the streams (qmpdl.vtime.faults)
        self._stream_faults = stream_faults
        #: the machine runs on a virtual clock: the outgoing stream takes that clock's
        #: time at max-bandwidth, carries it to the destination and sends synthetic
        #: pages compactly (see qmpdl.migration.source)
        self._virtual_time = virtual_time
        #: outgoing migrations started so far (a stream fault names which it hits)
        self._outgoing_count = 0
        if isinstance(config, MigrationConfig):
            config.bind_engine(self)

    # ------------------------------------------------------------------ queries

    @property
    def state(self) -> MigrationStatus:
        """The outgoing status."""
        return self._out.status

    @property
    def status(self) -> MigrationStatus:
        return self._out.status

    @property
    def incoming_state(self) -> MigrationStatus:
        return self._in.status

    @property
    def settings(self) -> MigrationSettings:
        return self.config

    @property
    def cpu_throttle(self) -> int:
        """Auto-converge's throttle, percent (0: off)."""
        return self.throttle.cpu_throttle

    def running(self) -> bool:
        return self.state in RUNNING_STATES

    def incoming_started(self) -> bool:
        """Whether an incoming migration has its transport up (listening or loading)."""
        return self.incoming is not None and self.incoming_state not in (S.COMPLETED, S.FAILED)

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

    def query(self) -> JsonObject:
        """``query-migrate``: the destination's view, then the source's over it (QEMU's
        fill_destination_migration_info and fill_source_migration_info)."""
        info: JsonObject = {}
        profile = self.machine.profile
        with self._lock:
            incoming = self.incoming
            if incoming is not None and self.incoming_started():
                addresses = incoming.socket_addresses()
                if addresses:
                    info["socket-address"] = addresses
            if self.incoming_state != S.NONE:
                info["status"] = self.incoming_state.value
                if self.incoming_error is not None and profile.has("query-migrate-error-any-state"):
                    info["error-desc"] = self.incoming_error
            state = self.state
            if state == S.NONE:
                return info
            info["status"] = state.value
            if state in RAM_INFO_STATES:
                out = self.outgoing
                stats = out.stats if out is not None else self._last_stats
                if stats is not None:
                    self._time_info(info, stats, state)
                    self._ram_info(info, stats, state)
            if self.error is not None and (
                state == S.FAILED or profile.has("query-migrate-error-any-state")
            ):
                info["error-desc"] = self.error
        return info

    def outgoing_stats(self) -> SourceStats | None:
        """The current or last outgoing migration's statistics (None before any)."""
        with self._lock:
            out = self.outgoing
            return out.stats if out is not None else self._last_stats

    def _time_info(self, info: JsonObject, stats: SourceStats, state: MigrationStatus) -> None:
        info["setup-time"] = stats.setup_time
        if state == S.COMPLETED:
            info["total-time"] = stats.total_time
            info["downtime"] = stats.downtime
        else:
            now = self.machine.clock.monotonic()
            info["total-time"] = int((now - stats.start_time) * 1000)
            info["expected-downtime"] = stats.expected_downtime

    def _ram_info(self, info: JsonObject, stats: SourceStats, state: MigrationStatus) -> None:
        completed = state == S.COMPLETED
        info["ram"] = {
            "transferred": stats.transferred,
            "remaining": 0 if completed else stats.remaining,
            "total": self.machine.backend.ram_size + FIRMWARE_RAM,
            "duplicate": stats.zero_pages,
            "skipped": 0,
            "normal": stats.normal_pages,
            "normal-bytes": stats.normal_pages * PAGE_SIZE,
            "dirty-pages-rate": 0 if completed else stats.dirty_pages_rate,
            "mbps": stats.mbps,
            "dirty-sync-count": stats.dirty_sync_count,
            "postcopy-requests": 0,
            "page-size": PAGE_SIZE,
            "multifd-bytes": 0,
            "pages-per-second": stats.pages_per_second,
            "precopy-bytes": stats.precopy_bytes,
            "downtime-bytes": stats.downtime_bytes,
            "postcopy-bytes": 0,
            "dirty-sync-missed-zero-copy": 0,
        }
        if self.cpu_throttle:
            info["cpu-throttle-percentage"] = self.cpu_throttle
        dirtylimit = self.machine.dirtylimit
        if self.config.dirty_limit and dirtylimit.in_service():
            running = [self.machine.running] * self.machine.backend.nr_vcpus
            info["dirty-limit-throttle-time-per-round"] = dirtylimit.throttle_time_per_round()
            info["dirty-limit-ring-full-time"] = dirtylimit.ring_full_time(running)

    # ------------------------------------------------------------------ events and state

    def transition(self, old: MigrationStatus, new: MigrationStatus) -> None:
        """QEMU's migrate_set_state on the outgoing status: the trace event and (with
        the ``events`` capability) ``MIGRATION`` if it changed."""
        if not self._out.transition(old, new):
            return
        self.machine.tracer("migrate_set_state", f"new state {new.value}")
        if self.config.events:
            self.machine.events.emit("MIGRATION", {"status": new.value})

    def pass_done(self, number: int) -> None:
        if self.config.events:
            self.machine.events.emit("MIGRATION_PASS", {"pass": number})

    def fail(self, message: str, from_state: MigrationStatus | None = None) -> None:
        """The outgoing migration failed: remember why, status ``failed``."""
        with self._lock:
            if self.state in (S.CANCELLING, S.CANCELLED, S.FAILED, S.COMPLETED):
                return
            if self.error is None:
                self.error = message
            old = from_state or self.state
        print(f"qmpdl: {message}", file=sys.stderr, flush=True)
        self.transition(old, S.FAILED)

    # ------------------------------------------------------------------ addresses

    def _check_transport(self, address: MigrationAddress) -> None:
        c = self.config
        check_transport(
            address,
            multi_channel=c.capability("multifd") or c.capability("postcopy-preempt"),
            seekable=c.capability("mapped-ram"),
        )

    # ------------------------------------------------------------------ the outgoing side

    def migrate(
        self,
        uri: str | None,
        channels: Sequence[Any] | None = None,
        *,
        blk: bool = False,
        inc: bool = False,
        resume: bool = False,
    ) -> None:
        """QMP ``migrate``, with QEMU's order of checks: 8.2+ parses the address first;
        before, the migration is set up first and a bad URI then fails it."""
        p = self.machine.profile
        if p.has("migrate-file-uri"):
            address = resolve(uri, channels, p, command="migrate")
            self._check_transport(address)
            self._prepare(blk, inc, resume)
        else:
            assert uri is not None
            c = self.config
            if (
                p.has("migration-multichannel-check")
                and (c.capability("multifd") or c.capability("postcopy-preempt"))
                and not uri.startswith(("tcp:", "unix:", "vsock:"))
            ):
                raise QMPError("Migration requires multi-channel URIs (e.g. tcp)")
            self._prepare(blk, inc, resume)
            try:
                address = parse_uri(uri, p)
            except UnknownProtocolError:
                self.transition(S.SETUP, S.FAILED)
                raise
            except QMPError as e:
                self._fd_error(e.desc)
                raise
        self._start_outgoing(address)

    def _prepare(self, blk: bool, inc: bool, resume: bool) -> None:
        """QEMU's migrate_prepare and migrate_init: the checks, then status ``setup``."""
        if resume and self.state != S.POSTCOPY_PAUSED:
            raise QMPError("Cannot resume if there is no paused migration")
        if self.running():
            raise QMPError("There's a migration process in progress")
        runstate = self.machine.runstate
        if runstate == RunState.INMIGRATE:
            raise QMPError("Guest is waiting for an incoming migration")
        if runstate == RunState.POSTMIGRATE:
            raise QMPError("Can't migrate the vm that was paused due to previous migration")
        if (blk or inc) and (
            self.config.capability("block") or self.config.capability("block-incremental")
        ):
            raise QMPError("Command options are incompatible with current migration capabilities")
        with self._lock:
            self.error = None
            self.outgoing = None
            self._last_stats = None
            old = self.state
        assert old == S.NONE or old in FINISHED_STATES
        self.transition(old, S.SETUP)

    def _fd_error(self, text: str) -> None:
        """QEMU's migrate_fd_error: remember why, ``setup`` -> ``failed``."""
        with self._lock:
            if self.error is None:
                self.error = text
        self.transition(S.SETUP, S.FAILED)

    def _start_outgoing(self, address: MigrationAddress) -> None:
        channel = None
        profile = self.machine.profile
        if address.transport in ("fd", "rdma", "exec", "file"):
            # QEMU opens these in the command (fd and rdma always fail here: no fd
            # passing, no RDMA); sockets connect asynchronously, in the thread
            texts = profile.has("migration-file-qemu-open")
            try:
                channel = connect(address, qemu_open_texts=texts)
            except OSError as e:
                self._fd_error(str(e))
                raise QMPError(str(e)) from None
        from qmpdl.migration.source import OutgoingMigration

        self._outgoing_count += 1
        faults = self._stream_faults
        number = self._outgoing_count
        outgoing = OutgoingMigration(
            self,
            self.machine.backend,
            address,
            channel,
            clock=self.machine.clock,
            always_device_state=profile.has("migration-always-device-state"),
            virtual_time=self._virtual_time,
            channel_filter=None if faults is None else lambda c: faults.outgoing(c, number),
        )
        outgoing.stats.expected_downtime = self.config.downtime_limit
        self.throttle.begin()
        with self._lock:
            self.outgoing = outgoing
        outgoing.start()

    def dirty_log(self, user: DirtyLogUser, on: bool) -> None:
        """Dirty logging for the outgoing thread (under the BQL, as QEMU)."""
        with self.machine.bql:
            if on:
                self.machine.dirty_log.start(user)
            else:
                self.machine.dirty_log.stop(user)

    def guest_running(self) -> bool:
        return self.machine.running

    def source_runstate(self) -> str:
        return str(self.machine.runstate_before_migration)

    def period_ended(self, dirty_bytes: int, transferred_bytes: int) -> None:
        self.throttle.period_ended(dirty_bytes, transferred_bytes)

    def stop_vm(self) -> bool:
        """Switchover: stop the vCPUs (runstate ``finish-migrate``); True if they ran."""
        return self.machine.stop_for_migration()

    def finished(self, outgoing: OutgoingMigration) -> None:
        """The outgoing thread ended its work: the vCPUs run unthrottled, and the run
        state settles as QEMU's migration_iteration_finish does (a moment after the end
        state)."""
        self.throttle.stop()
        with self._lock:
            self._last_stats = outgoing.stats
            state = self.state
        with self.machine.bql:
            if state == S.COMPLETED:
                self.machine.set_runstate(RunState.POSTMIGRATE)
            elif state in (S.FAILED, S.CANCELLING, S.CANCELLED):
                self.machine.restart_after_migration(outgoing.was_running)

    def cleaned_up(self) -> None:
        """The outgoing thread released what it used: a cancelled migration becomes
        ``cancelled`` now, in a bottom half as QEMU's cleanup (so after the reply of a
        migrate_cancel still being answered)."""
        if self.state == S.CANCELLING:
            self.machine.bottom_halves.schedule(lambda: self.transition(S.CANCELLING, S.CANCELLED))

    def cancel(self, *, wait: bool = False) -> None:
        """QMP ``migrate_cancel`` (and machine shutdown): first try to lift the dirty
        limit when the capability is on, then stop the transfer.  Returns at once, as
        QEMU (the status reaches ``cancelled`` when the thread has unwound); ``wait``
        joins the thread.

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
        self.transition(old, S.CANCELLING)
        out = self.outgoing
        if out is not None:
            out.cancel()
            if wait:
                out.thread.join()

    def continue_(self, state: str) -> None:
        """QMP ``migrate-continue``: release the pause if the status is ``state``."""
        if self.state != state:
            raise QMPError(f"Migration not in expected state: {self.state.value}")
        if self.outgoing is not None:
            self.outgoing.resume_from_pause()

    def pause(self) -> None:
        """QMP ``migrate-pause``: only for postcopy, which qmpdl does not do."""
        if self.machine.profile.has("migrate-pause-recover"):
            raise QMPError(
                "migrate-pause is currently only supported during postcopy-active or "
                "postcopy-recover state"
            )
        raise QMPError("migrate-pause is currently only supported during postcopy-active state")

    # ------------------------------------------------------------------ the incoming side

    def start_incoming(
        self,
        uri: str | None,
        channels: Sequence[Any] | None = None,
        *,
        exit_on_error: bool = True,
    ) -> None:
        """``-incoming URI`` at start-up, or QMP ``migrate-incoming``; raises QMPError.

        QEMU 7.2-8.2 send the ``setup`` event whatever the ``events`` capability and
        leave the status ``none`` until the source connects; 9.0+ move the status to
        ``setup`` (the event then follows the capability)."""
        p = self.machine.profile
        if p.has("migrate-file-uri"):
            address = resolve(uri, channels, p, command="migrate-incoming")
            self._check_transport(address)
            self._incoming_setup()
        else:
            assert uri is not None
            self._incoming_setup()
            address = parse_uri(uri, p, incoming=True)
        from qmpdl.migration.incoming import IncomingMigration

        incoming = IncomingMigration(
            self,
            self.machine.backend,
            address,
            clock=self.machine.clock,
            qemu_open_texts=p.has("migration-file-qemu-open"),
            channel_filter=None if self._stream_faults is None else self._stream_faults.incoming,
        )
        try:
            incoming.start()
        except OSError as e:
            raise QMPError(str(e)) from None
        with self._lock:
            self.incoming = incoming
            self._incoming_once = True
            self._exit_on_error = exit_on_error

    def _incoming_setup(self) -> None:
        p = self.machine.profile
        if p.has("migration-incoming-state-checked") and self.incoming_state != S.NONE:
            raise QMPError(f"Illegal migration incoming state: {self.incoming_state.value}")
        if p.has("migration-incoming-setup-state"):
            self._incoming_transition(S.NONE, S.SETUP)
        else:
            self.machine.events.emit("MIGRATION", {"status": S.SETUP.value})

    def migrate_incoming(
        self, uri: str | None, channels: Sequence[Any] | None = None, exit_on_error: bool = True
    ) -> None:
        """QMP ``migrate-incoming``."""
        if self._incoming_once:
            raise QMPError("The incoming migration has already been started")
        if self.machine.runstate != RunState.INMIGRATE:
            raise QMPError("'-incoming' was not specified on the command line")
        self.start_incoming(uri, channels, exit_on_error=exit_on_error)

    def _incoming_transition(self, old: MigrationStatus, new: MigrationStatus) -> None:
        if self._in.transition(old, new) and self.config.events:
            self.machine.events.emit("MIGRATION", {"status": new.value})

    def incoming_connected(self) -> None:
        """The source connected (or the stream opened): status ``active``."""
        self._incoming_transition(self.incoming_state, S.ACTIVE)

    def incoming_completed(self, source_runstate: str | None) -> None:
        """Everything loaded: the guest runs (or takes the source's run state)."""
        self.machine.start_after_incoming(source_runstate)
        self._incoming_transition(S.ACTIVE, S.COMPLETED)

    def incoming_failed(self, message: str) -> None:
        """Loading failed: status ``failed``; the process exits with status 1 (unless
        ``exit-on-error`` was false)."""
        if self.incoming is not None:
            self.incoming.reply_error(message)
        with self._lock:
            self.incoming_error = message
        self._incoming_transition(S.ACTIVE, S.FAILED)
        print(f"qmpdl: {message}", file=sys.stderr)
        print("qmpdl: load of migration failed: Invalid argument", file=sys.stderr, flush=True)
        if self._exit_on_error:
            self.exit(1)

    def shutdown(self) -> None:
        """Machine exit: cancel an outgoing migration, stop listening."""
        if self.running():
            self.cancel(wait=True)
        if self.incoming is not None:
            self.incoming.close()
