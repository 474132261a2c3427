"""``-object``, ``-audiodev``, ``-netdev``, ``-blockdev``, ``-device`` and ``-drive``.

Each comes as JSON (``{...}``: QEMU's JSON parser, then its QObject input visitor) or as
``key=value`` (QemuOpts with QEMU's options visitor, or keyval), and is checked against
the types in ``options.json`` the way QEMU 7.2 checks it, with its texts; only the
branches libvirt and the test harnesses use are modelled, the other types are taken
with whatever members they have.  The result keeps the option's values: JSON types for
JSON, strings for ``key=value``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi.ghash import GStrHashTable
from qmpdl.qapi.parser import parse_schema
from qmpdl.qapi.schema import (
    INT_RANGES,
    ArrayType,
    BuiltinType,
    EnumType,
    ObjectType,
    QapiType,
    Schema,
    build_schema,
)
from qmpdl.qapi.visitor import InputVisitor
from qmpdl.qemuopts import (
    OptionError,
    Opts,
    OptsList,
    is_identifier,
    parse_bool,
    parse_noisily,
    split_opts,
)
from qmpdl.qjson.errors import PREFIX, ParseFailure
from qmpdl.qjson.lexer import ERROR, Lexer
from qmpdl.qjson.parser import VALUE_TOKENS, parse_tokens
from qmpdl.qjson.utf8 import decode_lenient
from qmpdl.sizes import parse_size

OBJECT_OPTS = OptsList("object", implied="qom-type")
DEVICE_OPTS = OptsList("device", implied="driver")
NETDEV_OPTS = OptsList("netdev", implied="type")
DRIVE_OPTS = OptsList("drive")


@cache
def option_types() -> Schema:
    """The types of ``options.json`` (built once)."""
    from importlib import resources

    exprs = parse_schema("options.json", resources.files("qmpdl.cmdline"))
    return build_schema(exprs, lambda feature: True)


def _type(name: str) -> ObjectType:
    typ = option_types().lookup_type(name)
    assert isinstance(typ, ObjectType)
    return typ


# -- JSON ----------------------------------------------------------------------------------


def json_option(text: str) -> JsonValue:
    """``qobject_from_json``: the value of an option written in JSON."""
    types: list[int] = []
    texts: list[bytes] = []

    def sink(ttype: int, token: bytes) -> bool:
        if ttype == ERROR:
            nul = token.find(0)
            quoted = decode_lenient(token if nul < 0 else token[:nul])
            raise OptionError(f"{PREFIX}stray '{quoted}'")
        types.append(ttype)
        if ttype in VALUE_TOKENS:
            texts.append(token)
        return False

    data = text.encode() + b"\n"
    Lexer(sink).run(data, 0, len(data))
    value = parse_tokens(types, texts)
    if isinstance(value, ParseFailure):
        raise OptionError(value.desc)
    return value


def _lenient(typ: ObjectType, value: JsonObject) -> JsonObject:
    """``value`` without the members of an unmodelled union branch (taken unchecked)."""
    if typ.variants is None:
        return value
    tag = value.get(typ.variants.tag.name)
    branch = typ.variants.branch(tag) if isinstance(tag, str) else None
    if branch is not option_types().empty_object:
        return value
    known = {m.name for m in typ.members}
    return {k: v for k, v in value.items() if k in known}


def visit_json(type_name: str, value: JsonValue) -> dict[str, Any]:
    """Check a JSON option value against ``type_name`` as QEMU's QObject input visitor
    does; returns the value as given."""
    typ = _type(type_name)
    if not isinstance(value, dict):
        raise OptionError("Invalid parameter type for 'null', expected: object")
    try:
        InputVisitor().visit_arguments(typ, _lenient(typ, value))
    except QMPError as e:
        raise OptionError(e.desc) from None
    return dict(value)


# -- key=value -----------------------------------------------------------------------------


def _scalar(typ: QapiType, name: str, text: str) -> None:
    """One ``key=value`` value as QEMU's options visitor reads it."""
    if isinstance(typ, EnumType):
        if text not in typ.values:
            raise OptionError(f"Parameter '{name}' does not accept value '{text}'")
    elif isinstance(typ, BuiltinType):
        if typ.name == "bool":
            parse_bool(name, text)
        elif typ.name == "size":
            try:
                parse_size(text)
            except ValueError:
                raise OptionError(f"Parameter '{name}' expects a size value") from None
        elif typ.name in INT_RANGES:
            signed = INT_RANGES[typ.name][0] < 0
            try:
                number = int(text, 0)
            except ValueError:
                number = None
            if number is None or (number < 0 and not signed):
                kind = "an int64" if signed else "a uint64"
                raise OptionError(f"Parameter '{name}' expects {kind} value")


