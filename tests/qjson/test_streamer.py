"""The streamer: message boundaries, laziness, limits, fast/slow path agreement."""

from __future__ import annotations

import time

import pytest

from qmpdl.qjson import JSON_NULL, JsonStreamer, Message, ParseFailure
from qmpdl.qjson import streamer as st

P = "JSON parse error, "


def drain(s: JsonStreamer) -> list[Message]:
    out: list[Message] = []
    while (m := s.next_message()) is not None:
        out.append(m)
    return out


def parse_all(data: bytes, **kwargs: bool) -> list[Message]:
    s = JsonStreamer(**kwargs)
    s.feed(data)
    return drain(s)


@pytest.mark.parametrize("fast_path", [True, False])
def test_concatenated_and_split(fast_path: bool) -> None:
    data = b'{"execute":"a"}{"execute":"b","id":[1,{"x":null}]}\r\n[]'
    want: list[Message] = [{"execute": "a"}, {"execute": "b", "id": [1, {"x": None}]}, []]
    assert parse_all(data, fast_path=fast_path) == want
    for cut in range(len(data) + 1):
        s = JsonStreamer(fast_path=fast_path)
        s.feed(data[:cut])
        got = drain(s)
        s.feed(data[cut:])
        assert got + drain(s) == want


def test_top_level_scalars_need_the_next_byte() -> None:
    s = JsonStreamer()
    s.feed(b"42")
    assert s.next_message() is None
    s.feed(b' "x"')
    assert s.next_message() == 42
    assert s.next_message() == "x"  # a string ends at its quote
    s.feed(b"null")
    assert s.next_message() is None
    s.feed(b"\n")
    assert s.next_message() is JSON_NULL
    assert s.next_message() is None


def test_top_level_null_is_distinct_from_need_more_input() -> None:
    assert parse_all(b"null [null] ") == [JSON_NULL, [None]]
    assert not JSON_NULL
    assert repr(JSON_NULL) == "JSON_NULL"


def test_consumes_lazily() -> None:
    s = JsonStreamer()
    s.feed(b'{"a":1} {"b":2}')
    assert s.next_message() == {"a": 1}
    assert s.pending == 8  # nothing after the first object was looked at
    assert s.next_message() == {"b": 2}
    assert s.pending == 0


def test_lazy_on_the_exact_path_too() -> None:
    s = JsonStreamer()
    s.feed(b'{"a":"\\u00e9"} @ {"b":2}')
    assert s.next_message() == {"a": "\u00e9"}
    assert s.pending == 10
    assert s.next_message() == ParseFailure(P + "stray '@'")
    assert s.pending == 8
    assert s.next_message() == {"b": 2}


def test_one_byte_can_complete_two_messages() -> None:
    s = JsonStreamer()
    s.feed(b"1}{")
    assert s.next_message() == 1
    assert s.pending == 1  # "}" was consumed with the number
    assert s.next_message() == ParseFailure(P + "expecting value")
    assert s.pending == 1
    assert s.next_message() is None
    assert s.pending == 0


def test_errors_drop_the_queue_and_recover() -> None:
    assert parse_all(b'{"id": TRUE}') == [
        ParseFailure(P + "stray 'T'"),
        ParseFailure(P + "expecting value"),
    ]
    assert parse_all(b'{"a": @ "b" } \x01{"c":1}') == [
        ParseFailure(P + "stray '@'"),
        ParseFailure(P + "expecting value"),
        ParseFailure(P + "stray '\x01'"),
        {"c": 1},
    ]


def test_stray_quotes_raw_bytes_up_to_nul() -> None:
    assert parse_all(b'"ab\x00cd') == [ParseFailure(P + "stray '\"ab'")]
    assert parse_all(b'"\xc3\xa9\xe2\x82\x01') == [ParseFailure(P + "stray '\"\u00e9\ufffd\x01'")]


def test_reset() -> None:
    s = JsonStreamer()
    s.feed(b'{"a": [1, 2')
    assert s.next_message() is None
    s.reset()
    s.feed(b"@")
    s.reset()
    s.feed(b'{"b": 1}')
    assert drain(s) == [{"b": 1}]


def test_nesting_limit_and_what_follows() -> None:
    ok = b"[" * 1024 + b"]" * 1024
    assert len(parse_all(ok)) == 1
    too_deep = b"[" * 1025 + b"]" * 2
    assert parse_all(too_deep) == [
        ParseFailure("JSON nesting depth limit exceeded"),
        ParseFailure(P + "expecting value"),
        ParseFailure(P + "expecting value"),
    ]


def test_token_count_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(st, "MAX_TOKEN_COUNT", 5)
    # (The fast path relies on the real limits being out of its reach.)
    assert parse_all(b"[1,2]", fast_path=False) == [[1, 2]]
    assert parse_all(b"[1,2,3]", fast_path=False) == [
        ParseFailure("JSON token count limit exceeded"),
        ParseFailure(P + "expecting value"),
    ]


def test_token_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(st, "MAX_TOKEN_SIZE", 10)
    # [ "abcdef" ] is 1 + 8 + 1 bytes; each token must keep size + len + 1 <= 10.
    assert parse_all(b'["abcde"]', fast_path=False) == [["abcde"]]
    # Here the final "]" is the token too many.
    assert parse_all(b'["abcdef"]', fast_path=False) == [
        ParseFailure("JSON token size limit exceeded")
    ]
    # Here the string is; the "]" after it is a message of its own.
    assert parse_all(b'["abcdefg"]', fast_path=False) == [
        ParseFailure("JSON token size limit exceeded"),
        ParseFailure(P + "expecting value"),
    ]


def test_large_input_is_linear() -> None:
    """64 MiB of string in 64 KiB feeds: seconds, not hours (CPU seconds of this thread,
    which a busy host does not inflate)."""
    s = JsonStreamer()
    chunk = b"x" * (64 << 10)
    start = time.thread_time()
    s.feed(b'["')
    messages: list[Message] = []
    for _ in range(1024):
        s.feed(chunk)
        messages += drain(s)
    # The string token reached 64 MiB + 1 bytes with the last byte: the lexer cut it.
    assert messages == [ParseFailure("JSON token size limit exceeded")]
    s.feed(b'"]\x01')
    assert drain(s) == [ParseFailure(P + "stray '\"]\x01'")]
    assert time.thread_time() - start < 30


def test_megabytes_of_whitespace_and_recovery_are_fast() -> None:
    s = JsonStreamer()
    start = time.thread_time()
    for _ in range(64):
        s.feed(b" " * (64 << 10))
        assert s.next_message() is None
    s.feed(b"@" + b"x" * (4 << 20) + b"{}")
    assert drain(s) == [ParseFailure(P + "stray '@'"), {}]
    assert time.thread_time() - start < 5
