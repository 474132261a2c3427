"""A scenario's timeline in a running machine: workload phases, events and faults.

Every timed entry becomes an action at ``start + at`` on the machine's clock: a timer
of the virtual clock (run by whoever steps it, at its exact instant), or, on the host
clock, a ``qmpdl-scenario`` thread that sleeps until each.  What each does:

* **phases** (sim vCPUs): the vCPUs' kind and rate change in the model at that instant;
  a ramp is a change every ``step`` seconds; a burst (a phase with a duration) gives the
  previous phase back when it ends;
* **stop-work / resume-work**: every vCPU idles, then takes up its phase again;
* **ring-overflow-storm**: the vCPU dirties ``factor`` times faster for ``duration``,
  so its ring fills and is harvested that much more often;
* **late-throttle-period**: the throttle period that would begin next begins ``delay``
  seconds late (as a stalled ``dirtyrate-stat`` thread would);
* **bad-measurement**: the vCPUs' harvested-page counters read as frozen (``zero``:
  every dirty-ring measurement says 0 MiB/s) or jump by random amounts from the seed
  (``garbage``) for ``duration``; afterwards they go on from where they were shown;
* **kvm-internal-error**: the vCPU fails as on an unexpected KVM exit: a log line, the
  VM stops in ``internal-error`` with a STOP event;
* **migration-stream** (source side): in the outgoing migration ``migration`` names (1:
  the process's first, 2: its second...; ``each``, the default: every one, each
  afresh), from ``after`` seconds into that migration or at byte ``offset`` of its
  stream (bytes as ``ram.transferred`` counts them): ``slow`` (send at ``bandwidth``
  bytes/s of the clock),
  ``stall`` (send nothing for ``duration``, or until ``migrate_cancel``), ``cut`` (the
  connection is shut down: the source fails with a broken pipe, the destination with a
  stream that ended early), ``corrupt`` (the next byte is inverted: the destination's
  checks fail the load);
* **destination-refuse** (destination side): the incoming stream is refused; the
  destination fails the load (and exits 1, as QEMU's does), the source sees the
  connection reset.  (A process has one incoming migration.)

:class:`ScenarioFaults` is what the composition root hands the parts when it builds
them (the measurements' counters, the throttle's period delays, the migration's stream
faults); :class:`ScenarioRunner` then puts the timeline on the built machine's clock.
"""

from __future__ import annotations

import errno
import logging
import random
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from qmpdl import report
from qmpdl.backend.sim import SimBackend
from qmpdl.clock import Clock, parked
from qmpdl.migration.uri import Channel
from qmpdl.vtime.clock import SteppedClock
from qmpdl.vtime.scenario import LoadedScenario, cpu_range

if TYPE_CHECKING:
    from qmpdl.vtime.host import TimedMachine

log = logging.getLogger("qmpdl")

Action = Callable[[], None]
_DEFAULT_RATE = 450.0
#: what a ``garbage`` reading adds to a counter at most (pages: 64 GiB)
_GARBAGE_PAGES = 1 << 24


class VcpuControl:
    """Changes the simulated vCPUs' workloads while they run."""

    def __init__(self, backend: SimBackend) -> None:
        self.backend = backend
        rates = backend.workload_rates()
        self.kind: list[str] = [kind for kind, _, _ in rates]
        self.rate = [max(w, r) for _, w, r in rates]
        self.factor = [1.0] * backend.nr_vcpus
        self.stopped = False

    def set(self, cpus: range, kind: str, rate: float | None) -> None:
        for cpu in cpus:
            self.kind[cpu] = kind
            self.rate[cpu] = 0.0 if kind == "idle" else (_DEFAULT_RATE if rate is None else rate)
        self.apply()

    def apply(self) -> None:
        n = self.backend.nr_vcpus
        write, read = [0.0] * n, [0.0] * n
        if not self.stopped:
            for cpu, (kind, rate) in enumerate(zip(self.kind, self.rate, strict=True)):
                if kind == "write":
                    write[cpu] = rate * self.factor[cpu]
                elif kind == "read":
                    read[cpu] = rate * self.factor[cpu]
        self.backend.set_workload_rates(write, read)


