"""A child process for tests, tools and benchmarks: qmpdl or the QEMU oracle.

One place for the chores: a scratch directory, stderr captured to a file, waiting for a
socket file to appear (failing early if the process dies), and an exit that terminates,
waits, and kills what does not stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from qmpdl.closing import Closing


class ManagedProcess(Closing):
    """``argv`` running in a scratch directory (or ``workdir``) with stderr captured.

    Subclasses that need the directory for their command line (a socket path in it)
    pass ``argv=None`` and call :meth:`spawn` themselves.
    """

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        *,
        workdir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="qmpdl-")
            workdir = Path(self._tmp.name)
        self.dir = workdir
        self.stderr_path = workdir / f"stderr-{id(self)}"
        self.argv: list[str] = []
        if argv is not None:
            self.spawn(argv, env)

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, **env} if env else None,
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_path(self, path: str, timeout: float = 60.0) -> None:
        """Wait until ``path`` exists; raise if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.argv[0]} exited with {self.proc.returncode}: {self.stderr()}"
                )
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(f"{path} did not appear: {self.stderr()}")
            time.sleep(0.01)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        self.signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Stop the process if it still runs (SIGTERM, then SIGKILL) and clean up."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
