"""Every migration parameter, one row each: the table the rest of qmpdl reads.

A row (:class:`ParameterSpec`) says what QEMU's ``migration/options.c`` and
``migration-hmp-cmds.c`` say of one parameter:

* ``name`` and ``default`` (``migrate_params_init`` / the ``migration`` object's
  property defaults);
* in which versions it exists (``feature`` / ``unless``: profile features; the QAPI
  schema's ``'if'`` conditions say the same, which a test checks);
* ``prop``: the ``-global migration.PROP`` property that sets it and how that reads its
  text (``prop_kind``), or None;
* ``hmp``: how ``migrate_set_parameter`` reads its text (:data:`HmpReader`);
* ``check``: QEMU's ``migrate_params_check`` for it, with QEMU's text.  Rows are in
  the order QEMU checks them (the first failure wins); ``late`` rows are checked after
  the capability-dependent checks, as QEMU does;
* ``info``: its line in ``info migrate_parameters`` (:class:`InfoLine`).

Validation (:mod:`qmpdl.migration.params`), ``query-migrate-parameters`` (the defaults),
``info migrate_parameters`` and ``migrate_set_parameter`` (:mod:`qmpdl.hmp.migration`),
``-global`` and the engine's typed view (:class:`SettingsView`) all read this table.

:data:`GLOBALS` are the ``migration`` object's other properties (QEMU's
``migration_properties[]`` fields that are neither a parameter nor a capability).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar, overload

from qmpdl.backend.base import PAGE_SIZE as TARGET_PAGE_SIZE
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonValue
from qmpdl.migration.capabilities import Presence
from qmpdl.strparse import (
    INT64_MAX,
    parse_text_argv,
    parse_text_bool,
    parse_text_enum,
    parse_text_mib,
    parse_text_size,
    parse_text_uint,
)

if TYPE_CHECKING:
    from qmpdl.profile import Profile

#: How a ``-global migration.PROP=VALUE`` text is read (QEMU's qdev property types).
PropertyKind = Literal["bool", "uint8", "uint32", "uint64", "size", "str", "enum"]

#: How ``migrate_set_parameter NAME TEXT`` reads the text: C numbers of a width,
#: on/off, verbatim, a size (``qemu_strtosz``), a bandwidth in MiB unless suffixed, a
#: size that must fit an int64 (xbzrle-cache-size), a value of the row's enum, a shell
#: command line, or nothing (QMP only).
HmpReader = Literal[
    "uint8", "uint32", "bool", "str", "size", "mib", "size-i64", "enum", "argv", "qmp"
]

#: How ``info migrate_parameters`` prints a value: ``u`` an unsigned number (then the
#: unit), ``onoff``, ``quoted`` (``'text'``), ``str`` (as it is), ``mapping`` and
#: ``argv`` (their own layouts).
InfoFormat = Literal["u", "onoff", "quoted", "str", "mapping", "argv"]

_OLD = "migration-block-compress-removed"

#: ``MAX_MIGRATE_DOWNTIME`` (2000 s); QEMU prints the macro's expansion.
MAX_DOWNTIME_MS = 2000 * 1000


@dataclass(frozen=True)
class InfoLine:
    """A parameter's line in ``info migrate_parameters``: ``NAME: VALUE[ UNIT]``.

    ``pos`` orders the lines of the layout up to 10.0; from 10.1 (the
    ``hmp-info-migrate-parameters-regrouped`` feature) ``regrouped_pos`` and
    ``regrouped_unit`` replace them where given."""

    pos: float
    format: InfoFormat = "u"
    unit: str = ""
    regrouped_pos: float | None = None
    regrouped_unit: str | None = None


#: What a check sees: the complete set of values about to be in force.
Values = Mapping[str, JsonValue]
Check = Callable[["Profile", Values], None]


def c_name(member: str) -> str:
    """The C field name QEMU's range texts use (``downtime-limit`` -> ``downtime_limit``)."""
    return member.replace("-", "_")


def expects(member: str, what: str) -> QMPError:
    return QMPError(f"Parameter '{c_name(member)}' expects {what}")


