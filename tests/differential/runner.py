"""Play many exchange scripts on one kind of server ("qemu" or "qmpdl") of one oracle
version (QEMU ``version``, or qmpdl answering as it), in parallel.

Scripts marked ``fresh`` get a process of their own.  The others are *stateless*: they
only negotiate, query and fail, so several of them share one process per target, one
connection after another (``SHARED_CHUNK`` scripts per process).  That a shared process
really ends in the state it started in is checked: before its first script and after its
last, a probe asks ``query-migrate``, ``query-status``, ``query-vcpu-dirty-limit`` and
``query-dirty-rate``,
and the answers must not have changed (:class:`StateLeakError` otherwise).

Jobs (one per process) run on a thread pool, longest first; the servers themselves do
the work, the threads mostly wait.  The assignment of scripts to processes depends only
on the corpus, so a run is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from qmpdl.tools.diff import normalized
from qmpdl.tools.exchange import Script, Transcript, run_script
from qmpdl.tools.normalize import normalize_line
from qmpdl.tools.rawqmp import RawQMP
from qmpdl.tools.targets import TARGETS, launch

#: Stateless scripts per shared process.
SHARED_CHUNK = 16
#: Processes running at the same time.
WORKERS = 6

_PROBE = (
    b'{"execute": "query-migrate"}',
    b'{"execute": "query-status"}',
    b'{"execute": "query-vcpu-dirty-limit"}',
    b'{"execute": "query-dirty-rate"}',
)


class StateLeakError(AssertionError):
    """A script that shares a process changed the machine."""


@dataclass(frozen=True)
class Job:
    """One process of ``target`` and the scripts played on it, in order."""

    target: str
    scripts: tuple[Script, ...]

    @property
    def shared(self) -> bool:
        return not (len(self.scripts) == 1 and self.scripts[0].fresh)

    def estimate(self) -> float:
        """Rough seconds the job takes (for scheduling only)."""
        total = 0.2
        for script in self.scripts:
            total += script.drain + 0.02 * len(script.steps)
            for step in script.steps:
                total += step.sleep or 0.0
                total += 1.0 if step.poll is not None else 0.0
                total += 0.5 if step.eof else 0.0
        return total


def plan(scripts: Iterable[Script]) -> list[Job]:
    """The jobs for ``scripts``: one per fresh script, shared chunks per target."""
    jobs: list[Job] = []
    shared: dict[str, list[Script]] = {}
    for script in scripts:
        if script.target not in TARGETS:
            raise ValueError(f"{script.name}: unknown target {script.target!r}")
        if script.fresh:
            jobs.append(Job(script.target, (script,)))
        else:
            shared.setdefault(script.target, []).append(script)
    for target, items in shared.items():
        count = math.ceil(len(items) / SHARED_CHUNK)
        size = math.ceil(len(items) / count)
        jobs += [Job(target, tuple(items[i : i + size])) for i in range(0, len(items), size)]
    return sorted(jobs, key=lambda job: -job.estimate())


def probe(sock: str) -> list[str]:
    """The machine state a stateless script must not change."""
    with RawQMP(sock, timeout=30) as conn:
        conn.negotiate()
        return [normalize_line(conn.command(request).decode("latin-1")) for request in _PROBE]


def run_job(kind: str, job: Job, version: str = "7.2") -> dict[str, Transcript]:
    """Start ``kind`` as the job's target and play its scripts, one connection each."""
    out: dict[str, Transcript] = {}
    with launch(kind, TARGETS[job.target], version=version) as ends:
        sock = ends.sock
        before = probe(sock) if job.shared else []
        for script in job.scripts:
            out[script.name] = run_script(sock, script, peer=ends.peer, variables=ends.variables)
        if job.shared:
            names = ", ".join(s.name for s in job.scripts)
            try:
                after = probe(sock)
            except (OSError, EOFError) as err:
                raise StateLeakError(f"{kind} {job.target}: gone ({err}) after {names}") from err
            if after != before:
                raise StateLeakError(f"{kind} {job.target}: {before} became {after} after {names}")
    return out


def play_all(
    kind: str,
    scripts: Sequence[Script],
    *,
    workers: int = WORKERS,
    progress: Callable[[str], None] | None = None,
    version: str = "7.2",
) -> dict[str, Transcript]:
    """Every script's transcript from ``kind``, keyed by script name (corpus order)."""
    names = [s.name for s in scripts]
    if len(set(names)) != len(names):
        raise ValueError("script names must be unique")
    results: dict[str, Transcript] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_job, kind, job, version) for job in plan(scripts)]
        for future in futures:
            done = future.result()
            results.update(done)
            if progress is not None:
                for name in done:
                    progress(name)
    return {name: results[name] for name in names}


def play_normalized(
    kind: str, scripts: Sequence[Script], *, workers: int = WORKERS, version: str = "7.2"
) -> dict[str, list[str]]:
    """Like :func:`play_all`, each transcript as normalised lines."""
    played = play_all(kind, scripts, workers=workers, version=version)
    return {name: normalized(t) for name, t in played.items()}