def visit_opts(type_name: str, opts: Opts, *, keys: Mapping[str, str] | None = None) -> None:
    """Check ``key=value`` options against ``type_name`` as QEMU's options visitor
    does: members in order, a missing one first, then the first leftover key in GLib
    hash order (``Invalid parameter``)."""
    typ = _type(type_name)
    values = dict(keys) if keys is not None else opts.as_dict()
    unvisited = GStrHashTable(values)
    members = list(typ.members)
    branch: ObjectType | None = None
    if typ.variants is not None:
        tag = values.get(typ.variants.tag.name)
        if tag is not None:
            _scalar(typ.variants.tag.type, typ.variants.tag.name, tag)
            branch = typ.variants.branch(tag)
            if branch is not None:
                members += branch.members
    for member in members:
        text = values.get(member.name)
        if text is None:
            if not member.optional:
                raise OptionError(f"Parameter '{member.name}' is missing")
            continue
        unvisited.remove(member.name)
        if not isinstance(member.type, ArrayType):
            _scalar(member.type, member.name, text)
    if branch is option_types().empty_object:
        return
    leftover = unvisited.first()
    if leftover is not None:
        raise OptionError(f"Invalid parameter '{leftover}'")


# -- the options ---------------------------------------------------------------------------


def parse_object(text: str, *, existing: Mapping[str, Opts]) -> tuple[dict[str, Any], Opts | None]:
    """``-object TEXT``: the object, and its QemuOpts for the ``key=value`` form (they
    make a later duplicate id an error at once)."""
    if text.startswith("{"):
        return visit_json("ObjectOptions", json_option(text)), None
    opts = parse_noisily(OBJECT_OPTS, text, existing=existing)
    if opts.get("qom-type") is None:
        raise OptionError("Parameter 'qom-type' is missing")
    visit_opts("ObjectOptions", opts)
    return opts.as_dict(), opts


def check_objects(objects: list[dict[str, Any]]) -> None:
    """What QEMU checks when it creates the objects (its texts carry no location)."""
    ids: set[str] = set()
    for obj in objects:
        ident = obj["id"]
        if not isinstance(ident, str) or not is_identifier(ident):
            raise OptionError(
                "Parameter 'id' expects an identifier\n"
                "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."
            )
        if ident in ids:
            raise OptionError(
                f"attempt to add duplicate property '{ident}' to object (type 'container')"
            )
        ids.add(ident)
        if obj["qom-type"] == "secret":
            _check_secret(obj)


def _check_secret(obj: dict[str, Any]) -> None:
    data, path = obj.get("data"), obj.get("file")
    if data is None and path is None:
        raise OptionError("Either 'file' or 'data' must be provided")
    if data is not None and path is not None:
        raise OptionError("'file' and 'data' are mutually exclusive")
    if path is not None:
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise OptionError(
                f"Unable to read {path}: Failed to open file \u201c{path}\u201d: {e.strerror}"
            ) from None


