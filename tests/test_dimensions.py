"""Dimensional analysis (:mod:`llmlex._dimensions`): units read, groups dimensionless."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from llmlex._dimensions import BASE_UNITS, parse_units, reduce_dimensions
from llmlex.exceptions import UnitsError

NEWTON = parse_units("kg*m/s**2")


@pytest.mark.parametrize(
    "spec", ["N", "kg m s^-2", "kg*m*s**-2", "kg m/s^2", "J/m", "kN", "(kg*m)/(s*s)", "Pa m^2"]
)
def test_units_of_a_force_written_many_ways(spec):
    assert parse_units(spec) == NEWTON


def test_units_as_mappings_sequences_and_dimensionless():
    assert parse_units({"m": 1, "kg": 1, "s": -2}) == NEWTON
    assert parse_units((1, 1, -2, 0, 0, 0, 0)) == NEWTON
    zero = tuple(Fraction(0) for _ in BASE_UNITS)
    assert parse_units("") == parse_units("1") == parse_units(None) == parse_units("rad") == zero
    assert parse_units("m^(1/2)")[0] == Fraction(1, 2)
    assert parse_units("V") == parse_units("W/A") == parse_units("J/C")
    assert parse_units("ohm") == parse_units("Ω") == parse_units("V/A")


@pytest.mark.parametrize("spec", ["furlong", "m**", "kg*(m", "m + s", "m^x", 3.0, [1, 2]])
def test_unreadable_units_raise_naming_the_problem(spec):
    with pytest.raises(UnitsError):
        parse_units(spec)


def _dims(units):
    return np.array([[float(v) for v in parse_units(u)] for u in units]).T  # (base, columns)


def test_lorentz_force_reduces_to_two_groups():
    # F = q*(Ef + B*v*sin(theta)): F / (q*Ef) = 1 + (B*v/Ef) * sin(theta)
    r = reduce_dimensions(["C", "V/m", "T", "m/s", ""], "N")
    assert r.describe(["q", "Ef", "B", "v", "theta"]) == "y = q*Ef * f(pi0 = theta, pi1 = B*v/Ef)"


def test_orientation_prefers_the_small_ratio_on_the_data():
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(1, 2, 50), rng.uniform(3, 10, 50)]  # v < c
    r = reduce_dimensions(["m/s", "m/s"], "m/s", X)
    assert r.describe(["v", "c"]) == "y = v * f(pi0 = v/c)"


@pytest.mark.parametrize("seed", range(20))
def test_groups_are_dimensionless_independent_and_the_prefactor_has_the_target_units(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    units = [
        dict(zip(("m", "kg", "s"), rng.integers(-2, 3, 3).tolist(), strict=True)) for _ in range(n)
    ]
    target = {b: int(v) for b, v in zip(("m", "kg", "s"), rng.integers(-2, 3, 3), strict=True)}
    D = _dims(units)
    try:
        r = reduce_dimensions(units, target)
    except UnitsError:  # the target is outside the span of the inputs' units
        b = np.array([float(v) for v in parse_units(target)])
        sol = np.linalg.lstsq(D, b, rcond=None)[0]
        assert not np.allclose(D @ sol, b)
        return
    G = np.array([[float(v) for v in g] for g in r.groups]).reshape(-1, n)
    assert len(r.groups) == n - np.linalg.matrix_rank(D)
    assert np.allclose(D @ G.T, 0)
    if len(r.groups):
        assert np.linalg.matrix_rank(G) == len(r.groups)
    p = np.array([float(v) for v in r.prefactor])
    assert np.allclose(D @ p, [float(v) for v in parse_units(target)])
    # every group is a product of integer powers when one exists (here always)
    assert all(v.denominator == 1 for g in r.groups for v in g)


def test_a_law_follows_from_the_reduction():
    # pendulum: T = 2 pi sqrt(L/g): no group, the prefactor is the law up to a constant
    rng = np.random.default_rng(1)
    X = rng.uniform(0.5, 3, (40, 3))  # L, g, m (the mass cannot enter)
    r = reduce_dimensions(["m", "m/s^2", "kg"], "s", X)
    assert r.groups == ()
    period = 2 * np.pi * np.sqrt(X[:, 0] / X[:, 1])
    assert np.allclose(period / r.factor(X), 2 * np.pi)
    assert r.inputs(X).shape == (40, 0)


def test_columns_with_zeros_or_negatives_are_not_divided_by_or_rooted():
    rng = np.random.default_rng(2)
    X = np.c_[rng.uniform(1, 2, 30), rng.uniform(-1, 1, 30), np.r_[0.0, rng.uniform(1, 2, 29)]]
    r = reduce_dimensions(["m", "m", "m"], "m^2", X)
    for powers in (r.prefactor, *r.groups):
        assert powers[1] >= 0 and powers[1].denominator == 1  # mixed signs
        assert powers[2] >= 0  # a zero
    assert np.all(np.isfinite(r.inputs(X))) and np.all(np.isfinite(r.factor(X)))
    with pytest.raises(UnitsError, match="dimensionless groups"):
        reduce_dimensions(["m", "m"], "m", np.c_[np.r_[0.0, 1.0], np.r_[1.0, 0.0]])


def test_target_units_no_product_of_the_inputs_gives_raise():
    with pytest.raises(UnitsError, match="dimensional constant"):
        reduce_dimensions(["m", "kg"], "s")


def test_dimensionless_problems_are_left_as_they_are():
    r = reduce_dimensions(["", "rad"], "")
    assert r.trivial
    assert not reduce_dimensions(["m", "m"], "").trivial


def test_the_search_space_is_small_for_nine_columns():
    # I.9.18, Newton's gravitation between two points in space: 9 columns, 6 groups
    units = ["m^3 kg^-1 s^-2", "kg", "kg", *itertools.repeat("m", 6)]
    r = reduce_dimensions(units, "N")
    assert len(r.groups) == 6
    assert all(sum(1 for v in g if v) == 2 for g in r.groups)  # ratios m2/m1, x2/x1, ...
