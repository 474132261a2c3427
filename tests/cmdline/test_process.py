"""The process model: ``-daemonize`` and ``-pidfile`` as QEMU 7.2's, on qmpdl and (``-m
qemu``) on the real binary, which must behave the same way for the same texts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen
from typing import IO

import pytest

from tests.cmdline.runner import ROOT, qmpdl_argv

QEMU = ["qemu-system-x86_64"]
BASE = ["-machine", "none", "-nodefaults", "-display", "none"]


@pytest.fixture(params=["qmpdl", "qemu"])
def program(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "qemu":
        from tests.conftest import need_qemu

        need_qemu()
        return QEMU
    return qmpdl_argv()


def launch(program: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run to completion (with ``-daemonize``: until the launching process exits)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*program, *BASE, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def prog_name(program: list[str]) -> str:
    return "qemu-system-x86_64" if program == QEMU else "qmpdl"


def wait_for_sigterm_handling(pid: int, timeout: float = 60.0) -> None:
    """Until ``pid`` catches or blocks SIGTERM.  QEMU greets from its monitor's I/O
    thread, which may run before the main thread installs the SIGTERM handler: a SIGTERM
    right after the greeting can still meet the default action (seen under load)."""
    bit = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return  # gone already
        fields = dict(line.partition(":")[::2] for line in status.splitlines())
        if fields["State"].strip().startswith("Z"):
            return
        if (int(fields["SigBlk"], 16) | int(fields["SigCgt"], 16)) & bit:
            return
        assert time.monotonic() < deadline, f"{pid} does not handle SIGTERM"
        time.sleep(0.01)


def stop(pid: int, timeout: float = 30.0) -> None:
    wait_for_sigterm_handling(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            stop(pid)


def greets(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        return sock.recv(4096).startswith(b'{"QMP"')


def test_daemonize_returns_once_the_monitor_listens(
    program: list[str], tmp_path: Path, daemons: list[int]
) -> None:
    sock, pidfile = tmp_path / "qmp.sock", tmp_path / "vm.pid"
    result = launch(
        program, "-qmp", f"unix:{sock},server=on,wait=off", "-pidfile", str(pidfile), "-daemonize"
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    text = pidfile.read_text()
    assert text.endswith("\n") and text.strip().isdigit()
    pid = int(text)
    daemons.append(pid)
    assert (pidfile.stat().st_mode & 0o777) == 0o600
    assert greets(sock)
    # a new session, stdio on /dev/null, in /
    assert os.getsid(pid) != os.getsid(0)
    assert {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (0, 1, 2)} == {"/dev/null"}
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    # the pid file is locked: a second one cannot take it
    second = launch(program, "-pidfile", str(pidfile), "-daemonize")
    assert second.returncode == 1
    assert second.stderr == (
        f"{prog_name(program)}: cannot create PID file: Cannot lock pid file: "
        "Resource temporarily unavailable\n"
    )
    assert pidfile.read_text() == text
    # and it goes away with the process
    stop(pid)
    daemons.remove(pid)
    assert not pidfile.exists() and not sock.exists()


@pytest.mark.parametrize("daemonize", [False, True], ids=["foreground", "daemonize"])
def test_pidfile_that_cannot_be_created(
    program: list[str], tmp_path: Path, daemonize: bool
) -> None:
    extra = ["-daemonize"] if daemonize else []
    result = launch(program, "-pidfile", str(tmp_path / "none" / "x.pid"), *extra)
    assert result.returncode == 1
    assert result.stderr == (
        f"{prog_name(program)}: cannot create PID file: Could not create "
        f"'{tmp_path}/none/x.pid': No such file or directory\n"
    )
    result = launch(program, "-pidfile", str(tmp_path), *extra)
    assert result.returncode == 1
    assert result.stderr == (
        f"{prog_name(program)}: cannot create PID file: Could not create "
        f"'{tmp_path}': Is a directory\n"
    )


def test_daemonize_fails_when_a_device_cannot_open(program: list[str], tmp_path: Path) -> None:
    """The daemon's error reaches the launcher's stderr; the launcher exits 1 and the
    pid file the daemon wrote is gone."""
    pidfile = tmp_path / "vm.pid"
    option = f"socket,id=c,path={tmp_path}/none/c.sock,server=on,wait=off"
    result = launch(program, "-pidfile", str(pidfile), "-daemonize", "-chardev", option)
    assert result.returncode == 1
    assert result.stderr == (
        f"{prog_name(program)}: -chardev {option}: Failed to bind socket to "
        f"{tmp_path}/none/c.sock: No such file or directory\n"
    )
    assert not pidfile.exists()


@pytest.mark.parametrize("option", [["-qmp", "stdio"], ["-chardev", "stdio,id=s"]])
def test_daemonize_and_stdio(program: list[str], option: list[str]) -> None:
    result = launch(program, "-daemonize", *option)
    assert result.returncode == 1
    assert result.stderr == (
        f"{prog_name(program)}: {' '.join(option)}: cannot use stdio with -daemonize\n"
    )


@contextlib.contextmanager
def serving(program: list[str], sock: Path, stderr: IO[bytes] | int) -> Iterator[Popen[bytes]]:
    """``program`` with a monitor on ``sock``, once it greets and handles SIGTERM;
    killed at the end if still running."""
    proc = subprocess.Popen(
        [*program, *BASE, "-qmp", f"unix:{sock},server=on,wait=off"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert greets(sock)
        wait_for_sigterm_handling(proc.pid)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_names_its_sender(program: list[str], tmp_path: Path) -> None:
    with (
        open(tmp_path / "stderr", "wb") as err,
        serving(program, tmp_path / "qmp.sock", err) as proc,
    ):
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
    name = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert (tmp_path / "stderr").read_text() == (
        f"{prog_name(program)}: terminating on signal 15 from pid {os.getpid()} ({name})\n"
    )


def test_sigterm_when_stderr_is_gone(program: list[str], tmp_path: Path) -> None:
    """The launcher died and took the read end of stderr with it: the "terminating on
    signal" line cannot be written, and the process still exits 0 and cleans up (QEMU
    ignores SIGPIPE and the write's error)."""
    sock = tmp_path / "qmp.sock"
    with serving(program, sock, subprocess.PIPE) as proc:
        assert proc.stderr is not None
        proc.stderr.close()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not sock.exists()


