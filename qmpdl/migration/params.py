"""Migration capabilities and parameters, with QEMU's defaults, checks and texts.

One :class:`MigrationConfig` per machine holds what ``migrate-set-capabilities`` and
``migrate-set-parameters`` change and ``query-migrate-capabilities`` /
``query-migrate-parameters`` report, for the QEMU version of its profile.  Which
capabilities and parameters exist comes from the QAPI schema of that version; the
rules are QEMU's (``migration/options.c``, ``migration.c`` in 7.2):

* capabilities: the resulting set is checked as a whole (``migrate_caps_check``, in
  QEMU's order, first failure wins) and nothing changes when a check fails; no change
  at all while a migration runs;
* parameters: the new values are laid over the current ones and the *whole* result is
  checked (``migrate_params_check``), so a parameter set earlier can make a later,
  unrelated change fail; only then are the given values applied.  Before 9.0 QEMU left
  ``multifd-zlib-level`` / ``multifd-zstd-level`` out of both steps: accepted, never
  checked, never applied;
* ``-global migration.PROP=VALUE`` sets the same state at start-up
  (:meth:`MigrationConfig.apply_global`, then :meth:`MigrationConfig.check_globals`).

The engine reads the typed accessors (``max_bandwidth``, ``dirty_limit``, ...).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from qmpdl.errors import QmpdlError, QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.migration.strparse import INT64_MAX, ParseError, parse_bool, strtosz, strtou64
from qmpdl.profile import Profile
from qmpdl.qapi import QapiSchema
from qmpdl.qapi.schema import ArrayType, BuiltinType, EnumType, ObjectType
from qmpdl.qapi.types import MigrationCapabilityStatus, MigrationParameters

#: QEMU's target page size on x86: xbzrle-cache-size must be at least this.
TARGET_PAGE_SIZE = 4096

#: ``MAX_MIGRATE_DOWNTIME`` (2000 s); QEMU prints the macro's expansion.
MAX_DOWNTIME_MS = 2000 * 1000
_DOWNTIME_TEXT = "an integer in the range of 0 to (2000 * 1000) ms"

#: Default values of every parameter any version has (migration/options.c).
DEFAULTS: dict[str, JsonValue] = {
    "announce-initial": 50,
    "announce-max": 550,
    "announce-rounds": 5,
    "announce-step": 100,
    "compress-level": 1,
    "compress-threads": 8,
    "compress-wait-thread": True,
    "decompress-threads": 2,
    "throttle-trigger-threshold": 50,
    "cpu-throttle-initial": 20,
    "cpu-throttle-increment": 10,
    "cpu-throttle-tailslow": False,
    "tls-creds": "",
    "tls-hostname": "",
    "tls-authz": "",
    "max-bandwidth": 128 << 20,
    "avail-switchover-bandwidth": 0,
    "downtime-limit": 300,
    "x-checkpoint-delay": 20000,
    "block-incremental": False,
    "multifd-channels": 2,
    "xbzrle-cache-size": 64 << 20,
    "max-postcopy-bandwidth": 0,
    "max-cpu-throttle": 99,
    "multifd-compression": "none",
    "multifd-zlib-level": 1,
    "multifd-qatzip-level": 1,
    "multifd-zstd-level": 1,
    "x-vcpu-dirty-limit-period": 1000,
    "vcpu-dirty-limit": 1,
    "mode": "normal",
    "zero-page-detection": "multifd",
    "direct-io": False,
    "cpr-exec-command": [],
}

#: Capabilities ``background-snapshot`` cannot be combined with, in QEMU's order.
_BACKGROUND_SNAPSHOT_CONFLICTS = (
    "postcopy-ram",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "return-path",
    "multifd",
    "pause-before-switchover",
    "auto-converge",
    "release-ram",
    "rdma-pin-all",
    "compress",
    "xbzrle",
    "x-colo",
    "validate-uuid",
    "zero-copy-send",
)

_ZERO_COPY_TEXT = "Zero copy only available for non-compressed non-TLS multifd migration"
_MAPPED_RAM_TEXT = "Mapped-ram only available for non-compressed non-TLS multifd migration"
_RUNNING_TEXT = "There's a migration process in progress"
_ALIAS_LIMIT = 255

PropertyKind = Literal["bool", "uint8", "uint32", "uint64", "size", "str", "enum"]


@dataclass(frozen=True)
class MigrationProperty:
    """A property of QEMU's ``migration`` object, settable with ``-global``.

    ``target`` is the parameter (``param``), capability (``cap``) or other setting
    (``global``) it writes; ``feature``/``unless`` limit it to the versions with /
    without that profile feature.
    """

    name: str
    kind: PropertyKind
    scope: Literal["param", "cap", "global"]
    target: str
    feature: str | None = None
    unless: str | None = None


def _param(name: str, kind: PropertyKind, target: str, **cond: str) -> MigrationProperty:
    return MigrationProperty(name, kind, "param", target, cond.get("feature"), cond.get("unless"))


def _cap(name: str, target: str, **cond: str) -> MigrationProperty:
    return MigrationProperty(name, "bool", "cap", target, cond.get("feature"), cond.get("unless"))


def _global(name: str, kind: PropertyKind, **cond: str) -> MigrationProperty:
    return MigrationProperty(name, kind, "global", name, cond.get("feature"), cond.get("unless"))


_OLD = "migration-block-compress-removed"

#: The ``migration`` object's properties (``migration_properties[]``), by version.
PROPERTIES: tuple[MigrationProperty, ...] = (
    _global("store-global-state", "bool"),
    _global("send-configuration", "bool"),
    _global("send-section-footer", "bool"),
    _global("send-switchover-start", "bool", feature="migration-send-switchover-start"),
    _global("decompress-error-check", "bool", unless=_OLD),
    _global("multifd-flush-after-each-section", "bool", feature="migration-multifd-postcopy-check"),
    _global("x-clear-bitmap-shift", "uint8"),
    _global("x-preempt-pre-7-2", "bool", feature="migration-multifd-postcopy-check"),
    _global("x-postcopy-preempt-break-huge", "bool", unless="migration-multifd-postcopy-check"),
    _param("x-compress-level", "uint8", "compress-level", unless=_OLD),
    _param("x-compress-threads", "uint8", "compress-threads", unless=_OLD),
    _param("x-compress-wait-thread", "bool", "compress-wait-thread", unless=_OLD),
    _param("x-decompress-threads", "uint8", "decompress-threads", unless=_OLD),
    _param("x-throttle-trigger-threshold", "uint8", "throttle-trigger-threshold"),
    _param("x-cpu-throttle-initial", "uint8", "cpu-throttle-initial"),
    _param("x-cpu-throttle-increment", "uint8", "cpu-throttle-increment"),
    _param("x-cpu-throttle-tailslow", "bool", "cpu-throttle-tailslow"),
    _param("x-max-bandwidth", "size", "max-bandwidth"),
    _param(
        "avail-switchover-bandwidth",
        "size",
        "avail-switchover-bandwidth",
        feature="migration-avail-switchover-bandwidth",
    ),
    _param("x-downtime-limit", "uint64", "downtime-limit"),
    _param("x-checkpoint-delay", "uint32", "x-checkpoint-delay"),
    _param("multifd-channels", "uint8", "multifd-channels"),
    _param("multifd-compression", "enum", "multifd-compression"),
    _param("multifd-zlib-level", "uint8", "multifd-zlib-level"),
    _param(
        "multifd-qatzip-level", "uint8", "multifd-qatzip-level", feature="migration-qatzip-level"
    ),
    _param("multifd-zstd-level", "uint8", "multifd-zstd-level"),
    _param("xbzrle-cache-size", "size", "xbzrle-cache-size"),
    _param("max-postcopy-bandwidth", "size", "max-postcopy-bandwidth"),
    _param("max-cpu-throttle", "uint8", "max-cpu-throttle"),
    _param("announce-initial", "size", "announce-initial"),
    _param("announce-max", "size", "announce-max"),
    _param("announce-rounds", "size", "announce-rounds"),
    _param("announce-step", "size", "announce-step"),
    _param("tls-creds", "str", "tls-creds"),
    _param("tls-hostname", "str", "tls-hostname"),
    _param("tls-authz", "str", "tls-authz"),
    _param(
        "x-vcpu-dirty-limit-period",
        "uint64",
        "x-vcpu-dirty-limit-period",
        feature="dirty-limit-migration",
    ),
    _param("vcpu-dirty-limit", "uint64", "vcpu-dirty-limit", feature="dirty-limit-migration"),
    _param("mode", "enum", "mode", feature="migration-mode"),
    _param(
        "zero-page-detection",
        "enum",
        "zero-page-detection",
        feature="migration-zero-page-detection",
    ),
    _cap("x-xbzrle", "xbzrle"),
    _cap("x-rdma-pin-all", "rdma-pin-all"),
    _cap("x-auto-converge", "auto-converge"),
    _cap("x-zero-blocks", "zero-blocks"),
    _cap("x-compress", "compress", unless=_OLD),
    _cap("x-events", "events"),
    _cap("x-postcopy-ram", "postcopy-ram"),
    _cap("x-postcopy-preempt", "postcopy-preempt"),
    _cap("x-colo", "x-colo"),
    _cap("x-release-ram", "release-ram"),
    _cap("x-block", "block", unless=_OLD),
    _cap("x-return-path", "return-path"),
    _cap("x-multifd", "multifd"),
    _cap("x-background-snapshot", "background-snapshot"),
    _cap("x-zero-copy-send", "zero-copy-send"),
    _cap("x-switchover-ack", "switchover-ack", feature="migration-switchover-ack"),
    _cap("x-dirty-limit", "dirty-limit", feature="dirty-limit-migration"),
    _cap("mapped-ram", "mapped-ram", feature="migration-mapped-ram"),
)

#: Defaults of the non-parameter properties (what ``info migrate`` shows as globals).
GLOBAL_DEFAULTS: dict[str, bool | int] = {
    "store-global-state": True,
    "send-configuration": True,
    "send-section-footer": True,
    "send-switchover-start": True,
    "decompress-error-check": True,
    "multifd-flush-after-each-section": False,
    "x-clear-bitmap-shift": 18,
    "x-preempt-pre-7-2": False,
    "x-postcopy-preempt-break-huge": True,
}


class GlobalPropertyError(QmpdlError):
    """``-global migration.PROP=VALUE`` failed; the message is QEMU's text."""


