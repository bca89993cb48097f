"""The function table of :mod:`llmlex._functions`: every row, every arity, every consumer.

For each row and each accepted argument count an ansatz ``params[0] * f(args)`` is built
with arguments inside the function's domain; its compiled numpy value is the reference
that the table's own implementations, the sympy form (through the multivariate evaluator,
the JSON codec and the text printer) and the torch export must reproduce.  The rows a
consumer cannot handle are listed here explicitly, so that any drift shows up as a failure.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

from llmlex import _functions as table
from llmlex._functions import ALIASES, CONSTANTS, FUNCTIONS, SYMPY_ONLY, lookup
from llmlex._kan_sympy import compile_expr, parse_expression
from llmlex._prompts import _format_block, _function_list, normalise_functions
from llmlex._symbolic import X as X_SYM
from llmlex._symbolic import param
from llmlex._sympy_json import decode_expr, encode_expr
from llmlex.ansatz import ansatz_from_sympy, parse_ansatz
from llmlex.exceptions import AnsatzError, PersistError
from llmlex.fit import FitResult

LLMLEX = Path(__file__).resolve().parents[1] / "llmlex"

#: Sample points of ``x``; every argument is an affine image of them inside its domain.
X = np.linspace(0.0, 1.0, 41)
#: The value of ``params[0]``, the factor in front of every sample ansatz.
P = 1.3
RTOL, ATOL = 1e-9, 1e-12

#: Per row: an interval for each argument (the last one repeats) where it is real and finite.
DOMAINS: dict[str, tuple[tuple[float, float], ...]] = {
    "sin": ((-3.0, 3.0),),
    "cos": ((-3.0, 3.0),),
    "tan": ((-1.2, 1.2),),
    "arcsin": ((-0.95, 0.95),),
    "arccos": ((-0.95, 0.95),),
    "arctan": ((-5.0, 5.0),),
    "sinh": ((-3.0, 3.0),),
    "cosh": ((-3.0, 3.0),),
    "tanh": ((-3.0, 3.0),),
    "arcsinh": ((-5.0, 5.0),),
    "arccosh": ((1.05, 5.0),),
    "arctanh": ((-0.95, 0.95),),
    "exp": ((-3.0, 3.0),),
    "exp2": ((-3.0, 3.0),),
    "expm1": ((0.1, 3.0),),  # exp(a) - 1 cancels near 0
    "log": ((0.1, 5.0),),
    "log2": ((0.1, 5.0),),
    "log10": ((0.1, 5.0),),
    "log1p": ((0.1, 3.0),),  # log(1 + a) loses digits near 0
    "sqrt": ((0.0, 4.0),),
    "cbrt": ((-8.0, 8.0),),  # negative arguments: the real cube root
    "abs": ((-3.0, 3.0),),
    "sign": ((-3.0, 3.0),),
    "square": ((-3.0, 3.0),),
    "reciprocal": ((0.2, 3.0),),
    "sinc": ((-3.0, 3.0),),
    "arctan2": ((-2.0, 2.0), (-2.0, 1.0)),  # both signs of both: not sympy's atan(a/b)
    "hypot": ((-2.0, 2.0), (-1.0, 3.0)),
    "power": ((0.1, 3.0), (-2.0, 2.0)),
    "maximum": ((-2.0, 2.0), (-1.0, 1.0)),  # the arguments cross at x = 1/2
    "minimum": ((-2.0, 2.0), (-1.0, 1.0)),
    "where": ((-2.0, 2.0),),  # arguments given in SPECIAL
    "heaviside": ((-1.0, 1.0),),  # arguments given in SPECIAL
    "erf": ((-3.0, 3.0),),
    "erfc": ((-3.0, 3.0),),
    "erfinv": ((-0.95, 0.95),),
    "gamma": ((0.2, 5.0),),
    "gammaln": ((0.2, 10.0),),
    "digamma": ((0.2, 10.0),),
    "j0": ((0.0, 10.0),),
    "j1": ((0.0, 10.0),),
    "y0": ((0.2, 10.0),),
    "y1": ((0.2, 10.0),),
    "i0": ((-3.0, 3.0),),
    "i1": ((-3.0, 3.0),),
    "k0": ((0.2, 5.0),),
    "k1": ((0.2, 5.0),),
    "ellipk": ((-2.0, 0.95),),
    "ellipe": ((-2.0, 1.0),),
    "dawsn": ((-3.0, 3.0),),
    "expit": ((-5.0, 5.0),),
    "jv": ((0.0, 2.5), (0.2, 8.0)),
    "yv": ((0.0, 2.5), (0.2, 8.0)),
    "iv": ((0.0, 2.5), (0.2, 8.0)),
    "kv": ((0.0, 2.5), (0.2, 8.0)),
    "beta": ((0.2, 3.0), (0.5, 2.0)),
}

#: Argument texts and values where an affine image of x does not test the row well.
SPECIAL: dict[tuple[str, int], tuple[list[str], list[np.ndarray]]] = {
    ("where", 3): (["x > 0.5", "x", "-x"], [X > 0.5, X, -X]),
    # x - 0.5 is exactly 0 at x = 0.5, where the second argument (default 1/2) is the value.
    ("heaviside", 1): (["x - 0.5"], [X - 0.5]),
    ("heaviside", 2): (["x - 0.5", "0.25 + x"], [X - 0.5, 0.25 + X]),
}

#: Rows whose sympy form the multivariate evaluator (compile_expr) cannot evaluate, and
#: which parse_expression therefore refuses.
COMPILE_UNSUPPORTED = {
    "sinc",  # sinc(pi*a)
    "arctan2",  # atan2(a, b)
    "where",  # Piecewise
    "heaviside",  # Heaviside(a, h)
    "digamma",  # polygamma(0, a)
    *("j0", "j1", "y0", "y1", "i0", "i1", "k0", "k1"),  # besselj(0, a), ...
    *("jv", "yv", "iv", "kv"),
    "dawsn",  # erfi
    "beta",
}
#: Rows whose sympy form to_torch cannot convert.
TORCH_UNSUPPORTED = COMPILE_UNSUPPORTED | {"gamma", "ellipk", "ellipe"}
#: Rows with no torch counterpart at all (Function.torch is None).
NO_TORCH = {"cbrt", "gamma", "ellipk", "ellipe", "dawsn", "jv", "yv", "iv", "kv", "beta"}
#: torch's Bessel functions of the first and second kind agree with scipy to ~1e-7 only.
TORCH_APPROXIMATE = {"j0", "j1", "y0", "y1"}
#: Rows whose sympy form sympy's printer cannot write back as an ansatz.
TEXT_UNSUPPORTED = {"erfinv", "digamma", "ellipk", "ellipe", "dawsn"}
#: Rows printed back as a principal power (``a**(1/3)``): NaN for negative arguments.
TEXT_PRINCIPAL_ROOT = {"cbrt"}

CASES = [(name, n) for name, fn in FUNCTIONS.items() for n in fn.arity]
IDS = [f"{name}/{n}" for name, n in CASES]


def _prefix(name: str) -> str:
    return "np" if FUNCTIONS[name].module == "np" else "scipy.special"


def _arguments(name: str, n: int) -> tuple[list[str], list[np.ndarray]]:
    """Argument texts and their values at X, inside the row's domain."""
    if (name, n) in SPECIAL:
        return SPECIAL[name, n]
    texts, values = [], []
    for k in range(n):
        lo, hi = DOMAINS[name][min(k, len(DOMAINS[name]) - 1)]
        # Every argument increases with x, so that sympy has no minus sign to pull out
        # (besselj(v, -z) is rewritten); distinct intervals make the arguments differ.
        texts.append(f"({lo!r} + ({hi!r} - {lo!r}) * x)")
        values.append(lo + (hi - lo) * X)
    return texts, values