class CountersFault:
    """``bad-measurement``: the harvested-page counters as the measurements see them."""

    def __init__(self, read: Callable[[], list[int]], rng: random.Random) -> None:
        self.read = read
        self.rng = rng
        self.mode: str | None = None
        self.offset: list[int] | None = None
        self.shown: list[int] | None = None

    def __call__(self) -> list[int]:
        real = self.read()
        if self.offset is None:
            self.offset = [0] * len(real)
        if self.mode is None:
            return [r - o for r, o in zip(real, self.offset, strict=True)]
        if self.shown is None:
            self.shown = [r - o for r, o in zip(real, self.offset, strict=True)]
        if self.mode == "garbage":
            self.shown = [s + self.rng.randrange(_GARBAGE_PAGES) for s in self.shown]
        return list(self.shown)

    def begin(self, mode: str) -> None:
        self.mode = mode
        self.shown = None

    def end(self) -> None:
        real = self.read()
        if self.shown is not None:
            self.offset = [r - s for r, s in zip(real, self.shown, strict=True)]
        self.mode = None
        self.shown = None


class FaultyChannel(Channel):
    """One outgoing stream with the scenario's stream faults.  Offsets count the bytes
    each write stands for (``size``: a MARKS record counts as its PAGES record), so a
    fault hits at the same place of the stream on either clock; a write split by one is
    split in proportion."""

    def __init__(self, inner: Channel, faults: list[Any], clock: Clock) -> None:
        super().__init__(inner.sock, inner.proc, inner.fd)
        self.clock = clock
        self.start = clock.monotonic()
        self.sent = 0
        self.pending = list(faults)
        self.bandwidth: int | None = None
        self.corrupt_next = False
        self.cancelled = threading.Event()

    def shutdown(self) -> None:
        self.cancelled.set()
        super().shutdown()

    def sendall(self, data: bytes, size: int | None = None) -> None:
        view = bytes(data)
        left = len(view) if size is None else size
        while True:
            cut_at, fire = left, None
            elapsed = self.clock.monotonic() - self.start
            for fault in self.pending:
                if fault.offset is not None:
                    at = max(fault.offset - self.sent, 0)
                    if at < left and (fire is None or at < cut_at):
                        cut_at, fire = at, fault
                elif fault.after is not None and elapsed >= fault.after:
                    cut_at, fire = 0, fault
                    break
            wire = len(view) if cut_at >= left else len(view) * cut_at // left
            head, view = view[:wire], view[wire:]
            if head or cut_at:
                self._send(head, cut_at)
            left -= cut_at
            if fire is None:
                return
            self.pending.remove(fire)
            self._trigger(fire)

    def _send(self, chunk: bytes, size: int) -> None:
        if self.bandwidth and size:
            now = self.clock.monotonic()
            self.clock.sleep_until(now + size / self.bandwidth, self.cancelled)
        if self.corrupt_next and chunk and size:
            chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            self.corrupt_next = False
        super().sendall(chunk)
        self.sent += size

    def _trigger(self, fault: Any) -> None:
        log.warning("scenario: migration stream %s at byte %d", fault.action, self.sent)
        if fault.action == "slow":
            self.bandwidth = fault.bandwidth
        elif fault.action == "corrupt":
            self.corrupt_next = True
        elif fault.action == "stall":
            if fault.duration is not None:
                now = self.clock.monotonic()
                self.clock.sleep_until(now + fault.duration, self.cancelled)
            else:
                with parked(self.clock):
                    self.cancelled.wait()
        elif fault.action == "cut":
            super().shutdown()
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")


class RefusingChannel(Channel):
    """``destination-refuse``: the incoming stream is dropped at once."""

    def __init__(self, inner: Channel, message: str) -> None:
        super().__init__(inner.sock, inner.proc, inner.fd)
        self.message = message
        super().shutdown()

    def recv(self, size: int) -> bytes:
        raise OSError(self.message)


