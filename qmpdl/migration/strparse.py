"""Numbers, sizes and booleans spelled as text, read the way QEMU's C helpers read them.

Migration parameters arrive as text from HMP (``migrate_set_parameter``) and from
``-global migration.PROP=VALUE``.  QEMU reads them with ``qemu_strtou64`` (``strtoull``
with base 0: ``0x`` hex, a leading ``0`` octal, negative numbers wrapped),
``qemu_strtosz`` (sizes with ``k``/``M``/``G``/``T``/``P``/``E`` suffixes, fractions,
exact fixed-point rounding) and ``qapi_bool_parse``.  The functions here return the
value or raise :class:`ParseError` for the cases QEMU rejects; the callers turn that
into QEMU's message for the context.
"""

from __future__ import annotations

import re
from collections.abc import Callable

U64_LIMIT = 1 << 64
INT64_MAX = (1 << 63) - 1

_SPACE = " \t\n\v\f\r"
_SUFFIXES = "BKMGTPE"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
#: What ``strtod`` reads at a decimal point: the point, digits, an optional exponent.
_FRACTION = re.compile(r"\.([0-9]+)([eE][+-]?[0-9]+)?")


class ParseError(ValueError):
    """The text is not a valid value (``EINVAL``) or it is out of range (``ERANGE``)."""


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
) -> int:
    """``qemu_strtosz`` (``default_suffix`` ``B``) or ``qemu_strtosz_MiB`` (``M``).

    A hexadecimal number with a suffix (``0x1k``) is invalid, unless
    ``hex_suffix_warning`` is given (QEMU before 8.0): then it counts and the warning
    text goes there."""
    value, end, overflow = _strtoull(text, 0, 10)
    if end == 0:
        raise ParseError(text)
    if overflow:
        raise ParseError(text)
    if "-" in text[:end]:
        raise ParseError(text)
    fraction = 0
    following = text[end : end + 1]
    hexadecimal = False
    if value == 0 and following in ("x", "X"):
        value, end, overflow = _strtoull(text, 0, 16)
        if end == 0 or overflow:
            raise ParseError(text)
        following = text[end : end + 1]
        suffixed = _suffix_mul(following, unit) > 0
        if following == "." or (suffixed and hex_suffix_warning is None):
            raise ParseError(text)
        hexadecimal = True
    elif following == ".":
        match = _FRACTION.match(text, end)
        if match is None:
            # strtod reads nothing at "." without digits: skip the point only
            end += 1
        elif match.group(2):
            # an exponent makes the whole input invalid
            raise ParseError(text)
        else:
            fraction = int(float("0." + match.group(1)) * (1 << 64))
            end = match.end()
    mul = _suffix_mul(text[end : end + 1], unit)
    if mul > 0:
        if hexadecimal and hex_suffix_warning is not None:
            hex_suffix_warning(f"Using a multiplier suffix on hex numbers is deprecated: {text}")
        end += 1
    else:
        mul = _suffix_mul(default_suffix, unit)
    if mul == 1:
        if fraction:
            raise ParseError(text)
    else:
        scaled = fraction * mul
        value = value * mul + (scaled >> 64) + ((scaled >> 63) & 1)
        if value >= U64_LIMIT:
            raise ParseError(text)
    if end != len(text):
        raise ParseError(text)
    return value


def parse_bool(text: str) -> bool:
    """``qapi_bool_parse``: on/yes/true/y and off/no/false/n, case-sensitive."""
    if text in ("on", "yes", "true", "y"):
        return True
    if text in ("off", "no", "false", "n"):
        return False
    raise ParseError(text)
