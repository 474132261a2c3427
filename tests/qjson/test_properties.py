"""Property tests: any input is handled, deterministically, however it is chunked."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmpdl.jsontypes import JsonValue
from qmpdl.qjson import JsonNull, JsonStreamer, Message, ParseFailure, to_json

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEED_MESSAGES = [
    b'{"execute":"qmp_capabilities","id":"__qmp#00001"}',
    b'{"execute": "set-vcpu-dirty-limit", "arguments": {"cpu-index": 1, "dirty-rate": 200}}',
    b"{'execute':'query-status','id':[1,-2.5e3,true,null,{\"a\":\"\\u00e9\\n\"}]}",
    b'[1, "two", [3], {}]',
]
JUNK = st.binary(max_size=200) | st.lists(
    st.sampled_from(
        [
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
            b"0",
            b"-",
            b"1.",
            b"e",
            b"tru",
            b"null",
            b" ",
            b"\n",
            b"\t",
            b"\x00",
            b"\x01",
            b"\xff",
            b"\xc3",
            b"\xa9",
            b"@",
        ]
    ),
    max_size=60,
).map(b"".join)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_MESSAGES)))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.integers(0, 255))
        if op == "insert":
            data.insert(pos, byte)
        elif pos < len(data):
            if op == "delete":
                del data[pos]
            else:
                data[pos] = byte
    return bytes(data)


INPUTS = JUNK | mutated() | st.lists(mutated(), max_size=3).map(b"".join)


def messages(data: bytes, chunks: list[int] = [], fast_path: bool = True) -> list[Message]:  # noqa: B006
    streamer = JsonStreamer(fast_path=fast_path)
    out: list[Message] = []
    pos = 0
    for size in [*chunks, len(data)]:
        streamer.feed(data[pos : pos + size])
        pos += size
        while (message := streamer.next_message()) is not None:
            out.append(message)
    return out


def same(a: list[Message], b: list[Message]) -> bool:
    # repr() tells int from float, -0.0 from 0.0 and compares NaN-free values exactly.
    return repr(a) == repr(b)


@SETTINGS
@given(INPUTS, st.lists(st.integers(1, 16), max_size=20))
def test_any_input_chunking_and_paths_agree(data: bytes, chunks: list[int]) -> None:
    whole = messages(data)
    assert same(messages(data, chunks), whole)
    assert same(messages(data, fast_path=False), whole)
    for message in whole:
        if isinstance(message, ParseFailure):
            to_json(message.desc).encode("ascii")
        elif not isinstance(message, JsonNull):
            to_json(message).encode("ascii")


@SETTINGS
@given(INPUTS)
def test_control_character_resynchronises(data: bytes) -> None:
    request = b'{"execute": "qmp_capabilities", "id": 1}'
    *_, error, last = messages(data + b"\x01" + request)
    assert last == {"execute": "qmp_capabilities", "id": 1}
    # The control character ends whatever token was in progress in a lexical error.
    assert isinstance(error, ParseFailure)
    assert error.desc.startswith("JSON parse error, stray '")
    assert error.desc.endswith("\x01'")


JSON_VALUES: st.SearchStrategy[JsonValue] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _representable(value: JsonValue) -> JsonValue:
    """``value`` as QEMU would hold it (no surrogates or noncharacters in strings)."""
    if isinstance(value, str):
        return "".join(
            "\ufffd"
            if 0xD800 <= ord(c) <= 0xDFFF
            or 0xFDD0 <= ord(c) <= 0xFDEF
            or (ord(c) & 0xFFFE) == 0xFFFE
            else c
            for c in value
        )
    if isinstance(value, list):
        return [_representable(v) for v in value]
    if isinstance(value, dict):
        return {_representable(k): _representable(v) for k, v in value.items()}  # type: ignore[misc]
    return value


@SETTINGS
@given(JSON_VALUES, st.booleans())
def test_encoder_output_parses_back(value: JsonValue, pretty: bool) -> None:
    text = to_json(value, pretty)
    assert text.isascii()
    expected = _representable(value)
    assert json.loads(text) == expected
    (parsed,) = messages(text.encode() + b" ")
    if isinstance(expected, (dict, list)):
        assert parsed == expected


@SETTINGS
@given(
    st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5),
    st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", "\t:\r")]),
    st.booleans(),
)
def test_fast_and_exact_paths_agree_on_valid_json(
    value: dict[str, JsonValue], separators: tuple[str, str], ensure_ascii: bool
) -> None:
    data = json.dumps(value, separators=separators, ensure_ascii=ensure_ascii).encode("utf-8")
    fast = messages(data)
    assert same(fast, messages(data, fast_path=False))
    (parsed,) = fast
    if isinstance(parsed, dict):
        # Valid JSON QEMU accepts means the same value (numbers may change type).
        assert parsed == json.loads(data, parse_constant=lambda c: math.nan)
