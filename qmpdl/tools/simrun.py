"""The simulated machine in virtual time: the real throttle code, stepped by hand.

Runs the same :class:`~qmpdl.dirtylimit.service.DirtyLimit` and
:class:`~qmpdl.backend.sim.SimBackend` as the server, but with a
:class:`~qmpdl.clock.VirtualClock` and no threads, so minutes of throttling take
milliseconds and every run is deterministic.  Used by tests (comparison with the real
QEMU traces) and benchmarks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from qmpdl.backend.sim import SimBackend
from qmpdl.clock import VirtualClock
from qmpdl.dirtylimit.service import DIRTYLIMIT_CALC_TIME_MS, DirtyLimit
from qmpdl.profile import get_profile
from qmpdl.vm.dirtylog import DirtyLog
from qmpdl.workload import Workload


class VirtualMachine:
    """vCPUs, dirty log and dirty limit of one machine, on a virtual clock."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        *,
        ring_size: int = 4096,
        ram_size: int = 256 << 20,
        qemu_version: str = "7.2",
        max_cpus: int | None = None,
        controller: str = "qemu",
    ) -> None:
        self.clock = VirtualClock()
        self.profile = get_profile(qemu_version)
        self.backend = SimBackend(
            workloads,
            ram_size,
            ring_size,
            self.clock,
            kick_interrupts_sleep=not self.profile.has("dirtylimit-sleep-uninterruptible"),
        )
        self.backend.start(logging.getLogger("qmpdl").error)  # simulated vCPUs never fail
        self.dirty_log = DirtyLog(self.backend)
        self.dirtylimit = DirtyLimit(
            backend=self.backend,
            dirty_log=self.dirty_log,
            clock=self.clock,
            profile=self.profile,
            max_cpus=max_cpus or len(workloads),
            shutdown=threading.Event(),
            threaded=False,
            controller=controller,
        )

    def set_limit(self, quota: int, cpu_index: int | None = None) -> None:
        self.dirtylimit.set_vcpu_dirty_limit(cpu_index, quota)

    def cancel(self, cpu_index: int | None = None) -> None:
        self.dirtylimit.cancel_vcpu_dirty_limit(cpu_index)

    def period(self) -> list[int]:
        """One throttle period (in service), or one second of running; current rates."""
        if self.dirtylimit.in_service():
            self.dirtylimit.run_period()
            return [self.dirtylimit.current_rate(i) for i in range(self.backend.nr_vcpus)]
        self.clock.advance(DIRTYLIMIT_CALC_TIME_MS / 1000)
        return []

    def run(self, seconds: float) -> list[list[int]]:
        """Periods for ``seconds``; the per-period rates of each."""
        out = []
        end = self.clock.monotonic() + seconds - 1e-9
        while self.clock.monotonic() < end:
            out.append(self.period())
        return out
