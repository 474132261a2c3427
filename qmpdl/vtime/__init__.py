"""Test authors' controls: virtual time, scenarios and faults, deterministic runs.

* ``-accel sim,clock=virtual``: the machine's clock is a :class:`~qmpdl.vtime.clock.SteppedClock`
  that moves only when a client steps it (``__com.qmpdl_clock-step``), and the throttle
  runs on its timers (:mod:`qmpdl.vtime.throttle`);
* ``--seed N``: every random choice (page sampling, a scenario's garbage readings, the
  vCPU thread ids shown under the virtual clock) comes from ``N``;
* ``--scenario FILE``: workload phases, machine events and faults on a timeline
  (:mod:`qmpdl.vtime.scenario`, :mod:`qmpdl.vtime.faults`).

The composition root (:func:`qmpdl.system.build.build_machine`) asks :func:`setup` for a
:class:`TimeSetup` before it builds anything, hands its parts to the constructors (the
clock, the thread id, the seeded random numbers, the throttle's period driver, the
faults' hooks), and calls :func:`start` on the built machine to put the scenario's
timeline on the clock.  Nothing is patched.  See ``docs/virtual-time.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from qmpdl.clock import Clock, RealClock

if TYPE_CHECKING:
    import random

    from qmpdl.config import MachineConfig
    from qmpdl.dirtylimit.service import DirtyLimit, PeriodDriver
    from qmpdl.profile import Profile
    from qmpdl.vtime.faults import ScenarioFaults
    from qmpdl.vtime.host import TimedMachine
    from qmpdl.vtime.scenario import LoadedScenario

#: The profile feature that puts qmpdl's virtual-time commands in the schema.
FEATURE = "qmpdl-virtual-clock"


def virtual(config: MachineConfig) -> bool:
    return config.accel.kind in ("sim", "tcg") and config.accel.clock == "virtual"


def profile_for(profile: Profile, config: MachineConfig) -> Profile:
    """The profile the machine answers as: with the virtual clock, plus its commands."""
    return profile.with_features(FEATURE) if virtual(config) else profile


def clock_for(config: MachineConfig) -> Clock:
    if virtual(config):
        from qmpdl.vtime.clock import SteppedClock

        return SteppedClock()
    return RealClock()


def prepare(config: MachineConfig) -> MachineConfig:
    """The configuration with what a scenario adds: its vCPUs' starting workloads
    (simulated vCPUs only; under ``-accel kvm`` the phases are ignored, see start)."""
    if config.scenario is None or config.accel.kind == "kvm":
        return config
    from qmpdl.vtime.scenario import load_scenario, scenario_workloads

    extra = scenario_workloads(load_scenario(config.scenario), config.cpus)
    if not extra:
        return config
    return config.model_copy(update={"workloads": [*config.workloads, *extra]})


def thread_id(seed: int | None) -> int:
    """The vCPU thread id ``query-cpus-fast`` shows under the virtual clock (a real
    one would differ between runs)."""
    return 1000 + (seed or 0) % 30000


class TimeSetup(NamedTuple):
    """What virtual time, the seed and the scenario give the machine's parts."""

    clock: Clock
    #: the clock is a stepped virtual one
    virtual: bool
    #: the vCPU thread id the backend shows (virtual clock only)
    thread_id: int | None
    #: page sampling's random numbers (from the seed; fixed under the virtual clock)
    rng: random.Random | None
    scenario: LoadedScenario | None
    #: the scenario's faults that parts consult (None without a scenario)
    faults: ScenarioFaults | None

    def period_driver(self) -> Callable[[DirtyLimit], PeriodDriver] | None:
        """The virtual clock runs the throttle's periods as its timers."""
        clock = self.clock
        if not self.virtual:
            return None
        from qmpdl.vtime.clock import SteppedClock
        from qmpdl.vtime.throttle import TimerThrottle

        assert isinstance(clock, SteppedClock)
        return lambda limit: TimerThrottle(limit, clock)

    def counters(self, read: Callable[[], list[int]]) -> Callable[[], list[int]] | None:
        """What measurements read as the vCPUs' harvested pages (``read``: the
        backend's), when a ``bad-measurement`` fault may change it."""
        return None if self.faults is None else self.faults.measured(read)


def setup(config: MachineConfig, clock: Clock | None = None) -> TimeSetup:
    """The clock (``clock`` if given) and the hooks of ``config``'s machine."""
    if clock is None:
        stepped = virtual(config)
        clock = clock_for(config)
    else:
        from qmpdl.vtime.clock import SteppedClock

        stepped = isinstance(clock, SteppedClock)
    seed = config.seed
    rng = None
    if seed is not None or stepped or config.scenario is not None:
        import random  # only for a seed, the virtual clock or a scenario

        rng = random.Random(seed) if seed is not None else (random.Random(0) if stepped else None)
    scenario = None
    faults = None
    if config.scenario is not None:
        import random

        from qmpdl.vtime.faults import ScenarioFaults
        from qmpdl.vtime.scenario import load_scenario

        scenario = load_scenario(config.scenario)
        faults = ScenarioFaults(scenario, clock, random.Random(seed or 0))
    return TimeSetup(
        clock=clock,
        virtual=stepped,
        thread_id=thread_id(seed) if stepped else None,
        rng=rng,
        scenario=scenario,
        faults=faults,
    )


def start(machine: TimedMachine, times: TimeSetup) -> None:
    """Put the scenario's timeline on the built machine's clock (its workload changes,
    events and timed faults)."""
    if times.scenario is not None and times.faults is not None:
        from qmpdl.vtime.faults import ScenarioRunner

        ScenarioRunner(machine, times.scenario, times.faults).install()
