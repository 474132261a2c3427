"""A program in a real terminal: tmux runs it, ``send-keys`` types, ``capture-pane``
reads the screen."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence

import pytest


def need_tmux() -> None:
    """Skip without tmux, unless CI (QMPDL_REQUIRE_QEMU=1: run-tests installs it)."""
    if shutil.which("tmux") is None:
        if os.environ.get("QMPDL_REQUIRE_QEMU", "") not in ("", "0"):
            pytest.fail("tmux is not installed (QMPDL_REQUIRE_QEMU=1)")
        pytest.skip("tmux is not installed")


class Tmux:
    """One detached tmux session (its own server socket) running ``argv``."""

    def __init__(self, argv: Sequence[str], *, width: int = 130, height: int = 32) -> None:
        need_tmux()
        self.name = f"qmpdl-{uuid.uuid4().hex[:8]}"
        self.socket = f"qmpdl-test-{self.name}"
        command = "exec " + " ".join(shlex.quote(a) for a in argv)
        # faulthandler: a hung program dumps its threads on SIGABRT (see :meth:`dump`)
        env = {**os.environ, "TERM": "xterm-256color", "PYTHONFAULTHANDLER": "1"}
        self._tmux(
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(width),
            "-y",
            str(height),
            command,
            env=env,
        )
        # Keep the pane when the program exits, to read its last screen and status.
        self._tmux("set-option", "-t", self.name, "remain-on-exit", "on")

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        run = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )
        if run.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {run.stderr.strip()}")
        return run.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)

    def exit_status(self) -> int | None:
        """The program's exit status once it has ended, else None."""
        out = self._tmux(
            "display-message",
            "-p",
            "-t",
            self.name,
            "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}",
        ).strip()
        dead, status, killed_by = out.split(":")
        if dead != "1":
            return None
        return int(status) if status else -int(killed_by or 0)

    def dump(self) -> str:
        """Make a hung program dump its threads (SIGABRT) and return the screen."""
        pid = int(self._tmux("display-message", "-p", "-t", self.name, "#{pane_pid}"))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGABRT)
        time.sleep(1)
        return self._tmux("capture-pane", "-p", "-t", self.name, "-S", "-300")

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        """The first screen ``check`` accepts; generous deadlines only, never speed."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{what}: not on screen within {timeout} s:\n{screen}")

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False
        )


_ROW = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+.*?\s(\S+)\s+(\S+)\s*$")


def rows(screen: str) -> dict[int, dict[str, str]]:
    """The vCPU rows of qmpdl-top's table: cpu -> rate, source, limit, penalty, full."""
    out = {}
    for line in screen.splitlines():
        m = _ROW.match(line)
        if m and m[3] in ("calc", "limit", "-"):
            out[int(m[1])] = {
                "rate": m[2],
                "source": m[3],
                "limit": m[4],
                "penalty": m[5],
                "full": m[6],
            }
    return out
