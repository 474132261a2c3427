"""Start a qmpdl process (for tests, examples and benchmarks)."""

from __future__ import annotations

import sys
from pathlib import Path

from qmpdl.tools.process import ManagedProcess


class QmpdlProcess(ManagedProcess):
    """``python -m qmpdl`` with one QMP unix socket (plus whatever ``args`` add).

    ``args`` are the machine options (``-smp``, ``-accel``, ``--workload``, ...).  The
    socket is created in the scratch directory unless ``socket_path`` is given;
    ``monitor=False`` leaves all monitor options to ``args``.  On exit the process is
    asked to stop with SIGTERM unless it already has.
    """

    def __init__(
        self,
        args: list[str] | None = None,
        *,
        socket_path: str | None = None,
        monitor: bool = True,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(workdir=workdir)
        self.socket_path = socket_path or str(self.dir / "qmp.sock")
        argv = [sys.executable, "-m", "qmpdl"]
        if monitor:
            argv += ["-qmp", f"unix:{self.socket_path},server=on,wait=off"]
        self.spawn([*argv, *(args or [])], env)
        if monitor:
            self.wait_for_path(self.socket_path, timeout)
