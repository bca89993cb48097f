"""The package's layout rules, read from the source with :mod:`ast` (nothing is imported).

- No import cycle among ``llmlex`` modules, counting imports inside functions too.
- A function-local import of an ``llmlex`` module only defers a heavy optional dependency:
  its target imports sympy, openai, matplotlib, torch/pykan or scikit-learn at module level.
- One module touches torch/pykan (``export.to_torch`` imports torch for its own output).
- Every import points down (or sideways) the layers of :data:`LAYERS`.
- No module over 800 lines.

Imports under ``if TYPE_CHECKING:`` are annotations, not imports, and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmlex"
HEAVY = {"sympy", "openai", "matplotlib", "torch", "kan", "sklearn"}
TORCH_MODULES = {"_kan_torch", "export"}
MAX_LINES = 800

#: The layers, bottom to top (the README's "Architecture" section draws them).  A module
#: may import from its own layer and the layers below; every module must be placed.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(names.split())
    for names in (
        # exceptions and pure helpers
        "exceptions _version _validation _aio _features _jsonio _checkpoint _score _lsq _report "
        "_dimensions _noise _criterion _uncertainty _progress",
        # the expression language
        "_functions ansatz _symbolic _sympy_json _formula",
        # numerics and result types
        "_fit_result _callstats _curve fit _kan_sympy _results _kan_results _forms _units",
        # persistence
        "persist",
        # proposers: offline, LLM (one call module), images, reply cache
        "proposer cache images _clientspec _llmcall _extract _prompts _chat llm _offline_linear "
        "_offline_library "
        "offline",
        # the search
        "_settings _search _polish _genetic_loop genetic _batch batch",
        # the KAN pipeline (torch and pykan only in _kan_torch)
        "_separable _kan_types _kan_torch _kan_edges _kan_checkpoint _kan_assembly _kan_select "
        "_kan_units "
        # and beside it, the other multivariate generators and the choice among them
        "_kan_simplify _kanlex_ref _kanlex kan _frames _sparse _transforms _products _multivariate "
        "_estimator_kan",
        # user-facing adapters
        "export plots estimator cli response llmlex kanlex __init__",
    )
)


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.glob("*.py")}


def _imports(tree: ast.Module, names: set[str]) -> tuple[set[str], set[str], set[str]]:
    """(llmlex modules imported at module level, inside functions, third-party roots at top)."""
    top: set[str] = set()
    local: set[str] = set()
    third: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            found: set[str] = set()
            roots: set[str] = set()
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("llmlex."):
                        found.add(alias.name.split(".")[1])
                    roots.add(alias.name.split(".")[0])
            elif isinstance(child, ast.ImportFrom):
                mod = child.module or ""
                if child.level or mod == "llmlex" or mod.startswith("llmlex."):
                    sub = mod.split(".")[1] if mod.startswith("llmlex.") else ""
                    if sub:
                        found.add(sub)
                    else:  # from llmlex import _report
                        found |= {a.name for a in child.names if a.name in names}
                else:
                    roots.add(mod.split(".")[0])
            (local if in_function else top).update(found)
            if not in_function:
                third.update(roots)
            nested = in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            visit(child, nested)

    visit(tree, False)
    return top, local, third


@pytest.fixture(scope="module")
def graph() -> dict[str, tuple[set[str], set[str], set[str]]]:
    mods = _modules()
    names = set(mods)
    return {name: _imports(tree, names) for name, tree in mods.items()}


def test_no_import_cycle_even_through_function_local_imports(graph):
    edges = {m: (top | local) - {m} for m, (top, local, _) in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                cycles.append([*stack[stack.index(n) :], n])
            elif n not in state:
                dfs(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            dfs(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _layer(module: str) -> int:
    for k, names in enumerate(LAYERS):
        if module in names:
            return k
    raise AssertionError(f"llmlex/{module}.py has no layer: add it to LAYERS (and the README)")


def test_every_import_points_down_the_layers(graph):
    up = {
        f"{m} -> {n}"
        for m, (top, local, _) in graph.items()
        for n in top | local
        if n in graph and _layer(n) > _layer(m)
    }
    assert not up, f"imports pointing up the layers: {sorted(up)}"


def test_the_call_module_imports_openai_only_when_calling(graph):
    _, _, third = graph["_llmcall"]
    assert "openai" not in third


def _heavy_doors(graph) -> set[str]:
    """Modules whose import pulls a heavy dependency, themselves or through their imports."""
    heavy = {m for m, (_, _, third) in graph.items() if third & HEAVY}
    grew = True
    while grew:
        more = {m for m, (top, _, _) in graph.items() if top & heavy} - heavy
        heavy |= more
        grew = bool(more)
    return heavy


def test_function_local_imports_only_defer_heavy_dependencies(graph):
    heavy_doors = _heavy_doors(graph)
    bad = {
        m: sorted(local - heavy_doors)
        for m, (top, local, _) in graph.items()
        if local - heavy_doors - top
    }
    assert not bad, f"function-local imports of light llmlex modules (hidden layering): {bad}"


def test_only_one_module_touches_torch_and_pykan():
    touching = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            if roots & {"torch", "kan"}:
                touching.add(path.stem)
    assert touching <= TORCH_MODULES, f"torch/pykan imported in {sorted(touching)}"


def test_no_module_is_over_800_lines():
    long = {
        p.name: n
        for p in PACKAGE.glob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_checker_sees_a_cycle_and_a_local_import(tmp_path):
    # The rules above must be able to fail: a two-module cycle through a local import.
    a = ast.parse("from llmlex import b\n")
    b = ast.parse("def f():\n    from llmlex.a import g\n")
    top_a, local_a, _ = _imports(a, {"a", "b"})
    top_b, local_b, _ = _imports(b, {"a", "b"})
    assert top_a == {"b"} and not local_a
    assert local_b == {"a"} and not top_b


def test_the_readme_architecture_section_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Architecture") :]
    section = section[: section.index("\n## ", 1)]
    missing = sorted(
        p.stem
        for p in PACKAGE.glob("*.py")
        if p.stem != "__init__" and f"`{p.stem}`" not in section
    )
    assert not missing, f"README's Architecture section does not name {missing}"


def test_every_error_class_lives_in_exceptions():
    # OutOfTime is the least-squares engine's internal signal, _Expired the sympy time
    # bound's (_symbolic.time_bound): neither leaves llmlex.
    internal = {"OutOfTime", "_Expired"}
    elsewhere = set()
    for path in PACKAGE.glob("*.py"):
        if path.stem == "exceptions":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(b).endswith(("Error", "Exception")) for b in node.bases
            ):
                elsewhere.add(f"{path.stem}.{node.name}")
    assert {e.split(".")[1] for e in elsewhere} <= internal, sorted(elsewhere)
