"""A description-length criterion for choosing among fitted formulas.

After Exhaustive Symbolic Regression (Bartlett, Desmond & Ferreira 2023, IEEE Trans. Evol.
Comput., "Exhaustive Symbolic Regression"), the two-part code length, in nats, of the data
described by a fitted formula is

.. math::

    L = \\frac{\\chi^2}{2} + k \\ln n_\\mathrm{op}
        + \\sum_i \\max\\left(0, \\tfrac12 \\ln \\frac{I_{ii}\\,\\theta_i^2}{3}\\right)
        + \\sum_c \\ln |c|

- ``chi2 / 2`` is the negative log-likelihood of Gaussian noise up to a constant shared
  by every formula on the same data: the residuals the formula leaves unexplained.
- ``k ln n_op`` codes the tree: ``k`` nodes, each one of ``n_op`` distinct kinds
  (operators, functions, and the atom kinds ``x``, parameter, number).  ``n_op`` is taken
  to be at least 2, so that the cost grows with every node.
- Parameter ``i`` costs the log of the number of values it can take that the data tell
  apart: its magnitude over its precision ``sqrt(3 / I_ii)``, with ``I = J^T J`` the
  Fisher matrix of ``chi2 / 2`` (``J`` the Jacobian of the residuals divided by the noise
  used for ``chi2``, not rescaled by the fit's reduced chi-squared).
- Each number written in the tree costs ``ln |c|`` (a fraction ``p/q``: ``ln|p| + ln q``;
  0 and 1 cost nothing), so that ``28/11`` is not a free substitute for a fitted 2.54.

Simplifications against ESR: a parameter the data cannot tell from 0
(``I_ii theta_i^2 < 3``) costs nothing here, where ESR would drop it and code the smaller
formula; and ``theta_i`` is coded at its fitted value, without ESR's search over the
precision of each parameter.

Pure numpy, with no knowledge of ansätze or results (:mod:`llmlex.fit` supplies the
node count, the operator kinds and the Fisher diagonal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["description_length", "parameter_costs", "structure_cost"]


def structure_cost(complexity: int, n_op: int) -> float:
    """``k ln n_op`` nats for a tree of ``complexity`` nodes of ``n_op`` kinds (at least 2)."""
    return float(complexity) * math.log(max(int(n_op), 2))


def parameter_costs(fisher_diag: Sequence[float], params: Sequence[float]) -> np.ndarray:
    """Nats per parameter: ``max(0, 0.5 ln(I_ii theta_i^2 / 3))``.

    Parameters
    ----------
    fisher_diag : sequence of float
        Diagonal of the Fisher matrix ``J^T J`` of ``chi2 / 2``.
    params : sequence of float
        The fitted values.

    Returns
    -------
    ndarray
        One non-negative cost per parameter (``nan`` where an input is ``nan``).
    """
    fisher = np.asarray(fisher_diag, dtype=float).ravel()
    theta = np.asarray(params, dtype=float).ravel()
    if fisher.shape != theta.shape:
        raise ValueError(f"{fisher.size} Fisher entries for {theta.size} parameters")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        # log of a product could overflow where the sum of logs does not.
        cost = 0.5 * (np.log(fisher) + 2.0 * np.log(np.abs(theta)) - math.log(3.0))
    return np.where(np.isnan(cost), cost, np.maximum(cost, 0.0))


def description_length(
    chi2: float,
    complexity: int,
    n_op: int,
    fisher_diag: Sequence[float],
    params: Sequence[float],
    *,
    number_cost: float = 0.0,
) -> float:
    """The description length of a fitted formula, in nats (lower is better).

    Parameters
    ----------
    chi2 : float
        Chi-squared of the fit: squared residuals over the noise variance.
    complexity : int
        Node count of the formula's tree.
    n_op : int
        Distinct kinds of node in it (floored at 2).
    fisher_diag : sequence of float
        Diagonal of the Fisher matrix ``J^T J`` of ``chi2 / 2`` at the fitted parameters.
    params : sequence of float
        The fitted parameters.
    number_cost : float
        Nats to write the numbers of the tree (``ln|n|`` per integer, ``ln|p| + ln q``
        per fraction: :func:`llmlex._symbolic.number_cost`).

    Returns
    -------
    float
        ``chi2 / 2 + complexity * ln(n_op) + number_cost + sum of the parameter costs``; ``inf`` if
        ``chi2`` is not finite (a failed fit), ``nan`` if a Fisher entry is ``nan``.

    Examples
    --------
    >>> round(description_length(10.0, 5, 4, [1e4, 1e4], [2.0, 0.5]), 3)
    20.043
    """
    if not math.isfinite(chi2):
        return math.inf if not math.isnan(chi2) else math.nan
    costs = parameter_costs(fisher_diag, params)
    return 0.5 * chi2 + structure_cost(complexity, n_op) + number_cost + float(np.sum(costs))
