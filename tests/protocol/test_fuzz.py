"""Fuzzing the protocol: in-process with hypothesis, then over a socket.

In process, :class:`MonitorSession` and :func:`dispatch` are driven like the server
drives them (parse, run out-of-band requests at once, dispatch in-band ones one at a
time, resume), with a fake command runner.  Random and mutated byte streams, split at
random points, must never raise, must do work bounded by the input, and every reply
must be one ``\\r\\n``-terminated ASCII line holding a JSON object of the right shape.
After a ``\\x01`` resync any valid request is answered.  Splitting the stream differently
must not change the replies.

Over the socket, fewer examples check that a running qmpdl survives the same kind of
input and still answers; and against real QEMU 7.2 that both answer identically.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qjson import JsonNull, ParseFailure, encode_message
from qmpdl.qmp.dispatch import CommandSet, dispatch, dispatch_now
from qmpdl.qmp.session import MonitorSession
from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.qemu import QemuProcess
from qmpdl.tools.rawqmp import RawQMP
from tests.protocol.harness import GREETING_72, NEGOTIATE, NEGOTIATE_OOB

GREETING: JsonObject = json.loads(GREETING_72)
COMMANDS = CommandSet(
    {
        "qmp_capabilities": False,
        "query-kvm": False,
        "query-status": False,
        "query-yank": True,
        "fail": False,
    }
)
NEGOTIATION_COMMANDS = CommandSet({"qmp_capabilities": False})
RESYNC = b'\x01{"execute": "query-kvm", "id": "resync"}'

#: Requests that do not change the machine (the over-the-socket corpus too).
VALID = [
    NEGOTIATE,
    NEGOTIATE_OOB,
    b'{"execute": "query-kvm", "id": 1}',
    b'{"execute": "query-status"}',
    b"{'execute': 'query-yank', 'id': {'a': [1, 2.5, null, true]}}",
    b'{"exec-oob": "query-yank", "id": "o"}',
    b'{"exec-oob": "query-status"}',
    b'{"execute": "no-such-cmd", "id": "\\u00e9\\ud83d\\ude00"}',
    b'{"execute": "query-kvm", "arguments": {"x": [1, {"y": "z"}]}}',
    b'{"execute": "query-kvm", "exec-oob": "query-yank"}',
    b'{"id": 7}',
    b"[1, 'two', {\"three\": -3e-3}]",
    b"42 ",
    b"null ",
]
TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b'"',
    b"'",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\x01",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\r\n",
    b" ",
    b"\t",
    b"tru",
    b"TRUE",
    b"null",
    b"-",
    b"1e",
    b"01",
    b"9" * 25,
    b"1e999",
    b"\x00",
    b"\x7f",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        byte = draw(st.integers(0, 255))
        if op == "insert":
            data.insert(where, byte)
        elif op == "truncate":
            del data[where:]
        elif where < len(data):
            if op == "delete":
                del data[where]
            else:
                data[where] = byte
    return bytes(data)


#: Valid requests twice as likely as each kind of garbage.
FRAGMENT = st.one_of(
    st.sampled_from(VALID),
    st.sampled_from(VALID),
    st.sampled_from(TOKENS),
    st.binary(max_size=8),
    mutated(),
)


def stream(*prefixes: bytes) -> st.SearchStrategy[bytes]:
    """One of ``prefixes`` (mostly a negotiation, so that commands get to run), then
    fragments."""
    return st.builds(
        lambda prefix, fragments: prefix + b"".join(fragments),
        st.sampled_from(prefixes),
        st.lists(FRAGMENT, max_size=16),
    )


STREAM = stream(b"", NEGOTIATE, NEGOTIATE_OOB)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def finish(coro: Coroutine[Any, Any, JsonObject]) -> JsonObject:
    """Run a coroutine that never waits (the fake runner never does)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: JsonObject = stop.value
        return result
    coro.close()
    raise AssertionError("dispatch waited for something")


