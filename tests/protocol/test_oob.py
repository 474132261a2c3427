"""Out-of-band execution and the request queue, in the manner of qmp-test's test_qmp_oob.

The in-band command that blocks is ``cancel-vcpu-dirty-limit`` right after
``set-vcpu-dirty-limit``: it waits (up to one 1 s period) for the throttle thread to
stop.  ``query-yank`` is the command that may run out of band.  Replies are matched by
their ids; each test runs against qmpdl and against real QEMU 7.2, with the same rules.

Whether the cancel really blocked is measured, not assumed: QEMU's throttle thread
starts asynchronously, and a cancel that beats it into its loop returns at once, so a
run in which the cancel came back within :data:`BLOCKED` seconds is repeated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from qmpdl.tools.rawqmp import RawQMP
from tests.protocol.harness import GREETING_72, NEGOTIATE, NEGOTIATE_OOB, OK, Server

#: A cancel that took at least this long was blocked while the rest was sent.
BLOCKED = 0.25
#: (a run finds the throttle period with less than BLOCKED left about one time in four)
ATTEMPTS = 10

SET_LIMIT = b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 100}}'


def cancel(id_: str) -> bytes:
    return b'{"execute": "cancel-vcpu-dirty-limit", "id": "%s"}' % id_.encode()


def quick(id_: str) -> bytes:
    return b'{"execute": "query-kvm", "id": "%s"}' % id_.encode()


def oob(id_: str) -> bytes:
    return b'{"exec-oob": "query-yank", "id": "%s"}' % id_.encode()


def reply_id(line: bytes) -> str:
    value = json.loads(line)["id"]
    assert isinstance(value, str)
    return value


def connect(server: Server, enable_oob: bool) -> Iterator[RawQMP]:
    with RawQMP(server.address) as c:
        assert c.read_line() == GREETING_72 + b"\r\n"
        c.send(NEGOTIATE_OOB if enable_oob else NEGOTIATE)
        assert c.read_line() == OK + b"\r\n"
        yield c


@pytest.fixture
def conn(server: Server) -> Iterator[RawQMP]:
    """A connection with OOB enabled."""
    yield from connect(server, enable_oob=True)


@pytest.fixture
def plain_conn(server: Server) -> Iterator[RawQMP]:
    """A connection negotiated without OOB."""
    yield from connect(server, enable_oob=False)


def run_blocked(conn: RawQMP, after_cancel: bytes, replies: int) -> list[bytes]:
    """Start the throttle thread, send a cancel (id ``B``) plus ``after_cancel`` in one
    write and return the ``1 + replies`` lines that follow, from a run where the cancel
    was seen to block."""
    for attempt in range(ATTEMPTS):
        conn.send(SET_LIMIT)
        assert conn.read_line() == OK + b"\r\n"
        # give QEMU's new throttle thread a moment longer on each retry
        time.sleep(0.05 * (attempt % 4))
        start = time.monotonic()
        conn.send(cancel("B") + after_cancel)
        lines: list[bytes] = []
        blocked_for = 0.0
        for _ in range(1 + replies):
            lines.append(conn.read_line())
            if reply_id(lines[-1]) == "B":
                blocked_for = time.monotonic() - start
        if blocked_for >= BLOCKED:
            return lines
    pytest.fail(f"cancel-vcpu-dirty-limit never blocked for {BLOCKED} s in {ATTEMPTS} runs")


@pytest.mark.parametrize("queued", [1, 7])
def test_oob_overtakes_blocked_in_band(conn: RawQMP, queued: int) -> None:
    """With up to 7 requests queued behind the blocked one the monitor keeps reading,
    so an OOB request is answered before all of them."""
    quicks = [f"q{i}" for i in range(queued)]
    lines = run_blocked(conn, b"".join(quick(q) for q in quicks) + oob("oob-1"), queued + 1)
    assert [reply_id(line) for line in lines] == ["oob-1", "B", *quicks]
    assert (
        lines[0] == b'{"return": [{"type": "chardev", "id": "compat_monitor0"}], "id": "oob-1"}\r\n'
    )
    assert lines[1] == b'{"return": {}, "id": "B"}\r\n'


def test_full_queue_suspends_the_monitor(conn: RawQMP) -> None:
    """Eight requests queued behind the blocked one fill the queue: the monitor stops
    reading, so the OOB request behind them waits for the blocked command."""
    quicks = [f"q{i}" for i in range(8)]
    lines = run_blocked(conn, b"".join(quick(q) for q in quicks) + oob("oob-1"), 9)
    ids = [reply_id(line) for line in lines]
    assert ids[0] == "B"
    assert [i for i in ids if i != "oob-1"] == ["B", *quicks]
    assert "oob-1" in ids


def test_malformed_in_band_fails_in_band(conn: RawQMP) -> None:
    lines = run_blocked(conn, b"{ 'id': 'err-2' }", 1)
    assert lines == [
        b'{"return": {}, "id": "B"}\r\n',
        b'{"id": "err-2", "error": {"class": "GenericError", '
        b'"desc": "QMP input lacks member \'execute\'"}}\r\n',
    ]


def test_without_oob_requests_are_strictly_in_order(plain_conn: RawQMP) -> None:
    """Without OOB the monitor reads nothing while a command runs, and exec-oob is
    just an unexpected member, answered in turn."""
    lines = run_blocked(plain_conn, oob("o") + quick("q"), 2)
    assert lines == [
        b'{"return": {}, "id": "B"}\r\n',
        b'{"id": "o", "error": {"class": "GenericError", '
        b'"desc": "QMP input member \'exec-oob\' is unexpected"}}\r\n',
        b'{"return": {"enabled": true, "present": true}, "id": "q"}\r\n',
    ]
