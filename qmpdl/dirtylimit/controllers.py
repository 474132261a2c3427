"""Throttle controllers the dirty limit can run, selected per VM with
``--dirtylimit-controller NAME``.

Every period the throttle thread measures each limited vCPU's dirty rate and asks the
controller for that vCPU's new ``throttle_us_per_full`` (CALCULATE), which it then pushes
to the backend (SET PENALTY).  A controller sees, per vCPU and period, a
:class:`PeriodInput`: the quota, the rate measured over the period just ended and the
penalty that was in effect during it.

``qemu`` (the default)
    QEMU's own controller, :func:`qmpdl.dirtylimit.adjust.adjust`, unchanged: a dead
    band of 25 MiB/s, increments from the largest rate ever seen, reset at rate 0.  It
    reproduces every adjustment of the real QEMU traces and keeps QEMU's kick semantics.

``target``
    An absolute target per vCPU instead of QEMU's increments (spec section 8's
    criticisms 1-3 and its "absolute sleep target with smoothing" idea).

How ``target`` works.  A vCPU that writes continuously alternates *running* until its
dirty ring is (softly) full - ``M`` = ``(ring entries - 64) x 4 KiB`` of pages, KVM's
soft-full point - and *sleeping* its penalty ``p``.  Its rate is therefore
``r = M / (t_run + p)``, where ``t_run`` is the time it needs to dirty one ring's worth
when not throttled.  So from one period's measurement, ``t_run = M/r - p``, and the
penalty that yields the quota ``q`` is ``p' = M/q - t_run``: one step, no dead band, no
dependence on any other vCPU's rate or on the largest rate ever seen.  Details:

* *Estimating t_run.*  From the nominal formula ``M/r - p`` one period's value is very
  noisy at low quotas: the number of ring fills that fall into a 1 s window varies by one
  with the phase of the fill/sleep cycle, and at a duty cycle of 10 % the error of
  ``M/r - p`` is ten times the relative error of ``r``.  So the service also tells the
  controller how long the vCPU really slept in the window (``slept_s``, kept by the
  backend): then ``t_run = M x (window - slept) / pages``, the run time per ring
  actually observed, whatever the phase, the timer slack or the scheduling delays of the
  sleeps (the nominal formula remains the fallback).  These per-period values are
  averaged with weights that favour the periods at a high rate (``r x predicted rate``:
  where one page more or less matters least; among periods with the same penalty the
  weight is proportional to ``r``, so their mean is "total run time / total pages",
  unbiased), decaying by ``DECAY`` per period.  ``M`` need not be exact: at the fixed
  point (``r = q``) a constant error in it cancels out, since it enters ``t_run`` and
  ``p'`` alike.
* *Changes of the workload.*  If a period's rate is far above what the estimate predicts
  for the penalty in effect (more than the quantisation of one ring per period allows),
  the guest sped up: the estimate restarts from that period at once, so a quota is never
  overshot for long.  A rate far *below* the prediction usually means the vCPU was not
  writing all the time (idle, halted, paused, a workload stopping); it is ignored once and
  believed when it repeats (a genuinely slower workload).
* *Idle vCPUs.*  A rate of 0 says nothing about ``t_run``: estimate and penalty are
  kept, so a workload that stops and restarts is limited from its first period again
  (QEMU drops the penalty to 0 and lets the restart run unthrottled for a period).  A
  vCPU that only reads never fills its ring and therefore never sleeps, whatever its
  penalty: readers stay unpenalised.
* *Cancel and re-set.*  The estimate survives cancel (the workload usually has not
  changed); a new quota is reached in one period, raised or lowered.
* *Kicks do not cut sleeps.*  QEMU 7.2's period-end ring flush interrupts a penalty
  sleep (``usleep`` and a signal), which restarts the vCPU's fill/sleep cycle at every
  period boundary: the measured rate becomes a staircase of whole ring fills per period
  whose flat steps do not respond to the penalty at all (QEMU's 63-65 MiB/s at quota 50).
  8.2+ instead makes the flush wait for the sleep, which stretches the window.  With
  ``target`` the flush harvests a sleeping vCPU's (empty) ring without waking it and
  without waiting - the vCPU is out of the guest anyway - so the cycle runs on
  undisturbed and the penalty acts smoothly (:attr:`ThrottleController.
  keeps_penalty_sleep_on_kick`; backends implement it in
  :meth:`~qmpdl.backend.base.VcpuBackend.keep_penalty_sleep_on_kick`).  A flush that
  harvests a *running* vCPU's partly filled ring would still restart its cycle (the next
  ring-full comes a whole ring later); so in this mode the pages a flush took are charged
  to the next penalty (that sleep is longer by their share of a ring): the penalty is
  effectively per page dirtied, and the duty cycle ``t_run / (t_run + p)`` holds across
  period boundaries.  Only ``target`` asks for this; ``qemu`` keeps the profile's
  behaviour.
* *Granularity.*  A 1 s reading counts whole rings plus the part of a run the window
  boundary cuts, so at a steady rate of ``x`` rings per period the readings alternate
  between neighbouring whole numbers of rings; a mean of 3 periods can then miss the
  quota by up to ``1/(3x)`` (10 % at 3.3 rings, 53 MiB/s with a 4096-entry ring) even
  when the true rate is exact.
* The penalty lies in ``[0, M/q]`` (never longer than one ring's worth at the quota).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from qmpdl.dirtylimit.adjust import ControllerState, adjust
from qmpdl.target import PAGE_SIZE

#: The name used when none is given: QEMU's controller.
DEFAULT_CONTROLLER = "qemu"

#: KVM's reserved ring entries: the ring-full exit comes this many entries early.
_RESERVED = 64


class PeriodInput(NamedTuple):
    """What CALCULATE knows about one limited vCPU at the end of a period."""

    cpu_index: int
    #: MiB/s
    quota: int
    #: MiB/s measured over the period just ended
    current: int
    #: the penalty in effect during that period (microseconds per ring-full)
    throttle_us_per_full: int
    #: dirty ring entries per vCPU
    ring_entries: int
    #: length of the measurement period
    period_ms: int
    #: QEMU's controller memory (the process-wide largest rate); only ``qemu`` uses it
    qemu_state: ControllerState = ControllerState()
    #: seconds the window really lasted, and the vCPU's penalty sleep in it (None unless
    #: the controller has :attr:`ThrottleController.uses_sleep_time` and the backend
    #: keeps count)
    window_s: float = 1.0
    slept_s: float | None = None


class Decision(NamedTuple):
    """CALCULATE's result for one vCPU."""

    throttle_us_per_full: int
    #: QEMU's controller memory after the step (``qemu`` only)
    qemu_state: ControllerState | None = None
    #: (percent, step) of QEMU's proportional branch (its ``dirtylimit_throttle_pct`` trace)
    linear: tuple[int, int] | None = None


