"""Sockets and process life: TCP, several monitors, pretty output, one client per monitor,
``wait=on``, shutdown by ``quit`` and by signal, clients that vanish mid-command.

Tests that take a ``kind`` start their own server, qmpdl or real QEMU 7.2 with the same
monitor options, and hold both to the same rules; where the bytes do not depend on
timing the two transcripts must also be identical.
"""

from __future__ import annotations

import json
import os
import signal
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
    Spawned,
    connect_tcp,
    free_tcp_port,
    has_traceback,
    is_event,
    monitors_ready,
    normalise,
    read_message,
    spawn,
    wait_for_path,
    wait_until,
)

GREETING = GREETING_72 + b"\r\n"
STOP_EVENT = b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "STOP"}\r\n'
RESUME_EVENT = b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESUME"}\r\n'
#: How long a server gets to show that it does *not* send something.
QUIET = 0.3


@pytest.fixture
def socks() -> Iterator[Path]:
    """A short directory for socket files (unix paths are limited to 108 bytes, and
    pytest's tmp_path can be long)."""
    with tempfile.TemporaryDirectory(prefix="qmpdl-") as tmp:
        yield Path(tmp)


def read_greeting(conn: RawQMP, kind: str = "qmpdl", *, early: bool = False) -> None:
    line = conn.read_line()
    if early and kind == "qemu" and is_event(line):
        # QEMU's start-up race (see qmpdl.tools.qemu.settle): the RESUME of the
        # machine's start can reach a client that connected early, before the greeting.
        # qmpdl must not.
        assert json.loads(line)["event"] == "RESUME"
        line = conn.read_line()
    assert line == GREETING


def greet(
    conn: RawQMP, kind: str = "qmpdl", *, enable_oob: bool = False, early: bool = False
) -> None:
    read_greeting(conn, kind, early=early)
    conn.send(NEGOTIATE_OOB if enable_oob else NEGOTIATE)
    line = conn.read_line()
    if early and kind == "qemu" and line == GREETING:
        line = conn.read_line()  # QEMU's other start-up race: greeted twice
    assert line == OK + b"\r\n"


def silent(conn: RawQMP) -> bool:
    """True when nothing arrives within :data:`QUIET` seconds."""
    try:
        line = conn.read_line(QUIET)
    except TimeoutError:
        return True
    pytest.fail(f"unexpected output {line!r}")


def assert_clean_exit(proc: Spawned, kind: str) -> None:
    assert proc.wait(60) == 0, proc.stderr()
    assert not has_traceback(proc.stderr()), proc.stderr()
    if kind == "qmpdl":
        assert "Error" not in proc.stderr(), proc.stderr()


# ---------------------------------------------------------------------------- tcp


def test_tcp_monitor(kind: str) -> None:
    port = free_tcp_port()
    with spawn(kind, "-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off") as proc:
        monitors_ready(kind, proc, ("127.0.0.1", port))
        with connect_tcp(port) as conn:
            greet(conn, kind)
            conn.send(b'{"execute": "query-yank", "id": "y"}')
            assert conn.read_line() == (
                b'{"return": [{"type": "chardev", "id": "compat_monitor0"}], "id": "y"}\r\n'
            )
            conn.send(b'{"execute": "quit"}')
            assert json.loads(conn.read_line())["event"] == "SHUTDOWN"
            assert conn.read_line() == OK + b"\r\n"
        assert_clean_exit(proc, kind)


# ---------------------------------------------------------------------------- several monitors


def test_events_reach_every_negotiated_monitor(kind: str, socks: Path) -> None:
    a, b = socks / "a.sock", socks / "b.sock"
    port = free_tcp_port()
    with spawn(
        kind,
        "-qmp",
        f"unix:{a},server=on,wait=off",
        "-chardev",
        f"socket,id=mon-b,path={b},server=on,wait=off",
        "-mon",
        "chardev=mon-b,mode=control",
        "-qmp",
        f"tcp:127.0.0.1:{port},server=on,wait=off",
    ) as proc:
        monitors_ready(kind, proc, str(a), str(b), ("127.0.0.1", port))
        with RawQMP(str(a)) as ca, RawQMP(str(b)) as cb, connect_tcp(port) as cc:
            greet(ca, kind)
            greet(cb, kind)
            read_greeting(cc, kind)  # connected, not negotiated

            ca.send(b'{"execute": "query-yank"}')
            assert ca.read_line() == (
                b'{"return": [{"type": "chardev", "id": "compat_monitor0"}, '
                b'{"type": "chardev", "id": "mon-b"}, '
                b'{"type": "chardev", "id": "compat_monitor1"}]}\r\n'
            )
            ca.send(b'{"execute": "stop", "id": "a"}')
            assert normalise(ca.read_line()) == STOP_EVENT
            assert ca.read_line() == b'{"return": {}, "id": "a"}\r\n'
            assert normalise(cb.read_line()) == STOP_EVENT
            # the unnegotiated monitor got no event: its next line answers its request
            cc.send(b'{"execute": "query-status", "id": "c"}')
            assert cc.read_line() == (
                b'{"id": "c", "error": {"class": "CommandNotFound", '
                b'"desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n'
            )
            cc.send(NEGOTIATE)
            assert cc.read_line() == OK + b"\r\n"

            cb.send(b'{"execute": "cont", "id": "b"}')
            assert normalise(cb.read_line()) == RESUME_EVENT
            assert cb.read_line() == b'{"return": {}, "id": "b"}\r\n'
            for conn in (ca, cc):
                line = conn.read_line()
                assert normalise(line) == RESUME_EVENT
            # all three saw the same event
            assert silent(ca) and silent(cb) and silent(cc)


