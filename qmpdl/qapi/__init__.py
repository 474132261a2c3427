"""qmpdl's QAPI layer: the schema in ``schema/*.json`` and everything driven by it.

:class:`QapiSchema` is what the dispatcher uses: command lookup, argument
validation with QEMU's exact error texts, result and event marshalling, and the
``query-qmp-schema`` reply, all for one QEMU version (a :class:`Profile`).

Modules: :mod:`.parser` (schema language), :mod:`.schema` (model, ``'if'``
evaluation), :mod:`.visitor` (argument validation), :mod:`.ghash` (GLib hash-table
order; the QDict order comes from :mod:`qmpdl.qjson.qdict`), :mod:`.bind` (models
from arguments), :mod:`.output` (results), :mod:`.introspect` (``query-qmp-schema``),
:mod:`.gen`/:mod:`.pymodels` (the generated :mod:`.types`).
"""

from __future__ import annotations

import copy
from typing import ClassVar

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.profile import Profile
from qmpdl.qapi import models
from qmpdl.qapi.base import QapiModel
from qmpdl.qapi.bind import bind_object, bind_value
from qmpdl.qapi.introspect import introspect
from qmpdl.qapi.load import schema_for
from qmpdl.qapi.output import OutputError, to_json
from qmpdl.qapi.schema import CommandDef, EventDef, Schema
from qmpdl.qapi.visitor import InputVisitor

__all__ = ["CommandDef", "EventDef", "OutputError", "QapiSchema"]


class QapiSchema:
    """The QMP interface of one QEMU version."""

    _cache: ClassVar[dict[Profile, QapiSchema]] = {}

    def __init__(self, profile: Profile, schema: Schema) -> None:
        self.profile = profile
        self.schema = schema
        self._introspection: list[JsonValue] | None = None
        #: argument models of commands called without arguments (see parse_arguments)
        self._no_arguments: dict[str, QapiModel] = {}

    @classmethod
    def load(cls, profile: Profile) -> QapiSchema:
        """The schema of ``profile`` (built once per profile)."""
        found = cls._cache.get(profile)
        if found is None:
            found = cls._cache[profile] = cls(profile, schema_for(profile))
        return found

    # -- lookup -----------------------------------------------------------------------------

    def command(self, name: str) -> CommandDef | None:
        """The command ``name`` (``.allow_oob``, ``.arg_type``, ...), None if unknown."""
        return self.schema.commands.get(name)

    def event(self, name: str) -> EventDef | None:
        """The event ``name``, None if unknown."""
        return self.schema.events.get(name)

    def command_names(self) -> list[str]:
        """Command names in ``query-commands`` order.

        That is reverse definition order: QEMU registers commands in schema
        order and ``query-commands`` prepends each one to its result list
        (verified on 7.2 for every command qmpdl serves).
        """
        return list(reversed(self.schema.commands))

    # -- marshalling -------------------------------------------------------------------------

    def _command(self, name: str) -> CommandDef:
        command = self.schema.commands.get(name)
        if command is None:
            raise QMPError(f"The command {name} has not been found", "CommandNotFound")
        return command

    def parse_arguments(self, command: str, arguments: JsonObject) -> QapiModel:
        """Validate ``arguments`` of ``command`` and return its ``<Command>Args`` model.

        Raises :class:`QMPError` (GenericError) with QEMU's text for the first
        problem, in QEMU's order.
        """
        definition = self._command(command)
        if not isinstance(arguments, dict):
            raise QMPError("QMP input member 'arguments' must be an object")
        if not arguments:
            # the commonest case (query-*): models are frozen, so one instance serves
            cached = self._no_arguments.get(command)
            if cached is not None:
                return cached
        values = InputVisitor().visit_arguments(definition.arg_type, arguments)
        arg_type = definition.arg_type
        if definition.boxed and arg_type is not None and arg_type.variants is not None:
            # a union's members depend on its tag: the model of the value's branch
            bound = bind_value(arg_type, values)
            assert isinstance(bound, QapiModel)
            model = bound
        else:
            model = bind_object(models.command_args(command), arg_type, values)
        if not arguments:
            self._no_arguments[command] = model
        return model

    def return_value(self, command: str, value: object) -> JsonValue:
        """A handler's result as QEMU's reply value (``{}`` for commands returning nothing)."""
        definition = self._command(command)
        if definition.ret_type is None:
            if value is not None:
                raise OutputError(f"{command} returns nothing, got {type(value).__name__}")
            return {}
        return to_json(definition.ret_type, value, "return")

    def event_data(self, event: str, data: QapiModel | None) -> JsonObject | None:
        """The ``data`` member of an event, or None for events without data."""
        definition = self.schema.events.get(event)
        if definition is None:
            raise KeyError(f"unknown event {event!r}")
        if definition.arg_type is None:
            if data is not None:
                raise OutputError(f"event {event} carries no data")
            return None
        if data is None:
            raise OutputError(f"event {event} needs data")
        out = to_json(definition.arg_type, data, "data")
        assert isinstance(out, dict)
        return out

    def introspect(self) -> list[JsonValue]:
        """The ``query-qmp-schema`` reply (a fresh copy each time)."""
        if self._introspection is None:
            self._introspection = introspect(self.schema)
        return copy.deepcopy(self._introspection)
