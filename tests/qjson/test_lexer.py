"""The lexer on its own: tokens, lookahead, errors, recovery and the token size limit."""

from __future__ import annotations

import pytest

from qmpdl.qjson import lexer as lx
from qmpdl.qjson.lexer import Lexer

NAMES = {
    lx.LCURLY: "{",
    lx.RCURLY: "}",
    lx.LSQUARE: "[",
    lx.RSQUARE: "]",
    lx.COLON: ":",
    lx.COMMA: ",",
    lx.INTEGER: "int",
    lx.FLOAT: "float",
    lx.KEYWORD: "kw",
    lx.STRING: "str",
    lx.ERROR: "error",
    lx.OVERSIZE: "oversize",
}


class Recorder:
    def __init__(self) -> None:
        self.tokens: list[tuple[str, bytes]] = []

    def __call__(self, ttype: int, text: bytes) -> bool:
        self.tokens.append((NAMES[ttype], text))
        return False


def lex(data: bytes, *, bytewise: bool = False) -> list[tuple[str, bytes]]:
    rec = Recorder()
    lexer = Lexer(rec)
    pos = 0
    while pos < len(data):
        # Lexical errors always stop the lexer (they complete a message).
        pos = lexer.run(data, pos, pos + 1 if bytewise else len(data))
    return rec.tokens


CASES: list[tuple[bytes, list[tuple[str, bytes]]]] = [
    (
        b'{"a": [1, 2.5]}',
        [
            ("{", b"{"),
            ("str", b'"a"'),
            (":", b":"),
            ("[", b"["),
            ("int", b"1"),
            (",", b","),
            ("float", b"2.5"),
            ("]", b"]"),
            ("}", b"}"),
        ],
    ),
    (b" \t\r\n", []),
    (b"'it\\'s'", [("str", b"'it\\'s'")]),
    (b"\"say 'hi'\"", [("str", b"\"say 'hi'\"")]),
    # Numbers and keywords end only at the next byte, which is then lexed afresh.
    (b"12", []),
    (b"12 ", [("int", b"12")]),
    (b"-0.5e+3,", [("float", b"-0.5e+3"), (",", b",")]),
    (b"truex", []),
    (b"true}", [("kw", b"true"), ("}", b"}")]),
    (b"tRUE ", [("kw", b"t"), ("error", b"R")]),
    (b"1x ", [("int", b"1"), ("kw", b"x")]),
    (b"null1 ", [("kw", b"null"), ("int", b"1")]),
    (b'1"a"', [("int", b"1"), ("str", b'"a"')]),
    # Errors include the offending byte; recovery then skips to a resync byte.
    (b"01,", [("error", b"01"), (",", b",")]),
    (b"-}", [("error", b"-}")]),
    (b"1.]]", [("error", b"1.]"), ("]", b"]")]),
    (b"1e+x:", [("error", b"1e+x"), (":", b":")]),
    (b"@abc\tdef{", [("error", b"@"), ("{", b"{")]),
    (b"@\x7f\x80\xfd[", [("error", b"@"), ("[", b"[")]),
    (b"@ 1\n2 ", [("error", b"@"), ("int", b"2")]),
    (b"@\x01", [("error", b"@"), ("error", b"\x01")]),
    (b"@\xff\xfe", [("error", b"@"), ("error", b"\xff"), ("error", b"\xfe")]),
    (b'"ab\ncd"', [("error", b'"ab\n')]),
    (b'"ab\tc', [("error", b'"ab\t')]),
    (b'"\\\x01', [("error", b'"\\\x01')]),
    (b'"\xc3\xa9\xff', [("error", b'"\xc3\xa9\xff')]),
    (b'"\x7f\xfd"', [("str", b'"\x7f\xfd"')]),
    (b"%p", [("error", b"%")]),
    (b"\x00", [("error", b"\x00")]),
]


@pytest.mark.parametrize(("data", "tokens"), CASES, ids=[repr(c[0]) for c in CASES])
def test_tokens(data: bytes, tokens: list[tuple[str, bytes]]) -> None:
    assert lex(data) == tokens
    assert lex(data, bytewise=True) == tokens


def test_stops_after_the_byte_that_completes_a_message() -> None:
    seen: list[bytes] = []

    def sink(ttype: int, text: bytes) -> bool:
        seen.append(text)
        return ttype in (lx.INTEGER, lx.RCURLY, lx.ERROR)

    lexer = Lexer(sink)
    data = b"12}  {"
    # "}" ends the number (a message) and is itself a token of the same byte.
    assert lexer.run(data, 0, len(data)) == 3
    assert seen == [b"12", b"}"]
    assert lexer.run(data, 3, len(data)) == len(data)
    assert seen[-1] == b"{"


def test_token_size_limit_cuts_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lx, "MAX_TOKEN_SIZE", 8)
    # A string may reach 8 bytes; the 9th byte cuts it, and lexing restarts after it.
    assert lex(b'"abcdef" ') == [("str", b'"abcdef"')]
    assert lex(b'"abcdefg"') == [("str", b'"abcdefg"')]
    # The cut happens at the 9th byte; the closing quote then opens a new string.
    assert lex(b'"abcdefgh"\x01') == [("oversize", b'"abcdefgh'), ("error", b'"\x01')]
    assert lex(b'"abcdefghij k"') == [("oversize", b'"abcdefgh'), ("kw", b"ij"), ("kw", b"k")]
    assert lex(b"1234567890 ") == [("oversize", b"123456789"), ("int", b"0")]
    assert lex(b"abcdefghij ") == [("oversize", b"abcdefghi"), ("kw", b"j")]
    assert lex(b'"abcdef\\n"\x01', bytewise=True) == [
        ("oversize", b'"abcdef\\n'),
        ("error", b'"\x01'),
    ]
