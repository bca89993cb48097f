"""Products of factors by sparse regression on log|y| (llmlex._products), alone and
through the estimator's choice (llmlex._multivariate)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
sympy = pytest.importorskip("sympy")

from llmlex._multivariate import choose_formula  # noqa: E402
from llmlex._products import (  # noqa: E402
    composite_factors,
    factor_library,
    product_candidates,
)

X0, X1, X2 = sympy.symbols("x0 x1 x2", real=True)
VARS = [X0, X1, X2]


def _X(n: int = 400, seed: int = 0, low: float = 1.0, high: float = 5.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, (n, 3))


def _noisy(y0: np.ndarray, level: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return y0 + level * float(np.sqrt(np.mean(y0 * y0))) * rng.normal(size=y0.size)


def _same(expr: sympy.Expr, truth: sympy.Expr, X: np.ndarray) -> bool:
    """Equal as functions on the data's rows (exact constants: snapped)."""
    f, g = (sympy.lambdify(VARS, e, "numpy")(*X.T) for e in (expr, truth))
    return bool(np.allclose(f, g, rtol=1e-12, atol=0.0))


def test_the_library_holds_factors_away_from_zero_once_each():
    X = _X()
    X[:, 2] = np.linspace(-2.0, 2.0, X.shape[0])
    X[0, 2] = 0.0  # a sample at 0: log|x2| is not a factor there
    kinds = {(f.base, f.kind) for f in factor_library(X, VARS)}
    assert {(X0, "power"), (sympy.sin(X1), "power"), (X0 - X1, "power")} <= kinds
    assert (X2, "power") not in kinds
    assert (X2, "exp") in kinds  # exp(a*x2) is finite wherever x2 is


def test_a_power_law_is_found_with_its_exponents():
    X = _X()
    y = X[:, 0] * X[:, 1] / (4 * np.pi * X[:, 2] ** 2)
    found = product_candidates(X, y, np.full(y.size, 1e-8), VARS)
    assert found[0].origin == "product"
    np.testing.assert_allclose(sorted(found[0].params), sorted([1 / (4 * np.pi), 1, 1, -2]))


def test_a_factor_that_changes_sign_takes_an_integer_exponent_and_the_data_sign():
    # sin(x2) changes sign on [1, 5]: the product is -x0*x1*sin(x2), signs and all.
    X = _X()
    y = -X[:, 0] * X[:, 1] * np.sin(X[:, 2])
    found = product_candidates(X, y, np.full(y.size, 1e-8), VARS)
    best = found[0].expression
    assert sympy.sin(X2) in best.atoms(sympy.sin)
    pred = sympy.lambdify(VARS, best)(*X.T)
    np.testing.assert_allclose(pred, y, rtol=1e-8, atol=1e-10)


def test_products_are_undone_from_an_outer_arcsin_and_bose_function():
    X = _X()
    y = np.arcsin(X[:, 0] / (5 * X[:, 1] * X[:, 2]))
    origins = {c.origin for c in product_candidates(X, y, np.full(y.size, 1e-8), VARS)}
    assert "asin-product" in origins
    y = 1 / (np.exp(X[:, 0] * X[:, 1] / X[:, 2]) - 1)
    bose = [
        c
        for c in product_candidates(X, y, np.full(y.size, 1e-8), VARS)
        if c.origin == "bose-product"
    ]
    np.testing.assert_allclose(sympy.lambdify(VARS, bose[0].expression)(*X.T), y, rtol=1e-8)


