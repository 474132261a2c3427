"""What a migration does when the guest dirties memory faster than it can be sent.

Every dirty-bitmap sync more than a second after the last rate period ends one
(:meth:`ConvergenceThrottle.period_ended`): when the guest dirtied more than
``throttle-trigger-threshold`` % of what was transferred, twice, the migration either
throttles the vCPUs (the ``auto-converge`` capability: QEMU's
``mig_throttle_guest_down``, tail-slow included) or limits every vCPU's dirty rate at
``vcpu-dirty-limit`` (the ``dirty-limit`` capability: ``migration_dirty_limit_guest``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from qmpdl.errors import QMPError
from qmpdl.migration.host import MigrationSettings


class DirtyLimitControl(Protocol):
    """The dirty limit as the migration uses it (:class:`~qmpdl.dirtylimit.service.DirtyLimit`)."""

    def in_service(self) -> bool: ...
    def set_vcpu_dirty_limit(self, cpu_index: int | None, dirty_rate: int) -> None: ...
    def cancel_vcpu_dirty_limit(self, cpu_index: int | None) -> None: ...
    def throttle_time_per_round(self) -> int: ...
    def ring_full_time(self, running: list[bool]) -> int: ...


class CpuThrottleControl(Protocol):
    """The vCPUs' throttle (:meth:`~qmpdl.backend.base.VcpuBackend.set_cpu_throttle`)."""

    def set_cpu_throttle(self, percent: int) -> None: ...


class ConvergenceThrottle:
    """Auto-converge and the dirty-limit trigger of one machine's outgoing migrations."""

    def __init__(
        self,
        settings: MigrationSettings,
        cpus: CpuThrottleControl,
        dirtylimit: DirtyLimitControl,
        tracer: Callable[[str, str], None],
    ) -> None:
        self.settings = settings
        self.cpus = cpus
        self.dirtylimit = dirtylimit
        self.tracer = tracer
        #: auto-converge throttle, percent (0: off; query-migrate's cpu-throttle-percentage)
        self.cpu_throttle = 0
        #: migration_dirty_limit_guest's static quota (process-wide, never reset)
        self._dirty_limit_quota = 0
        #: RAMState's dirty_rate_high_cnt (per migration)
        self._dirty_rate_high = 0

    def begin(self) -> None:
        """A new outgoing migration starts counting its rate periods afresh."""
        self._dirty_rate_high = 0

    def period_ended(self, dirty_bytes: int, transferred_bytes: int) -> None:
        """Two rate periods dirtying more than the threshold's share of what was sent:
        throttle (auto-converge) or limit the dirty rate (dirty-limit)."""
        c = self.settings
        dirty_threshold = transferred_bytes * c.throttle_trigger_threshold // 100
        if dirty_bytes > dirty_threshold:
            self._dirty_rate_high += 1
            if self._dirty_rate_high >= 2:
                self._dirty_rate_high = 0
                if c.auto_converge:
                    self.throttle_guest_down(dirty_bytes, dirty_threshold)
                elif c.dirty_limit:
                    self.dirty_limit_guest()

    def throttle_guest_down(self, bytes_dirty: int, bytes_threshold: int) -> None:
        """Auto-converge: start at cpu-throttle-initial, then step up (QEMU's
        mig_throttle_guest_down, tail-slow included)."""
        c = self.settings
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
        self.cpus.set_cpu_throttle(new)

    def dirty_limit_guest(self) -> None:
        """Limit every vCPU at vcpu-dirty-limit (QEMU's migration_dirty_limit_guest)."""
        quota = self.settings.vcpu_dirty_limit
        if self.dirtylimit.in_service() and self._dirty_limit_quota == quota:
            return
        self._dirty_limit_quota = quota
        with contextlib.suppress(QMPError):
            self.dirtylimit.set_vcpu_dirty_limit(None, quota)
        self.tracer("migration_dirty_limit_guest", f"guest dirty page rate limit {quota} MB/s")

    def stop(self) -> None:
        """The migration ended: the vCPUs run unthrottled again (the dirty limit stays)."""
        self.cpus.set_cpu_throttle(0)
        self.cpu_throttle = 0