def _number(values: Values, name: str) -> int:
    value = values[name]
    assert isinstance(value, int)
    return value


def between(name: str, low: int, high: int, what: str) -> Check:
    """``low <= value <= high``, else ``Parameter 'NAME' expects WHAT``."""

    def check(profile: Profile, values: Values) -> None:
        if not low <= _number(values, name) <= high:
            raise expects(name, what)

    return check


def _xbzrle_cache_size(profile: Profile, values: Values) -> None:
    cache = _number(values, "xbzrle-cache-size")
    if cache < TARGET_PAGE_SIZE or cache & (cache - 1):
        raise expects("xbzrle-cache-size", "a power of two no less than the target page size")


def _max_cpu_throttle(profile: Profile, values: Values) -> None:
    if not _number(values, "cpu-throttle-initial") <= _number(values, "max-cpu-throttle") <= 99:
        raise expects("max-cpu-throttle", "an integer in the range of cpu_throttle_initial to 99")


def _dirty_limit_period(profile: Profile, values: Values) -> None:
    if not 1 <= _number(values, "x-vcpu-dirty-limit-period") <= 1000:
        # the one text with the QAPI name
        raise QMPError("Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000")


def _vcpu_dirty_limit(profile: Profile, values: Values) -> None:
    if _number(values, "vcpu-dirty-limit") < 1:
        if profile.has("vcpu-dirty-limit-text-fixed"):
            raise QMPError("Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s")
        raise QMPError(
            "Parameter 'vcpu_dirty_limit' expects is invalid, it must greater then 1 MB/s"
        )


def _block_bitmap_mapping(profile: Profile, values: Values) -> None:
    check_bitmap_mapping(values["block-bitmap-mapping"])


_ALIAS_LIMIT = 255


def _well_formed_id(text: str) -> bool:
    """QEMU's ``id_wellformed``: a letter, then letters, digits, ``-``, ``.``, ``_``."""
    if not text or not ("a" <= text[0].lower() <= "z" and text[0].isascii()):
        return False
    return all(c.isascii() and (c.isalnum() or c in "-._") for c in text)


def _check_pair(
    kind: str, name: str, alias: str, seen: tuple[set[str], set[str]], where: tuple[str, str]
) -> None:
    """One node's or bitmap's name and alias: their lengths (alias first), then whether
    the name or the alias came before (``where``: how the texts name them)."""
    names, aliases = seen
    if len(alias.encode()) > _ALIAS_LIMIT:
        raise _mapping_error(f"The {kind} alias '{alias}' is longer than {_ALIAS_LIMIT} bytes")
    if len(name.encode()) > _ALIAS_LIMIT:
        raise _mapping_error(f"The {kind} name '{name}' is longer than {_ALIAS_LIMIT} bytes")
    if name in names:
        raise _mapping_error(f"The {kind}{where[0]}'{name}' is mapped twice")
    if alias in aliases:
        raise _mapping_error(f"The {kind} alias '{where[1]}{alias}' is used twice")
    names.add(name)
    aliases.add(alias)


def _mapping_error(text: str) -> QMPError:
    return QMPError(f"Invalid mapping given for block-bitmap-mapping: {text}")


def check_bitmap_mapping(mapping: JsonValue) -> None:
    """QEMU's ``check_dirty_bitmap_mig_alias_map`` (source direction)."""
    assert isinstance(mapping, list)
    nodes: tuple[set[str], set[str]] = (set(), set())
    for node in mapping:
        assert isinstance(node, dict)
        name, alias = str(node["node-name"]), str(node["alias"])
        if not _well_formed_id(alias):
            raise _mapping_error(f"The node alias '{alias}' is not well-formed")
        _check_pair("node", name, alias, nodes, (" name ", ""))
        bitmaps = node["bitmaps"]
        assert isinstance(bitmaps, list)
        seen: tuple[set[str], set[str]] = (set(), set())
        for bitmap in bitmaps:
            assert isinstance(bitmap, dict)
            bname, balias = str(bitmap["name"]), str(bitmap["alias"])
            _check_pair("bitmap", bname, balias, seen, (f" '{name}'/", f"{alias}'/'"))