def _case(name: str, n: int, *, spelling: str | None = None) -> tuple[str, np.ndarray]:
    """The sample ansatz text of ``name`` with ``n`` arguments and its expected value."""
    texts, values = _arguments(name, n)
    call = f"{_prefix(name)}.{spelling or name}({', '.join(texts)})"
    with np.errstate(all="ignore"):
        expected = P * FUNCTIONS[name].numpy(*values)
    return f"params[0] * {call}", np.asarray(expected, dtype=float)


def _close(actual: object, expected: np.ndarray) -> None:
    np.testing.assert_allclose(
        np.broadcast_to(np.asarray(actual, dtype=float), expected.shape),
        expected,
        rtol=RTOL,
        atol=ATOL,
        equal_nan=True,
    )


def _close_text(name: str, expr: sympy.Expr, expected: np.ndarray) -> None:
    """Compare the value of ``expr`` printed as text and parsed again."""
    actual = ansatz_from_sympy(expr)(X, [P])
    if name in TEXT_PRINCIPAL_ROOT:
        assert np.isnan(actual[expected < 0]).all()
        actual, expected = actual[expected >= 0], expected[expected >= 0]
    _close(actual, expected)


def _sympy_value(expr: sympy.Expr) -> np.ndarray:
    """The value of ``expr`` at X by sympy's own numerical evaluation (slow, independent)."""
    out = [complex(expr.subs({X_SYM: sympy.Float(t), param(0): P}).evalf()) for t in X]
    assert max(abs(v.imag) for v in out) < 1e-12
    return np.array([v.real for v in out])


