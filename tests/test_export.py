"""Exports: sympy, LaTeX, numpy callable, torch module, text and HTML reports."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from llmlex.export import report, report_html, to_latex, to_numpy, to_sympy, to_torch
from llmlex.fit import fit_ansatz
from llmlex.kan import KANSymbolicResult

X0, X1 = sympy.symbols("x0 x1", real=True)


@pytest.fixture(scope="module")
def fit():
    x = np.linspace(0.1, 4.0, 40)
    y = 2.5 * np.exp(-0.7 * x) + 0.3
    return fit_ansatz("params[0]*np.exp(params[1]*x) + params[2]", x, y, seed=0), x, y


def kan_result(expr: sympy.Expr) -> KANSymbolicResult:
    return KANSymbolicResult(
        output=0,
        expression=expr,
        text=str(expr),
        raw_expression=expr,
        variables=("x0", "x1"),
        nchi2_train=1e-9,
        nchi2_test=2e-9,
        r2_train=1.0,
        r2_test=1.0,
        complexity=9,
        raw_complexity=20,
        assembly_error=0.0,
        structure_error=0.0,
        kan_error=1e-4,
        llm_calls=3,
        llm_calls_saved=2,
        timings={"total": 1.5},
    )


def test_fit_result_exports_agree(fit):
    r, x, _ = fit
    expr = to_sympy(r)
    assert expr.free_symbols == {sympy.Symbol("x", real=True)}
    np.testing.assert_allclose(to_numpy(r)(x), r.predict(x))
    # The sympy form, evaluated independently by sympy, agrees with the fitted ansatz.
    val = float(expr.subs(sympy.Symbol("x", real=True), 1.3))
    np.testing.assert_allclose(val, r.predict(np.array([1.3]))[0], rtol=1e-12)


def test_latex_rounds_numbers(fit):
    r, _, _ = fit
    tex = to_latex(r, precision=3)
    assert "e^{" in tex and "2.5" in tex and "0.3" in tex
    assert "2.50000" not in tex


def test_bare_parameter_is_sympy():
    x = np.linspace(0.0, 1.0, 10)
    r = fit_ansatz("params[0]", x, np.full(10, 1.5), seed=0)
    assert isinstance(to_sympy(r), sympy.Basic)
    assert float(to_sympy(r)) == pytest.approx(1.5)


def test_multivariate_numpy_callable():
    expr = sympy.Float(1.5) * X0 * sympy.sin(X1) + sympy.sqrt(X0**2 + 1)
    f = to_numpy(kan_result(expr))
    X = np.random.default_rng(0).uniform(-2, 2, (30, 2))
    expected = 1.5 * X[:, 0] * np.sin(X[:, 1]) + np.sqrt(X[:, 0] ** 2 + 1)
    np.testing.assert_allclose(f(X), expected)
    assert f.variables == ("x0", "x1")


def test_to_numpy_rejects_unknown_nodes():
    with pytest.raises(ValueError, match="cannot evaluate"):
        to_numpy(sympy.besselj(0, X0))


def test_torch_module_matches_and_trains(fit):
    torch = pytest.importorskip("torch")
    r, x, y = fit
    module = to_torch(r)
    assert isinstance(module, torch.nn.Module)
    names = [n for n, _ in module.named_parameters()]
    assert names == ["params"]
    out = module(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(out, r.predict(x), rtol=1e-12)
    # Perturb the parameters and let gradient descent pull them back.
    with torch.no_grad():
        module.params.mul_(1.1)
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    loss0 = float(torch.mean((module(xt) - yt) ** 2).detach())
    for _ in range(200):
        opt.zero_grad()
        loss = torch.mean((module(xt) - yt) ** 2)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.1 * loss0


def test_torch_multivariate(fit):
    torch = pytest.importorskip("torch")
    expr = sympy.Float(1.5) * X0 * sympy.exp(-sympy.Float(0.5) * X1**2) + 2
    module = to_torch(kan_result(expr))
    assert module.params.numel() == 2
    X = np.random.default_rng(1).uniform(-2, 2, (25, 2))
    out = module(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(out, to_numpy(kan_result(expr))(X), rtol=1e-12)


def test_torch_folds_constant_subtrees():
    # log2 is log(a)/log(2) and np.sqrt(2) is 2**(1/2) in sympy: constants torch's
    # functions would receive as Python floats (a TypeError in forward) unless folded.
    torch = pytest.importorskip("torch")
    x = np.linspace(0.5, 3.0, 20)
    r = fit_ansatz("params[0]*np.log2(x) + np.sqrt(2)*x", x, 2 * np.log2(x) + np.sqrt(2) * x)
    out = to_torch(r)(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(out, r.predict(x), rtol=1e-12)


def test_reports(fit):
    r, x, y = fit
    text = report(r, x=x, y=y)
    for label in ("formula", "parameters", "nchi2", "R2 (given data)", "complexity"):
        assert label in text
    html = report_html(kan_result(X0 * X1 + sympy.Float(0.25)))
    assert html.startswith("<table") and "LLM calls" in html and "x0*x1" in html
    assert "<script" not in report_html(kan_result(X0))


def test_report_of_run_has_calls_tokens_time():
    import llmlex

    x = np.linspace(0.1, 5, 40)
    run = llmlex.run_genetic(
        None, None, x, 2.0 * x**2, population_size=2, num_of_generations=1, seed=0, progress=False
    )
    text = report(run)
    for label in ("calls", "tokens", "time", "stopped", "generations"):
        assert label in text
    assert str(to_sympy(run)) == str(to_sympy(run.best))