class Monitor:
    """The server's loop around one session, without sockets."""

    def __init__(self, pretty: bool = False) -> None:
        self.session = MonitorSession(GREETING, oob_offered=True, pretty=pretty)
        self.replies: list[JsonObject] = []
        self.wire: list[bytes] = []
        self.fed = 0
        self.steps = 0
        self.oob_ever = False

    def run(self, command: str, arguments: JsonObject) -> JsonValue:
        if command == "qmp_capabilities":
            if self.session.negotiated:
                raise QMPError(
                    "Capabilities negotiation is already complete, command ignored",
                    "CommandNotFound",
                )
            enable = arguments.get("enable", [])
            oob = isinstance(enable, list) and "oob" in enable
            self.session.negotiate(enable_oob=oob)
            self.oob_ever |= oob
            return {}
        if command == "fail":
            raise QMPError("it failed")
        for name in arguments:
            raise QMPError(f"Parameter '{name}' is unexpected")
        return {"ok": command}

    async def run_async(self, command: str, arguments: JsonObject) -> JsonValue:
        return self.run(command, arguments)

    @property
    def commands(self) -> CommandSet:
        return COMMANDS if self.session.negotiated else NEGOTIATION_COMMANDS

    def _emit(self, reply: JsonObject) -> None:
        self.replies.append(reply)
        self.wire.append(self.session.encode(reply))

    def feed(self, data: bytes) -> None:
        self.fed += len(data)
        self.session.receive_data(data)
        while True:
            # bounded work: every round answers a request, which took input bytes
            self.steps += 1
            assert self.steps <= 2 * self.fed + 4, "more rounds than input bytes"
            for request in self.session.pump():
                self._emit(
                    dispatch_now(
                        request.value,
                        commands=self.commands,
                        negotiating=not self.session.negotiated,
                        oob_enabled=self.session.oob_enabled,
                        run=self.run,
                    )
                )
            queued = self.session.pop_in_band()
            if queued is None:
                return
            value: JsonValue | JsonNull | ParseFailure = (
                queued.error if queued.error is not None else queued.value
            )
            self._emit(
                finish(
                    dispatch(
                        value,
                        commands=self.commands,
                        negotiating=not self.session.negotiated,
                        oob_enabled=self.session.oob_enabled,
                        run=self.run_async,
                    )
                )
            )
            self.session.in_band_done(queued)


def loads(line: bytes) -> Any:
    """JSON as QEMU prints it: like JSON, plus bare ``inf``/``nan`` numbers."""
    out, in_string, i = bytearray(), False, 0
    while i < len(line):
        c = line[i : i + 1]
        if in_string:
            out += c
            if c == b"\\":
                out += line[i + 1 : i + 2]
                i += 1
            elif c == b'"':
                in_string = False
        elif c == b'"':
            in_string = True
            out += c
        else:
            for bare, js in (
                (b"-inf", b"-Infinity"),
                (b"inf", b"Infinity"),
                (b"-nan", b"NaN"),
                (b"nan", b"NaN"),
            ):
                if line.startswith(bare, i):
                    out += js
                    i += len(bare) - 1
                    break
            else:
                out += c
        i += 1
    return json.loads(bytes(out))


def check_reply_line(line: bytes) -> Any:
    assert line.endswith(b"\r\n"), line
    assert b"\n" not in line[:-2] and b"\r" not in line[:-2], line
    assert line.isascii(), line
    message = loads(line)
    assert isinstance(message, dict), line
    return message


def check_reply(message: Any) -> None:
    keys = set(message) - {"id"}
    assert keys in ({"return"}, {"error"}), message
    if "error" in message:
        error = message["error"]
        assert set(error) == {"class", "desc"}, message
        assert error["class"] in ("GenericError", "CommandNotFound"), message
        assert isinstance(error["desc"], str) and error["desc"], message


# ---------------------------------------------------------------------------- in process


