"""Immutable records with keyword construction: what qmpdl's configuration and its
generated QAPI types are made of.

A class lists its fields as annotations with defaults, dataclass style::

    class Workload(Record):
        kind: Literal["write", "read", "idle"] = "write"
        rate: float = 450.0
        tags: list[str] = []          # a mutable default is copied for each record

    Workload(rate=100.0)

Construction is cheap and imports nothing: a class is described (its fields, their
defaults and aliases) the first time a record of it is made, and the values are taken
as given - the parsers that build records check what they accept, and the QAPI layer's
visitor checks arguments before :meth:`Record.model_validate` turns them into records
(strings into the field's enum, dicts into nested records: the conversions are worked
out from the annotations, once, on first use).  The ``model_*`` names are those of the
pydantic models these records replace, so code reads the same.
"""

from __future__ import annotations

import copy
import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Self, dataclass_transform

from qmpdl.errors import QmpdlError

_MISSING: Any = object()
_MUTABLE = (list, dict, set, bytearray)


class FieldInfo:
    """A field's default (or none: required) and the name it has in JSON, if different."""

    __slots__ = ("alias", "default", "name")

    def __init__(self, default: Any = _MISSING, alias: str | None = None) -> None:
        self.default = default
        self.alias = alias
        self.name = ""

    def is_required(self) -> bool:
        return self.default is _MISSING

    def make_default(self) -> Any:
        default = self.default
        return copy.copy(default) if isinstance(default, _MUTABLE) else default

    def __repr__(self) -> str:
        return f"FieldInfo(name={self.name!r}, alias={self.alias!r})"


def Field(default: Any = _MISSING, *, alias: str | None = None) -> Any:  # noqa: N802
    """A field with a JSON name of its own (``Field(alias="cpu-index")``), required unless
    it has a default."""
    return FieldInfo(default, alias)


class RecordError(QmpdlError, TypeError):
    """A record built with a field it does not have, or without one it needs."""


Converter = Callable[[Any], Any]


class _Meta:
    """What a record class is made of, worked out on first use."""

    __slots__ = ("by_alias", "converters", "fields", "owner")

    def __init__(self, owner: type[Record]) -> None:
        self.owner = owner
        self.fields: dict[str, FieldInfo] = {}
        for klass in reversed(owner.__mro__):
            if klass is Record or klass is object:
                continue
            notes = inspect.get_annotations(klass)
            for name, note in notes.items():
                if name.startswith("_") or "ClassVar" in str(note):
                    continue
                value = klass.__dict__.get(name, _MISSING)
                info = value if isinstance(value, FieldInfo) else FieldInfo(value)
                info.name = name
                self.fields[name] = info
        self.by_alias = {f.alias: n for n, f in self.fields.items() if f.alias is not None}
        self.converters: dict[str, Converter] | None = None

    def converters_for(self) -> dict[str, Converter]:
        if self.converters is None:
            if all(_plain(note) for note in self._notes()):
                # nothing to convert: no annotation evaluated (each costs a compile)
                self.converters = {}
                return self.converters
            hints = _hints(self.owner)
            found = {}
            for name in self.fields:
                convert = _converter(hints.get(name, Any))
                if convert is not None:
                    found[name] = convert
            self.converters = found
        return self.converters

    def _notes(self) -> list[Any]:
        """Each field's annotation as written (a string under postponed evaluation)."""
        notes: dict[str, Any] = {}
        for klass in reversed(self.owner.__mro__):
            if klass is not Record and klass is not object:
                notes.update(inspect.get_annotations(klass))
        return [notes[name] for name in self.fields]


#: Names an annotation may use and still need no conversion (enums and records need
#: one, so does whatever contains them): builtins, ``Any``, ``Literal``, containers.
_PLAIN_NAMES = frozenset(
    ("str", "int", "bool", "float", "bytes", "None", "Any", "Literal", "list", "dict", "tuple",
     "frozenset", "set", "Mapping", "Sequence", "JsonValue", "JsonObject")
)  # fmt: skip
_SEPARATORS = str.maketrans("[],|", "    ")


def _plain(note: Any) -> bool:
    """True when a field annotated ``note`` (as written) takes values as they are:
    :func:`_converter` would return None for it."""
    if not isinstance(note, str):
        return note in (str, int, bool, float, bytes, Any)
    for quote in "'\"":  # a Literal's values
        note = "".join(note.split(quote)[0::2])
    return all(name in _PLAIN_NAMES for name in note.translate(_SEPARATORS).split())


def _hints(cls: type) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        if module is not None:
            namespace.update(vars(module))
    try:
        return typing.get_type_hints(cls, globalns=namespace)
    except Exception:  # an annotation that names what is not importable: no conversions
        return {}


