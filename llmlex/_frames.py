"""The frames the multivariate generators search in, and the way back to the inputs.

The estimator's route (:mod:`llmlex._multivariate`) hands its generators a
:class:`Problem`: the data as given, or the data in another frame, where a law is easier
to find, with every formula found written back in the inputs (:meth:`Frame.lift`) before
it is scored.  Two frames:

- **dimensionless groups** (:func:`units_frame`): with the columns' physical units, the
  target over a prefactor ``P(x)`` of its units, as a function of the groups
  (:mod:`llmlex._dimensions`);
- **decimal scales** (:func:`decimal_frame`): a column whose values are far from order
  one (in pascals, nanometres, ...) divided by the power of ten that brings it there.
  The libraries of the generators hold ``sin(x)``, ``exp(-x)``, ``exp(k*M)`` with ``k`` of
  order one, fitted from starts of order one: on a column in millimetres a law of metres
  is out of their reach.  Columns already within a factor of 100 of order one are
  searched as given (a constant of order one in the caller's units is then the natural
  guess, as in :mod:`llmlex._offline_library`).  The target is left as it is: the
  generators' fits are linear in it, or in its logarithm, and come out the same in any
  of its units.

numpy and sympy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from llmlex._dimensions import Reduction
from llmlex._score import decade

__all__ = ["DECADES", "Frame", "Problem", "decimal_frame", "units_frame"]

#: A column is rescaled when the power of ten that brings its largest
#: magnitude into ``[0.5, 5)`` is at least ``10**DECADES`` or at most ``10**-DECADES``.
DECADES = 2


@dataclass(frozen=True, eq=False)
class Problem:
    """The data a generator is asked to explain: the inputs as given, or the data of a
    :class:`Frame` (then ``y`` is the target over the prefactor, and ``sigma`` its error
    bars)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    names: tuple[str, ...]
    sigma_train: np.ndarray | None
    sigma_test: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Frame:
    """A problem in another frame and the way back to the inputs.

    Attributes
    ----------
    problem : Problem
        The data in the frame.
    variables : list of sympy.Symbol
        The frame's variables (the groups, or the inputs' own symbols when rescaled).
    factor : ndarray
        The prefactor's values on the training rows (what the target was divided by).
    back : dict
        Each variable of the frame as a formula of the inputs.
    prefactor : sympy.Expr
        The prefactor as a formula of the inputs.
    dimensionless : bool
        Whether the variables are dimensionless groups (``1 - m`` then means something).
    """

    problem: Problem
    variables: list[sympy.Symbol]
    factor: np.ndarray
    back: dict[sympy.Symbol, sympy.Expr]
    prefactor: sympy.Expr
    dimensionless: bool

    def lift(self, expr: sympy.Expr) -> sympy.Expr:
        """A formula of the frame's variables as a formula of the inputs."""
        by_name = {s.name: e for s, e in self.back.items()}
        subs = {s: by_name[s.name] for s in expr.free_symbols if s.name in by_name}
        return self.prefactor * expr.xreplace(subs)


def _monomial(variables: Sequence[sympy.Symbol], powers: Sequence[Fraction]) -> sympy.Expr:
    return sympy.Mul(
        *(
            v ** sympy.Rational(p.numerator, p.denominator)
            for v, p in zip(variables, powers, strict=True)
        )
    )


def _scaled(sigma: np.ndarray | None, factor: np.ndarray | float) -> np.ndarray | None:
    return None if sigma is None else sigma / np.abs(factor)


def units_frame(reduction: Reduction, problem: Problem, variables: Sequence[sympy.Symbol]) -> Frame:
    """The problem in the dimensionless groups of ``reduction``.

    Raises
    ------
    ValueError
        If the units' prefactor is zero or not finite on a training row.
    """
    names = reduction.group_names([v.name for v in variables])
    factor_train = reduction.factor(problem.X_train)
    factor_test = reduction.factor(problem.X_test)
    if not (np.all(np.isfinite(factor_train)) and np.all(factor_train != 0)):
        raise ValueError("the units' prefactor is zero or not finite on the data")
    reduced = Problem(
        reduction.inputs(problem.X_train),
        problem.y_train / factor_train,
        reduction.inputs(problem.X_test),
        problem.y_test / factor_test,
        tuple(names),
        _scaled(problem.sigma_train, factor_train),
        _scaled(problem.sigma_test, factor_test),
    )
    groups = [sympy.Symbol(n, real=True) for n in names]
    return Frame(
        reduced,
        groups,
        factor_train,
        {
            g: _monomial(variables, powers)
            for g, powers in zip(groups, reduction.groups, strict=True)
        },
        _monomial(variables, reduction.prefactor),
        dimensionless=True,
    )


def _exponent(values: np.ndarray) -> int:
    """The power of ten (an exponent) that brings ``max|values|`` into ``[0.5, 5)``, or 0
    where that is within :data:`DECADES` of it."""
    k = round(math.log10(decade(values)))
    return k if abs(k) >= DECADES else 0


def decimal_frame(problem: Problem, variables: Sequence[sympy.Symbol]) -> Frame | None:
    """The problem with its columns far from order one rescaled by powers of ten (see the
    module's docstring), or None when none is.

    The variables keep the inputs' names: ``x_k`` of the frame is ``x_k / 10**e_k``.
    """
    exps = [_exponent(problem.X_train[:, k]) for k in range(problem.X_train.shape[1])]
    if not any(exps):
        return None
    scales = np.array([float(f"1e{e}") for e in exps])  # decimal literals: exactly rounded
    return Frame(
        Problem(
            problem.X_train / scales,
            problem.y_train,
            problem.X_test / scales,
            problem.y_test,
            problem.names,
            problem.sigma_train,
            problem.sigma_test,
        ),
        list(variables),
        np.ones(problem.y_train.size),
        {v: v * sympy.Integer(10) ** (-e) for v, e in zip(variables, exps, strict=True) if e},
        sympy.Integer(1),
        dimensionless=False,
    )
