"""Helpers shared by the protocol and client tests: servers, raw exchanges, deadlines.

Everything here talks to real sockets.  A *server* is either qmpdl (``python -m qmpdl``)
or the oracle, real QEMU 7.2; both are addressed by the path (or host/port) of a QMP
socket, so one exchange can be run against each and the replies compared byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import QemuProcess, qemu_binary, settle
from qmpdl.tools.rawqmp import RawQMP
from tests.conftest import need_qemu

#: qmpdl answering as QEMU 7.2 with one vCPU and the dirty ring on.
QMPDL_ARGS = ["-smp", "1", "-accel", "sim,dirty-ring-size=4096", "--qemu-version", "7.2"]
#: The oracle when no vCPU matters (no guest at all; query-cpus-fast is empty).
QEMU_NONE_ARGS = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "none"]
#: The oracle when a vCPU matters (same shape as qmpdl's -smp 1).
QEMU_PC_ARGS = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "pc", "-smp", "1", "-m", "128"]

GREETING_72 = (
    b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, '
    b'"package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}'
)
NEGOTIATE = b'{"execute": "qmp_capabilities"}'
NEGOTIATE_OOB = b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}'
OK = b'{"return": {}}'
#: Sent at the end of every exchange: its reply must be the very next line.
SENTINEL = b'{"execute": "end-of-exchange", "id": "end"}'
SENTINEL_REPLY_HEAD = b'{"id": "end", "error": {"class": "CommandNotFound", "desc": '

Address = str | tuple[str, int]


class Server(NamedTuple):
    """A running server under test: ``kind`` is "qmpdl" or "qemu"."""

    kind: str
    address: str


# ---------------------------------------------------------------------------- time


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# ---------------------------------------------------------------------------- lines

_SECONDS = re.compile(rb'"seconds": \d+')
_MICROSECONDS = re.compile(rb'"microseconds": \d+')


def normalise(line: bytes) -> bytes:
    """``line`` with event timestamps replaced by zeros (works on pretty lines too)."""
    return _MICROSECONDS.sub(b'"microseconds": 0', _SECONDS.sub(b'"seconds": 0', line))


def event_seconds(line: bytes) -> int:
    """The ``seconds`` of an event line's timestamp."""
    found = _SECONDS.search(line)
    assert found is not None, line
    return int(found.group(0).split(b":")[1])


def assert_recent_timestamp(line: bytes, slack: float = 120.0) -> None:
    """Events carry the host's wall clock."""
    assert abs(event_seconds(line) - time.time()) < slack, line


def is_event(line: bytes) -> bool:
    return line.startswith(b'{"timestamp": ')


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


# ---------------------------------------------------------------------------- exchanges


@dataclass(frozen=True)
class Step:
    """Bytes to send and the reply lines (without ``\\r\\n``) they must produce."""

    send: bytes
    expect: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, send: bytes, *expect: bytes) -> Step:
        return cls(send, tuple(expect))


@dataclass(frozen=True)
class Exchange:
    """A conversation on a fresh connection, checked line by line.

    After the last step :data:`SENTINEL` is sent: its reply must be the next line, which
    proves that no step produced more lines than expected.
    """

    name: str
    steps: tuple[Step, ...]
    #: send ``qmp_capabilities`` (and expect ``{"return": {}}``) before the steps
    negotiate: bool = True
    #: events are compared after :func:`normalise`
    timestamps: bool = False

    def expected(self) -> list[tuple[bytes, list[bytes]]]:
        return [(step.send, [line + b"\r\n" for line in step.expect]) for step in self.steps]


def run_exchange(
    address: Address, exchange: Exchange, timeout: float = 5.0
) -> list[tuple[bytes, list[bytes]]]:
    """What the server at ``address`` answers to each step of ``exchange``.

    Reads exactly as many lines per step as the step expects: a missing reply ends the
    transcript (marked), an extra one shows up at the next step or at the sentinel.
    """
    with RawQMP(address, timeout=timeout) as conn:
        greeting = conn.read_line()
        assert greeting == GREETING_72 + b"\r\n"
        if exchange.negotiate:
            conn.send(NEGOTIATE)
            assert conn.read_line() == OK + b"\r\n"
        transcript: list[tuple[bytes, list[bytes]]] = []
        for step in exchange.steps:
            conn.send(step.send)
            lines: list[bytes] = []
            transcript.append((step.send, lines))
            for _ in step.expect:
                try:
                    line = conn.read_line()
                except TimeoutError:
                    lines.append(b"<no reply within the deadline>")
                    return transcript
                lines.append(normalise(line) if exchange.timestamps else line)
        conn.send(SENTINEL)
        last = conn.read_line()
        if not last.startswith(SENTINEL_REPLY_HEAD):
            transcript.append((b"<extra output before the sentinel's reply>", [last]))
        return transcript


