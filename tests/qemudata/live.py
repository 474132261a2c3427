"""Asking a QEMU or qmpdl process a list of requests (the live comparisons)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.rawqmp import RawQMP


def answers(
    argv: Sequence[str], requests: Sequence[dict[str, Any] | str], workdir: Path | None = None
) -> list[str]:
    """Start ``argv`` with a QMP socket, negotiate, and return the reply line (events
    skipped) to each request (a dict is sent as JSON, a str as it is)."""
    with ManagedProcess(workdir=workdir) as proc:
        sock = str(proc.dir / "qmp.sock")
        proc.spawn([*argv, "-qmp", f"unix:{sock},server=on,wait=off"])
        proc.wait_for_path(sock, 30)
        with RawQMP(sock, timeout=60) as conn:
            conn.negotiate()
            out = []
            for request in requests:
                data = request if isinstance(request, str) else json.dumps(request)
                out.append(conn.command(data.encode()).decode())
            return out