def memory_backend_size(objects: list[dict[str, Any]], backend: str) -> int:
    """The ``size`` of memory backend ``backend`` (``-machine memory-backend=ID``)."""
    for obj in objects:
        if obj["id"] == backend and str(obj["qom-type"]).startswith("memory-backend-"):
            size = obj["size"]
            return size if isinstance(size, int) else parse_size(str(size))
    raise OptionError(f"Memory backend '{backend}' not found")


def parse_audiodev(text: str) -> dict[str, Any]:
    """``-audiodev TEXT`` (JSON, or keyval with ``driver`` implied)."""
    if text.startswith("{"):
        return visit_json("Audiodev", json_option(text))
    values = _keyval(text, "driver")
    _visit_keyval("Audiodev", values)
    return values


def parse_netdev(text: str, *, existing: Mapping[str, Opts]) -> dict[str, Any]:
    """``-netdev TEXT`` (JSON, or QemuOpts with ``type`` implied)."""
    if text.startswith("{"):
        return visit_json("Netdev", json_option(text))
    opts = parse_noisily(NETDEV_OPTS, text, existing=existing)
    values = opts.as_dict()
    _visit_keyval("Netdev", values)
    return values


def parse_blockdev(text: str) -> dict[str, Any]:
    """``-blockdev TEXT`` (JSON or keyval); a ``file`` node's file must open."""
    if text.startswith("{"):
        value = visit_json("BlockdevOptions", json_option(text))
    else:
        value = _keyval(text, None)
        _visit_keyval("BlockdevOptions", value)
    if value.get("driver") == "file":
        _check_file(value.get("filename"))
    return value


def parse_device(text: str, *, existing: Mapping[str, Opts]) -> dict[str, Any]:
    """``-device TEXT`` (JSON, or QemuOpts with ``driver`` implied)."""
    if text.startswith("{"):
        value = json_option(text)
        if not isinstance(value, dict):
            raise OptionError("Invalid parameter type for 'null', expected: object")
        if "driver" not in value:
            raise OptionError("Parameter 'driver' is missing")
        return dict(value)
    opts = parse_noisily(DEVICE_OPTS, text, existing=existing)
    if opts.get("driver") is None:
        raise OptionError("Parameter 'driver' is missing")
    return {"driver": opts.get("driver")} | opts.as_dict()


def parse_drive(text: str) -> dict[str, Any]:
    """``-drive TEXT``; its file must open unless it is empty."""
    opts = parse_noisily(DRIVE_OPTS, text)
    values = opts.as_dict()
    if values.get("file"):
        _check_file(values["file"])
    return values


def _check_file(path: object) -> None:
    if not isinstance(path, str):
        return
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise OptionError(f"Could not open '{path}': {e.strerror}") from None


def _keyval(text: str, implied: str | None) -> dict[str, Any]:
    """QEMU's ``keyval_parse`` for flat keys (nested ``a.b`` keys stay as written)."""
    out: dict[str, Any] = {}
    for i, part in enumerate(split_opts(text)):
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0 and implied is not None:
                out[implied] = part
                continue
            raise OptionError(f"Expected '=' after parameter '{part}'")
        out[key] = value
    return out


def _visit_keyval(type_name: str, values: dict[str, Any]) -> None:
    """A keyval option against ``type_name``: like :func:`visit_opts`, but leftover keys
    are QEMU's keyval visitor's ``is unexpected``."""
    flat = {k: v for k, v in values.items() if "." not in k}
    try:
        visit_opts(type_name, Opts(OptsList(type_name)), keys=flat)
    except OptionError as e:
        text = str(e)
        if text.startswith("Invalid parameter '"):
            raise OptionError(f"Parameter '{text[19:-1]}' is unexpected") from None
        raise


__all__ = [
    "DEVICE_OPTS",
    "OBJECT_OPTS",
    "check_objects",
    "json_option",
    "memory_backend_size",
    "option_types",
    "parse_audiodev",
    "parse_blockdev",
    "parse_device",
    "parse_drive",
    "parse_netdev",
    "parse_object",
    "visit_json",
    "visit_opts",
]