_U8 = 255


@dataclass(frozen=True)
class ParameterSpec(Presence):
    """One migration parameter (see the module's text)."""

    default: JsonValue = None
    prop: str | None = None
    prop_kind: PropertyKind = "uint8"
    hmp: HmpReader = "uint8"
    #: the QAPI enum type of an ``enum`` parameter
    enum: str | None = None
    check: Check | None = None
    late: bool = False
    info: InfoLine | None = None
    #: a profile feature without which QEMU accepts the member but ignores it
    applied_if: str | None = None


def _p(name: str, default: JsonValue, **kw: object) -> ParameterSpec:
    return ParameterSpec(name=name, default=default, **kw)  # type: ignore[arg-type]


_MS, _BPS = "ms", "bytes/second"

#: Every parameter any version has, in the order QEMU's migrate_params_check checks them.
PARAMETERS: tuple[ParameterSpec, ...] = (
    _p("compress-level", 1, unless=_OLD, prop="x-compress-level",
       check=between("compress-level", 0, 9, "a value between 0 and 9"), info=InfoLine(5)),
    _p("compress-threads", 8, unless=_OLD, prop="x-compress-threads",
       check=between("compress-threads", 1, _U8, "a value between 1 and 255"), info=InfoLine(6)),
    _p("compress-wait-thread", True, unless=_OLD, prop="x-compress-wait-thread",
       prop_kind="bool", hmp="bool", info=InfoLine(7, "onoff")),
    _p("decompress-threads", 2, unless=_OLD, prop="x-decompress-threads",
       check=between("decompress-threads", 1, _U8, "a value between 1 and 255"),
       info=InfoLine(8)),
    _p("throttle-trigger-threshold", 50, prop="x-throttle-trigger-threshold",
       check=between("throttle-trigger-threshold", 1, 100, "an integer in the range of 1 to 100"),
       info=InfoLine(9)),
    _p("cpu-throttle-initial", 20, prop="x-cpu-throttle-initial",
       check=between("cpu-throttle-initial", 1, 99, "an integer in the range of 1 to 99"),
       info=InfoLine(10)),
    _p("cpu-throttle-increment", 10, prop="x-cpu-throttle-increment",
       check=between("cpu-throttle-increment", 1, 99, "an integer in the range of 1 to 99"),
       info=InfoLine(11)),
    _p("cpu-throttle-tailslow", False, prop="x-cpu-throttle-tailslow", prop_kind="bool",
       hmp="bool", info=InfoLine(12, "onoff")),
    # max-bandwidth and avail-switchover-bandwidth: "... to SIZE_MAX" cannot fail on a
    # 64-bit host.
    _p("max-bandwidth", 128 << 20, prop="x-max-bandwidth", prop_kind="size", hmp="mib",
       info=InfoLine(16, unit=_BPS)),
    _p("avail-switchover-bandwidth", 0, feature="migration-avail-switchover-bandwidth",
       prop="avail-switchover-bandwidth", prop_kind="size", hmp="mib",
       info=InfoLine(17, unit=_BPS)),
    _p("downtime-limit", 300, prop="x-downtime-limit", prop_kind="uint64", hmp="size",
       check=between("downtime-limit", 0, MAX_DOWNTIME_MS,
                    "an integer in the range of 0 to (2000 * 1000) ms"),
       info=InfoLine(19, unit=_MS)),
    _p("x-checkpoint-delay", 20000, prop="x-checkpoint-delay", prop_kind="uint32",
       hmp="uint32", info=InfoLine(20, unit=_MS)),
    _p("block-incremental", False, unless=_OLD, hmp="bool", info=InfoLine(21, "onoff")),
    _p("multifd-channels", 2, prop="multifd-channels",
       check=between("multifd-channels", 1, _U8, "a value between 1 and 255"),
       info=InfoLine(22)),
    _p("multifd-compression", "none", prop="multifd-compression", prop_kind="enum",
       hmp="enum", enum="MultiFDCompression", info=InfoLine(23, "str")),
    _p("multifd-zlib-level", 1, prop="multifd-zlib-level",
       applied_if="migration-multifd-levels-applied",
       check=between("multifd-zlib-level", 0, 9, "a value between 0 and 9")),
    _p("multifd-qatzip-level", 1, feature="migration-qatzip-level",
       prop="multifd-qatzip-level",
       check=between("multifd-qatzip-level", 1, 9, "a value between 1 and 9")),
    _p("multifd-zstd-level", 1, prop="multifd-zstd-level",
       applied_if="migration-multifd-levels-applied",
       check=between("multifd-zstd-level", 0, 20, "a value between 0 and 20")),
    _p("xbzrle-cache-size", 64 << 20, prop="xbzrle-cache-size", prop_kind="size",
       hmp="size-i64", check=_xbzrle_cache_size, info=InfoLine(25, unit="bytes")),
    _p("max-cpu-throttle", 99, prop="max-cpu-throttle", check=_max_cpu_throttle,
       info=InfoLine(13)),
    _p("announce-initial", 50, prop="announce-initial", prop_kind="size", hmp="size",
       check=between("announce-initial", 0, 100000, "a value between 0 and 100000"),
       info=InfoLine(1, unit=_MS)),
    _p("announce-max", 550, prop="announce-max", prop_kind="size", hmp="size",
       check=between("announce-max", 0, 100000, "a value between 0 and 100000"),
       info=InfoLine(2, unit=_MS)),
    _p("announce-rounds", 5, prop="announce-rounds", prop_kind="size", hmp="size",
       check=between("announce-rounds", 0, 1000, "a value between 0 and 1000"),
       info=InfoLine(3)),
    _p("announce-step", 100, prop="announce-step", prop_kind="size", hmp="size",
       check=between("announce-step", 1, 10000, "a value between 0 and 10000"),
       info=InfoLine(4, unit=_MS)),
    # absent from query-migrate-parameters until set (even to [])
    _p("block-bitmap-mapping", None, hmp="qmp", check=_block_bitmap_mapping,
       info=InfoLine(28, "mapping")),
    _p("x-vcpu-dirty-limit-period", 1000, feature="dirty-limit-migration",
       prop="x-vcpu-dirty-limit-period", prop_kind="uint64", hmp="size",
       check=_dirty_limit_period, late=True, info=InfoLine(29, unit=_MS)),
    _p("vcpu-dirty-limit", 1, feature="dirty-limit-migration", prop="vcpu-dirty-limit",
       prop_kind="uint64", hmp="size", check=_vcpu_dirty_limit, late=True,
       info=InfoLine(30, unit="MB/s")),
    _p("tls-creds", "", prop="tls-creds", prop_kind="str", hmp="str",
       info=InfoLine(14, "quoted")),
    _p("tls-hostname", "", prop="tls-hostname", prop_kind="str", hmp="str",
       info=InfoLine(15, "quoted")),
    _p("tls-authz", "", prop="tls-authz", prop_kind="str", hmp="str",
       info=InfoLine(27, "quoted", regrouped_pos=15.5)),
    _p("max-postcopy-bandwidth", 0, prop="max-postcopy-bandwidth", prop_kind="size",
       hmp="size", info=InfoLine(26, regrouped_pos=17.5, regrouped_unit=_BPS)),
    _p("zero-page-detection", "multifd", feature="migration-zero-page-detection",
       prop="zero-page-detection", prop_kind="enum", hmp="enum", enum="ZeroPageDetection",
       info=InfoLine(24, "str")),
    _p("mode", "normal", feature="migration-mode", prop="mode", prop_kind="enum", hmp="enum",
       enum="MigMode", info=InfoLine(31, "str")),
    _p("direct-io", False, feature="migration-direct-io", hmp="bool",
       info=InfoLine(32, "onoff")),
    _p("cpr-exec-command", [], feature="migration-cpr-exec", hmp="argv",
       info=InfoLine(33, "argv")),
)  # fmt: skip

