"""Migration capabilities and parameters, with QEMU's defaults, checks and texts.

One :class:`MigrationConfig` per machine holds what ``migrate-set-capabilities`` and
``migrate-set-parameters`` change and ``query-migrate-capabilities`` /
``query-migrate-parameters`` report, for the QEMU version of its profile.  Which
capabilities and parameters exist, their defaults and their checks come from the tables
(:mod:`qmpdl.migration.capabilities`, :mod:`qmpdl.migration.parameters`); the
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

The engine reads the typed attributes of :class:`~qmpdl.migration.parameters.SettingsView`
(``max_bandwidth``, ``dirty_limit``, ...).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.migration.capabilities import (
    CAPABILITIES,
    MAPPED_RAM_TEXT,
    ZERO_COPY_TEXT,
    CapabilitySpec,
    capabilities_of,
    check_capabilities,
)
from qmpdl.migration.parameters import (
    GLOBAL_DEFAULTS,
    GLOBALS,
    PARAMETER,
    PARAMETERS,
    GlobalSpec,
    ParameterSpec,
    SettingsView,
    parameters_of,
    read_text,
)
from qmpdl.profile import Profile
from qmpdl.qapi.types import MigrationCapabilityStatus, MigrationParameters
from qmpdl.strparse import parse_text_bool, parse_text_uint

__all__ = [
    "CAPABILITIES",
    "GLOBAL_DEFAULTS",
    "PARAMETERS",
    "GlobalPropertyError",
    "MigrationConfig",
]

_RUNNING_TEXT = "There's a migration process in progress"
#: the parameter that counts only once it was set
_MAPPING = "block-bitmap-mapping"

#: A ``-global migration.PROP`` property: what it sets.
Property = ParameterSpec | CapabilitySpec | GlobalSpec


class EngineState(Protocol):
    """What the checks ask of the migration engine."""

    def running(self) -> bool: ...
    def incoming_started(self) -> bool: ...


class GlobalPropertyError(Exception):
    """``-global migration.PROP=VALUE`` failed; the message is QEMU's text."""


