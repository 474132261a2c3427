"""Turning validated argument values into the generated models.

The input visitor returns plain values keyed by QAPI names; this builds the
generated models (:mod:`qmpdl.qapi.models`) bottom-up, so that union values become
the subclass of their tag value (``CpuInfoFastVariantS390x``...).
"""

from __future__ import annotations

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi import models
from qmpdl.qapi.base import QapiModel
from qmpdl.qapi.schema import AlternateType, ArrayType, ObjectType, QapiType, alternate_json_kind
from qmpdl.qapi.visitor import json_kind

_COMBINED: dict[tuple[type[QapiModel], type[QapiModel]], type[QapiModel]] = {}


def model_class(typ: ObjectType, value: JsonObject) -> type[QapiModel]:
    """The class a value of the named object type ``typ`` becomes.

    A union whose branch is itself a union (``MigrationAddress`` -> ``SocketAddress``)
    becomes a class deriving from both variants, so the inner branch's members
    (``host``, ``port``...) survive."""
    if typ.variants is not None:
        tag = str(value.get(typ.variants.tag.name))
        variant = models.variant(typ.name, tag)
        if variant is not None:
            branch = typ.variants.branch(tag)
            if branch is not None and branch.variants is not None:
                inner = model_class(branch, value)
                if inner is not models.struct(branch.name):
                    return _combined(variant, inner)
            return variant
    found = models.struct(typ.name)
    assert found is not None, typ.name
    return found


def _combined(outer: type[QapiModel], inner: type[QapiModel]) -> type[QapiModel]:
    key = (outer, inner)
    if key not in _COMBINED:
        _COMBINED[key] = type(f"{outer.__name__}{inner.__name__}", (outer, inner), {})
    return _COMBINED[key]


def bind_members(typ: ObjectType, value: JsonObject) -> dict[str, object]:
    """Field values (by QAPI name) of an object value, members bound recursively
    (through nested unions' branches too)."""
    fields: dict[str, object] = {}
    for member in typ.members:
        if member.name in value:
            fields[member.name] = bind_value(member.type, value[member.name])
    if typ.variants is not None:
        branch = typ.variants.branch(str(value.get(typ.variants.tag.name)))
        if branch is not None:
            fields.update(bind_members(branch, value))
    return fields


def bind_value(typ: QapiType, value: JsonValue) -> object:
    """A visited value as the Python value of a model field."""
    if isinstance(typ, AlternateType):
        # the visitor chose the branch of the value's JSON kind; the same one binds it
        for _, branch in typ.branches:
            if alternate_json_kind(branch) == json_kind(value):
                return bind_value(branch, value)
        return value
    if isinstance(typ, ArrayType):
        assert isinstance(value, list)
        return [bind_value(typ.element, item) for item in value]
    if isinstance(typ, ObjectType):
        assert isinstance(value, dict)
        return model_class(typ, value).model_validate(bind_members(typ, value))
    return value


def bind_object(cls: type[QapiModel], typ: ObjectType | None, value: JsonObject) -> QapiModel:
    """The model ``cls`` holding the visited members of ``typ``."""
    return cls.model_validate(bind_members(typ, value) if typ is not None else {})