def _c_name(member: str) -> str:
    """The C field name QEMU's range texts use (``downtime-limit`` -> ``downtime_limit``)."""
    return member.replace("-", "_")


def _expects(member: str, what: str) -> QMPError:
    return QMPError(f"Parameter '{_c_name(member)}' expects {what}")


def _well_formed_id(text: str) -> bool:
    """QEMU's ``id_wellformed``: a letter, then letters, digits, ``-``, ``.``, ``_``."""
    if not text or not ("a" <= text[0].lower() <= "z" and text[0].isascii()):
        return False
    return all(c.isascii() and (c.isalnum() or c in "-._") for c in text)


def check_bitmap_mapping(mapping: JsonValue) -> None:
    """QEMU's ``check_dirty_bitmap_mig_alias_map`` (source direction)."""
    assert isinstance(mapping, list)

    def fail(text: str) -> QMPError:
        return QMPError(f"Invalid mapping given for block-bitmap-mapping: {text}")

    node_names: set[str] = set()
    node_aliases: set[str] = set()
    for node in mapping:
        assert isinstance(node, dict)
        name, alias = str(node["node-name"]), str(node["alias"])
        if not _well_formed_id(alias):
            raise fail(f"The node alias '{alias}' is not well-formed")
        if len(alias.encode()) > _ALIAS_LIMIT:
            raise fail(f"The node alias '{alias}' is longer than {_ALIAS_LIMIT} bytes")
        if len(name.encode()) > _ALIAS_LIMIT:
            raise fail(f"The node name '{name}' is longer than {_ALIAS_LIMIT} bytes")
        if name in node_names:
            raise fail(f"The node name '{name}' is mapped twice")
        if alias in node_aliases:
            raise fail(f"The node alias '{alias}' is used twice")
        node_names.add(name)
        node_aliases.add(alias)
        bitmap_names: set[str] = set()
        bitmap_aliases: set[str] = set()
        bitmaps = node["bitmaps"]
        assert isinstance(bitmaps, list)
        for bitmap in bitmaps:
            assert isinstance(bitmap, dict)
            bname, balias = str(bitmap["name"]), str(bitmap["alias"])
            if len(balias.encode()) > _ALIAS_LIMIT:
                raise fail(f"The bitmap alias '{balias}' is longer than {_ALIAS_LIMIT} bytes")
            if len(bname.encode()) > _ALIAS_LIMIT:
                raise fail(f"The bitmap name '{bname}' is longer than {_ALIAS_LIMIT} bytes")
            if bname in bitmap_names:
                raise fail(f"The bitmap '{name}'/'{bname}' is mapped twice")
            if balias in bitmap_aliases:
                raise fail(f"The bitmap alias '{alias}'/'{balias}' is used twice")
            bitmap_names.add(bname)
            bitmap_aliases.add(balias)


