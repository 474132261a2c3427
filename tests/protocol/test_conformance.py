"""QMP protocol conformance, in the manner of QEMU's qmp-test (test_qmp_protocol), anew.

Every exchange runs on a fresh connection against qmpdl and against real QEMU 7.2, and
both must produce exactly the bytes written here (event timestamps zeroed), so qmpdl is
byte-identical to QEMU wherever the answer does not depend on timing or measurement.
Each malformed input is followed by proof that the monitor still works.
"""

from __future__ import annotations

import json

import pytest

from qmpdl.tools.rawqmp import RawQMP
from tests.protocol.harness import (
    GREETING_72,
    NEGOTIATE,
    NEGOTIATE_OOB,
    OK,
    Exchange,
    Server,
    Step,
    assert_recent_timestamp,
    run_exchange,
)


def err(desc: bytes, cls: bytes = b"GenericError", id_: bytes | None = None) -> bytes:
    """An error reply as QEMU writes it (``desc`` already JSON-escaped)."""
    body = b'"error": {"class": "' + cls + b'", "desc": "' + desc + b'"}'
    return b"{" + (b'"id": ' + id_ + b", " if id_ is not None else b"") + body + b"}"


def ret(value: bytes, id_: bytes | None = None) -> bytes:
    return b'{"return": ' + value + (b', "id": ' + id_ if id_ is not None else b"") + b"}"


def json_error(what: bytes) -> bytes:
    return err(b"JSON parse error, " + what)


NEGOTIATION_NEEDED = b"Expecting capabilities negotiation with 'qmp_capabilities'"
NO_SUCH = b'{"execute": "no-such-cmd"}'
NO_SUCH_REPLY = err(b"The command no-such-cmd has not been found", b"CommandNotFound")
STATUS_RUNNING = b'{"status": "running", "singlestep": false, "running": true}'
STATUS_PAUSED = b'{"status": "paused", "singlestep": false, "running": false}'
VERSION_72 = (
    b'{"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}'
)
KVM = b'{"enabled": true, "present": true}'
YANK = b'[{"type": "chardev", "id": "compat_monitor0"}]'
NOT_OBJECT = err(b"QMP input must be a JSON object")
LACKS_EXECUTE = err(b"QMP input lacks member 'execute'")


def malformed_steps(recovered: bytes) -> list[Step]:
    """qmp-test's malformed inputs, each followed by a command proving recovery."""
    probe = [Step.of(NO_SUCH, recovered)]
    return [
        # syntax error
        Step.of(b"{]\n", json_error(b"expecting value")),
        *probe,
        # impossible byte outside a string
        Step.of(b"{\xff", json_error(b"stray '\\uFFFD'")),
        *probe,
        # control character outside a string
        Step.of(b"{\x01", json_error(b"stray '\\u0001'")),
        *probe,
        # impossible byte inside a string
        Step.of(b"{'bad \xff", json_error(b"stray ''bad \\uFFFD'")),
        *probe,
        # raw newline inside a string
        Step.of(b"{'execute': 'nonexistent', 'id':'\n", json_error(b"stray ''\\n'")),
        *probe,
        # interpolation is not JSON
        Step.of(b"%p", json_error(b"stray '%'")),
        *probe,
        # not an object at all
        Step.of(b"null ", NOT_OBJECT),
        Step.of(b"[] ", NOT_OBJECT),
        Step.of(b'"str"', NOT_OBJECT),
        # no "execute"
        Step.of(b"{}", LACKS_EXECUTE),
        # "execute" is not a string
        Step.of(b"{ 'execute': true }", err(b"QMP input member 'execute' must be a string")),
        # "arguments" is not an object
        Step.of(
            b"{ 'execute': 'no-such-cmd', 'arguments': [] }",
            err(b"QMP input member 'arguments' must be an object"),
        ),
        # an extra member
        Step.of(
            b"{ 'execute': 'no-such-cmd', 'extra': true }",
            err(b"QMP input member 'extra' is unexpected"),
        ),
        *probe,
    ]