#: The rows by name.
PARAMETER: dict[str, ParameterSpec] = {p.name: p for p in PARAMETERS}


def parameters_of(profile: Profile) -> list[ParameterSpec]:
    """The parameters of ``profile``'s QEMU version, in check order."""
    return [p for p in PARAMETERS if p.present(profile)]


def info_layout(profile: Profile) -> list[tuple[ParameterSpec, InfoLine, str]]:
    """``info migrate_parameters``' lines for ``profile``: (row, line, unit) in order."""
    regrouped = profile.has("hmp-info-migrate-parameters-regrouped")
    lines: list[tuple[float, ParameterSpec, InfoLine, str]] = []
    for p in parameters_of(profile):
        line = p.info
        if line is None:
            continue
        pos, unit = line.pos, line.unit
        if regrouped:
            pos = line.regrouped_pos if line.regrouped_pos is not None else pos
            unit = line.regrouped_unit if line.regrouped_unit is not None else unit
        lines.append((pos, p, line, unit))
    lines.sort(key=lambda item: item[0])
    return [(p, line, unit) for _, p, line, unit in lines]


# --------------------------------------------------------------------- other properties


@dataclass(frozen=True)
class GlobalSpec(Presence):
    """A property of the ``migration`` object that is neither parameter nor capability."""

    kind: PropertyKind = "bool"
    default: bool | int = False