class MigrationConfig:
    """The migration capabilities and parameters of one machine.

    ``kvm_dirty_ring`` is the fact the ``dirty-limit`` capability needs (KVM with the
    accelerator property ``dirty-ring-size``).  ``migration_running`` and
    ``incoming_started`` are asked by the checks that depend on the engine; both may
    be replaced after construction (attributes of the same names).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        kvm_dirty_ring: bool,
        migration_running: Callable[[], bool] | None = None,
        incoming_started: Callable[[], bool] | None = None,
        global_properties: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.profile = profile
        self.kvm_dirty_ring = kvm_dirty_ring
        self.migration_running: Callable[[], bool] = migration_running or (lambda: False)
        self.incoming_started: Callable[[], bool] = incoming_started or (lambda: False)
        self._lock = threading.Lock()
        schema = QapiSchema.load(profile).schema
        caps = schema.types["MigrationCapability"]
        params = schema.types["MigrationParameters"]
        names = schema.types["MigrationParameter"]
        assert isinstance(caps, EnumType) and isinstance(params, ObjectType)
        assert isinstance(names, EnumType)
        #: capability names in enumeration order (query order)
        self.capability_names: tuple[str, ...] = tuple(caps.values)
        #: parameter names as HMP's migrate_set_parameter knows them
        self.parameter_names: tuple[str, ...] = tuple(names.values)
        #: MigrationParameters members of this version -> their QAPI type name
        self.parameter_types: dict[str, str] = {m.name: _type_name(m.type) for m in params.members}
        self._caps: dict[str, bool] = dict.fromkeys(self.capability_names, False)
        self._params: dict[str, JsonValue] = {
            name: DEFAULTS[name] for name in self.parameter_types if name != "block-bitmap-mapping"
        }
        #: block-bitmap-mapping counts only once it was set (even to [])
        self._bitmap_mapping: JsonValue | None = None
        #: warnings QEMU prints while applying -global settings
        self.warnings: list[str] = []
        self.globals: dict[str, bool | int] = {
            p.name: GLOBAL_DEFAULTS[p.name] for p in self.properties() if p.scope == "global"
        }
        for prop, value in global_properties:
            self.apply_global(prop, value)
        if global_properties:
            self.check_globals()

    # ------------------------------------------------------------------ capabilities

    def capability(self, name: str) -> bool:
        """Whether capability ``name`` is on (False for capabilities this version lacks)."""
        return self._caps.get(name, False)

    def capabilities(self) -> dict[str, bool]:
        """Every capability of this version and its state, in enumeration order."""
        with self._lock:
            return dict(self._caps)

    def query_capabilities(self) -> list[MigrationCapabilityStatus]:
        """``query-migrate-capabilities``."""
        with self._lock:
            return [
                MigrationCapabilityStatus.model_validate({"capability": name, "state": state})
                for name, state in self._caps.items()
            ]

    def set_capabilities(self, changes: Sequence[tuple[str, bool]]) -> None:
        """``migrate-set-capabilities``: apply ``(capability, state)`` pairs in order
        once the resulting set passes QEMU's checks; raises :class:`QMPError`."""
        if self.migration_running():
            raise QMPError(_RUNNING_TEXT)
        with self._lock:
            new = dict(self._caps)
            for name, state in changes:
                new[name] = state
            self._check_capabilities(self._caps, new)
            self._caps = new

    def _check_capabilities(self, old: Mapping[str, bool], new: Mapping[str, bool]) -> None:
        """QEMU's ``migrate_caps_check`` for this version; raises on the first failure."""
        has = self.profile.has

        def on(name: str) -> bool:
            return new.get(name, False)

        if on("postcopy-ram"):
            # The host-support probe (only for a destination) always succeeds here.
            if on("x-ignore-shared"):
                raise QMPError("Postcopy is not compatible with ignore-shared")
            if (
                on("multifd")
                and has("migration-multifd-postcopy-check")
                and not has("migration-multifd-postcopy")
            ):
                raise QMPError("Postcopy is not yet compatible with multifd")
        if on("background-snapshot"):
            # Write tracking (userfaultfd-wp) is available and the RAM is plain.
            for conflict in _BACKGROUND_SNAPSHOT_CONFLICTS:
                if on(conflict):
                    raise QMPError(f"Background-snapshot is not compatible with {conflict}")
        if on("zero-copy-send") and (
            not on("multifd")
            or on("compress")
            or on("xbzrle")
            or self._params.get("multifd-compression") != "none"
            or self._params.get("tls-creds")
        ):
            raise QMPError(_ZERO_COPY_TEXT)
        incoming_checks = has("migration-incoming-started-checks")
        relaxed = has("migration-incoming-started-relaxed")
        if on("postcopy-preempt"):
            if not on("postcopy-ram"):
                raise QMPError("Postcopy preempt requires postcopy-ram")
            if on("compress"):
                raise QMPError("Postcopy preempt not compatible with compress")
            if (
                incoming_checks
                and not (relaxed and old.get("postcopy-preempt", False))
                and self.incoming_started()
            ):
                raise QMPError("Postcopy preempt must be set before incoming starts")
        if on("multifd"):
            if on("compress"):
                raise QMPError("Multifd is not compatible with compress")
            if (
                incoming_checks
                and not (relaxed and old.get("multifd", False))
                and self.incoming_started()
            ):
                raise QMPError("Multifd must be set before incoming starts")
        if on("switchover-ack") and not on("return-path"):
            raise QMPError("Capability 'switchover-ack' requires capability 'return-path'")
        if on("dirty-limit"):
            if on("auto-converge"):
                raise QMPError(
                    "dirty-limit conflicts with auto-converge either of then available currently"
                )
            if not self.kvm_dirty_ring:
                raise QMPError(
                    "dirty-limit requires KVM with accelerator property 'dirty-ring-size' set"
                )
        if has("migration-xbzrle-checks"):
            if on("multifd") and on("xbzrle"):
                raise QMPError("Multifd is not compatible with xbzrle")
            if on("compress") and on("xbzrle"):
                raise QMPError("Compression is not compatible with xbzrle")
        if on("mapped-ram"):
            if on("xbzrle"):
                raise QMPError("Mapped-ram migration is incompatible with xbzrle")
            if on("compress"):
                raise QMPError("Mapped-ram migration is incompatible with compression")
            if on("postcopy-ram"):
                raise QMPError("Mapped-ram migration is incompatible with postcopy")

    # ------------------------------------------------------------------ parameters

    def parameter(self, name: str) -> JsonValue:
        """The current value of parameter ``name`` (a copy for structured values)."""
        with self._lock:
            if name == "block-bitmap-mapping":
                return copy.deepcopy(self._bitmap_mapping)
            return self._params[name]

    def has_bitmap_mapping(self) -> bool:
        """True once block-bitmap-mapping was set."""
        return self._bitmap_mapping is not None

    def query_parameters(self) -> MigrationParameters:
        """``query-migrate-parameters``: every member of this version, block-bitmap-mapping
        only once it was set."""
        with self._lock:
            values: JsonObject = dict(self._params)
            if self._bitmap_mapping is not None:
                values["block-bitmap-mapping"] = copy.deepcopy(self._bitmap_mapping)
        return MigrationParameters.model_validate(values)

    def _applied(self, name: str) -> bool:
        """False for the members QEMU silently drops (multifd levels before 9.0)."""
        if name in ("multifd-zlib-level", "multifd-zstd-level"):
            return self.profile.has("migration-multifd-levels-applied")
        return True

    def set_parameters(self, values: Mapping[str, JsonValue]) -> None:
        """``migrate-set-parameters`` with the members present in the request (QAPI
        names; tls-* may be None for JSON null).  Raises :class:`QMPError` with
        QEMU's text; nothing changes then."""
        with self._lock:
            given: dict[str, JsonValue] = {}
            for name, value in values.items():
                if name not in self.parameter_types:
                    raise KeyError(f"no migration parameter {name!r} in QEMU {self.profile.name}")
                if self._applied(name):
                    # a JSON null for tls-* means ""
                    given[name] = "" if value is None else copy.deepcopy(value)
            trial = dict(self._params)
            mapping = self._bitmap_mapping
            for name, value in given.items():
                if name == "block-bitmap-mapping":
                    mapping = value
                else:
                    trial[name] = value
            self._check_parameters(trial, mapping)
            self._params = trial
            self._bitmap_mapping = mapping

    def _check_parameters(self, p: Mapping[str, JsonValue], mapping: JsonValue | None) -> None:
        """QEMU's ``migrate_params_check`` on a complete parameter set."""
        has = self.profile.has

        def number(name: str) -> int:
            value = p[name]
            assert isinstance(value, int)
            return value

        def present(name: str) -> bool:
            return name in p

        if present("compress-level") and number("compress-level") > 9:
            raise _expects("compress-level", "a value between 0 and 9")
        if present("compress-threads") and number("compress-threads") < 1:
            raise _expects("compress-threads", "a value between 1 and 255")
        if present("decompress-threads") and number("decompress-threads") < 1:
            raise _expects("decompress-threads", "a value between 1 and 255")
        if not 1 <= number("throttle-trigger-threshold") <= 100:
            raise _expects("throttle-trigger-threshold", "an integer in the range of 1 to 100")
        if not 1 <= number("cpu-throttle-initial") <= 99:
            raise _expects("cpu-throttle-initial", "an integer in the range of 1 to 99")
        if not 1 <= number("cpu-throttle-increment") <= 99:
            raise _expects("cpu-throttle-increment", "an integer in the range of 1 to 99")
        # max-bandwidth and avail-switchover-bandwidth: "... to SIZE_MAX" cannot fail on
        # a 64-bit host.
        if number("downtime-limit") > MAX_DOWNTIME_MS:
            raise _expects("downtime-limit", _DOWNTIME_TEXT)
        if number("multifd-channels") < 1:
            raise _expects("multifd-channels", "a value between 1 and 255")
        if number("multifd-zlib-level") > 9:
            raise _expects("multifd-zlib-level", "a value between 0 and 9")
        if present("multifd-qatzip-level") and not 1 <= number("multifd-qatzip-level") <= 9:
            raise _expects("multifd-qatzip-level", "a value between 1 and 9")
        if number("multifd-zstd-level") > 20:
            raise _expects("multifd-zstd-level", "a value between 0 and 20")
        cache = number("xbzrle-cache-size")
        if cache < TARGET_PAGE_SIZE or cache & (cache - 1):
            raise _expects("xbzrle-cache-size", "a power of two no less than the target page size")
        if not number("cpu-throttle-initial") <= number("max-cpu-throttle") <= 99:
            raise _expects(
                "max-cpu-throttle", "an integer in the range of cpu_throttle_initial to 99"
            )
        if number("announce-initial") > 100000:
            raise _expects("announce-initial", "a value between 0 and 100000")
        if number("announce-max") > 100000:
            raise _expects("announce-max", "a value between 0 and 100000")
        if number("announce-rounds") > 1000:
            raise _expects("announce-rounds", "a value between 0 and 1000")
        if not 1 <= number("announce-step") <= 10000:
            raise _expects("announce-step", "a value between 0 and 10000")
        if mapping is not None:
            check_bitmap_mapping(mapping)
        if self._caps.get("zero-copy-send", False) and (
            p["multifd-compression"] != "none" or p["tls-creds"]
        ):
            raise QMPError(_ZERO_COPY_TEXT)
        if self._caps.get("mapped-ram", False) and (
            self._params["multifd-compression"] != "none" or self._params["tls-creds"]
        ):
            # QEMU looks at the current values here, not the new ones.
            raise QMPError(_MAPPED_RAM_TEXT)
        if has("dirty-limit-migration"):
            if not 1 <= number("x-vcpu-dirty-limit-period") <= 1000:
                raise QMPError(
                    "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000"
                )
            if number("vcpu-dirty-limit") < 1:
                if has("vcpu-dirty-limit-text-fixed"):
                    raise QMPError("Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s")
                raise QMPError(
                    "Parameter 'vcpu_dirty_limit' expects is invalid, it must greater then 1 MB/s"
                )

    # ------------------------------------------------------------------ -global

    def properties(self) -> list[MigrationProperty]:
        """The ``migration`` object's properties in this version."""
        has = self.profile.has
        return [
            p
            for p in PROPERTIES
            if (p.feature is None or has(p.feature)) and (p.unless is None or not has(p.unless))
        ]

    def apply_global(self, prop: str, value: str) -> None:
        """``-global migration.PROP=VALUE``; raises :class:`GlobalPropertyError`."""
        where = f"can't apply global migration.{prop}={value}: "
        found = next((p for p in self.properties() if p.name == prop), None)
        if found is None:
            raise GlobalPropertyError(f"{where}Property 'migration.{prop}' not found")
        try:
            parsed = self._parse_property(found, value)
        except QMPError as err:
            raise GlobalPropertyError(where + err.desc) from None
        if found.scope == "cap":
            assert isinstance(parsed, bool)
            self._caps[found.target] = parsed
        elif found.scope == "param":
            self._params[found.target] = parsed
        else:
            assert isinstance(parsed, bool | int)
            self.globals[found.target] = parsed

    def _parse_property(self, prop: MigrationProperty, value: str) -> JsonValue:
        if prop.kind == "bool":
            return parse_text_bool(prop.name, value)
        if prop.kind == "str":
            return value
        if prop.kind == "enum":
            return self.parse_text_enum(prop.name, prop.target, value)
        if prop.kind == "size":
            revised = self.profile.has("strtosz-revised")
            return parse_text_size(prop.name, value, self.hex_suffix_warning(), revised=revised)
        return parse_text_uint(prop.name, value, prop.kind)

    def hex_suffix_warning(self) -> Callable[[str], None] | None:
        """Where a size's deprecation warning goes (QEMU before 8.0 accepts ``0x1k``)."""
        if self.profile.has("strtosz-hex-suffix-rejected"):
            return None
        return self.warnings.append

    def parse_text_enum(self, name: str, member: str, value: str) -> str:
        """An enum value for ``member`` given as text (QEMU's string input visitor)."""
        typ = QapiSchema.load(self.profile).schema.types[self.parameter_types[member]]
        assert isinstance(typ, EnumType)
        if value not in typ.values:
            raise QMPError(f"Parameter '{name}' does not accept value '{value}'")
        return value

    def check_globals(self) -> None:
        """What QEMU checks once the ``migration`` object exists: the parameters, then
        the capabilities (against all-off); raises :class:`GlobalPropertyError`."""
        try:
            self._check_parameters(self._params, None)
            self._check_capabilities(dict.fromkeys(self._caps, False), self._caps)
        except QMPError as err:
            raise GlobalPropertyError(err.desc) from None

    # ------------------------------------------------------------------ engine view

    @property
    def events(self) -> bool:
        return self.capability("events")

    @property
    def auto_converge(self) -> bool:
        return self.capability("auto-converge")

    @property
    def dirty_limit(self) -> bool:
        return self.capability("dirty-limit")

    @property
    def pause_before_switchover(self) -> bool:
        return self.capability("pause-before-switchover")

    @property
    def xbzrle(self) -> bool:
        return self.capability("xbzrle")

    @property
    def multifd(self) -> bool:
        return self.capability("multifd")

    @property
    def postcopy_ram(self) -> bool:
        return self.capability("postcopy-ram")

    @property
    def return_path(self) -> bool:
        return self.capability("return-path")

    @property
    def switchover_ack(self) -> bool:
        return self.capability("switchover-ack")

    @property
    def validate_uuid(self) -> bool:
        return self.capability("validate-uuid")

    def _int(self, name: str) -> int:
        value = self.parameter(name)
        assert isinstance(value, int) and not isinstance(value, bool)
        return value

    @property
    def max_bandwidth(self) -> int:
        """Bytes per second."""
        return self._int("max-bandwidth")

    @property
    def avail_switchover_bandwidth(self) -> int:
        """Bytes per second; 0 (or a version without it): measured."""
        return (
            self._int("avail-switchover-bandwidth")
            if "avail-switchover-bandwidth" in (self._params)
            else 0
        )

    @property
    def downtime_limit(self) -> int:
        """Milliseconds."""
        return self._int("downtime-limit")

    @property
    def throttle_trigger_threshold(self) -> int:
        """Percent."""
        return self._int("throttle-trigger-threshold")

    @property
    def cpu_throttle_initial(self) -> int:
        return self._int("cpu-throttle-initial")

    @property
    def cpu_throttle_increment(self) -> int:
        return self._int("cpu-throttle-increment")

    @property
    def cpu_throttle_tailslow(self) -> bool:
        return self.parameter("cpu-throttle-tailslow") is True

    @property
    def max_cpu_throttle(self) -> int:
        return self._int("max-cpu-throttle")

    @property
    def xbzrle_cache_size(self) -> int:
        return self._int("xbzrle-cache-size")

    @property
    def multifd_channels(self) -> int:
        return self._int("multifd-channels")

    @property
    def vcpu_dirty_limit(self) -> int:
        """MB/s (1 in versions without the parameter, its default)."""
        return self._int("vcpu-dirty-limit") if "vcpu-dirty-limit" in self._params else 1

    @property
    def x_vcpu_dirty_limit_period(self) -> int:
        """Milliseconds (1000 in versions without the parameter, its default)."""
        if "x-vcpu-dirty-limit-period" in self._params:
            return self._int("x-vcpu-dirty-limit-period")
        return 1000

    @property
    def tls_creds(self) -> str:
        return str(self.parameter("tls-creds"))

    @property
    def store_global_state(self) -> bool:
        return bool(self.globals["store-global-state"])

    @property
    def clear_bitmap_shift(self) -> int:
        return int(self.globals["x-clear-bitmap-shift"])


