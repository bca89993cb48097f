"""Parameter covariances (llmlex._uncertainty) and their use by fit_ansatz."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import curve_fit

from llmlex._uncertainty import covariance, format_value, jacobian, significant_digits
from llmlex.ansatz import parse_ansatz
from llmlex.fit import fit_ansatz, nchi2_scale

X = np.linspace(0.1, 3.0, 60)
RNG = np.random.default_rng(7)
LINE = ("params[0]*x + params[1]", lambda x: 1.7 * x - 0.4)
DECAY = ("params[0]*np.exp(params[1]*x)", lambda x: 2.5 * np.exp(-0.7 * x))
NOISE = 0.02 * RNG.standard_normal(X.size)
SIGMA = 0.01 + 0.03 * RNG.uniform(size=X.size)


def test_jacobian_matches_the_analytic_derivatives():
    p = np.array([2.5, -0.7])
    jac = jacobian(lambda q: q[0] * np.exp(q[1] * X), p)
    exact = np.stack([np.exp(p[1] * X), p[0] * X * np.exp(p[1] * X)], axis=1)
    np.testing.assert_allclose(jac, exact, rtol=1e-9, atol=1e-12)


def test_jacobian_is_one_sided_at_the_edge_of_the_domain():
    jac = jacobian(lambda q: np.sqrt(q[0] - X), np.array([X[-1]]))
    assert np.all(np.isfinite(jac))


def test_covariance_of_a_linear_model_is_the_inverse_normal_matrix():
    jac = np.stack([X, np.ones_like(X)], axis=1)
    np.testing.assert_allclose(covariance(jac), np.linalg.inv(jac.T @ jac), rtol=1e-12)
    np.testing.assert_allclose(
        covariance(jac, scale=4.0), 4 * np.linalg.inv(jac.T @ jac), rtol=1e-12
    )


def test_unidentifiable_directions_give_infinite_errors_not_garbage():
    # params[0]*params[1]*x: only the product is determined.
    cov = covariance(np.stack([X, 2 * X, np.ones_like(X)], axis=1))
    assert np.all(np.isinf(cov[:2, :2]))
    assert np.isfinite(cov[2, 2])  # the intercept is still determined
    assert np.all(np.isinf(covariance(np.stack([X, np.zeros_like(X)], axis=1))[1]))
    # Fewer residuals than parameters: the null space is unidentifiable too.
    assert np.all(np.isinf(covariance(np.ones((1, 3)))))
    assert np.all(np.isnan(covariance(np.array([[np.nan, 1.0]]))))
    assert np.all(np.isinf(covariance(np.ones((5, 2)) * [1, 0], scale=math.inf)))


def _curve_fit_pcov(text, y, p0, sigma, absolute_sigma):
    a = parse_ansatz(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        popt, pcov = curve_fit(
            lambda x, *p: a(x, np.asarray(p)),
            X,
            y,
            p0=p0,
            sigma=sigma,
            absolute_sigma=absolute_sigma,
            xtol=1e-14,
            ftol=1e-14,
        )
    return popt, pcov


@pytest.mark.parametrize("model", [LINE, DECAY], ids=["linear", "exponential"])
@pytest.mark.parametrize(
    ("use_sigma", "absolute"),
    [(False, False), (True, False), (True, True)],
    ids=["no-sigma", "relative-sigma", "absolute-sigma"],
)
def test_errors_agree_with_curve_fit(model, use_sigma, absolute):
    text, truth = model
    y = truth(X) + (SIGMA * RNG.standard_normal(X.size) if use_sigma else NOISE)
    if use_sigma:
        r = fit_ansatz(text, X, y, sigma=SIGMA, absolute_sigma=absolute)
        reference_sigma = SIGMA
    else:
        r = fit_ansatz(text, X, y)
        # Without sigma fit_ansatz minimises the nchi2, whose weights are 1/nchi2_scale(y),
        # and takes them as relative: curve_fit with that sigma, absolute_sigma=False.
        reference_sigma = nchi2_scale(y)
    popt, pcov = _curve_fit_pcov(text, y, r.params, reference_sigma, absolute)
    np.testing.assert_allclose(r.params, popt, rtol=1e-8)
    np.testing.assert_allclose(r.covariance, pcov, rtol=1e-4)
    np.testing.assert_allclose(r.param_errors, np.sqrt(np.diag(pcov)), rtol=1e-4)


def test_absolute_sigma_does_not_rescale_and_relative_sigma_ignores_a_common_factor():
    text, truth = DECAY
    y = truth(X) + SIGMA * RNG.standard_normal(X.size)
    rel = fit_ansatz(text, X, y, sigma=SIGMA)
    rel10 = fit_ansatz(text, X, y, sigma=10 * SIGMA)
    np.testing.assert_allclose(rel.covariance, rel10.covariance, rtol=1e-6)
    ab = fit_ansatz(text, X, y, sigma=SIGMA, absolute_sigma=True)
    ab10 = fit_ansatz(text, X, y, sigma=10 * SIGMA, absolute_sigma=True)
    np.testing.assert_allclose(ab10.covariance, 100 * ab.covariance, rtol=1e-6)
    # The two conventions differ by the reduced chi-squared.
    np.testing.assert_allclose(rel.covariance, ab.covariance * ab.reduced_chi2, rtol=1e-6)


def test_an_exact_fit_has_rounding_sized_errors():
    r = fit_ansatz(DECAY[0], X, DECAY[1](X))
    assert r.message == "exact fit"
    assert np.all(r.param_errors < 1e-10 * np.abs(r.params))


def test_a_failed_fit_has_nan_covariance_and_errors():
    r = fit_ansatz("np.log(-np.abs(params[0]) - x**2)", X, X)
    assert not r.success
    assert r.covariance.shape == (1, 1) and np.isnan(r.covariance).all()
    assert np.isnan(r.param_errors).all()
    assert r.chi2 == math.inf


def test_an_unidentifiable_parameter_has_infinite_error():
    y = 1.7 * X + NOISE
    r = fit_ansatz("params[0]*params[1]*x", X, y)
    assert r.success
    assert np.all(np.isinf(r.param_errors))
    assert r.formula().count("*") == 2  # still written, with the default digits


def test_the_covariance_is_read_only():
    r = fit_ansatz(LINE[0], X, LINE[1](X) + NOISE)
    with pytest.raises(ValueError):
        r.covariance[0, 0] = 1.0
    with pytest.raises(ValueError):
        r.param_errors[0] = 1.0


# ------------------------------------------------------------------ digits from errors


@pytest.mark.parametrize(
    ("value", "error", "precision", "text"),
    [
        (1.23456, 0.0123, None, "1.235"),
        (1.23456, 0.0123, 3, "1.23"),  # precision caps the digits
        (2.0001, 0.0012, None, "2.0001"),
        (2.0, 0.0012, None, "2.0000"),  # zeros the error justifies stay
        (0.0003, 0.05, None, "0.0003"),  # never fewer than one digit
        (-0.5, 0.0004, None, "-0.50000"),
        (12345.6, 30.0, None, "12346"),
        (2.0, 1e-17, None, "2"),  # an exact fit: the default digits
        (1 / 3, 0.0, None, "0.333333"),
        (1 / 3, math.inf, None, "0.333333"),
        (1 / 3, math.nan, 4, "0.3333"),
    ],
)
def test_values_are_written_to_the_digits_their_errors_justify(value, error, precision, text):
    assert format_value(value, error, precision=precision) == text


def test_significant_digits_are_two_digits_of_the_error():
    assert significant_digits(1.23456, 0.0123) == 4
    assert significant_digits(123.0, 0.5) == 5  # 123.00 +- 0.50
    assert significant_digits(0.001, 1.0) == 1


def test_a_value_can_be_shown_with_its_error():
    assert format_value(1.23456, 0.0123, show_error=True) == "1.235 ± 0.012"
    assert format_value(1.5, math.inf, show_error=True) == "1.5"
