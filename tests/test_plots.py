"""Plots return matplotlib Figures, draw what they say, and never touch pyplot state."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from matplotlib.figure import Figure

from llmlex.fit import fit_ansatz
from llmlex.kan import KANSymbolicResult
from llmlex.plots import plot_pareto, plot_result, plot_surface

X0, X1 = sympy.symbols("x0 x1", real=True)


@pytest.fixture(scope="module")
def data():
    x = np.linspace(0.0, 3.0, 30)
    y = 1.5 * x**2 - x + 0.05 * np.cos(7 * x)
    return x, y, fit_ansatz("params[0]*x**2 + params[1]*x", x, y, seed=0)


def kan_result(expr: sympy.Expr) -> KANSymbolicResult:
    return KANSymbolicResult(
        output=0,
        expression=expr,
        text=str(expr),
        raw_expression=expr,
        variables=("x0", "x1"),
        nchi2_train=1e-6,
        nchi2_test=2e-6,
        r2_train=1.0,
        r2_test=1.0,
        complexity=5,
        raw_complexity=12,
        assembly_error=0.0,
        structure_error=0.0,
        kan_error=0.0,
        llm_calls=0,
        llm_calls_saved=0,
        timings={},
    )


def no_pyplot_figures() -> bool:
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    return plt is None or not plt.get_fignums()


def test_plot_result_univariate(data):
    x, y, r = data
    fig = plot_result(r, x, y)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    main, resid = fig.axes
    np.testing.assert_allclose(resid.lines[-1].get_ydata(), y - r.predict(x))
    assert main.lines[0].get_xydata().shape == (30, 2)
    fig.savefig(__import__("io").BytesIO(), format="png")
    assert no_pyplot_figures()


def test_plot_result_into_given_axes(data):
    x, y, r = data
    fig = Figure()
    ax = fig.subplots()
    assert plot_result(r, x, y, ax=ax) is fig and len(fig.axes) == 1


def test_plot_result_multivariate_and_shape_check():
    X = np.random.default_rng(0).uniform(-1, 1, (40, 2))
    res = kan_result(X0 * X1 + 1)
    fig = plot_result(res, X, X[:, 0] * X[:, 1] + 1)
    np.testing.assert_allclose(fig.axes[1].lines[-1].get_ydata(), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="rows"):
        plot_result(res, X, np.ones(3))


def test_plot_pareto_run():
    import llmlex

    x = np.linspace(0.1, 4, 40)
    run = llmlex.run_genetic(
        None,
        None,
        x,
        np.sin(2 * x) + x,
        population_size=2,
        num_of_generations=1,
        seed=0,
        progress=False,
    )
    fig = plot_pareto(run)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    star = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert len(star) == 1
    assert star[0].get_xdata()[0] == run.best.complexity
    assert f"{run.best.description_length:.4g} nats" in star[0].get_label()
    assert no_pyplot_figures()


def test_plot_surface():
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, (50, 2))
    y = np.sin(X[:, 0]) * X[:, 1]
    fig = plot_surface(kan_result(sympy.sin(X0) * X1), X, y, resolution=20)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # two panels and their colour bars
    resid = fig.axes[1].collections[0].get_array()
    np.testing.assert_allclose(resid, 0.0, atol=1e-12)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot_surface(kan_result(X0), X[:, :1], y)
