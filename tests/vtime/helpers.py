"""A qmpdl process for the virtual-time tests, and a QMP connection that keeps events."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP

VIRTUAL = ("-accel", "sim,dirty-ring-size=4096,clock=virtual", "--seed", "3")
SECOND = 1_000_000_000


class Vm:
    """One process and a negotiated connection; ``events`` collects what arrives."""

    def __init__(self, proc: ManagedProcess, conn: RawQMP) -> None:
        self.proc = proc
        self.conn = conn
        self.events: list[dict[str, Any]] = []

    def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        request: dict[str, Any] = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        self.conn.send(json.dumps(request).encode())
        while True:
            reply = json.loads(self.conn.read_line(60))
            if "event" in reply:
                self.events.append(reply)
                continue
            return dict(reply)

    def ok(self, name: str, **arguments: Any) -> Any:
        reply = self.call(name, **arguments)
        assert "return" in reply, reply
        return reply["return"]

    def step(self, seconds: float | None = None) -> int:
        if seconds is None:
            return int(self.ok("__com.qmpdl_clock-step")["time-ns"])
        return int(self.ok("__com.qmpdl_clock-step", ns=int(seconds * SECOND))["time-ns"])

    def now(self) -> int:
        return int(self.ok("__com.qmpdl_query-clock")["time-ns"])


@contextmanager
def vm(*options: str, workdir: Path | None = None, name: str = "qmp") -> Iterator[Vm]:
    with ManagedProcess(workdir=workdir) as proc:
        sock = str(Path(proc.dir) / f"{name}.sock")
        proc.spawn(
            [sys.executable, "-m", "qmpdl", "-qmp", f"unix:{sock},server=on,wait=off", *options]
        )
        proc.wait_for_path(sock, 60)
        with RawQMP(sock, timeout=60) as conn:
            conn.negotiate()
            yield Vm(proc, conn)
