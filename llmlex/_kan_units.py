"""Dimensional analysis for :class:`llmlex.kan.KANLEX`: a network of dimensionless groups.

With the columns' units, ``y = P(x) * f(pi)`` (:mod:`llmlex._dimensions`): the network is
trained on the groups ``pi`` with the target ``y / P(x)`` (error bars ``sigma / |P|``), so
a law of many columns becomes a network of fewer inputs.  :class:`UnitsFrame` keeps the
way back: :meth:`UnitsFrame.lift` writes a result in the groups as one in the columns,
with its scores recomputed on the columns' data (the chi-squared, and so the chi-squared
per point, is the same in both: ``(y/P - f) / (sigma/|P|) = (y - P*f) / sigma``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._dimensions import Reduction, reduce_dimensions, units_by_column
from llmlex._kan_results import Candidate, KANSymbolicResult
from llmlex.exceptions import AnsatzError, DataError, UnitsError
from llmlex.fit import nchi2, r2

if TYPE_CHECKING:
    import sympy

__all__ = ["UnitsFrame", "frame_for"]

log = logging.getLogger("llmlex.kan")


@dataclass(frozen=True, eq=False)
class UnitsFrame:
    """A problem in dimensionless groups and the way back to the columns.

    Attributes
    ----------
    reduction : Reduction
        ``P`` and the groups as exponents of the columns.
    columns : tuple of str
        The columns' names.
    groups : tuple of str
        The groups' names (``pi0, pi1, ...``): the network's variables.
    X_train, y_train, X_test, y_test : ndarray
        The data in the columns (targets 2-D), to score lifted formulas on.
    """

    reduction: Reduction
    columns: tuple[str, ...]
    groups: tuple[str, ...]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def describe(self) -> str:
        """The form searched, in the columns' names."""
        return self.reduction.describe(list(self.columns))

    @functools.cached_property
    def _back(self) -> tuple[dict[str, sympy.Expr], sympy.Expr, list[sympy.Symbol]]:
        """Each group and ``P`` as monomials of the column symbols (built once)."""
        import sympy

        cols = [sympy.Symbol(c, real=True) for c in self.columns]

        def monomial(powers: Sequence[Fraction]) -> sympy.Expr:
            return sympy.Mul(
                *(
                    v ** sympy.Rational(p.numerator, p.denominator)
                    for v, p in zip(cols, powers, strict=True)
                )
            )

        back = {g: monomial(p) for g, p in zip(self.groups, self.reduction.groups, strict=True)}
        return back, monomial(self.reduction.prefactor), cols

    def lift_expression(self, expr: sympy.Expr) -> sympy.Expr:
        """A formula of the groups as a formula of the columns."""
        back, prefactor, _ = self._back
        subs = {s: back[s.name] for s in expr.free_symbols if s.name in back}
        return prefactor * expr.xreplace(subs)

    def lift(self, result: KANSymbolicResult) -> KANSymbolicResult:
        """``result`` (a formula of the groups) as a formula of the columns.

        Its nchi2 and R2 are recomputed on the columns' data; each candidate is lifted
        and rescored on the held-out data (one whose text does not parse is dropped).
        The chi-squared values are the same in both frames; the description length
        stays the one the formula of the groups was chosen by.
        """
        import sympy

        from llmlex._kan_sympy import evaluate, parse_expression
        from llmlex._symbolic import node_count, sympy_to_text

        _, _, cols = self._back
        o = result.output
        expr = self.lift_expression(result.expression)
        raw = self.lift_expression(result.raw_expression)
        with np.errstate(all="ignore"):
            fit_train = evaluate(expr, cols, self.X_train)
            fit_test = evaluate(expr, cols, self.X_test)
        y, yt = self.y_train[:, o], self.y_test[:, o]
        names = {g: sympy.Symbol(g, real=True) for g in self.groups}
        candidates = []
        for c in result.candidates:
            try:
                lifted = self.lift_expression(parse_expression(c.text, names))
            except AnsatzError:
                continue
            with np.errstate(all="ignore"):
                held = nchi2(yt, evaluate(lifted, cols, self.X_test))
            text = sympy_to_text(lifted)
            candidates.append(
                Candidate(
                    c.origin,
                    text,
                    held,
                    node_count(lifted),
                    c.accepted,
                    c.reduced_chi2_test,
                    c.description_length,
                )
            )
        return replace(
            result,
            expression=expr,
            text=sympy_to_text(expr),
            raw_expression=raw,
            variables=self.columns,
            nchi2_train=nchi2(y, fit_train),
            nchi2_test=nchi2(yt, fit_test),
            r2_train=r2(y, fit_train),
            r2_test=r2(yt, fit_test),
            complexity=node_count(expr),
            raw_complexity=node_count(raw),
            candidates=tuple(candidates),
        )


def frame_for(
    units: Sequence[Any] | Mapping[str, Any],
    target_units: Any,
    columns: Sequence[str],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
) -> UnitsFrame | None:
    """The dimensionless frame of a KAN's data, or None if the units change nothing.

    ``units``: one entry per column, or a mapping from column name to units.  ``y_*``
    are 2-D (one column per output).

    Raises
    ------
    UnitsError
        Units that cannot be read, that do not name every column, a target whose units
        no product of the columns has, or units that leave no group at all (the law is
        ``P`` times a constant: nothing for a network to learn).
    DataError
        If ``P`` is zero or not finite on the data.
    """
    given = units_by_column(units, columns)
    reduction = reduce_dimensions(given, target_units, X_train)
    if reduction.trivial:
        return None
    if not reduction.groups:
        raise UnitsError(
            f"the units leave no dimensionless group ({reduction.describe(list(columns))} "
            "with f a constant): there is nothing for a network to learn; "
            "LLMLExRegressor(units=..., target_units=...) fits the constant"
        )
    for label, X in (("training", X_train), ("test", X_test)):
        factor = reduction.factor(X)
        if not (np.all(np.isfinite(factor)) and np.all(factor != 0)):
            raise DataError(
                f"the units' prefactor {reduction.describe(list(columns)).split(' * f(')[0]} "
                f"is zero or not finite on the {label} data"
            )
    return UnitsFrame(
        reduction,
        tuple(columns),
        tuple(reduction.group_names(columns)),
        X_train,
        y_train,
        X_test,
        y_test,
    )
