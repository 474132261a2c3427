"""The generated model classes by QAPI name, from whichever module holds them.

:mod:`qmpdl.qapi.types` is imported at start-up; :mod:`qmpdl.qapi.types_deferred`
(the classes only the deferred commands and events reach, see :mod:`qmpdl.qapi.gen`)
only when a name is not found in the first.
"""

from __future__ import annotations

from qmpdl.qapi import types as core
from qmpdl.qapi.base import QapiModel


def command_args(command: str) -> type[QapiModel]:
    """The arguments model of ``command``."""
    found = core.COMMAND_ARGS.get(command)
    if found is None:
        from qmpdl.qapi import types_deferred

        found = types_deferred.COMMAND_ARGS[command]
    return found


def struct(name: str) -> type[QapiModel] | None:
    """The model of the struct or union ``name`` (None for an implicit type)."""
    found = core.STRUCTS.get(name)
    if found is None:
        from qmpdl.qapi import types_deferred

        found = types_deferred.STRUCTS.get(name)
    return found


def variant(union: str, case: str) -> type[QapiModel] | None:
    """The model of the union ``union``'s values whose tag is ``case`` (None when the
    branch adds no members)."""
    cases = core.VARIANTS.get(union)
    if cases is None:
        from qmpdl.qapi import types_deferred

        cases = types_deferred.VARIANTS.get(union, {})
    return cases.get(case)
