"""What ``qmpdl-top`` shows, without any I/O: the state fed by QMP replies and
metrics scrapes, and the rows and lines it renders.

Where each figure comes from:

* a vCPU's rate: ``query-vcpu-dirty-limit``'s ``current-rate`` while it has a limit
  (source ``limit``), else the last dirty-ring ``calc-dirty-rate`` reading (``calc``);
* its limit: ``query-vcpu-dirty-limit``'s ``limit-rate``;
* its penalty per ring-full and ring-full time: neither QEMU nor qmpdl carries them in
  QMP (``query-migrate`` has only the largest penalty and an average ring-full time,
  and only during a dirty-limit migration), so they come from a qmpdl ``--metrics``
  endpoint when ``qmpdl-top --metrics URL`` names one, else they read ``n/a``;
* the migration: ``query-migrate``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any

from qmpdl.observe.run import RECORDING_MAGIC

#: Seconds of history behind each sparkline.
HISTORY_SECONDS = 60.0
_BARS = "▁▂▃▄▅▆▇█"

#: The commands the view uses, and what it loses without each.
COMMANDS = {
    "query-vcpu-dirty-limit": "limits and throttled rates",
    "set-vcpu-dirty-limit": "setting limits",
    "cancel-vcpu-dirty-limit": "cancelling limits",
    "calc-dirty-rate": "measuring rates",
    "query-dirty-rate": "measuring rates",
    "query-migrate": "the migration panel",
}


def sparkline(values: list[float], width: int, top: float | None = None) -> str:
    """``values`` (oldest first) as ``width`` block characters, right-aligned; the
    scale runs from 0 to ``top`` (default: the largest value)."""
    if width <= 0:
        return ""
    values = values[-width:]
    peak = top if top is not None else max(values, default=0.0)
    if peak <= 0:
        return " " * (width - len(values)) + _BARS[0] * len(values)
    bars = []
    for v in values:
        level = round(min(max(v, 0.0), peak) / peak * (len(_BARS) - 1))
        bars.append(_BARS[level])
    return " " * (width - len(values)) + "".join(bars)


@dataclass
class VcpuState:
    cpu: int
    rate: int | None = None
    #: ``limit`` (query-vcpu-dirty-limit) or ``calc`` (calc-dirty-rate)
    source: str | None = None
    limit: int | None = None
    penalty_us: int | None = None
    ring_full_us: int | None = None
    history: deque[tuple[float, int]] = field(default_factory=deque)

    def last_minute(self, now: float, width: int) -> list[float]:
        """The history in ``width`` equal slices of the last minute (the mean of the
        readings in each; slices before the first reading are left out)."""
        step = HISTORY_SECONDS / width
        slices: list[list[int]] = [[] for _ in range(width)]
        for t, rate in self.history:
            i = width - 1 - int((now - t) / step)
            if 0 <= i < width:
                slices[i].append(rate)
        first = next((i for i, x in enumerate(slices) if x), width)
        out: list[float] = []
        for x in slices[first:]:
            out.append(sum(x) / len(x) if x else (out[-1] if out else 0.0))
        return out

    def remember(self, now: float) -> None:
        if self.rate is not None:
            self.history.append((now, self.rate))
        while self.history and now - self.history[0][0] > HISTORY_SECONDS:
            self.history.popleft()


@dataclass
class TopState:
    """Everything on screen."""

    target: str = ""
    runstate: str = "?"
    commands: frozenset[str] = frozenset()
    vcpus: dict[int, VcpuState] = field(default_factory=dict)
    calc: dict[int, int] = field(default_factory=dict)
    #: VM-wide rate of a page-sampling measurement (no dirty ring)
    vm_rate: int | None = None
    migration: dict[str, Any] = field(default_factory=dict)
    #: the metrics endpoint answered at the last scrape
    metrics_ok: bool | None = None
    message: str = ""
    #: the time of the last poll (monotonic)
    now: float = 0.0

    def set_vcpus(self, indexes: list[int]) -> None:
        self.vcpus = {i: self.vcpus.get(i, VcpuState(i)) for i in indexes}

    def missing(self) -> list[str]:
        """What the target lacks, as ``command (what it costs)``."""
        return [f"{c} ({what})" for c, what in COMMANDS.items() if c not in self.commands]

    def update_limits(self, limits: list[dict[str, int]]) -> None:
        entries = {e["cpu-index"]: e for e in limits}
        for cpu, v in self.vcpus.items():
            entry = entries.get(cpu)
            if entry is not None:
                v.limit, v.rate, v.source = entry["limit-rate"], entry["current-rate"], "limit"
            else:
                v.limit = None
                reading = self.calc.get(cpu)
                v.rate, v.source = (reading, "calc") if reading is not None else (None, None)

    def update_calc(self, info: dict[str, Any]) -> bool:
        """A ``query-dirty-rate`` reply; True when it holds a finished measurement."""
        if info.get("status") != "measured":
            return False
        vcpus = info.get("vcpu-dirty-rate")
        if isinstance(vcpus, list):
            self.calc = {e["id"]: e["dirty-rate"] for e in vcpus}
            self.vm_rate = None
        else:
            self.vm_rate = info.get("dirty-rate")
        for cpu, v in self.vcpus.items():
            if v.source != "limit" and cpu in self.calc:
                v.rate, v.source = self.calc[cpu], "calc"
        return True

    def update_metrics(self, penalties: dict[int, float], full_times: dict[int, float]) -> None:
        self.metrics_ok = True
        for cpu, v in self.vcpus.items():
            p, f = penalties.get(cpu), full_times.get(cpu)
            v.penalty_us = int(p) if p is not None else None
            v.ring_full_us = int(f) if f is not None else None

    def tick(self, now: float) -> None:
        self.now = now
        for v in self.vcpus.values():
            v.remember(now)

    def needs_calc(self) -> bool:
        """Some vCPU has no throttle reading: only a measurement gives its rate."""
        return any(v.source != "limit" for v in self.vcpus.values())

    # ---------------------------------------------------------------- rendering

    def row(self, cpu: int, width: int = 30) -> tuple[str, ...]:
        v = self.vcpus[cpu]
        top = max((r for s in self.vcpus.values() for _, r in s.history), default=0)
        rate = "-" if v.rate is None else str(v.rate)
        na = "n/a" if not self.metrics_ok else "-"
        return (
            str(cpu),
            rate,
            v.source or "-",
            "-" if v.limit is None else str(v.limit),
            sparkline(v.last_minute(self.now, width), width, float(top)),
            na if v.penalty_us is None else str(v.penalty_us),
            na if v.ring_full_us is None else str(v.ring_full_us),
        )

    def migration_line(self) -> str:
        m = self.migration
        status = m.get("status", "none")
        if "query-migrate" not in self.commands:
            return "migration: n/a (no query-migrate)"
        parts = [f"migration: {status}"]
        ram = m.get("ram")
        if isinstance(ram, dict):
            parts.append(f"remaining {ram.get('remaining', 0) / (1 << 20):.1f} MiB")
            parts.append(f"transferred {ram.get('transferred', 0) / (1 << 20):.1f} MiB")
            parts.append(f"passes {ram.get('dirty-sync-count', 0)}")
        if "total-time" in m:
            parts.append(f"time {m['total-time'] / 1000:.1f} s")
        if "cpu-throttle-percentage" in m:
            parts.append(f"cpu-throttle {m['cpu-throttle-percentage']} %")
        if "dirty-limit-throttle-time-per-round" in m:
            parts.append(f"throttle-time-per-round {m['dirty-limit-throttle-time-per-round']} us")
        if "dirty-limit-ring-full-time" in m:
            parts.append(f"ring-full-time {m['dirty-limit-ring-full-time']} us")
        return ", ".join(parts)

    def sample(self, t: float) -> dict[str, Any]:
        """One line of a recording (see :mod:`qmpdl.observe.run`)."""
        return {
            "t": round(t, 3),
            "runstate": self.runstate,
            "vcpus": [
                {
                    "cpu": v.cpu,
                    "rate": v.rate,
                    "source": v.source,
                    "limit": v.limit,
                    "penalty_us": v.penalty_us,
                    "ring_full_us": v.ring_full_us,
                }
                for v in self.vcpus.values()
            ],
            "migration": {
                k: self.migration[k]
                for k in (
                    "status",
                    "total-time",
                    "dirty-limit-throttle-time-per-round",
                    "dirty-limit-ring-full-time",
                )
                if k in self.migration
            }
            | (
                {"remaining": self.migration["ram"].get("remaining")}
                if isinstance(self.migration.get("ram"), dict)
                else {}
            ),
        }


class Recorder:
    """Writes what the view saw, one JSON object a line (``qmpdl-plot`` reads it)."""

    def __init__(self, out: IO[str], target: str, start: float | None = None) -> None:
        self.out = out
        self.start = time.monotonic() if start is None else start
        self._write({RECORDING_MAGIC: 1, "target": target, "started": time.time()})

    def _write(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()

    def sample(self, state: TopState, now: float) -> None:
        self._write(state.sample(now - self.start))

    def action(self, text: str, now: float) -> None:
        self._write({"t": round(now - self.start, 3), "action": text})
