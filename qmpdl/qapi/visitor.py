"""Argument validation exactly as QEMU's QObject input visitor does it.

QEMU checks a command's ``arguments`` by visiting them with its generated
visitors: members in schema order, the first problem wins, and only after all
members were visited it reports a leftover key.  Reproduced here:

* a container stack; error paths are built like QEMU's ``full_name()``:
  ``a``, ``a.b``, ``list[0]``, ``list[0].b``;
* every JSON object's keys go into a GLib hash table (in QDict iteration order,
  :func:`qmpdl.qjson.qdict.qdict_order`)
  and are removed as they are visited; the leftover key reported is the first
  one the hash table iterates (:mod:`qmpdl.qapi.ghash`);
* an optional member counts as present when its key exists, whatever the value
  (``null`` included), so a present ``null`` gets the member type's error;
* integers: ``int``/``int64`` need a JSON integer in int64 range; ``uint64`` and
  ``size`` accept any integer in [-2**63, 2**64) and wrap negative ones
  (``-1`` -> 2**64-1); the narrower types check their range afterwards and
  name the *bare* member (``null`` inside lists) with the C type
  (``Parameter 'x' expects uint8_t``);
* an unknown enum value names the bare member, ``null`` inside lists.

The result is the arguments as plain Python values (enums as strings), keyed
by QAPI member name and holding only the members that were present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi.ghash import GStrHashTable
from qmpdl.qapi.schema import (
    INT_RANGES,
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    ObjectType,
    QapiType,
    alternate_json_kind,
)
from qmpdl.qjson.qdict import qdict_order

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_LIMIT = 1 << 64

#: Marks a member that is absent (``None`` is a legitimate JSON null).
_MISSING = object()


@dataclass
class _Frame:
    """One container being visited: a JSON object or a JSON array."""

    name: str | None
    value: JsonObject | list[JsonValue]
    unvisited: GStrHashTable | None = None
    index: int = -1  # arrays: index of the element last taken
    items: list[JsonValue] = field(default_factory=list)


def json_kind(value: object) -> str:
    """The JSON kind of a parsed value, as :func:`alternate_json_kind` names them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _invalid_type(name: str, expected: str) -> QMPError:
    return QMPError(f"Invalid parameter type for '{name}', expected: {expected}")


