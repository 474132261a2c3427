"""A shortcut for the common case: a well-formed, plain request parsed by C code.

Python's ``json`` scanner (implemented in C) agrees with QEMU on a large, easily recognised
subset of inputs: ASCII text whose strings use no ``\\u`` escapes, with no duplicate keys,
no ``NaN``/``Infinity`` and modest nesting.  For such an object or array QEMU emits the
message exactly at its closing bracket (its bracket counts balance there and never earlier)
and produces the same value, once integers outside 64 bits are turned into doubles as QEMU
does.  Anything the scanner rejects, and anything outside the subset, is left to the exact
lexer and parser, which then also produce the right error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from qmpdl.errors import QmpdlError
from qmpdl.jsontypes import JsonValue

__all__ = ["scan_value"]

#: Nesting up to this depth is always fine for QEMU (its limit is 1024).
_SAFE_LENGTH: Final = 2048
_MAX_NESTING: Final = 1024
_INT64_MIN: Final = -(1 << 63)
_UINT64_LIMIT: Final = 1 << 64


class _RefusedError(QmpdlError, ValueError):
    """Input the fast path must not decide on."""


def _pairs(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _RefusedError("duplicate key")
    return obj


def _integer(text: str) -> int | float:
    value = int(text)
    if _INT64_MIN <= value < _UINT64_LIMIT:
        return value
    return float(text)


def _constant(text: str) -> JsonValue:
    raise _RefusedError(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_int=_integer, parse_constant=_constant, strict=True
)
#: The scanner behind ``raw_decode``, called directly: (text, index) -> (value, end).
_scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def scan_value(text: str, start: int, ascii_only: bool) -> tuple[JsonValue, int] | None:
    """Parse the object or array at ``text[start]`` if it is in the safe subset.

    ``text`` is the input decoded as Latin-1 (one character per byte); ``ascii_only`` says
    that all of it is ASCII.  Returns the value and the index after it, or ``None`` when
    the exact parser has to decide (incomplete, malformed or unusual input).
    """
    try:
        value, end = _scan_once(text, start)
    except (ValueError, StopIteration, RecursionError):
        return None
    if text.find("\\u", start, end) >= 0:
        return None
    if not ascii_only and not text[start:end].isascii():
        return None
    if (
        end - start > _SAFE_LENGTH
        and text.count("[", start, end) + text.count("{", start, end) > _MAX_NESTING
    ):
        return None
    return value, end
