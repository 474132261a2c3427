"""QEMU's JSON lexer: bytes in, tokens out, with its error recovery and token size limit.

QEMU's lexer is a byte-driven state machine.  The behaviour reproduced here:

* Tokens are the six structural characters, strings, numbers and keywords; whitespace
  (space, tab, CR, LF) separates tokens and is dropped.
* Strings are delimited by ``"`` or ``'``.  Inside, any byte from 0x20 to 0xFD is taken
  as is; a backslash takes the next byte (again 0x20..0xFD) whatever it is, leaving the
  judgement of escapes and of UTF-8 to the parser.  A control byte (including tab and
  newline) or 0xFE/0xFF inside a string is a lexical error.
* Numbers follow RFC 8259 (no leading zeros, no ``+``, no bare ``.``).  A number, like a
  keyword, only ends when the next byte arrives, and that byte is then lexed afresh.
  ``0`` followed by a digit is an error that swallows the digit (``01``).
* Keywords are runs of lowercase letters; which ones are valid is the parser's business.
* Anything else starting a token, and every byte that cannot continue the current token,
  is a lexical error.  The error token is everything of the token so far including that
  byte.  The lexer then skips input up to the next byte that is structural, a control
  character other than tab, or 0xFE/0xFF, and lexes from there (that byte included).
  Interpolation (``%d`` and friends) is off for QMP, so ``%`` is an error too.
* A token still growing past 64 MiB is cut off and handed on as it is; the streamer then
  reports the size limit, and lexing restarts afresh with the next byte.

This implementation is faithful byte for byte but does its work in runs: whitespace, the
body of a string, digit and letter runs and the skipped input after an error are each
matched by one regular expression call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

__all__ = [
    "COLON",
    "COMMA",
    "ERROR",
    "FLOAT",
    "INTEGER",
    "KEYWORD",
    "LCURLY",
    "LSQUARE",
    "MAX_TOKEN_SIZE",
    "OVERSIZE",
    "RCURLY",
    "RSQUARE",
    "STRING",
    "Lexer",
    "TokenSink",
]

#: Largest token (and, in the streamer, largest sum of a message's tokens), in bytes.
MAX_TOKEN_SIZE: Final = 64 << 20

# Token types.
LCURLY: Final = 0
RCURLY: Final = 1
LSQUARE: Final = 2
RSQUARE: Final = 3
COLON: Final = 4
COMMA: Final = 5
INTEGER: Final = 6
FLOAT: Final = 7
KEYWORD: Final = 8
STRING: Final = 9
ERROR: Final = 10
#: A token cut off at the size limit (QEMU hands it on typed with its lexer state).
OVERSIZE: Final = 11

#: Receives each token; returns True when that completed a message (the lexer then stops
#: after the current byte).  ``ERROR`` and ``OVERSIZE`` tokens must always complete one.
TokenSink = Callable[[int, bytes], bool]

# Lexer states.
_START: Final = 0
_RECOVERY: Final = 1
_DQ: Final = 2
_DQ_ESC: Final = 3
_SQ: Final = 4
_SQ_ESC: Final = 5
_ZERO: Final = 6
_SIGN: Final = 7
_DIGITS: Final = 8
_MANTISSA: Final = 9
_MANTISSA_DIGITS: Final = 10
_EXP_E: Final = 11
_EXP_SIGN: Final = 12
_EXP_DIGITS: Final = 13
_KEYWORD: Final = 14

_STRUCTURAL: Final = {
    ord("{"): LCURLY,
    ord("}"): RCURLY,
    ord("["): LSQUARE,
    ord("]"): RSQUARE,
    ord(":"): COLON,
    ord(","): COMMA,
}
#: The state a byte starts a token in (whitespace and structural bytes handled apart).
_START_STATE: Final = {
    ord('"'): _DQ,
    ord("'"): _SQ,
    ord("0"): _ZERO,
    ord("-"): _SIGN,
    **{c: _DIGITS for c in b"123456789"},
    **{c: _KEYWORD for c in b"abcdefghijklmnopqrstuvwxyz"},
}
_ONE_BYTE: Final = [bytes((c,)) for c in range(256)]

_WHITESPACE_RUN: Final = re.compile(rb"[ \t\r\n]*")
#: Bytes skipped while recovering from an error: all but structural, control except tab,
#: and 0xFE/0xFF.
_RECOVERY_RUN: Final = re.compile(rb"[^\x00-\x08\x0a-\x1f\[\]{}:,\xfe\xff]*")
_DIGIT_RUN: Final = re.compile(rb"[0-9]*")
#: The regular expression for the bytes a state loops on (its longest stretch of input).
_RUNS: Final = {
    _DQ: re.compile(rb'[^\x00-\x1f"\\\xfe\xff]*'),
    _SQ: re.compile(rb"[^\x00-\x1f'\\\xfe\xff]*"),
    _DIGITS: _DIGIT_RUN,
    _MANTISSA_DIGITS: _DIGIT_RUN,
    _EXP_DIGITS: _DIGIT_RUN,
    _KEYWORD: re.compile(rb"[a-z]*"),
}

# Special steps in the transition table (a step >= 0 is the next state).
_LOOKAHEAD: Final = -1  # the token ends before this byte, which is lexed afresh
_FAIL: Final = -2  # lexical error; the token including this byte is reported
_DONE: Final = -3  # this byte completes a string token


def _table() -> list[list[int]]:
    """The transition table of the states inside a token (QEMU's, re-derived)."""
    table = [[_FAIL] * 256 for _ in range(_KEYWORD + 1)]
    digits = b"0123456789"

    def put(state: int, chars: bytes | range, step: int) -> None:
        for c in chars:
            table[state][c] = step

    for body, escape, quote in ((_DQ, _DQ_ESC, ord('"')), (_SQ, _SQ_ESC, ord("'"))):
        put(body, range(0x20, 0xFE), body)
        put(body, b"\\", escape)
        table[body][quote] = _DONE
        put(escape, range(0x20, 0xFE), body)
    for state in (_ZERO, _DIGITS, _MANTISSA_DIGITS, _EXP_DIGITS, _KEYWORD):
        put(state, range(256), _LOOKAHEAD)
    put(_ZERO, digits, _FAIL)
    put(_ZERO, b".", _MANTISSA)
    put(_SIGN, b"0", _ZERO)
    put(_SIGN, b"123456789", _DIGITS)
    put(_DIGITS, digits, _DIGITS)
    put(_DIGITS, b".", _MANTISSA)
    put(_DIGITS, b"eE", _EXP_E)
    put(_MANTISSA, digits, _MANTISSA_DIGITS)
    put(_MANTISSA_DIGITS, digits, _MANTISSA_DIGITS)
    put(_MANTISSA_DIGITS, b"eE", _EXP_E)
    put(_EXP_E, b"+-", _EXP_SIGN)
    put(_EXP_E, digits, _EXP_DIGITS)
    put(_EXP_SIGN, digits, _EXP_DIGITS)
    put(_EXP_DIGITS, digits, _EXP_DIGITS)
    put(_KEYWORD, b"abcdefghijklmnopqrstuvwxyz", _KEYWORD)
    return table


_STEP: Final = _table()
#: The token type of a state that ends by lookahead.
_TERMINAL: Final = {
    _ZERO: INTEGER,
    _DIGITS: INTEGER,
    _MANTISSA_DIGITS: FLOAT,
    _EXP_DIGITS: FLOAT,
    _KEYWORD: KEYWORD,
}


class Lexer:
    """Incremental QEMU JSON lexer feeding tokens to a :data:`TokenSink`.

    :meth:`run` lexes from a buffer and stops right after the byte whose processing made
    the sink report a complete message, so that the caller can hand that message out
    before any later byte is looked at (QEMU reads its monitor input one byte at a time and
    stops reading while a request is being processed).  One byte can complete two
    messages: ``1}`` ends the number *and* is a stray ``}``.
    """

    __slots__ = ("_sink", "state", "token")

    def __init__(self, sink: TokenSink) -> None:
        self._sink = sink
        self.state = _START
        self.token = bytearray()

    def reset(self) -> None:
        """Forget any partial token and any error recovery in progress."""
        self.state = _START
        self.token.clear()

    @property
    def idle(self) -> bool:
        """True between tokens, outside error recovery."""
        return self.state == _START

    def run(self, buf: bytes | bytearray, pos: int, end: int) -> int:
        """Lex ``buf[pos:end]``; return the position after the last byte processed.

        Returns early, right after the byte whose processing completed a message;
        otherwise everything up to ``end`` is consumed (a token in progress is kept for the
        next call).
        """
        sink = self._sink
        tok = self.token
        state = self.state
        while pos < end:
            if state == _START:
                pos = _WHITESPACE_RUN.match(buf, pos, end).end()  # type: ignore[union-attr]
                if pos >= end:
                    break
                c = buf[pos]
                pos += 1
                ttype = _STRUCTURAL.get(c)
                if ttype is not None:
                    if sink(ttype, _ONE_BYTE[c]):
                        end = pos
                    continue
                new_state = _START_STATE.get(c)
                if new_state is None:
                    sink(ERROR, _ONE_BYTE[c])
                    state = _RECOVERY
                    end = pos
                    continue
                state = new_state
                tok.append(c)
                continue

            if state == _RECOVERY:
                pos = _RECOVERY_RUN.match(buf, pos, end).end()  # type: ignore[union-attr]
                if pos < end:
                    state = _START  # the resync byte is lexed afresh
                continue

            run = _RUNS.get(state)
            if run is not None:
                # Take the longest stretch the state loops on, but stop at the byte that
                # makes the token outgrow the limit.
                stop = min(end, pos + MAX_TOKEN_SIZE + 1 - len(tok))
                nxt = run.match(buf, pos, stop).end()  # type: ignore[union-attr]
                if nxt > pos:
                    tok += buf[pos:nxt]
                    pos = nxt
                    if len(tok) > MAX_TOKEN_SIZE:
                        sink(OVERSIZE, bytes(tok))
                        tok.clear()
                        state = _START
                        end = pos
                        continue
                if pos >= end:
                    break

            c = buf[pos]
            step = _STEP[state][c]
            if step == _LOOKAHEAD:
                ttype = _TERMINAL[state]
                state = _START
                if sink(ttype, bytes(tok)):
                    end = pos + 1  # still lex ``c``, then stop
                tok.clear()
                continue
            pos += 1
            tok.append(c)
            if step == _FAIL:
                sink(ERROR, bytes(tok))
                tok.clear()
                state = _RECOVERY
                end = pos
            elif step == _DONE:
                state = _START
                if sink(STRING, bytes(tok)):
                    end = pos
                tok.clear()
            elif len(tok) > MAX_TOKEN_SIZE:
                sink(OVERSIZE, bytes(tok))
                tok.clear()
                state = _START
                end = pos
            else:
                state = step
        self.state = state
        return pos
