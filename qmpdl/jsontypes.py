"""Python types for values that travel as QEMU JSON (QObject)."""

from __future__ import annotations

from typing import TypeAlias

#: A parsed or to-be-encoded JSON value.  ``dict`` is a QDict (its insertion order is the
#: QDict insertion order, which decides the wire order together with the key hashes),
#: ``list`` a QList, ``int`` a QNum holding int64/uint64, ``float`` a QNum double,
#: ``None`` QNull.
JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
