"""llmlex._kan_select: assembling, verifying and safely simplifying the formulas."""

from __future__ import annotations

import math
import time

import numpy as np
import sympy
from kan_helpers import dataset, fixed_multkan, needs_kan, symbolic_multkan, torch

from llmlex import _kan_sympy as ks
from llmlex._kan_select import Selection, separable_forms
from llmlex.kan import kan_to_symbolic, symbolic_from_edges


def _selection(expr, f, variables, n=400, seed=0, deadline=None):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.5, 2.0, size=(n, len(variables)))
    Xt = rng.uniform(0.5, 2.0, size=(n, len(variables)))
    sel = Selection(variables, X, f(X), Xt, f(Xt), tolerance=0.1, deadline=deadline)
    sel.start(expr)
    return sel


def _symbolic_network_and_edges():
    """A network of symbolic edges, its own outputs as the data, its edges regressed."""
    model = symbolic_multkan()
    f = lambda X: (  # noqa: E731 - the network's own function as the data
        model(torch.tensor(X, dtype=torch.float32)).detach().numpy()[:, 0].astype(float)
    )
    data = dataset(f, n=300)
    return model, kan_to_symbolic(model, None, x=data[0]), data


@needs_kan
def test_symbolic_from_edges_reports_errors_and_recovers_symbolic_network():
    model, edges, (X, y, Xt, yt) = _symbolic_network_and_edges()
    (res,) = symbolic_from_edges(model, edges, X, y, Xt, yt, simplify_timeout=0, snap_time=5)
    assert res.assembly_error < 1e-10
    assert res.structure_error < 1e-4
    assert res.kan_error < 1e-4  # symbolic edges: the formula *is* the network
    assert res.r2_test > 0.9999
    assert res.nchi2_test <= res.candidates[1].nchi2_test * 1.1 + 1e-12
    assert res.variables == ("x0", "x1")


@needs_kan
def test_past_its_time_budget_the_assembly_builds_no_more_candidates():
    model, edges, (X, y, Xt, yt) = _symbolic_network_and_edges()
    (res,) = symbolic_from_edges(model, edges, X, y, Xt, yt, separable=False, time_budget=0.0)
    origins = [c.origin for c in res.candidates]
    assert origins[:2] == ["raw", "raw-refit"]
    assert not {"sympy", "snapped-sympy"} & set(origins)
    assert not [o for o in origins if o.startswith("edges<=")]
    assert res.r2_test > 0.9999  # the assembled formula, judged as it is


def test_simplification_never_accepts_a_worse_candidate():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    f = lambda X: np.exp(0.5 * X[:, 0]) * X[:, 1] + 0.3 * X[:, 0]  # noqa: E731
    raw = sympy.Float(1.02) * sympy.exp(sympy.Float(0.49) * x0) * x1 + sympy.Float(0.31) * x0
    sel = _selection(raw, f, [x0, x1])
    reference = sel.reference
    before = sel.best
    # Simpler but wrong: dropping the linear term cannot be refitted back to the data.
    assert not sel.consider("llm", sympy.Float(1.1) * sympy.exp(sympy.Float(0.5) * x0) * x1)
    assert sel.best == before
    assert sel.candidates[-1].accepted is False
    # Simpler and right (fewer constants after refitting): accepted.
    good = sympy.Float(1.0) * x1 * sympy.exp(x0 / 2) + sympy.Float(0.3) * x0
    sel.consider("llm", good)
    final = sel.finish()
    score = ks.holdout_nchi2(final, [x0, x1], sel.X_hold, sel.y_hold)
    assert score <= reference * 1.1 + 1e-12


