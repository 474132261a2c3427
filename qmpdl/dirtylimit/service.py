"""The dirty limit of one machine: QEMU's quota table, its lifecycle and throttle thread.

* The first non-zero ``set-vcpu-dirty-limit`` puts the limit *in service*: a quota table
  of ``max_cpus`` entries is created and the ``dirtyrate-stat`` thread starts.
* The thread loops PREPARE (measure each vCPU's rate over one period, publish it) ->
  CALCULATE (the controller, :mod:`qmpdl.dirtylimit.adjust`) -> SET PENALTY
  (``throttle_us_per_full`` of each limited vCPU, pushed to the backend, where each vCPU
  ACCEPTS it by sleeping at its ring-full exits).
* Cancelling the last limited vCPU stops the thread and *waits* for it (the reply comes
  only after the current period ends, as in QEMU); penalties are not reset.

Check order and error texts are QEMU's (spec 2.1-2.3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from qmpdl.backend.base import DirtyTracker
from qmpdl.clock import Clock
from qmpdl.dirtylimit.adjust import ControllerState
from qmpdl.dirtylimit.controllers import DEFAULT_CONTROLLER, PeriodInput, make_controller
from qmpdl.dirtyrate.measure import DirtyRateMeasurer, MeasurementAbortedError, VcpuRates
from qmpdl.errors import QMPError
from qmpdl.profile import Profile
from qmpdl.qapi.types import DirtyLimitInfo
from qmpdl.threadname import name_this_thread
from qmpdl.trace import NULL_TRACER, Tracer
from qmpdl.vm.bql import BigLock
from qmpdl.vm.dirtylog import DirtyLog, DirtyLogUser

#: The throttle thread's measurement period outside a dirty-limit migration.
DIRTYLIMIT_CALC_TIME_MS = 1000

NO_RING = "dirty page limit feature requires KVM with accelerator property 'dirty-ring-size' set'"
BAD_INDEX = "incorrect cpu index specified"


class PeriodDriver(Protocol):
    """What runs the throttle periods when no thread does (the timers of a virtual
    clock, :mod:`qmpdl.vtime.throttle`); made by the ``period_driver`` factory that
    :class:`DirtyLimit` is built with."""

    def start(self) -> None:
        """The limit is in service: begin the first period now."""

    def stop(self) -> None:
        """Out of service: finish the period in progress (as joining the thread would),
        begin no other."""

    def cancel(self) -> None:
        """The machine exits: drop the period in progress."""


@dataclass
class VcpuDirtyLimitState:
    """One entry of the quota table (one per possible vCPU)."""

    cpu_index: int
    enabled: bool = False
    #: MiB/s; 0 when not enabled
    quota: int = 0


class DirtyLimit(DirtyRateMeasurer):
    """QEMU's vCPU dirty page rate limit, for one machine."""

    def __init__(
        self,
        *,
        backend: DirtyTracker,
        dirty_log: DirtyLog,
        clock: Clock,
        profile: Profile,
        max_cpus: int,
        shutdown: threading.Event,
        bql: BigLock | None = None,
        tracer: Tracer = NULL_TRACER,
        period_ms: Callable[[], int] = lambda: DIRTYLIMIT_CALC_TIME_MS,
        allowed: Callable[[], bool] = lambda: True,
        threaded: bool = True,
        controller: str = DEFAULT_CONTROLLER,
        period_driver: Callable[[DirtyLimit], PeriodDriver] | None = None,
        period_delay: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(dirty_log, clock, profile, shutdown, bql=bql, tracer=tracer)
        self.backend = backend
        self.max_cpus = max_cpus
        self.nr_vcpus = backend.nr_vcpus
        self.ring_size = backend.ring_size
        self._period_ms = period_ms
        self._allowed = allowed
        #: False: no throttle thread; the owner calls :meth:`run_period` (virtual time)
        self._threaded = threaded
        #: seconds the next period begins late (a scenario's late-throttle-period; a
        #: period driver asks it too)
        self.period_delay: Callable[[], float] = period_delay or (lambda: 0.0)
        #: dirtylimit_mutex
        self._lock = threading.Lock()
        #: the quota table; None = not in service
        self._states: list[VcpuDirtyLimitState] | None = None
        self._limited_nvcpu = 0
        #: per present vCPU, microseconds slept per ring-full (survives cancel)
        self.throttle_us_per_full = [0] * self.nr_vcpus
        self.controller = ControllerState()
        #: the CALCULATE step (``--dirtylimit-controller``; ``qemu`` uses ``controller``)
        self.throttle_controller = make_controller(controller)
        if self.throttle_controller.keeps_penalty_sleep_on_kick:
            backend.keep_penalty_sleep_on_kick(True)
        #: last published per-vCPU rates (max_cpus entries) while the thread exists
        self._rates: list[int] | None = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._quit = False
        #: throttle periods measured so far (monotonic; read by ``--metrics``)
        self.periods = 0
        #: the last window: its length as the rates use it (ms), as it really was (s), and
        #: each vCPU's penalty sleep in it (s; None unless the controller asks for it)
        self._window: tuple[int, float, list[float] | None] = (DIRTYLIMIT_CALC_TIME_MS, 1.0, None)
        #: runs the periods instead of a thread (the timers of a virtual clock); made
        #: last, from the limit it drives
        self._driver: PeriodDriver | None = None
        if period_driver is not None:
            self._driver = period_driver(self)
            self._threaded = False

    def period_length_ms(self) -> int:
        """The length of the next throttle period (the migration may change it)."""
        return self._period_ms()

    # ------------------------------------------------------------------ state

    def in_service(self) -> bool:
        return self._states is not None

    def current_rate(self, cpu_index: int) -> int:
        rates = self._rates
        return rates[cpu_index] if rates is not None else 0

    def _index_valid(self, cpu_index: int) -> bool:
        return 0 <= cpu_index < self.max_cpus

    def _push_penalties(self) -> None:
        states = self._states
        if states is None:
            penalties = [0] * self.nr_vcpus
        else:
            penalties = [
                t if states[i].enabled else 0 for i, t in enumerate(self.throttle_us_per_full)
            ]
        self.backend.update_throttle(states is not None, penalties)

    def _set_vcpu(self, cpu_index: int, quota: int, enable: bool) -> None:
        assert self._states is not None
        self._trace("dirtylimit_set_vcpu", f"CPU[{cpu_index}] set dirty page rate limit {quota}")
        entry = self._states[cpu_index]
        if enable:
            entry.quota = quota
            if not entry.enabled:
                self._limited_nvcpu += 1
                self.throttle_controller.enabled(cpu_index)
        else:
            entry.quota = 0
            if entry.enabled:
                self._limited_nvcpu -= 1
        entry.enabled = enable

    def _set(self, cpu_index: int | None, quota: int, enable: bool) -> None:
        for i in range(self.max_cpus) if cpu_index is None else (cpu_index,):
            self._set_vcpu(i, quota, enable)

    # ------------------------------------------------------------------ lifecycle

    def _init(self) -> None:
        """Put the limit in service (called with the lock held)."""
        self._states = [VcpuDirtyLimitState(i) for i in range(self.max_cpus)]
        self._limited_nvcpu = 0
        self._trace(
            "dirtylimit_state_initialize", f"dirtylimit state initialize: max cpus {self.max_cpus}"
        )
        self._quit = False
        self._rates = [0] * self.max_cpus
        self._running = True
        if self._driver is not None:
            self.dirty_log.start(DirtyLogUser.LIMIT)
            self._driver.start()
        elif self._threaded:
            self._thread = threading.Thread(
                target=self._bh_stat, name="dirtyrate-stat", daemon=True
            )
            self._thread.start()
        else:
            self.dirty_log.start(DirtyLogUser.LIMIT)

    def _cleanup(self) -> None:
        """Take the limit out of service: stop and join the thread (lock held on entry;
        released while waiting, as QEMU drops its locks around the join)."""
        self._running = False
        thread = self._thread
        self._lock.release()
        try:
            if thread is not None or self._driver is not None:
                with self._bql.dropped():
                    if thread is not None:
                        thread.join()
                    if self._driver is not None:
                        self._driver.stop()
        finally:
            self._lock.acquire()
        if not self._threaded:
            self.dirty_log.stop(DirtyLogUser.LIMIT)
        self._thread = None
        self._rates = None
        self._quit = True
        self._states = None
        self._limited_nvcpu = 0
        self._trace("dirtylimit_state_finalize", "")

    def _bh_stat(self) -> None:
        name_this_thread()
        # Dirty logging is switched under the BQL: while the handler that started this
        # thread still runs, the thread waits here.
        with self._bql:
            self.dirty_log.start(DirtyLogUser.LIMIT)
        try:
            while self._running:
                delay = self.period_delay()
                if delay > 0 and self.clock.sleep_until(
                    self.clock.monotonic() + delay, self._shutdown
                ):
                    break
                if not self.run_period():
                    break
        finally:
            with self._bql:
                self.dirty_log.stop(DirtyLogUser.LIMIT)

    def run_period(self) -> bool:
        """One iteration of the throttle loop: measure every vCPU over one period,
        publish the rates, adjust the penalties.  False when the machine shuts down."""
        # Controllers that ask for it also learn how long each vCPU slept in the window.
        measure_sleep = self.throttle_controller.uses_sleep_time
        slept0 = self.backend.penalty_sleep_seconds() if measure_sleep else None
        t0 = self.clock.monotonic()
        try:
            result = self.vcpu_calculate_dirtyrate(
                self._period_ms(), DirtyLogUser.LIMIT, one_shot=False
            )
        except MeasurementAbortedError:
            return False
        self.complete_period(result, t0, slept0)
        return True

    def complete_period(self, result: VcpuRates, t0: float, slept0: list[float] | None) -> None:
        """The second half of a period: publish the rates measured since ``t0`` and
        adjust the penalties (``slept0``: each vCPU's penalty sleep total at ``t0``, for
        controllers that use it)."""
        self.periods += 1
        self._window = (result.duration_ms, self.clock.monotonic() - t0, None)
        slept1 = self.backend.penalty_sleep_seconds() if slept0 is not None else None
        if slept0 is not None and slept1 is not None:
            slept = [b - a for a, b in zip(slept0, slept1, strict=True)]
            self._window = (result.duration_ms, self._window[1], slept)
        rates = self._rates
        if rates is not None:
            new = result.rates[: self.max_cpus]
            if self._trace.enabled("dirtyrate_do_calculate_vcpu"):
                for i, rate in enumerate(new):
                    self._trace("dirtyrate_do_calculate_vcpu", f"vcpu[{i}]: {rate} MB/s")
            rates[: len(new)] = new
        if self.in_service():
            self._process()

    def _process(self) -> None:
        """CALCULATE + SET PENALTY for every present, enabled vCPU."""
        if self._quit:
            return
        with self._lock:
            states = self._states
            rates = self._rates
            if states is None or rates is None:
                return
            changed = False
            for cpu in range(self.nr_vcpus):
                entry = states[cpu]
                if not entry.enabled:
                    continue
                before = self.throttle_us_per_full[cpu]
                duration_ms, elapsed, slept = self._window
                adj = self.throttle_controller.calculate(
                    PeriodInput(
                        cpu,
                        entry.quota,
                        rates[cpu],
                        before,
                        self.ring_size,
                        duration_ms,
                        self.controller,
                        elapsed,
                        slept[cpu] if slept is not None else None,
                    )
                )
                if adj.qemu_state is not None:
                    self.controller = adj.qemu_state
                self.throttle_us_per_full[cpu] = adj.throttle_us_per_full
                if adj.linear is not None:
                    pct, step = adj.linear
                    self._trace(
                        "dirtylimit_throttle_pct",
                        f"CPU[{cpu}] throttle percent: {pct}, throttle adjust time {step} us",
                    )
                changed |= before != adj.throttle_us_per_full
            if changed:
                self._push_penalties()

    def shutdown(self) -> None:
        """Machine exit: stop the thread without waiting for its period to end."""
        self._running = False
        if self._driver is not None:
            self._driver.cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # ------------------------------------------------------------------ QMP

    def set_vcpu_dirty_limit(self, cpu_index: int | None, dirty_rate: int) -> None:
        """``set-vcpu-dirty-limit`` (``dirty_rate`` already cast to uint64)."""
        if not self.ring_size:
            raise QMPError(NO_RING)
        if cpu_index is not None and not self._index_valid(cpu_index):
            raise QMPError(BAD_INDEX)
        if not self._allowed():
            raise QMPError("can't set dirty page rate limit while migration is running")
        if not dirty_rate:
            self.cancel_vcpu_dirty_limit(cpu_index)
            return
        with self._lock:
            if not self.in_service():
                self._init()
            self._set(cpu_index, dirty_rate, True)
            self._push_penalties()

    def cancel_vcpu_dirty_limit(self, cpu_index: int | None) -> None:
        """``cancel-vcpu-dirty-limit``: may block until the current period ends."""
        if not self.ring_size:
            return
        if cpu_index is not None and not self._index_valid(cpu_index):
            raise QMPError(BAD_INDEX)
        if not self._allowed():
            raise QMPError("can't cancel dirty page rate limit while migration is running")
        if not self.in_service():
            return
        with self._lock:
            if self._states is None:
                return
            self._set(cpu_index, 0, False)
            self._push_penalties()
            if not self._limited_nvcpu:
                self._cleanup()
                self._push_penalties()

    def query_vcpu_dirty_limit(self) -> list[DirtyLimitInfo]:
        """``query-vcpu-dirty-limit``: enabled entries in cpu-index order."""
        with self._lock:
            states = self._states
            if states is None:
                return []
            return [
                DirtyLimitInfo(
                    cpu_index=s.cpu_index,
                    limit_rate=s.quota,
                    current_rate=self.current_rate(s.cpu_index),
                )
                for s in states
                if s.enabled
            ]

    # ------------------------------------------------------------------ migration

    def throttle_time_per_round(self) -> int:
        """Largest penalty of any present vCPU, enabled or not (``query-migrate``)."""
        return max([0, *self.throttle_us_per_full])

    def ring_full_time(self, running: list[bool]) -> int:
        """QEMU's "average" ring-full time estimate (may raise the sticky maximum)."""
        rates = [self.current_rate(i) for i in range(self.nr_vcpus) if running[i]]
        total = sum(rates)
        if not total or not rates:
            return 0
        full_us, self.controller = self.controller.ring_full_time_us(
            self.ring_size, total // len(rates)
        )
        return full_us
