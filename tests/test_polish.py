"""Tests of llmlex._polish: simpler neighbours of fitted ansätze."""

from __future__ import annotations

import math

import numpy as np

from llmlex import run_genetic
from llmlex._polish import neighbours, polish, reduce_phases
from llmlex.fit import fit_ansatz

X = np.linspace(-2.0, 2.0, 60)


def _texts(result) -> set[str]:
    return {a.text for a, _ in neighbours(result)}


def test_neighbours_drop_each_term_and_snap_constants() -> None:
    y = 3 * X + 1
    r = fit_ansatz("params[0] * x + params[1] + params[2] * np.cos(params[3] * x)", X, y)
    texts = _texts(r)
    # The cosine fitted with amplitude ~0: dropping it is a neighbour.
    assert "params[0] * x + params[1]" in texts
    # A constant equal to 3 (or 1) to rounding becomes that number.
    assert any("3 * x" in t for t in texts)


def test_the_sympy_spelling_is_a_neighbour_defined_where_the_original_is_not() -> None:
    x = np.linspace(0.1, 3, 40)
    r = fit_ansatz("params[0] * np.sqrt(x) * np.sqrt(x)", x, 2 * x)
    assert "params[0] * x" in _texts(r)
    found = polish([r], x, 2 * x, known=[], key=lambda r: r.compiled.canonical, fit_options={})
    simple = [f for f in found if f.ansatz == "params[0] * x"]
    assert simple and np.isfinite(simple[0].predict(np.array([-1.0])))


def test_neighbours_inherit_the_fitted_values() -> None:
    y = 2.5 * np.exp(0.7 * X) + 0.3 * X
    r = fit_ansatz("params[0] * np.exp(params[1] * x) + params[2] * x", X, y)
    for a, start in neighbours(r):
        if a.text == "params[0] * np.exp(params[1] * x)":
            np.testing.assert_allclose(start, [2.5, 0.7], rtol=1e-6)
            return
    raise AssertionError("dropping the linear term is a neighbour")


def test_phases_are_reduced_without_changing_the_formula() -> None:
    y = np.sin(2 * X + 1.0)
    r = fit_ansatz("np.sin(params[0] * x + params[1])", X, y, initial=[2.0, 1.0 + 4 * math.pi])
    assert r.params[1] > math.pi
    reduced = reduce_phases(r)
    assert -math.pi < reduced.params[1] <= math.pi
    np.testing.assert_allclose(reduced.predict(X), r.predict(X), atol=1e-9)


def test_a_run_ends_with_the_simple_form_of_a_scripted_overfit() -> None:
    from test_genetic import Scripted  # tests/ is on sys.path (conftest)

    y = 2 * X + 1
    forms = ["params[0] * x + params[1] + params[2] * np.sin(params[3] * x)"]
    run = run_genetic(None, None, X, y, 2, 1, proposer=Scripted(forms), seed=0, progress=False)
    assert run.best.expression.equals(2 * __import__("sympy").Symbol("x", real=True) + 1)
    off = run_genetic(
        None, None, X, y, 2, 1, proposer=Scripted(forms), seed=0, progress=False, polish=False
    )
    assert off.best.n_params == 4


def test_a_rescaled_logarithm_comes_back_as_log_x() -> None:
    # The search saw x/100; log(x/100) + p0 is log(x) once the logarithm is expanded and
    # the constant taken up by p0, then snapped to 0.
    x = np.linspace(1.0, 100.0, 60)
    run = run_genetic(None, None, x, np.log(x), 6, 3, seed=0, progress=False)
    assert run.best.ansatz == "np.log(x)"


def test_numbers_on_x_inside_a_power_or_log_are_taken_up_by_the_parameters() -> None:
    # A search in units of x/10 leaves 1/10 on x: p0/(p1 + x/10) is 10*p0/(10*p1 + x).
    x = np.linspace(0.0, 10.0, 80)
    cases = [
        ("params[2] + params[0] / (params[1] + x / 10)", 3 * x / (x + 2), [-6.0, 2.0, 3.0]),
        ("params[0] + np.log(params[1] + x / 10)", np.log(x + 1), [0.0, 1.0]),
        ("params[0] * np.sqrt(params[1] + x / 10)", np.sqrt(x + 1), [1.0, 1.0]),
    ]
    for text, y, expected in cases:
        r = fit_ansatz(text, x, y)
        found = {a.text: start for a, start in neighbours(r) if "/ 10" not in a.text}
        assert len(found) >= 1, text
        # The same function, with the start values that say so.
        matching = [
            (t, s)
            for t, s in found.items()
            if s is not None
            and len(s) == len(expected)
            and np.allclose(sorted(s), sorted(expected), atol=1e-6)
        ]
        assert matching, (text, found)
        a_text, start = matching[0]
        refit = fit_ansatz(a_text, x, y, initial=start)
        assert refit.nchi2 < 1e-20


def test_a_number_is_not_taken_up_by_a_parameter_used_twice() -> None:
    # p0*log(p0 + x/10): scaling p0 to absorb the 10 would change its other use.
    import sympy

    from llmlex._polish import _absorb_factors, _pull_numbers
    from llmlex._symbolic import X as SX
    from llmlex._symbolic import param

    r = fit_ansatz("params[0] * np.log(params[0] + x / 10)", X + 3, np.log(2 + (X + 3) / 10))
    expr = r.compiled.sympy
    pulled, values, _ = _absorb_factors(_pull_numbers(expr), r.params)
    assert pulled.count(param(0)) == 2
    f = sympy.lambdify((SX, param(0)), pulled)
    g = sympy.lambdify((SX, param(0)), expr)
    np.testing.assert_allclose(f(X + 3, values[0]), g(X + 3, r.params[0]), rtol=1e-12)


def test_constants_simple_only_after_the_numbers_are_taken_up_are_snapped() -> None:
    # In the search's units the pole of 3 - 6/(x + 2) sits at 0.2 with 1/10 on x: only
    # once the 10 is taken up are its constants the integers they are.
    x = np.linspace(0.0, 10.0, 80)
    r = fit_ansatz("params[2] + params[0] / (params[1] + x / 10)", x, 3 - 6 / (x + 2))
    texts = _texts(r)
    assert "3 - 6 / (x + 2)" in texts or "-6 / (x + 2) + 3" in texts, texts


def test_a_rescaled_rational_function_comes_back_as_one_factored_fraction() -> None:
    # The search saw y/10: its rational function comes back with 10.0 outside and tenths
    # inside; one fraction, cancelled and factored, is the law.
    x = np.linspace(-1.0, 1.0, 50)
    y = (x + 1) ** 3 / (x**2 - x + 1)
    text = "10.0 * ((1 / 10 * x ** 3 + 3 / 10 * x ** 2 + 3 / 10 * x + 1 / 10) / (x ** 2 - x + 1))"
    r = fit_ansatz(text, x, y)
    texts = [a.text for a, _ in neighbours(r)]
    assert "(x + 1) ** 3 / (x ** 2 - x + 1)" in texts
    # A polynomial is left as it is (its factored form is no simpler), and so is a
    # formula with parameters.
    poly = fit_ansatz("params[0] * x ** 2 + params[1] * x", x, x**2 + x)
    assert not any(a.text.startswith("x * (") for a, _ in neighbours(poly, kinds={"rational"}))
