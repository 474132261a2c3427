"""Numbers, sizes and booleans spelled as text, read the way QEMU's C helpers read them.

Migration parameters arrive as text from HMP (``migrate_set_parameter``) and from
``-global migration.PROP=VALUE``.  QEMU reads them with ``qemu_strtou64`` (``strtoull``
with base 0: ``0x`` hex, a leading ``0`` octal, negative numbers wrapped),
``qemu_strtosz`` (sizes with ``k``/``M``/``G``/``T``/``P``/``E`` suffixes, fractions,
exact fixed-point rounding) and ``qapi_bool_parse``.  The functions here return the
value or raise :class:`ParseError` for the cases QEMU rejects; the ``parse_text_*``
functions turn that into QEMU's message for a named parameter or property
(:class:`~qmpdl.errors.QMPError`), as its string input visitor and HMP say it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence

from qmpdl.errors import QmpdlError, QMPError

U64_LIMIT = 1 << 64
INT64_MAX = (1 << 63) - 1

_SPACE = " \t\n\v\f\r"
_SUFFIXES = "BKMGTPE"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


#: What ``strtod`` reads at a decimal point: the point, digits, an optional exponent.
@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled, when first needed (no start-up pays for it)."""
    return re.compile(pattern)


_FRACTION = r"\.([0-9]+)([eE][+-]?[0-9]+)?"


class ParseError(QmpdlError, ValueError):
    """The text is not a valid value (``EINVAL``) or it is out of range (``ERANGE``)."""

    def __init__(self, text: str, *, out_of_range: bool = False) -> None:
        super().__init__(text)
        self.out_of_range = out_of_range


def _strtoull(text: str, pos: int, base: int) -> tuple[int, int, bool]:
    """C's ``strtoull`` from ``pos``: (value, end index, overflowed).  The end index is
    ``pos`` when nothing was converted."""
    i = pos
    while i < len(text) and text[i] in _SPACE:
        i += 1
    negative = False
    if i < len(text) and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if base in (0, 16) and text[i : i + 2].lower() == "0x" and _digit(text, i + 2, 16):
        base = 16
        i += 2
    elif base == 0:
        base = 8 if text[i : i + 1] == "0" else 10
    start = i
    value = 0
    while _digit(text, i, base):
        value = value * base + _DIGITS.index(text[i].lower())
        i += 1
    if i == start:
        return 0, pos, False
    overflow = value >= U64_LIMIT
    if overflow:
        value = U64_LIMIT - 1
    elif negative:
        value = (-value) % U64_LIMIT
    return value, i, overflow


def _digit(text: str, i: int, base: int) -> bool:
    return i < len(text) and text[i].lower() in _DIGITS[:base]


def strtou64(text: str, base: int = 0) -> int:
    """``qemu_strtou64(text, NULL, base, &value)``: the whole text must be a number."""
    value, end, overflow = _strtoull(text, 0, base)
    if end == 0 or end != len(text):
        raise ParseError(text)
    if overflow:
        raise ParseError(text)
    return value


def _suffix_mul(char: str, unit: int) -> int:
    position = _SUFFIXES.find(char.upper()) if char else -1
    return unit**position if position >= 0 else 0


