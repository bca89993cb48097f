"""The noise level of data around a smooth curve (llmlex._noise.estimate_noise)."""

from __future__ import annotations

import numpy as np
import pytest

from llmlex._noise import NOISE_FLOOR, estimate_noise

# Smooth curves on their Nguyen-style domains.
CURVES = {
    "x3+x2+x": (lambda x: x**3 + x**2 + x, (-1.0, 1.0)),
    "exp(2x)": (lambda x: np.exp(2 * x), (-1.0, 1.0)),
    "sin(x)+sin(x2)": (lambda x: np.sin(x) + np.sin(x**2), (-1.0, 1.0)),
    "log(x+1)": (lambda x: np.log(x + 1), (0.0, 2.0)),
}


def _sample(name: str, seed: int, n: int = 100) -> tuple[np.ndarray, np.ndarray, float]:
    f, (lo, hi) = CURVES[name]
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, n)
    y = f(x)
    return x, y, float(np.sqrt(np.mean(y * y)))


@pytest.mark.parametrize("name", CURVES)
@pytest.mark.parametrize("level", [0.01, 0.1])
def test_the_estimate_is_within_30_percent_of_the_true_noise(name, level):
    ratios = []
    for seed in range(20):
        x, y, rms = _sample(name, seed)
        s = level * rms
        noisy = y + np.random.default_rng(1000 + seed).normal(0.0, s, y.size)
        ratios.append(estimate_noise(x, noisy) / s)
    ratios = np.array(ratios)
    assert np.all(np.abs(ratios - 1) < 0.3), ratios
    assert abs(np.mean(ratios) - 1) < 0.1  # no bias


@pytest.mark.parametrize("name", CURVES)
def test_noise_free_curves_read_far_below_a_thousandth_of_their_size(name):
    for seed in range(10):
        x, y, rms = _sample(name, seed)
        assert estimate_noise(x, y) < 1e-5 * rms


def test_the_estimate_is_never_zero_and_floored_relative_to_the_data():
    x = np.linspace(0, 1, 50)
    y = 2 * x + 1  # no curvature: the pseudo-residuals are rounding
    rms = np.sqrt(np.mean(y * y))
    assert estimate_noise(x, y) == pytest.approx(NOISE_FLOOR * rms, rel=0.5)
    assert estimate_noise(x, np.zeros(50)) > 0


def test_repeated_x_values_are_averaged_and_their_spread_counts():
    rng = np.random.default_rng(3)
    ratios = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = np.repeat(rng.uniform(-1, 1, 30), 3)
        y = np.exp(2 * x) + rng.normal(0, 0.05, x.size)
        ratios.append(estimate_noise(x, y) / 0.05)
    assert np.all(np.abs(np.array(ratios) - 1) < 0.3), ratios
    # Only two distinct x: the spread within the groups alone.
    x = np.repeat([0.0, 1.0], 50)
    y = x + np.random.default_rng(1).normal(0, 0.1, x.size)
    assert estimate_noise(x, y) == pytest.approx(0.1, rel=0.3)


def test_order_of_the_points_does_not_matter():
    x, y, rms = _sample("exp(2x)", 0)
    y = y + np.random.default_rng(0).normal(0, 0.01 * rms, y.size)
    perm = np.random.default_rng(1).permutation(y.size)
    assert estimate_noise(x[perm], y[perm]) == pytest.approx(estimate_noise(x, y), rel=1e-12)


@pytest.mark.parametrize("n", [3, 4, 5, 8, 20, 40])
def test_few_points_give_a_finite_positive_estimate(n):
    x = np.linspace(0, 1, n)
    y = np.sin(3 * x) + np.random.default_rng(n).normal(0, 0.1, n)
    value = estimate_noise(x, y)
    assert np.isfinite(value) and value > 0


def test_fewer_than_three_distinct_x_without_repeats_gives_the_floor():
    assert estimate_noise(np.array([0.0, 1.0]), np.array([1.0, 2.0])) < 1e-11


def test_an_outlier_or_a_kink_does_not_read_as_noise():
    x = np.linspace(0, 1, 100)
    y = np.sin(3 * x)
    y[50] += 10.0
    assert estimate_noise(x, y) < 1e-4
    assert estimate_noise(x, np.abs(x - 0.5)) < 1e-9


def test_values_near_the_top_of_the_doubles_do_not_overflow():
    x = np.array([-1.7e308, -1e308, 0.0, 1e308, 1.7e308])
    assert np.isfinite(estimate_noise(x, x / 2))
    y = np.array([1e308, -1e308] * 5)
    assert np.isfinite(estimate_noise(np.arange(10.0), y))


def test_a_million_points_are_estimated():
    # Vectorised over the data (its speed is a benchmark figure, not a test).
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 1_000_000)
    y = np.sin(3 * x) + rng.normal(0, 0.01, x.size)
    assert estimate_noise(x, y) == pytest.approx(0.01, rel=0.05)


