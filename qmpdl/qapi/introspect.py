"""The ``query-qmp-schema`` reply, built the way QEMU's introspection generator does.

Rules reproduced here (QEMU ``scripts/qapi/introspect.py`` plus the marshalling
of the result):

* first every command and event, in definition order; then every type they
  use, in order of first use (types used by those types join the queue);
* every integer type is reported as the builtin ``int`` and an array of integers
  as ``[int]``; other arrays are ``[<element name>]``;
* type names other than builtins and arrays are masked as decimal strings,
  numbered in the order they are first referenced;
* a command or event without data uses the empty object type;
* optional members carry ``"default": null``; features, when an entity or member
  has any, are listed; ``allow-oob`` only when true.

Since QEMU 6.0 the reply is marshalled from ``SchemaInfo`` values, so each
entry's keys are inserted in ``SchemaInfo`` member order (base members
``name``, ``meta-type``, ``features``, then the branch's members).  The wire
order then follows from the QDict hashes.
"""

from __future__ import annotations

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi.schema import (
    AlternateType,
    ArrayType,
    BuiltinType,
    CommandDef,
    EnumType,
    EventDef,
    ObjectMember,
    ObjectType,
    QapiType,
    Schema,
)


def json_type(typ: QapiType) -> str:
    """The JSON type values of ``typ`` have on the wire."""
    if isinstance(typ, BuiltinType):
        return typ.json_type
    if isinstance(typ, EnumType):
        return "string"
    if isinstance(typ, ArrayType):
        return "array"
    return "object"


class _Introspector:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.used: list[QapiType] = []
        self.names: dict[str, str] = {}
        self.entries: list[JsonValue] = []

    def mask(self, name: str) -> str:
        if name not in self.names:
            self.names[name] = str(len(self.names))
        return self.names[name]

    def use(self, typ: QapiType) -> str:
        """Queue ``typ`` for output (once) and return the name entries refer to it by."""
        if json_type(typ) == "int":
            typ = self.schema.lookup_type("int")
        elif isinstance(typ, ArrayType) and json_type(typ.element) == "int":
            typ = self.schema.lookup_type("intList")
        if not any(t is typ for t in self.used):
            self.used.append(typ)
        if isinstance(typ, BuiltinType):
            return typ.name
        if isinstance(typ, ArrayType):
            return f"[{self.use(typ.element)}]"
        return self.mask(typ.name)

    @staticmethod
    def base(name: str, meta_type: str, features: tuple[str, ...]) -> JsonObject:
        entry: JsonObject = {"name": name, "meta-type": meta_type}
        if features:
            entry["features"] = list(features)
        return entry

    def member(self, member: ObjectMember) -> JsonObject:
        out: JsonObject = {"name": member.name, "type": self.use(member.type)}
        if member.optional:
            out["default"] = None
        if member.features:
            out["features"] = list(member.features)
        return out

    def command(self, command: CommandDef) -> None:
        empty = self.schema.empty_object
        arg_type = self.use(command.arg_type or empty)
        ret_type = self.use(command.ret_type or empty)
        entry = self.base(command.name, "command", command.features)
        entry["arg-type"] = arg_type
        entry["ret-type"] = ret_type
        if command.allow_oob:
            entry["allow-oob"] = True
        self.entries.append(entry)

    def event(self, event: EventDef) -> None:
        arg_type = self.use(event.arg_type or self.schema.empty_object)
        entry = self.base(event.name, "event", event.features)
        entry["arg-type"] = arg_type
        self.entries.append(entry)

    def type_entry(self, typ: QapiType) -> JsonObject:
        if isinstance(typ, BuiltinType):
            entry = self.base(typ.name, "builtin", ())
            entry["json-type"] = typ.json_type
            return entry
        if isinstance(typ, EnumType):
            entry = self.base(self.mask(typ.name), "enum", typ.features)
            members: list[JsonValue] = []
            for value in typ.members:
                item: JsonObject = {"name": value.name}
                if value.features:
                    item["features"] = list(value.features)
                members.append(item)
            entry["members"] = members
            entry["values"] = list(typ.values)
            return entry
        if isinstance(typ, ArrayType):
            element = self.use(typ.element)
            entry = self.base(f"[{element}]", "array", ())
            entry["element-type"] = element
            return entry
        if isinstance(typ, AlternateType):
            branches: list[JsonValue] = [{"type": self.use(t)} for _, t in typ.branches]
            entry = self.base(self.mask(typ.name), "alternate", typ.features)
            entry["members"] = branches
            return entry
        assert isinstance(typ, ObjectType)
        object_members: list[JsonValue] = [self.member(m) for m in typ.members]
        variants: list[JsonValue] = []
        if typ.variants is not None:
            variants = [{"case": v.case, "type": self.use(v.type)} for v in typ.variants.branches]
        entry = self.base(self.mask(typ.name), "object", typ.features)
        entry["members"] = object_members
        if typ.variants is not None:
            entry["tag"] = typ.variants.tag.name
            entry["variants"] = variants
        return entry

    def run(self) -> list[JsonValue]:
        for definition in self.schema.definitions:
            if isinstance(definition, CommandDef):
                self.command(definition)
            elif isinstance(definition, EventDef):
                self.event(definition)
        index = 0
        while index < len(self.used):  # the queue grows while we walk it
            self.entries.append(self.type_entry(self.used[index]))
            index += 1
        return self.entries


def introspect(schema: Schema) -> list[JsonValue]:
    """The value ``query-qmp-schema`` returns for ``schema``."""
    return _Introspector(schema).run()
