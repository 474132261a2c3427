"""Reading the packaged schema once and building it per profile (both cached)."""

from __future__ import annotations

from functools import cache

from qmpdl.profile import Profile, known_features
from qmpdl.qapi.parser import Expression, parse_schema
from qmpdl.qapi.schema import Schema, build_schema, check_expressions


@cache
def expressions() -> tuple[Expression, ...]:
    """Every definition of ``schema/*.json``, checked for unknown ``'if'`` features."""
    exprs = parse_schema()
    check_expressions(exprs, lambda name: name in known_features())
    return tuple(exprs)


@cache
def schema_for(profile: Profile) -> Schema:
    """The schema as the QEMU version of ``profile`` has it."""
    return build_schema(expressions(), profile.has)
