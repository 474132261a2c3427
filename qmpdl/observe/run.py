"""A recorded run, read back for plotting: QEMU's (or qmpdl's) trace log, or what
``qmpdl-top --record`` saved.

Trace logs are QEMU's ``log`` backend format with timestamps (``-msg timestamp=on`` on
QEMU; qmpdl always writes them): ``pid@seconds.micros:name args``, plain or gzipped.
What is read of them:

* ``dirtyrate_do_calculate_vcpu`` - a vCPU's rate over one period.  The throttle
  thread's and ``calc-dirty-rate``'s measurements both write it; a thread that also
  writes ``dirtyrate_calculate`` (the VM-wide total) is a ``calc-dirty-rate`` thread;
* ``dirtylimit_set_vcpu`` / ``dirtylimit_state_finalize`` - the limits;
* ``dirtylimit_vcpu_execute`` - the penalty a vCPU sleeps at a ring-full;
* ``migrate_set_state`` and ``migration_dirty_limit_guest`` - migration phases.

Everything else is ignored.  Times are seconds from the first event.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qmpdl.errors import QmpdlError

_LINE = re.compile(r"^(\d+)@(\d+\.\d+):(\w+)(?: (.*))?$")
_BARE = re.compile(r"^(dirtylimit|dirtyrate|migrate)_\w+ ")
_RATE = re.compile(r"vcpu\[(\d+)\]: (\d+) MB/s")
_SET = re.compile(r"CPU\[(\d+)\] set dirty page rate limit (\d+)")
_SLEEP = re.compile(r"CPU\[(\d+)\] sleep (\d+) us")
_STATE = re.compile(r"new state (\S+)")
_INIT = re.compile(r"max cpus (\d+)")

#: The recording header's key (first line of a ``qmpdl-top --record`` file).
RECORDING_MAGIC = "qmpdl-top-recording"


class RunFormatError(QmpdlError, ValueError):
    """The file is not a run this module can read (the message says why)."""


@dataclass
class Series:
    """Points of one quantity over time."""

    t: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)

    def add(self, t: float, v: float) -> None:
        self.t.append(t)
        self.v.append(v)

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Phase:
    """A span of the run: a migration status (``active``, ...) from ``start`` to ``end``."""

    label: str
    start: float
    end: float


@dataclass
class Run:
    """One run, per vCPU: throttle rates, calc-dirty-rate readings, limits (a step
    series, 0 = none), penalties (microseconds per ring-full)."""

    source: str
    title: str
    duration: float = 0.0
    rates: dict[int, Series] = field(default_factory=dict)
    calc_rates: dict[int, Series] = field(default_factory=dict)
    limits: dict[int, Series] = field(default_factory=dict)
    penalties: dict[int, Series] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    #: (time, text) of things worth a marker: limits set, migration's own limit
    events: list[tuple[float, str]] = field(default_factory=list)

    @property
    def vcpus(self) -> list[int]:
        return sorted({*self.rates, *self.calc_rates, *self.limits, *self.penalties})

    def series(self, table: dict[int, Series], cpu: int) -> Series:
        return table.setdefault(cpu, Series())


def _open_text(path: Path) -> Iterator[str]:
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rt", errors="replace") as f:
        yield from f


def load(path: str | Path) -> Run:
    """Read a trace log or a recording (raises RunFormatError, OSError)."""
    p = Path(path)
    lines = _open_text(p)
    try:
        first = next(lines)
    except StopIteration:
        raise RunFormatError(f"{p}: empty file") from None
    if first.lstrip().startswith("{"):
        return _recording(p, first, lines)
    return _trace(p, first, lines)


# ---------------------------------------------------------------------- trace logs


@dataclass(frozen=True)
class _Event:
    tid: int
    t: float
    name: str
    args: str


def _events(path: Path, first: str, rest: Iterable[str]) -> list[_Event]:
    events = []
    bare = 0
    for line in _chain(first, rest):
        text = line.rstrip("\n")
        m = _LINE.match(text.strip())
        if m:
            events.append(_Event(int(m[1]), float(m[2]), m[3], m[4] or ""))
        elif _BARE.match(text):
            bare += 1
    if not events:
        if bare:
            raise RunFormatError(
                f"{path}: trace lines without timestamps: record QEMU's trace with "
                "-msg timestamp=on (and -trace 'dirtylimit_*' -trace 'dirtyrate_*')"
            )
        raise RunFormatError(
            f"{path}: neither a trace log (pid@seconds:event ...) nor a qmpdl-top recording"
        )
    return events


def _gap(series: Series | None, t: float) -> None:
    """End ``series``' line at ``t`` (a NaN point; plots leave a gap)."""
    if series is not None and series.v and not math.isnan(series.v[-1]):
        series.add(t, math.nan)