def _compiled_value(expr: sympy.Expr) -> np.ndarray:
    with np.errstate(all="ignore"):
        return compile_expr(expr, [X_SYM, param(0)])([X, P])


# ----------------------------------------------------------------------------- the table


def test_every_row_has_a_domain_and_the_lists_name_rows():
    assert set(DOMAINS) == set(FUNCTIONS)
    lists = (COMPILE_UNSUPPORTED, TORCH_UNSUPPORTED, NO_TORCH, TEXT_UNSUPPORTED)
    for listed in (*lists, TEXT_PRINCIPAL_ROOT, TORCH_APPROXIMATE):
        assert listed <= set(FUNCTIONS)
    assert {name for name, fn in FUNCTIONS.items() if fn.torch is None} == NO_TORCH


def test_rows_are_well_formed():
    z = sympy.Symbol("z", real=True)
    for name, fn in FUNCTIONS.items():
        assert fn.name == name
        assert fn.arity and all(n >= 1 for n in fn.arity)
        assert fn.module in ("np", "scipy.special")
        assert callable(fn.numpy) and callable(fn.sympy)
        assert fn.latex is None or isinstance(fn.latex, str)
        if fn.sympy_head is not None:  # the one-argument form is that head of the argument
            assert 1 in fn.arity
            built = fn.to_sympy(z)
            assert built.func is getattr(sympy, fn.sympy_head) and built.args == (z,)
    # Sympy-only heads stay out of the ansatz language and off the table's heads.
    assert not set(SYMPY_ONLY) & set(FUNCTIONS)
    assert not set(SYMPY_ONLY) & {fn.sympy_head for fn in FUNCTIONS.values()}


def test_constants_agree_between_numpy_and_sympy():
    assert set(CONSTANTS) == {"pi", "e", "euler_gamma"}
    for name, c in CONSTANTS.items():
        assert c.name == name
        assert float(c.to_sympy()) == pytest.approx(c.numpy, rel=1e-15)
        a = parse_ansatz(f"params[0] * np.{name} + {name}")
        np.testing.assert_allclose(a([0.0], [2.0]), [3 * c.numpy], rtol=1e-15)
        assert float(a.sympy.subs(param(0), 2)) == pytest.approx(3 * c.numpy, rel=1e-15)


def test_evaluator_heads_come_from_the_table():
    heads = table.numpy_by_sympy_head()
    expected = {getattr(sympy, f.sympy_head) for f in FUNCTIONS.values() if f.sympy_head}
    expected |= {getattr(sympy, name) for name in SYMPY_ONLY}
    assert set(heads) == expected
    z = sympy.Symbol("z", real=True)
    for name, fn in SYMPY_ONLY.items():  # cot, sec, ... evaluate as their definitions
        expr = getattr(sympy, name)(z)
        v = np.linspace(0.3, 1.2, 7)
        np.testing.assert_allclose(fn(v), [float(expr.subs(z, t)) for t in v], rtol=1e-12)
        np.testing.assert_allclose(compile_expr(expr, [z])([v]), fn(v), rtol=1e-15)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("name", "n"), CASES, ids=IDS)
