"""Saving FitResults, GeneticRuns and KANSymbolicResults to JSON and loading them back
identically; the sympy expression codec is safe (whitelist only, nothing evaluated)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import struct

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmlex import FitResult, GeneticRun, _sympy_json, fit_ansatz, parse_ansatz, run_genetic
from llmlex._sympy_json import decode_expr, encode_expr
from llmlex.kan import Candidate, KANSymbolicResult
from llmlex.persist import (
    SCHEMA,
    PersistError,
    from_json,
    load_result,
    save_result,
    to_json,
)
from llmlex.proposer import Proposal, ProposalBatch

X = np.linspace(-1, 1, 50)
Y = np.sin(np.pi * X) + 0.3 * X**2  # no scripted form is exact: every generation runs

FORMS = [
    "params[0]*x",
    "params[0]*x**3 + params[1]*x",
    "params[0]*np.sin(params[1]*x)",
    "params[0]*np.sin(params[1]*x) + params[2]*x**2 + params[3]",
    "params[0]*np.tanh(params[1]*x)",
]


class Scripted:
    name = "scripted"

    async def propose(self, request):
        await asyncio.sleep(0)
        rng = np.random.default_rng(request.seed)
        text = FORMS[int(rng.integers(len(FORMS)))]
        return ProposalBatch(
            proposals=(Proposal(text),), calls=1, prompt_tokens=100, completion_tokens=20
        )


def strict_loads(text: str):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def assert_same_result(a: FitResult, b: FitResult) -> None:
    assert a.ansatz == b.ansatz
    assert a.params.tobytes() == b.params.tobytes()  # bit-identical, nan included
    assert (a.nchi2 == b.nchi2) or (np.isnan(a.nchi2) and np.isnan(b.nchi2))
    assert (a.success, a.message, a.nfev, a.n_starts, a.time) == (
        b.success,
        b.message,
        b.nfev,
        b.n_starts,
        b.time,
    )
    assert a.complexity == b.complexity
    assert b.compiled is not None and b.compiled.text == a.ansatz


@pytest.fixture(scope="module")
def run() -> GeneticRun:
    return run_genetic(
        None,
        None,
        X,
        Y,
        4,
        3,
        proposer=Scripted(),
        seed=3,
        progress=False,
        exit_condition=0.0,
        prices={"x": (1.0, 2.0)},
    )


def test_fit_result_round_trip_is_bit_identical():
    r = fit_ansatz("params[0]*np.exp(params[1]*x) + params[2]", X, np.exp(-0.37 * X) / 3)
    back = from_json(to_json(r))
    assert isinstance(back, FitResult)
    assert_same_result(r, back)
    np.testing.assert_array_equal(back.predict(X), r.predict(X))
    assert not back.params.flags.writeable


def test_failed_fit_with_nan_params_and_inf_nchi2_round_trips_as_standard_json():
    failed = FitResult(
        ansatz=parse_ansatz("params[0] * np.log(-x**2 - params[1]**2)").text,
        params=[float("nan"), -0.0],
        nchi2=float("inf"),
        success=False,
        message="non-finite",
    )
    text = to_json(failed)
    strict_loads(text)  # no NaN/Infinity literals
    back = from_json(text)
    assert_same_result(failed, back)
    assert np.signbit(back.params[1])  # -0.0 survives


def test_run_round_trip(run, tmp_path):
    assert len(run) == 3
    text = to_json(run)
    strict_loads(text)
    back = from_json(text)
    assert isinstance(back, GeneticRun)
    assert len(back) == len(run)
    for pa, pb in zip(run.populations, back.populations, strict=True):
        assert len(pa) == len(pb)
        for a, b in zip(pa, pb, strict=True):
            assert_same_result(a, b)
    for a, b in zip(run.archive, back.archive, strict=True):
        assert_same_result(a, b)
    assert back.stats == run.stats
    assert (back.proposer, back.stop_reason, back.parsimony_rtol) == (
        run.proposer,
        run.stop_reason,
        run.parsimony_rtol,
    )
    assert back.best.ansatz == run.best.ansatz
    assert [r.ansatz for r in back.pareto_front] == [r.ansatz for r in run.pareto_front]
    # A result shared by populations and archive is stored once and shared again.
    # (The archive may also hold results of the final polish, in no population.)
    in_pops = {id(r) for pop in run.populations for r in pop}
    i, top = next((i, r) for i, r in enumerate(run.archive) if id(r) in in_pops)
    where = [(g, k) for g, pop in enumerate(run.populations) for k, r in enumerate(pop) if r is top]
    assert where
    g, k = where[0]
    assert back.populations[g][k] is back.archive[i]
    assert len(strict_loads(text)["results"]) < sum(map(len, run.populations)) + len(run.archive)


def test_save_and_load_files(run, tmp_path):
    path = run.save(tmp_path / "sub" / "run.json")
    assert path.exists()
    back = GeneticRun.load(path)
    assert back.stats == run.stats
    assert [r.ansatz for r in back.archive] == [r.ansatz for r in run.archive]
    doc = strict_loads(path.read_text())
    assert doc["kind"] == "genetic_run" and doc["schema"] == SCHEMA and "llmlex" in doc

    best = save_result(run.best, tmp_path / "best.json")
    assert_same_result(run.best, load_result(best))


def test_wrong_kind_is_a_clear_error(run, tmp_path):
    path = save_result(run.best, tmp_path / "best.json")
    with pytest.raises(PersistError, match="expected a document of kind 'genetic_run'"):
        GeneticRun.load(path)
    with pytest.raises(PersistError, match="kind 'fit_result'"):
        from_json(to_json(run), kind="fit_result")


def test_newer_schema_is_refused_with_upgrade_hint(run):
    doc = strict_loads(to_json(run))
    doc["schema"] = SCHEMA + 1
    doc["llmlex"] = "9.9.9"
    with pytest.raises(PersistError, match=r"schema 2, written by llmlex 9\.9\.9.*upgrade"):
        from_json(json.dumps(doc))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not a JSON document"),
        ('{"a": 1}', "not an llmlex document"),
        ("[1, 2]", "not an llmlex document"),
    ],
)
def test_not_a_document(text, match):
    with pytest.raises(PersistError, match=match):
        from_json(text)


def test_loading_never_evaluates_code(tmp_path):
    doc = strict_loads(to_json(fit_ansatz("params[0]*x", X, 2 * X)))
    marker = tmp_path / "pwned"
    doc["result"]["ansatz"] = f"__import__('os').system('touch {marker}')"
    doc["result"]["params"] = []
    with pytest.raises(PersistError, match="does not parse"):
        from_json(json.dumps(doc))
    assert not marker.exists()


def test_damaged_documents_give_persist_errors(run):
    doc = strict_loads(to_json(run))
    doc["results"][0]["params"].append(1.0)
    with pytest.raises(PersistError, match="parameters but"):
        from_json(json.dumps(doc))
    doc = strict_loads(to_json(run))
    doc["populations"][0][0] = 10_000
    with pytest.raises(PersistError, match="out of range"):
        from_json(json.dumps(doc))
    doc = strict_loads(to_json(run))
    del doc["stats"]["calls"]
    with pytest.raises(PersistError, match="'calls'"):
        from_json(json.dumps(doc))
    doc = strict_loads(to_json(run))
    doc["results"][0]["nchi2"] = "lots"
    with pytest.raises(PersistError, match="not a number"):
        from_json(json.dumps(doc))


def test_to_json_rejects_other_objects():
    with pytest.raises(TypeError, match="cannot save a dict"):
        to_json({"a": 1})


# --------------------------------------------------------------------------------------
# KANSymbolicResult: sympy expressions as JSON trees
# --------------------------------------------------------------------------------------

X0, X1, X2 = (sympy.Symbol(f"x{k}", real=True) for k in range(3))
AWKWARD = (1e-300, -0.0, 1 / 3, 0.1, 5e-324, 1.7976931348623157e308, -2.5e-17, 123456789.123)


def bits(v: float) -> bytes:
    return struct.pack("<d", v)  # distinguishes -0.0 and keeps nan comparable


def float_atoms(expr: sympy.Basic) -> list[tuple[str, int]]:
    """The Floats of ``expr`` in traversal order, as exact hex and precision."""
    if isinstance(expr, sympy.Float):
        return [(float(expr).hex(), expr._prec)]
    # .args, not preorder_traversal: that walks Max/Min/And by an unordered set
    return [atom for a in expr.args for atom in float_atoms(a)]


def shape(e: sympy.Basic) -> tuple:
    """The exact tree: node types and order, symbol assumptions, Float bits and precision."""
    if isinstance(e, sympy.Float):
        return ("Float", float(e).hex(), e._prec, e._mpf_)
    if isinstance(e, sympy.Symbol):
        return (type(e).__name__, e.name, tuple(sorted(e.assumptions0.items())))
    if isinstance(e, sympy.Rational):
        return (type(e).__name__, e.p, e.q)
    return (type(e).__name__, *(shape(a) for a in e.args))


def assert_same_expr(a: sympy.Basic, b: sympy.Basic) -> None:
    assert b == a
    assert shape(b) == shape(a)
    assert float_atoms(b) == float_atoms(a)


def assert_same_kan_result(a: KANSymbolicResult, b: KANSymbolicResult) -> None:
    assert type(b) is KANSymbolicResult
    for f in dataclasses.fields(KANSymbolicResult):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, sympy.Basic):
            assert_same_expr(va, vb)
        elif isinstance(va, float):
            assert type(vb) is float and bits(va) == bits(vb), f.name
        elif f.name == "timings":
            assert list(vb) == list(va)
            assert [bits(v) for v in vb.values()] == [bits(v) for v in va.values()]
        elif f.name == "candidates":
            assert len(vb) == len(va)
            for ca, cb in zip(va, vb, strict=True):
                assert type(cb) is Candidate
                assert (ca.origin, ca.text, ca.complexity, ca.accepted) == (
                    cb.origin,
                    cb.text,
                    cb.complexity,
                    cb.accepted,
                )
                assert bits(ca.nchi2_test) == bits(cb.nchi2_test)
                assert bits(ca.reduced_chi2_test) == bits(cb.reduced_chi2_test)
        else:
            assert type(vb) is type(va) and vb == va, f.name


def kan_result(expression: sympy.Expr, raw: sympy.Expr | None = None, **kw) -> KANSymbolicResult:
    fields = {
        "output": 1,
        "expression": expression,
        "text": "0.5*np.sin(x0)",
        "raw_expression": expression if raw is None else raw,
        "variables": ("x0", "x1", "x2"),
        "nchi2_train": float("nan"),
        "nchi2_test": float("inf"),
        "r2_train": -0.0,
        "r2_test": float("-inf"),
        "complexity": 9,
        "raw_complexity": 20,
        "assembly_error": 1e-300,
        "structure_error": 1 / 3,
        "kan_error": 5e-324,
        "llm_calls": 3,
        "llm_calls_saved": 2,
        "timings": {"edges": 1.5, "simplify": 1 / 3, "total": 0.1},
        "chi2_train": 1 / 3,
        "dof_train": -2,
        "chi2_test": float("inf"),
        "dof_test": 7,
        "candidates": (
            Candidate("raw", "x0 + 1", float("nan"), 5, False),
            Candidate("sympy", "x0", -0.0, 1, True, 1 / 3),
            Candidate("final", "x0", float("inf"), 1, True),
        ),
    }
    fields.update(kw)
    return KANSymbolicResult(**fields)


def awkward_expression() -> sympy.Expr:
    funcs = (sympy.sin, sympy.exp, sympy.cos, sympy.tanh, sympy.erf, sympy.log, sympy.atan)
    # distinct terms, so that sympy does not add the coefficients up
    terms = [sympy.Float(v) * f(X0) for v, f in zip(AWKWARD, (*funcs, sympy.cosh), strict=True)]
    return (
        sympy.Add(*terms)
        + sympy.Rational(1, 3) * X1**2
        + sympy.pi * sympy.sqrt(X2)
        + sympy.E ** (-X1 / 7)
        + sympy.Integer(10) ** 40 * X2
    )


def test_kan_result_round_trip_is_bit_identical():
    expr = awkward_expression()
    raw = sympy.Float(0.30000000000000004) * sympy.tanh(sympy.Float(-1.1) * X0 + X1) + sympy.cbrt(
        X2
    )
    r = kan_result(expr, raw)
    text = to_json(r)
    strict_loads(text)  # standard JSON: no NaN/Infinity literals
    back = from_json(text)
    assert_same_kan_result(r, back)
    assert from_json(text, kind="kan_result").text == r.text
    # The floats are really there (the expressions were not folded or rounded).
    assert len(float_atoms(back.expression)) == len(AWKWARD) - 1  # -0.0*f is dropped by sympy
    assert float(1 / 3).hex() in {h for h, _ in float_atoms(back.expression)}
    x = np.array([[0.3, 0.4, 0.5], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(back.predict(x), r.predict(x))
    assert back.to_dict().keys() == r.to_dict().keys()


def test_awkward_scores_and_zero_in_the_expression():
    zero = sympy.Mul(sympy.Float(-0.0), X0, evaluate=False)  # an unevaluated tree survives too
    r = kan_result(zero, sympy.Float(1e-300) + X0, nchi2_test=-0.0, r2_train=float("nan"))
    back = from_json(to_json(r))
    assert_same_kan_result(r, back)
    assert math.copysign(1.0, back.nchi2_test) == -1.0


def test_kan_result_files(tmp_path):
    r = kan_result(awkward_expression())
    path = save_result(r, tmp_path / "deep" / "kan.json")
    assert path.exists()
    doc = strict_loads(path.read_text())
    assert doc["kind"] == "kan_result" and doc["schema"] == SCHEMA
    assert_same_kan_result(r, load_result(path))
    assert_same_kan_result(r, load_result(path, kind="kan_result"))
    with pytest.raises(PersistError, match="expected a document of kind 'fit_result'"):
        load_result(path, kind="fit_result")
    with pytest.raises(PersistError, match="kind 'kan_result'"):
        from_json(to_json(fit_ansatz("params[0]*x", X, 2 * X)), kind="kan_result")
    with pytest.raises(ValueError, match="kind must be one of"):
        load_result(path, kind="kan")


def _where(c, a, b):
    return sympy.Piecewise((a, c), (b, True))


FUNCTION_CASES = [
    *(f(X0) for f in (sympy.sin, sympy.cos, sympy.tan, sympy.cot, sympy.sec, sympy.csc)),
    *(f(X0) for f in (sympy.asin, sympy.acos, sympy.atan, sympy.acot)),
    *(f(X0) for f in (sympy.sinh, sympy.cosh, sympy.tanh, sympy.coth, sympy.sech, sympy.csch)),
    *(f(X0) for f in (sympy.asinh, sympy.acosh, sympy.atanh, sympy.exp, sympy.log)),
    *(f(X0) for f in (sympy.Abs, sympy.sign, sympy.floor, sympy.ceiling, sympy.sqrt)),
    *(f(X0) for f in (sympy.erf, sympy.erfc, sympy.erfi, sympy.erfinv, sympy.cbrt)),
    *(f(X0) for f in (sympy.gamma, sympy.loggamma, sympy.digamma, sympy.sinc)),
    *(f(X0) for f in (sympy.elliptic_k, sympy.elliptic_e)),
    sympy.elliptic_e(X0, X1),
    sympy.atan2(X0, X1),
    sympy.beta(X0, X1),
    *(
        f(n, X0)
        for f in (sympy.besselj, sympy.bessely, sympy.besseli, sympy.besselk)
        for n in (0, 1)
    ),
    sympy.besselj(sympy.Rational(5, 2), X0),
    sympy.polygamma(1, X0),
    sympy.Max(X0, X1, 1),
    sympy.Min(X0, sympy.Float(0.25)),
    sympy.Heaviside(X0),
    sympy.Heaviside(X0, 0),
    X0**X1,
    1 / X0,
    sympy.Piecewise((X0, X0 > 0), (X1, sympy.And(X0 < -1, X1 >= 2)), (0, True)),
    _where(sympy.Or(sympy.Eq(X0, X1), sympy.Ne(X1, 0.5), X0 <= X2), X0, -X1),
    _where(sympy.Not(sympy.Eq(X0, X2)), X0, X1),
    sympy.pi * sympy.E * sympy.EulerGamma * sympy.GoldenRatio * sympy.Catalan * X0,
    sympy.I * X0,
    sympy.oo,
    -sympy.oo,
    sympy.zoo,
    sympy.nan,
    sympy.Integer(0),
    sympy.Integer(-1),
    sympy.Rational(-7, 3),
]


@pytest.mark.parametrize("expr", FUNCTION_CASES, ids=str)
def test_every_whitelisted_function_round_trips(expr):
    tree = encode_expr(expr)
    assert_same_expr(expr, decode_expr(json.loads(json.dumps(tree))))


# Every function of the ansatz language (what llmlex parses and emits) and every function
# the multivariate evaluator accepts must be storable.
_BINARY = {"arctan2", "hypot", "power", "maximum", "minimum", "jv", "yv", "iv", "kv", "beta"}


def test_all_llmlex_functions_are_storable():
    from llmlex._kan_sympy import _UNARY
    from llmlex._symbolic import _SYMPY_FUNCS

    exprs = [f(X0 + 1) for f in _UNARY]
    for name, f in _SYMPY_FUNCS.items():
        if name == "where":
            exprs.append(f(X0 > X1, X0, X1))
        else:
            exprs.append(f(*([X0, X1] if name in _BINARY else [X0 + 1])))
    exprs.append(_SYMPY_FUNCS["heaviside"](X0, 1))
    exprs.append(_SYMPY_FUNCS["log"](X0, 2))
    for expr in exprs:
        assert_same_expr(expr, decode_expr(encode_expr(expr)))


@pytest.mark.parametrize(
    ("expr", "match"),
    [
        (sympy.Function("f")(X0), "cannot store the sympy node f"),
        (sympy.Integral(X0, X0), "cannot store the sympy node Integral"),
        (sympy.Symbol("x0") + 1, "only real Symbols"),
        (sympy.Dummy("d", real=True), "only real Symbols"),
        (sympy.Symbol("p", positive=True), "only real Symbols"),
        (sympy.Float("0.1", 30) * X0, "not a double-precision"),
        (sympy.Float(1e300) ** 3 * X0, "not a double-precision"),
        # Beyond the exponents of Python's decimal: formatting it raised InvalidOperation.
        (sympy.Float(1e300) ** sympy.Float(4e16) * X0, "not a double-precision"),
        (sympy.Matrix([X0]), "expected a sympy expression"),
    ],
)
def test_unsupported_nodes_are_refused_when_saving(expr, match, tmp_path):
    with pytest.raises(PersistError, match=match):
        encode_expr(expr)
    with pytest.raises(PersistError, match=match):
        save_result(kan_result(X0, expr), tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def _doc_with(expression) -> str:
    doc = strict_loads(to_json(kan_result(X0 + 1)))
    doc["result"]["expression"] = expression
    return json.dumps(doc)


def _nest(head: str, depth: int) -> str:
    return f'{{"{head}": [' * depth + '{"Symbol": "x0"}' + "]}" * depth


@pytest.mark.parametrize(
    ("tree", "match"),
    [
        ({"Function": "__import__"}, "unsupported expression node 'Function'"),
        ({"__import__": [{"Symbol": "os"}]}, "unsupported expression node '__import__'"),
        ({"eval": [{"Symbol": "x0"}]}, "unsupported expression node 'eval'"),
        ({"sympify": [{"Symbol": "x0"}]}, "unsupported expression node 'sympify'"),
        ({"Constant": "__builtins__"}, "unknown constant"),
        ({"Constant": ["pi"]}, "unknown constant"),
        ({"Float": "__import__('os').system('true')"}, "decimal string"),
        ({"Float": 0.5}, "decimal string"),
        ({"Float": "nan"}, "finite"),
        ({"Float": "1e400"}, "finite"),
        ({"Integer": "1e5"}, "string of digits"),
        ({"Integer": 5}, "string of digits"),
        ({"Integer": "9" * 5000}, "more than 1000 digits"),
        ({"Rational": ["2", "4"]}, "lowest terms"),
        ({"Rational": ["1", "0"]}, "lowest terms"),
        ({"Rational": ["1"]}, "numerator, denominator"),
        ({"Symbol": ""}, "symbol name"),
        ({"Symbol": 3}, "symbol name"),
        ({"Add": {"Symbol": "x0"}}, "must be a list"),
        ({"Add": []}, "needs arguments"),
        ({"sin": [{"Symbol": "x0"}, {"Symbol": "x1"}]}, "cannot build sin"),
        ({"Pow": [{"Symbol": "x0"}]}, "cannot build Pow"),
        ({"Add": [{"Symbol": "x0"}, {"Constant": "true"}]}, "Add cannot take BooleanTrue"),
        ({"And": [{"Symbol": "x0"}, {"Constant": "true"}]}, "And cannot take Symbol"),
        ({"Piecewise": [{"Symbol": "x0"}]}, "Piecewise cannot take Symbol"),
        ({"ExprCondPair": [{"Symbol": "x0"}, {"Symbol": "x1"}]}, "ExprCondPair must be"),
        ({"StrictLessThan": [{"Symbol": "x0"}, {"Symbol": "x1"}]}, "not an Expr"),
        ({"Symbol": "x0", "Integer": "1"}, "one key"),
        (["Symbol", "x0"], "one key"),
        ("x0 + 1", "one key"),
        (None, "one key"),
        (json.loads(_nest("sin", 250)), "deeper than 100"),
    ],
    ids=lambda v: repr(v)[:50],
)
def test_bad_expression_trees_give_persist_errors(tree, match):
    with pytest.raises(PersistError, match=match):
        decode_expr(tree)
    with pytest.raises(PersistError, match=match):
        from_json(_doc_with(tree))


def test_loading_a_kan_result_executes_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    for tree in (
        {"Function": payload},
        {payload: [{"Symbol": "x0"}]},
        {"Constant": payload},
        {"Float": payload},
        {"Integer": payload},
    ):
        with pytest.raises(PersistError):
            from_json(_doc_with(tree))
    # A symbol's name is only a name: it is never parsed or evaluated.
    monkeypatch.setattr(sympy, "sympify", None)  # would raise if anything called it
    back = from_json(_doc_with({"Symbol": payload}))
    assert back.expression == sympy.Symbol(payload, real=True)
    assert not marker.exists()


def test_decode_bounds_size_and_json_depth(monkeypatch):
    monkeypatch.setattr(_sympy_json, "MAX_NODES", 50)
    tree = {"Add": [{"Integer": str(k)} for k in range(60)]}
    with pytest.raises(PersistError, match="more than 50 nodes"):
        decode_expr(tree)
    with pytest.raises(PersistError, match="more than 50 nodes"):
        encode_expr(sympy.Add(*[X0**k for k in range(60)]))
    # Nesting too deep even for the JSON parser is still a PersistError.
    text = to_json(kan_result(X0)).replace('"Symbol": "x0"', _nest("sin", 20_000)[1:-1], 1)
    with pytest.raises(PersistError, match="not a JSON document"):
        from_json(text)


def _mutations():
    def drop(key):
        return lambda d: d["result"].pop(key)

    def put(key, value):
        return lambda d: d["result"].__setitem__(key, value)

    return [
        (drop("text"), "lacks the field 'text'"),
        (drop("expression"), "lacks the field 'expression'"),
        (drop("raw_expression"), "lacks the field 'raw_expression'"),
        (drop("kan_error"), "lacks the field 'kan_error'"),
        (drop("candidates"), "lacks the field 'candidates'"),
        (put("output", True), "'output' of the stored KAN result must be int"),
        (put("complexity", "9"), "'complexity' of the stored KAN result must be int"),
        (put("variables", ["x0", 1]), "variables of the stored KAN result must be strings"),
        (put("variables", "x0"), "'variables' of the stored KAN result must be list"),
        (put("timings", {"edges": "slow"}), "not a number"),
        (put("r2_test", None), "not a number"),
        (put("candidates", [{"origin": "raw"}]), "candidate lacks the field 'text'"),
        (put("candidates", ["x0"]), "candidate must be an object"),
        (lambda d: d.__setitem__("result", [1]), "must be an object"),
        (lambda d: d.pop("result"), "lacks the field 'result'"),
    ]


@pytest.mark.parametrize(("mutate", "match"), _mutations())
def test_damaged_kan_documents_give_persist_errors(mutate, match):
    doc = strict_loads(to_json(kan_result(X0 * sympy.Float(0.5))))
    mutate(doc)
    with pytest.raises(PersistError, match=match):
        from_json(json.dumps(doc))


def test_persist_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, llmlex, llmlex.persist, llmlex.kan\n"
        "from llmlex.persist import to_json\n"
        "from llmlex.fit import FitResult\n"
        "to_json(FitResult('params[0]*x', [1.0], 0.0, True, ''))\n"
        "heavy = [m for m in ('torch', 'kan', 'sympy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------
# Random trees
# --------------------------------------------------------------------------------------

_UNARY_HEADS = (sympy.sin, sympy.exp, sympy.log, sympy.tanh, sympy.Abs, sympy.erf, sympy.gamma)
_UNARY_HEADS += (sympy.atan, sympy.cosh, sympy.sign, sympy.asin, sympy.loggamma, sympy.sinc)
_BINARY_HEADS = (sympy.Pow, sympy.atan2, sympy.beta, sympy.besselj, sympy.polygamma)
_NARY_HEADS = (sympy.Add, sympy.Mul, sympy.Max, sympy.Min)
_SYMBOLS = st.sampled_from([X0, X1, X2])
_CONSTS = st.sampled_from(
    [sympy.pi, sympy.E, sympy.I, sympy.oo, sympy.EulerGamma]
)  # nan: see above

# Any node, numbers of any size: for trees built unevaluated (nothing is computed).
any_leaf = st.one_of(
    _SYMBOLS,
    _CONSTS,
    st.integers(-(10**40), 10**40).map(sympy.Integer),
    st.fractions(max_denominator=10**12).map(lambda f: sympy.Rational(f.numerator, f.denominator)),
    st.floats(allow_nan=False, allow_infinity=False).map(sympy.Float),
)
# Evaluated trees: elementary functions, moderate numbers and small exponents only, so that
# sympy's own evaluation stays quick (10**40 ** 10**40 would not).
small_leaf = st.one_of(
    _SYMBOLS,
    st.sampled_from([sympy.pi, sympy.E, sympy.I, sympy.EulerGamma]),  # sin(oo) is AccumBounds
    st.integers(-5, 5).map(sympy.Integer),
    st.fractions(max_denominator=12, min_value=-10, max_value=10).map(
        lambda f: sympy.Rational(f.numerator, f.denominator)
    ),
    st.floats(-1e6, 1e6).map(sympy.Float),
)
small_exponent = st.one_of(
    st.integers(-3, 3).map(sympy.Integer),
    st.sampled_from([sympy.Rational(1, 2), sympy.Rational(-1, 3), sympy.Float(0.37)]),
)


def unevaluated_trees():
    def extend(children):
        return st.one_of(
            st.tuples(st.sampled_from(_UNARY_HEADS), st.tuples(children)),
            st.tuples(st.sampled_from(_BINARY_HEADS), st.tuples(children, children)),
            st.tuples(st.sampled_from(_NARY_HEADS), st.lists(children, min_size=2, max_size=4)),
        ).map(lambda hc: hc[0](*hc[1], evaluate=False))

    return st.recursive(any_leaf, extend, max_leaves=12)


def evaluated_trees():
    elementary = (sympy.sin, sympy.exp, sympy.log, sympy.tanh, sympy.Abs, sympy.atan, sympy.sign)

    def nary(head_args):
        head, args = head_args
        try:
            return head(*args)
        except (TypeError, ValueError):  # Max/Min of complex numbers: not comparable
            return sympy.Add(*args)

    def extend(children):
        return st.one_of(
            st.tuples(st.sampled_from(elementary), children).map(lambda fc: fc[0](fc[1])),
            st.tuples(children, small_exponent).map(lambda be: be[0] ** be[1]),
            st.tuples(st.sampled_from(_NARY_HEADS), st.lists(children, min_size=2, max_size=4)).map(
                nary
            ),
        )

    return st.recursive(small_leaf, extend, max_leaves=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unevaluated_trees())
def test_random_unevaluated_trees_round_trip(expr):
    tree = json.loads(json.dumps(encode_expr(expr), allow_nan=False))
    assert_same_expr(expr, decode_expr(tree, kind=None))


def _double_floats_only(expr: sympy.Basic) -> bool:
    for e in expr.atoms(sympy.Float):
        v = float(e)
        if not math.isfinite(v) or sympy.Float(v)._mpf_ != e._mpf_:
            return False
    return True


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evaluated_trees())
def test_random_evaluated_trees_round_trip(expr):
    # sympy's arithmetic can leave the double range (exp(exp(1e6))) or give an interval
    # (sin(oo) is AccumBounds(-1, 1)); both are refused when saving, so not generated here.
    assume(_double_floats_only(expr) and not expr.has(sympy.AccumBounds))
    tree = json.loads(json.dumps(encode_expr(expr), allow_nan=False))
    assert_same_expr(expr, decode_expr(tree, kind=None))


# --------------------------------------------------------------------------------------
# Hostile files: every failure to load is a PersistError
# --------------------------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_a_persist_error(run, tmp_path):
    path = tmp_path / "run.json"
    save_result(run, path)
    path.write_bytes(b"\xff\xfe" + path.read_bytes())
    for load in (load_result, GeneticRun.load):
        with pytest.raises(PersistError, match="not UTF-8"):
            load(path)
    with pytest.raises(FileNotFoundError):  # a missing file is not a damaged one
        load_result(tmp_path / "missing.json")


HOSTILE = {
    "nested-list": json.loads("[" * 400 + "]" * 400),
    "nested-object": json.loads('{"a":' * 400 + "1" + "}" * 400),
    "string": "x" * 1000,
    "number": 1e308,
    "null": None,
    "object": {"calls": [1]},
}
RUN_FIELDS = ["results", "populations", "archive", "stats", "proposer", "parsimony_rtol"]


@pytest.mark.parametrize("field", RUN_FIELDS)
@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_any_value_in_any_field_loads_or_is_a_persist_error(run, tmp_path, field, value):
    doc = strict_loads(to_json(run))
    doc[field] = value
    text = json.dumps(doc)
    path = tmp_path / "run.json"
    path.write_text(text, encoding="utf-8")
    for load in (lambda: from_json(text), lambda: load_result(path), lambda: GeneticRun.load(path)):
        with contextlib.suppress(PersistError):  # a string is a valid proposer name
            load()


def _deep_kan_document() -> str:
    # As deep as the codec accepts: it loads near the top of the stack.
    return _doc_with(json.loads(_nest("sin", _sympy_json.MAX_DEPTH - 1)))


def test_a_tree_too_deep_for_the_callers_stack_is_a_persist_error(tmp_path):
    from _stack import boundary_errors

    text = _deep_kan_document()
    path = tmp_path / "deep.json"
    path.write_text(text, encoding="utf-8")
    for load in (lambda: from_json(text), lambda: load_result(path)):
        errors = boundary_errors(load)
        assert errors and all(isinstance(e, PersistError) for e in errors), errors
        assert any("nested too deeply" in str(e) for e in errors)