def _chain(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def _trace(path: Path, first: str, rest: Iterable[str]) -> Run:
    events = _events(path, first, rest)
    t0 = events[0].t
    calc_tids = {e.tid for e in events if e.name == "dirtyrate_calculate"}
    run = Run(source="trace", title=path.name.removesuffix(".gz"))
    nr_cpus = 0
    migration: tuple[str, float] | None = None
    for e in events:
        t = e.t - t0
        if e.name == "dirtyrate_do_calculate_vcpu":
            m = _RATE.search(e.args)
            if m:
                table = run.calc_rates if e.tid in calc_tids else run.rates
                run.series(table, int(m[1])).add(t, int(m[2]))
        elif e.name == "dirtylimit_set_vcpu":
            m = _SET.search(e.args)
            if m:
                cpu, quota = int(m[1]), int(m[2])
                run.series(run.limits, cpu).add(t, quota)
                if quota:
                    run.events.append((t, f"limit {quota}"))
                else:
                    _gap(run.penalties.get(cpu), t)
        elif e.name == "dirtylimit_state_initialize":
            m = _INIT.search(e.args)
            nr_cpus = max(nr_cpus, int(m[1])) if m else nr_cpus
        elif e.name == "dirtylimit_state_finalize":
            for cpu in range(nr_cpus):
                series = run.series(run.limits, cpu)
                if not series.v or series.v[-1]:
                    series.add(t, 0)
            # No throttle thread, no penalty sleeps: the lines break here.
            for table in (run.rates, run.penalties):
                for series in table.values():
                    _gap(series, t)
        elif e.name == "dirtylimit_vcpu_execute":
            m = _SLEEP.search(e.args)
            if m:
                series = run.series(run.penalties, int(m[1]))
                if not series.v or series.v[-1] != int(m[2]):
                    series.add(t, int(m[2]))
        elif e.name == "migrate_set_state":
            m = _STATE.search(e.args)
            if m:
                if migration is not None:
                    run.phases.append(Phase(migration[0], migration[1], t))
                migration = (m[1], t)
        elif e.name == "migration_dirty_limit_guest":
            run.events.append((t, "migration limits the guest"))
    run.duration = events[-1].t - t0
    if migration is not None:
        run.phases.append(Phase(migration[0], migration[1], run.duration))
    if not (run.rates or run.calc_rates or run.limits or run.phases):
        raise RunFormatError(
            f"{path}: no dirty-limit, dirty-rate or migration events in the trace "
            "(trace with -trace 'dirtylimit_*' -trace 'dirtyrate_*')"
        )
    return run


# ---------------------------------------------------------------------- recordings


def _recording(path: Path, first: str, rest: Iterable[str]) -> Run:
    try:
        header = json.loads(first)
    except json.JSONDecodeError as e:
        raise RunFormatError(f"{path}: line 1: {e}") from None
    if not isinstance(header, dict) or RECORDING_MAGIC not in header:
        raise RunFormatError(f"{path}: a JSON file, but not a qmpdl-top recording")
    run = Run(source="recording", title=str(header.get("target", path.name)))
    status: tuple[str, float] | None = None
    t = 0.0
    for number, line in enumerate(rest, 2):
        if not line.strip():
            continue
        try:
            sample: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as e:
            raise RunFormatError(f"{path}: line {number}: {e}") from None
        t = float(sample.get("t", t))
        if "action" in sample:
            run.events.append((t, str(sample["action"])))
            continue
        for v in sample.get("vcpus", []):
            cpu = int(v["cpu"])
            if v.get("rate") is not None:
                table = run.rates if v.get("source") == "limit" else run.calc_rates
                run.series(table, cpu).add(t, v["rate"])
            limits = run.series(run.limits, cpu)
            limit = v.get("limit") or 0
            if not limits.v or limits.v[-1] != limit:
                limits.add(t, limit)
            if v.get("penalty_us") is not None:
                run.series(run.penalties, cpu).add(t, v["penalty_us"])
        migration = sample.get("migration")
        state = migration.get("status") if isinstance(migration, dict) else None
        if state is not None and (status is None or status[0] != state):
            if status is not None:
                run.phases.append(Phase(status[0], status[1], t))
            status = (state, t)
    run.duration = t
    if status is not None and status[0] != "none":
        run.phases.append(Phase(status[0], status[1], t))
    run.phases = [p for p in run.phases if p.label != "none"]
    return run