def strtosz(
    text: str,
    default_suffix: str = "B",
    unit: int = 1024,
    *,
    hex_suffix_warning: Callable[[str], None] | None = None,
    revised: bool = False,
) -> int:
    """``qemu_strtosz`` (``default_suffix`` ``B``) or ``qemu_strtosz_MiB`` (``M``).

    A hexadecimal number with a suffix (``0x1k``) is invalid, unless
    ``hex_suffix_warning`` is given (QEMU before 8.0): then it counts and the warning
    text goes there.  ``revised``: QEMU 8.1's reading (``parse_uint``): a negative
    number is out of range, a fraction needs no integer digits (``.5k``), any non-zero
    fraction counts and one that rounds to 1 carries.  :class:`ParseError`'s
    ``out_of_range`` is C's ``ERANGE``."""
    if revised:
        return _strtosz_revised(text, default_suffix, unit)
    value, end, overflow = _strtoull(text, 0, 10)
    if end == 0:
        raise ParseError(text)
    if overflow:
        raise ParseError(text, out_of_range=end == len(text))
    if "-" in text[:end]:
        raise ParseError(text)
    fraction = 0
    following = text[end : end + 1]
    hexadecimal = False
    if value == 0 and following in ("x", "X"):
        value, end, overflow = _strtoull(text, 0, 16)
        if end == 0:
            raise ParseError(text)
        if overflow:
            raise ParseError(text, out_of_range=end == len(text))
        following = text[end : end + 1]
        suffixed = _suffix_mul(following, unit) > 0
        if following == "." or (suffixed and hex_suffix_warning is None):
            raise ParseError(text)
        hexadecimal = True
    elif following == ".":
        match = _compiled(_FRACTION).match(text, end)
        if match is None:
            # strtod reads nothing at "." without digits: skip the point only
            end += 1
        elif match.group(2):
            # an exponent makes the whole input invalid
            raise ParseError(text)
        else:
            # (uint64_t) of 2**64 (a fraction that rounds to 1) is 0 on x86-64
            fraction = int(float("0." + match.group(1)) * (1 << 64)) % U64_LIMIT
            end = match.end()
    mul = _suffix_mul(text[end : end + 1], unit)
    if mul > 0:
        if hexadecimal and hex_suffix_warning is not None:
            hex_suffix_warning(f"Using a multiplier suffix on hex numbers is deprecated: {text}")
        end += 1
    else:
        mul = _suffix_mul(default_suffix, unit)
    return _scaled(text, end, value, fraction, mul)


def _scaled(text: str, end: int, value: int, fraction: int, mul: int) -> int:
    """The end of ``do_strtosz``: value.fraction (64-bit fixed point) times ``mul``,
    0.5 rounded up, and nothing may follow."""
    if mul == 1:
        if fraction:
            raise ParseError(text)
    else:
        scaled = fraction * mul
        value = value * mul + (scaled >> 64) + ((scaled >> 63) & 1)
        if value >= U64_LIMIT:
            raise ParseError(text, out_of_range=end == len(text))
    if end != len(text):
        raise ParseError(text)
    return value


#: What ``strtod`` reads of a fraction once any exponent is cut off.
_DECIMAL = r"[ \t\n\v\f\r]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)"


def _strtosz_revised(text: str, default_suffix: str, unit: int) -> int:
    value, end, overflow = _strtoull(text, 0, 10)
    stripped = text.lstrip(_SPACE)
    if end and (overflow or stripped.startswith("-")):
        # parse_uint: ERANGE (a negative number, or too large), unless text follows
        raise ParseError(text, out_of_range=end == len(text))
    fraction = 0
    if end and value == 0 and text[end : end + 1] in ("x", "X"):
        value, end, overflow = _strtoull(text, 0, 16)
        if overflow:
            raise ParseError(text, out_of_range=end == len(text))
        if text[end : end + 1] == "." or _suffix_mul(text[end : end + 1], unit) > 0:
            raise ParseError(text)
    elif text[end : end + 1] == "." or (end == 0 and "." in text):
        if end and not text[end + 1 : end + 2].isdigit():
            end += 1  # "1." and "1.k": the point alone
        else:
            copy = re.split("[eE]", text[end:], maxsplit=1)[0]
            match = _compiled(_DECIMAL).match(copy)
            if match is None:
                raise ParseError(text)
            number = float(match.group(0))
            end += match.end()
            if math.copysign(1.0, number) < 0:
                raise ParseError(text, out_of_range=end == len(text))
            if number == 1.0:
                value += 1
                if value >= U64_LIMIT:
                    raise ParseError(text, out_of_range=end == len(text))
            else:
                fraction = int(number * 2.0**64)
                if fraction == 0 and any(c in "123456789" for c in match.group(1)):
                    fraction = 1  # any non-zero fraction counts (and an underflow)
    elif end == 0:
        raise ParseError(text)
    mul = _suffix_mul(text[end : end + 1], unit)
    if mul > 0:
        end += 1
    else:
        mul = _suffix_mul(default_suffix, unit)
    return _scaled(text, end, value, fraction, mul)


def parse_bool(text: str) -> bool:
    """``qapi_bool_parse``: on/yes/true/y and off/no/false/n, case-sensitive."""
    if text in ("on", "yes", "true", "y"):
        return True
    if text in ("off", "no", "false", "n"):
        return False
    raise ParseError(text)


