"""QEMU's ``key=value,key=value`` option syntax (QemuOpts).

The first element may omit its key (an *implied* key, e.g. ``-accel kvm`` means
``accel=kvm``); ``,,`` stands for a literal comma; a bare ``flag`` means ``flag=on``
and ``noflag`` means ``flag=off`` (QEMU 7.2 warns about both); ``on/off/yes/no/
true/false`` are booleans.

:func:`parse_opts` reads leniently (a dict, the later key wins); :func:`parse_noisily`
reads like QEMU's ``qemu_opts_parse_noisily`` against an :class:`OptsList` and gives
QEMU's texts for what it refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from qmpdl.cint import U64_MASK
from qmpdl.errors import QmpdlError
from qmpdl.sizes import parse_size


class OptionError(QmpdlError, ValueError):
    """An option value QEMU would reject; the message is QEMU's text."""


def split_opts(text: str) -> list[str]:
    """Split on single commas (``,,`` is an escaped comma)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ",":
            if text[i + 1 : i + 2] == ",":
                current.append(",")
                i += 2
                continue
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def parse_opts(text: str, implied: str | None = None) -> dict[str, str]:
    """``a,b=c`` -> ``{implied: "a", "b": "c"}``; a later key wins."""
    result: dict[str, str] = {}
    for i, part in enumerate(split_opts(text)):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0 and implied is not None:
                result[implied] = part
                continue
            if part.startswith("no") and len(part) > 2:
                result[part[2:]] = "off"
            else:
                result[part] = "on"
            continue
        result[key] = value
    return result


def parse_bool(name: str, value: str) -> bool:
    if value in ("on", "yes", "true", "y"):
        return True
    if value in ("off", "no", "false", "n"):
        return False
    raise OptionError(f"Parameter '{name}' expects 'on' or 'off'")


def parse_uint(name: str, value: str, bits: int) -> int:
    """An unsigned number as QEMU's option parser reads it (decimal, 0x hex, 0 octal)."""
    try:
        number = int(value, 0)
    except ValueError:
        raise OptionError(f"Parameter '{name}' expects uint64") from None
    if number < 0:
        number &= U64_MASK
    if number >= 1 << bits:
        raise OptionError(f"Parameter '{name}' expects uint{bits}_t")
    return number


#: What QEMU says after a size it cannot read (``-m``, ``size=``).
SIZE_HINT = (
    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
    "and exabytes, respectively."
)

OptKind = Literal["string", "bool", "number", "size"]


def is_identifier(text: str) -> bool:
    """QEMU's ``id_wellformed``: a letter, then letters, digits, ``-``, ``.``, ``_``."""
    return (
        bool(text)
        and text[0].isascii()
        and text[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c in "-._") for c in text)
    )


ID_ERROR = (
    "Parameter 'id' expects an identifier\n"
    "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."
)


class OptsList:
    """One of QEMU's option groups (``QemuOptsList``): its name, the key a bare first
    element stands for, and the keys it knows with their types (None: any key, checked
    later by whoever reads them)."""

    __slots__ = ("desc", "implied", "name")

    def __init__(
        self, name: str, implied: str | None = None, desc: Mapping[str, OptKind] | None = None
    ) -> None:
        self.name = name
        self.implied = implied
        self.desc = desc


class Opts:
    """One parsed option: its ``id`` and the other ``key=value`` pairs in order."""

    __slots__ = ("group", "id", "items")

    def __init__(self, group: OptsList, id: str | None = None) -> None:
        self.group = group
        self.id = id
        self.items: list[tuple[str, str]] = []

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value given for ``key`` (QEMU's ``qemu_opt_get``)."""
        for name, value in reversed(self.items):
            if name == key:
                return value
        return default

    def keys(self) -> list[str]:
        seen: list[str] = []
        for name, _ in self.items:
            if name not in seen:
                seen.append(name)
        return seen

    def as_dict(self) -> dict[str, str]:
        """Every key with its last value, in first-seen order (``id`` first if set)."""
        out: dict[str, str] = {} if self.id is None else {"id": self.id}
        for name in self.keys():
            value = self.get(name)
            assert value is not None
            out[name] = value
        return out

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.get(key)
        return default if value is None else parse_bool(key, value)


def _check(lst: OptsList, key: str, value: str) -> None:
    assert lst.desc is not None
    kind = lst.desc.get(key)
    if kind is None:
        raise OptionError(f"Invalid parameter '{key}'")
    if kind == "bool":
        parse_bool(key, value)
    elif kind == "number":
        try:
            number = int(value, 0)
        except ValueError:
            raise OptionError(f"Parameter '{key}' expects a number") from None
        if number < 0:
            raise OptionError(f"Parameter '{key}' expects a number")
    elif kind == "size":
        try:
            parse_size(value)
        except ValueError:
            raise OptionError(
                f"Parameter '{key}' expects a non-negative number below 2^64\n{SIZE_HINT}"
            ) from None


def parse_noisily(
    lst: OptsList,
    text: str,
    *,
    warn: Callable[[str], None] | None = None,
    existing: Mapping[str, Opts] | None = None,
) -> Opts:
    """``qemu_opts_parse_noisily(list, text, permit_abbrev=true)``.

    ``warn`` receives QEMU's warnings as they arise (a bare ``flag``: deprecated short
    form; None: no warnings, as for the legacy ``-qmp``/``-serial`` syntax).
    ``existing`` are the options of this group created before, by id (a second one
    with the same id is QEMU's ``Duplicate ID``).  Raises :class:`OptionError`.
    """
    parts = split_opts(text)
    pairs: list[tuple[str, str]] = []
    for i, part in enumerate(parts):
        if not part and i == len(parts) - 1 and i > 0:
            break
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0 and lst.implied is not None:
                pairs.append((lst.implied, part))
                continue
            if part.startswith("no"):
                key, value = part[2:], "off"
            else:
                key, value = part, "on"
            if warn is not None:
                warn(
                    f"short-form boolean option '{part}' deprecated\n"
                    f"Please use {key}={value} instead"
                )
        pairs.append((key, value))
    opts = Opts(lst)
    for key, value in pairs:
        if key == "id":
            opts.id = value
    if opts.id is not None:
        if not is_identifier(opts.id):
            raise OptionError(ID_ERROR)
        if existing is not None and opts.id in existing:
            raise OptionError(f"Duplicate ID '{opts.id}' for {lst.name}")
    for key, value in pairs:
        if key == "id":
            continue
        if lst.desc is not None:
            _check(lst, key, value)
        opts.items.append((key, value))
    return opts