def _g(name: str, default: bool | int, kind: PropertyKind = "bool", **kw: str) -> GlobalSpec:
    return GlobalSpec(name=name, kind=kind, default=default, **kw)


_POSTCOPY_CHECK = "migration-multifd-postcopy-check"

#: The ``migration`` object's other properties, in ``migration_properties[]`` order.
GLOBALS: tuple[GlobalSpec, ...] = (
    _g("store-global-state", True),
    _g("send-configuration", True),
    _g("send-section-footer", True),
    _g("send-switchover-start", True, feature="migration-send-switchover-start"),
    _g("decompress-error-check", True, unless=_OLD),
    _g("multifd-flush-after-each-section", False, feature=_POSTCOPY_CHECK),
    _g("x-clear-bitmap-shift", 18, "uint8"),
    _g("x-preempt-pre-7-2", False, feature=_POSTCOPY_CHECK),
    _g("x-postcopy-preempt-break-huge", True, unless=_POSTCOPY_CHECK),
    _g("multifd-clean-tls-termination", True, feature="migration-multifd-clean-tls-termination"),
)

#: Their defaults (what ``info migrate`` shows as globals without ``-global``).
GLOBAL_DEFAULTS: dict[str, bool | int] = {g.name: g.default for g in GLOBALS}


# --------------------------------------------------------------------- the engine's view

T = TypeVar("T", int, bool, str)


class _Setting(Generic[T]):
    """A typed, read-only view of one parameter or capability on a :class:`SettingsView`;
    ``absent`` is the value in versions without it."""

    def __init__(self, kind: type[T], name: str, *, capability: bool = False) -> None:
        self.kind: type[T] = kind
        self.name = name
        self.capability = capability
        spec = None if capability else PARAMETER[name]
        self.absent = spec.default if spec is not None else False

    @overload
    def __get__(self, obj: None, owner: type[object]) -> _Setting[T]: ...
    @overload
    def __get__(self, obj: SettingsView, owner: type[object]) -> T: ...
    def __get__(self, obj: SettingsView | None, owner: type[object]) -> T | _Setting[T]:
        if obj is None:
            return self
        if self.capability:
            value: JsonValue = obj.capability(self.name)
        else:
            value = obj.parameter_value(self.name, self.absent)
        assert isinstance(value, self.kind), (self.name, value)
        return value


