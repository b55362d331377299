"""hashgym's layers, read from the source with ``ast``: the library (``hashgym/`` outside
``hashgym/cli/``) imports neither its agents, its benchmarks nor its command line; the agents and
the benchmarks never import the command line; the command line dispatches by real imports, not
by module names in strings; and no import hides inside a function to dodge a cycle that the same
import at module level would close (lazy imports of heavy libraries stay allowed: they close
none)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from test_imports import _cycle, _module_level_imports, _modules

MODULES = _modules()
CLI = "hashgym.cli"
AGENTS = "hashgym.agents"
BENCHMARKS = "hashgym.benchmarks"


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _targets(node: ast.Import | ast.ImportFrom, name: str, path: Path) -> list[str]:
    """The modules one import statement names (``from M import x`` counts ``M.x`` when that
    is a module, else ``M``), relative imports resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _imports(path: Path, name: str) -> list[tuple[str, int, bool]]:
    """Every hashgym module ``path`` imports: ``(module, line, inside a function)``."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((t, child.lineno, in_function) for t in _targets(child, name, path)
                             if _within(t, "hashgym"))
            visit(child, in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text()), False)
    return found


def _broken(rule) -> list[str]:  # type: ignore[no-untyped-def]
    """``module:line imports target`` for every import (at any depth) ``rule(module, target)``
    refuses."""
    return [f"{name}:{line} imports {target}" for name, path in sorted(MODULES.items())
            for target, line, _ in _imports(path, name) if rule(name, target)]


def _is_library(name: str) -> bool:
    return not any(_within(name, p) for p in (CLI, AGENTS, BENCHMARKS))


def test_the_library_imports_no_agents_benchmarks_or_cli() -> None:
    assert _broken(lambda name, target: _is_library(name) and not _is_library(target)) == []


def test_agents_and_benchmarks_never_import_the_cli() -> None:
    assert _broken(lambda name, target: not _within(name, CLI) and _within(target, CLI)) == []


def test_agents_never_import_the_benchmarks() -> None:
    assert _broken(lambda name, target: _within(name, AGENTS)
                   and _within(target, BENCHMARKS)) == []


def test_the_cli_dispatches_by_real_imports() -> None:
    """No ``importlib`` in the command line: every subcommand is a module it imports."""
    by_name = []
    for name, path in sorted(MODULES.items()):
        if not _within(name, CLI):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(module.split(".")[0] == "importlib" for module in named):
                by_name.append(f"{name}:{node.lineno}")
    assert by_name == []
    assert {"hashgym.cli.train", "hashgym.cli.features", "hashgym.cli.bench"} <= {
        t for t, _, inside in _imports(MODULES[CLI], CLI) if not inside}


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_no_import_inside_a_function_dodges_a_cycle() -> None:
    """An import inside a function whose target already imports (at module level, directly or
    not) the importing module would close a cycle at module level: the cycle is hidden, not
    gone. Lazy imports of torch, SB3 or the agents from the command line close none."""
    graph = {name: _module_level_imports(path, name, set(MODULES))
             for name, path in MODULES.items()}
    hidden = [f"{name}:{line} imports {target}" for name, path in sorted(MODULES.items())
              for target, line, inside in _imports(path, name)
              if inside and target in MODULES and target != name
              and _reaches(graph, target, name)]
    assert hidden == []


@pytest.mark.parametrize("graph, start, goal, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, "a", "c", True),
    ({"a": {"b"}, "b": set(), "c": {"a"}}, "a", "c", False),
])
def test_the_reach_finder(graph: dict[str, set[str]], start: str, goal: str,
                          expected: bool) -> None:
    assert _reaches(graph, start, goal) is expected
    assert (_cycle({**graph, goal: graph[goal] | {start}}) is not None) is expected


def test_imports_are_found_at_every_depth() -> None:
    """The walker sees module-level and function-level imports (so the rules can fail)."""
    found = _imports(MODULES["hashgym.cli.train"], "hashgym.cli.train")
    assert ("hashgym.agents.train", True) in {(t, inside) for t, _, inside in found}
    assert ("hashgym.cli.usage", False) in {(t, inside) for t, _, inside in found}
