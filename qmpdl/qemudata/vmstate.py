"""What one qmpdl process has learnt or been told about itself as a QEMU: the modules
loaded so far, its QOM tree, the actions of ``set-action``.  One per machine, each
part made when a command first needs it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from qmpdl.config import MachineConfig
    from qmpdl.profile import Profile
    from qmpdl.qemudata.qom import LoadedModules
    from qmpdl.qemudata.qomtree import QomTree
    from qmpdl.qemudata.stats import Source


@dataclass
class Actions:
    """QEMU's reboot, shutdown, panic and watchdog actions (``set-action``)."""

    reboot: str = "reset"
    shutdown: str = "poweroff"
    panic: str = "shutdown"
    watchdog: str = "reset"


class KvmStatsSource(Protocol):
    """Where KVM's binary statistics are read (:class:`~qmpdl.backend.base.VcpuRunner`)."""

    def kvm_stats_fds(self) -> tuple[int, list[int]] | None: ...


class VmState:
    """QEMU's state around the VM that the harness commands read: loaded QOM modules,
    statistics, the QOM tree, the actions.  Each part is made on first use."""

    def __init__(
        self, config: MachineConfig, profile: Profile, accel: str, vcpus: KvmStatsSource
    ) -> None:
        self.config = config
        self.profile = profile
        #: the accelerator whose recorded answers the machine gives (``kvm`` or ``tcg``)
        self.accel = accel
        self._vcpus = vcpus
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
        fds = self._vcpus.kvm_stats_fds()
        if fds is not None:
            return stats.LiveKvm(*fds)
        return stats.Recorded(self.profile)

    @cached_property
    def tree(self) -> QomTree:
        from qmpdl.qemudata.qomtree import QomTree

        return QomTree(self.config, self.profile, self.accel)
