"""The package's import graph (issue 14): no cycle between modules, and no module imports
another module's private (``_name``) names. Read from the source with ``ast``, so the test
sees every import, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "numpyro_ebm"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports() -> dict[str, set[tuple[str, str | None]]]:
    """module -> {(imported module, imported name or None)} within the package."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    out: dict[str, set[tuple[str, str | None]]] = {}
    for mod, path in modules.items():
        deps: set[tuple[str, str | None]] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {(a.name, None) for a in node.names if a.name.startswith("numpyro_ebm")}
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, path.name == "__init__.py", node)
                if not target.startswith("numpyro_ebm"):
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    deps.add((sub, None) if sub in modules else (target, a.name))
        out[mod] = deps
    return out


def _graph() -> dict[str, set[str]]:
    """Edges between modules; a package's ``__init__`` re-exports are not counted as the
    modules depending on the package (importing ``pkg.sub`` runs ``pkg/__init__`` first,
    but that is Python's import order, not a design dependency)."""
    return {m: {t for t, _ in deps if t != m and not m.startswith(t + ".")}
            for m, deps in _imports().items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for t in sorted(graph.get(n, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_import_graph_has_no_cycle():
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_another_modules_private_names():
    """A private name (``_x``) or a private module (``pkg._x``, used only inside ``pkg``)."""
    bad = []
    for mod, deps in _imports().items():
        for target, name in deps:
            if name is not None and _private(name) and target != mod:
                bad.append(f"{mod} imports {name} from {target}")
            owner, _, last = target.rpartition(".")
            if _private(last) and not (mod + ".").startswith(owner + "."):
                bad.append(f"{mod} imports the private module {target}")
    bad.sort()
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_walk_sees_the_package():
    """Guards the two tests above against walking nothing."""
    graph = _graph()
    assert {"numpyro_ebm", "numpyro_ebm.energy", "numpyro_ebm.distribution"} <= set(graph)
    assert "numpyro_ebm.energy" in graph["numpyro_ebm.distribution"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_architecture_page_names_existing_modules():
    """docs/architecture.md names rooms as `file.py` or `dir/`: each must exist."""
    import re

    text = (PKG.parent / "docs" / "architecture.md").read_text()
    names = set(re.findall(r"`((?:[a-z_]+/)?[a-z_]+\.py|[a-z_]+/)`", text))
    assert len(names) > 10
    missing = sorted(n for n in names
                     if not any((base / n).exists() for base in
                                [PKG, *[p for p in PKG.iterdir() if p.is_dir()], PKG.parent]))
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