def test_compiled_ansatz_matches_the_tables_numpy(name, n):
    text, expected = _case(name, n)
    a = parse_ansatz(text)
    assert a.functions == {name}
    assert f"{_prefix(name)}.{name}(" in a.text
    assert np.isfinite(expected).all(), "sample arguments must lie in the domain"
    _close(a(X, [P]), expected)
    _close(parse_ansatz(a.text)(X, [P]), expected)  # the normal form is a fixed point


@pytest.mark.parametrize(("name", "n"), CASES, ids=IDS)
def test_sympy_form_through_the_multivariate_evaluator(name, n):
    text, expected = _case(name, n)
    expr = parse_ansatz(text).sympy
    if name in COMPILE_UNSUPPORTED:
        with pytest.raises(ValueError, match="cannot evaluate sympy node"):
            _compiled_value(expr)
    else:
        _close(_compiled_value(expr), expected)


@pytest.mark.parametrize(("name", "n"), CASES, ids=IDS)
def test_sympy_form_through_json(name, n):
    text, expected = _case(name, n)
    expr = parse_ansatz(text).sympy
    back = decode_expr(json.loads(json.dumps(encode_expr(expr))))
    assert back == expr
    if name not in COMPILE_UNSUPPORTED:
        _close(_compiled_value(back), expected)
    if name not in TEXT_UNSUPPORTED:
        _close_text(name, back, expected)
    if name in COMPILE_UNSUPPORTED and name in TEXT_UNSUPPORTED:  # no evaluator of ours
        assert name in {"digamma", "dawsn"}
        _close(_sympy_value(back), expected)


@pytest.mark.parametrize(("name", "n"), CASES, ids=IDS)
def test_sympy_form_printed_and_parsed_again(name, n):
    text, expected = _case(name, n)
    expr = parse_ansatz(text).sympy
    if name in TEXT_UNSUPPORTED:
        with pytest.raises((AnsatzError, NotImplementedError)):
            ansatz_from_sympy(expr)
    else:
        _close_text(name, expr, expected)


@pytest.mark.parametrize(("name", "n"), CASES, ids=IDS)
def test_torch_export(name, n):
    torch = pytest.importorskip("torch")
    from llmlex.export import to_torch

    text, expected = _case(name, n)
    a = parse_ansatz(text)
    result = FitResult(ansatz=a.text, params=[P], nchi2=0.0, success=True, message="", compiled=a)
    if name in TORCH_UNSUPPORTED:
        with pytest.raises(ValueError, match="cannot convert sympy node"):
            to_torch(result)
        return
    module = to_torch(result)
    with torch.no_grad():
        out = module(torch.as_tensor(X, dtype=torch.float64)).numpy()
    _close(out, expected)


@pytest.mark.parametrize(("name", "n"), CASES, ids=IDS)
def test_torch_counterpart_of_the_row(name, n):
    torch = pytest.importorskip("torch")
    fn = FUNCTIONS[name]
    op = table.torch_function(fn, torch)
    if name in NO_TORCH:
        assert op is None
        return
    _, values = _arguments(name, n)
    with np.errstate(all="ignore"):
        expected = np.asarray(fn.numpy(*values), dtype=float)
    out = op(*(torch.as_tensor(v) for v in values)).numpy()
    if name in TORCH_APPROXIMATE:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    else:
        _close(out, expected)


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_every_alias_resolves(alias):
    fn = lookup(alias)
    assert fn is not None and fn is FUNCTIONS[ALIASES[alias]]
    assert alias not in FUNCTIONS
    n = fn.arity[0]
    text, expected = _case(fn.name, n, spelling=alias)
    canonical, _ = _case(fn.name, n)
    assert parse_ansatz(text).text == parse_ansatz(canonical).text
    _close(parse_ansatz(text)(X, [P]), expected)
    assert normalise_functions([alias, f"np.{alias}"]) == (fn.name,)
    assert parse_ansatz(text, allowed_functions=[alias]).functions == {fn.name}