# ---------------------------------------------------------------------------- processes


def qmpdl_stderr_clean(proc: QmpdlProcess) -> None:
    err = proc.stderr()
    assert not has_traceback(err), err


def stop_qmpdl(proc: QmpdlProcess) -> None:
    """SIGTERM; qmpdl must exit 0 without a traceback."""
    status = proc.terminate()
    assert status == 0, proc.stderr()
    qmpdl_stderr_clean(proc)


@contextlib.contextmanager
def qmpdl_server(args: Sequence[str] = QMPDL_ARGS) -> Iterator[QmpdlProcess]:
    """A qmpdl process with one QMP socket; on exit it must stop cleanly."""
    with QmpdlProcess(list(args)) as proc:
        yield proc
        stop_qmpdl(proc)


@contextlib.contextmanager
def qemu_server(args: Sequence[str] = QEMU_NONE_ARGS) -> Iterator[QemuProcess]:
    """Real QEMU 7.2 with one QMP socket (skips, or fails under QMPDL_REQUIRE_QEMU=1)."""
    need_qemu()
    with QemuProcess(list(args)) as proc:
        yield proc


#: Any command (qmpdl with its own monitor options, or QEMU) in a scratch directory.
Spawned = ManagedProcess


def qmpdl_argv(*args: str, machine: Sequence[str] = QMPDL_ARGS) -> list[str]:
    """``python -m qmpdl`` with the default machine (7.2, one vCPU, dirty ring) and ``args``
    (which carry the monitor options)."""
    return [sys.executable, "-m", "qmpdl", *machine, *args]


def qemu_argv(*args: str, machine: Sequence[str] = QEMU_NONE_ARGS) -> list[str]:
    """The oracle's command line (no QMP socket unless ``args`` add one)."""
    need_qemu()
    binary = qemu_binary()
    assert binary is not None
    return [binary, *machine, "-nographic", "-nodefaults", *args]


def spawn(
    kind: str,
    *monitor_args: str,
    qmpdl_machine: Sequence[str] = QMPDL_ARGS,
    qemu_machine: Sequence[str] = QEMU_NONE_ARGS,
    cwd: Path | None = None,
) -> Spawned:
    """qmpdl (``kind`` "qmpdl") or the oracle ("qemu") with these monitor options only."""
    if kind == "qmpdl":
        return Spawned(qmpdl_argv(*monitor_args, machine=qmpdl_machine), workdir=cwd)
    return Spawned(qemu_argv(*monitor_args, machine=qemu_machine), workdir=cwd)


def wait_for_path(path: str | Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait for a server's socket file; fail early if the process died."""

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode} before creating {path}")
        return os.path.exists(path)

    wait_until(ready, f"socket {path}", timeout)


def monitors_ready(kind: str, proc: Spawned, *addresses: Address) -> None:
    """Wait for the monitors of a server started by :func:`spawn`; QEMU's are also
    settled (see :func:`qmpdl.tools.qemu.settle`: its start-up races are QEMU's, not
    what a test of a running monitor is about; qmpdl must not have them)."""
    for address in addresses:
        if isinstance(address, str):
            wait_for_path(address, proc.proc)
        if kind == "qemu":
            settle(address)


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on (yet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def connect_tcp(port: int, timeout: float = 60.0) -> RawQMP:
    """Connect to a TCP monitor, retrying until it listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return RawQMP(("127.0.0.1", port), timeout=timeout)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def need_tool(name: str) -> str:
    """Path of an external tool; skip without it (fail under QMPDL_REQUIRE_QEMU=1,
    since .ci/run installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("QMPDL_REQUIRE_QEMU", "") not in ("", "0"):
            pytest.fail(f"{name} is not installed (QMPDL_REQUIRE_QEMU=1)")
        pytest.skip(f"{name} is not installed")
    return path


def read_message(conn: RawQMP, pretty: bool, timeout: float | None = None) -> bytes:
    """One whole message: a line, or for pretty monitors the lines up to the closing
    brace at column 0."""
    message = conn.read_line(timeout)
    if pretty:
        while message != b"}\r\n" and not message.endswith(b"\n}\r\n"):
            message += conn.read_line(timeout)
    return message