def test_what_sigkill_leaves_is_taken_over(
    program: list[str], tmp_path: Path, daemons: list[int]
) -> None:
    """After ``kill -9`` the pid file and the monitor's socket stay behind (nothing runs
    at exit), but the next start takes both over: the lock died with the process and a
    stale socket path is unlinked before binding, as QEMU does."""
    sock, pidfile = tmp_path / "qmp.sock", tmp_path / "vm.pid"
    args = ["-qmp", f"unix:{sock},server=on,wait=off", "-pidfile", str(pidfile), "-daemonize"]
    first = launch(program, *args)
    assert (first.returncode, first.stderr) == (0, "")
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pidfile.exists() and sock.exists()
    second = launch(program, *args)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    new = int(pidfile.read_text())
    daemons.append(new)
    assert new != pid
    assert greets(sock)
    stop(new)
    daemons.remove(new)
    assert not pidfile.exists() and not sock.exists()


def test_a_wait_cut_short_is_no_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait that returns something other than a termination signal (CPython 3.11's
    ``sigtimedwait`` once returned an uninitialised siginfo, which ended qmpdl at
    start-up with "terminating on signal 496851840") is no termination signal; the
    wake-up of ``remove`` ends the thread."""
    import asyncio
    from types import SimpleNamespace

    from qmpdl.server import signals

    loop = asyncio.new_event_loop()
    calls: list[tuple[int, int]] = []
    waiter = signals.TerminationSignals(loop, lambda signum, pid: calls.append((signum, pid)))
    answers = [
        SimpleNamespace(si_signo=496851840, si_code=0, si_pid=0),
        SimpleNamespace(si_signo=signals._WAKE, si_code=-6, si_pid=1),  # not stopping yet
        SimpleNamespace(si_signo=signal.SIGTERM, si_code=0, si_pid=7),
    ]

    def sigwaitinfo(sigset: object) -> SimpleNamespace:
        if answers:
            return answers.pop(0)
        waiter._stop.set()
        return SimpleNamespace(si_signo=signals._WAKE, si_code=-6, si_pid=1)

    monkeypatch.setattr(signal, "sigwaitinfo", sigwaitinfo)
    waiter._bh_wait_for_signals()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    assert calls == [(signal.SIGTERM, 7)]
