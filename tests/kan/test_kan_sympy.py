"""llmlex._kan_sympy: safe evaluation and parsing, constant fits and snapping, timeouts.

None of these needs torch or pykan.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from llmlex import _kan_sympy as ks
from llmlex.exceptions import AnsatzError
from llmlex.fit import nchi2


def test_snapping_keeps_only_what_the_score_allows():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    f = lambda X: 1.37 * X[:, 0] + X[:, 1] ** 2  # noqa: E731
    rng = np.random.default_rng(0)
    X, Xt = rng.uniform(0.2, 2, (300, 2)), rng.uniform(0.2, 2, (300, 2))
    raw = sympy.Float(1.3702) * x0 + sympy.Float(0.9991) * x1 ** sympy.Float(2.0004)
    reference = ks.holdout_nchi2(raw, [x0, x1], Xt, f(Xt))
    out = ks.snap_constants(
        raw, [x0, x1], X, f(X), Xt, f(Xt), reference, rtol=0.1, atol=1e-12, deadline=1e18
    )
    # 1.37 is not simple enough to be within tolerance as an integer: it stays a Float;
    # the coefficient and exponent of x1 snap to 1 and 2.
    assert out.has(x1**2)
    floats = [float(a) for a in out.atoms(sympy.Float)]
    assert floats and abs(floats[0] - 1.37) < 1e-9
    assert nchi2(f(Xt), ks.evaluate(out, [x0, x1], Xt)) <= reference


def test_safe_evaluator_matches_sympy():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    exprs = [
        sympy.exp(sympy.sin(sympy.pi * x0) + x1**2),
        sympy.sqrt(x0**2 + x1**2) / (1 + sympy.Abs(x1)),
        sympy.log(2 + x0) * sympy.tanh(x1) - sympy.Rational(3, 7) * x0 ** sympy.Integer(-2),
        sympy.cbrt(x0) + x1 ** sympy.Float(1.5),
    ]
    X = np.array([[0.3, 0.7], [0.9, 0.2], [0.5, 1.4]])
    for e in exprs:
        want = [float(e.subs({x0: a, x1: b}).evalf()) for a, b in X]
        np.testing.assert_allclose(ks.evaluate(e, [x0, x1], X), want, rtol=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo hi')",
        "x0.__class__",
        "open('f')",
        "x0 ** x1",
        "lambda: 1",
        "[x0]",
        "np.sin(x0, out=x1)",
        "y",
    ],
)
def test_parse_expression_rejects_code(text):
    syms = {"x0": sympy.Symbol("x0", real=True), "x1": sympy.Symbol("x1", real=True)}
    with pytest.raises(AnsatzError):
        ks.parse_expression(text, syms)


def test_parse_expression_reads_llm_style_text():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    got = ks.parse_expression("np.exp(np.sin(np.pi*x0) + x1**2) - 0.5", {"x0": x0, "x1": x1})
    assert sympy.simplify(got - (sympy.exp(sympy.sin(sympy.pi * x0) + x1**2) - 0.5)) == 0


def test_simplify_with_timeout():
    x = sympy.Symbol("x0", real=True)
    assert ks.simplify_with_timeout(sympy.sin(x) ** 2 + sympy.cos(x) ** 2, 30) == 1
    assert ks.simplify_with_timeout(x, 0) is None


def test_a_timeout_stops_the_simplification_and_never_changes_its_work():
    # Under a clock the child does the work-bounded simplification too: where the work
    # bound stops it, a generous timeout gives the same answer (None), not sympy's
    # unbounded one (``y + 4``), so a fit under a time budget that does not bind chooses
    # what the fit without one chooses.
    x, y = sympy.symbols("x y", real=True)
    expr = sum(sympy.sin(x + i) ** 2 + sympy.cos(x + i) ** 2 for i in range(4))
    expr += sympy.exp(x) * sympy.exp(-x) * y
    assert ks.simplify_bounded(expr, 200_000) is None
    assert ks.simplify_with_timeout(expr, 60, calls=200_000) is None
    assert ks.simplify_with_timeout(expr, 60) == ks.simplify_bounded(expr) == y + 4


def test_constant_refit_stops_at_its_deadline_keeping_the_best_point():
    import time

    x0 = sympy.Symbol("x0", real=True)
    X = np.linspace(0.1, 2.0, 400)[:, None]
    y = 2.0 * np.exp(0.5 * X[:, 0])
    template, syms, p0 = ks.parameterise(sympy.Float(1.5) * sympy.exp(sympy.Float(0.3) * x0))
    start = ks.holdout_nchi2(template.subs(dict(zip(syms, p0, strict=True))), [x0], X, y)
    past = ks.fit_constants(template, [x0], syms, p0, X, y, deadline=time.perf_counter() - 1)
    assert past.nchi2 == pytest.approx(start)  # stopped at once: the start point
    free = ks.fit_constants(template, [x0], syms, p0, X, y)
    assert free.nchi2 < 1e-20
