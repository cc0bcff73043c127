"""The layout keeps its layers: no import cycle among specstore's modules, and the shared
logic never reaches for a driver (read from the source, imports inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "specstore"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The specstore modules ``name`` imports, anywhere in it. ``from pkg import sub`` counts
    as importing ``pkg.sub``; a name that is not a module counts as importing ``pkg``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names}
            found.update(subs & MODULES.keys())
            if not subs <= MODULES.keys():
                found.add(node.module)
    return (found & MODULES.keys()) - {name}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_specstore_modules() -> None:
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "module",
    [
        "specstore.core.calls",
        "specstore.core.operations",
        "specstore.core.two_phase",
        "specstore.core.results",
    ],
)
def test_the_shared_logic_imports_no_driver_and_no_store(module: str) -> None:
    reached: set[str] = set()
    todo = [module]
    while todo:  # everything it loads, directly or not
        for other in GRAPH[todo.pop()] - reached:
            reached.add(other)
            todo.append(other)
    forbidden = {m for m in reached if m.startswith(("specstore.drivers", "specstore.bulk"))}
    assert not forbidden | (reached & {"specstore.store", "specstore.aio", "specstore.cli"})


def test_the_drivers_do_not_import_each_other() -> None:
    assert "specstore.drivers.aio" not in GRAPH["specstore.drivers.sync"]
    assert "specstore.drivers.sync" not in GRAPH["specstore.drivers.aio"]


def test_the_model_and_the_documents_know_nothing_of_the_stores() -> None:
    lower = [m for m in MODULES if m.startswith(("specstore.model", "specstore.serializers"))]
    for module in lower:
        above = {
            m
            for m in GRAPH[module]
            if not m.startswith(("specstore.model", "specstore.serializers"))
        }
        assert above <= {"specstore.errors", "specstore.context", "specstore.core.keys"}, module