def test_a_better_structured_formula_becomes_the_reference():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    f = lambda X: X[:, 0] * X[:, 1] ** 2  # noqa: E731
    # A raw formula that only approximates the data (like a network's assembly): no
    # refit of its constants makes x1**2 out of a line and an exponential.
    raw = x0 * (sympy.Float(0.1) + sympy.Float(0.5) * x1 + sympy.Float(0.3) * sympy.exp(x1))
    sel = _selection(raw, f, [x0, x1])
    loose = sel.reference
    assert sel.consider("again", raw)  # as good as itself
    exact = sympy.Float(1.01) * x0 * x1**2
    assert sel.consider("separable", exact)
    assert sel.tighten()
    assert sel.reference < 1e-6 * loose
    assert not sel.consider("again", raw)  # no longer acceptable
    assert ks.holdout_nchi2(sel.finish(), [x0, x1], sel.X_hold, sel.y_hold) < 1e-20
    assert not sel.tighten()  # nothing better since


def test_refits_stop_at_the_deadline_keeping_their_start():
    # A time budget stops the assembly's refits (the estimator's budget reaches them):
    # past the deadline a candidate is judged at its own constants, never worse.
    x0, x1 = sympy.symbols("x0 x1", real=True)
    f = lambda X: 2.0 * X[:, 0] * np.exp(-0.7 * X[:, 1])  # noqa: E731
    start = sympy.Float(1.5) * x0 * sympy.exp(sympy.Float(-0.5) * x1)
    free = _selection(start, f, [x0, x1])
    stopped = _selection(start, f, [x0, x1], deadline=time.perf_counter() - 1.0)
    assert free.best_score < 1e-20  # refitted to the law
    assert stopped.best == start  # its refit stopped where it began
    assert stopped.best_score == free.candidates[0].nchi2_test  # the raw formula's score


@needs_kan
def test_separable_candidates_find_product_and_sum_forms():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    X = np.random.default_rng(3).uniform(1.0, 3.0, size=(400, 2))
    # (x0 + 1) * x1**2 through the multiplication node, and sin(x0) + 1/x1 through the sum.
    product = fixed_multkan(
        {
            (0, 0, 1): ("x", (1.0, 1.0, 1.0, 0.0)),
            (0, 1, 2): ("x^2", (1.0, 0.0, 1.0, 0.0)),
            (1, 1, 0): ("x", (1.0, 0.0, 1.0, 0.0)),
        }
    )
    total = fixed_multkan(
        {
            (0, 0, 0): ("sin", (1.0, 0.0, 1.0, 0.0)),
            (0, 1, 0): ("1/x", (1.0, 0.0, 1.0, 0.0)),
            (1, 0, 0): ("x", (1.0, 0.0, 1.0, 0.0)),
        }
    )
    for model, kind, truth in (
        (product, "separable: f = g(x0) * g(x1)", (x0 + 1) * x1**2),
        (total, "separable: f = g(x0) + g(x1)", sympy.sin(x0) + 1 / x1),
    ):
        with torch.no_grad():
            y = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0].astype(float)
        np.testing.assert_allclose(y, ks.evaluate(truth, [x0, x1], X), rtol=1e-5)
        cands = separable_forms(model, X, [x0, x1], 0, y, seed=0)
        assert cands and {origin for origin, _ in cands} == {kind}, cands
        # The first variant reproduces the network from slices alone (float32 accuracy).
        got = ks.evaluate(cands[0][1], [x0, x1], X)
        np.testing.assert_allclose(got, y, rtol=1e-3, atol=1e-3 * np.abs(y).max())
        # and one has the truth's structure: a refit of its constants makes it exact.
        exact = ks.evaluate(truth, [x0, x1], X)
        best = math.inf
        for _, expr in cands:
            template, syms, p0 = ks.parameterise(expr)
            best = min(best, ks.fit_constants(template, [x0, x1], syms, p0, X, exact).nchi2)
        assert best < 1e-12


@needs_kan
def test_separable_candidates_none_for_a_network_that_is_neither():
    model = symbolic_multkan()  # tanh of a sum plus a product of mixed subnodes
    x0, x1 = sympy.symbols("x0 x1", real=True)
    X = np.random.default_rng(4).uniform(-1, 1, size=(300, 2))
    with torch.no_grad():
        y = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0].astype(float)
    assert separable_forms(model, X, [x0, x1], 0, y, seed=0) == []
