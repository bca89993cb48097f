"""Sparse regression of transformed targets: square roots, reciprocals and quotients of
short sums.

A law that is not a short sum of library terms may become one after a transformation of
``y``: ``y**2`` for a root (``sqrt((x1 - x0)**2 + (x3 - x2)**2)``), ``1/y`` for a
reciprocal (``1/(1/x0 + x1/x2)``), ``y*D`` for a quotient ``P/D``.  The term library of
:mod:`llmlex._sparse` divides only by inputs of one sign (a pole inside the data is not a
term to impose everywhere), so a law with a pole inside the data (``x0**4/x1**4 - 0.91``
or ``x0/(14.71 - 4.97*x1)`` on ``[-10, 10]**2``) or a root factor
(``sqrt(x0 + x1)*(3*x1**2 + x1)``) is found here: the denominators ``D`` are screened by
one least-squares fit each (:func:`denominators`), and the best two are searched like
``y`` itself (:func:`llmlex._sparse.linear_candidates`).

numpy, sympy and scikit-learn (through :mod:`llmlex._sparse`); no torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import sympy

from llmlex._sparse import (
    LinearCandidate,
    Term,
    _degree,
    _distinct,
    _monomials,
    _one_sign,
    linear_candidates,
    term_library,
)

__all__ = ["denominators", "transformed_candidates"]

#: A denominator is kept when ``y = P/D`` (``P`` a full polynomial) has a chi-squared
#: below this fraction of that of ``y = P``.
_GAIN = 0.1
#: Sanathanan-Koerner reweightings of the linearised fit of an affine denominator.
_SK_STEPS = 3


def denominators(
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    variables: Sequence[sympy.Symbol],
    keep: int,
) -> list[tuple[sympy.Expr, np.ndarray]]:
    """Denominators ``D`` for which ``y = P / D`` with ``P`` a full polynomial fits the
    data far better (chi-squared below :data:`_GAIN` of it) than ``y = P``: the ``keep``
    best, best first, as ``(formula, values)``.

    ``D`` is a monomial ``m`` (a power of one input up to the library's degree, a product
    of two inputs), ``1 + q*m`` with ``q`` fitted (Levy's linearisation
    ``y = P - q*y*m``, reweighted by ``1/|D|`` as Sanathanan and Koerner do), or
    ``1/sqrt(s)`` for ``s`` an input or the sum or difference of two, positive on every
    sample.  ``D`` must not vanish on any sample.
    """
    n, d = X.shape
    if d == 0:
        return []
    deg = _degree(None, d)
    numer = _distinct(_monomials(X, variables, deg))
    if len(numer) + 1 >= n // 2:
        return []
    base = np.stack([t.values for t in numer], axis=1)
    w = 1.0 / np.asarray(sigma, dtype=float)

    def chi2(D: np.ndarray) -> float:
        # y = P/D weighted by 1/sigma is y*D = P weighted by 1/(|D| sigma).
        wd = w / np.abs(D)
        coef, *_ = np.linalg.lstsq(base * wd[:, None], y * D * wd, rcond=None)
        r = (y * D - base @ coef) * wd
        return float(r @ r)

    def affine(m: np.ndarray) -> float | None:
        """``q`` of the best ``D = 1 + q*m``, by the reweighted linearisation."""
        A = np.column_stack([base, -y * m])
        row = w.copy()
        q: float | None = None
        for _ in range(_SK_STEPS):
            coef, *_ = np.linalg.lstsq(A * row[:, None], y * row, rcond=None)
            q = float(coef[-1])
            D = 1.0 + q * m
            if not np.all(np.isfinite(D)) or np.min(np.abs(D)) == 0.0:
                return None
            row = w / np.abs(D)
        return q

    monomials: list[tuple[sympy.Expr, np.ndarray]] = [
        (variables[k] ** p, X[:, k] ** p) for k in range(d) for p in range(1, deg + 1)
    ]
    monomials += [
        (variables[i] * variables[j], X[:, i] * X[:, j])
        for i, j in itertools.combinations(range(d), 2)
    ]
    found: list[tuple[sympy.Expr, np.ndarray]] = list(monomials)
    with np.errstate(all="ignore"):
        for expr, m in monomials:
            q = affine(m)
            if q is not None and q != 0.0:
                found.append((1 + sympy.Float(q) * expr, 1.0 + q * m))
        sums = [(variables[k], X[:, k]) for k in range(d)]
        for i, j in itertools.combinations(range(d), 2):
            xi, xj, vi, vj = variables[i], variables[j], X[:, i], X[:, j]
            sums += [(xi + xj, vi + vj), (xi - xj, vi - vj), (xj - xi, vj - vi)]
        found += [(1 / sympy.sqrt(e), 1.0 / np.sqrt(v)) for e, v in sums if np.min(v) > 0]
        plain = chi2(np.ones(n))
        scored = [
            (c, expr, D)
            for expr, D in found
            if np.all(np.isfinite(D)) and np.min(np.abs(D)) > 0
            for c in [chi2(D)]
            if math.isfinite(c) and c < _GAIN * plain
        ]
    scored.sort(key=lambda t: t[0])
    return [(expr, D) for _, expr, D in scored[:keep]]


def transformed_candidates(
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    variables: Sequence[sympy.Symbol],
    *,
    keep: int = 3,
    deadline: float | None = None,
    terms: Sequence[Term] | None = None,
) -> list[LinearCandidate]:
    """Sparse regression of ``y**2`` (``y >= 0``), of ``1/y`` (``y`` one-signed) and of
    ``y*D`` for the denominators ``D`` that :func:`denominators` picks: laws that are the
    square root or the reciprocal of a short sum, such as
    ``sqrt((x1 - x0)**2 + (x3 - x2)**2)`` or ``1/(1/x0 + x1/x2)``, or a short sum over a
    denominator that changes sign in the data, such as ``(x0 - 1)*(x0 + x1)/x0``.

    Each target is weighted by its propagated error (``2|y| sigma``, ``sigma/y**2``,
    ``|D| sigma``); the ``keep`` best of each are returned as ``sqrt(P)``, ``1/P`` or
    ``P/D`` with their constants and a ``nan`` description length (refit them on ``y``
    first).  ``terms``: the library of :func:`llmlex._sparse.term_library` if already
    built on ``X``.
    """
    sigma = np.asarray(sigma, dtype=float)
    if terms is None:
        terms = term_library(X, variables)
    targets: list[tuple[str, np.ndarray, np.ndarray, Callable[[sympy.Expr], sympy.Expr]]] = []
    if np.all(y >= 0) and np.ptp(y) > 0:
        targets.append(("sqrt", y * y, np.maximum(2.0 * y * sigma, sigma * sigma), sympy.sqrt))
    if _one_sign(y):
        targets.append(("reciprocal", 1.0 / y, sigma / (y * y), lambda e: 1 / e))
    for expr, D in denominators(X, y, sigma, variables, keep=2):
        targets.append(("quotient", y * D, sigma * np.abs(D), lambda e, D=expr: e / D))
    out: list[LinearCandidate] = []
    for name, target, s, outer in targets:
        found = linear_candidates(
            X, target, s, variables, rational=False, keep=keep, deadline=deadline, terms=terms
        )
        for c in found[:keep]:
            template = outer(c.template)
            out.append(
                LinearCandidate(name, outer(c.expression), template, c.params, math.nan, math.nan)
            )
    return out
