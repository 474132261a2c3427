"""Test authors' controls: virtual time, scenarios and faults, deterministic runs.

* ``-accel sim,clock=virtual``: the machine's clock is a :class:`~qmpdl.vtime.clock.SteppedClock`
  that moves only when a client steps it (``__com.qmpdl_clock-step``), and the throttle
  runs on its timers (:mod:`qmpdl.vtime.throttle`);
* ``--seed N``: every random choice (page sampling, a scenario's garbage readings, the
  vCPU thread ids shown under the virtual clock) comes from ``N``;
* ``--scenario FILE``: workload phases, machine events and faults on a timeline
  (:mod:`qmpdl.vtime.scenario`, :mod:`qmpdl.vtime.faults`).

The composition root calls three hooks (:func:`profile_for`, :func:`clock_for`,
:func:`install`); everything else lives here.  See ``docs/virtual-time.md``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from qmpdl.clock import Clock, RealClock

if TYPE_CHECKING:
    from qmpdl.config import MachineConfig
    from qmpdl.profile import Profile
    from qmpdl.vtime.host import TimedMachine

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
    (simulated vCPUs only; under ``-accel kvm`` the phases are ignored, see install)."""
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


def install(machine: TimedMachine) -> None:
    """Wire the virtual clock, the seed and the scenario into a built machine."""
    from qmpdl.vtime.clock import SteppedClock

    config = machine.config
    clock = machine.clock
    seed = config.seed
    if seed is not None:
        machine.dirtyrate._rng = random.Random(seed)
    if isinstance(clock, SteppedClock):
        from qmpdl.vtime.throttle import TimerThrottle

        machine.dirtylimit.set_period_driver(TimerThrottle(machine.dirtylimit, clock))
        if seed is None:
            machine.dirtyrate._rng = random.Random(0)
        ident = thread_id(seed)
        n = machine.backend.nr_vcpus
        setattr(machine.backend, "thread_ids", lambda: [ident] * n)  # noqa: B010
        teardown = machine.teardown

        def released_teardown() -> None:
            clock.release()  # threads being joined must not wait for a step
            teardown()

        setattr(machine, "teardown", released_teardown)  # noqa: B010
    link_clocks(machine)
    if config.scenario is not None:
        from qmpdl.vtime.scenario import apply_scenario, load_scenario

        apply_scenario(machine, load_scenario(config.scenario))


def link_clocks(machine: TimedMachine) -> None:
    """A migration carries the source's virtual time: a destination on a virtual clock
    catches up with it when the guest state arrives (so its events and the guest's
    progress continue where the source's left off)."""
    from qmpdl.vtime.clock import SteppedClock

    backend = machine.backend
    clock = machine.clock
    export_state = backend.export_state
    import_state = backend.import_state

    def exported() -> dict[str, Any]:
        state = dict(export_state())
        if isinstance(clock, SteppedClock):
            state["vtime"] = clock.monotonic()
        return state

    def imported(state: dict[str, Any]) -> None:
        at = state.get("vtime")
        if isinstance(clock, SteppedClock) and isinstance(at, float | int):
            clock.advance_to(float(at))
        import_state(state)

    setattr(backend, "export_state", exported)  # noqa: B010
    setattr(backend, "import_state", imported)  # noqa: B010
