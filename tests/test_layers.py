"""The package structure: no package imports one above it, no import cycles between
packages (at module or object level), and one root for every exception qmpdl defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import qmpdl
from qmpdl.errors import QmpdlError
from qmpdl.tools import importgraph


@pytest.fixture(scope="module")
def graphs() -> tuple[importgraph.Graph, importgraph.Graph]:
    return importgraph.build()


def test_every_package_has_a_layer(graphs: tuple[importgraph.Graph, importgraph.Graph]) -> None:
    _, every = graphs
    assert [p for p in every.edges if importgraph.layer_of(p) is None] == []


def test_no_package_imports_one_above_it(
    graphs: tuple[importgraph.Graph, importgraph.Graph],
) -> None:
    _, every = graphs
    assert every.upward() == []


def test_no_import_cycle_at_module_level(
    graphs: tuple[importgraph.Graph, importgraph.Graph],
) -> None:
    eager, _ = graphs
    assert eager.cycles() == []


def test_no_import_cycle_at_object_level(
    graphs: tuple[importgraph.Graph, importgraph.Graph],
) -> None:
    _, every = graphs
    assert every.cycles() == []


def test_the_tool_finds_a_cycle() -> None:
    graph = importgraph.Graph()
    graph.add("a", "b", "a.x -> b.y")
    graph.add("b", "c", "b.y -> c.z")
    graph.add("c", "a", "c.z -> a.x")
    graph.add("c", "d", "c.z -> d.w")
    assert graph.cycles() == [["a", "b", "c", "a"]]
    assert graph.mutual() == []
    graph.add("b", "a", "b.y -> a.x")
    assert graph.mutual() == [("a", "b")]


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(qmpdl.__path__, "qmpdl."):
        if info.name.endswith("__main__"):
            continue  # running it is all it does
        names.append(info.name)
    return names


def test_every_exception_derives_from_qmpdl_error() -> None:
    strays = []
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue  # an optional dependency (textual, prometheus-client) is missing
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                obj.__module__ == name
                and issubclass(obj, BaseException)
                and not issubclass(obj, QmpdlError)
            ):
                strays.append(f"{name}.{obj.__qualname__}")
    assert strays == []
