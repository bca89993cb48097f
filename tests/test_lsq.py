"""The one least-squares engine (llmlex._lsq) shared by fit_ansatz and the KAN refits."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from llmlex._lsq import RESIDUAL_CAP, Objective, OutOfTime, minimise

X = np.linspace(0.0, 2.0, 40)
Y = 1.5 * np.exp(-0.8 * X) + 0.25


def model(p: np.ndarray) -> np.ndarray:
    return p[0] * np.exp(p[1] * X) + p[2]


def test_minimise_finds_a_known_optimum_and_keeps_the_best_point():
    obj = Objective(model, Y, 1.0)
    reached = minimise(obj, np.array([1.0, -1.0, 0.0]), max_nfev=400)
    assert reached < 1e-20
    np.testing.assert_allclose(obj.best_p, [1.5, -0.8, 0.25], rtol=1e-8)
    assert obj.best <= reached
    assert obj.nfev > 0


def test_weights_are_applied_per_point():
    w = np.linspace(1.0, 3.0, X.size)
    obj = Objective(lambda p: np.full(X.size, p[0]), np.zeros(X.size) + 1.0, w)
    r = obj.raw(np.array([2.0]))
    np.testing.assert_allclose(r, w)


def test_non_finite_residuals_are_capped_and_never_become_the_best():
    def undefined(p: np.ndarray) -> np.ndarray:
        return np.sqrt(p[0] - X)  # nan where x > p0

    obj = Objective(undefined, np.sqrt(3.0 - X), 1.0)
    r = obj(np.array([1.0]))
    assert np.all(np.isfinite(r)) and r.max() == RESIDUAL_CAP
    assert obj.best == math.inf and obj.best_p is None
    assert not obj.finite_at(np.array([1.0])) and obj.finite_at(np.array([5.0]))


def test_deadline_stops_the_optimiser_with_the_best_point_kept():
    obj = Objective(model, Y, 1.0, deadline=time.perf_counter() - 1.0, after_finite=True)
    first = obj(np.array([1.0, -1.0, 0.0]))  # evaluated: no finite point known before
    assert np.all(np.isfinite(first)) and obj.best < math.inf
    with pytest.raises(OutOfTime):
        minimise(obj, np.array([1.0, -1.0, 0.0]), max_nfev=400)
    assert obj.best_p is not None


def test_more_parameters_than_points_uses_the_trust_region_solver():
    x3 = X[:3]
    obj = Objective(lambda p: p[0] + p[1] * x3 + p[2] * x3**2 + p[3] * x3**3, 2 * x3 + 1, 1.0)
    assert minimise(obj, np.ones(4), max_nfev=200) < 1e-10


def test_the_deadline_is_checked_at_every_evaluation_once_they_are_slow():
    # With a fixed check every 32 evaluations, a 20 ms model overshot the deadline by 0.6 s.
    def slow(p: np.ndarray) -> np.ndarray:
        time.sleep(0.02)
        return model(p)

    obj = Objective(slow, Y, 1.0, deadline=time.perf_counter() + 0.1, check_every=32)
    t0 = time.perf_counter()
    with pytest.raises(OutOfTime):
        for _ in range(100):
            obj(np.array([1.0, -1.0, 0.0]))
    assert time.perf_counter() - t0 < 0.2
    assert obj.nfev <= 8


@pytest.mark.parametrize("call", ["raw", "finite_at"])
def test_screening_and_finite_start_evaluations_check_the_deadline(call):
    obj = Objective(model, Y, 1.0, deadline=time.perf_counter() - 1.0, check_every=32)
    with pytest.raises(OutOfTime):
        getattr(obj, call)(np.array([1.0, -1.0, 0.0]))


def test_a_model_that_raises_is_undefined_there_and_its_error_kept():
    def picky(p: np.ndarray) -> np.ndarray:
        if p[0] < 0:
            raise TypeError("negative amplitude")
        return model(p)

    obj = Objective(picky, Y, 1.0)
    assert np.all(np.isnan(obj.raw(np.array([-1.0, -1.0, 0.0]))))
    assert not obj.finite_at(np.array([-1.0, -1.0, 0.0]))
    assert np.all(obj(np.array([-1.0, -1.0, 0.0])) == RESIDUAL_CAP)
    assert isinstance(obj.error, TypeError)
    assert obj.finite_at(np.array([1.0, -1.0, 0.0]))
