"""QEMU's JSON streamer: splits a byte stream into messages and parses each one.

How QEMU decides where a message ends, reproduced here:

* Tokens are queued while counting ``{``/``}`` and ``[``/``]``.  As soon as neither count
  is positive, or either is negative, the queue is parsed as one message and emptied.  So a
  top-level scalar is a message of its own (``42`` once the next byte arrives, ``"x"`` at
  its closing quote), a stray ``}`` is a message (``expecting value``), and ``{}}`` is two.
* A lexical error is reported at once (``stray '<token>'``), and drops whatever was queued.
  The quoted token stops at a NUL byte, and invalid UTF-8 in it shows as U+FFFD.
* Per message, the tokens may total at most 64 MiB (counting one more byte than their
  length), there may be at most 2 Mi (2 * 2**20) tokens, and brace plus bracket depth at
  most 1024.  A token breaking a limit is dropped along with the queue and the limit is
  reported; the input after it starts a new message, so the rest of an over-long message
  typically produces more errors.

QEMU reads its monitor one byte at a time and stops reading while it handles a request, so
:class:`JsonStreamer` consumes input lazily: each :meth:`JsonStreamer.next_message` call
only looks at as many bytes as it takes to complete one message.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Final, TypeAlias

from qmpdl.jsontypes import JsonValue
from qmpdl.qjson import errors
from qmpdl.qjson.errors import JSON_NULL, JsonNull, ParseFailure
from qmpdl.qjson.fastpath import scan_value
from qmpdl.qjson.lexer import (
    ERROR,
    LCURLY,
    LSQUARE,
    MAX_TOKEN_SIZE,
    RCURLY,
    RSQUARE,
    Lexer,
)
from qmpdl.qjson.parser import VALUE_TOKENS, parse_tokens
from qmpdl.qjson.utf8 import decode_lenient

__all__ = ["MAX_NESTING", "MAX_TOKEN_COUNT", "MAX_TOKEN_SIZE", "JsonStreamer", "Message"]

#: What :meth:`JsonStreamer.next_message` hands out: a value, :data:`JSON_NULL` for a
#: message that is just ``null``, or a parse error.
Message: TypeAlias = "JsonValue | JsonNull | ParseFailure"

MAX_TOKEN_COUNT: Final = 2 << 20
MAX_NESTING: Final = 1 << 10

#: How much buffered input the fast path decodes at once (longer messages take the exact
#: path).
_WINDOW: Final = 64 << 10
#: Drop consumed input from the buffer once this much has piled up.
_COMPACT: Final = 1 << 20
_OPENERS: Final = frozenset(b"{[")
_WHITESPACE_RUN: Final = re.compile(rb"[ \t\r\n]*")


class JsonStreamer:
    """Sans-I/O QMP input parser reproducing QEMU 7.2 byte for byte.

    :meth:`feed` buffers bytes; :meth:`next_message` returns the next complete message (a
    parsed value or a :class:`ParseFailure`), or ``None`` when it needs more input.

    ``fast_path=False`` disables the shortcut through Python's C JSON scanner (see
    :mod:`qmpdl.qjson.fastpath`); results are the same either way, only slower.
    """

    def __init__(self, *, fast_path: bool = True) -> None:
        self._fast_path = fast_path
        self._buf = bytearray()
        self._pos = 0
        self._lexer = Lexer(self._token)
        self._types = bytearray()
        self._texts: list[bytes] = []
        self._size = 0
        self._braces = 0
        self._brackets = 0
        self._out: deque[Message] = deque()
        self._text = ""
        self._text_base = -1
        self._text_ascii = False

    def reset(self) -> None:
        """Back to the initial state, dropping buffered input (the client reconnected)."""
        self._buf.clear()
        self._pos = 0
        self._lexer.reset()
        self._drop_queue()
        self._out.clear()
        self._text = ""
        self._text_base = -1

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data``; nothing is parsed until :meth:`next_message` is called."""
        self._buf += data

    @property
    def pending(self) -> int:
        """Number of buffered bytes not looked at yet."""
        return len(self._buf) - self._pos

    def next_message(self) -> Message | None:
        """The next message, or ``None`` once all buffered input is consumed without one.

        A message is a parsed value of any JSON type, except that a message that is just
        ``null`` comes out as :data:`JSON_NULL` (``None`` means "need more input"), or a
        :class:`ParseFailure`.

        Consumes input only up to (and including) the byte that completes the message; a
        byte that completes two messages (as in ``1}``) yields the second on the next call
        without consuming more.
        """
        if self._out:
            return self._out.popleft()
        buf = self._buf
        end = len(buf)
        pos = self._pos
        if pos >= end:
            self._compact()
            return None
        if self._fast_path and not self._types and self._lexer.idle:
            # Between messages: skip whitespace (QEMU's lexer drops it without effect), and
            # try the shortcut if an object or array starts here.
            pos = _WHITESPACE_RUN.match(buf, pos).end()  # type: ignore[union-attr]
            if pos < end and buf[pos] in _OPENERS:
                found = self._fast(pos, end)
                if found is not None:
                    value, self._pos = found
                    if self._pos > _COMPACT:
                        self._compact()
                    return value
        self._pos = self._lexer.run(buf, pos, end)
        if self._out:
            if self._pos > _COMPACT:
                self._compact()
            return self._out.popleft()
        self._compact()
        return None

    # -- internals ------------------------------------------------------------------------

    def _fast(self, pos: int, end: int) -> tuple[JsonValue, int] | None:
        """Parse the message at ``pos`` with the C scanner if it is plain enough.

        The buffer is decoded (as Latin-1, a window at a time) into a cached ``str``; a
        feed only appends to the buffer, so the cache stays valid until compaction.
        """
        base = self._text_base
        covered = base + len(self._text)
        if base < 0 or not base <= pos < covered:
            base = self._decode_window(pos, end)
        elif covered < min(end, pos + _WINDOW):
            # The cache ends early; a message complete within it needs nothing more.
            found = scan_value(self._text, pos - base, self._text_ascii)
            if found is not None:
                return found[0], found[1] + base
            base = self._decode_window(pos, end)
        found = scan_value(self._text, pos - base, self._text_ascii)
        if found is None:
            return None
        return found[0], found[1] + base

    def _decode_window(self, pos: int, end: int) -> int:
        window = bytes(self._buf[pos : min(end, pos + _WINDOW)])
        self._text = window.decode("latin-1")
        self._text_ascii = window.isascii()
        self._text_base = pos
        return pos

    def _compact(self) -> None:
        pos = self._pos
        if pos >= len(self._buf):
            self._buf.clear()
            self._pos = 0
            self._text_base = -1
        elif pos > _COMPACT and pos * 2 > len(self._buf):
            del self._buf[:pos]
            self._pos = 0
            self._text_base = -1

    def _drop_queue(self) -> None:
        self._types.clear()
        self._texts.clear()
        self._size = 0
        self._braces = 0
        self._brackets = 0

    def _token(self, ttype: int, text: bytes) -> bool:
        """Take one token from the lexer; True if a message is now ready."""
        if ttype == LCURLY:
            self._braces += 1
        elif ttype == RCURLY:
            self._braces -= 1
        elif ttype == LSQUARE:
            self._brackets += 1
        elif ttype == RSQUARE:
            self._brackets -= 1
        elif ttype == ERROR:
            nul = text.find(0)
            quoted = decode_lenient(text if nul < 0 else text[:nul])
            return self._emit(ParseFailure(f"{errors.PREFIX}stray '{quoted}'"))
        if self._size + len(text) + 1 > MAX_TOKEN_SIZE:
            return self._emit(errors.TOKEN_SIZE_LIMIT)
        if len(self._types) + 1 > MAX_TOKEN_COUNT:
            return self._emit(errors.TOKEN_COUNT_LIMIT)
        if self._braces + self._brackets > MAX_NESTING:
            return self._emit(errors.NESTING_LIMIT)
        self._types.append(ttype)
        if ttype in VALUE_TOKENS:
            self._texts.append(text)
        self._size += len(text)
        if (self._braces > 0 or self._brackets > 0) and self._braces >= 0 and self._brackets >= 0:
            return False
        return self._emit(parse_tokens(self._types, self._texts))

    def _emit(self, message: JsonValue | ParseFailure) -> bool:
        self._drop_queue()
        self._out.append(JSON_NULL if message is None else message)
        return True