@pytest.mark.parametrize(
    ("law", "truth", "shift"),
    [
        (lambda x: x[0] * x[1] * np.sin(x[2]), X0 * X1 * sympy.sin(X2), 0.0),
        # m0 / sqrt(1 - v**2/c**2) with v < c: a product of (c**2 - v**2)**(-1/2) and c.
        (
            lambda x: x[0] / np.sqrt(1 - x[1] ** 2 / x[2] ** 2),
            X0 / sympy.sqrt(1 - X1**2 / X2**2),
            4.0,
        ),
        (lambda x: x[0] * (x[2] - x[1]) / x[1], X0 * (X2 - X1) / X1, 0.0),
    ],
)
def test_the_estimator_choice_returns_the_product_law_at_one_percent_noise(law, truth, shift):
    X = _X(seed=2)
    X[:, 2] += shift
    y = _noisy(law(X.T), 0.01)
    result = choose_formula(X, y, X, y, ["x0", "x1", "x2"])
    # x0*x1*sin(x2) is also one term of the linear library: either generator may win.
    assert result.origin.split("+")[0] in ("product", "sparse")
    assert _same(result.expression, truth, X)


def test_a_law_that_is_no_product_gets_no_product_candidate_that_fits():
    X = _X()
    y = X[:, 0] + X[:, 1] ** 2 - np.cos(X[:, 2])  # changes no sign, but is a sum
    for c in product_candidates(X, y, np.full(y.size, 1e-3), VARS):
        pred = sympy.lambdify(VARS, c.expression)(*X.T)
        assert np.max(np.abs(pred - y)) > 1e-2


def test_a_boltzmann_factor_of_a_monomial_argument_is_a_factor():
    # n0 * exp(-m*g*x / (kb*T)): five inputs in the argument, which reaches 125.
    rng = np.random.default_rng(0)
    X = rng.uniform(1.0, 5.0, (1000, 6))
    y = X[:, 0] * np.exp(-X[:, 1] * X[:, 2] * X[:, 4] / (X[:, 3] * X[:, 5]))
    syms = sympy.symbols("x0:6", real=True)
    # Also at a rounding-level noise, where the log-space weights |y|/sigma would span
    # many decades (y down to exp(-125) here) without their relative-precision floor.
    for sigma in (1e-6, 1e-13):
        found = product_candidates(X, y, np.full(y.size, sigma), syms)
        best = found[0].expression
        np.testing.assert_allclose(sympy.lambdify(syms, best)(*X.T), y, rtol=1e-8)
        assert len(best.atoms(sympy.exp)) == 1


def test_composite_factors_carry_a_refittable_scale():
    X = _X(n=50)
    comp = composite_factors(X, VARS)
    planck = [f for f in comp if f.kind == "power" and f.base.has(sympy.exp)]
    assert planck and all(f.base.atoms(sympy.Float) for f in planck)


def test_a_constant_column_and_inputs_negative_throughout_are_handled():
    rng = np.random.default_rng(5)
    X = -rng.uniform(1.0, 5.0, (200, 3))  # negative throughout: -x is the factor
    X[:, 2] = 3.0  # constant: no factor of it
    y = 2.0 * X[:, 0] ** 2 / X[:, 1]
    found = product_candidates(X, y, np.full(y.size, 1e-8), VARS)
    pred = sympy.lambdify(VARS, found[0].expression)(*X.T)
    np.testing.assert_allclose(pred, y, rtol=1e-8)
    assert not any(X2 in c.expression.free_symbols for c in found[:1])


def test_hyperbolic_factors_of_a_single_input():
    X = _X(seed=6, low=1.0, high=3.0)
    for y, g in (
        (X[:, 0] * np.tanh(X[:, 1]), sympy.tanh),
        (X[:, 0] / np.cosh(X[:, 1]), sympy.cosh),
    ):
        found = product_candidates(X, y, np.full(y.size, 1e-8), VARS)
        best = found[0].expression
        assert best.atoms(g)
        np.testing.assert_allclose(sympy.lambdify(VARS, best)(*X.T), y, rtol=1e-8)