def test_the_aliases_models_write():
    expected = {
        "asin": "arcsin",
        "acos": "arccos",
        "atan": "arctan",
        "atan2": "arctan2",
        "asinh": "arcsinh",
        "acosh": "arccosh",
        "atanh": "arctanh",
        "ln": "log",
        "fabs": "abs",
        "absolute": "abs",
        "pow": "power",
        "lgamma": "gammaln",
        "sigmoid": "expit",
    }
    assert expected == ALIASES
    assert lookup("no_such_function") is None


def test_every_function_in_the_prompt_parses():
    listing = _function_list(None)
    found: dict[str, str] = {}
    for module, names in re.findall(r"(numpy|scipy\.special) \(write [^)]*\): ([^;.]+)", listing):
        for name in names.split(", "):
            found[name] = "np" if module == "numpy" else "scipy.special"
    # Every function but np.where (described in its own sentence) is listed, once.
    assert set(found) == set(FUNCTIONS) - {"where"}
    assert "np.where(condition, a, b)" in _format_block(None, [])
    for name, module in found.items():
        assert FUNCTIONS[name].module == module
        for n in FUNCTIONS[name].arity:
            text, expected = _case(name, n)
            _close(parse_ansatz(text)(X, [P]), expected)
    for c in CONSTANTS:
        assert f"np.{c}" in _format_block(None, [])


# ----------------------------------------------------------------------------- regressions


def test_heaviside_takes_one_or_two_arguments():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(parse_ansatz("np.heaviside(x)")(x), [0.0, 0.5, 1.0])
    two = parse_ansatz("np.heaviside(x, params[0])")
    np.testing.assert_array_equal(two(x, [0.25]), [0.0, 0.25, 1.0])
    np.testing.assert_array_equal(parse_ansatz("np.heaviside(x, 1)")(x), [0.0, 1.0, 1.0])
    assert two.sympy == sympy.Heaviside(X_SYM, param(0))
    with pytest.raises(AnsatzError, match="heaviside takes"):
        parse_ansatz("np.heaviside(x, 1, 2)")