EXCHANGES = [
    Exchange("greeting", (), negotiate=False),
    Exchange(
        "before-negotiation",
        (
            Step.of(b"{ 'execute': 'query-version' }", err(NEGOTIATION_NEEDED, b"CommandNotFound")),
            Step.of(
                b'{"execute": "query-status", "id": "a"}',
                err(NEGOTIATION_NEEDED, b"CommandNotFound", b'"a"'),
            ),
            Step.of(NO_SUCH, err(NEGOTIATION_NEEDED, b"CommandNotFound")),
            # exec-oob is not a member before OOB is enabled
            Step.of(
                b'{"exec-oob": "query-yank", "id": 1}',
                err(b"QMP input member 'exec-oob' is unexpected", id_=b"1"),
            ),
            *malformed_steps(err(NEGOTIATION_NEEDED, b"CommandNotFound")),
            Step.of(b'{"execute": "qmp_capabilities", "id": "cap"}', ret(b"{}", b'"cap"')),
            # a repeated handshake
            Step.of(
                NEGOTIATE,
                err(
                    b"Capabilities negotiation is already complete, command ignored",
                    b"CommandNotFound",
                ),
            ),
            Step.of(b"{ 'execute': 'query-version' }", ret(VERSION_72)),
        ),
        negotiate=False,
    ),
    Exchange(
        "capabilities-arguments",
        (
            Step.of(
                b"{'execute': 'qmp_capabilities', 'arguments': {'enable': ['cap-does-not-exist']}}",
                err(b"Parameter 'null' does not accept value 'cap-does-not-exist'"),
            ),
            Step.of(
                b'{"execute": "qmp_capabilities", "arguments": {"enable": "oob"}}',
                err(b"Invalid parameter type for 'enable', expected: array"),
            ),
            Step.of(
                b'{"execute": "qmp_capabilities", "arguments": {"enable": [1]}}',
                err(b"Invalid parameter type for 'enable[0]', expected: string"),
            ),
            Step.of(
                b'{"execute": "qmp_capabilities", "arguments": {"enable": ["OOB"]}}',
                err(b"Parameter 'null' does not accept value 'OOB'"),
            ),
            Step.of(
                b'{"execute": "qmp_capabilities", "arguments": {"foo": 1}}',
                err(b"Parameter 'foo' is unexpected"),
            ),
            Step.of(
                b'{"execute": "qmp_capabilities", "arguments": null}',
                err(b"QMP input member 'arguments' must be an object"),
            ),
            # still negotiating after all those failures
            Step.of(b'{"execute": "query-kvm"}', err(NEGOTIATION_NEEDED, b"CommandNotFound")),
            Step.of(
                b'{"execute": "qmp_capabilities", "arguments": {"enable": []}, "id": 1.5}',
                ret(b"{}", b"1.5"),
            ),
            Step.of(b'{"execute": "query-kvm"}', ret(KVM)),
        ),
        negotiate=False,
    ),
    Exchange("malformed-after-negotiation", tuple(malformed_steps(NO_SUCH_REPLY))),
    Exchange(
        "id-echo",
        (
            Step.of(
                b"{ 'execute': 'query-status', 'id': 'cookie#1' }",
                ret(STATUS_RUNNING, b'"cookie#1"'),
            ),
            # the id of a failing command
            Step.of(
                b"{ 'execute': 'human-monitor-command', 'id': 2 }",
                err(b"Parameter 'command-line' is missing", id_=b"2"),
            ),
            Step.of(b'{"execute": "query-kvm", "id": null}', ret(KVM, b"null")),
            Step.of(
                b'{"execute": "query-kvm", "id": {"b": [1, {"c": null}], "a": "x"}}',
                # QEMU's QDict order, not the input order
                ret(KVM, b'{"a": "x", "b": [1, {"c": null}]}'),
            ),
            Step.of(b'{"execute": "query-kvm", "id": []}', ret(KVM, b"[]")),
            Step.of(b'{"execute": "query-kvm", "id": {}}', ret(KVM, b"{}")),
            Step.of(b'{"execute": "query-kvm", "id": true}', ret(KVM, b"true")),
            Step.of(b'{"execute": "query-kvm", "id": -0}', ret(KVM, b"0")),
            Step.of(b'{"execute": "query-kvm", "id": 1e3}', ret(KVM, b"1000")),
            Step.of(b'{"execute": "query-kvm", "id": 0.1}', ret(KVM, b"0.10000000000000001")),
            Step.of(
                b'{"execute": "query-kvm", "id": 9223372036854775808}',
                ret(KVM, b"9223372036854775808"),
            ),
            Step.of(
                b'{"execute": "query-kvm", "id": 18446744073709551616}',
                ret(KVM, b"1.8446744073709552e+19"),
            ),
            Step.of(
                b'{"execute": "query-kvm", "id": "\xc3\xa9\\u00e9\\ud83d\\ude00 \\/\\t\x7f"}',
                ret(KVM, b'"\\u00E9\\u00E9\\uD83D\\uDE00 /\\t\\u007F"'),
            ),
            # an id does not survive an error in the JSON layer
            Step.of(b'{"execute": "query-kvm", "id": 1, "id": 2}', json_error(b"duplicate key")),
            Step.of(b'{"id": "lonely"}', err(b"QMP input lacks member 'execute'", id_=b'"lonely"')),
            # a non-object request never has an id
            Step.of(b'[{"id": 3}]', NOT_OBJECT),
        ),
    ),
    Exchange(
        "framing",
        (
            # libvirt ends commands with CRLF, socat users with LF
            Step.of(b'{"execute": "query-kvm"}\r\n', ret(KVM)),
            Step.of(b'{"execute": "query-kvm"}\n', ret(KVM)),
            # whitespace between tokens, including CR and LF
            Step.of(b'\t{"execute"\t:\r\n"query-kvm" ,\n "id"\r:\n7}\r\n', ret(KVM, b"7")),
            # several requests in one write
            Step.of(
                b'{"execute": "query-kvm", "id": 1}{"execute": "query-status"}'
                b'{"execute": "no-such-cmd", "id": 3}',
                ret(KVM, b"1"),
                ret(STATUS_RUNNING),
                err(b"The command no-such-cmd has not been found", b"CommandNotFound", b"3"),
            ),
            # one request in several writes
            Step.of(b'{"exec'),
            Step.of(b'ute": "query-ver'),
            Step.of(b'sion", "id"'),
            Step.of(b': "split"}', ret(VERSION_72, b'"split"')),
            # single quotes and the \' escape
            Step.of(b"{'execute': 'query-kvm', 'id': 'it\\'s'}", ret(KVM, b'"it\'s"')),
            Step.of(b'{\'execute\': "query-kvm", "id": \'"\'}', ret(KVM, b'"\\""')),
            # a scalar is complete only once the next character arrives
            Step.of(b"42"),
            Step.of(b" ", NOT_OBJECT),
            Step.of(b"null"),
            Step.of(b"{}", NOT_OBJECT, LACKS_EXECUTE),
        ),
    ),
    Exchange(
        "resync",
        (
            # abandon a half-sent request with a control character
            Step.of(b'{"execute": "query-status", "id": "lost'),
            Step.of(b"\x01", json_error(b"stray '\\\"lost\\u0001'")),
            Step.of(b'{"execute": "query-kvm", "id": "after-resync"}', ret(KVM, b'"after-resync"')),
            Step.of(b'{"execute": "query-status", "arguments": {"a": [1, '),
            Step.of(b"\x01", json_error(b"stray '\\u0001'")),
            Step.of(b'{"execute": "query-kvm"}', ret(KVM)),
            # 0xFF is the resync byte of older QEMUs
            Step.of(b'{"execute": \xff', json_error(b"stray '\\uFFFD'")),
            Step.of(b'{"execute": "query-kvm"}', ret(KVM)),
            # recovery resumes at the next structural character
            Step.of(b'{"id": TRUE}', json_error(b"stray 'T'"), json_error(b"expecting value")),
            Step.of(b"01 ", json_error(b"stray '01'")),
            Step.of(b"}", json_error(b"expecting value")),
            Step.of(b"]", json_error(b"expecting value")),
            # control characters inside a request
            Step.of(
                b'{"execute": "quer\x01y-kvm"}',
                json_error(b"stray '\\\"quer\\u0001'"),
                json_error(b"expecting value"),
            ),
            Step.of(
                b'{"execute": "query-kvm", "id": 1}\x04',
                ret(KVM, b"1"),
                json_error(b"stray '\\u0004'"),
            ),
            Step.of(b"\x01{'execute': 'query-kvm'}", json_error(b"stray '\\u0001'"), ret(KVM)),
        ),
    ),
    Exchange(
        "json-errors",
        (
            Step.of(b'{"execute": "query-kvm",}', json_error(b"expecting value")),
            Step.of(b'{"execute" "query-kvm"}', json_error(b"missing : in object pair")),
            Step.of(b"{1: 2}", json_error(b"key is not a string in object")),
            Step.of(b"[1 2]", json_error(b"expected separator in list")),
            Step.of(b'{"a": 1 "b": 2}', json_error(b"expected separator in dict")),
            Step.of(b"tru ", json_error(b"invalid keyword 'tru'")),
            Step.of(b'"\\x"', json_error(b"invalid escape sequence in string")),
            Step.of(
                b'{"execute": "query-kvm", "id": "\xc3"}',
                json_error(b"invalid UTF-8 sequence in string"),
            ),
            Step.of(
                b'{"execute": "query-kvm", "id": "\\ud800"}',
                json_error(b"\\\\ud800 is not a valid Unicode character"),
            ),
            Step.of(b"[" * 1024 + b"]" * 1024, NOT_OBJECT),
            # (no "JSON parse error, " prefix on the limits)
            Step.of(b"[" * 1025, err(b"JSON nesting depth limit exceeded")),
            Step.of(b"\x01", json_error(b"stray '\\u0001'")),
            Step.of(b'{"execute": "query-kvm"}', ret(KVM)),
        ),
    ),
    Exchange(
        "command-errors",
        (
            Step.of(
                b'{"execute": "query-kvm", "arguments": {"a": 1}, "id": "x"}',
                err(b"Parameter 'a' is unexpected", id_=b'"x"'),
            ),
            Step.of(
                b'{"execute": "set-vcpu-dirty-limit", "arguments": {}, "id": 1}',
                err(b"Parameter 'dirty-rate' is missing", id_=b"1"),
            ),
            Step.of(
                b'{"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": "x"}}',
                err(b"Parameter 'dirty-rate' expects uint64"),
            ),
            Step.of(
                b'{"execute": "set-vcpu-dirty-limit", '
                b'"arguments": {"dirty-rate": 1, "cpu-index": 1}}',
                err(b"incorrect cpu index specified"),
            ),
            Step.of(
                b'{"execute": "cancel-vcpu-dirty-limit", "arguments": {"cpu-index": -1}}',
                err(b"incorrect cpu index specified"),
            ),
            Step.of(b'{"execute": "query-vcpu-dirty-limit", "id": "q"}', ret(b"[]", b'"q"')),
            Step.of(
                b'{"execute": "calc-dirty-rate", "arguments": {"calc-time": 0}}',
                err(b"calc-time is out of range[1, 60]."),
            ),
        ),
    ),
    Exchange(
        "oob-enabled",
        (
            Step.of(NEGOTIATE_OOB, OK),
            Step.of(
                b'{"exec-oob": "query-status"}',
                err(b"The command query-status does not support OOB"),
            ),
            Step.of(
                b"{ 'exec-oob': 'query-cpus-fast' }",
                err(b"The command query-cpus-fast does not support OOB"),
            ),
            Step.of(b'{"exec-oob": "query-yank", "id": "y1"}', ret(YANK, b'"y1"')),
            Step.of(b"{'exec-oob': 'query-yank', 'id': {'x': [1]}}", ret(YANK, b'{"x": [1]}')),
            Step.of(
                b'{"exec-oob": "no-such", "id": "y2"}',
                err(b"The command no-such has not been found", b"CommandNotFound", b'"y2"'),
            ),
            Step.of(
                b'{"exec-oob": "query-yank", "arguments": {"x": 1}}',
                err(b"Parameter 'x' is unexpected"),
            ),
            Step.of(
                b'{"exec-oob": "query-yank", "arguments": []}',
                err(b"QMP input member 'arguments' must be an object"),
            ),
            Step.of(b'{"exec-oob": 1}', err(b"QMP input member 'exec-oob' must be a string")),
            Step.of(
                b'{"exec-oob": "query-yank", "execute": "query-yank"}',
                err(b"QMP input member 'execute' clashes with 'exec-oob'"),
            ),
            Step.of(
                b'{"execute": "query-yank", "exec-oob": "query-status"}',
                err(b"QMP input member 'execute' clashes with 'exec-oob'"),
            ),
            Step.of(
                b'{"exec-oob": "qmp_capabilities"}',
                err(b"The command qmp_capabilities does not support OOB"),
            ),
            Step.of(
                NEGOTIATE_OOB,
                err(
                    b"Capabilities negotiation is already complete, command ignored",
                    b"CommandNotFound",
                ),
            ),
            Step.of(b"{ 'id': 'err-2' }", err(b"QMP input lacks member 'execute'", id_=b'"err-2"')),
            Step.of(b'{"execute": "query-yank", "id": "in-band"}', ret(YANK, b'"in-band"')),
        ),
        negotiate=False,
    ),
    Exchange(
        "oob-not-enabled",
        (
            Step.of(
                b'{"exec-oob": "query-yank", "id": "y"}',
                err(b"QMP input member 'exec-oob' is unexpected", id_=b'"y"'),
            ),
            Step.of(
                b'{"execute": "query-yank", "exec-oob": "query-yank"}',
                err(b"QMP input member 'exec-oob' is unexpected"),
            ),
        ),
    ),
    Exchange(
        "events",
        (
            Step.of(
                b'{"execute": "stop", "id": 1}',
                b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "STOP"}',
                ret(b"{}", b"1"),
            ),
            Step.of(b'{"execute": "query-status"}', ret(STATUS_PAUSED)),
            # stopping a stopped machine: no event
            Step.of(b'{"execute": "stop", "id": 2}', ret(b"{}", b"2")),
            Step.of(
                b'{"execute": "cont", "id": 3}',
                b'{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESUME"}',
                ret(b"{}", b"3"),
            ),
            Step.of(b'{"execute": "cont", "id": 4}', ret(b"{}", b"4")),
            Step.of(b'{"execute": "query-status"}', ret(STATUS_RUNNING)),
        ),
        timestamps=True,
    ),
]


