"""Scenario files: what the guest does over time, machine events, and faults.

A scenario is TOML (``.toml``) or YAML (``.yaml``/``.yml``), validated with pydantic
(imported only when ``--scenario`` is given: a plain start-up stays light).  Errors name
the file and line.  Times are seconds of the machine's clock since it started (virtual
or host time alike); migration stream faults count from the migration's start or in
bytes of its stream, in the migration they name (or each).  See
``docs/virtual-time.md`` for the format, and :mod:`qmpdl.vtime.faults` for what each
entry does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from qmpdl.errors import QmpdlError


class ScenarioError(QmpdlError, ValueError):
    """A scenario that cannot be read: the text says where (FILE:LINE: ...)."""


# The models are built on first use (pydantic costs start-up time).


@cache
def _models() -> Any:
    from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

    from qmpdl.sizes import parse_size

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    def _cpus(value: str | int) -> str:
        text = str(value)
        if text == "all" or re.fullmatch(r"\d+(-\d+)?", text):
            if "-" in text:
                lo, hi = (int(x) for x in text.split("-"))
                if hi < lo:
                    raise ValueError(f"'{text}': N-M needs N <= M")
            return text
        raise ValueError(f"'{text}': expected all, N or N-M")

    class Phase(_Strict):
        """From ``at`` on, the vCPUs run ``kind`` at ``rate`` MiB/s."""

        at: float = Field(ge=0)
        kind: Literal["write", "read", "idle"]
        rate: float | None = Field(default=None, ge=0)
        wss: str | int | None = None
        #: the rate moves linearly to this over ``duration`` (a ramp)
        ramp_to: float | None = Field(default=None, ge=0)
        #: without ``ramp_to``: a burst, after which the previous phase returns
        duration: float | None = Field(default=None, gt=0)
        #: seconds between the steps of a ramp
        step: float = Field(default=0.1, gt=0)

        @field_validator("wss")
        @classmethod
        def _wss(cls, value: str | int | None) -> str | int | None:
            if value is not None:
                parse_size(str(value))
            return value

        @model_validator(mode="after")
        def _ramp(self) -> Phase:
            if self.ramp_to is not None and self.duration is None:
                raise ValueError("a ramp (ramp_to) needs a duration")
            if self.kind == "idle" and (self.rate or self.ramp_to):
                raise ValueError("an idle phase has no rate")
            return self

    class VcpuTimeline(_Strict):
        cpus: str | int = "all"
        phases: list[Phase] = Field(min_length=1)

        @field_validator("cpus")
        @classmethod
        def _check_cpus(cls, value: str | int) -> str:
            return _cpus(value)

        @model_validator(mode="after")
        def _order(self) -> VcpuTimeline:
            times = [p.at for p in self.phases]
            if times != sorted(times):
                raise ValueError("phases must be in time order")
            if any(p.wss is not None for p in self.phases[1:]):
                raise ValueError("only the first phase sets the working set (wss)")
            return self

    class Event(_Strict):
        at: float = Field(ge=0)
        #: the guest stops its work (every vCPU idles) / takes it up again
        action: Literal["stop-work", "resume-work"]

    class StormFault(_Strict):
        """vCPU ``cpu`` dirties ``factor`` times faster for ``duration``: its ring
        overflows again and again."""

        kind: Literal["ring-overflow-storm"]
        at: float = Field(ge=0)
        cpu: int = Field(ge=0)
        duration: float = Field(gt=0)
        factor: float = Field(default=20.0, gt=1)

    class LateFault(_Strict):
        """The throttle period that would begin at ``at`` begins ``delay`` s late."""

        kind: Literal["late-throttle-period"]
        at: float = Field(ge=0)
        delay: float = Field(gt=0)

    class MeasureFault(_Strict):
        """Dirty-ring measurements read zero or garbage for ``duration``."""

        kind: Literal["bad-measurement"]
        at: float = Field(ge=0)
        duration: float = Field(gt=0)
        value: Literal["zero", "garbage"]

    class InternalErrorFault(_Strict):
        kind: Literal["kvm-internal-error"]
        at: float = Field(ge=0)
        cpu: int = Field(ge=0)

    class StreamFault(_Strict):
        """The outgoing migration stream, from ``after`` s into the migration or
        from byte ``offset``: ``slow`` (to ``bandwidth`` bytes/s), ``stall`` (for
        ``duration`` s; without: until cancelled), ``cut``, ``corrupt``; in the
        process's ``migration``-th outgoing migration (1: the first), or ``each``."""

        kind: Literal["migration-stream"]
        action: Literal["slow", "stall", "cut", "corrupt"]
        migration: int | Literal["each"] = "each"
        after: float | None = Field(default=None, ge=0)
        offset: int | None = Field(default=None, ge=0)
        bandwidth: int | None = Field(default=None, gt=0)
        duration: float | None = Field(default=None, gt=0)

        @field_validator("migration", mode="before")
        @classmethod
        def _which(cls, value: Any) -> Any:
            if value == "each" or (
                isinstance(value, int) and not isinstance(value, bool) and value >= 1
            ):
                return value
            raise ValueError(
                f"{value!r}: expected the number of an outgoing migration of the process "
                "(1: the first) or 'each'"
            )

        @model_validator(mode="after")
        def _when(self) -> StreamFault:
            if (self.after is None) == (self.offset is None):
                raise ValueError("give either after (seconds) or offset (bytes)")
            if self.action == "slow" and self.bandwidth is None:
                raise ValueError("slow needs a bandwidth (bytes/s)")
            if self.action != "slow" and self.bandwidth is not None:
                raise ValueError("only slow takes a bandwidth")
            if self.action != "stall" and self.duration is not None:
                raise ValueError("only stall takes a duration")
            return self

    class RefuseFault(_Strict):
        """This machine, as a migration destination, refuses the incoming stream."""

        kind: Literal["destination-refuse"]
        message: str = "the destination refused the migration"

    Fault = StormFault | LateFault | MeasureFault | InternalErrorFault | StreamFault | RefuseFault  # noqa: N806

    class Scenario(_Strict):
        description: str = ""
        vcpus: list[VcpuTimeline] = Field(default_factory=list)
        events: list[Event] = Field(default_factory=list)
        faults: list[Annotated[Fault, Field(discriminator="kind")]] = Field(default_factory=list)

    return Scenario


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario and where it came from."""

    path: str
    model: Any
    #: the line of each entry (("faults", 2) -> 17)
    lines: dict[tuple[Any, ...], int]

    def line(self, *path: Any) -> int | None:
        return _find_line(self.lines, path)


_LOADED: dict[str, LoadedScenario] = {}


def load_scenario(path: str) -> LoadedScenario:
    """Read and validate ``path`` (once per process); ScenarioError with FILE:LINE on
    any problem."""
    found = _LOADED.get(path)
    if found is None:
        found = _LOADED[path] = _load(path)
    return found


def _load(path: str) -> LoadedScenario:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_scenario(path, text)


def parse_scenario(path: str, text: str) -> LoadedScenario:
    """Validate ``text``, a scenario in the format ``path``'s suffix names (``path``
    is what the messages call it); ScenarioError with FILE:LINE on any problem."""
    suffix = Path(path).suffix.lower()
    if suffix in (".yaml", ".yml"):
        data, lines = _read_yaml(path, text)
    elif suffix == ".toml":
        data, lines = _read_toml(path, text)
    else:
        raise ScenarioError(f"{path}: a scenario is a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: a scenario is a table of vcpus, events and faults")
    from pydantic import ValidationError

    try:
        model = _models().model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _find_line(lines, loc)
            where = f"{path}:{line}" if line is not None else path
            problems.append(f"{where}: {_dotted(loc)}: {err['msg']}")
        raise ScenarioError("\n".join(problems)) from None
    return LoadedScenario(path, model, lines)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top)"


def _find_line(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of ``loc`` or of its nearest enclosing entry (union tags in pydantic's
    locations are skipped)."""
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        # a discriminated union puts the tag into the location: drop it and retry
        for i, part in enumerate(path):
            if isinstance(part, str) and i and isinstance(path[i - 1], int):
                shorter = path[:i] + path[i + 1 :]
                if shorter in lines:
                    return lines[shorter]
        path = path[:-1]
    return lines.get((), 1)