class InputVisitor:
    """Validates one JSON value tree against QAPI types; raises :class:`QMPError`."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []

    # -- names -----------------------------------------------------------------------

    def full_name(self, name: str | None) -> str:
        """The path of the thing named ``name`` in the innermost container."""
        text = ""
        for frame in reversed(self.stack):
            if isinstance(frame.value, dict):
                text = f".{name if name is not None else '<anonymous>'}{text}"
            else:
                text = f"[{frame.index}]{text}"
            name = frame.name
        if name is not None:
            return f"{name}{text}"
        if text.startswith("."):
            return text[1:]
        return text or "<anonymous>"

    # -- containers -------------------------------------------------------------------------

    def _peek(self, name: str | None) -> object:
        """The value of member ``name`` (or the next element) without taking it."""
        frame = self.stack[-1]
        if isinstance(frame.value, dict):
            assert name is not None
            return frame.value.get(name, _MISSING)
        position = frame.index + 1
        return frame.items[position] if position < len(frame.items) else _MISSING

    def _take(self, name: str | None) -> JsonValue:
        """Take member ``name`` (or the next element); 'is missing' when absent."""
        frame = self.stack[-1]
        value: object
        if isinstance(frame.value, dict):
            assert name is not None and frame.unvisited is not None
            value = frame.value.get(name, _MISSING)
            if value is not _MISSING:
                frame.unvisited.remove(name)
        else:
            value = self._peek(None)
            frame.index += 1
        if value is _MISSING:
            raise QMPError(f"Parameter '{self.full_name(name)}' is missing")
        return value  # type: ignore[return-value]

    def _push(self, name: str | None, value: JsonObject | list[JsonValue]) -> None:
        if isinstance(value, dict):
            self.stack.append(_Frame(name, value, GStrHashTable(qdict_order(list(value)))))
        else:
            self.stack.append(_Frame(name, value, items=value))

    def _check_struct(self) -> None:
        frame = self.stack[-1]
        assert frame.unvisited is not None
        leftover = frame.unvisited.first()
        if leftover is not None:
            raise QMPError(f"Parameter '{self.full_name(leftover)}' is unexpected")

    # -- entry points ---------------------------------------------------------------------

    def visit_arguments(self, typ: ObjectType | None, arguments: JsonObject) -> JsonObject:
        """Validate a command's (or event's) whole argument object."""
        self.stack = []
        out: JsonObject = {}
        self._push(None, arguments)
        if typ is not None:
            self._visit_members(typ, out)
        self._check_struct()
        self.stack.pop()
        return out

    # -- types ---------------------------------------------------------------------------

    def _visit_members(self, typ: ObjectType, out: JsonObject) -> None:
        for member in typ.members:
            if member.optional and self._peek(member.name) is _MISSING:
                continue
            out[member.name] = self.visit(member.type, member.name)
        if typ.variants is not None:
            tag = out[typ.variants.tag.name]
            assert isinstance(tag, str)
            branch = typ.variants.branch(tag)
            assert branch is not None
            self._visit_members(branch, out)

    def visit(self, typ: QapiType, name: str | None) -> JsonValue:
        """Visit the member ``name`` (None: the next list element) as ``typ``."""
        if isinstance(typ, BuiltinType):
            return self._visit_builtin(typ.name, name)
        if isinstance(typ, EnumType):
            return self._visit_enum(typ, name)
        if isinstance(typ, AlternateType):
            return self._visit_alternate(typ, name)
        value = self._take(name)
        if isinstance(typ, ArrayType):
            if not isinstance(value, list):
                raise _invalid_type(self.full_name(name), "array")
            self._push(name, value)
            items = [self.visit(typ.element, None) for _ in value]
            self.stack.pop()
            return items
        if not isinstance(value, dict):
            raise _invalid_type(self.full_name(name), "object")
        self._push(name, value)
        out: JsonObject = {}
        self._visit_members(typ, out)
        self._check_struct()
        self.stack.pop()
        return out

    def _visit_alternate(self, typ: AlternateType, name: str | None) -> JsonValue:
        """The branch whose JSON kind the value has visits it; no such branch names the
        bare member (``null`` inside lists) and the alternate."""
        value = self._peek(name)
        if value is _MISSING:
            self._take(name)  # raises "is missing"
        kind = json_kind(value)
        for _, branch in typ.branches:
            if alternate_json_kind(branch) == kind:
                return self.visit(branch, name)
        self._take(name)
        shown = name if name is not None else "null"
        raise _invalid_type(shown, typ.name)

    def _visit_enum(self, typ: EnumType, name: str | None) -> str:
        value = self._take(name)
        if not isinstance(value, str):
            raise _invalid_type(self.full_name(name), "string")
        if value not in typ.values:
            shown = name if name is not None else "null"
            raise QMPError(f"Parameter '{shown}' does not accept value '{value}'")
        return value

    def _visit_builtin(self, kind: str, name: str | None) -> JsonValue:
        value = self._take(name)
        if kind in INT_RANGES:
            return self._visit_int(kind, name, value)
        if kind == "str":
            if not isinstance(value, str):
                raise _invalid_type(self.full_name(name), "string")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise _invalid_type(self.full_name(name), "boolean")
            return value
        if kind == "number":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise _invalid_type(self.full_name(name), "number")
            return float(value)
        if kind == "null":
            if value is not None:
                raise _invalid_type(self.full_name(name), "null")
            return None
        assert kind == "any"
        return value

    def _visit_int(self, kind: str, name: str | None, value: JsonValue) -> int:
        low, high, c_type = INT_RANGES[kind]
        integer = value if isinstance(value, int) and not isinstance(value, bool) else None
        if low < 0:  # signed: QEMU's type_int64, then the range of the C type
            if integer is None or not _INT64_MIN <= integer <= _INT64_MAX:
                raise _invalid_type(self.full_name(name), "integer")
            number = integer
        else:  # unsigned: type_uint64 (negative int64 values wrap), then the range
            if integer is None or not _INT64_MIN <= integer < _UINT64_LIMIT:
                raise QMPError(f"Parameter '{self.full_name(name)}' expects uint64")
            number = integer % _UINT64_LIMIT
        if not low <= number <= high:
            shown = name if name is not None else "null"
            raise QMPError(f"Parameter '{shown}' expects {c_type}")
        return number
