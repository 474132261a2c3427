"""QEMU's object types: the type table, ``qom-list-types`` and module loading.

QEMU lists types in the order of its type hash table (reversed: the reply is built by
prepending), so any filtered listing is the full listing with entries left out; the
recorded full listing (abstract types included) gives every answer.  A type
"implements" another when that one is an ancestor (or the type itself) or an
interface it implements; the implementers of each interface are recorded.

Some types live in loadable modules (Debian's QEMU builds display, audio, USB
redirection... as modules).  Until their module is loaded, QEMU does not know them:
``qom-list-properties`` says ``Class 'X' not found``.  ``qom-list-types`` loads every
module first; ``device-list-properties`` (and ``-device``) load the module of the type
named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

#: A row of the type table: name, parent (None for root types), abstract.
TypeRow = tuple[str, str | None, bool]


class TypeTable:
    """The types of one QEMU binary."""

    def __init__(
        self,
        rows: Iterable[Sequence[Any]],
        interfaces: dict[str, list[str]],
        modules: dict[str, Any] | None = None,
    ) -> None:
        self.rows: list[TypeRow] = [(str(r[0]), r[1], bool(r[2])) for r in rows]
        self.parents = {name: parent for name, parent, _ in self.rows}
        self.interfaces = {name: frozenset(found) for name, found in interfaces.items()}
        modules = modules or {}
        #: per accelerator, the types unknown until their module is loaded
        self.missing: dict[str, frozenset[str]] = {
            accel: frozenset(names) for accel, names in modules.get("missing", {}).items()
        }
        #: type -> the types loading its module makes known
        self.loads: dict[str, list[str]] = modules.get("loads", {})
        #: type -> the command-line options loading its module adds (-spice)
        self.options: dict[str, list[str]] = modules.get("options", {})

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TypeTable:
        return cls(data["types"], data["interfaces"], data.get("modules"))

    def exists(self, name: str) -> bool:
        return name in self.parents

    def ancestors(self, name: str) -> list[str]:
        """``name`` and its ancestors, nearest first."""
        chain = []
        current: str | None = name
        while current is not None:
            chain.append(current)
            current = self.parents.get(current)
        return chain

    def is_a(self, name: str, other: str) -> bool:
        """QEMU's dynamic cast: ``name`` is ``other``, derives from it or implements it."""
        if other in self.interfaces:
            return name in self.interfaces[other]
        return other in self.ancestors(name)

    def list(self, *, implements: str | None = None, abstract: bool = False) -> list[TypeRow]:
        """``qom-list-types``' answer, as rows in QEMU's order."""
        rows = self.rows if abstract else [r for r in self.rows if not r[2]]
        if implements is None:
            return rows
        if not self.exists(implements):
            return []
        return [r for r in rows if self.is_a(r[0], implements)]


class LoadedModules:
    """Which types one QEMU process knows so far (``accel``: its accelerator, which
    decides what is known from the start)."""

    def __init__(self, table: TypeTable, accel: str) -> None:
        self.table = table
        self.missing = set(table.missing.get(accel, ()))
        self.all_loaded = False
        #: command-line options the modules loaded so far added
        self.options: set[str] = set()

    def knows(self, name: str) -> bool:
        return self.table.exists(name) and name not in self.missing

    def load_for(self, name: str) -> None:
        """Load the module providing ``name`` (nothing for a built-in type)."""
        self.missing -= set(self.table.loads.get(name, ()))
        self.options |= set(self.table.options.get(name, ()))

    def load_all(self) -> None:
        self.missing.clear()
        self.all_loaded = True

    def has_option(self, option: str) -> bool:
        """Whether a module-added command-line option is there by now."""
        return self.all_loaded or option in self.options

    def module_options(self) -> set[str]:
        """Every command-line option some module adds."""
        return {o for added in self.table.options.values() for o in added}
