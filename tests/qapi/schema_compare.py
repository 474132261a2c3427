"""Comparing two ``query-qmp-schema`` replies whose type names are masked differently.

Masked names (decimal strings) are only references, and their numbers depend
on everything else in the schema, so the comparison walks both replies from
the same commands and events in parallel and maps each of our numbers to
QEMU's on first sight; afterwards the mapping must stay consistent (one to
one).  Everything else must be equal: names of commands, events, members and
enum values, builtins, optional markers, features, ``allow-oob``, ``tag``,
variant cases and order.

Key order: QEMU's reply is what its encoder printed, so each dict's keys are
in wire order; ours are in insertion order.  ``qdict_order`` of ours must give
QEMU's wire order.
"""

from __future__ import annotations

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qjson.qdict import qdict_order

_REF_KEYS = ("arg-type", "ret-type", "element-type", "type")


def _masked(name: str) -> bool:
    return name.isdigit()


class SchemaComparison:
    """Walks our entries against QEMU's; problems collect in ``problems``."""

    def __init__(self, ours: list[JsonValue], theirs: list[JsonValue]) -> None:
        self.ours = {str(e["name"]): e for e in ours if isinstance(e, dict)}
        self.theirs = {str(e["name"]): e for e in theirs if isinstance(e, dict)}
        self.mapping: dict[str, str] = {}
        self.reverse: dict[str, str] = {}
        self.visited: set[str] = set()
        self.problems: list[str] = []

    def ref(self, ours: JsonValue, theirs: JsonValue, path: str) -> None:
        """Compare two type references and the entries they name."""
        if not isinstance(ours, str) or not isinstance(theirs, str):
            self.problems.append(f"{path}: bad references {ours!r} / {theirs!r}")
            return
        if ours.startswith("[") or theirs.startswith("["):
            if not (ours.startswith("[") and theirs.startswith("[")):
                self.problems.append(f"{path}: array {ours!r} vs {theirs!r}")
                return
            self.ref(ours[1:-1], theirs[1:-1], f"{path}[]")
            # the array entry itself
            self.entry(ours, theirs, path)
            return
        if _masked(ours) != _masked(theirs):
            self.problems.append(f"{path}: {ours!r} vs {theirs!r}")
            return
        if _masked(ours):
            known = self.mapping.get(ours)
            if known is None and theirs in self.reverse:
                self.problems.append(f"{path}: {theirs!r} already matched {self.reverse[theirs]!r}")
                return
            if known is not None and known != theirs:
                self.problems.append(f"{path}: {ours!r} maps to {known!r} and {theirs!r}")
                return
            self.mapping[ours] = theirs
            self.reverse[theirs] = ours
        elif ours != theirs:
            self.problems.append(f"{path}: {ours!r} vs {theirs!r}")
            return
        self.entry(ours, theirs, path)

    def entry(self, ours_name: str, theirs_name: str, path: str) -> None:
        if ours_name in self.visited:
            return
        self.visited.add(ours_name)
        ours = self.ours.get(ours_name)
        theirs = self.theirs.get(theirs_name)
        if ours is None or theirs is None:
            self.problems.append(f"{path}: entry {ours_name!r}/{theirs_name!r} missing")
            return
        assert isinstance(ours, dict) and isinstance(theirs, dict)
        self.dict(ours, theirs, f"{path}->{ours_name}")

    def wire_keys(self, ours: JsonObject) -> list[str]:
        """Our keys in the order QEMU's encoder prints them (``ours`` is in insertion
        order; a comparison of two replies read off the wire keeps them as they are)."""
        return qdict_order(list(ours))

    def dict(self, ours: JsonObject, theirs: JsonObject, path: str) -> None:
        keys = self.wire_keys(ours)
        if keys != list(theirs):
            self.problems.append(f"{path}: keys {keys} vs wire {list(theirs)}")
            return
        for key, value in ours.items():
            other = theirs[key]
            where = f"{path}.{key}"
            if key in _REF_KEYS:
                self.ref(value, other, where)
            elif key == "name":
                opaque = isinstance(value, str) and (_masked(value) or value.startswith("["))
                if not opaque and value != other:
                    self.problems.append(f"{where}: {value!r} vs {other!r}")
            elif isinstance(value, list) and isinstance(other, list):
                if len(value) != len(other):
                    self.problems.append(f"{where}: {len(value)} vs {len(other)} items")
                    continue
                for i, (a, b) in enumerate(zip(value, other, strict=True)):
                    if isinstance(a, dict) and isinstance(b, dict):
                        self.dict(a, b, f"{where}[{i}]")
                    elif a != b:
                        self.problems.append(f"{where}[{i}]: {a!r} vs {b!r}")
            elif value != other:
                self.problems.append(f"{where}: {value!r} vs {other!r}")

    def run(self, roots: list[str]) -> list[str]:
        for root in roots:
            self.entry(root, root, root)
        unvisited = sorted(set(self.ours) - self.visited)
        if unvisited:
            self.problems.append(f"our entries not reached from the roots: {unvisited}")
        return self.problems


def compare_schemas(ours: list[JsonValue], theirs: list[JsonValue], roots: list[str]) -> list[str]:
    """Problems found comparing the entries reachable from ``roots`` (empty: identical)."""
    return SchemaComparison(ours, theirs).run(roots)
