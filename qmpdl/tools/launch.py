"""Start a qmpdl process (for tests, examples and benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType


class QmpdlProcess:
    """``python -m qmpdl`` with one QMP unix socket (plus whatever ``args`` add).

    ``args`` are the machine options (``-smp``, ``-accel``, ``--workload``, ...).  The
    socket is created in a fresh directory unless ``socket_path`` is given.  On exit
    the process is asked to quit with SIGTERM (it must exit 0) unless it already has.
    """

    def __init__(
        self,
        args: list[str] | None = None,
        *,
        socket_path: str | None = None,
        monitor: bool = True,
        timeout: float = 15.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if socket_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="qmpdl-")
            socket_path = str(Path(self._tmp.name) / "qmp.sock")
        self.socket_path = socket_path
        self.argv = [sys.executable, "-m", "qmpdl"]
        if monitor:
            self.argv += ["-qmp", f"unix:{socket_path},server=on,wait=off"]
        self.argv += list(args or [])
        self.stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr_file,
            env={**os.environ, **(env or {})},
        )
        if monitor:
            deadline = time.monotonic() + timeout
            while not os.path.exists(socket_path):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"qmpdl exited early: {self.stderr()}")
                if time.monotonic() > deadline:
                    self.kill()
                    raise TimeoutError(f"qmpdl did not create {socket_path}: {self.stderr()}")
                time.sleep(0.01)

    def stderr(self) -> str:
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> QmpdlProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.proc.poll() is None:
                self.terminate()
        finally:
            self.kill()
            self.stderr_file.close()
            if self._tmp is not None:
                self._tmp.cleanup()