class ThrottleController(abc.ABC):
    """The CALCULATE step of the throttle thread, for all vCPUs of one machine."""

    #: the name ``--dirtylimit-controller`` selects it by
    name: ClassVar[str]
    #: one line for ``--help``
    summary: ClassVar[str]
    #: True: a kick (the measurement's ring flush, ``stop``) neither cuts a penalty
    #: sleep short nor waits for it; False: the QEMU profile's behaviour
    keeps_penalty_sleep_on_kick: ClassVar[bool] = False
    #: True: the service measures each vCPU's penalty sleep per window (``slept_s``)
    uses_sleep_time: ClassVar[bool] = False

    def enabled(self, cpu_index: int) -> None:  # noqa: B027 - optional hook
        """The limit was just enabled for ``cpu_index`` (it was not before)."""

    @abc.abstractmethod
    def calculate(self, period: PeriodInput) -> Decision:
        """The vCPU's penalty for the next period."""


class QemuController(ThrottleController):
    """QEMU's controller: :func:`qmpdl.dirtylimit.adjust.adjust`, bit for bit."""

    name = "qemu"
    summary = "QEMU's own, exact"

    def calculate(self, period: PeriodInput) -> Decision:
        adj = adjust(
            period.throttle_us_per_full,
            period.quota,
            period.current,
            period.ring_entries,
            period.qemu_state,
        )
        return Decision(adj.throttle_us_per_full, adj.state, adj.linear)


def ring_fill_mib(ring_entries: int) -> float:
    """MiB a vCPU dirties between two ring-full exits (KVM's soft-full point)."""
    return max(ring_entries - _RESERVED, 1) * PAGE_SIZE / (1 << 20)


@dataclass(slots=True)
class RunTimeEstimate:
    """One vCPU's estimate of ``t_run``, the seconds it runs to fill its ring: a decaying
    weighted mean of each period's ``M/r - p`` (``weighted`` / ``weight``)."""

    weighted: float = 0.0
    weight: float = 0.0
    #: periods in a row whose rate was far below the prediction
    slow_streak: int = 0

    @property
    def known(self) -> bool:
        return self.weight > 0

    @property
    def t_run(self) -> float:
        return max(self.weighted / self.weight, 0.0) if self.weight > 0 else 0.0

    def restart(self, sample: float, weight: float) -> None:
        self.weighted = weight * sample
        self.weight = weight
        self.slow_streak = 0

    def add(self, sample: float, weight: float, decay: float) -> None:
        self.weighted = decay * self.weighted + weight * sample
        self.weight = decay * self.weight + weight
        self.slow_streak = 0


