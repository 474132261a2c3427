"""How QAPI names become Python names in the generated models."""

from __future__ import annotations

import functools
import keyword
import re

#: Attribute names of the models' base class (they were pydantic's; kept so that the
#: generated names stay as they were): a member with one of these names gets a ``_``.
_RESERVED = frozenset(
    {
        *("construct", "copy", "dict", "from_orm", "json", "parse_file", "parse_obj"),
        *("parse_raw", "schema", "schema_json", "update_forward_refs", "validate"),
    }
)


def camel(name: str) -> str:
    """``set-vcpu-dirty-limit`` -> ``SetVcpuDirtyLimit``, ``SHUTDOWN`` -> ``Shutdown``."""
    return "".join(part[:1].upper() + part[1:].lower() for part in re.split(r"[-_.]", name) if part)


def args_class(command: str) -> str:
    """The model of a command's arguments."""
    return f"{camel(command)}Args"


def event_class(event: str) -> str:
    """The model of an event's data."""
    return f"{camel(event)}Event"


def variant_class(union: str, case: str) -> str:
    """The model of a union value whose tag is ``case``."""
    return f"{union}Variant{camel(case)}"


@functools.cache
def field_name(member: str) -> str:
    """``cpu-index`` -> ``cpu_index``; Python keywords and model attributes get a ``_``."""
    name = re.sub(r"[^0-9a-zA-Z_]", "_", member).lower()
    if name[:1].isdigit():
        name = f"_{name}"
    if keyword.iskeyword(name) or name in _RESERVED or name.startswith("model_"):
        name = f"{name}_"
    return name


def enum_member(value: str) -> str:
    """``page-sampling`` -> ``PAGE_SAMPLING``; ``x86_64`` -> ``X86_64``."""
    name = re.sub(r"[^0-9a-zA-Z]", "_", value).upper()
    if name[:1].isdigit():
        name = f"_{name}"
    return name
