"""The QAPI schema as seen by one QEMU version.

:func:`build_schema` takes the expressions of :mod:`qmpdl.qapi.parser`, drops
everything whose ``'if'`` is false for the profile (definitions, members, enum
values, union branches, features), resolves type references and returns a
:class:`Schema`.  The model follows QEMU's own (``scripts/qapi/schema.py``) in
the parts that show on the wire:

* commands and events with inline ``'data'`` get an implicit argument type
  ``q_obj_<name>-arg``; a union with an inline base gets ``q_obj_<name>-base``;
* ``q_empty`` is the object type without members;
* an object's ``members`` are flattened: base members first, then its own;
* a union's branches cover every value of the tag enum: values without an
  explicit branch get ``q_empty``, after the explicit ones, in enum order;
* array types are named ``<element>List``.

A name may be defined more than once as long as at most one definition is
active for any profile (this is how a definition that moved between modules
keeps its per-version position).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from qmpdl.errors import QmpdlError
from qmpdl.qapi.conditions import check_condition, evaluate
from qmpdl.qapi.parser import Doc, Expression, SourceInfo, Value


class QapiSchemaError(QmpdlError):
    """The schema is inconsistent (unknown type, clash, bad shape...)."""


#: Builtin type name -> JSON type as introspection reports it.
BUILTIN_JSON_TYPES: dict[str, str] = {
    "str": "string",
    "number": "number",
    "int": "int",
    "int8": "int",
    "int16": "int",
    "int32": "int",
    "int64": "int",
    "uint8": "int",
    "uint16": "int",
    "uint32": "int",
    "uint64": "int",
    "size": "int",
    "bool": "boolean",
    "null": "null",
    "any": "value",
}

#: Integer builtins -> (minimum, maximum, C type name used in range errors).
INT_RANGES: dict[str, tuple[int, int, str]] = {
    "int": (-(1 << 63), (1 << 63) - 1, "int64_t"),
    "int64": (-(1 << 63), (1 << 63) - 1, "int64_t"),
    "int8": (-(1 << 7), (1 << 7) - 1, "int8_t"),
    "int16": (-(1 << 15), (1 << 15) - 1, "int16_t"),
    "int32": (-(1 << 31), (1 << 31) - 1, "int32_t"),
    "uint8": (0, (1 << 8) - 1, "uint8_t"),
    "uint16": (0, (1 << 16) - 1, "uint16_t"),
    "uint32": (0, (1 << 32) - 1, "uint32_t"),
    "uint64": (0, (1 << 64) - 1, "uint64_t"),
    "size": (0, (1 << 64) - 1, "uint64_t"),
}

EMPTY_OBJECT = "q_empty"


@dataclass(eq=False)
class BuiltinType:
    """A predefined scalar type (``int``, ``uint64``, ``str``, ``any``...)."""

    name: str

    @property
    def json_type(self) -> str:
        return BUILTIN_JSON_TYPES[self.name]


@dataclass(eq=False)
class EnumMember:
    """One value of an enumeration."""

    name: str
    features: tuple[str, ...] = ()


@dataclass(eq=False)
class EnumType:
    """An enumeration: its values travel as JSON strings."""

    name: str
    members: tuple[EnumMember, ...] = ()
    features: tuple[str, ...] = ()
    doc: Doc | None = None
    info: SourceInfo | None = None

    @property
    def values(self) -> list[str]:
        return [m.name for m in self.members]


@dataclass(eq=False)
class ArrayType:
    """A JSON array of one element type."""

    element: QapiType

    @property
    def name(self) -> str:
        return f"{self.element.name}List"


@dataclass(eq=False)
class ObjectMember:
    """A member of an object type."""

    name: str
    type: QapiType
    optional: bool = False
    features: tuple[str, ...] = ()


@dataclass(eq=False)
class Variant:
    """The members a union adds when its tag has the value ``case``."""

    case: str
    type: ObjectType


@dataclass(eq=False)
class Variants:
    """A union's tag member and one branch per tag value."""

    tag: ObjectMember
    branches: tuple[Variant, ...]

    def branch(self, case: str) -> ObjectType | None:
        for variant in self.branches:
            if variant.case == case:
                return variant.type
        return None


