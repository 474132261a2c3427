"""QEMU's JSON parser: one message's tokens in, one value or one error out.

QEMU parses by recursive descent and stops at the first error, which alone is reported.
The order in which it checks things decides which error a malformed message gets:

* a value is expected where the next token is ``}``, ``]``, ``:`` or ``,`` (or is missing):
  ``expecting value`` (``premature EOI`` when the tokens run out);
* in an object, the key is parsed as a full value first (so errors inside it win), then it
  must be a string (``key is not a string in object``), then a ``:`` must follow
  (``missing : in object pair``), then the value is parsed, and only then is the key
  checked for a duplicate (``duplicate key``); after a member comes ``,`` or ``}``
  (``expected separator in dict``);
* in an array, after an element comes ``,`` or ``]`` (``expected separator in list``);
* keywords other than ``true``, ``false`` and ``null`` are ``invalid keyword '...'``
  (with the whole message cut to 1023 bytes);
* strings are decoded here, not in the lexer: escapes ``\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t``
  and ``\\uXXXX``; anything else after a backslash is ``invalid escape sequence in string``.
  A ``\\u`` escape must give a valid scalar value; a high surrogate followed by ``\\u`` and
  a low surrogate combines with it.  Otherwise the error quotes the escape as written,
  six bytes from the backslash (twelve for a pair), stopping at the token's end:
  ``\\uD800 is not a valid Unicode character``.  Noncharacters are refused like
  surrogates; ``\\u0000`` is accepted.  Unescaped bytes must be valid (modified) UTF-8.
* integers become int64 if they fit, else uint64 if non-negative and they fit, else a
  double (``strtod``); numbers with a fraction or exponent are doubles.

The tokens are given as a list of types and a list of the texts of the value tokens
(strings, numbers, keywords), which is all the parser looks at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from qmpdl.jsontypes import JsonValue
from qmpdl.qjson import errors
from qmpdl.qjson.errors import ParseFailure
from qmpdl.qjson.lexer import (
    COLON,
    COMMA,
    FLOAT,
    INTEGER,
    KEYWORD,
    LCURLY,
    LSQUARE,
    RCURLY,
    RSQUARE,
    STRING,
)
from qmpdl.qjson.utf8 import decode_lenient, decode_strict, is_valid_codepoint

__all__ = ["VALUE_TOKENS", "convert_number", "parse_string", "parse_tokens"]

#: Token types that carry text the parser needs.
VALUE_TOKENS: Final = frozenset({INTEGER, FLOAT, KEYWORD, STRING})

_INT64_MIN: Final = -(1 << 63)
_UINT64_LIMIT: Final = 1 << 64
_KEYWORDS: Final[dict[bytes, JsonValue]] = {b"true": True, b"false": False, b"null": None}
_SIMPLE_ESCAPES: Final = {
    ord('"'): '"',
    ord("'"): "'",
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_BACKSLASH_U: Final = b"\\u"


def convert_number(text: bytes, is_float: bool) -> int | float:
    """The QNum QEMU makes of a number token: int64, else uint64, else double."""
    if not is_float and len(text) <= 20:
        value = int(text)
        if _INT64_MIN <= value < _UINT64_LIMIT:
            return value
    # More than 20 characters can never fit in 64 bits (JSON has no leading zeros).
    return float(text)


def _hex4(data: bytes, i: int) -> int:
    """The value of four hex digits at ``data[i:]``, or -1 (also if the data ends)."""
    quad = data[i : i + 4]
    if len(quad) != 4 or not all(c in _HEX for c in quad):
        return -1
    return int(quad, 16)


def _bad_unicode(token: bytes, start: int, length: int) -> ParseFailure:
    quoted = decode_lenient(token[start : start + length])
    return ParseFailure(errors.PREFIX + quoted + " is not a valid Unicode character")


def parse_string(token: bytes) -> str | ParseFailure:
    """Decode a string token (quotes included) as QEMU does, or return its error."""
    body_end = len(token) - 1
    if b"\\" not in token and token.isascii():
        return token[1:body_end].decode("ascii")
    parts: list[str] = []
    i = 1
    while i < body_end:
        j = token.find(b"\\", i, body_end)
        if j < 0:
            j = body_end
        if j > i:
            chunk = token[i:j]
            text = chunk.decode("ascii") if chunk.isascii() else decode_strict(chunk)
            if text is None:
                return errors.INVALID_UTF8
            parts.append(text)
            if j == body_end:
                break
        esc = token[j + 1]
        simple = _SIMPLE_ESCAPES.get(esc)
        if simple is not None:
            parts.append(simple)
            i = j + 2
            continue
        if esc != ord("u"):
            return errors.INVALID_ESCAPE
        cp = _hex4(token, j + 2)
        length = 6
        if 0xD800 <= cp <= 0xDBFF and token.startswith(_BACKSLASH_U, j + 6):
            low = _hex4(token, j + 8)
            if 0xDC00 <= low <= 0xDFFF:
                cp = 0x10000 + ((cp & 0x3FF) << 10) + (low & 0x3FF)
                length = 12
            else:
                cp = -1
        if not is_valid_codepoint(cp):
            return _bad_unicode(token, j, length)
        parts.append(chr(cp))
        i = j + length
    return "".join(parts)


_OBJECT_KEY: Final = 0
_OBJECT_VALUE: Final = 1
_ARRAY: Final = 2


def parse_tokens(types: Sequence[int], texts: Sequence[bytes]) -> JsonValue | ParseFailure:
    """Parse one message: the value its tokens spell, or the first error QEMU reports.

    Iterative (QEMU allows 1024 levels of nesting, more than Python's recursion would),
    with QEMU's checks in QEMU's order.
    """
    n = len(types)
    i = 0
    ti = 0
    # Open containers: [kind, container, pending key].
    stack: list[list[object]] = []
    value: JsonValue
    while True:
        # Parse a value starting at token i.
        if i >= n:
            return errors.PREMATURE_EOI
        t = types[i]
        if t in (LCURLY, LSQUARE):
            i += 1
            if i >= n:
                return errors.PREMATURE_EOI
            if types[i] == (RCURLY if t == LCURLY else RSQUARE):
                i += 1
                value = {} if t == LCURLY else []
            else:
                if t == LCURLY:
                    stack.append([_OBJECT_KEY, {}, None])
                else:
                    stack.append([_ARRAY, [], None])
                continue
        elif t == STRING:
            parsed = parse_string(texts[ti])
            ti += 1
            i += 1
            if isinstance(parsed, ParseFailure):
                return parsed
            value = parsed
        elif t in (INTEGER, FLOAT):
            value = convert_number(texts[ti], t == FLOAT)
            ti += 1
            i += 1
        elif t == KEYWORD:
            word = texts[ti]
            ti += 1
            i += 1
            if word not in _KEYWORDS:
                message = f"invalid keyword '{word.decode('ascii')}'"
                return ParseFailure(errors.PREFIX + message[: errors.MESSAGE_MAX])
            value = _KEYWORDS[word]
        else:
            return errors.EXPECTING_VALUE

        # Hand the finished value to the containers it completes.
        while True:
            if not stack:
                return value
            frame = stack[-1]
            kind = frame[0]
            if kind == _OBJECT_KEY:
                if type(value) is not str:
                    return errors.KEY_NOT_STRING
                if i >= n:
                    return errors.PREMATURE_EOI
                if types[i] != COLON:
                    return errors.MISSING_COLON
                i += 1
                frame[0] = _OBJECT_VALUE
                frame[2] = value
                break
            if kind == _OBJECT_VALUE:
                obj: dict[str, JsonValue] = frame[1]  # type: ignore[assignment]
                key: str = frame[2]  # type: ignore[assignment]
                if key in obj:
                    return errors.DUPLICATE_KEY
                obj[key] = value
                frame[0] = _OBJECT_KEY
                closing, separator_error = RCURLY, errors.EXPECTED_SEPARATOR_DICT
            else:
                frame[1].append(value)  # type: ignore[attr-defined]
                closing, separator_error = RSQUARE, errors.EXPECTED_SEPARATOR_LIST
            # a comma (the container goes on) or its closing bracket (a finished value)
            if i >= n:
                return errors.PREMATURE_EOI
            t = types[i]
            i += 1
            if t == closing:
                stack.pop()
                value = frame[1]  # type: ignore[assignment]
                continue
            if t != COMMA:
                return separator_error
            break
