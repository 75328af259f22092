"""The gateway's modules import each other in layers: no module imports one that imports it back.

A cycle makes the import order matter and hides which module is the lower one. The graph is read
from the source with ``ast``, so imports inside functions count as much as those at the top;
only those under ``if TYPE_CHECKING:`` (never run) are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway

PACKAGE = Path(gateway.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements under ``node`` that run, at some point, when the code does."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child):
            yield from (i for other in child.orelse for i in _run_imports(other))
        else:
            yield from _run_imports(child)


def imported_modules(name: str) -> set[str]:
    """The gateway modules that ``name`` imports, each the most specific module named."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for statement in _run_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
            continue
        base = statement.module or ""
        if statement.level:
            anchor = package.rsplit(".", statement.level - 1)[0]
            base = f"{anchor}.{base}" if base else anchor
        for alias in statement.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if submodule in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as the path that closes it, or None if the graph has none."""
    finished: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in finished:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            if cycle := visit(target):
                return cycle
        path.pop()
        finished.add(node)
        return None

    for node in sorted(graph):
        if cycle := visit(node):
            return cycle
    return None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),  # a chain
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),  # a diamond is no cycle
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),  # found past its entry
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_the_graph_reads_imports_inside_functions_but_not_type_checking_ones() -> None:
    # create_app imports the blueprints in its body; the package root imports web in a function
    assert {"gateway.api.receive", "gateway.console"} <= imported_modules("gateway.web")
    assert imported_modules("gateway") == {"gateway.web"}


def test_no_module_of_the_gateway_imports_itself_back() -> None:
    graph = {name: imported_modules(name) for name in MODULES}

    assert find_cycle(graph) is None