@dataclass(eq=False)
class ObjectType:
    """A struct, a union, or an implicit argument/base type.

    ``members`` is the flat list (base members first); ``variants`` is set for
    unions.
    """

    name: str
    members: tuple[ObjectMember, ...] = ()
    variants: Variants | None = None
    features: tuple[str, ...] = ()
    doc: Doc | None = None
    info: SourceInfo | None = None
    implicit: bool = False
    base: ObjectType | None = None

    def member(self, name: str) -> ObjectMember | None:
        for member in self.members:
            if member.name == name:
                return member
        return None


@dataclass(eq=False)
class AlternateType:
    """A value that may be one of several types, told apart by its JSON type.

    ``branches`` are ``(name, type)`` pairs in definition order; no two branches
    take the same JSON type.
    """

    name: str
    branches: tuple[tuple[str, QapiType], ...] = ()
    features: tuple[str, ...] = ()
    doc: Doc | None = None
    info: SourceInfo | None = None


QapiType = BuiltinType | EnumType | ArrayType | ObjectType | AlternateType


@dataclass(eq=False)
class CommandDef:
    """A QMP command as the dispatcher needs it."""

    name: str
    arg_type: ObjectType | None
    ret_type: QapiType | None
    allow_oob: bool = False
    allow_preconfig: bool = False
    coroutine: bool = False
    boxed: bool = False
    success_response: bool = True
    gen: bool = True
    features: tuple[str, ...] = ()
    doc: Doc | None = None
    info: SourceInfo | None = None


@dataclass(eq=False)
class EventDef:
    """A QMP event."""

    name: str
    arg_type: ObjectType | None
    boxed: bool = False
    features: tuple[str, ...] = ()
    doc: Doc | None = None
    info: SourceInfo | None = None


Definition = CommandDef | EventDef | EnumType | ObjectType | AlternateType


@dataclass
class Schema:
    """Everything one QEMU version defines, in definition order."""

    definitions: list[Definition] = field(default_factory=list)
    types: dict[str, QapiType] = field(default_factory=dict)
    commands: dict[str, CommandDef] = field(default_factory=dict)
    events: dict[str, EventDef] = field(default_factory=dict)

    def lookup_type(self, name: str) -> QapiType:
        """The type called ``name`` (``XList`` names the array of ``X``)."""
        found = self.types.get(name)
        if found is not None:
            return found
        if name.endswith("List"):
            array = ArrayType(self.lookup_type(name[: -len("List")]))
            self.types[name] = array
            return array
        raise QapiSchemaError(f"unknown type {name!r}")

    @property
    def empty_object(self) -> ObjectType:
        found = self.types[EMPTY_OBJECT]
        assert isinstance(found, ObjectType)
        return found


_META_KEYS = ("enum", "struct", "union", "alternate", "command", "event")

_ALLOWED_KEYS: dict[str, set[str]] = {
    "enum": {"enum", "data", "if", "features", "prefix"},
    "struct": {"struct", "data", "base", "if", "features"},
    "union": {"union", "base", "discriminator", "data", "if", "features"},
    "command": {
        "command",
        "data",
        "returns",
        "boxed",
        "if",
        "features",
        "gen",
        "success-response",
        "allow-oob",
        "allow-preconfig",
        "coroutine",
    },
    "event": {"event", "data", "boxed", "if", "features"},
    "alternate": {"alternate", "data", "if", "features"},
}


def _meta(expr: dict[str, Value], info: SourceInfo) -> tuple[str, str]:
    for key in _META_KEYS:
        if key in expr:
            name = expr[key]
            if not isinstance(name, str):
                raise QapiSchemaError(f"{info}: '{key}' needs a name")
            unknown = set(expr) - _ALLOWED_KEYS[key]
            if unknown:
                raise QapiSchemaError(f"{info}: unknown keys {sorted(unknown)} in {key} {name}")
            return key, name
    raise QapiSchemaError(f"{info}: expression defines nothing: {expr!r}")


def check_expressions(exprs: Iterable[Expression], known: Callable[[str], bool]) -> None:
    """Check every ``'if'`` (at any depth) names known features; raise otherwise."""

    def walk(value: Value, info: SourceInfo) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "if":
                    try:
                        check_condition(item, known)
                    except ValueError as exc:
                        raise QapiSchemaError(f"{info}: {exc}") from None
                else:
                    walk(item, info)
        elif isinstance(value, list):
            for item in value:
                walk(item, info)

    for expression in exprs:
        walk(expression.expr, expression.info)