@settings(max_examples=500, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(data=STREAM, cuts=st.lists(st.integers(0, 400), max_size=6), pretty=st.booleans())
def test_session_survives_anything(data: bytes, cuts: list[int], pretty: bool) -> None:
    monitor = Monitor(pretty)
    for chunk in chunks(data, cuts):
        monitor.feed(chunk)
    monitor.feed(RESYNC)
    for reply, wire in zip(monitor.replies, monitor.wire, strict=True):
        compact = encode_message(reply, False)
        assert check_reply_line(compact) == loads(compact)
        check_reply(loads(compact))
        if pretty:
            assert wire.endswith(b"\r\n") and b"\n" not in wire.replace(b"\r\n", b"")
            assert loads(wire.replace(b"\r\n", b"") + b"\r\n") == loads(compact)
        else:
            assert wire == compact
    # the resync makes the monitor answer a valid request
    assert monitor.replies, "no reply at all"
    assert monitor.replies[-1].get("id") == "resync"
    assert not monitor.session.has_in_band and not monitor.session.suspended


@settings(max_examples=300, deadline=2000)
@given(data=STREAM, cuts=st.lists(st.integers(0, 400), min_size=1, max_size=8))
def test_splitting_does_not_change_replies(data: bytes, cuts: list[int]) -> None:
    whole, split = Monitor(), Monitor()
    whole.feed(data + RESYNC)
    for chunk in chunks(data + RESYNC, cuts):
        split.feed(chunk)
    if whole.oob_ever or split.oob_ever:
        # with OOB on, an out-of-band reply may overtake differently; the set is equal
        key = lambda m: json.dumps(m, sort_keys=True, default=str)  # noqa: E731
        assert sorted(map(key, whole.replies)) == sorted(map(key, split.replies))
    else:
        assert whole.wire == split.wire


def test_driver_sees_requests() -> None:
    """The fake monitor answers like qmpdl (so the properties above are not vacuous)."""
    monitor = Monitor()
    monitor.feed(b'{"execute": "query-kvm"}' + NEGOTIATE + b'{"execute": "fail", "id": 1}{]')
    assert monitor.wire == [
        b'{"error": {"class": "CommandNotFound", "desc": '
        b"\"Expecting capabilities negotiation with 'qmp_capabilities'\"}}\r\n",
        b'{"return": {}}\r\n',
        b'{"id": 1, "error": {"class": "GenericError", "desc": "it failed"}}\r\n',
        b'{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}\r\n',
    ]


# ---------------------------------------------------------------------------- over the socket


def session_over_socket(address: str, data: bytes, cuts: list[int]) -> list[bytes]:
    """Every line the server sends for ``data`` + the resync, up to the resync's reply."""
    with RawQMP(address, timeout=60) as conn:
        assert conn.read_line() == GREETING_72 + b"\r\n"
        for chunk in chunks(data, cuts):
            conn.send(chunk)
        conn.send(RESYNC)
        lines: list[bytes] = []
        while not lines or b'"id": "resync"' not in lines[-1]:
            lines.append(conn.read_line())
        return lines


#: The socket corpus leaves OOB off, so the order of replies is deterministic.
PLAIN_STREAM = stream(b"", NEGOTIATE).filter(lambda data: b"enable" not in data)


@settings(max_examples=100, deadline=None)
@given(data=PLAIN_STREAM, cuts=st.lists(st.integers(0, 400), max_size=4))
def test_qmpdl_survives_fuzz(qmpdl_proc: QmpdlProcess, data: bytes, cuts: list[int]) -> None:
    for line in session_over_socket(qmpdl_proc.socket_path, data, cuts):
        check_reply(check_reply_line(line))
    assert qmpdl_proc.proc.poll() is None


def test_qmpdl_still_answers_after_fuzz(qmpdl_proc: QmpdlProcess) -> None:
    with RawQMP(qmpdl_proc.socket_path) as conn:
        conn.negotiate()
        assert conn.command(b'{"execute": "query-status"}') == (
            b'{"return": {"status": "running", "singlestep": false, "running": true}}\r\n'
        )


@pytest.mark.qemu
@settings(max_examples=100, deadline=None)
@given(data=PLAIN_STREAM)
def test_fuzz_differential(qmpdl_proc: QmpdlProcess, qemu_proc: QemuProcess, data: bytes) -> None:
    """Random input, same bytes from qmpdl as from QEMU."""
    ours = session_over_socket(qmpdl_proc.socket_path, data, [])
    theirs = session_over_socket(qemu_proc.socket_path, data, [])
    assert ours == theirs
