"""The library's layers (``mtlmech/__init__.py``): nothing imports upward and no module imports itself
back through others. Read from the source (every ``import``, lazy ones inside functions included),
not from what happens to be loaded."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mtlmech"
LAYERS = ("engine", "problems", "protocol", "measures", "stats", "pipeline", "report", "top")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "top"
    return LAYERS.index(first) if first in LAYERS else LAYERS.index("top")


def imports(path: Path) -> set[str]:
    """The mtlmech modules ``path`` imports (``from .x import y`` resolved; a name imported from a
    package counts as that package's submodule when one exists)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "mtlmech"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mtlmech":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    found.discard(module)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {m: imports(p) for m, p in MODULES.items()}


def upward(graph: dict[str, set[str]], module: str) -> list[str]:
    return sorted(t for t in graph[module] if t != "mtlmech" and layer(t) > layer(module))


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Modules that reach themselves through their imports."""
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for t in graph.get(todo.pop(), ()):
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return seen
    return sorted(m for m in graph if m in reach(m))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    assert not upward(GRAPH, module), f"{module} (layer {LAYERS[layer(module)]}) imports {upward(GRAPH, module)}"


def test_no_import_cycles():
    assert not cycles(GRAPH), f"import cycles through {cycles(GRAPH)}"


def test_the_checker_sees_upward_and_cyclic_imports():
    """The rules can fail: the engine importing the pipeline, and the old checks <-> cli pair."""
    graph = {m: set(t) for m, t in GRAPH.items()}
    graph["mtlmech.engine.fused"].add("mtlmech.pipeline.cli")
    assert upward(graph, "mtlmech.engine.fused") == ["mtlmech.pipeline.cli"]
    graph["mtlmech.pipeline.cli"].add("mtlmech.pipeline.checks")
    graph["mtlmech.pipeline.checks"].add("mtlmech.pipeline.cli")
    assert {"mtlmech.pipeline.checks", "mtlmech.pipeline.cli"} <= set(cycles(graph))
    assert "mtlmech.engine.common" in GRAPH["mtlmech.engine.fused"]   # the real graph is read