@pytest.mark.parametrize("exchange", EXCHANGES, ids=[e.name for e in EXCHANGES])
def test_exchange(server: Server, exchange: Exchange) -> None:
    assert run_exchange(server.address, exchange) == exchange.expected()


def test_greeting_shape(server: Server) -> None:
    with RawQMP(server.address) as conn:
        line = conn.read_line()
    assert line == GREETING_72 + b"\r\n"
    greeting = json.loads(line)
    assert list(greeting) == ["QMP"]
    version = greeting["QMP"]["version"]
    assert set(version) == {"qemu", "package"}
    assert set(version["qemu"]) == {"major", "minor", "micro"}
    assert all(isinstance(v, int) for v in version["qemu"].values())
    assert isinstance(version["package"], str)
    assert greeting["QMP"]["capabilities"] == ["oob"]


def test_event_timestamps_are_wall_clock(server: Server) -> None:
    with RawQMP(server.address) as conn:
        conn.negotiate()
        conn.send(b'{"execute": "stop"}')
        stop = conn.read_line()
        assert conn.read_line() == OK + b"\r\n"
        conn.send(b'{"execute": "cont"}')
        resume = conn.read_line()
        assert conn.read_line() == OK + b"\r\n"
    for line in (stop, resume):
        assert_recent_timestamp(line)
        assert json.loads(line)["timestamp"]["microseconds"] in range(1_000_000)
    assert json.loads(stop)["event"] == "STOP"
    assert json.loads(resume)["event"] == "RESUME"