def _converter(hint: Any) -> Converter | None:
    """How a value given for a field annotated ``hint`` becomes what the field holds:
    enum members from their values, records from mappings, lists element by element;
    None where values are taken as they are."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        converters = [c for c in (_converter(a) for a in options) if c is not None]
        if len(converters) == 1 and len(options) == 1:
            inner = converters[0]
            return lambda v: None if v is None else inner(v)
        if converters:
            return _first_fitting(options)
        return None
    if origin is list:
        (element,) = typing.get_args(hint) or (Any,)
        each = _converter(element)
        if each is None:
            return None
        return lambda v: [each(x) for x in v] if isinstance(v, list) else v
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        enum_type = hint
        return lambda v: v if isinstance(v, enum_type) else enum_type(v)
    if isinstance(hint, type) and issubclass(hint, Record):
        record_type = hint
        return lambda v: record_type.model_validate(v) if isinstance(v, Mapping) else v
    return None


def _first_fitting(options: list[Any]) -> Converter:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        for option in options:
            if isinstance(option, type) and isinstance(value, option):
                return value
        for option in options:
            fitting = _converter(option)
            if fitting is None:
                continue
            try:
                return fitting(value)
            except (ValueError, RecordError):
                continue
        return value

    return convert


class _ClassProperty:
    def __init__(self, getter: Callable[[type[Any]], Any]) -> None:
        self.getter = getter

    def __get__(self, instance: object, owner: type[Any]) -> Any:
        return self.getter(owner)


@dataclass_transform(kw_only_default=True, frozen_default=True)
class Record:
    """An immutable record; see the module's documentation."""

    __record_meta__: ClassVar[_Meta | None] = None

    @classmethod
    def _meta(cls) -> _Meta:
        meta = cls.__dict__.get("__record_meta__")
        if meta is None:
            meta = _Meta(cls)
            type.__setattr__(cls, "__record_meta__", meta)
        return meta

    def __init__(self, **values: Any) -> None:
        meta = type(self)._meta()
        fields = meta.fields
        state: dict[str, Any] = {}
        converters = meta.converters if meta.converters is not None else meta.converters_for()
        for key, value in values.items():
            name = key if key in fields else meta.by_alias.get(key)
            if name is None:
                raise RecordError(f"{type(self).__name__} has no field {key!r}")
            convert = converters.get(name)
            state[name] = value if convert is None else convert(value)
        given = frozenset(state)
        if len(state) != len(fields):
            for name, info in fields.items():
                if name not in state:
                    if info.default is _MISSING:
                        raise RecordError(f"{type(self).__name__} needs {name!r}")
                    state[name] = info.make_default()
        state["model_fields_set"] = given
        object.__setattr__(self, "__dict__", state)

    # ------------------------------------------------------------------ immutability

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # ------------------------------------------------------------------ comparison

    def _values(self) -> tuple[Any, ...]:
        return tuple(self.__dict__[name] for name in type(self)._meta().fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = type(self)._meta().fields
        inner = ", ".join(f"{name}={self.__dict__[name]!r}" for name in fields)
        return f"{type(self).__name__}({inner})"

    # ------------------------------------------------------------------ pydantic's names

    model_fields_set: frozenset[str]

    model_fields = _ClassProperty(lambda cls: dict(cls._meta().fields))

    @classmethod
    def model_validate(cls, data: Mapping[str, Any] | Self) -> Self:
        """A record from a mapping keyed by field names or aliases (or the record)."""
        if isinstance(data, cls):
            return data
        return cls(**typing.cast(Mapping[str, Any], data))

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        values = {name: self.__dict__[name] for name in self.model_fields_set}
        values.update(update or {})
        copied = type(self)(**values)
        unset = type(self)._meta().fields.keys() - copied.model_fields_set
        for name in unset:
            copied.__dict__[name] = self.__dict__[name]
        return copied

    def model_dump(
        self,
        *,
        mode: str = "python",
        by_alias: bool = False,
        exclude_unset: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, info in type(self)._meta().fields.items():
            if exclude_unset and name not in self.model_fields_set:
                continue
            value = self.__dict__[name]
            if exclude_none and value is None:
                continue
            key = info.alias if by_alias and info.alias is not None else name
            out[key] = _dump(value, mode, by_alias, exclude_unset, exclude_none)
        return out


def _dump(value: Any, mode: str, by_alias: bool, exclude_unset: bool, exclude_none: bool) -> Any:
    if isinstance(value, Record):
        return value.model_dump(
            mode=mode, by_alias=by_alias, exclude_unset=exclude_unset, exclude_none=exclude_none
        )
    if isinstance(value, enum.Enum) and mode == "json":
        return value.value
    if isinstance(value, list | tuple):
        items: Iterable[Any] = (
            _dump(v, mode, by_alias, exclude_unset, exclude_none) for v in value
        )
        return list(items) if mode == "json" or isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _dump(v, mode, by_alias, exclude_unset, exclude_none) for k, v in value.items()}
    return value