class MigrationConfig(SettingsView):
    """The migration capabilities and parameters of one machine.

    ``kvm_dirty_ring`` is the fact the ``dirty-limit`` capability needs (KVM with the
    accelerator property ``dirty-ring-size``).  ``migration_running`` and
    ``incoming_started`` are asked by the checks that depend on the engine; the
    engine's manager also answers them once bound (:meth:`bind_engine`).
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
        self._parameters = parameters_of(profile)
        #: capability names in enumeration order (query order)
        self.capability_names: tuple[str, ...] = tuple(c.name for c in capabilities_of(profile))
        #: parameter names as HMP's migrate_set_parameter knows them
        self.parameter_names: tuple[str, ...] = tuple(p.name for p in self._parameters)
        self._caps: dict[str, bool] = dict.fromkeys(self.capability_names, False)
        self._params: dict[str, JsonValue] = {
            p.name: copy.deepcopy(p.default) for p in self._parameters if p.name != _MAPPING
        }
        #: block-bitmap-mapping counts only once it was set (even to [])
        self._bitmap_mapping: JsonValue | None = None
        #: warnings QEMU prints while applying -global settings
        self.warnings: list[str] = []
        self.globals: dict[str, bool | int] = {
            g.name: g.default for g in GLOBALS if g.present(profile)
        }
        for prop, value in global_properties:
            self.apply_global(prop, value)
        if global_properties:
            self.check_globals()

    def bind_engine(self, engine: EngineState) -> None:
        """From now on ask ``engine`` (the migration manager) whether a migration runs
        and whether an incoming one has started."""
        self.migration_running = engine.running
        self.incoming_started = engine.incoming_started

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
        check_capabilities(
            self.profile,
            old,
            new,
            params=self._params,
            kvm_dirty_ring=self.kvm_dirty_ring,
            incoming_started=self.incoming_started,
        )

    # ------------------------------------------------------------------ parameters

    def parameter(self, name: str) -> JsonValue:
        """The current value of parameter ``name`` (a copy for structured values)."""
        with self._lock:
            if name == _MAPPING:
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
                values[_MAPPING] = copy.deepcopy(self._bitmap_mapping)
        return MigrationParameters.model_validate(values)

    def parameter_value(self, name: str, absent: JsonValue) -> JsonValue:
        """The value of parameter ``name``, ``absent`` in versions without it."""
        with self._lock:
            return self._params.get(name, absent)

    def _applied(self, name: str) -> bool:
        """False for the members QEMU silently drops (multifd levels before 9.0)."""
        applied_if = PARAMETER[name].applied_if
        return applied_if is None or self.profile.has(applied_if)

    def set_parameters(self, values: Mapping[str, JsonValue]) -> None:
        """``migrate-set-parameters`` with the members present in the request (QAPI
        names; tls-* may be None for JSON null).  Raises :class:`QMPError` with
        QEMU's text; nothing changes then."""
        with self._lock:
            given: dict[str, JsonValue] = {}
            for name, value in values.items():
                if name not in self.parameter_names:
                    raise KeyError(f"no migration parameter {name!r} in QEMU {self.profile.name}")
                if self._applied(name):
                    # a JSON null for tls-* means ""
                    given[name] = "" if value is None else copy.deepcopy(value)
            trial = dict(self._params)
            mapping = self._bitmap_mapping
            for name, value in given.items():
                if name == _MAPPING:
                    mapping = value
                else:
                    trial[name] = value
            self._check_parameters(trial, mapping)
            self._params = trial
            self._bitmap_mapping = mapping

    def _check_parameters(self, p: Mapping[str, JsonValue], mapping: JsonValue | None) -> None:
        """QEMU's ``migrate_params_check`` on a complete parameter set: each row's check
        in table order, the capability-dependent checks before the ``late`` rows."""
        values = dict(p)
        if mapping is not None:
            values[_MAPPING] = mapping
        for spec in self._parameters:
            if spec.check is not None and not spec.late and spec.name in values:
                spec.check(self.profile, values)
        if self._caps.get("zero-copy-send", False) and (
            p["multifd-compression"] != "none" or p["tls-creds"]
        ):
            raise QMPError(ZERO_COPY_TEXT)
        if self._caps.get("mapped-ram", False) and (
            self._params["multifd-compression"] != "none" or self._params["tls-creds"]
        ):
            # QEMU looks at the current values here, not the new ones.
            raise QMPError(MAPPED_RAM_TEXT)
        for spec in self._parameters:
            if spec.check is not None and spec.late and spec.name in values:
                spec.check(self.profile, values)

    # ------------------------------------------------------------------ -global

    def properties(self) -> list[Property]:
        """The ``migration`` object's properties in this version."""
        found: list[Property] = [g for g in GLOBALS if g.present(self.profile)]
        found += [p for p in self._parameters if p.prop is not None]
        found += [c for c in CAPABILITIES if c.prop is not None and c.present(self.profile)]
        return found

    @staticmethod
    def property_name(prop: Property) -> str:
        """The name ``-global migration.NAME`` gives ``prop``."""
        return prop.name if isinstance(prop, GlobalSpec) else str(prop.prop)

    def apply_global(self, prop: str, value: str) -> None:
        """``-global migration.PROP=VALUE``; raises :class:`GlobalPropertyError`."""
        where = f"can't apply global migration.{prop}={value}: "
        found = next((p for p in self.properties() if self.property_name(p) == prop), None)
        if found is None:
            raise GlobalPropertyError(f"{where}Property 'migration.{prop}' not found")
        try:
            if isinstance(found, CapabilitySpec):
                self._caps[found.name] = parse_text_bool(prop, value)
            elif isinstance(found, ParameterSpec):
                self._params[found.name] = read_text(
                    self.profile, found, found.prop_kind, prop, value, warn=self.warnings.append
                )
            elif found.kind == "bool":
                self.globals[found.name] = parse_text_bool(prop, value)
            else:
                self.globals[found.name] = parse_text_uint(prop, value, found.kind)
        except QMPError as err:
            raise GlobalPropertyError(where + err.desc) from None

    def check_globals(self) -> None:
        """What QEMU checks once the ``migration`` object exists: the parameters, then
        the capabilities (against all-off); raises :class:`GlobalPropertyError`."""
        try:
            self._check_parameters(self._params, None)
            self._check_capabilities(dict.fromkeys(self._caps, False), self._caps)
        except QMPError as err:
            raise GlobalPropertyError(err.desc) from None

    # ------------------------------------------------------------------ engine view
    # (the typed attributes come from SettingsView; these two are not parameters)

    @property
    def store_global_state(self) -> bool:
        return bool(self.globals["store-global-state"])

    @property
    def clear_bitmap_shift(self) -> int:
        return int(self.globals["x-clear-bitmap-shift"])