# ---------------------------------------------------------------------------- pretty


PRETTY_INPUT = (
    b'{"execute": "qmp_capabilities"}'
    b'{"execute": "query-status"}'
    b'{"execute": "query-yank", "id": [1, {"a": {}}]}'
    b'{"execute": "stop"}'
    b'{"execute": "nope"}'
    b'{"execute": "cont"}'
    b"{'execute': 'query-kvm', 'id': []}"
)

PRETTY_REPLIES = [
    b'{\r\n    "return": {\r\n    }\r\n}\r\n',
    b"{\r\n"
    b'    "return": {\r\n'
    b'        "status": "running",\r\n'
    b'        "singlestep": false,\r\n'
    b'        "running": true\r\n'
    b"    }\r\n"
    b"}\r\n",
    None,  # query-yank: depends on the monitor's chardev id
    b"{\r\n"
    b'    "timestamp": {\r\n'
    b'        "seconds": 0,\r\n'
    b'        "microseconds": 0\r\n'
    b"    },\r\n"
    b'    "event": "STOP"\r\n'
    b"}\r\n",
    b'{\r\n    "return": {\r\n    }\r\n}\r\n',
    b"{\r\n"
    b'    "error": {\r\n'
    b'        "class": "CommandNotFound",\r\n'
    b'        "desc": "The command nope has not been found"\r\n'
    b"    }\r\n"
    b"}\r\n",
    b'{\r\n    "timestamp": {\r\n        "seconds": 0,\r\n        "microseconds": 0\r\n'
    b'    },\r\n    "event": "RESUME"\r\n}\r\n',
    b'{\r\n    "return": {\r\n    }\r\n}\r\n',
    b"{\r\n"
    b'    "return": {\r\n'
    b'        "enabled": true,\r\n'
    b'        "present": true\r\n'
    b"    },\r\n"
    b'    "id": [\r\n'
    b"    ]\r\n"
    b"}\r\n",
]


def pretty_yank() -> bytes:
    return (
        b"{\r\n"
        b'    "return": [\r\n'
        b"        {\r\n"
        b'            "type": "chardev",\r\n'
        b'            "id": "compat_monitor0"\r\n'
        b"        },\r\n"
        b"        {\r\n"
        b'            "type": "chardev",\r\n'
        b'            "id": "pp"\r\n'
        b"        }\r\n"
        b"    ],\r\n"
        b'    "id": [\r\n'
        b"        1,\r\n"
        b"        {\r\n"
        b'            "a": {\r\n'
        b"            }\r\n"
        b"        }\r\n"
        b"    ]\r\n"
        b"}\r\n"
    )


def test_pretty_monitors(kind: str, socks: Path) -> None:
    """``-qmp-pretty`` and ``-mon pretty=on``: one key per line, CRLF on every line,
    four-space indent, QEMU's way of printing empty objects."""
    qp, pp = socks / "qp.sock", socks / "pp.sock"
    with spawn(
        kind,
        "-qmp-pretty",
        f"unix:{qp},server=on,wait=off",
        "-chardev",
        f"socket,id=pp,path={pp},server=on,wait=off",
        "-mon",
        "chardev=pp,mode=control,pretty=on",
    ) as proc:
        monitors_ready(kind, proc, str(qp), str(pp))
        for path in (qp, pp):
            with RawQMP(str(path)) as conn:
                greeting = read_message(conn, pretty=True)
                assert json.loads(greeting) == json.loads(GREETING)
                assert greeting.startswith(b'{\r\n    "QMP": {\r\n        "version": {\r\n')
                conn.send(PRETTY_INPUT)
                replies = [normalise(read_message(conn, pretty=True)) for _ in PRETTY_REPLIES]
                expected = [r if r is not None else pretty_yank() for r in PRETTY_REPLIES]
                assert replies == expected
                for reply in replies:
                    assert all(line.endswith(b"\r") for line in reply.split(b"\n")[:-1])


