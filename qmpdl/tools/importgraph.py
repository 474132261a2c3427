"""qmpdl's imports between its packages, and the cycles among them.

``python -m qmpdl.tools.importgraph`` prints, for two graphs, the package-level edges and
every cycle:

* *module level*: the imports a module runs when it is imported (top level, outside
  ``if TYPE_CHECKING:``) - a cycle here can break an import;
* *object level*: every import, also the ones under ``TYPE_CHECKING`` and the deferred
  ones inside functions - a cycle here means two packages know each other's objects.

A *package* is the first name below ``qmpdl`` (``qmpdl.vm.bql`` -> ``vm``; a
top-level module such as ``qmpdl/cli.py`` is a package of its own).  ``tools``, the
generator ``qapi.gen`` and the tests are not part of the graph.  ``--layers`` also
lists every import of a package from one above it in :data:`LAYERS`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The packages from the bottom up: each may import only packages of its own layer or
#: below (within a layer they must not import each other in a cycle).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "errors",
            "cint",
            "target",
            "jsontypes",
            "threadname",
            "strparse",
            "sizes",
            "clock",
            "closing",
            "datamodule",
        }
    ),
    frozenset({"trace", "qjson", "qemuopts", "profile_data", "report"}),
    frozenset({"topology", "workload", "record", "config"}),
    frozenset({"qapi", "profile"}),
    frozenset({"qemudata", "kvm", "cmdline"}),
    frozenset({"backend"}),
    frozenset({"vm"}),
    frozenset({"dirtylimit", "dirtyrate"}),
    frozenset({"migration"}),
    frozenset({"vtime"}),
    frozenset({"system"}),
    frozenset({"qmp", "hmp"}),
    frozenset({"commands"}),
    frozenset({"server", "observe"}),
    frozenset({"cli", "__main__"}),
)

#: Not part of the graph: development tools (they may import anything).
EXCLUDED = frozenset({"tools"})
#: Modules not part of the graph: the generator of the checked-in generated modules
#: (``python -m qmpdl.qapi.gen`` writes the schema, profile and machine tables, so it
#: imports what it renders from; the generated files name it, so it stays where it is).
EXCLUDED_MODULES = frozenset({"qmpdl.qapi.gen"})


def layer_of(package: str) -> int | None:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    return None


@dataclass
class Graph:
    """Package -> the packages it imports, with one example import per edge."""

    edges: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, source: str, target: str, where: str) -> None:
        if source != target:
            self.edges.setdefault(source, {}).setdefault(target, where)
        self.edges.setdefault(target, {})

    def cycles(self, limit: int = 10_000) -> list[list[str]]:
        """The elementary cycles (Johnson's search, in name order), at most ``limit``."""
        return list(_elementary_cycles(self.edges, limit))

    def mutual(self) -> list[tuple[str, str]]:
        """Package pairs that import each other."""
        return sorted(
            (a, b)
            for a, targets in self.edges.items()
            for b in targets
            if a < b and a in self.edges.get(b, {})
        )

    def upward(self) -> list[tuple[str, str, str]]:
        """Imports of a package from a layer above the importer's: (importer, imported,
        where)."""
        out = []
        for a, targets in sorted(self.edges.items()):
            la = layer_of(a)
            for b, where in sorted(targets.items()):
                lb = layer_of(b)
                if la is None or lb is None or lb > la:
                    out.append((a, b, where))
        return out


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, bool]]:
    """(imported qmpdl module, whether it runs at import time) for each import."""

    def targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
            return
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            keep = len(parts) - node.level + (1 if is_package else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        yield base
        yield from (f"{base}.{a.name}" for a in node.names)

    def walk(nodes: Iterable[ast.stmt], eager: bool) -> Iterator[tuple[str, bool]]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in targets(node):
                    if name == "qmpdl" or name.startswith("qmpdl."):
                        yield name, eager
            elif isinstance(node, ast.If):
                lazy = not eager or _is_type_checking(node.test)
                yield from walk(node.body, not lazy)
                yield from walk(node.orelse, eager)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(getattr(node, "body", []), False)
            elif isinstance(node, ast.ClassDef):
                yield from walk(node.body, eager)
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        yield from walk([child], eager)
                    elif isinstance(child, ast.AST):
                        yield from walk(
                            [n for n in ast.walk(child) if isinstance(n, ast.stmt)], False
                        )

    yield from walk(tree.body, True)


def build(root: Path = ROOT) -> tuple[Graph, Graph]:
    """The module-level and the object-level package graph of the package at ``root``."""
    modules = {
        _module_name(p): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts
    }
    eager, every = Graph(), Graph()
    for name, path in modules.items():
        source = _package(name)
        if source in EXCLUDED or name in EXCLUDED_MODULES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target, at_import in _imports(tree, name, path.name == "__init__.py"):
            if target not in modules:
                continue  # ``from qmpdl.x import name``: the module counted already
            package = _package(target)
            if package in EXCLUDED or package == "__init__":
                continue
            where = f"{name} -> {target}"
            every.add(source, package, where)
            if at_import:
                eager.add(source, package, where)
    return eager, every


def _elementary_cycles(edges: Mapping[str, Mapping[str, str]], limit: int) -> Iterator[list[str]]:
    nodes = sorted(edges)
    found = 0
    for i, start in enumerate(nodes):
        allowed = set(nodes[i:])
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        on_path = {start}
        while stack:
            _, it = stack[-1]
            for nxt in it:
                if nxt == start:
                    yield [*path, start]
                    found += 1
                    if found >= limit:
                        return
                elif nxt in allowed and nxt not in on_path:
                    stack.append((nxt, iter(sorted(edges[nxt]))))
                    path.append(nxt)
                    on_path.add(nxt)
                    break
            else:
                stack.pop()
                on_path.discard(path.pop())


def report(graph: Graph, title: str, out: list[str], *, verbose: bool) -> int:
    cycles = graph.cycles()
    mutual = graph.mutual()
    out.append(f"{title}: {len(cycles)} cycles, {len(mutual)} mutually importing pairs")
    for a, b in mutual:
        out.append(f"  {a} <-> {b}: {graph.edges[a][b]}; {graph.edges[b][a]}")
    if verbose:
        for cycle in cycles:
            out.append("  cycle: " + " -> ".join(cycle))
    return len(cycles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qmpdl.tools.importgraph", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cycles", action="store_true", help="list every cycle")
    parser.add_argument("--layers", action="store_true", help="list imports of a higher layer")
    args = parser.parse_args(argv)
    eager, every = build()
    out: list[str] = []
    n = report(eager, "module level", out, verbose=args.cycles)
    n += report(every, "object level", out, verbose=args.cycles)
    if args.layers:
        upward = every.upward()
        out.append(f"imports from a higher layer: {len(upward)}")
        out.extend(f"  {a} -> {b}: {where}" for a, b, where in upward)
    print("\n".join(out))
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
