"""What a scenario's timeline needs of a built machine (the composition root's
:class:`qmpdl.system.machine.Machine` is one; this package sits below it)."""

from __future__ import annotations

import threading
from typing import Protocol

from qmpdl.backend.base import VcpuBackend
from qmpdl.clock import Clock
from qmpdl.config import MachineConfig
from qmpdl.vm.bql import BigLock


class TimedMachine(Protocol):
    """The parts of a machine that :class:`qmpdl.vtime.faults.ScenarioRunner` reaches."""

    @property
    def config(self) -> MachineConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def backend(self) -> VcpuBackend: ...
    @property
    def shutdown_event(self) -> threading.Event: ...
    @property
    def bql(self) -> BigLock: ...

    def internal_error(self, message: str) -> None: ...