def test_the_remembered_estimate_is_the_estimate_of_the_same_data():
    from llmlex._noise import remembered_noise

    x, y, rms = _sample("log(x+1)", 4)
    y = y + np.random.default_rng(4).normal(0, 0.01 * rms, y.size)
    first = remembered_noise(x, y)
    assert first == estimate_noise(x, y) == remembered_noise(x.copy(), y.copy())
    y[0] += 1.0  # the same arrays changed in place: another data set
    assert remembered_noise(x, y) == estimate_noise(x, y) != first


@pytest.mark.parametrize("name", CURVES)
def test_weights_are_inverse_variances_and_the_estimate_is_the_unit_weight_noise(name):
    ratios, plain = [], []
    for seed in range(20):
        x, y, rms = _sample(name, seed)
        rng = np.random.default_rng(2000 + seed)
        w = rng.uniform(0.2, 5.0, x.size)  # noise from 0.45 s to 2.2 s
        s = 0.05 * rms
        noisy = y + rng.normal(0.0, s / np.sqrt(w))
        ratios.append(estimate_noise(x, noisy, weights=w) / s)
        plain.append(estimate_noise(x, noisy) / s)
    ratios = np.array(ratios)
    assert np.all(np.abs(ratios - 1) < 0.3), ratios
    assert abs(np.mean(ratios) - 1) < 0.1
    # Without the weights the heteroscedastic noise reads as something else.
    assert abs(np.mean(plain) - 1) > 2 * abs(np.mean(ratios) - 1)


def test_weights_of_one_change_nothing_and_only_their_ratios_matter():
    rng = np.random.default_rng(5)
    x = np.r_[rng.uniform(0, 1, 40), np.full(5, 0.5)]  # with a repeated x
    y = np.sin(3 * x) + rng.normal(0.0, 0.01, x.size)
    assert estimate_noise(x, y, weights=np.ones(x.size)) == estimate_noise(x, y)
    w = rng.uniform(0.5, 2.0, x.size)
    # weights times c: each point's noise is s / sqrt(c w), so s grows by sqrt(c)
    assert estimate_noise(x, y, weights=9.0 * w) == pytest.approx(
        3.0 * estimate_noise(x, y, weights=w), rel=1e-12
    )


# ----------------------------------------------------------------- several inputs

SURFACES = {
    "3a-2ab-a2": lambda a, b: 3 * a - 2 * a * b - a**2,
    "6sin(a)cos(b)": lambda a, b: 6 * np.sin(a) * np.cos(b),
    "8/(2+a2+b2)": lambda a, b: 8 / (2 + a**2 + b**2),
    "a*exp(-b)": lambda a, b: a * np.exp(-b),
}


@pytest.mark.parametrize("name", SURFACES)
@pytest.mark.parametrize("level", [0.01, 0.1])
def test_the_nd_estimate_is_within_30_percent_of_the_true_noise(name, level):
    from llmlex._noise import estimate_noise_nd

    f = SURFACES[name]
    ratios = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        X = rng.uniform(-3, 3, (400, 2))
        y = f(X[:, 0], X[:, 1])
        s = level * float(np.sqrt(np.mean(y * y)))
        ratios.append(estimate_noise_nd(X, y + rng.normal(0.0, s, y.size)) / s)
    ratios = np.array(ratios)
    assert np.all(np.abs(ratios - 1) < 0.3), ratios


def test_the_nd_estimate_reads_noise_on_trajectories_and_little_without_it():
    from scipy.integrate import solve_ivp

    from llmlex._noise import estimate_noise_nd

    # A damped pendulum's states: samples along one curve, not a box.
    sol = solve_ivp(
        lambda t, s: [s[1], -np.sin(s[0]) - 0.3 * s[1]],
        (0, 20),
        [2.5, 0.0],
        t_eval=np.linspace(0, 20, 400),
        rtol=1e-9,
    )
    X = sol.y.T
    y = -np.sin(X[:, 0]) - 0.3 * X[:, 1]
    rms = float(np.sqrt(np.mean(y * y)))
    assert estimate_noise_nd(X, y) < 1e-4 * rms
    rng = np.random.default_rng(0)
    for level in (0.01, 0.1):
        s = level * rms
        assert 0.7 < estimate_noise_nd(X, y + rng.normal(0.0, s, y.size)) / s < 1.3


def test_the_nd_estimate_with_one_usable_column_is_the_1d_estimate():
    from llmlex._noise import estimate_noise_nd

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 100)
    y = np.exp(2 * x) + rng.normal(0, 0.05, 100)
    one = estimate_noise(x, y)
    assert estimate_noise_nd(x[:, None], y) == one
    assert estimate_noise_nd(np.c_[x, np.full(100, 3.0)], y) == one  # a constant column
    assert estimate_noise_nd(np.zeros((10, 2)), np.zeros(10)) > 0  # never 0
