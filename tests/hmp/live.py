"""Run the sessions of :mod:`tests.hmp.sessions` against real QEMU, next to qmpdl's monitor.

For each HMP step qmpdl's :func:`~qmpdl.hmp.execute` runs first with a caller that sends
queries to the same live QEMU and answers state-changing commands from the step's
``respond``, and with QEMU's guest memory (read with ``memsave``) for ``x``/``xp``; then
QEMU runs the line itself.  If the queries answer differently afterwards (a rate moved),
the step is tried again.  The result records QEMU's output, the calls qmpdl made with
their replies, the memory it read (``reads``) and, where it is not QEMU's initial one,
the memory dump format remembered before the step (``dump_defaults``): what the golden
file keeps.  Each session's qmpdl monitor keeps one :class:`~qmpdl.hmp.DumpDefaults`
from step to step, as QEMU keeps one per process.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qmpdl.errors import QMPError
from qmpdl.hmp import HMP_COMMANDS, DumpDefaults, execute
from qmpdl.hmp.cchar import to_i64
from qmpdl.hmp.help import help_line
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.profile import get_profile
from qmpdl.tools.qemu import ORACLES, QemuProcess
from qmpdl.tools.rawqmp import RawQMP

#: The QEMU versions recorded (each with the qmpdl profile of the same name).
VERSIONS = list(ORACLES)
_ATTEMPTS = 5


def golden_path(version: str) -> Path:
    return Path(__file__).with_name(f"golden-qemu-{version}.json")


def load_golden(version: str = "7.2") -> dict[str, Any]:
    """The checked-in recordings of QEMU ``version``."""
    data: dict[str, Any] = json.loads(golden_path(version).read_text(encoding="utf-8"))
    return data


def served_entries() -> list[str]:
    """Every line ``help`` or ``info`` may print for a served command, once (a command
    defined per QEMU version, as ``migrate_set_parameter`` is, may print the same line
    in several versions)."""
    lines = [help_line(cmd) for cmd in HMP_COMMANDS]
    for cmd in HMP_COMMANDS:
        lines += [help_line(sub, [cmd.name]) for sub in cmd.sub_table]
    return list(dict.fromkeys(line.replace("\n", "\r\n") for line in lines))


def subset_of(ours: str, qemu: str) -> bool:
    """True when ``ours`` is QEMU's listing restricted to the commands qmpdl serves.

    Each of our entries must start a line of QEMU's output, entries must appear in the
    same order, and ours must consist of nothing else.
    """
    position = 0
    rest = ours
    qemu = "\r\n" + qemu
    while rest:
        entry = next((e for e in served_entries() if rest.startswith(e)), None)
        if entry is None:
            return False
        found = qemu.find("\r\n" + entry, position)
        if found < 0:
            return False
        position = found + len(entry)
        rest = rest[len(entry) :]
    return True


def outputs_match(step: dict[str, Any], ours: str, qemu: str) -> bool:
    """Equality, or the subset relation for ``subset`` steps."""
    return subset_of(ours, qemu) if step.get("subset") else ours == qemu


class _Connection:
    """Blocking JSON requests over a raw QMP socket."""

    def __init__(self, path: str) -> None:
        self.raw = RawQMP(path)
        self.raw.negotiate()

    def request(self, request: JsonObject) -> JsonObject:
        line = self.raw.command(json.dumps(request).encode("utf-8"))
        reply = json.loads(line)
        assert isinstance(reply, dict)
        return reply

    def close(self) -> None:
        self.raw.close()


@dataclass
class _Proxy:
    """The QMP caller qmpdl's monitor gets during a recorded step."""

    conn: _Connection
    respond: JsonObject
    calls: list[JsonObject] = field(default_factory=list)

    def __call__(self, name: str, arguments: JsonObject) -> JsonValue:
        entry: JsonObject = {"execute": name, "arguments": arguments}
        if name.startswith("query-"):
            request: JsonObject = {"execute": name}
            if arguments:
                request["arguments"] = arguments
            reply = self.conn.request(request)
        else:
            reply = self.respond
        self.calls.append(entry | reply)
        error = reply.get("error")
        if isinstance(error, dict):
            desc = error.get("desc")
            assert isinstance(desc, str) and error.get("class") == "GenericError"
            raise QMPError(desc)
        return reply["return"]

    def replay_queries(self) -> list[JsonObject]:
        """Ask the recorded queries again."""
        again = []
        for call in self.calls:
            name = call["execute"]
            assert isinstance(name, str)
            if name.startswith("query-"):
                again.append(self.conn.request({"execute": name}))
        return again


