"""Error bars in the KAN pipeline: weighted refits and scores, chi2/dof, KANLEX's sigma.

The refit and scoring tests need neither torch nor pykan; the KANLEX runs train a
two-edge network on 2-variable data for a few steps.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import sympy
from kan_helpers import needs_kan, torch

from llmlex import _kan_sympy as ks
from llmlex._forms import POLYNOMIAL_LIBRARY
from llmlex._kan_select import Selection, check_error_bars
from llmlex.exceptions import DataError
from llmlex.kan import KANLEX, KANSymbolicResult, regress_edge
from llmlex.persist import from_json, to_json

X0, X1 = sympy.symbols("x0 x1", real=True)


def f_true(X):
    return 1.5 * X[:, 0] + X[:, 1] ** 2


def noisy_data(seed=0, n=200, n_test=100):
    """2-variable data with per-point error bars (0.02 to 0.2) and noise drawn from them."""
    rng = np.random.default_rng(seed)
    X, Xt = rng.uniform(-1, 1, (n, 2)), rng.uniform(-1, 1, (n_test, 2))
    s, st = rng.uniform(0.02, 0.2, n), rng.uniform(0.02, 0.2, n_test)
    y = f_true(X) + rng.normal(0.0, s)
    yt = f_true(Xt) + rng.normal(0.0, st)
    return X, y, s, Xt, yt, st


# ------------------------------------------------------------ refits and scores (numpy)


def test_the_refit_with_error_bars_is_weighted_least_squares():
    rng = np.random.default_rng(1)
    X = rng.uniform(0.5, 2.0, (60, 2))
    y = 2.0 * X[:, 0] - 0.5 * X[:, 1] + rng.normal(0.0, 0.05, 60)
    y[7] += 3.0  # off the model ...
    sigma = np.full(60, 0.05)
    sigma[7] = 1e-4  # ... but with a tiny error bar: the fit must pass close to it
    template = ks.param_symbol(0) * X0 + ks.param_symbol(1) * X1
    params = [ks.param_symbol(0), ks.param_symbol(1)]
    fit = ks.fit_constants(template, [X0, X1], params, np.ones(2), X, y, sigma=sigma)
    # numpy's weighted least squares: rows divided by their sigma
    want = np.linalg.lstsq(X / sigma[:, None], y / sigma, rcond=None)[0]
    np.testing.assert_allclose(fit.params, want, rtol=1e-6)  # MINPACK's xtol
    pred = ks.evaluate(fit.expression, [X0, X1], X)
    assert abs(pred[7] - y[7]) < 1e-3
    # Without error bars the point is one among sixty: it is not followed.
    plain = ks.fit_constants(template, [X0, X1], params, np.ones(2), X, y)
    assert abs(ks.evaluate(plain.expression, [X0, X1], X)[7] - y[7]) > 1.0
    assert fit.nchi2 == pytest.approx(np.mean(((pred - y) / sigma) ** 2), rel=1e-9)


def test_selection_with_error_bars_judges_by_held_out_chi2_per_point():
    rng = np.random.default_rng(2)
    X, Xt = rng.uniform(0.5, 2.0, (200, 2)), rng.uniform(0.5, 2.0, (200, 2))
    s, st = rng.uniform(0.01, 0.1, 200), rng.uniform(0.01, 0.1, 200)
    f = lambda X: np.exp(0.5 * X[:, 0]) * X[:, 1]  # noqa: E731
    y, yt = f(X) + rng.normal(0.0, s), f(Xt) + rng.normal(0.0, st)
    sel = Selection([X0, X1], X, y, Xt, yt, 0.1, sigma_fit=s, sigma_hold=st)
    sel.start(sympy.Float(1.02) * sympy.exp(sympy.Float(0.49) * X0) * X1)
    # The refitted true form fits to the error bars: chi2 per held-out point near 1.
    assert 0.7 < sel.reference < 1.4
    final = sel.finish()
    chi2_per_point = np.mean(((yt - ks.evaluate(final, [X0, X1], Xt)) / st) ** 2)
    assert sel.candidates[-1].reduced_chi2_test == pytest.approx(chi2_per_point, rel=1e-12)
    # The nchi2 is recorded beside the score the candidate was judged by.
    assert sel.candidates[-1].nchi2_test == pytest.approx(
        ks.holdout_nchi2(final, [X0, X1], Xt, yt), rel=1e-12
    )
    # Without error bars the score is the nchi2 and no chi2 is recorded.
    plain = Selection([X0, X1], X, y, Xt, yt, 0.1)
    plain.start(sympy.Float(1.02) * sympy.exp(sympy.Float(0.49) * X0) * X1)
    assert all(math.isnan(c.reduced_chi2_test) for c in plain.candidates)


@pytest.mark.parametrize(
    ("sigma_train", "sigma_test", "match"),
    [
        (0.1, None, "both"),
        (None, 0.1, "both"),
        (-0.1, 0.1, "sigma_train: sigma must be positive"),
        (0.1, np.zeros(4), "sigma_test: sigma must be positive"),
        (np.ones(5), 0.1, "sigma_train: sigma has 5 values for 6"),
        (np.r_[np.ones(5), np.nan], 0.1, "sigma_train: sigma contains 1 non-finite"),
        ("a", 0.1, "sigma_train: sigma must be a number"),
    ],
)
def test_unusable_error_bars_are_a_data_error(sigma_train, sigma_test, match):
    with pytest.raises(DataError, match=match):
        check_error_bars(sigma_train, sigma_test, 6, 4)
    # KANLEX checks them before it touches torch.
    kl = KANLEX(None, [2, 1])
    X = np.zeros((6, 2))
    with pytest.raises(DataError, match=match):
        kl.set_dataset(
            X, np.zeros(6), X[:4], np.zeros(4), sigma_train=sigma_train, sigma_test=sigma_test
        )
    assert kl.dataset is None


def test_check_error_bars_repeats_a_scalar_and_passes_none():
    assert check_error_bars(None, None, 3, 2) == (None, None)
    train, test = check_error_bars(0.5, [1.0, 2.0], 3, 2)
    np.testing.assert_array_equal(train, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(test, [1.0, 2.0])


# ------------------------------------------------------------ results: fields and JSON


def _result(**kw):
    fields = dict(
        output=0,
        expression=X0 + X1,
        text="x0 + x1",
        raw_expression=X0 + X1,
        variables=("x0", "x1"),
        nchi2_train=0.1,
        nchi2_test=0.2,
        r2_train=0.9,
        r2_test=0.8,
        complexity=3,
        raw_complexity=3,
        assembly_error=0.0,
        structure_error=0.0,
        kan_error=0.0,
        llm_calls=0,
        llm_calls_saved=0,
        timings={},
    )
    fields.update(kw)
    return KANSymbolicResult(**fields)


def test_chi2_fields_report_and_old_documents():
    r = _result(chi2_train=210.0, dof_train=200, chi2_test=90.0, dof_test=100)
    assert r.reduced_chi2 == pytest.approx(1.05) and r.reduced_chi2_test == pytest.approx(0.9)
    rows = dict(r.report_rows())
    assert rows["chi2/dof (train)"] == "210 / 200 = 1.05"
    assert rows["chi2/dof (test)"] == "90 / 100 = 0.9"
    d = r.to_dict()
    assert d["reduced_chi2"] == pytest.approx(1.05) and d["dof_test"] == 100
    back = from_json(to_json(r))
    assert (back.chi2_train, back.dof_train, back.chi2_test, back.dof_test) == (
        210.0,
        200,
        90.0,
        100,
    )
    # Without error bars: no chi2 row, nan reduced chi2.
    plain = _result()
    assert "chi2/dof (train)" not in dict(plain.report_rows())
    assert math.isnan(plain.reduced_chi2)
    # A document saved before the fields existed loads with their defaults.
    doc = plain.to_document()["result"]
    for key in ("chi2_train", "dof_train", "chi2_test", "dof_test"):
        del doc[key]
    from llmlex._kan_results import kan_result_from_dict

    old = kan_result_from_dict(doc)
    assert math.isnan(old.chi2_train) and old.dof_train == 0 and old.dof_test == 0


# ------------------------------------------------------------ KANLEX end to end (torch)

POLY = functools.partial(regress_edge, forms=POLYNOMIAL_LIBRARY, n_starts=2, search=False)


def _kanlex_run(X, y, Xt, yt, **sigma):
    kl = KANLEX(None, [2, 1], grid=3, k=3, seed=0)
    kl.set_dataset(X, y, Xt, yt, **sigma)
    kl.train_kan(steps=10, n_restarts=1, warmup=10)
    kl.get_symbolic(
        None,
        population=1,
        generations=1,
        verbose=0,
        simplify_timeout=0,
        snap_time=5,
        separable=False,
        regressor=POLY,
    )
    return kl


@needs_kan
def test_kanlex_with_the_true_error_bars_gives_chi2_per_dof_near_one():
    X, y, s, Xt, yt, st = noisy_data()
    kl = _kanlex_run(X, y, Xt, yt, sigma_train=s, sigma_test=st)
    np.testing.assert_array_equal(kl.dataset["train_sigma"], s)
    (r,) = kl.results
    assert r.dof_train == 200 - len(ks.parameterise(r.expression)[1])
    assert r.dof_test == 100
    # chi2/dof of a fit to the noise: 1 within a few of its standard deviations
    # (sqrt(2/dof), 0.1 here).
    assert 0.7 < r.reduced_chi2 < 1.3
    assert 0.6 < r.reduced_chi2_test < 1.4
    # on the data as the pipeline sees them: pykan's float32 tensors
    X32 = kl.dataset["train_input"].numpy().astype(float)
    y32 = kl.dataset["train_label"].numpy()[:, 0].astype(float)
    assert r.chi2_train == pytest.approx(np.sum(((y32 - r.predict(X32)) / s) ** 2), rel=1e-9)
    assert all(math.isfinite(c.reduced_chi2_test) for c in r.candidates)


@needs_kan
def test_kanlex_weights_the_network_and_the_formula_by_the_error_bars():
    # Points with x0 > 0.5 are shifted by 0.5 but have huge error bars: the weighted
    # pipeline follows the others, the unweighted one is pulled off by them.
    X, y, _, Xt, yt, _ = noisy_data(seed=3)
    far, far_t = X[:, 0] > 0.5, Xt[:, 0] > 0.5
    y_bad, yt_bad = y + 0.5 * far, yt + 0.5 * far_t
    s = np.where(far, 100.0, 0.05)
    st = np.where(far_t, 100.0, 0.05)
    weighted = _kanlex_run(X, y_bad, Xt, yt_bad, sigma_train=s, sigma_test=st)
    plain = _kanlex_run(X, y_bad, Xt, yt_bad)
    good = ~far
    err_w = np.sqrt(np.mean((weighted.results[0].predict(X)[good] - f_true(X)[good]) ** 2))
    err_p = np.sqrt(np.mean((plain.results[0].predict(X)[good] - f_true(X)[good]) ** 2))
    assert err_w < 0.05 < err_p


@needs_kan
def test_the_weighted_loss_keeps_each_weight_with_its_sample():
    from llmlex import _kan_torch as kt

    ds = kt.dataset_from_arrays(
        np.zeros((4, 2)), [1.0, 2.0, 3.0, 4.0], np.zeros((2, 2)), [1.0, 2.0], "cpu"
    )
    data, loss = kt._weighted_loss(ds, (np.array([1.0, 0.0, 2.0, 1.0]), np.ones(2)))
    pred = torch.zeros((4, 1))
    perm = torch.tensor([2, 0, 3, 1])  # pykan draws a permutation of the samples
    value = float(loss(pred[perm], data["train_label"][perm]))
    assert value == pytest.approx((1 * 1 + 0 * 4 + 2 * 9 + 1 * 16) / 4)
    assert ds["train_label"].shape == (4, 1)  # the caller's dataset is untouched