class TargetController(ThrottleController):
    """An absolute penalty target per vCPU from a smoothed run-time estimate (see the
    module docstring)."""

    name = "target"
    summary = "an absolute penalty target per vCPU (settles at the quota)"
    keeps_penalty_sleep_on_kick = True
    uses_sleep_time = True

    #: weight of the past per period in the run-time estimate
    DECAY = 0.8
    #: a period's weight grows as its rate to this power
    WEIGHT_POWER = 2.0
    #: a period whose rate differs from the prediction by more than this share (beyond
    #: the quantisation of one ring per period) counts as a change of the workload
    CHANGE = 0.25

    def __init__(self) -> None:
        self.estimates: dict[int, RunTimeEstimate] = {}
        #: vCPUs whose next period began while their limit was off (a partial period)
        self._partial: set[int] = set()

    def enabled(self, cpu_index: int) -> None:
        self._partial.add(cpu_index)

    def calculate(self, period: PeriodInput) -> Decision:
        fill = ring_fill_mib(period.ring_entries)
        est = self.estimates.setdefault(period.cpu_index, RunTimeEstimate())
        p = period.throttle_us_per_full / 1e6
        r = float(period.current)
        partial = period.cpu_index in self._partial
        self._partial.discard(period.cpu_index)
        if r > 0 and not (partial and p > 0 and est.known):
            self._learn(est, fill, r, p, period)
        if not est.known:
            return Decision(period.throttle_us_per_full)
        return Decision(self.penalty_us(fill, period.quota, est.t_run))

    def _learn(
        self, est: RunTimeEstimate, fill: float, r: float, p: float, period: PeriodInput
    ) -> None:
        period_ms = period.period_ms
        run_s = period.window_s - period.slept_s if period.slept_s is not None else 0.0
        if run_s > 0.01 * period.window_s:
            # Measured: the pages dirtied over the time the vCPU did not sleep.
            sample = fill * run_s / (r * period_ms / 1000)
        else:
            # Nominal: as many sleeps of p as rings were filled.
            sample = fill / r - p
        if not est.known:
            est.restart(sample, (r / fill) ** self.WEIGHT_POWER)
            return
        predicted = fill / (est.t_run + p) if est.t_run + p > 0 else r
        # The error of M/r - p from one ring more or less in a period grows as 1/r^2, so
        # periods at a high rate count more: the weight is r x (the rate predicted for
        # this penalty).  Among periods with the same penalty it is proportional to r,
        # which makes their mean "total run time / total pages" - unbiased, where
        # weighing by r^2 would favour the periods that happened to catch one ring more.
        weight = r * (predicted / fill) ** (self.WEIGHT_POWER - 1) / fill
        # One ring more or less per period is the measurement's own granularity.
        slack = self.CHANGE + fill * 1000 / max(period_ms, 1) / max(predicted, 1e-9)
        if r > predicted * (1 + slack):
            est.restart(sample, weight)  # the guest sped up: believe it now
        elif r < predicted / (1 + slack):
            est.slow_streak += 1  # idle part of the period, or really slower?
            if est.slow_streak >= 2:
                est.restart(sample, weight)
        else:
            est.add(sample, weight, self.DECAY)

    @staticmethod
    def penalty_us(fill_mib: float, quota: int, t_run: float) -> int:
        """``M/q - t_run`` in microseconds, within ``[0, M/q]``."""
        if quota <= 0:
            return 0
        cycle = fill_mib / quota
        return round(min(max(cycle - t_run, 0.0), cycle) * 1e6)


#: Every controller, by name.
CONTROLLERS: dict[str, type[ThrottleController]] = {
    QemuController.name: QemuController,
    TargetController.name: TargetController,
}


def controller_names() -> list[str]:
    return list(CONTROLLERS)


def make_controller(name: str) -> ThrottleController:
    """A fresh controller (raises ValueError for an unknown name)."""
    try:
        factory = CONTROLLERS[name]
    except KeyError:
        raise ValueError(
            f"unknown dirty limit controller '{name}' (choose from {', '.join(CONTROLLERS)})"
        ) from None
    return factory()
