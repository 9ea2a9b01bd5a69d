"""The project's modules import each other without a cycle.

The graph is read from the source (``ast``), not from ``sys.modules``: every ``import`` and
``from ... import`` of ``shared/``, ``deploy/``, ``functions/`` and ``phasectl/``, at module
level, inside functions (deferred imports) and under ``TYPE_CHECKING`` alike. A deferred import
hides a cycle from the interpreter but not from the reader: two modules that need each other
are one module cut in two, and what both need belongs below both. An edge goes from a module
to the module it names (``from a.b import c`` names ``a.b.c`` when that is a module, else
``a.b``); the implicit import of a parent package is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("shared", "deploy", "functions", "phasectl")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            modules[_module_name(path)] = path
    return modules


def _absolute(module: str, path: Path, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The project modules ``module`` names in any import statement."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node.level, node.module)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # a name inside a module: the module it is in
                target = target.rpartition(".")[0]
            if target and target != module:
                yield target


def import_graph() -> dict[str, set[str]]:
    known = project_modules()
    return {module: set(imports_of(module, path, known)) for module, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_walker_finds_a_cycle_it_is_shown() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_walker_reads_every_kind_of_import() -> None:
    graph = import_graph()
    assert graph["shared.pipeline"] == {"shared._lazy"}  # a lazy package: its map is strings, not imports
    assert "deploy.bundle" in graph["deploy.__main__"] or "deploy.cli" in graph["deploy.__main__"]
    assert "phasectl.app" in graph["phasectl.__main__"]
    assert "deploy.local.stack" in graph["phasectl.commands.local"]  # a deferred import inside a function


def test_no_import_cycle_among_the_projects_modules() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_the_runtime_core_imports_neither_deploy_nor_the_cli() -> None:
    graph = import_graph()
    reaching = {
        (module, target)
        for module, targets in graph.items()
        if module.split(".")[0] in ("shared", "functions")
        for target in targets
        if target.split(".")[0] in ("deploy", "phasectl")
    }
    assert not reaching


def test_deploy_does_not_import_the_cli() -> None:
    graph = import_graph()
    reaching = {
        (module, target)
        for module, targets in graph.items()
        if module.startswith("deploy")
        for target in targets
        if target.split(".")[0] == "phasectl"
    }
    assert not reaching
