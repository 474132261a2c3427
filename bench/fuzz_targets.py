"""The fuzz targets: qmpdl's sans-I/O layers, each with what counts as a crash.

A target is a function of one input (bytes).  It returns normally for every input: the
errors a layer documents (a ``ParseFailure`` message, :class:`~qmpdl.errors.QMPError`,
:class:`~qmpdl.cli.UsageError`, :class:`~qmpdl.migration.stream.StreamError`, ...) are
caught inside and are results, not crashes.  Any other exception is a crash, and so is
a broken invariant (:class:`InvariantError`: two paths that must agree and do not, a bound
that does not hold).  Inputs are read through :class:`Data`, in pure Python, so a
crasher replays without the fuzzing engine (``tests/test_fuzz.py``).

===============  ==========================================================================
target           what it drives, and the documented outcomes
===============  ==========================================================================
``qjson``        :class:`~qmpdl.qjson.JsonStreamer` fed the input in pieces, fast path on
                 against off (must agree), every value re-encoded and parsed back (must be
                 equal, but for infinities, which QEMU prints as ``inf``); errors are
                 ``ParseFailure`` messages
``session``      :class:`~qmpdl.qmp.session.MonitorSession`: input in pieces, requests
                 popped and answered, negotiation with or without OOB; the queue and
                 suspension invariants of QEMU's monitor must hold
``dispatch``     :func:`~qmpdl.qmp.dispatch.dispatch_now` with argument validation from
                 the schema (7.2 and 10.1) and the side-effect-free queries of a
                 simulated machine, on raw JSON and on requests built from the schema's
                 names; errors are ``QMPError`` replies, which must encode
``hmp``          :func:`~qmpdl.hmp.execute`: any command line, QMP replies recorded from
                 QEMU or errors, guest memory of any content; it only ever prints
``migration``    :class:`~qmpdl.migration.stream.StreamReader` on raw bytes and on valid
                 streams with damage; ``StreamError`` only, and records that fit the
                 header's machine
``options``      :func:`~qmpdl.cli.parse_args` on argument lists built from the options'
                 names, and the option-value parsers (``qemuopts``, sizes, ``-smp``,
                 ``--workload``, migration URIs, HMP numbers); their ``...Error`` only
===============  ==========================================================================
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import struct
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from qmpdl.jsontypes import JsonObject, JsonValue

T = TypeVar("T")

#: Input bytes beyond this are ignored (libFuzzer's -max_len is set to it as well).
MAX_LEN = 4096


class InvariantError(Exception):
    """A broken invariant: a wrong answer, not an exception of the code under test."""


class Data:
    """Choices drawn from a fuzz input, front to back; exhausted input reads as zeros."""

    def __init__(self, data: bytes) -> None:
        self.data = data[:MAX_LEN]
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        """An integer in ``[0, n)``."""
        if n <= 1:
            return 0
        value = 0
        for _ in range(4 if n > 1 << 16 else 2 if n > 256 else 1):
            value = value << 8 | self.byte()
        return value % n

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(len(self.data))

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def text(self, limit: int = 40) -> str:
        return self.take(self.below(limit + 1)).decode("utf-8", "replace")

    def pieces(self, data: bytes) -> list[bytes]:
        """``data`` cut at up to 4 points this input chooses."""
        cuts = sorted(self.below(len(data) + 1) for _ in range(self.below(5)))
        bounds = [0, *cuts, len(data)]
        return [data[a:b] for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------------------- JSON values

_INTS = (0, 1, -1, 2**31 - 1, 2**31, 2**32, -(2**31), 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63))
_FLOATS = (0.0, -0.0, 0.5, 1e308, -1e-308, 1.5e300, 3.0)


def json_value(d: Data, words: Sequence[str], depth: int = 0) -> JsonValue:
    """A JSON value chosen by ``d``, strings and keys mostly from ``words``."""
    kind = d.below(11 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return d.flag()
    if kind == 2:
        return d.below(300) - 20
    if kind == 3:
        return d.pick(_INTS) + d.below(3) - 1
    if kind == 4:
        return d.pick(_FLOATS)
    if kind == 5:
        return d.pick(words) if words else ""
    if kind == 6:
        return d.text()
    if kind in (7, 8):
        return [json_value(d, words, depth + 1) for _ in range(d.below(4))]
    return {
        (d.pick(words) if words and d.below(4) else d.text(8)): json_value(d, words, depth + 1)
        for _ in range(d.below(4))
    }


# ---------------------------------------------------------------------------- qjson


def _stream(pieces: Sequence[bytes], fast_path: bool) -> list[object]:
    from qmpdl.qjson import JsonStreamer

    streamer = JsonStreamer(fast_path=fast_path)
    out: list[object] = []
    for piece in pieces:
        streamer.feed(piece)
        while (message := streamer.next_message()) is not None:
            out.append(message)
    return out


def _same(a: object, b: object, ordered: bool = True) -> bool:
    """Equal, with floats compared by their bits (NaN never occurs; -0.0 must stay -0.0);
    ``ordered``: object members in the same order too, and numbers of the same type
    (the encoder prints members in QDict order, and an integral double as QEMU's
    ``%.17g`` does, without a point, so a round trip keeps only members and values).
    Iterative: values nest as deep as the parser allows, beyond Python's recursion."""
    stack: list[tuple[object, object]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        if not ordered and {type(x), type(y)} == {int, float}:
            same = x == y
        elif isinstance(x, float) or isinstance(y, float):
            same = type(x) is type(y) and struct.pack("<d", x) == struct.pack("<d", y)
        elif isinstance(x, list) and isinstance(y, list):
            same = len(x) == len(y)
            stack += zip(x, y, strict=True) if same else ()
        elif isinstance(x, dict) and isinstance(y, dict):
            same = list(x) == list(y) if ordered else sorted(x) == sorted(y)
            stack += ((x[k], y[k]) for k in x) if same else ()
        else:
            same = type(x) is type(y) and x == y
        if not same:
            return False
    return True


def _finite(value: object) -> bool:
    """No infinity inside (``1e400`` parses as one; QEMU prints it as ``inf``, as qmpdl
    does, which no JSON parser reads back)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, list):
            stack += item
        elif isinstance(item, dict):
            stack += item.values()
    return True


def qjson(data: bytes) -> None:
    from qmpdl.qjson import JsonNull, ParseFailure, encode_message, to_json

    d = Data(data)
    pieces = d.pieces(d.rest())
    fast = _stream(pieces, fast_path=True)
    exact = _stream([b"".join(pieces)], fast_path=False)
    if not _same(fast, exact):
        raise InvariantError(f"fast path {fast!r} != exact path {exact!r}")
    for message in fast:
        if isinstance(message, ParseFailure | JsonNull):
            continue
        text = to_json(message)  # type: ignore[arg-type]
        if not _finite(message):
            continue
        # (a number or keyword ends only when the next byte arrives: hence the space)
        again = _stream([text.encode("utf-8", "surrogatepass") + b" "], fast_path=False)
        if len(again) != 1 or not _same(again[0], message, ordered=False):
            raise InvariantError(f"{message!r} encodes as {text!r}, which parses as {again!r}")
        encode_message({"return": message}, d.flag())  # type: ignore[dict-item]


# ---------------------------------------------------------------------------- session

_GREETING: JsonObject = {"QMP": {"version": {}, "capabilities": ["oob"]}}


def session(data: bytes) -> None:
    from qmpdl.qmp.session import QUEUE_LEN_MAX, MonitorSession

    d = Data(data)
    s = MonitorSession(_GREETING, oob_offered=True, pretty=d.flag())
    in_flight = 0
    for piece in d.pieces(d.rest()):
        s.receive_data(piece)
        for _ in range(64):
            for oob_request in s.pump():
                s.encode({"return": {}, "id": oob_request.value.get("id")})
            queued = len(s._queue)
            limit = QUEUE_LEN_MAX if s.oob_enabled else 1
            if queued > limit:
                raise InvariantError(f"{queued} requests queued (at most {limit})")
            if queued and not s.suspended and (not s.oob_enabled or queued == QUEUE_LEN_MAX):
                raise InvariantError("a full queue but the monitor still reads")
            request = s.pop_in_band()
            if request is None:
                break
            in_flight += 1
            value = request.value
            if (
                isinstance(value, dict)
                and value.get("execute") == "qmp_capabilities"
                and not s.negotiated
            ):
                arguments = value.get("arguments")
                enable = isinstance(arguments, dict) and arguments.get("enable") == ["oob"]
                s.negotiate(enable_oob=enable)
            s.encode({"return": {}})
            s.in_band_done(request)
            in_flight -= 1
        if s._suspended < 0:
            raise InvariantError("suspended a negative number of times")
    s.reset()
    if s.suspended or s.has_in_band or s._streamer.pending:
        raise InvariantError("reset left state behind")


# ---------------------------------------------------------------------------- dispatch


@cache
def _schemas() -> tuple[Any, ...]:
    from qmpdl.profile import get_profile
    from qmpdl.qapi import QapiSchema

    return tuple(QapiSchema.load(get_profile(v)) for v in ("7.2", "10.1"))


@cache
def _words() -> tuple[str, ...]:
    """Every name the schemas know: commands, members, enum values."""
    from qmpdl.qapi.schema import EnumType, ObjectType

    words: set[str] = {"execute", "exec-oob", "arguments", "id", "enable", "oob"}
    for schema in _schemas():
        words.update(schema.schema.commands)
        for t in schema.schema.types.values():
            if isinstance(t, ObjectType):
                words.update(m.name for m in t.members)
            elif isinstance(t, EnumType):
                words.update(t.values)
    return tuple(sorted(words))


@cache
def _query_machine() -> Any:
    """A paused simulated machine on a virtual clock and its executor, for the queries
    (the machine of the schema's version: not the default profile's)."""
    from qmpdl.cli import parse_args
    from qmpdl.clock import VirtualClock
    from qmpdl.commands.executor import CommandExecutor
    from qmpdl.system import build_machine

    machine = build_machine(
        parse_args(
            [
                "--qemu-version",
                "10.1",
                "-smp",
                "2,maxcpus=4",
                "-accel",
                "sim,dirty-ring-size=4096",
                "-S",
            ]
        ),
        VirtualClock(),
    )
    return CommandExecutor(machine, _schemas()[1])


#: Commands whose handlers change nothing: the fuzzer may run them for real.
_SAFE = frozenset(
    {
        "query-version",
        "query-commands",
        "query-status",
        "query-cpus-fast",
        "query-kvm",
        "query-yank",
        "query-vcpu-dirty-limit",
        "query-dirty-rate",
        "query-migrate",
        "query-migrate-capabilities",
        "query-migrate-parameters",
    }
)


def _request(d: Data, schema: Any) -> JsonValue:
    """A request object built from the schema's names (mostly well-formed)."""
    words = _words()
    name = d.pick(schema.command_names()) if d.below(8) else d.pick(words)
    request: JsonObject = {"exec-oob" if d.below(8) == 0 else "execute": name}
    command = schema.command(name)
    members = [m.name for m in command.arg_type.members] if command and command.arg_type else []
    if d.below(6):
        arguments: JsonObject = {}
        for _ in range(d.below(5)):
            key = d.pick(members) if members and d.below(4) else d.pick(words)
            arguments[key] = json_value(d, words)
        request["arguments"] = arguments if d.below(10) else json_value(d, words)
    if d.flag():
        request["id"] = json_value(d, words)
    for _ in range(d.below(3) // 2):
        request[d.pick(words)] = json_value(d, words)
    return request


def dispatch(data: bytes) -> None:
    from qmpdl.errors import QMPError
    from qmpdl.qjson import encode_message
    from qmpdl.qmp.dispatch import CommandSet, dispatch_now

    d = Data(data)
    schema = d.pick(_schemas())
    executor = _query_machine() if schema is _schemas()[1] else None
    negotiating = d.below(4) == 0
    oob = d.flag()
    commands = CommandSet(
        {"qmp_capabilities": False}
        if negotiating
        else {n: bool(schema.command(n).allow_oob) for n in schema.command_names()}
    )

    def run(name: str, arguments: JsonObject) -> JsonValue:
        schema.parse_arguments(name, arguments)
        if executor is not None and name in _SAFE:
            return executor.call_sync(name, arguments)  # type: ignore[no-any-return]
        return {}

    if d.flag():
        requests: list[object] = [_request(d, schema) for _ in range(1 + d.below(3))]
    else:
        requests = _stream(d.pieces(d.rest()), fast_path=True)
    for request in requests:
        try:
            response = dispatch_now(
                request,  # type: ignore[arg-type]
                commands=commands,
                negotiating=negotiating,
                oob_enabled=oob,
                run=run,
            )
        except QMPError as e:  # pragma: no cover - dispatch_now answers every QMPError
            raise InvariantError(f"dispatch_now raised {e!r}") from None
        encode_message(response)


# ---------------------------------------------------------------------------- hmp


@cache
def _hmp_replies() -> dict[str, list[JsonValue]]:
    """What QEMU 7.2 answered to every QMP call the recorded HMP sessions made."""
    golden = Path(__file__).parents[1] / "tests" / "hmp" / "golden-qemu-7.2.json"
    replies: dict[str, list[JsonValue]] = {}
    if golden.exists():
        for session in json.loads(golden.read_text(encoding="utf-8"))["sessions"]:
            for step in session["steps"]:
                for call in step.get("calls", []):
                    if "return" in call:
                        replies.setdefault(call["execute"], []).append(call["return"])
    return replies


_HMP_WORDS = (
    "info ", "help ", "x ", "xp ", "/", "$pc", "$eax", "calc_dirty_rate ", "-r ", "-b ",
    "set_vcpu_dirty_limit ", "cancel_vcpu_dirty_limit ", "migrate_set_parameter ",
    "migrate_set_capability ", "vcpu_dirty_limit", "dirty_rate", "migrate", "cpu ", "c",
    "s", "0x", "(", ")", "+", "-", "*", "%", "'", '"', "\\", " ", "10", "4k", "1G", "on",
    "off", "max-bandwidth ", "downtime-limit ", "x-vcpu-dirty-limit-period ", "9" * 25,
)  # fmt: skip


def hmp(data: bytes) -> None:
    from qmpdl.errors import QMPError
    from qmpdl.hmp import DumpDefaults, execute
    from qmpdl.profile import get_profile

    d = Data(data)
    profile = get_profile(d.pick(("7.2", "8.2", "10.1")))
    replies = _hmp_replies()
    if d.flag():
        line = "".join(d.pick(_HMP_WORDS) for _ in range(d.below(12)))
    else:
        line = d.take(d.below(200)).decode("utf-8", "surrogateescape")

    def qmp(name: str, arguments: JsonObject) -> JsonValue:
        if d.below(8) == 0:
            raise QMPError(d.text(30) or "failed")
        options = replies.get(name)
        return d.pick(options) if options else {}

    def memory(addr: int, size: int) -> bytes:
        return d.take(d.below(size + 1)) if d.flag() else bytes(min(size, 1 << 16))

    cpu_index = d.below(4) if d.flag() else None
    execute(
        line,
        profile=profile,
        qmp=qmp,
        cpu_index=cpu_index,
        memory=memory if d.flag() else None,
        dump_defaults=DumpDefaults(),
    )


# ---------------------------------------------------------------------------- migration


def _valid_stream(d: Data) -> bytes:
    """A well-formed stream of a small machine (damaged later by the caller)."""
    import numpy as np

    from qmpdl.migration.stream import StreamWriter

    w = StreamWriter()
    pages_in_ram = 64
    out = w.header(pages_in_ram * 4096, 1, {"accel": "sim", "smp": 1})
    for number in range(d.below(3)):
        count = d.below(6)
        pages = np.array([d.below(pages_in_ram) for _ in range(count)], dtype=np.int64)
        zero = np.array([d.flag() for _ in range(count)], dtype=np.bool_)
        if d.flag():  # synthetic pages (a virtual clock's stream)
            marks = np.array([d.byte() or 1 for _ in range(count)], dtype=np.uint8)
            out += w.marks(pages, zero, marks)[0]
        else:
            data = b"".join(bytes([d.byte()]) * 4096 for z in zero if not z)
            out += w.pages(pages, zero, data)
        if d.flag():
            out += w.sync(1000.0 + d.below(1000))
        out += w.pass_end(number)
    if d.flag():
        out += w.state({"runstate": "running", "vcpus": [{}]})
    return out + w.end()


def migration(data: bytes) -> None:
    from qmpdl.migration.stream import Header, Pages, State, StreamError, StreamReader

    d = Data(data)
    if d.flag():
        stream = bytearray(_valid_stream(d))
        for _ in range(d.below(4)):  # damage: overwrite, cut, insert
            at = d.below(len(stream) + 1)
            action = d.below(3)
            if action == 0 and at < len(stream):
                stream[at] = d.byte()
            elif action == 1:
                del stream[at:]
            else:
                stream[at:at] = d.take(d.below(16))
        raw = bytes(stream)
    else:
        raw = d.rest()
    reader = StreamReader()
    ram_pages: int | None = None
    try:
        for piece in d.pieces(raw):
            reader.feed(piece)
            for record in reader.records():
                if isinstance(record, Header):
                    if not isinstance(record.machine, dict):
                        raise InvariantError(f"a header with machine {record.machine!r}")
                    ram_pages = record.ram_size // 4096
                elif isinstance(record, Pages):
                    if ram_pages is None or (
                        record.pages.size and int(record.pages.max()) >= ram_pages
                    ):
                        raise InvariantError(f"pages {record.pages} beyond {ram_pages} of RAM")
                elif isinstance(record, State) and not isinstance(record.state, dict):
                    raise InvariantError(f"a device state {record.state!r}")
    except StreamError:
        return


# ---------------------------------------------------------------------------- options

_OPTIONS = (
    "-qmp", "-qmp-pretty", "-chardev", "-mon", "-smp", "-m", "-accel", "-S", "-incoming",
    "-global", "-trace", "-D", "--workload", "--qemu-version", "--dirtylimit-controller",
    "-serial", "-name", "-machine", "-nographic", "-nodefaults", "-display", "-enable-kvm",
    "-vga", "x",
)  # fmt: skip
_VALUES = (
    "unix:/tmp/q.sock,server=on,wait=off", "tcp:127.0.0.1:4444,server=on", "sim",
    "sim,dirty-ring-size=4096", "kvm,dirty-ring-size=3", "tcg", "4", "2,maxcpus=4",
    "cpus=2,sockets=2,cores=1,threads=1", "128M", "1G", "size=64", "7.2", "10.1", "9.9",
    "all:write,rate=100", "0-1:read,wss=1M", "1:idle", "migration.x-dirty-limit=on",
    "migration.vcpu-dirty-limit=1", "dirtylimit_*", "file:/tmp/s", "defer",
    "socket,id=m,path=/tmp/m.sock,server=on,wait=off", "chardev=m,mode=control,pretty=on",
    "qemu", "target", "", ",", "=", "on", "off", "-1", "0", "18446744073709551616",
)  # fmt: skip


def options(data: bytes) -> None:
    from qmpdl.cli import UsageError, parse_args
    from qmpdl.migration.uri import parse_uri
    from qmpdl.profile import get_profile
    from qmpdl.qemuopts import OptionError, parse_bool, parse_opts, parse_uint, split_opts
    from qmpdl.sizes import parse_size
    from qmpdl.strparse import ParseError as NumberError
    from qmpdl.strparse import strtosz, strtou64
    from qmpdl.topology import TopologyError
    from qmpdl.workload import WorkloadError, parse_workload

    d = Data(data)
    argv = [
        (d.pick(_OPTIONS) if i % 2 == 0 else d.pick(_VALUES)) if d.below(4) else d.text(30)
        for i in range(d.below(10))
    ]
    try:
        parse_args(argv)
    except UsageError as e:
        str(e)
    text = d.text(60)
    checks: list[tuple[Callable[[], object], tuple[type[BaseException], ...]]] = [
        (lambda: split_opts(text), (OptionError,)),
        (lambda: parse_opts(text, implied=d.pick((None, "size", "cpus"))), (OptionError,)),
        (lambda: parse_bool("x", text), (OptionError,)),
        (lambda: parse_uint("x", text, d.pick((8, 32, 64))), (OptionError,)),
        (lambda: parse_size(text, default_suffix=d.pick(("", "M"))), (ValueError,)),
        (lambda: parse_workload(text), (WorkloadError,)),
        (lambda: strtou64(text, d.pick((0, 10, 16))), (NumberError,)),
        (lambda: strtosz(text), (NumberError,)),
    ]
    from qmpdl.errors import QMPError

    checks.append(
        (
            lambda: parse_uri(text, get_profile(d.pick(("7.2", "10.1"))), incoming=d.flag()),
            (QMPError,),
        )
    )
    from qmpdl.cli import _smp

    checks.append((lambda: _smp(text), (UsageError, TopologyError)))
    for check, allowed in checks:
        with contextlib.suppress(*allowed):
            check()


#: Pieces of scenario files (TOML and YAML) the scenario target splices in.
_SCENARIO_WORDS = (
    "[[vcpus]]", "cpus = \"all\"", "cpus = \"0-1\"", "[[vcpus.phases]]", "at = 0",
    "at = 5", "kind = \"write\"", "kind = \"idle\"", "kind = \"read\"", "rate = 100",
    "ramp_to = 400", "duration = 3", "wss = \"64M\"", "[[events]]", "kind = \"stop\"",
    "[[faults]]", "kind = \"migration-stream\"", "action = \"cut\"", "offset = 4096",
    "after = 1.5", "bandwidth = 1000", "kind = \"late-throttle-period\"", "delay = 0.5",
    "kind = \"bad-measurement\"", "value = \"zero\"", "vcpu = 1", "migration = 2",
    "vcpus:", "- cpus: all", "  phases:", "  - {at: 0, kind: write, rate: 100}",
    "faults:", "- {kind: kvm-internal-error, at: 2, vcpu: 0}", "events: []", "=", "[", "]",
    "{", "}", ":", "-", "\"", "'", "#", "&a", "*a", "!!python/object", "1e999", "-1", "nan",
)  # fmt: skip


#: A scenario's keys and values, for the structured half of the scenario target.
_SCENARIO_KEYS = (
    "at", "kind", "rate", "ramp_to", "duration", "wss", "step", "cpus", "phases", "action",
    "cpu", "factor", "delay", "value", "migration", "after", "offset", "bandwidth",
    "message", "vcpus", "events", "faults", "bogus",
)  # fmt: skip
_SCENARIO_VALUES: tuple[object, ...] = (
    0, 1, 2, -1, 0.5, 1e300, 3.0, True, None, "all", "0-1", "1-0", "7", "write", "read",
    "idle", "stop-work", "resume-work", "ring-overflow-storm", "late-throttle-period",
    "bad-measurement", "kvm-internal-error", "migration-stream", "destination-refuse",
    "slow", "stall", "cut", "corrupt", "each", "zero", "garbage", "64M", "1x", "", [], {},
)  # fmt: skip


def _scenario_value(d: Data, depth: int) -> object:
    """A random value shaped like a scenario's: tables of the real keys, lists of them."""
    choice = d.below(6) if depth < 3 else 5
    if choice == 0:
        return [_scenario_value(d, depth + 1) for _ in range(d.below(4))]
    if choice <= 2:
        return {d.pick(_SCENARIO_KEYS): _scenario_value(d, depth + 1) for _ in range(d.below(6))}
    return d.pick(_SCENARIO_VALUES)


def scenario(data: bytes) -> None:
    import yaml

    from qmpdl.vtime.scenario import ScenarioError, parse_scenario, scenario_workloads

    d = Data(data)
    if d.flag():  # a scenario's shape, as YAML: the validation behind the parser
        path = "fuzz.yaml"
        top = {
            d.pick(("vcpus", "events", "faults", "vcpus", "faults", "bogus")): [
                {d.pick(_SCENARIO_KEYS): _scenario_value(d, 2) for _ in range(d.below(7))}
                for _ in range(d.below(4))
            ]
            for _ in range(d.below(4))
        }
        text = yaml.safe_dump(top)
    else:
        lines = [d.pick(_SCENARIO_WORDS) if d.below(4) else d.text(20) for _ in range(d.below(24))]
        path = d.pick(("fuzz.toml", "fuzz.yaml"))
        text = "\n".join(lines)
    try:
        loaded = parse_scenario(path, text)
    except ScenarioError as e:
        assert str(e).startswith(path), e
        return
    scenario_workloads(loaded, 1 + d.below(8))


TARGETS: dict[str, Callable[[bytes], None]] = {
    "qjson": qjson,
    "session": session,
    "dispatch": dispatch,
    "hmp": hmp,
    "migration": migration,
    "options": options,
    "scenario": scenario,
}

#: The modules each target exercises (atheris instruments these for coverage).
MODULES: dict[str, tuple[str, ...]] = {
    "qjson": ("qmpdl.qjson",),
    "session": ("qmpdl.qjson", "qmpdl.qmp"),
    "dispatch": ("qmpdl.qjson", "qmpdl.qmp", "qmpdl.qapi", "qmpdl.commands"),
    "hmp": ("qmpdl.hmp",),
    "migration": ("qmpdl.migration.stream",),
    "options": (
        "qmpdl.cli",
        "qmpdl.qemuopts",
        "qmpdl.sizes",
        "qmpdl.topology",
        "qmpdl.workload",
        "qmpdl.migration.uri",
        "qmpdl.strparse",
    ),
    "scenario": ("qmpdl.vtime.scenario",),
}

#: Share of the inputs each target gets in a run (the cheap layers get more).
WEIGHTS: dict[str, float] = {
    "qjson": 0.22,
    "session": 0.13,
    "dispatch": 0.18,
    "hmp": 0.13,
    "migration": 0.1,
    "options": 0.13,
    "scenario": 0.11,
}
assert math.isclose(sum(WEIGHTS.values()), 1.0) and set(WEIGHTS) == set(TARGETS)