def _read_toml(path: str, text: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"\(at line (\d+), column \d+\)", str(e))
        line = found.group(1) if found else "1"
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise ScenarioError(f"{path}:{line}: {message}") from None
    return data, _toml_lines(text)


def _toml_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Where each table, array-of-tables entry and key is (enough for messages; inline
    tables point at the line of the key that holds them, then at the nth ``{``)."""
    lines: dict[tuple[Any, ...], int] = {(): 1}
    counts: dict[tuple[Any, ...], int] = {}
    current: tuple[Any, ...] = ()
    inline: tuple[tuple[Any, ...], int] | None = None

    def resolve(names: list[str]) -> tuple[Any, ...]:
        out: tuple[Any, ...] = ()
        for name in names:
            out += (name,)
            if out in counts:
                out += (counts[out],)
        return out

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if '"' not in raw else raw.strip()
        if not line:
            continue
        header = re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", line)
        if header:
            names = [n.strip().strip('"') for n in header.group(1).split(".")]
            table = (*resolve(names[:-1]), names[-1])
            counts[table] = counts.get(table, -1) + 1
            current = (*table, counts[table])
            lines[current] = number
            inline = None
            continue
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = resolve([n.strip().strip('"') for n in header.group(1).split(".")])
            lines[current] = number
            inline = None
            continue
        key = re.match(r'^"?([A-Za-z0-9_\-]+)"?\s*=', line)
        if key:
            where = (*current, key.group(1))
            lines[where] = number
            inline = (where, 0) if "[" in line[key.end() :] else None
            if inline is not None:
                for _ in range(line.count("{")):
                    where_n = (*inline[0], inline[1])
                    lines[where_n] = number
                    inline = (inline[0], inline[1] + 1)
            continue
        if inline is not None:
            for _ in range(line.count("{")):
                lines[(*inline[0], inline[1])] = number
                inline = (inline[0], inline[1] + 1)
    return lines


def _read_yaml(path: str, text: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError(f"{path}:{line}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{path}: {e}") from None
    lines: dict[tuple[Any, ...], int] = {(): 1}

    def walk(n: Any, at: tuple[Any, ...]) -> None:
        lines[at] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                lines[(*at, key.value)] = key.start_mark.line + 1
                walk(value, (*at, key.value))
                lines[(*at, key.value)] = key.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*at, i))

    if node is not None:
        walk(node, ())
    return data, lines


def scenario_workloads(scenario: LoadedScenario, nr_vcpus: int) -> list[Any]:
    """``--workload`` options that give the scenario's vCPUs their working sets (every
    vCPU that ever writes is a writer from the start; its first phase is applied at 0)."""
    from qmpdl.sizes import parse_size
    from qmpdl.workload import Workload, WorkloadOption

    out = []
    for timeline in scenario.model.vcpus:
        first, last = cpu_range(str(timeline.cpus), nr_vcpus)
        phases = timeline.phases
        kinds = {p.kind for p in phases}
        kind = "write" if "write" in kinds else ("read" if "read" in kinds else "idle")
        rate = next((p.rate for p in phases if p.rate is not None and p.kind == kind), None)
        wss = phases[0].wss
        fields: dict[str, Any] = {"kind": kind}
        if rate is not None:
            fields["rate"] = rate
        if wss is not None:
            fields["wss"] = parse_size(str(wss))
        out.append(WorkloadOption(first=first, last=last, workload=Workload(**fields)))
    return out


def cpu_range(text: str, nr_vcpus: int) -> tuple[int | None, int | None]:
    if text == "all":
        return None, None
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)
