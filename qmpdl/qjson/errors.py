"""The parse errors the JSON layer reports, with QEMU 7.2's exact texts.

QEMU answers every problem below the QMP layer with a ``GenericError`` whose ``desc`` is one
of a small, fixed set of strings.  Syntax errors found by the parser all start with
``"JSON parse error, "``; lexical errors quote the offending input (``stray '...'``); the
three resource limits have texts of their own, without the prefix.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "DUPLICATE_KEY",
    "EXPECTED_SEPARATOR_DICT",
    "EXPECTED_SEPARATOR_LIST",
    "EXPECTING_VALUE",
    "INVALID_ESCAPE",
    "INVALID_UTF8",
    "JSON_NULL",
    "KEY_NOT_STRING",
    "MISSING_COLON",
    "NESTING_LIMIT",
    "PREMATURE_EOI",
    "TOKEN_COUNT_LIMIT",
    "TOKEN_SIZE_LIMIT",
    "JsonNull",
    "ParseFailure",
]


class ParseFailure(NamedTuple):
    """One error message of the JSON layer: the ``desc`` QEMU sends in its GenericError.

    ``desc`` is a ``str`` chosen so that :func:`qmpdl.qjson.to_json` renders it exactly as
    QEMU does.  Where QEMU quotes raw input bytes that are not valid UTF-8, those bytes
    already appear here as the U+FFFD characters QEMU's encoder would substitute.
    """

    desc: str


class JsonNull:
    """The type of :data:`JSON_NULL`: a message that is just ``null``.

    :meth:`JsonStreamer.next_message <qmpdl.qjson.JsonStreamer.next_message>` returns
    ``None`` to mean "no complete message yet", so a top-level ``null`` needs a value of its
    own (QMP answers it like any other non-object).  ``null`` inside a message is ``None``.
    """

    __slots__ = ()
    _instance: JsonNull | None = None

    def __new__(cls) -> JsonNull:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "JSON_NULL"

    def __reduce__(self) -> str:
        return "JSON_NULL"


#: A complete message consisting of the JSON value ``null``.
JSON_NULL = JsonNull()

PREFIX = "JSON parse error, "

EXPECTING_VALUE = ParseFailure(PREFIX + "expecting value")
PREMATURE_EOI = ParseFailure(PREFIX + "premature EOI")
KEY_NOT_STRING = ParseFailure(PREFIX + "key is not a string in object")
MISSING_COLON = ParseFailure(PREFIX + "missing : in object pair")
DUPLICATE_KEY = ParseFailure(PREFIX + "duplicate key")
EXPECTED_SEPARATOR_DICT = ParseFailure(PREFIX + "expected separator in dict")
EXPECTED_SEPARATOR_LIST = ParseFailure(PREFIX + "expected separator in list")
INVALID_ESCAPE = ParseFailure(PREFIX + "invalid escape sequence in string")
INVALID_UTF8 = ParseFailure(PREFIX + "invalid UTF-8 sequence in string")

TOKEN_SIZE_LIMIT = ParseFailure("JSON token size limit exceeded")
TOKEN_COUNT_LIMIT = ParseFailure("JSON token count limit exceeded")
NESTING_LIMIT = ParseFailure("JSON nesting depth limit exceeded")

#: QEMU formats parser messages (the part after the prefix) into a 1024-byte buffer, so
#: at most 1023 bytes of it survive.  Only ``invalid keyword '...'`` can get that long.
MESSAGE_MAX = 1023
