"""The narrow interfaces between the migration's parts, as :class:`typing.Protocol`\\ s.

* :data:`MigrationSettings`: the capabilities and parameters the engine reads
  (:class:`~qmpdl.migration.parameters.SettingsView`).
* :class:`OutgoingHost` / :class:`IncomingHost`: what the outgoing and incoming threads
  may ask of the manager that started them - their status changes go through the
  manager's :class:`~qmpdl.migration.state.StatusMachine`, nothing else of it is theirs.
* :class:`MigrationMachine`: what the manager uses of the VM it migrates (a
  :class:`~qmpdl.system.machine.Machine` is one), so this package needs nothing above it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from qmpdl.migration.parameters import SettingsView
from qmpdl.qapi.types import MigrationStatus, RunState

if TYPE_CHECKING:
    from qmpdl.backend.base import VcpuBackend
    from qmpdl.clock import Clock
    from qmpdl.config import MachineConfig
    from qmpdl.jsontypes import JsonObject
    from qmpdl.migration.source import OutgoingMigration
    from qmpdl.migration.throttle import DirtyLimitControl
    from qmpdl.migration.uri import Channel
    from qmpdl.profile import Profile
    from qmpdl.vm.dirtylog import DirtyLogUser


#: The capabilities and parameters the engine reads: one typed attribute each, from the
#: parameter table (a :class:`~qmpdl.migration.params.MigrationConfig`, or the defaults).
MigrationSettings = SettingsView


class OutgoingHost(Protocol):
    """What the outgoing migration thread asks of its manager."""

    @property
    def status(self) -> MigrationStatus: ...
    @property
    def settings(self) -> MigrationSettings: ...
    def transition(self, old: MigrationStatus, new: MigrationStatus) -> None:
        """QEMU's migrate_set_state (nothing happens unless the status is ``old``)."""

    def fail(self, message: str, from_state: MigrationStatus | None = None) -> None: ...
    def machine_description(self) -> dict[str, Any]: ...
    def pass_done(self, number: int) -> None:
        """A dirty-bitmap sync ended pass ``number`` (``MIGRATION_PASS``)."""

    def period_ended(self, dirty_bytes: int, transferred_bytes: int) -> None:
        """A rate period ended: maybe throttle (auto-converge / dirty-limit)."""

    def dirty_log(self, user: DirtyLogUser, on: bool) -> None: ...
    def guest_running(self) -> bool: ...
    def stop_vm(self) -> bool:
        """Switchover: stop the vCPUs; True if they ran."""

    def source_runstate(self) -> str:
        """The run state the migration found (sent as QEMU's global state)."""

    def finished(self, outgoing: OutgoingMigration) -> None: ...
    def cleaned_up(self) -> None: ...


class IncomingHost(Protocol):
    """What the incoming migration thread asks of its manager."""

    def machine_description(self) -> dict[str, Any]: ...
    def incoming_connected(self) -> None: ...
    def incoming_completed(self, source_runstate: str | None) -> None: ...
    def incoming_failed(self, message: str) -> None: ...


class StreamFaults(Protocol):
    """A scenario's faults on the migration streams (:mod:`qmpdl.vtime.faults`), handed
    to the manager when the machine is built."""

    def outgoing(self, channel: Channel, number: int) -> Channel:
        """The channel the ``number``-th outgoing migration of the process (1: the
        first) writes to: ``channel`` itself, or one that misbehaves."""

    def incoming(self, channel: Channel) -> Channel:
        """The channel the incoming migration reads."""


class EventSink(Protocol):
    def emit(self, name: str, data: JsonObject | None = None) -> None: ...


class BottomHalfQueue(Protocol):
    def schedule(self, work: Callable[[], None]) -> None: ...


class DirtyLogControl(Protocol):
    def start(self, user: DirtyLogUser) -> None: ...
    def stop(self, user: DirtyLogUser) -> None: ...


class MigrationMachine(Protocol):
    """What the migration manager uses of the VM it migrates."""

    @property
    def config(self) -> MachineConfig: ...
    @property
    def profile(self) -> Profile: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def backend(self) -> VcpuBackend: ...
    @property
    def dirtylimit(self) -> DirtyLimitControl: ...
    @property
    def dirty_log(self) -> DirtyLogControl: ...
    @property
    def events(self) -> EventSink: ...
    @property
    def bottom_halves(self) -> BottomHalfQueue: ...
    @property
    def bql(self) -> AbstractContextManager[Any]: ...
    @property
    def runstate(self) -> RunState: ...
    @property
    def running(self) -> bool: ...
    @property
    def runstate_before_migration(self) -> RunState: ...
    def tracer(self, name: str, message: str) -> None: ...
    def set_runstate(self, state: RunState) -> None: ...
    def stop_for_migration(self) -> bool: ...
    def restart_after_migration(self, was_running: bool) -> None: ...
    def start_after_incoming(self, source_runstate: str | None) -> None: ...