@pytest.mark.parametrize("name", [name for name, fn in FUNCTIONS.items() if 1 in fn.arity])
def test_parse_expression_accepts_what_the_evaluator_can_evaluate(name):
    x0 = sympy.Symbol("x0", real=True)
    lo, hi = DOMAINS[name][0]
    text = f"{_prefix(name)}.{name}({lo!r} + ({hi!r} - {lo!r}) * x0)"
    if name in COMPILE_UNSUPPORTED:
        with pytest.raises(AnsatzError, match="function not allowed"):
            parse_expression(text, {"x0": x0})
        return
    expr = parse_expression(text, {"x0": x0})
    expected = FUNCTIONS[name].numpy(lo + (hi - lo) * X)
    np.testing.assert_allclose(compile_expr(expr, [x0])([X]), expected, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- imports


def _imports(module: str, *, top_level: bool = False) -> set[str]:
    """The modules ``module`` imports: all, function-local ones included, or top-level only."""
    tree = ast.parse((LLMLEX / f"{module}.py").read_text())
    out: set[str] = set()
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_no_import_cycle_between_the_table_ansatz_and_symbolic():
    ours = {m for m in _imports("_functions") if m.startswith("llmlex")}
    assert ours <= {"llmlex.exceptions"}
    assert not {m.split(".")[0] for m in _imports("_functions", top_level=True)} & {
        "sympy",
        "torch",
    }
    assert {m for m in _imports("_symbolic") if m.startswith("llmlex")} == {"llmlex._functions"}
    # ansatz may import _symbolic (lazily): the door to sympy, which does not import back.
    assert "llmlex._symbolic" not in _imports("ansatz", top_level=True)


def test_the_table_imports_neither_sympy_nor_torch():
    code = (
        "import sys, llmlex._functions as f; "
        "assert f.FUNCTIONS and f.lookup('ln').name == 'log'; "
        "print(sorted(m for m in ('sympy', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_every_parse_holds_the_ast_lock(monkeypatch):
    # ast.parse is not thread-safe on CPython < 3.11.8 (gh-106905): both parsers of
    # untrusted text must call it under the table's one lock.
    real = ast.parse
    held: list[bool] = []

    def spy(*args, **kwargs):
        lock = getattr(table, "_AST_LOCK", None)
        held.append(lock is not None and lock.locked())
        return real(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", spy)
    parse_ansatz("params[0]*np.sin(x)")
    parse_expression("x0 + np.sin(x1)", {"x0": sympy.Symbol("x0"), "x1": sympy.Symbol("x1")})
    assert held == [True, True]


def test_parse_errors_are_ansatz_errors():
    # A null byte makes ast.parse raise ValueError, deep nesting RecursionError/SyntaxError.
    for text in ("x\x00", "(" * 300 + "x" + ")" * 300, "x +"):
        with pytest.raises(AnsatzError):
            table.parse_expression_tree(text)
        with pytest.raises(AnsatzError):
            parse_expression(text, {"x": sympy.Symbol("x")})


def _nested_tree(depth: int) -> dict:
    tree: dict = {"Symbol": "x"}
    for _ in range(depth):
        tree = {"sin": [tree]}
    return tree


def test_stored_trees_too_deep_to_print_are_refused_on_load():
    # At depth 199 the tree used to load, then str() and report() raised RecursionError.
    with pytest.raises(PersistError, match="deeper"):
        decode_expr(_nested_tree(199))
    assert decode_expr(encode_expr(decode_expr(_nested_tree(100)))).count(sympy.sin) == 100
    with pytest.raises(PersistError, match="deeper"):  # what cannot be loaded is not saved
        encode_expr(sympy.sin(decode_expr(_nested_tree(100)), evaluate=False))


def test_the_deepest_storable_tree_prints_with_stack_to_spare():
    expr = decode_expr(_nested_tree(100))

    def deep(n: int) -> str:  # the caller's own frames: notebooks, pytest, asyncio
        return deep(n - 1) if n else str(expr) + sympy.latex(expr) + sympy.srepr(expr)

    assert deep(150).count("sin") > 100


def test_parse_expression_of_huge_numbers_finishes():
    # An LLM's simplification text goes through parse_expression: the same exact-evaluation
    # traps as the ansatz's sympy form (this used to hang on gamma of a big literal).
    script = (
        "import json, time, sympy\n"
        "from llmlex._kan_sympy import parse_expression\n"
        "from llmlex.exceptions import AnsatzError\n"
        "v = {'x0': sympy.Symbol('x0', real=True)}\n"
        "out = []\n"
        "for t in ['x0 + gamma(999999999)', 'x0 + ((9**99)**99)**99', 'x0*erf(1)',\n"
        "          'x0 + 9**99*9**99*9**99*9**99', 'x0 + ' + '1' * 1000]:\n"
        "    t0 = time.perf_counter()\n"
        "    try:\n"
        "        r = str(parse_expression(t, v))\n"
        "    except AnsatzError as err:\n"
        "        r = type(err).__name__\n"
        "    out.append([r, time.perf_counter() - t0])\n"
        "print(json.dumps(out))\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("parse_expression hung")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert [r for r, _ in out] == [
        "oo",
        "AnsatzTooComplexError",
        "0.842700792949715*x0",
        "AnsatzTooComplexError",
        "AnsatzError",
    ]
    assert max(s for _, s in out) < 1.5


def test_yv_of_a_huge_order_is_nan_at_once():
    # scipy computes yv of a large integer order at a large argument by a recurrence of as
    # many steps, in C where no time bound reaches: yv(1e9, 1e300) took 20 s (fuzzing).
    import time

    from scipy.special import yv

    t0 = time.perf_counter()
    out = FUNCTIONS["yv"].numpy(np.array([1e9, -1e9, 2.0, 1000.0]), np.full(4, 1e300))
    assert time.perf_counter() - t0 < 0.5
    assert np.isnan(out[:2]).all() and np.isfinite(out[2:]).all()
    assert FUNCTIONS["yv"].numpy(2.5, 3.0) == yv(2.5, 3.0)  # ordinary orders untouched
