"""Connection semantics, held against QEMU 7.2: the listen backlog, who is accepted when,
and what the next client gets after one vanished with work in flight.

QEMU's socket chardev listens with a backlog of 1 and accepts only while its monitor
has no client, so with one client served the kernel queues two more connections and
refuses the rest (a unix ``connect()`` fails at once with EAGAIN; a TCP handshake does
not complete).  QEMU writes replies to the monitor, not to a connection: the reply of a
command that was running when its client hung up goes to the client connected after
it.  What is not deterministic in QEMU (and so not tested): whether requests a client
sent just before hanging up are read at all (QEMU drops the connection as soon as it
sees the hang-up, possibly before reading them).
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qmpdl.tools.rawqmp import RawQMP
from tests.protocol.harness import (
    GREETING_72,
    NEGOTIATE,
    NEGOTIATE_OOB,
    OK,
    Server,
    free_tcp_port,
    monitors_ready,
    spawn,
)

GREETING = GREETING_72 + b"\r\n"
CAPS_B = b'{"execute": "qmp_capabilities", "id": "B"}'
OK_B = b'{"return": {}, "id": "B"}\r\n'
#: The attempts a test gets to catch a command in flight (see test_reply_of_...).
ATTEMPTS = 3


@pytest.fixture
def socks() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="qmpdl-") as tmp:
        yield Path(tmp)


def greet(conn: RawQMP, negotiate: bytes = NEGOTIATE) -> None:
    assert conn.read_line() == GREETING
    conn.send(negotiate)
    assert conn.read_line() == OK + b"\r\n"


def nonblocking_connect(address: str | tuple[str, int]) -> tuple[socket.socket, str]:
    """A non-blocking connect(); the errno name of its outcome ("ok" when connected)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex(address)
    return sock, "ok" if code == 0 else errno.errorcode[code]


def established(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError as e:
        assert e.errno == errno.ENOTCONN
        return False
    return True


def test_unix_backlog(kind: str, socks: Path) -> None:
    """With one client served, two more connect()s succeed and the rest fail at once
    with EAGAIN; the queued ones are greeted in turn as the clients before them leave."""
    path = str(socks / "m.sock")
    with spawn(kind, "-qmp", f"unix:{path},server=on,wait=off") as proc:
        monitors_ready(kind, proc, path)
        first = RawQMP(path)
        greet(first)
        attempts = [nonblocking_connect(path) for _ in range(5)]
        try:
            assert [outcome for _, outcome in attempts] == ["ok", "ok"] + ["EAGAIN"] * 3
            second, third = (RawQMP.adopt(sock) for sock, _ in attempts[:2])
            # queued, not accepted: nobody greets them while the first is served
            with pytest.raises(TimeoutError):
                second.read_line(0.2)
            first.send(b'{"execute": "query-kvm", "id": 1}')
            assert first.read_line() == (
                b'{"return": {"enabled": true, "present": true}, "id": 1}\r\n'
            )
            first.close()
            greet(second)
            # the kernel queue has room again: one more is taken, the one after is not
            fourth, outcome = nonblocking_connect(path)
            attempts.append((fourth, outcome))
            assert outcome == "ok"
            assert nonblocking_connect(path)[1] == "EAGAIN"
            second.close()
            greet(third)
            third.close()
            greet(RawQMP.adopt(fourth))
        finally:
            for sock, _ in attempts:
                sock.close()
            first.close()


def test_tcp_backlog(kind: str) -> None:
    """The same queue on TCP: two handshakes complete, the others' SYNs are dropped
    (connect() stays in progress) while the monitor has a client."""
    port = free_tcp_port()
    address = ("127.0.0.1", port)
    with spawn(kind, "-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off") as proc:
        monitors_ready(kind, proc, address)
        first = RawQMP(address)
        greet(first)
        attempts = [nonblocking_connect(address) for _ in range(4)]
        try:
            assert [outcome for _, outcome in attempts] == ["EINPROGRESS"] * 4
            socks = [sock for sock, _ in attempts]
            # the first two complete their handshake (generous deadline: a busy host)
            deadline = time.monotonic() + 10
            while not all(established(s) for s in socks[:2]):
                assert time.monotonic() < deadline, "queued handshakes did not complete"
                select.select([], socks[:2], [], 0.1)
            # the others cannot while the queue is full and nobody accepts
            assert [established(s) for s in socks] == [True, True, False, False]
            second = RawQMP.adopt(socks[0])
            with pytest.raises(TimeoutError):
                second.read_line(0.2)
            first.close()
            greet(second)
        finally:
            for sock in socks:
                sock.close()
            first.close()


@pytest.mark.parametrize("oob", [False, True], ids=["no-oob", "oob"])
def test_reply_of_a_command_outliving_its_client(server: Server, oob: bool) -> None:
    """A client hangs up while its blocking command runs (cancel-vcpu-dirty-limit waits
    for the throttle period to end) with more requests queued behind it.  The next
    client is greeted, then gets the running command's reply, then its own; the queued
    requests are dropped."""
    for _ in range(ATTEMPTS):
        a = RawQMP(server.address)
        try:
            greet(a, NEGOTIATE_OOB if oob else NEGOTIATE)
            a.send(b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 100}}')
            assert a.read_line() == OK + b"\r\n"
            time.sleep(0.2)  # QEMU starts its throttle thread asynchronously
            b_sock, outcome = nonblocking_connect(server.address)
            assert outcome == "ok"  # queued behind a
            b = RawQMP.adopt(b_sock)
            a.send(
                b'{"execute": "cancel-vcpu-dirty-limit", "id": "A"}'
                + b'{"execute": "query-kvm", "id": "queued"}' * 5
            )
            time.sleep(0.05)  # let the cancel start (it lasts up to a period, 1 s)
            try:
                early = a.read_line(0.001)
            except TimeoutError:
                early = None
        finally:
            a.close()
        with b:
            if early is not None:  # the period ended before a left: not in flight
                assert early == b'{"return": {}, "id": "A"}\r\n'
                greet(b)
                continue
            b.send(CAPS_B)
            lines = [b.read_line()]
            while lines[-1] != OK_B:
                lines.append(b.read_line())
            if lines == [GREETING, OK_B]:
                continue  # the cancel ended between the check and the hang-up
            assert lines == [GREETING, b'{"return": {}, "id": "A"}\r\n', OK_B]
            return
    pytest.fail(f"no attempt of {ATTEMPTS} caught the command in flight")


def test_clients_that_leave_at_once_do_not_stop_the_monitor(server: Server) -> None:
    """Clients that hang up as soon as they are connected - before, while or after the
    monitor takes them: the monitor goes on accepting, the next client is greeted."""
    for i in range(300):
        sock, outcome = nonblocking_connect(server.address)
        if outcome == "EAGAIN":  # (the queue is full for a moment: the monitor is busy)
            time.sleep(0.01)
        if i % 3 == 0:
            with contextlib.suppress(OSError):
                sock.send(b'{"execute": "qmp_capabilities"}')
        sock.close()
    with RawQMP(server.address) as conn:
        greet(conn)