@dataclass
class _Memory:
    """The guest memory qmpdl's monitor reads during a recorded step: QEMU's.

    ``memsave`` reads virtual memory, which under ``-S`` (real mode, no paging) is the
    physical memory too, and fails when any byte of the range is unmapped; the readable
    start of a range is then found by bisection.
    """

    conn: _Connection
    workdir: Path
    cpu_index: int | None
    reads: list[JsonObject] = field(default_factory=list)

    def __call__(self, addr: int, size: int) -> bytes:
        data = self._readable(addr, size)
        self.reads.append({"addr": addr, "size": size, "data": data.hex()})
        return data

    def _memsave(self, addr: int, size: int) -> bytes | None:
        path = self.workdir / "memsave.bin"
        arguments: JsonObject = {"val": to_i64(addr), "size": size, "filename": str(path)}
        if self.cpu_index is not None:
            arguments["cpu-index"] = self.cpu_index
        reply = self.conn.request({"execute": "memsave", "arguments": arguments})
        return None if "error" in reply else path.read_bytes()

    def _readable(self, addr: int, size: int) -> bytes:
        data = self._memsave(addr, size)
        if data is not None:
            return data
        best, low, high = b"", 0, size - 1
        while low < high:
            middle = (low + high + 1) // 2
            found = self._memsave(addr, middle)
            if found is None:
                high = middle - 1
            else:
                best, low = found, middle
        return best


@dataclass
class SessionRun:
    """What one session produced: the recorded steps and every disagreement."""

    name: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    #: the memory dump format qmpdl's monitor remembers from step to step
    dump_defaults: DumpDefaults = field(default_factory=DumpDefaults)


def _hmp_step(
    conn: _Connection, step: dict[str, Any], run: SessionRun, workdir: Path | None, version: str
) -> None:
    respond: JsonObject = step.get("respond", {"return": {}})
    by_version = respond.get("by_version")
    if isinstance(by_version, dict):
        chosen = by_version[version]
        assert isinstance(chosen, dict)
        respond = chosen
    cpu_index = step.get("cpu_index")
    request: JsonObject = {
        "execute": "human-monitor-command",
        "arguments": {"command-line": step["hmp"]},
    }
    if cpu_index is not None:
        request["arguments"] = {"command-line": step["hmp"], "cpu-index": cpu_index}
    before = asdict(run.dump_defaults)
    for _attempt in range(_ATTEMPTS):
        proxy = _Proxy(conn, respond)
        memory = None if workdir is None else _Memory(conn, workdir, cpu_index)
        run.dump_defaults = DumpDefaults(**before)
        ours = execute(
            step["hmp"],
            profile=get_profile(version),
            qmp=proxy,
            cpu_index=cpu_index,
            memory=memory,
            dump_defaults=run.dump_defaults,
        )
        queries = [c for c in proxy.calls if str(c["execute"]).startswith("query-")]
        assert not queries or len(queries) == len(proxy.calls), "queries mixed with changes"
        reply = conn.request(request)
        if queries and proxy.replay_queries() != [
            {k: v for k, v in q.items() if k in ("return", "error")} for q in queries
        ]:
            continue
        break
    qemu = reply.get("return")
    assert isinstance(qemu, str), f"{step['hmp']!r}: {reply}"
    recorded: dict[str, Any] = {k: step[k] for k in ("hmp", "cpu_index", "subset") if k in step}
    if before != asdict(DumpDefaults()):
        recorded["dump_defaults"] = before
    recorded["calls"] = proxy.calls
    if memory is not None and memory.reads:
        recorded["reads"] = memory.reads
    run.steps.append(recorded | {"output": qemu})
    if not outputs_match(step, ours, qemu):
        run.mismatches.append(f"{run.name}: {step['hmp']!r}: qmpdl {ours!r} != QEMU {qemu!r}")


def _wait_status(conn: _Connection, status: str, timeout: float = 120.0) -> None:
    """Poll until QEMU's dirty rate measurement has ``status`` (a generous deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        info = conn.request({"execute": "query-dirty-rate"})["return"]
        assert isinstance(info, dict)
        if info["status"] == status:
            return
        assert time.monotonic() < deadline, f"the measurement never got {status!r}: {info}"
        time.sleep(0.01)


def run_session(session: dict[str, Any], version: str = "7.2") -> SessionRun:
    """Start a fresh QEMU ``version`` with the session's machine and run its steps."""
    run = SessionRun(session["name"])
    with QemuProcess(session["args"], version=version) as qemu:
        conn = _Connection(qemu.socket_path)
        workdir = qemu.workdir if session.get("cpu", True) else None
        try:
            time.sleep(session["boot_wait"])
            for step in session["steps"]:
                if "sleep" in step:
                    time.sleep(step["sleep"])
                    run.steps.append(step)
                elif "wait" in step:
                    _wait_status(conn, step["wait"])
                    run.steps.append(step)
                elif "qmp" in step:
                    reply = conn.request(step["qmp"])
                    run.steps.append(step | {"reply": reply})
                else:
                    _hmp_step(conn, step, run, workdir, version)
        finally:
            conn.close()
    return run


def qemu_version(version: str = "7.2") -> JsonObject:
    """``query-version`` of QEMU ``version``."""
    with QemuProcess(version=version) as qemu:
        conn = _Connection(qemu.socket_path)
        try:
            reply = conn.request({"execute": "query-version"})
        finally:
            conn.close()
    answer = reply["return"]
    assert isinstance(answer, dict)
    return answer
