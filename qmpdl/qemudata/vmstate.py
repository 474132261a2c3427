"""What one qmpdl process has learnt or been told about itself as a QEMU: the modules
loaded so far, its QOM tree, the actions of ``set-action``.  One per machine, each
part made when a command first needs it."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from qmpdl.qemudata.cpu import accel_of

if TYPE_CHECKING:
    from qmpdl.qemudata.qom import LoadedModules
    from qmpdl.qemudata.qomtree import QomTree
    from qmpdl.qemudata.stats import Source
    from qmpdl.vm.machine import Machine


@dataclass
class Actions:
    """QEMU's reboot, shutdown, panic and watchdog actions (``set-action``)."""

    reboot: str = "reset"
    shutdown: str = "poweroff"
    panic: str = "shutdown"
    watchdog: str = "reset"


class VmState:
    def __init__(self, machine: Machine) -> None:
        self.config = machine.config
        self.profile = machine.profile
        self.backend = machine.backend
        self.accel = accel_of(machine.config.accel.kind)
        self.actions = Actions()

    @cached_property
    def modules(self) -> LoadedModules:
        """The types known so far; -device loaded its type's module at start-up."""
        from qmpdl.qemudata.properties import types_of
        from qmpdl.qemudata.qom import LoadedModules

        modules = LoadedModules(types_of(self.profile), self.accel)
        for device in self.config.devices:
            modules.load_for(str(device.get("driver")))
        return modules

    @cached_property
    def stats(self) -> Source | None:
        """KVM's statistics: qmpdl's own VM's under -accel kvm, the recorded schemas
        with zero values under -accel sim, none without KVM."""
        from qmpdl.qemudata import stats

        if self.accel != "kvm":
            return None
        if self.config.accel.kind == "kvm":
            from qmpdl.backend.kvm import KvmBackend

            if isinstance(self.backend, KvmBackend):
                return stats.LiveKvm(self.backend.vm.fd, [v.fd for v in self.backend.vm.vcpus])
        return stats.Recorded(self.profile)

    @cached_property
    def tree(self) -> QomTree:
        from qmpdl.qemudata.qomtree import QomTree

        return QomTree(self.config, self.profile, self.accel)


_STATES: weakref.WeakKeyDictionary[Machine, VmState] = weakref.WeakKeyDictionary()


def state_of(machine: Machine) -> VmState:
    state = _STATES.get(machine)
    if state is None:
        state = _STATES[machine] = VmState(machine)
    return state