class _Builder:
    """Turns the active expressions of one profile into a :class:`Schema`."""

    def __init__(self, has: Callable[[str], bool]) -> None:
        self.has = has
        self.schema = Schema()
        for name in BUILTIN_JSON_TYPES:
            self.schema.types[name] = BuiltinType(name)
        self.schema.types[EMPTY_OBJECT] = ObjectType(EMPTY_OBJECT, implicit=True)
        # Jobs that fill in object members once every name is known, by type name,
        # and the remaining ones (commands, events).
        self.pending: dict[str, Callable[[], None]] = {}
        self.fill: list[Callable[[], None]] = []

    # -- helpers ------------------------------------------------------------------------

    def active(self, spec: Value) -> bool:
        if isinstance(spec, dict):
            return evaluate(spec.get("if"), self.has)
        return True

    def names(self, items: list[Value], what: str, info: SourceInfo) -> Iterator[tuple[str, Value]]:
        """The active entries of a list of names (enum values, features): each written
        ``'name'`` or ``{'name': 'name', 'if': ...}``, with what it was written as."""
        for item in items:
            if isinstance(item, str):
                yield item, item
            elif isinstance(item, dict) and isinstance(name := item.get("name"), str):
                if self.active(item):
                    yield name, item
            else:
                raise QapiSchemaError(f"{info}: bad {what} {item!r}")

    def active_items(self, data: dict[str, Value]) -> Iterator[tuple[str, Value]]:
        """The members (branches) of ``data`` whose ``'if'`` holds."""
        return ((key, spec) for key, spec in data.items() if self.active(spec))

    def features(self, spec: Value | None, info: SourceInfo) -> tuple[str, ...]:
        if spec is None:
            return ()
        if not isinstance(spec, list):
            raise QapiSchemaError(f"{info}: 'features' must be a list")
        return tuple(name for name, _ in self.names(spec, "feature", info))

    def type_ref(self, ref: Value, info: SourceInfo) -> QapiType:
        if isinstance(ref, list):
            if len(ref) != 1 or not isinstance(ref[0], str):
                raise QapiSchemaError(f"{info}: an array type is written ['Type']")
            return self.schema.lookup_type(f"{ref[0]}List")
        if not isinstance(ref, str):
            raise QapiSchemaError(f"{info}: bad type reference {ref!r}")
        try:
            return self.schema.lookup_type(ref)
        except QapiSchemaError as exc:
            raise QapiSchemaError(f"{info}: {exc}") from None

    def add_type(self, typ: EnumType | ObjectType | AlternateType, info: SourceInfo) -> None:
        if typ.name in self.schema.types:
            raise QapiSchemaError(f"{info}: {typ.name!r} is already defined")
        self.schema.types[typ.name] = typ

    def members(self, data: Value, info: SourceInfo) -> list[ObjectMember]:
        if not isinstance(data, dict):
            raise QapiSchemaError(f"{info}: 'data' must be an object")
        out: list[ObjectMember] = []
        for key, spec in self.active_items(data):
            optional = key.startswith("*")
            name = key[1:] if optional else key
            if isinstance(spec, dict):
                if "type" not in spec:
                    raise QapiSchemaError(f"{info}: member {name!r} lacks 'type'")
                member = ObjectMember(
                    name,
                    self.type_ref(spec["type"], info),
                    optional,
                    self.features(spec.get("features"), info),
                )
            else:
                member = ObjectMember(name, self.type_ref(spec, info), optional)
            out.append(member)
        return out

    def implicit_object(self, name: str, data: Value, info: SourceInfo) -> ObjectType | None:
        """The implicit type of inline members, or None when no member is active.

        QEMU gives ``'data': {}`` no argument type at all; a version in which every
        member is conditional away looks the same.
        """
        if not isinstance(data, dict):
            raise QapiSchemaError(f"{info}: 'data' must be an object")
        if not any(self.active(spec) for spec in data.values()):
            return None
        obj = ObjectType(name, info=info, implicit=True)
        self.add_type(obj, info)

        def fill() -> None:
            obj.members = self._no_clash(self.members(data, info), name, info)

        self.pending[name] = fill
        return obj

    # -- definitions ----------------------------------------------------------------------

    def define(self, expression: Expression) -> None:
        expr, info, doc = expression.expr, expression.info, expression.doc
        meta, name = _meta(expr, info)
        if not evaluate(expr.get("if"), self.has):
            return
        features = self.features(expr.get("features"), info)
        if meta == "enum":
            self.define_enum(name, expression, features)
        elif meta in ("struct", "union"):
            obj = ObjectType(name, features=features, doc=doc, info=info)
            self.add_type(obj, info)
            self.schema.definitions.append(obj)
            if meta == "struct":
                self.pending[name] = lambda: self.fill_struct(obj, expr, info)
            else:
                base = expr.get("base")
                if isinstance(base, dict):
                    self.implicit_object(f"q_obj_{name}-base", base, info)
                self.pending[name] = lambda: self.fill_union(obj, expr, info)
        elif meta == "alternate":
            self.define_alternate(name, expression, features)
        elif meta == "command":
            self.define_command(name, expression, features)
        else:
            self.define_event(name, expression, features)

    def define_enum(self, name: str, source: Expression, features: tuple[str, ...]) -> None:
        expr, doc, info = source.expr, source.doc, source.info
        data = expr.get("data")
        if not isinstance(data, list):
            raise QapiSchemaError(f"{info}: enum {name} needs a 'data' list")
        members = [
            EnumMember(value, self.features(item.get("features"), info))
            if isinstance(item, dict)
            else EnumMember(value)
            for value, item in self.names(data, "enum value", info)
        ]
        enum = EnumType(name, tuple(members), features, doc, info)
        self.add_type(enum, info)
        self.schema.definitions.append(enum)

    def define_alternate(self, name: str, source: Expression, features: tuple[str, ...]) -> None:
        expr, doc, info = source.expr, source.doc, source.info
        data = expr.get("data")
        if not isinstance(data, dict) or not data:
            raise QapiSchemaError(f"{info}: alternate {name} needs a non-empty 'data'")
        alternate = AlternateType(name, (), features, doc, info)
        self.add_type(alternate, info)
        self.schema.definitions.append(alternate)

        def fill() -> None:
            branches: list[tuple[str, QapiType]] = []
            seen: set[str] = set()
            for case, spec in self.active_items(data):
                ref = spec["type"] if isinstance(spec, dict) and "type" in spec else spec
                typ = self.type_ref(ref, info)
                kind = alternate_json_kind(typ)
                if kind in seen:
                    raise QapiSchemaError(f"{info}: {name}: branches {case!r} clash")
                seen.add(kind)
                branches.append((case, typ))
            alternate.branches = tuple(branches)

        self.pending[name] = fill

    def fill_struct(self, obj: ObjectType, expr: dict[str, Value], info: SourceInfo) -> None:
        members: list[ObjectMember] = []
        if "base" in expr:
            base = self.type_ref(expr["base"], info)
            if not isinstance(base, ObjectType) or base.variants is not None:
                raise QapiSchemaError(f"{info}: base of {obj.name} must be a struct")
            self.ensure(base)
            obj.base = base
            members.extend(base.members)
        members.extend(self.members(expr.get("data", {}), info))
        obj.members = self._no_clash(members, obj.name, info)

    def fill_union(self, obj: ObjectType, expr: dict[str, Value], info: SourceInfo) -> None:
        base_ref = expr.get("base")
        base = (
            self.schema.types.get(f"q_obj_{obj.name}-base")
            if isinstance(base_ref, dict)
            else self.type_ref(base_ref if base_ref is not None else "", info)
        )
        if not isinstance(base, ObjectType):
            raise QapiSchemaError(f"{info}: base of union {obj.name} must be an object")
        self.ensure(base)
        obj.base = base
        obj.members = base.members
        discriminator = expr.get("discriminator")
        tag = obj.member(discriminator) if isinstance(discriminator, str) else None
        if tag is None or not isinstance(tag.type, EnumType) or tag.optional:
            raise QapiSchemaError(f"{info}: {obj.name}: bad discriminator {discriminator!r}")
        values = tag.type.values
        data = expr.get("data")
        if not isinstance(data, dict):
            raise QapiSchemaError(f"{info}: union {obj.name} needs 'data'")
        branches: list[Variant] = []
        for case, spec in self.active_items(data):
            if case not in values:
                raise QapiSchemaError(f"{info}: {obj.name}: {case!r} is not a tag value")
            ref = spec["type"] if isinstance(spec, dict) and "type" in spec else spec
            branch = self.type_ref(ref, info)
            if not isinstance(branch, ObjectType):
                raise QapiSchemaError(f"{info}: {obj.name}: branch {case!r} must be an object")
            branches.append(Variant(case, branch))
        covered = {v.case for v in branches}
        branches.extend(Variant(v, self.schema.empty_object) for v in values if v not in covered)
        obj.variants = Variants(tag, tuple(branches))

    @staticmethod
    def _no_clash(
        members: list[ObjectMember], owner: str, info: SourceInfo
    ) -> tuple[ObjectMember, ...]:
        seen: set[str] = set()
        for member in members:
            if member.name in seen:
                raise QapiSchemaError(f"{info}: {owner}: member {member.name!r} clashes")
            seen.add(member.name)
        return tuple(members)

    def arg_type(self, owner: str, data: Value | None, info: SourceInfo) -> ObjectType | None:
        if data is None:
            return None
        if isinstance(data, dict):
            return self.implicit_object(f"q_obj_{owner}-arg", data, info)
        typ = self.type_ref(data, info)
        if not isinstance(typ, ObjectType):
            raise QapiSchemaError(f"{info}: 'data' of {owner} must be an object type")
        return typ

    def set_arg_type(
        self, owner: CommandDef | EventDef, data: Value | None, info: SourceInfo
    ) -> None:
        """The ``'data'`` of a command or an event: inline members at once (their type
        is filled in with the others), a type name once every name is known."""

        def fill() -> None:
            owner.arg_type = self.arg_type(owner.name, data, info)

        if isinstance(data, dict):
            fill()
        elif data is not None:
            self.fill.append(fill)

    def define_command(self, name: str, source: Expression, features: tuple[str, ...]) -> None:
        expr, doc, info = source.expr, source.doc, source.info
        if name in self.schema.commands:
            raise QapiSchemaError(f"{info}: command {name!r} is already defined")
        command = CommandDef(
            name,
            None,
            None,
            allow_oob=expr.get("allow-oob") is True,
            allow_preconfig=expr.get("allow-preconfig") is True,
            coroutine=expr.get("coroutine") is True,
            boxed=expr.get("boxed") is True,
            success_response=expr.get("success-response") is not False,
            gen=expr.get("gen") is not False,
            features=features,
            doc=doc,
            info=info,
        )
        self.set_arg_type(command, expr.get("data"), info)

        def fill() -> None:
            if "returns" in expr:
                command.ret_type = self.type_ref(expr["returns"], info)

        self.fill.append(fill)
        self.schema.commands[name] = command
        self.schema.definitions.append(command)

    def define_event(self, name: str, source: Expression, features: tuple[str, ...]) -> None:
        expr, doc, info = source.expr, source.doc, source.info
        if name in self.schema.events:
            raise QapiSchemaError(f"{info}: event {name!r} is already defined")
        event = EventDef(name, None, expr.get("boxed") is True, features, doc, info)
        self.set_arg_type(event, expr.get("data"), info)
        self.schema.events[name] = event
        self.schema.definitions.append(event)

    def ensure(self, obj: ObjectType) -> None:
        """Fill in ``obj`` now if that has not happened yet (bases come first)."""
        job = self.pending.pop(obj.name, None)
        if job is not None:
            job()

    def build(self, exprs: Iterable[Expression]) -> Schema:
        for expression in exprs:
            self.define(expression)
        while self.pending:
            name = next(iter(self.pending))
            self.pending.pop(name)()
        for job in self.fill:
            job()
        return self.schema


def alternate_json_kind(typ: QapiType) -> str:
    """The JSON value kind an alternate branch of type ``typ`` takes: ``string``,
    ``number`` (every number type, integers included), ``boolean``, ``null``,
    ``object`` or ``array``."""
    if isinstance(typ, BuiltinType):
        kind = typ.json_type
        if kind in ("int", "number"):
            return "number"
        if kind == "value":
            raise QapiSchemaError(f"type {typ.name} cannot be an alternate branch")
        return kind
    if isinstance(typ, EnumType):
        return "string"
    if isinstance(typ, ArrayType):
        return "array"
    if isinstance(typ, AlternateType):
        raise QapiSchemaError(f"alternate {typ.name} cannot be an alternate branch")
    return "object"


def build_schema(exprs: Iterable[Expression], has: Callable[[str], bool]) -> Schema:
    """The schema in which feature ``f`` is on exactly when ``has(f)``."""
    return _Builder(has).build(exprs)
