"""QEMU's ``key=value,key=value`` option syntax (QemuOpts).

The first element may omit its key (an *implied* key, e.g. ``-accel kvm`` means
``accel=kvm``); ``,,`` stands for a literal comma; a bare ``flag`` means ``flag=on``
for boolean keys; ``on/off/yes/no/true/false`` are booleans.
"""

from __future__ import annotations


class OptionError(ValueError):
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
        number &= (1 << 64) - 1
    if number >= 1 << bits:
        raise OptionError(f"Parameter '{name}' expects uint{bits}_t")
    return number
