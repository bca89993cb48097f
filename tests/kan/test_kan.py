"""llmlex.kan, the door: its names, and the layering of the private modules behind it.

No torch needed: the checks read the source (``ast``) and import torch-free modules.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import llmlex
import llmlex.kan

PACKAGE = Path(llmlex.__file__).parent
# The KAN modules, lowest first: a module-level import of one of them may only point to
# one listed before it (or to a module outside this list, which none of them imports).
LAYERS = (
    "_forms",
    "_kan_sympy",
    "_separable",
    "_kan_types",
    "_kan_torch",
    "_kan_assembly",
    "_kan_checkpoint",
    "_kan_edges",
    "_kan_simplify",
    "_kan_select",
    "_kanlex",
    "kan",
)
# Imported inside functions only: the optional heavy dependency (torch and pykan, behind
# _kan_torch) and modules that import sympy at the top, so that `import llmlex.kan`
# stays light.
HEAVY_DOORS = {"_kan_torch", "_kan_sympy", "_symbolic", "_sympy_json", "_separable"}

PUBLIC = (
    "KANLEX",
    "kan_to_symbolic",
    "symbolic_from_edges",
    "regress_edge",
    "extract_edges",
    "assemble_expressions",
    "EdgeTask",
    "EdgeFit",
    "EdgeResult",
    "KANEdges",
    "EDGE_LIBRARY",
    "EDGE_ERROR_BUDGETS",
    "DEFAULT_EXIT_CONDITION",
    "Candidate",
    "KANSymbolicResult",
    "AssemblyError",
    "TrainingRun",
    "TrainingReport",
    "edge_weighted_error",
)


def test_the_public_names_import_from_the_door():
    assert len(set(llmlex.kan.__all__)) == len(llmlex.kan.__all__)
    for name in (*PUBLIC, *llmlex.kan.__all__):
        assert getattr(llmlex.kan, name) is not None, name
    assert set(PUBLIC) <= set(llmlex.kan.__all__)
    assert llmlex.kan_to_symbolic is llmlex.kan.kan_to_symbolic
    assert llmlex.KANLEX is llmlex.kan.KANLEX


@pytest.mark.parametrize("name", [m for m in LAYERS if m not in ("_kan_sympy", "kan")])
def test_every_private_module_has_a_docstring_and_an_all_that_resolves(name):
    module = importlib.import_module(f"llmlex.{name}")
    assert module.__doc__ and len(module.__doc__) > 100
    assert module.__all__ and len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"


def _imports(name: str) -> tuple[set[str], set[str]]:
    """llmlex modules imported by ``name`` at module level, and inside functions."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    modules = {p.stem for p in PACKAGE.glob("*.py")}

    def targets(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name.split(".")[1] for a in node.names if a.name.startswith("llmlex.")}
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "llmlex":
                return set()
            if len(parts) > 1:
                return {parts[1]}
            return {a.name for a in node.names if a.name in modules}
        return set()

    type_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    top = set().union(*(targets(n) for n in tree.body))
    local = set()
    for node in ast.walk(tree):
        if id(node) not in type_only:
            local |= targets(node)
    return top - {name}, local - top - {name}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.glob("*.py"):
        top, local = _imports(path.stem)
        graph[path.stem] = top | local
    return graph


def test_module_level_imports_point_down_the_layers():
    rank = {m: k for k, m in enumerate(LAYERS)}
    for name in LAYERS:
        top, local = _imports(name)
        up = [m for m in top if m in rank and rank[m] >= rank[name]]
        assert not up, f"{name} imports {up} at module level"
        # Inside functions: only the heavy doors (torch, or sympy at import).
        assert not local - HEAVY_DOORS, f"{name} imports {local - HEAVY_DOORS} in functions"


def test_no_import_cycle_through_a_kan_module():
    graph = _graph()

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            m = stack.pop()
            for n in graph.get(m, ()):
                if n == goal:
                    return True
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
        return False

    cycles = [m for m in LAYERS if reaches(m, m)]
    assert cycles == [], f"import cycles (function-local imports counted) through {cycles}"