def _type_name(typ: object) -> str:
    if isinstance(typ, BuiltinType | EnumType | ObjectType):
        return typ.name
    if isinstance(typ, ArrayType):
        return typ.name
    raise TypeError(f"unexpected parameter type {typ!r}")


# --------------------------------------------------------------------- text values

_UINT_BITS = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}


def parse_text_uint(name: str, value: str, kind: str) -> int:
    """An unsigned integer as QEMU's string input visitor reads it (``qemu_strtou64``
    base 0, then the type's range)."""
    try:
        number = strtou64(value)
    except ParseError:
        raise QMPError(f"Parameter '{name}' expects uint64") from None
    bits = _UINT_BITS[kind]
    if number >= 1 << bits:
        raise QMPError(f"Parameter '{name}' expects {kind}_t")
    return number


SIZE_HINT = (
    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
    "and exabytes, respectively.\n"
)


def parse_text_size(
    name: str, value: str, warn: Callable[[str], None] | None = None, *, revised: bool = False
) -> int:
    """A size as QEMU's string input visitor reads it (``qemu_strtosz``).  The error
    text carries QEMU's hint on the following lines.  ``warn``, ``revised``: see
    :func:`strtosz`."""
    try:
        return strtosz(value, hex_suffix_warning=warn, revised=revised)
    except ParseError as e:
        if e.out_of_range:
            raise QMPError(f"Value '{value}' is out of range for parameter '{name}'") from None
        raise QMPError(
            f"Parameter '{name}' expects a non-negative number below 2^64\n"
            + SIZE_HINT.rstrip("\n")
        ) from None


def parse_text_bool(name: str, value: str) -> bool:
    """A boolean as QEMU's string input visitor reads it."""
    try:
        return parse_bool(value)
    except ParseError:
        raise QMPError(f"Parameter '{name}' expects 'on' or 'off'") from None


def parse_text_mib(
    value: str, warn: Callable[[str], None] | None = None, *, revised: bool = False
) -> int:
    """``qemu_strtosz_MiB`` as HMP reads bandwidths (MiB by default, at most
    ``INT64_MAX``); raises :class:`QMPError` ``Invalid size VALUE``."""
    try:
        number = strtosz(value, "M", hex_suffix_warning=warn, revised=revised)
    except ParseError:
        raise QMPError(f"Invalid size {value}") from None
    if number > INT64_MAX:
        raise QMPError(f"Invalid size {value}")
    return number
