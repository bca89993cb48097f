"""llmlex._frames: the frames the multivariate generators search in, and the way back."""

from __future__ import annotations

import numpy as np
import pytest

sympy = pytest.importorskip("sympy")

from llmlex._frames import Problem, decimal_frame  # noqa: E402

X0, X1 = sympy.symbols("x0 x1", real=True)


def _problem(X: np.ndarray, y: np.ndarray) -> Problem:
    return Problem(X, y, X[:5], y[:5], ("x0", "x1"), None, None)


def test_data_within_a_factor_100_of_order_one_are_searched_as_given():
    rng = np.random.default_rng(0)
    X = rng.uniform(-10.0, 10.0, (50, 2))  # Livermore's range: as given
    assert decimal_frame(_problem(X, 0.02 * X[:, 0]), [X0, X1]) is None


def test_columns_far_from_order_one_come_back_exactly():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(1.0, 3.0, 50), rng.uniform(1e3, 4e3, 50)])  # mm
    y = 1e-6 * X[:, 0] * np.exp(-X[:, 1] / 2000.0)
    frame = decimal_frame(_problem(X, y), [X0, X1])
    assert frame is not None
    p = frame.problem
    np.testing.assert_array_equal(p.X_train[:, 0], X[:, 0])  # order one: unchanged
    np.testing.assert_allclose(p.X_train[:, 1], X[:, 1] / 1e3)
    np.testing.assert_array_equal(p.y_train, y)  # the target as given
    # The law of the frame, written back, is the law of the data.
    law = 1e-6 * X0 * sympy.exp(-X1 / 2)  # x1 in metres
    in_frame = sympy.lambdify([X0, X1], law)(*p.X_train.T)
    np.testing.assert_allclose(in_frame, p.y_train, rtol=1e-6)
    back = sympy.lambdify([X0, X1], frame.lift(law))(*X.T)
    np.testing.assert_allclose(back, y, rtol=1e-12)
    assert frame.lift(law).free_symbols == {X0, X1} and not frame.dimensionless


def _shape(expr):
    """The formula with every number replaced by +-1: its form."""
    numbers = {a: sympy.Integer(1 if a > 0 else -1) for a in expr.atoms(sympy.Number)}
    return expr.xreplace(numbers)


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_the_estimator_finds_the_same_form_in_other_units_of_a_column(scale):
    # exp(-x1/2) of a column in metres is in the library; in millimetres (x1 / 1000)
    # the same law was out of reach (a rational function came back) until the column
    # was searched in powers of ten of its units.
    pytest.importorskip("sklearn")
    from llmlex.estimator import LLMLExRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 3.0, (300, 2))
    y = 1.5 * X[:, 0] * np.exp(-X[:, 1] / 2)
    forms = []
    for s in (1.0, scale):
        reg = LLMLExRegressor(random_state=0, progress=False, generators=("sparse",))
        reg.fit(X * np.array([1.0, s]), y)
        assert reg.score(X * np.array([1.0, s]), y) > 0.9999
        forms.append(_shape(reg.expression_))
    assert forms[0] == forms[1] == _shape(X0 * sympy.exp(-X1))
