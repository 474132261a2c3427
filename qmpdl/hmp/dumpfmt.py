"""The ``/`` argument type: a memory dump's ``/fmt`` (``x /4xb addr``).

``/fmt`` is ``/`` then an optional decimal *count*, then any mix of *format* letters
(``x`` hex, ``d`` signed, ``u`` unsigned, ``o`` octal, ``c`` char, ``i`` instructions)
and *size* letters (``b`` 1 byte, ``h`` 2, ``w`` 4, ``g`` or ``L`` 8); the last letter of
each kind wins.  It must end at a blank or the end of the line, else the parse fails with
``invalid char in format: 'C'``.  Without ``/fmt`` the count is 1.

The monitor remembers the format and the size (QEMU's ``default_fmt_format`` and
``default_fmt_size``, initially ``x`` and 4): a ``/fmt`` without a format letter or
without a size letter takes the remembered one, and every parsed ``/fmt`` updates them,
even when a later argument of the line is refused.  The size is neither taken nor
remembered for ``i`` (its size stays "none", -1, unless given).  In QEMU these are
process-wide: every monitor, ``human-monitor-command`` included, shares them.  The count
is never remembered.

QEMU accumulates the count in a C ``int``, so it wraps at 32 bits (``/4294967297`` is 1,
``/2147483648`` is negative and dumps nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpdl.cint import to_i32
from qmpdl.errors import MessageError
from qmpdl.hmp.cchar import is_space, printed_char, skip_space

#: Format letters, and size letters with their width in bytes.
FORMATS = frozenset("oduxic")
SIZES = {"b": 1, "h": 2, "w": 4, "g": 8, "L": 8}
#: The size of an ``i`` dump given no size letter.
NO_SIZE = -1


class FormatError(MessageError):
    """A ``/fmt`` QEMU refuses; ``message`` is its text without the newline."""


@dataclass
class DumpDefaults:
    """The format and size a ``/fmt`` falls back to (QEMU: ``default_fmt_*``)."""

    format: str = "x"
    size: int = 4


@dataclass(frozen=True)
class DumpFormat:
    """A parsed ``/fmt``: how many units of which size to print in which format."""

    count: int
    format: str
    size: int


def _is_digit(ch: str) -> bool:
    """C's ``isdigit``: ASCII digits only (``str.isdigit`` accepts other scripts)."""
    return "0" <= ch <= "9"


def parse_format(text: str, pos: int, defaults: DumpDefaults) -> tuple[DumpFormat, int]:
    """The ``/fmt`` at ``text[pos:]`` (after blanks) and the index just past it.

    Without a ``/`` nothing is consumed and the remembered format and size apply with a
    count of 1.  ``defaults`` is updated as QEMU does; raises :class:`FormatError`.
    """
    pos = skip_space(text, pos)
    end = len(text)
    if not text.startswith("/", pos):
        size = defaults.size if defaults.format != "i" else NO_SIZE
        return DumpFormat(1, defaults.format, size), pos
    pos += 1
    count = 1
    if pos < end and _is_digit(text[pos]):
        count = 0
        while pos < end and _is_digit(text[pos]):
            count = to_i32(count * 10 + int(text[pos]))
            pos += 1
    fmt: str | None = None
    size = NO_SIZE
    while pos < end:
        ch = text[pos]
        if ch in FORMATS:
            fmt = ch
        elif ch in SIZES:
            size = SIZES[ch]
        else:
            break
        pos += 1
    if pos < end and not is_space(text[pos]):
        raise FormatError(f"invalid char in format: '{printed_char(text[pos])}'")
    if fmt is None:
        fmt = defaults.format
    if fmt != "i":
        if size == NO_SIZE:
            size = defaults.size
        defaults.size = size
    defaults.format = fmt
    return DumpFormat(count, fmt, size), pos
