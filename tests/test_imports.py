"""Module imports point down the layers: no cycle through the search or the proposers.

The graph counts module-level *and* function-local imports of llmlex modules (a local
import that closes a cycle is still a cycle); imports under ``if TYPE_CHECKING:`` are
annotations only and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import llmlex

PACKAGE = Path(llmlex.__file__).parent
MODULES = {p.stem for p in PACKAGE.glob("*.py")}

#: The search and what it stands on, bottom to top.
PROPOSER_LAYER = {"proposer", "cache", "_llmcall", "_extract", "llm", "offline"}
SEARCH_LAYER = {"_settings", "_genetic_loop", "genetic"}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(module: str) -> dict[str, bool]:
    """llmlex modules imported by ``module`` -> whether only inside functions."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: dict[str, bool] = {}

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                parts = child.module.split(".")
                if parts[0] == "llmlex":
                    targets = parts[1:2] or [a.name for a in child.names]
            elif isinstance(child, ast.Import):
                targets = [a.name.split(".")[1] for a in child.names if a.name.count(".") >= 1]
            for t in targets:
                if t in MODULES and t != module:
                    found[t] = found.get(t, True) and inner
            visit(child, inner)

    visit(tree, False)
    return found


def graph() -> dict[str, set[str]]:
    return {m: set(imports_of(m)) for m in MODULES if m != "__init__"}


def cycles(g: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(g):
        if v not in index:
            strong(v)
    return out


def test_no_cycle_through_the_search_or_the_proposers():
    layers = PROPOSER_LAYER | SEARCH_LAYER
    bad = [sorted(c) for c in cycles(graph()) if c & layers]
    assert bad == []


def test_proposers_do_not_import_the_search():
    g = graph()
    for module in PROPOSER_LAYER:
        assert not (g[module] & SEARCH_LAYER), module


def test_local_imports_in_the_search_only_defer_heavy_modules():
    # llm draws images with matplotlib (the offline search never needs it); _symbolic
    # imports sympy.
    for module in SEARCH_LAYER | PROPOSER_LAYER:
        local = {m for m, only_local in imports_of(module).items() if only_local}
        assert local <= {"llm", "_symbolic"}, (module, local)


def test_the_call_module_imports_openai_only_when_calling():
    tree = ast.parse((PACKAGE / "_llmcall.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(n.split(".")[0] == "openai" for n in names)
