"""Turning a handler's result into the JSON value QEMU's output visitor builds.

* objects become dicts whose keys are inserted in schema member order (base
  members, then the members of the union branch the tag selects); the encoder
  later applies the QDict hash order;
* an optional member is left out when absent: ``None``, except for the types
  that can hold null (``any``, ``null``), where a field counts as present when
  it was set explicitly;
* members the current QEMU version does not have are ignored, so handlers can
  fill in every version's members;
* enums become their string, integers stay integers (checked against the C
  type's range), ``number`` becomes a float.

A result that does not fit the schema is a bug in qmpdl, reported as
:class:`OutputError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum

from qmpdl.errors import QmpdlError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi.naming import field_name
from qmpdl.qapi.schema import (
    INT_RANGES,
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    ObjectMember,
    ObjectType,
    QapiType,
)
from qmpdl.record import Record

_ABSENT = object()


class OutputError(QmpdlError, TypeError):
    """A value does not match the schema type it is returned as."""


def _nullable(typ: QapiType) -> bool:
    if isinstance(typ, AlternateType):
        return any(_nullable(branch) for _, branch in typ.branches)
    return isinstance(typ, BuiltinType) and typ.name in ("any", "null")


class _MemberPlan:
    """What shaping needs to know about one member, worked out once per member."""

    __slots__ = ("attr", "int_range", "name", "nullable", "optional", "type")

    def __init__(self, member: ObjectMember) -> None:
        self.name = member.name
        self.attr = field_name(member.name)
        self.optional = member.optional
        self.type = member.type
        self.nullable = _nullable(member.type)
        #: (low, high) for integer members: the common case takes a short cut
        self.int_range: tuple[int, int] | None = None
        if isinstance(member.type, BuiltinType) and member.type.name in INT_RANGES:
            low, high, _ = INT_RANGES[member.type.name]
            self.int_range = (low, high)


#: Member plans per object type (types live as long as their schema).
_plans: dict[int, tuple[ObjectType, tuple[_MemberPlan, ...]]] = {}


def _plan(typ: ObjectType) -> tuple[_MemberPlan, ...]:
    entry = _plans.get(id(typ))
    if entry is None or entry[0] is not typ:
        entry = (typ, tuple(_MemberPlan(m) for m in typ.members))
        _plans[id(typ)] = entry
    return entry[1]


#: Field names per model class.
_model_fields: dict[type[Record], frozenset[str]] = {}


def _fields(cls: type[Record]) -> frozenset[str]:
    names = _model_fields.get(cls)
    if names is None:
        names = _model_fields[cls] = frozenset(cls.model_fields)
    return names


def _member_value(obj: object, plan: _MemberPlan) -> object:
    """The value ``obj`` holds for the member, or _ABSENT."""
    if isinstance(obj, Record):
        if plan.attr not in _fields(type(obj)):
            return _ABSENT
        value = getattr(obj, plan.attr)
        if value is None and not (plan.nullable and plan.attr in obj.model_fields_set):
            return _ABSENT
        return value
    assert isinstance(obj, Mapping)
    value = obj.get(plan.name, _ABSENT)
    if value is None and not plan.nullable:
        return _ABSENT
    return value


def _object(typ: ObjectType, obj: object, path: str) -> JsonObject:
    if not isinstance(obj, Record | Mapping):
        raise OutputError(f"{path}: expected {typ.name}, got {type(obj).__name__}")
    out: JsonObject = {}
    for plan in _plan(typ):
        value = _member_value(obj, plan)
        if value is _ABSENT:
            if not plan.optional:
                raise OutputError(f"{path}: {typ.name} lacks member {plan.name!r}")
            continue
        bounds = plan.int_range
        if bounds is not None and type(value) is int and bounds[0] <= value <= bounds[1]:
            out[plan.name] = value
        else:
            out[plan.name] = to_json(plan.type, value, f"{path}.{plan.name}")
    if typ.variants is not None:
        branch = typ.variants.branch(str(out[typ.variants.tag.name]))
        assert branch is not None
        out.update(_object(branch, obj, path))
    return out


def _builtin(typ: BuiltinType, value: object, path: str) -> JsonValue:
    kind = typ.name
    if kind in INT_RANGES:
        low, high, _ = INT_RANGES[kind]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise OutputError(f"{path}: {value!r} is not a valid {kind}")
        return int(value)
    if kind == "str" and isinstance(value, str):
        return str(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "null" and value is None:
        return None
    if kind == "any":
        return _any(value, path)
    raise OutputError(f"{path}: {value!r} is not a valid {kind}")


def _any(value: object, path: str) -> JsonValue:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _any(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_any(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise OutputError(f"{path}: {value!r} is not a JSON value")


def to_json(typ: QapiType, value: object, path: str = "return") -> JsonValue:
    """``value`` as the JSON value of schema type ``typ``."""
    if isinstance(typ, BuiltinType):
        return _builtin(typ, value, path)
    if isinstance(typ, EnumType):
        text = value.value if isinstance(value, Enum) else value
        if not isinstance(text, str) or text not in typ.values:
            raise OutputError(f"{path}: {value!r} is not a {typ.name} value")
        return text
    if isinstance(typ, AlternateType):
        for _, branch in typ.branches:
            try:
                return to_json(branch, value, path)
            except OutputError:
                continue
        raise OutputError(f"{path}: {value!r} fits no branch of {typ.name}")
    if isinstance(typ, ArrayType):
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise OutputError(f"{path}: expected a list, got {type(value).__name__}")
        return [to_json(typ.element, item, f"{path}[{i}]") for i, item in enumerate(value)]
    return _object(typ, value, path)