def shell_parse_argv(text: str) -> list[str]:
    """``g_shell_parse_argv``: words split at blanks, with the shell's quoting (``'...'``
    literal, ``"..."`` with backslash escapes of ``"\\$``` and newline, ``\\x`` outside
    quotes) and ``#`` comments; raises :class:`ParseError` with GLib's message."""
    words: list[str] = []
    word: list[str] | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if c in " \t\n":
            if word is not None:
                words.append("".join(word))
                word = None
            i += 1
            continue
        if c == "#" and word is None:
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        word = [] if word is None else word
        if c == "\\":
            if i + 1 >= len(text):
                raise ParseError(f"Text ended just after a “\\” character. (The text was “{text}”)")
            if text[i + 1] != "\n":
                word.append(text[i + 1])
            i += 2
        elif c in "'\"":
            end = i + 1
            while end < len(text) and text[end] != c:
                if c == '"' and text[end] == "\\" and end + 1 < len(text):
                    nxt = text[end + 1]
                    if nxt in '"\\$`':
                        word.append(nxt)
                    elif nxt != "\n":
                        word += ["\\", nxt]
                    end += 2
                    continue
                word.append(text[end])
                end += 1
            if end >= len(text):
                raise ParseError(
                    f"Text ended before matching quote was found for {c}. (The text was “{text}”)"
                )
            i = end + 1
        else:
            word.append(c)
            i += 1
    if word is not None:
        words.append("".join(word))
    if not words:
        raise ParseError("Text was empty (or contained only whitespace)")
    return words


# --------------------------------------------------------------------- named values

_UINT_BITS = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}


def parse_text_uint(name: str, value: str, kind: str) -> int:
    """An unsigned integer as QEMU's string input visitor reads it (``qemu_strtou64``
    base 0, then the type's range)."""
    try:
        number = strtou64(value)
    except ParseError:
        raise QMPError(f"Parameter '{name}' expects uint64") from None
    bits = _UINT_BITS[kind]
    if number >= 1 << bits:
        raise QMPError(f"Parameter '{name}' expects {kind}_t")
    return number


SIZE_HINT = (
    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
    "and exabytes, respectively.\n"
)


def parse_text_size(
    name: str, value: str, warn: Callable[[str], None] | None = None, *, revised: bool = False
) -> int:
    """A size as QEMU's string input visitor reads it (``qemu_strtosz``).  The error
    text carries QEMU's hint on the following lines.  ``warn``, ``revised``: see
    :func:`strtosz`."""
    try:
        return strtosz(value, hex_suffix_warning=warn, revised=revised)
    except ParseError as e:
        if e.out_of_range:
            raise QMPError(f"Value '{value}' is out of range for parameter '{name}'") from None
        raise QMPError(
            f"Parameter '{name}' expects a non-negative number below 2^64\n"
            + SIZE_HINT.rstrip("\n")
        ) from None


def parse_text_bool(name: str, value: str) -> bool:
    """A boolean as QEMU's string input visitor reads it."""
    try:
        return parse_bool(value)
    except ParseError:
        raise QMPError(f"Parameter '{name}' expects 'on' or 'off'") from None


def parse_text_enum(name: str, value: str, values: Sequence[str]) -> str:
    """An enumeration value as QEMU's string input visitor reads it."""
    if value not in values:
        raise QMPError(f"Parameter '{name}' does not accept value '{value}'")
    return value


def parse_text_mib(
    value: str, warn: Callable[[str], None] | None = None, *, revised: bool = False
) -> int:
    """``qemu_strtosz_MiB`` as HMP reads bandwidths (MiB by default, at most
    ``INT64_MAX``); raises :class:`QMPError` ``Invalid size VALUE``."""
    try:
        number = strtosz(value, "M", hex_suffix_warning=warn, revised=revised)
    except ParseError:
        raise QMPError(f"Invalid size {value}") from None
    if number > INT64_MAX:
        raise QMPError(f"Invalid size {value}")
    return number


def parse_text_argv(value: str) -> list[str]:
    """A command line as HMP reads ``cpr-exec-command`` (:func:`shell_parse_argv`)."""
    try:
        return shell_parse_argv(value)
    except ParseError as e:
        raise QMPError(str(e)) from None
