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
