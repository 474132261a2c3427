"""The status of a migration as an explicit state machine (as h11's ``_state.py``).

QEMU keeps two statuses: the outgoing side's (``MigrationState.state``) and the
incoming side's (``MigrationIncomingState.state``).  Both change only through
``migrate_set_state``, a compare-and-set: the change happens if the status is still
``old``, and otherwise nothing happens (a concurrent change won).  :class:`StatusMachine`
is that compare-and-set plus a table of the changes that may happen at all; any other
change is a bug and raises :class:`IllegalTransitionError`.

The tables list what qmpdl does (precopy; no postcopy, COLO or unplug wait), which is
what QEMU does on those paths:

outgoing::

    none ─┬─> setup ─┬─> active ─┬─> pre-switchover ─> device ─┬─> completed
          │          │           ├───────────────────> device ─┘
          │          │           └────────────────────────────────> completed
    completed, failed, cancelled -> setup (the next migrate)
    setup, active, pre-switchover, device -> failed | cancelling
    cancelling -> cancelling (a second migrate_cancel: QEMU sends the event again)
    cancelling -> cancelled

incoming::

    none -> setup (9.0+) -> active -> completed | failed;  none -> active (before 9.0)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from qmpdl.qapi.types import MigrationStatus

S = MigrationStatus

__all__ = [
    "INCOMING_TRANSITIONS",
    "OUTGOING_TRANSITIONS",
    "RAM_INFO_STATES",
    "RUNNING_STATES",
    "IllegalTransitionError",
    "MigrationStatus",
    "StatusMachine",
]

#: States in which a migration counts as running (QEMU's migration_is_running).
RUNNING_STATES = frozenset(
    {
        S.ACTIVE,
        S.POSTCOPY_ACTIVE,
        S.POSTCOPY_PAUSED,
        S.POSTCOPY_RECOVER,
        S.SETUP,
        S.PRE_SWITCHOVER,
        S.DEVICE,
        S.WAIT_UNPLUG,
        S.CANCELLING,
    }
)
#: States whose query-migrate carries times and RAM statistics.
RAM_INFO_STATES = frozenset(
    {
        S.ACTIVE,
        S.CANCELLING,
        S.POSTCOPY_ACTIVE,
        S.PRE_SWITCHOVER,
        S.DEVICE,
        S.POSTCOPY_PAUSED,
        S.POSTCOPY_RECOVER,
        S.COMPLETED,
    }
)
#: Where an outgoing migration has ended (a new ``migrate`` may start from here).
FINISHED_STATES = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})

_ENDS = frozenset({S.FAILED, S.CANCELLING})

#: The outgoing side's legal changes: status -> the statuses it may become.
OUTGOING_TRANSITIONS: Mapping[MigrationStatus, frozenset[MigrationStatus]] = {
    S.NONE: frozenset({S.SETUP}),
    S.SETUP: frozenset({S.ACTIVE}) | _ENDS,
    S.ACTIVE: frozenset({S.PRE_SWITCHOVER, S.DEVICE, S.COMPLETED}) | _ENDS,
    S.PRE_SWITCHOVER: frozenset({S.DEVICE}) | _ENDS,
    S.DEVICE: frozenset({S.COMPLETED}) | _ENDS,
    S.CANCELLING: frozenset({S.CANCELLING, S.CANCELLED}),
    S.COMPLETED: frozenset({S.SETUP}),
    S.FAILED: frozenset({S.SETUP}),
    S.CANCELLED: frozenset({S.SETUP}),
}

#: The incoming side's legal changes.
INCOMING_TRANSITIONS: Mapping[MigrationStatus, frozenset[MigrationStatus]] = {
    S.NONE: frozenset({S.SETUP, S.ACTIVE}),
    S.SETUP: frozenset({S.ACTIVE}),
    S.ACTIVE: frozenset({S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
}


class IllegalTransitionError(RuntimeError):
    """A status change the table does not allow (a bug in qmpdl, never a user error)."""

    def __init__(self, side: str, old: MigrationStatus, new: MigrationStatus) -> None:
        super().__init__(f"{side} migration cannot go from {old.value} to {new.value}")
        self.old = old
        self.new = new


class StatusMachine:
    """One side's status: QEMU's ``migrate_set_state`` checked against a table."""

    def __init__(
        self, side: str, table: Mapping[MigrationStatus, frozenset[MigrationStatus]]
    ) -> None:
        self.side = side
        self._table = table
        self._status = S.NONE
        self._lock = threading.Lock()

    @property
    def status(self) -> MigrationStatus:
        return self._status

    def transition(self, old: MigrationStatus, new: MigrationStatus) -> bool:
        """Become ``new`` if the status is ``old``: True if it changed; False (nothing
        happens) if the status is no longer ``old``.  Raises
        :class:`IllegalTransitionError` for a change the table does not list."""
        with self._lock:
            if self._status != old:
                return False
            if new not in self._table.get(old, frozenset()):
                raise IllegalTransitionError(self.side, old, new)
            self._status = new
            return True
