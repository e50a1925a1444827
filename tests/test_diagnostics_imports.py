"""The diagnostics modules import each other without a cycle (function-level imports too)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpyro_ebm.diagnostics as diagnostics

PKG = Path(diagnostics.__file__).parent


def _edges() -> dict[str, set[str]]:
    modules = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m in modules:
        for node in ast.walk(ast.parse((PKG / f"{m}.py").read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:  # from .x import y
                    targets = [node.module.split(".")[0]]
                else:  # from . import x, y
                    targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "numpyro_ebm.diagnostics."):
                targets = [node.module.split(".")[2]]
            graph[m].update(t for t in targets if t in modules and t != m)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path + [m, n]
            if n not in state and (found := visit(n, path + [m])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [])):
            return found
    return None


def test_no_import_cycle_in_diagnostics():
    graph = _edges()
    assert "potential" in graph["transitions"] and "transitions" in graph["ratio"]
    assert _cycle(graph) is None, _cycle(graph)


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
