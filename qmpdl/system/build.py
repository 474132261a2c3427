"""Building a machine from its configuration, parts in dependency order.

The profile, clock and tracer first, with what :mod:`qmpdl.vtime` adds (virtual time, a
seed, a scenario's faults: :func:`qmpdl.vtime.setup`); then the backend the ``-accel``
entry of :mod:`qmpdl.backend.registry` names; then
:class:`~qmpdl.system.machine.Machine`, which builds the rest around it with the hooks
handed in.  Nothing is patched afterwards: a scenario's timeline is only put on the
clock (:func:`qmpdl.vtime.start`).
"""

from __future__ import annotations

from collections.abc import Callable

from qmpdl.backend.registry import ACCELERATORS, BackendRequest, SerialPort
from qmpdl.clock import Clock
from qmpdl.config import MachineConfig
from qmpdl.errors import ConfigError
from qmpdl.profile import get_profile
from qmpdl.system.machine import Machine, PartHooks, no_exit
from qmpdl.trace import Tracer
from qmpdl.workload import WorkloadError, resolve_workloads


def build_machine(
    config: MachineConfig,
    clock: Clock | None = None,
    *,
    serial: SerialPort | None = None,
    exit_process: Callable[[int], None] = no_exit,
) -> Machine:
    """The machine of ``config``; ``serial`` is where its guests' COM1 output goes,
    ``exit_process`` ends the process (a failed incoming migration does)."""
    from qmpdl import vtime

    config = vtime.prepare(config)  # a scenario's workloads
    profile = vtime.profile_for(get_profile(config.qemu_version), config)
    times = vtime.setup(config, clock)  # the clock; seed and scenario hooks
    clock = times.clock
    # The trace file stays open for the life of the process, like QEMU's -D file.
    out = open(config.trace_file, "a") if config.trace_file else None  # noqa: SIM115
    tracer = Tracer(config.trace_patterns, out)
    if serial is None and config.serials:
        # no server around the machine (tests, tools): a file port is written directly
        port = config.chardev(config.serials[0])
        if port.backend == "file" and port.path is not None:
            serial = open(port.path, "ab" if port.append else "wb")  # noqa: SIM115
    if config.accel.kind not in ACCELERATORS:
        raise ConfigError(f"-accel {config.accel.kind}: invalid accelerator")
    accelerator = ACCELERATORS[config.accel.kind]
    try:
        workloads = resolve_workloads(config.workloads, config.cpus)
    except WorkloadError as e:
        raise ConfigError(f"--workload: {e}") from None
    request = BackendRequest(
        config=config,
        profile=profile,
        clock=clock,
        tracer=tracer,
        workloads=workloads,
        ring_size=config.accel.dirty_ring_size,
        kick_interrupts_sleep=not profile.has("dirtylimit-sleep-uninterruptible"),
        start_paused=config.start_paused or config.incoming is not None,
        serial=serial,
        thread_id=times.thread_id,
    )
    backend = accelerator.build(request)
    faults = times.faults
    hooks = PartHooks(
        rng=times.rng,
        counters=times.counters(backend.dirty_pages),
        period_driver=times.period_driver(),
        period_delay=None if faults is None else faults.period_delay,
        stream_faults=None if faults is None or not faults.on_streams else faults,
        virtual_clock=times.virtual,
    )
    machine = Machine(
        config,
        profile,
        accelerator,
        backend,
        clock,
        tracer=tracer,
        exit_process=exit_process,
        hooks=hooks,
    )
    vtime.start(machine, times)  # a scenario's timeline (nothing without one)
    return machine