class ScenarioFaults:
    """The scenario's faults that the machine's parts consult, made before the parts and
    handed to their constructors: what the measurements read (``bad-measurement``), how
    late the next throttle period begins (``late-throttle-period``), and each migration
    stream's channel (``migration-stream``, ``destination-refuse``: a
    :class:`~qmpdl.migration.host.StreamFaults`)."""

    def __init__(self, scenario: LoadedScenario, clock: Clock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        faults = scenario.model.faults
        self._measurements = any(f.kind == "bad-measurement" for f in faults)
        #: set by :meth:`measured` (the timeline turns it on and off)
        self.counters: CountersFault | None = None
        self._delay = 0.0
        self._delay_lock = threading.Lock()
        self._streams = [f for f in faults if f.kind == "migration-stream"]
        refusals = [f for f in faults if f.kind == "destination-refuse"]
        self._refuse: str | None = refusals[0].message if refusals else None

    @property
    def on_streams(self) -> bool:
        """Whether any fault concerns a migration stream."""
        return bool(self._streams) or self._refuse is not None

    # ------------------------------------------------------------------ measurements

    def measured(self, read: Callable[[], list[int]]) -> Callable[[], list[int]] | None:
        """The counters measurements read, ``read`` being the backend's (None: no
        fault changes them)."""
        if not self._measurements:
            return None
        self.counters = CountersFault(read, self.rng)
        return self.counters

    # ------------------------------------------------------------------ throttle

    def delay_next_period(self, seconds: float) -> None:
        with self._delay_lock:
            self._delay += seconds

    def period_delay(self) -> float:
        """Seconds the period about to begin starts late (asked once per period)."""
        with self._delay_lock:
            delay, self._delay = self._delay, 0.0
        return delay

    # ------------------------------------------------------------------ StreamFaults

    def outgoing(self, channel: Channel, number: int) -> Channel:
        faults = [f for f in self._streams if f.migration in ("each", number)]
        if not faults:
            return channel
        return FaultyChannel(channel, faults, self.clock)

    def incoming(self, channel: Channel) -> Channel:
        if self._refuse is None:
            return channel
        message, self._refuse = self._refuse, None
        return RefusingChannel(channel, message)


class ScenarioRunner:
    """Puts one scenario's timeline on one built machine's clock."""

    def __init__(
        self, machine: TimedMachine, scenario: LoadedScenario, faults: ScenarioFaults
    ) -> None:
        self.machine = machine
        self.scenario = scenario
        self.faults = faults
        self.clock = machine.clock
        self.start = self.clock.monotonic()
        backend = machine.backend
        self.control = VcpuControl(backend) if isinstance(backend, SimBackend) else None
        self.actions: list[tuple[float, int, Action]] = []
        #: workload changes at time 0: applied when the machine is built
        self.immediate: list[Action] = []

    def _warn(self, what: str, *path: Any) -> None:
        line = self.scenario.line(*path)
        where = f"{self.scenario.path}:{line}" if line is not None else self.scenario.path
        report.warning(
            f"--scenario {where}: {what} need simulated vCPUs (-accel sim): "
            "ignored under -accel kvm"
        )

    def _at(self, at: float, action: Action, *, now_if_zero: bool = False) -> None:
        if now_if_zero and at <= 0:
            self.immediate.append(action)
            return
        self.actions.append((at, len(self.actions), action))

    def _cpus(self, text: str) -> range:
        first, last = cpu_range(text, self.machine.backend.nr_vcpus)
        if first is None or last is None:
            return range(self.machine.backend.nr_vcpus)
        return range(first, last + 1)

    # ------------------------------------------------------------------ building

    def install(self) -> None:
        model = self.scenario.model
        for i, timeline in enumerate(model.vcpus):
            if self.control is None:
                self._warn("workload phases", "vcpus", i)
                continue
            self._phases(self._cpus(str(timeline.cpus)), timeline.phases)
        for event in model.events:
            self._at(event.at, self._work(event.action == "stop-work"), now_if_zero=True)
        for i, fault in enumerate(model.faults):
            self._fault(i, fault)
        for action in self.immediate:
            action()
        if isinstance(self.clock, SteppedClock):
            for at, _, action in sorted(self.actions, key=lambda a: (a[0], a[1])):
                self.clock.call_at(self.start + at, action)
        elif self.actions:
            thread = threading.Thread(target=self._run_real, name="qmpdl-scenario", daemon=True)
            thread.start()

    def _run_real(self) -> None:
        for at, _, action in sorted(self.actions, key=lambda a: (a[0], a[1])):
            if self.clock.sleep_until(self.start + at, self.machine.shutdown_event):
                return
            try:
                action()
            except Exception:  # a scenario must not take the machine down
                log.exception("scenario action at %s s failed", at)

    def _phases(self, cpus: range, phases: list[Any]) -> None:
        control = self.control
        assert control is not None
        previous: tuple[str, float | None] = (
            control.kind[cpus[0]],
            control.rate[cpus[0]] if cpus else None,
        )
        for phase in phases:
            kind, rate = phase.kind, phase.rate
            if kind == "write" and rate is None:
                rate = previous[1] if previous[0] == "write" else None
            self._at(phase.at, partial(control.set, cpus, kind, rate), now_if_zero=True)
            if phase.duration is not None and phase.ramp_to is not None:
                start = rate if rate is not None else _DEFAULT_RATE
                steps = max(round(phase.duration / phase.step), 1)
                for k in range(1, steps + 1):
                    value = start + (phase.ramp_to - start) * k / steps
                    self._at(
                        phase.at + phase.duration * k / steps,
                        partial(control.set, cpus, kind, value),
                    )
                previous = (kind, phase.ramp_to)
            elif phase.duration is not None:
                back_kind, back_rate = previous
                self._at(
                    phase.at + phase.duration, partial(control.set, cpus, back_kind, back_rate)
                )
            else:
                previous = (kind, rate)

    def _work(self, stop: bool) -> Action:
        def act() -> None:
            if self.control is not None:
                self.control.stopped = stop
                self.control.apply()

        return act

    def _fault(self, index: int, fault: Any) -> None:
        kind = fault.kind
        if kind == "ring-overflow-storm":
            control = self.control
            if control is None:
                self._warn("ring overflow storms", "faults", index)
                return

            def storm(on: bool, cpu: int = fault.cpu, factor: float = fault.factor) -> None:
                assert control is not None
                control.factor[cpu] = factor if on else 1.0
                control.apply()

            self._at(fault.at, lambda: storm(True))
            self._at(fault.at + fault.duration, lambda: storm(False))
        elif kind == "late-throttle-period":
            self._at(fault.at, partial(self.faults.delay_next_period, fault.delay))
        elif kind == "bad-measurement":
            counters = self.faults.counters
            assert counters is not None  # made when the parts were built
            self._at(fault.at, partial(counters.begin, fault.value))
            self._at(fault.at + fault.duration, counters.end)
        elif kind == "kvm-internal-error":
            self._at(fault.at, partial(self._internal_error, fault.cpu, index))
        # stream faults: ScenarioFaults, consulted by each migration

    # ------------------------------------------------------------------ actions

    def _internal_error(self, cpu: int, index: int) -> None:
        line = self.scenario.line("faults", index)
        where = f"{self.scenario.path}:{line}" if line is not None else self.scenario.path
        with self.machine.bql:
            self.machine.internal_error(
                f"KVM internal error on vCPU {cpu}: emulation failure (injected by {where})"
            )


def check_scenario(scenario: LoadedScenario, nr_vcpus: int) -> None:
    """Refuse vCPU numbers the machine does not have (ScenarioError with the line)."""
    from qmpdl.vtime.scenario import ScenarioError

    def bad(path: tuple[Any, ...], what: str) -> None:
        line = scenario.line(*path)
        raise ScenarioError(
            f"{scenario.path}:{line}: {what}: the machine has {nr_vcpus} vCPUs (0-{nr_vcpus - 1})"
        )

    for i, timeline in enumerate(scenario.model.vcpus):
        _, last = cpu_range(str(timeline.cpus), nr_vcpus)
        if last is not None and last >= nr_vcpus:
            bad(("vcpus", i, "cpus"), f"vCPUs {timeline.cpus}")
    for i, fault in enumerate(scenario.model.faults):
        cpu = getattr(fault, "cpu", None)
        if cpu is not None and cpu >= nr_vcpus:
            bad(("faults", i, "cpu"), f"vCPU {cpu}")