class SettingsView:
    """The capabilities and parameters as the engine reads them, one typed attribute
    each (the engine's :data:`~qmpdl.migration.host.MigrationSettings`)."""

    def capability(self, name: str) -> bool:
        raise NotImplementedError

    def parameter_value(self, name: str, absent: JsonValue) -> JsonValue:
        """The value of parameter ``name``; ``absent`` in versions without it."""
        raise NotImplementedError

    events = _Setting(bool, "events", capability=True)
    auto_converge = _Setting(bool, "auto-converge", capability=True)
    dirty_limit = _Setting(bool, "dirty-limit", capability=True)
    pause_before_switchover = _Setting(bool, "pause-before-switchover", capability=True)
    xbzrle = _Setting(bool, "xbzrle", capability=True)
    multifd = _Setting(bool, "multifd", capability=True)
    postcopy_ram = _Setting(bool, "postcopy-ram", capability=True)
    return_path = _Setting(bool, "return-path", capability=True)
    switchover_ack = _Setting(bool, "switchover-ack", capability=True)
    validate_uuid = _Setting(bool, "validate-uuid", capability=True)
    #: bytes per second
    max_bandwidth = _Setting(int, "max-bandwidth")
    #: bytes per second; 0 (or a version without it): measured
    avail_switchover_bandwidth = _Setting(int, "avail-switchover-bandwidth")
    #: milliseconds
    downtime_limit = _Setting(int, "downtime-limit")
    #: percent
    throttle_trigger_threshold = _Setting(int, "throttle-trigger-threshold")
    cpu_throttle_initial = _Setting(int, "cpu-throttle-initial")
    cpu_throttle_increment = _Setting(int, "cpu-throttle-increment")
    cpu_throttle_tailslow = _Setting(bool, "cpu-throttle-tailslow")
    max_cpu_throttle = _Setting(int, "max-cpu-throttle")
    xbzrle_cache_size = _Setting(int, "xbzrle-cache-size")
    multifd_channels = _Setting(int, "multifd-channels")
    #: MB/s (its default, 1, in versions without it)
    vcpu_dirty_limit = _Setting(int, "vcpu-dirty-limit")
    #: milliseconds (its default, 1000, in versions without it)
    x_vcpu_dirty_limit_period = _Setting(int, "x-vcpu-dirty-limit-period")
    tls_creds = _Setting(str, "tls-creds")


class DefaultMigrationSettings(SettingsView):
    """QEMU's defaults, every capability off: for machines without a configuration
    object (tests)."""

    def capability(self, name: str) -> bool:
        return False

    def parameter_value(self, name: str, absent: JsonValue) -> JsonValue:
        return PARAMETER[name].default


# --------------------------------------------------------------------- values as text

TextKind = PropertyKind | HmpReader


def enum_values(profile: Profile, type_name: str) -> list[str]:
    """The values of QAPI enumeration ``type_name`` in ``profile``'s schema."""
    from qmpdl.qapi import QapiSchema
    from qmpdl.qapi.schema import EnumType

    typ = QapiSchema.load(profile).schema.types[type_name]
    assert isinstance(typ, EnumType)
    return typ.values


def read_text(
    profile: Profile,
    spec: ParameterSpec,
    kind: TextKind,
    name: str,
    text: str,
    *,
    warn: Callable[[str], None] | None = None,
) -> JsonValue:
    """Parameter ``spec``'s value given as ``text``, read as ``kind`` (its ``prop_kind``
    for ``-global``, its ``hmp`` reader for ``migrate_set_parameter``); errors name it
    ``name``.  ``warn`` receives the deprecation warning of a hexadecimal size with a
    suffix in versions that accept one (before 8.0).  Raises QMPError."""
    if profile.has("strtosz-hex-suffix-rejected"):
        warn = None
    revised = profile.has("strtosz-revised")
    if kind in ("uint8", "uint32", "uint64"):
        return parse_text_uint(name, text, kind)
    if kind == "bool":
        return parse_text_bool(name, text)
    if kind == "str":
        return text
    if kind == "size":
        return parse_text_size(name, text, warn, revised=revised)
    if kind == "size-i64":
        size = parse_text_size(name, text, warn, revised=revised)
        if size > INT64_MAX:
            raise QMPError(f"Invalid size {text}")
        return size
    if kind == "mib":
        return parse_text_mib(text, warn, revised=revised)
    if kind == "enum":
        assert spec.enum is not None
        return parse_text_enum(name, text, enum_values(profile, spec.enum))
    if kind == "argv":
        return list[JsonValue](parse_text_argv(text))
    assert kind == "qmp"
    raise QMPError(f"The {spec.name} parameter can only be set through QMP")
