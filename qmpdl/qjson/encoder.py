"""QEMU's JSON writer: how a reply is printed, byte for byte.

* Output is pure ASCII.  In strings, ``"`` and ``\\`` are backslash-escaped, as are
  backspace, form feed, newline, carriage return and tab (``\\b \\f \\n \\r \\t``); every
  other control character, DEL and everything beyond ASCII becomes ``\\uXXXX`` with
  upper-case hex, characters beyond the BMP as a surrogate pair.  ``/`` is left alone.
  Characters QEMU cannot hold (surrogates, noncharacters) come out as ``\\uFFFD``.
* Integers print in decimal, doubles with C's ``%.17g`` (so ``1.0`` is ``1``, ``0.1`` is
  ``0.10000000000000001``, and there are ``inf``, ``-inf`` and ``-0``).
* Objects list their members in QDict order (see :mod:`qmpdl.qjson.qdict`).
* Compact form separates members and elements with ``", "`` and keys from values with
  ``": "``.  Pretty form (``-mon pretty=on``) puts every member and element on its own
  line indented by four spaces per level, closes containers on a line of their own (an
  empty container, too, prints as an opening line and a closing line) and keeps ``": "``.
* The monitor writes the text plus ``\\n``, with every ``\\n`` sent as ``\\r\\n``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Final, TypeVar

from qmpdl.jsontypes import JsonValue
from qmpdl.qjson.errors import JsonNull
from qmpdl.qjson.qdict import qdict_order
from qmpdl.qjson.utf8 import unrepresentable

__all__ = ["encode_message", "key_order", "quote", "to_json"]

# Written as the complement of what passes unchanged (printable ASCII but '"' and '\\'):
# the same set as [\x00-\x1f"\\\x7f-\U0010ffff], compiled in a fraction of the time.
_NEEDS_ESCAPE: Final = re.compile("[^\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]")
_SHORT_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _Memo(dict[_K, _V]):
    """``compute(key)`` looked up as ``memo[key]``, remembered for the first 4096 keys."""

    def __init__(self, compute: Callable[[_K], _V]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, key: _K) -> _V:
        value = self._compute(key)
        if len(self) < 4096:
            self[key] = value
        return value


def _escape_char(ch: str) -> str:
    cp = ord(ch)
    if unrepresentable(ch):
        return "\\uFFFD"
    if cp > 0xFFFF:
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}"
    return f"\\u{cp:04X}"


_escapes: Final = _Memo(_escape_char)
_escapes.update(_SHORT_ESCAPES)


def _escape_match(match: re.Match[str]) -> str:
    return _escapes[match.group()]


def quote(text: str) -> str:
    """``text`` as a JSON string literal, exactly as QEMU writes it."""
    if _NEEDS_ESCAPE.search(text) is None:
        return '"' + text + '"'
    return '"' + _NEEDS_ESCAPE.sub(_escape_match, text) + '"'


_quoted_keys: Final = _Memo(quote)
_orders: Final = _Memo[tuple[str, ...], list[str]](qdict_order)


def key_order(keys: Iterable[str]) -> list[str]:
    """:func:`qdict_order`, memoised per tuple of keys."""
    return _orders[tuple(keys)]


def _float(value: float) -> str:
    if math.isnan(value):  # glibc prints the sign of a NaN, Python does not
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return format(value, ".17g")


def _compact(value: JsonValue) -> str:
    t = type(value)
    if t is str:
        return quote(value)  # type: ignore[arg-type]
    if t is dict:
        if not value:
            return "{}"
        obj: dict[str, JsonValue] = value  # type: ignore[assignment]
        order = _orders[tuple(obj)]
        return "{" + ", ".join([_quoted_keys[k] + ": " + _compact(obj[k]) for k in order]) + "}"
    if t is int:
        return str(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is float:
        return _float(value)  # type: ignore[arg-type]
    if t in _ARRAY_TYPES:
        return "[" + ", ".join([_compact(v) for v in value]) + "]"  # type: ignore[union-attr]
    return _compact(_normalise(value))


def _write(value: JsonValue, pretty: bool) -> str:
    """The general writer: iterative (any depth), compact or pretty, like QEMU's.

    Mirrors QEMU's JSON writer: before every member or element comes ``,`` plus a newline
    and indentation (pretty) or a space (compact), except before the first one, which in
    pretty mode gets just the newline and indentation; a container closes with a newline
    and the outer indentation (pretty) before its bracket.
    """
    parts: list[str] = []
    # Open containers: (iterator over (key, value) pairs, is_object).
    stack: list[tuple[Iterator[tuple[str, JsonValue]], bool]] = []
    need_comma = False
    item: tuple[str, JsonValue] | None = ("", value)
    while item is not None:
        key, v = item
        t = type(v)
        if t not in _KNOWN_TYPES:
            v = _normalise(v)
            t = type(v)
        depth = len(stack)
        if need_comma:
            parts.append(",\n" + "    " * depth if pretty else ", ")
        elif pretty and parts:
            parts.append("\n" + "    " * depth)
        need_comma = True
        if stack and stack[-1][1]:
            parts.append(_quoted_keys[key])
            parts.append(": ")
        if t is dict:
            obj: dict[str, JsonValue] = v  # type: ignore[assignment]
            parts.append("{")
            stack.append((iter([(k, obj[k]) for k in key_order(obj)]), True))
            need_comma = False
        elif t in _ARRAY_TYPES:
            parts.append("[")
            stack.append(((("", x) for x in v), False))  # type: ignore[union-attr]
            need_comma = False
        else:
            parts.append(_compact(v))
        item = None
        while stack:
            item = next(stack[-1][0], None)
            if item is not None:
                break
            _, is_object = stack.pop()
            need_comma = True
            if pretty:
                parts.append("\n" + "    " * len(stack))
            parts.append("}" if is_object else "]")
    return "".join(parts)


_KNOWN_TYPES: Final = frozenset({dict, list, tuple, str, int, float, bool, type(None)})
_ARRAY_TYPES: Final = frozenset({list, tuple})


def _normalise(value: object) -> JsonValue:
    """Map subclasses (``IntEnum``, ``OrderedDict``, ...) to the plain JSON types."""
    if isinstance(value, JsonNull):
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def to_json(value: JsonValue, pretty: bool = False) -> str:
    """QEMU's ``qobject_to_json`` (or ``qobject_to_json_pretty``) of ``value``.

    Dicts are taken as QDicts filled in the dict's insertion order.  Integers outside the
    64-bit ranges, which QEMU cannot hold, are printed in decimal all the same.
    :data:`~qmpdl.qjson.JSON_NULL` is ``null``; subclasses of the JSON types (enums,
    ``OrderedDict``, tuples) are written as their base type.
    """
    if not pretty:
        try:
            return _compact(value)
        except RecursionError:
            return _write(value, False)
    return _write(value, True)


def encode_message(value: JsonValue, pretty: bool = False) -> bytes:
    """The bytes the monitor writes for ``value``: the JSON, a line end, CRLF throughout."""
    if not pretty:
        return (to_json(value) + "\r\n").encode("ascii")
    return (_write(value, True) + "\n").replace("\n", "\r\n").encode("ascii")