# ---------------------------------------------------------------------------- one client


def test_one_client_per_monitor(server: Server) -> None:
    first = RawQMP(server.address)
    try:
        greet(first)
        with RawQMP(server.address) as second, RawQMP(server.address) as third:
            # the others wait: no greeting while the first one is served; what they
            # send meanwhile is read once their turn comes
            third.send(b'{"execute": "query-kvm", "id": "early"}' + NEGOTIATE)
            first.send(b'{"execute": "query-kvm", "id": 1}')
            assert (
                first.read_line() == b'{"return": {"enabled": true, "present": true}, "id": 1}\r\n'
            )
            # events of the first session reach nobody else, now or later
            first.send(b'{"execute": "stop"}{"execute": "cont"}')
            assert [is_event(line) for line in first.read_lines(4)] == [True, False, True, False]
            assert silent(second) and silent(third)
            first.close()
            # ... the next one is served once the first leaves, from a clean state
            assert second.read_line() == GREETING
            second.send(b'{"execute": "query-kvm"}')
            assert second.read_line() == (
                b'{"error": {"class": "CommandNotFound", '
                b'"desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n'
            )
            second.send(NEGOTIATE)
            assert second.read_line() == OK + b"\r\n"
            assert silent(third)
            second.close()
            assert third.read_lines(3) == [
                GREETING,
                b'{"id": "early", "error": {"class": "CommandNotFound", '
                b'"desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n',
                OK + b"\r\n",
            ]
    finally:
        first.close()


# ---------------------------------------------------------------------------- wait=on


def test_wait_on_blocks_startup(kind: str, socks: Path) -> None:
    """``server=on,wait=on``: nothing is served until that monitor has a client (QEMU
    does not even create the monitors after it; qmpdl creates them but stays silent)."""
    a, b = socks / "a.sock", socks / "b.sock"
    with spawn(
        kind,
        "-qmp",
        f"unix:{a},server=on,wait=on",
        "-qmp",
        f"unix:{b},server=on,wait=off",
    ) as proc:
        wait_for_path(a, proc.proc)
        message = f"waiting for connection on: disconnected:unix:{a},server=on"
        wait_until(lambda: message in proc.stderr(), "the 'waiting for connection' message")
        early: RawQMP | None = None
        if os.path.exists(b):
            early = RawQMP(str(b))
            assert silent(early)
        try:
            with RawQMP(str(a)) as ca:
                greet(ca, kind, early=True)
                if early is None:
                    wait_for_path(b, proc.proc)
                    early = RawQMP(str(b))
                greet(early, kind, early=True)
                early.send(b'{"execute": "query-status"}')
                assert early.read_line() == (
                    b'{"return": {"status": "running", "singlestep": false, "running": true}}\r\n'
                )
        finally:
            if early is not None:
                early.close()


# ---------------------------------------------------------------------------- shutdown


def two_monitors(kind: str, socks: Path) -> tuple[Spawned, Path, Path]:
    socks.mkdir(exist_ok=True)
    a, b = socks / "a.sock", socks / "b.sock"
    proc = spawn(
        kind, "-qmp", f"unix:{a},server=on,wait=off", "-qmp", f"unix:{b},server=on,wait=off"
    )
    monitors_ready(kind, proc, str(a), str(b))
    return proc, a, b


def read_to_eof(conn: RawQMP) -> list[bytes]:
    lines: list[bytes] = []
    while True:
        try:
            lines.append(conn.read_line(60))
        except EOFError:
            return lines


def test_quit(kind: str, socks: Path) -> None:
    """SHUTDOWN goes to every negotiated monitor before quit's reply; then the
    connections close, the socket files go and the process exits 0."""
    proc, a, b = two_monitors(kind, socks)
    with proc, RawQMP(str(a)) as ca, RawQMP(str(b)) as cb:
        greet(ca, kind)
        greet(cb, kind, enable_oob=True)
        ca.send(b'{"execute": "quit", "id": "bye"}')
        shutdown = (
            b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "SHUTDOWN", '
            b'"data": {"guest": false, "reason": "host-qmp-quit"}}\r\n'
        )
        assert [normalise(line) for line in read_to_eof(ca)] == [
            shutdown,
            b'{"return": {}, "id": "bye"}\r\n',
        ]
        assert [normalise(line) for line in read_to_eof(cb)] == [shutdown]
        assert_clean_exit(proc, kind)
        assert not a.exists() and not b.exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal(kind: str, socks: Path, signum: int) -> None:
    proc, a, b = two_monitors(kind, socks)
    with proc, RawQMP(str(a)) as ca, RawQMP(str(b)) as cb:
        greet(ca, kind)
        read_greeting(cb, kind)  # never negotiated: gets no event
        proc.signal(signum)
        assert [normalise(line) for line in read_to_eof(ca)] == [
            b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "SHUTDOWN", '
            b'"data": {"guest": false, "reason": "host-signal"}}\r\n'
        ]
        assert read_to_eof(cb) == []
        assert_clean_exit(proc, kind)
        assert f"terminating on signal {int(signum)}" in proc.stderr()
        assert not a.exists() and not b.exists()


