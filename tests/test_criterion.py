"""The description-length criterion (llmlex._criterion) and FitResult.description_length."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from llmlex._criterion import description_length, parameter_costs, structure_cost
from llmlex.fit import fit_ansatz


def test_closed_form():
    # 10/2 + 5 ln 4 + 0.5 ln(1e4 * 4 / 3) + 0.5 ln(1e4 * 0.25 / 3)
    expected = 5 + 5 * math.log(4) + 0.5 * math.log(4e4 / 3) + 0.5 * math.log(2500 / 3)
    assert description_length(10.0, 5, 4, [1e4, 1e4], [2.0, 0.5]) == pytest.approx(expected)


def test_structure_cost_grows_with_every_node_and_kind_and_floors_the_kinds_at_two():
    costs = [structure_cost(k, 3) for k in range(1, 10)]
    assert all(b > a for a, b in itertools.pairwise(costs))
    assert structure_cost(5, 4) > structure_cost(5, 3)
    assert structure_cost(3, 1) == structure_cost(3, 2) == pytest.approx(3 * math.log(2))
    assert structure_cost(3, 0) > 0


def test_a_parameter_costs_the_log_of_its_distinguishable_values_floored_at_zero():
    c = parameter_costs([1e6, 1e6, 1.0, 1e6], [1.0, 10.0, 0.1, 0.0])
    assert c[0] == pytest.approx(0.5 * math.log(1e6 / 3))
    assert c[1] == pytest.approx(c[0] + math.log(10))  # ten times larger: ln 10 more
    assert c[2] == 0.0 and c[3] == 0.0  # indistinguishable from 0: free
    # More precise data (larger Fisher information) make a parameter dearer.
    assert parameter_costs([1e8], [1.0])[0] > parameter_costs([1e6], [1.0])[0]


def test_every_extra_parameter_or_node_costs_more():
    base = description_length(50.0, 5, 4, [1e4, 1e4], [2.0, 0.5])
    more_params = description_length(50.0, 5, 4, [1e4, 1e4, 1e4], [2.0, 0.5, 1.0])
    more_nodes = description_length(50.0, 7, 4, [1e4, 1e4], [2.0, 0.5])
    assert more_params > base and more_nodes > base
    # A parameter the data cannot tell from zero adds nothing (ESR would drop it).
    assert description_length(50.0, 5, 4, [1e4, 1e4, 1e-6], [2.0, 0.5, 1.0]) == base


def test_a_failed_fit_is_infinitely_long_and_unknown_information_is_nan():
    assert description_length(math.inf, 5, 4, [1.0], [1.0]) == math.inf
    assert math.isnan(description_length(1.0, 5, 4, [math.nan], [1.0]))
    with pytest.raises(ValueError, match="Fisher"):
        parameter_costs([1.0], [1.0, 2.0])


def test_huge_information_does_not_overflow():
    assert math.isfinite(description_length(1.0, 3, 3, [1e300], [1e300]))


# ------------------------------------------------------------------ through fit_ansatz

LINE = "params[0]*x + params[1]"
LINE_COS = "params[0]*x + params[1] + params[2]*np.cos(params[3]*x)"


@pytest.mark.parametrize("seed", range(4))
def test_the_true_line_beats_a_line_with_a_cosine_that_fits_the_noise(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 2, 100))
    clean = 2 * x + 0.5
    y = clean + rng.normal(0, 0.01 * np.sqrt(np.mean(clean**2)), x.size)
    line = fit_ansatz(LINE, x, y)
    wiggle = fit_ansatz(LINE_COS, x, y, initial=[*line.params, 0.01, 5.0], seed=seed)
    assert wiggle.chi2 < line.chi2  # the extra terms explain some of the noise...
    assert line.description_length < wiggle.description_length  # ...but cost more


def test_on_noise_free_data_the_exact_form_beats_a_polynomial():
    x = np.linspace(0, 2, 60)
    y = 1.3 * np.exp(0.8 * x)
    exact = fit_ansatz("params[0]*np.exp(params[1]*x)", x, y)
    poly = fit_ansatz(" + ".join(f"params[{k}]*x**{k}" for k in range(6)), x, y)
    assert exact.nchi2 < 1e-20 and poly.nchi2 < 1e-6  # the polynomial is close...
    assert exact.description_length < poly.description_length  # ...and far longer


def test_the_fit_stores_the_criterion_of_its_chi2_structure_and_information():
    x = np.linspace(0, 1, 40)
    y = 2 * x + 0.5 + np.random.default_rng(0).normal(0, 0.02, x.size)
    r = fit_ansatz(LINE, x, y, sigma=0.02, absolute_sigma=True)
    # Fisher diagonal of chi2/2 with sigma: sum((d model / d p)**2) / sigma**2.
    fisher = np.array([np.sum(x**2), x.size]) / 0.02**2
    # p0*x + p1: Add, Mul, p0, x, p1 -> 5 nodes of 4 kinds (Add, Mul, x, parameter).
    expected = description_length(r.chi2, 5, 4, fisher, r.params)
    assert r.description_length == pytest.approx(expected, rel=1e-6)


def test_a_failed_fit_has_an_infinite_description_length():
    x = np.linspace(0.1, 5, 30)
    r = fit_ansatz("np.log(-np.abs(params[0]) - x**2)", x, x)
    assert not r.success and r.description_length == math.inf


def test_numbers_in_the_tree_cost_their_logarithm():
    import math

    import sympy

    from llmlex._symbolic import X, number_cost

    assert number_cost(X + 1) == 0.0
    assert math.isclose(number_cost(X**2), math.log(2))
    assert math.isclose(number_cost(sympy.Rational(28, 11) * X), math.log(28) + math.log(11))
    assert number_cost(sympy.Rational(28, 11) * X) > number_cost(sympy.Rational(5, 2) * X)
    assert math.isclose(number_cost(sympy.Float(2.54) * X), 3 * math.log(10))
    assert (
        description_length(1.0, 3, 3, [], [], number_cost=2.0)
        == description_length(1.0, 3, 3, [], []) + 2.0
    )
