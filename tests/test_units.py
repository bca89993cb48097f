"""Tests of llmlex._units: the search's decimal rescaling and the way back."""

from __future__ import annotations

import numpy as np
import pytest

from llmlex import run_genetic
from llmlex._units import Scaling, choose_scaling
from llmlex.exceptions import DataError
from llmlex.fit import fit_ansatz


@pytest.mark.parametrize(
    ("top", "scale"),
    [(1.0, 1.0), (4.99, 1.0), (0.5, 1.0), (0.49, 0.1), (5.0, 10.0), (3e-6, 1e-6), (2e7, 1e7)],
)
def test_decade_brings_the_largest_magnitude_into_half_to_five(top: float, scale: float) -> None:
    values = np.array([0.0, -top / 3, top])
    assert choose_scaling(values, values) == Scaling(x=scale, y=scale)


def test_data_of_order_one_are_searched_as_given() -> None:
    x = np.linspace(-1, 1, 20)
    s = choose_scaling(x, x**3 + x)
    assert s.identity
    xs, ys = s.data(x, x**3)
    # as given, to the working precision
    np.testing.assert_allclose(xs, x, rtol=3e-13)
    np.testing.assert_allclose(ys, x**3, rtol=3e-13)


def test_the_data_a_search_sees_do_not_depend_on_decimal_units() -> None:
    # (1000*x)/1000 is not x to the last bit; the working data are the same.
    x = np.random.default_rng(0).uniform(-3, 3, 200)
    y = np.exp(x)
    base = choose_scaling(x, y).data(x, y)
    for sx, sy in [(1e3, 1.0), (1.0, 1e-6), (1e-2, 1e6)]:
        assert not np.array_equal(x * sx / sx, x) or not np.array_equal(y * sy / sy, y)
        scaled = choose_scaling(x * sx, y * sy).data(x * sx, y * sy)
        assert np.array_equal(scaled[0], base[0]) and np.array_equal(scaled[1], base[1])


@pytest.mark.parametrize("bad", [1e-305, 3e301])
def test_magnitudes_beyond_the_supported_range_raise_data_error(bad: float) -> None:
    x = np.linspace(1, 2, 10)
    with pytest.raises(DataError, match="outside"):
        choose_scaling(x, bad * x)


def test_to_user_keeps_the_parameters_and_the_function() -> None:
    x = np.linspace(1, 4, 40) * 1e3
    y = 1e-6 * np.exp(1.83 - 3.36 / (x / 1e3))
    s = choose_scaling(x, y)
    assert s == Scaling(x=1e3, y=1e-6)
    xs, ys = s.data(x, y)
    fitted = fit_ansatz("np.exp(params[0] - params[1] / x)", xs, ys)
    user = s.to_user(fitted, x, y)
    # p1/(x/1000) is 1000*p1/x: the 1000 (and the sign) goes into p1.
    np.testing.assert_allclose(user.params, [1.83, -3360.0], rtol=1e-9)
    np.testing.assert_allclose(user.predict(x), y, rtol=1e-12)
    assert user.nchi2 < 1e-20


def test_to_user_absorbs_the_scales_into_once_used_parameters() -> None:
    x = np.linspace(1, 4, 40) * 1e3
    y = 2.5e-6 * np.exp(0.7e-3 * x) + 3e-6
    s = choose_scaling(x, y)
    xs, ys = s.data(x, y)
    fitted = fit_ansatz("params[0] * np.exp(params[1] * x) + params[2]", xs, ys)
    user = s.to_user(fitted, x, y)
    assert user.ansatz == "params[0] * np.exp(params[1] * x) + params[2]"
    np.testing.assert_allclose(user.params, [2.5e-6, 0.7e-3, 3e-6], rtol=1e-9)
    np.testing.assert_allclose(user.predict(x), y, rtol=1e-12)


def test_sigma_is_scaled_with_y() -> None:
    s = Scaling(x=1.0, y=1e-3)
    assert s.sigma(None) is None
    np.testing.assert_allclose(s.sigma(np.array([1e-5, 2e-5])), [1e-2, 2e-2])


def test_a_decimal_change_of_units_finds_the_same_form() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 4, 60)
    y = (x**3 + x**2 + x) / 30  # of order one: searched as given
    base = run_genetic(
        None, None, x, y, population_size=4, num_of_generations=2, seed=0, progress=False
    )
    assert choose_scaling(x, y).identity
    for sx, sy in [(1.0, 1e-6), (1.0, 1e6), (1e3, 1.0)]:
        s = Scaling(x=sx, y=sy)
        run = run_genetic(
            None,
            None,
            x * sx,
            y * sy,
            population_size=4,
            num_of_generations=2,
            seed=0,
            progress=False,
        )
        assert run.best.ansatz == s.to_user(base.best, x * sx, y * sy).ansatz
        np.testing.assert_allclose(run.best.predict(x * sx), y * sy, rtol=1e-9)


def test_a_checkpoint_reads_in_the_users_units(tmp_path) -> None:
    from llmlex import GeneticRun

    x = np.linspace(1, 4, 40) * 1e3
    y = 1e-6 * (x / 1e3) ** 2
    path = tmp_path / "run.json"
    run = run_genetic(
        None,
        None,
        x,
        y,
        population_size=3,
        num_of_generations=1,
        seed=0,
        progress=False,
        checkpoint=path,
        exit_condition=-1.0,  # never reached: the resumed run has a generation to add
    )
    loaded = GeneticRun.load(path)
    assert [r.ansatz for r in loaded.archive] == [r.ansatz for r in run.archive]
    np.testing.assert_allclose(loaded.best.predict(x), y, rtol=1e-9)
    # ... and resuming it continues the search in its own units.
    again = run_genetic(
        None,
        None,
        x,
        y,
        population_size=3,
        num_of_generations=2,
        seed=0,
        progress=False,
        checkpoint=path,
        exit_condition=-1.0,
    )
    assert len(again) == 2
    np.testing.assert_allclose(again.best.predict(x), y, rtol=1e-9)


@pytest.mark.parametrize(("sx", "sy"), [(1e299, 1.0), (1e-299, 1.0), (1.0, 1e-299), (1.0, 1e299)])
def test_extreme_but_representable_scales_work(sx: float, sy: float) -> None:
    # (x/1e299)**2 needs the coefficient 1e-598, beyond the doubles: the formula keeps
    # the scale factor written out instead of absorbing it.
    x = np.linspace(1.0, 3.0, 30)
    run = run_genetic(
        None,
        None,
        x * sx,
        sy * x**2,
        population_size=3,
        num_of_generations=1,
        seed=0,
        progress=False,
    )
    np.testing.assert_allclose(run.best.predict(x * sx), sy * x**2, rtol=1e-6)


def test_a_fit_on_data_of_order_1e_minus_9_is_not_exact_by_the_score_floor() -> None:
    # nchi2's absolute floor (1e-4) would call any formula exact here; the fit's weights
    # use the floor in the units of y.
    x = np.linspace(0.0, 1.0, 30)
    y = 1e-9 * (x + 0.3 * np.sin(6 * x))
    line = fit_ansatz("params[0] * x + params[1]", x, y)
    assert line.message != "exact fit"
    assert fit_ansatz("params[0] * x + params[1] * np.sin(6 * x)", x, y).message == "exact fit"
