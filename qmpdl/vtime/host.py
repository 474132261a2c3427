"""What virtual time, seeds and scenarios need of a built machine (the composition root's
:class:`qmpdl.system.machine.Machine` is one; this package sits below it)."""

from __future__ import annotations

import threading
from typing import Protocol

from qmpdl.backend.base import VcpuBackend
from qmpdl.clock import Clock
from qmpdl.config import MachineConfig
from qmpdl.dirtylimit.service import DirtyLimit
from qmpdl.dirtyrate.calc import DirtyRateCalc
from qmpdl.migration.manager import MigrationManager
from qmpdl.vm.bql import BigLock


class TimedMachine(Protocol):
    """The parts of a machine that :func:`qmpdl.vtime.install` and a scenario reach."""

    config: MachineConfig
    clock: Clock
    backend: VcpuBackend
    dirtylimit: DirtyLimit
    dirtyrate: DirtyRateCalc
    shutdown_event: threading.Event
    bql: BigLock

    @property
    def migration(self) -> MigrationManager: ...

    def internal_error(self, message: str) -> None: ...

    def teardown(self) -> None: ...
