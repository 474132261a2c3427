"""The parser on its own: strings, numbers, keywords and which error wins."""

from __future__ import annotations

import math

import pytest

from qmpdl.jsontypes import JsonValue
from qmpdl.qjson import ParseFailure
from qmpdl.qjson import lexer as lx
from qmpdl.qjson.parser import VALUE_TOKENS, convert_number, parse_string, parse_tokens

P = "JSON parse error, "


@pytest.mark.parametrize(
    ("token", "value"),
    [
        (b'""', ""),
        (b"''", ""),
        (b'"plain"', "plain"),
        (b"'it\\'s'", "it's"),
        (b'"\\" \\\' \\\\ \\/ \\b \\f \\n \\r \\t"', "\" ' \\ / \b \f \n \r \t"),
        (b'"\\u0041\\u00e9\\u20AC"', "A\u00e9\u20ac"),
        (b'"\\u0000"', "\x00"),
        (b'"\\ud83d\\ude00"', "\U0001f600"),
        (b'"\\uDBFF\\uDFFD"', "\U0010fffd"),
        ('"é€😀"'.encode(), "é€😀"),
        (b'"a\xc0\x80b"', "a\x00b"),
        (b'"\x7f"', "\x7f"),
        (b'"%p"', "%p"),
    ],
)
def test_strings(token: bytes, value: str) -> None:
    assert parse_string(token) == value


@pytest.mark.parametrize(
    ("token", "desc"),
    [
        (b'"\\q"', "invalid escape sequence in string"),
        (b'"\\U0041"', "invalid escape sequence in string"),
        (b'"\\uD800"', "\\uD800 is not a valid Unicode character"),
        (b'"\\uDC00x"', "\\uDC00 is not a valid Unicode character"),
        (b'"\\uD800\\u0041"', "\\uD800 is not a valid Unicode character"),
        (b'"\\uD83F\\uDFFE"', "\\uD83F\\uDFFE is not a valid Unicode character"),
        (b'"\\uFFFF"', "\\uFFFF is not a valid Unicode character"),
        (b'"\\ufdd0"', "\\ufdd0 is not a valid Unicode character"),
        # Six bytes from the backslash, but never past the token's closing quote.
        (b'"\\u12"', '\\u12" is not a valid Unicode character'),
        (b'"\\u"', '\\u" is not a valid Unicode character'),
        (b'"\\u12G45"', "\\u12G4 is not a valid Unicode character"),
        ('"\\u123é"'.encode(), "\\u123\ufffd is not a valid Unicode character"),
        (b'"\xff"', "invalid UTF-8 sequence in string"),
        (b'"\xc0\xaf"', "invalid UTF-8 sequence in string"),
        (b'"\xef\xbf\xbf"', "invalid UTF-8 sequence in string"),
        (b'"\xed\xa0\x80"', "invalid UTF-8 sequence in string"),
        (b'"\xf8\x88\x80\x80\x80"', "invalid UTF-8 sequence in string"),
        # The first problem from the left wins.
        (b'"\\q\xff"', "invalid escape sequence in string"),
        (b'"\xff\\q"', "invalid UTF-8 sequence in string"),
        (b'"\\uD800\\q"', "\\uD800 is not a valid Unicode character"),
    ],
)
def test_string_errors(token: bytes, desc: str) -> None:
    assert parse_string(token) == ParseFailure(P + desc)


@pytest.mark.parametrize(
    ("text", "is_float", "value"),
    [
        (b"0", False, 0),
        (b"-0", False, 0),
        (b"9223372036854775807", False, 9223372036854775807),
        (b"-9223372036854775808", False, -9223372036854775808),
        (b"-9223372036854775809", False, -9.2233720368547758e18),
        (b"18446744073709551615", False, 18446744073709551615),
        (b"18446744073709551616", False, 1.8446744073709552e19),
        (b"1" * 5000, False, math.inf),
        (b"-0.0", True, -0.0),
        (b"1e400", True, math.inf),
        (b"1E-400", True, 0.0),
        (b"1.0", True, 1.0),
    ],
)
def test_numbers(text: bytes, is_float: bool, value: float) -> None:
    result = convert_number(text, is_float)
    assert result == value
    assert type(result) is type(value)
    assert math.copysign(1, result) == math.copysign(1, value)


def tokens(*items: str | tuple[int, bytes]) -> tuple[list[int], list[bytes]]:
    structural = {
        "{": lx.LCURLY,
        "}": lx.RCURLY,
        "[": lx.LSQUARE,
        "]": lx.RSQUARE,
        ":": lx.COLON,
        ",": lx.COMMA,
    }
    types: list[int] = []
    texts: list[bytes] = []
    for item in items:
        if isinstance(item, str):
            types.append(structural[item])
        else:
            types.append(item[0])
            assert item[0] in VALUE_TOKENS
            texts.append(item[1])
    return types, texts


S = lx.STRING
I = lx.INTEGER  # noqa: E741
K = lx.KEYWORD


@pytest.mark.parametrize(
    ("items", "result"),
    [
        (("{", "}"), {}),
        (("[", "]"), []),
        (((K, b"null"),), None),
        (
            ("{", (S, b'"b"'), ":", (I, b"1"), ",", (S, b'"a"'), ":", "[", (K, b"true"), "]", "}"),
            {"b": 1, "a": [True]},
        ),
        # Errors, in QEMU's order of checks.
        (("}",), P + "expecting value"),
        (("{",), P + "premature EOI"),
        (("[", (I, b"1")), P + "premature EOI"),
        (("{", (S, b'"a"')), P + "premature EOI"),
        (("{", "]"), P + "expecting value"),
        (("{", (I, b"1"), ":", (I, b"2"), "}"), P + "key is not a string in object"),
        (("{", (K, b"nul"), ":", (I, b"2"), "}"), P + "invalid keyword 'nul'"),
        (("{", (S, b'"\\q"'), ":", (I, b"2"), "}"), P + "invalid escape sequence in string"),
        (("{", "{", "}", ":", (I, b"2"), "}"), P + "key is not a string in object"),
        (("{", (S, b'"a"'), (I, b"2"), "}"), P + "missing : in object pair"),
        (("{", (S, b'"a"'), ":", "}"), P + "expecting value"),
        (
            ("{", (S, b'"a"'), ":", (I, b"1"), ",", (S, b'"a"'), ":", (K, b"x"), "]"),
            P + "invalid keyword 'x'",
        ),
        (
            ("{", (S, b'"a"'), ":", (I, b"1"), ",", (S, b'"a"'), ":", (I, b"2"), "]"),
            P + "duplicate key",
        ),
        (("{", (S, b'"a"'), ":", (I, b"1"), "]"), P + "expected separator in dict"),
        (("[", (I, b"1"), (I, b"2"), "]"), P + "expected separator in list"),
        (("[", (I, b"1"), ",", "]"), P + "expecting value"),
        (("[", (K, b"a" * 2000), "]"), P + ("invalid keyword '" + "a" * 2000)[:1023]),
    ],
)
def test_parse_tokens(items: tuple[str | tuple[int, bytes], ...], result: JsonValue | str) -> None:
    parsed = parse_tokens(*tokens(*items))
    if isinstance(result, str) and result.startswith(P):
        assert parsed == ParseFailure(result)
    else:
        assert parsed == result


def test_deep_nesting_is_not_limited_by_python_recursion() -> None:
    depth = 5000
    parsed = parse_tokens(*tokens(*(["["] * depth + ["]"] * depth)))
    for _ in range(depth - 1):
        assert isinstance(parsed, list)
        parsed = parsed[0]
    assert parsed == []
