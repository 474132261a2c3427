"""Character and integer conventions the human monitor inherits from C.

QEMU's monitor works on NUL-terminated UTF-8 byte strings and 64-bit integers.  qmpdl works
on Python ``str`` and unbounded ``int``, so the few places where the difference shows are
collected here:

* whitespace is C ``isspace`` in the C locale, not Python's much wider notion;
* a ``%c`` of a character outside ASCII prints only its first UTF-8 byte, which QEMU's JSON
  writer then turns into U+FFFD (a U+0000 in the command line travels through QEMU as the
  two-byte "modified UTF-8" form, so it behaves the same way);
* ``%PRId64`` / ``%PRIu64`` reinterpret the 64 bits of a value (:mod:`qmpdl.cint`).
"""

from __future__ import annotations

#: The characters C's ``isspace`` accepts in the "C" locale.
C_SPACE = frozenset(" \t\n\v\f\r")

#: What QEMU's JSON writer makes of a byte that does not start a valid UTF-8 sequence.
REPLACEMENT = "\ufffd"


def is_space(ch: str) -> bool:
    """True for the six ASCII whitespace characters of the C locale."""
    return ch in C_SPACE


def single_byte(ch: str) -> bool:
    """True when QEMU holds ``ch`` in one byte: ASCII other than NUL."""
    return "\x01" <= ch <= "\x7f"


def printed_char(ch: str) -> str:
    """What a ``%c`` of the first byte of ``ch`` looks like once it reached the client."""
    return ch if single_byte(ch) else REPLACEMENT


def skip_space(text: str, pos: int) -> int:
    """The first index at or after ``pos`` that is not C whitespace."""
    end = len(text)
    while pos < end and text[pos] in C_SPACE:
        pos += 1
    return pos


def utf8_prefix(text: str, limit: int) -> str:
    """``text`` cut to what fits into ``limit`` bytes of QEMU's encoding.

    A character that would straddle the limit leaves an incomplete byte sequence behind,
    which reaches the client as one U+FFFD.
    """
    used = 0
    for index, ch in enumerate(text):
        size = 2 if ch == "\x00" else len(ch.encode("utf-8", "surrogatepass"))
        if used + size > limit:
            return text[:index] + (REPLACEMENT if used < limit else "")
        used += size
    return text