def test_two_composite_factors_are_found_beside_near_copies_of_one():
    # Diffraction grating, I.30.3: x0*sin(x1*x2/2)**2/sin(x1/2)**2.  The factors of a
    # monomial argument join the library through a shortlist of ten that best complete the
    # powers; near-copies (exp(k*x1) - 1 at three k, cosh(x1)) once filled it and pushed
    # sin(x1/2) out at the data's estimated noise level (the review commit deadf9b).
    X = _X(n=400, seed=1)  # with these samples the law was lost without the fix
    y = X[:, 0] * np.sin(X[:, 1] * X[:, 2] / 2) ** 2 / np.sin(X[:, 1] / 2) ** 2
    found = product_candidates(X, y, np.full(y.size, 0.4), VARS)
    truth = X0 * sympy.sin(X1 * X2 / 2) ** 2 / sympy.sin(X1 / 2) ** 2
    assert any(_same(sympy.nsimplify(c.expression, rational=True), truth, X) for c in found[:6])


def test_the_log_of_a_positive_input_is_a_factor():
    X = _X(seed=4)
    X[:, 2] = np.random.default_rng(5).uniform(0.2, 5.0, X.shape[0])  # log changes sign
    y = X[:, 0] * X[:, 1] * np.log(X[:, 2])
    found = product_candidates(X, y, np.full(y.size, 1e-8), VARS)
    truth = X0 * X1 * sympy.log(X2)
    assert any(_same(sympy.nsimplify(c.expression, rational=True), truth, X) for c in found[:3])


def test_one_plus_or_minus_a_monomial_is_a_factor_of_dimensionless_inputs_only():
    X = np.random.default_rng(6).uniform(0.1, 0.7, (200, 3))  # ratios such as v/c
    plain = {f.base for f in factor_library(X, VARS)}
    reduced = {f.base for f in factor_library(X, VARS, dimensionless=True)}
    assert 1 - X0**2 in reduced or X0**2 - 1 in reduced
    assert 1 - X0**2 not in plain and X0**2 - 1 not in plain


def test_with_units_the_relativistic_mass_is_found_through_noise():
    # m0/sqrt(1 - v**2/c**2) at 1% noise: in the group v/c the factor 1 - (v/c)**2 is in
    # the library, and the law wins on description length.
    from llmlex.estimator import LLMLExRegressor

    rng = np.random.default_rng(7)
    X = np.c_[rng.uniform(1, 5, 400), rng.uniform(1, 2, 400), rng.uniform(3, 10, 400)]
    clean = X[:, 0] / np.sqrt(1 - X[:, 1] ** 2 / X[:, 2] ** 2)
    reg = LLMLExRegressor(
        random_state=0, generators=("sparse",), units=["kg", "m/s", "m/s"], target_units="kg"
    ).fit(X, _noisy(clean, 0.01))
    assert reg.dimensional_analysis_ == "y = x0 * f(pi0 = x1/x2)"
    assert len(reg.expression_.atoms(sympy.Float)) == 0  # every constant snapped
    np.testing.assert_allclose(reg.predict(X), clean, rtol=1e-12)


def test_monomial_arguments_of_a_wide_table_stay_a_bounded_library():
    # Arguments of three of 30 inputs would be 34,000 (a dozen factors each: minutes of
    # work on a table of ten rows); on up to 11 inputs the library is as before.
    from llmlex._products import _argument_inputs

    assert [_argument_inputs(d) for d in (2, 6, 7, 11, 12, 30)] == [5, 5, 3, 3, 2, 2]
    X = np.random.default_rng(0).uniform(1.0, 2.0, (10, 30))
    comp = composite_factors(X, sympy.symbols("x0:30", real=True))
    # Of three inputs only the gaussians ((x_i - x_j)/x_k)**2: 435 pairs, 28 others each.
    assert sum(f.variables == 3 for f in comp) == 435 * 28


def test_a_product_of_two_of_30_inputs_is_found_from_ten_rows():
    # Fewer rows than powers: no support of every power (it would fit any ten rows
    # exactly), and the sparsity paths still find the law.
    X = np.random.default_rng(0).uniform(1.0, 2.0, (10, 30))
    found = product_candidates(
        X, 2.0 * X[:, 0] * X[:, 1], np.full(10, 1e-6), sympy.symbols("x0:30", real=True)
    )
    best = found[0].expression
    assert best.free_symbols == set(sympy.symbols("x0 x1", real=True))