def test_signal_during_a_blocking_command(kind: str, socks: Path) -> None:
    """A signal while a command runs: SHUTDOWN at once, then the command still finishes
    and its reply goes out before the connection closes (QEMU's main loop only exits
    once the command returned)."""
    for attempt in range(8):  # (the cancel may end before the signal: then again)
        proc, a, _ = two_monitors(kind, socks / str(attempt))
        with proc, RawQMP(str(a)) as conn:
            greet(conn, kind)
            conn.send(b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 100}}')
            assert conn.read_line() == OK + b"\r\n"
            # QEMU's throttle thread starts asynchronously (see test_oob)
            time.sleep(0.05 + 0.1 * (attempt % 3))
            conn.send(b'{"execute": "cancel-vcpu-dirty-limit", "id": "B"}')
            # let the dispatcher take the cancel; whether it then really was still running
            # when the signal came is checked below (the reply comes after the event)
            time.sleep(0.1)
            proc.signal(signal.SIGTERM)
            lines = [normalise(line) for line in read_to_eof(conn)]
            assert_clean_exit(proc, kind)
        if lines[0] == b'{"return": {}, "id": "B"}\r\n':
            continue  # the cancel had returned before the signal: try again
        assert lines == [
            b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "SHUTDOWN", '
            b'"data": {"guest": false, "reason": "host-signal"}}\r\n',
            b'{"return": {}, "id": "B"}\r\n',
        ]
        return
    pytest.fail("the cancel never outlasted the signal")


# ---------------------------------------------------------------------------- vanishing clients


def reply_to(conn: RawQMP, id_: str) -> bytes:
    """The reply with this id, after any stale replies.

    QEMU writes the reply of a command that was still running when its client left to
    whoever is connected to the monitor when it completes (and so does qmpdl: see
    test_connections), so a new client may first get such replies: here only those of
    the vanished clients' id-less commands.
    """
    stale: list[bytes] = []
    while f'"id": "{id_}"'.encode() not in (line := conn.read_line()):
        stale.append(line)
    assert all(line == OK + b"\r\n" for line in stale), stale
    return line


def test_client_vanishes_mid_command(server: Server) -> None:
    """A client that leaves while its command blocks, while its request is half sent,
    or with a full queue, leaves a monitor that serves the next client normally."""
    set_limit = b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 100}, "id": "s"}'
    with RawQMP(server.address) as conn:
        greet(conn)
        conn.send(set_limit)
        assert reply_to(conn, "s") == b'{"return": {}, "id": "s"}\r\n'
        conn.send(b'{"execute": "cancel-vcpu-dirty-limit"}')
    with RawQMP(server.address) as conn:
        assert conn.read_line() == GREETING
        conn.send(NEGOTIATE_OOB[:-1] + b', "id": "n"}')
        assert reply_to(conn, "n") == b'{"return": {}, "id": "n"}\r\n'
        conn.send(set_limit)
        assert reply_to(conn, "s") == b'{"return": {}, "id": "s"}\r\n'
        conn.send(
            b'{"execute": "cancel-vcpu-dirty-limit"}'
            + b'{"execute": "query-kvm"}' * 12
            + b'{"execute": "query-st'
        )
    with RawQMP(server.address) as conn:
        assert conn.read_line() == GREETING
        # a fresh parser: the half-sent request of the last client is gone
        conn.send(b'{"execute": "qmp_capabilities", "id": "n"}{"execute": "query-kvm", "id": "k"}')
        assert reply_to(conn, "n") == b'{"return": {}, "id": "n"}\r\n'
        assert reply_to(conn, "k") == (
            b'{"return": {"enabled": true, "present": true}, "id": "k"}\r\n'
        )
        # (whether the vanished clients' cancels ran is a race in QEMU: a queued
        # request is dropped when its client goes)
        conn.send(b'{"execute": "cancel-vcpu-dirty-limit"}{"execute": "query-vcpu-dirty-limit"}')
        assert conn.read_lines(2) == [OK + b"\r\n", b'{"return": []}\r\n']


def test_events_are_lines(server: Server) -> None:
    """Events interleave with replies as whole lines."""
    with RawQMP(server.address) as conn:
        greet(conn)
        conn.send(b'{"execute": "stop"}{"execute": "cont"}{"execute": "query-kvm"}')
        lines = [conn.read_line() for _ in range(5)]
        assert [is_event(line) for line in lines] == [True, False, True, False, False]
