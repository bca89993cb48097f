"""Parameter uncertainties of a least-squares fit, and numbers written to the digits
their uncertainties justify.

:func:`jacobian` differentiates a vectorised model by central differences,
:func:`covariance` turns the Jacobian of the weighted residuals into the covariance of
the parameters (``pinv(J^T J)``, the convention of :func:`scipy.optimize.curve_fit`),
:func:`fit_statistics` gathers what a finished fit reports (nchi2, chi2, covariance,
description length), and :func:`format_value` writes a value with as many significant
digits as its standard error supports.  Pure numpy, with no knowledge of ansätze or
results: :mod:`llmlex.fit` passes the model as a callable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llmlex._criterion import description_length
from llmlex._score import nchi2

__all__ = [
    "DEFAULT_PRECISION",
    "EXACT_RELATIVE_ERROR",
    "RCOND",
    "FitStatistics",
    "covariance",
    "fit_statistics",
    "format_value",
    "jacobian",
    "significant_digits",
]

log = logging.getLogger(__name__)

#: Relative step of the central differences: ``eps**(1/3)`` balances the truncation error
#: (``h**2``) against rounding (``eps / h``), for about 10 correct digits.
STEP = float(np.finfo(float).eps) ** (1.0 / 3.0)
#: Singular values of the column-equilibrated weighted Jacobian below this fraction of the
#: largest are directions the data do not determine (the finite differences are good to
#: about 1e-10, so smaller ones are noise of the differences, not information).
RCOND = 1e-8
#: A parameter whose component along such a direction exceeds this is unidentifiable:
#: its variance is infinite.
_NULL_COMPONENT = 1e-6
#: Significant digits written when the error does not say how many (none, or an exact
#: fit's rounding-level error).
DEFAULT_PRECISION = 6
#: An error below this fraction of its value is rounding, not information: the value is
#: written with the default digits.
EXACT_RELATIVE_ERROR = 1e-9


def jacobian(
    model: Callable[[np.ndarray], np.ndarray],
    p: np.ndarray,
    f0: np.ndarray | None = None,
    *,
    batch: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """``d model / d p`` at ``p`` by central differences, one column per parameter.

    The step of parameter ``i`` is ``eps**(1/3) * max(1, |p_i|)`` (as scipy's
    ``approx_derivative``), so each is scaled to its own parameter.  Where one side of the
    difference is not finite the one-sided difference from ``f0`` is used; where neither
    is, the column is ``nan``.

    Parameters
    ----------
    model : callable
        ``model(p) -> ndarray`` of shape ``(n,)``, vectorised over the data.
    p : ndarray
        The point, shape ``(k,)``.
    f0 : ndarray, optional
        ``model(p)`` if already known.
    batch : callable, optional
        ``batch(P) -> ndarray`` of shape ``(n, m)`` (or broadcastable to it): the model
        at the ``m`` parameter vectors in the columns of ``P`` (shape ``(k, m)``) at
        once.  All ``2k`` points are then one call instead of ``2k``; if it raises or
        returns another shape, ``model`` is called per point.

    Returns
    -------
    ndarray
        Shape ``(n, k)``.
    """
    p = np.asarray(p, dtype=float).ravel()
    k = p.size
    with np.errstate(all="ignore"):
        f0 = np.asarray(model(p) if f0 is None else f0, dtype=float).ravel()
        n = f0.size
        h = np.diag(STEP * np.maximum(1.0, np.abs(p)))
        points = np.hstack([p[:, None] + h, p[:, None] - h])  # columns p + h_i, p - h_i
        hu = np.diagonal(points[:, :k]) - p  # the steps the doubles really took
        hd = p - np.diagonal(points[:, k:])
        values = None
        if batch is not None and k:
            try:
                values = np.broadcast_to(np.asarray(batch(points), dtype=float), (n, 2 * k))
            except Exception:  # not vectorisable over parameters: one point at a time
                values = None
        if values is None:
            values = np.empty((n, 2 * k))
            for j in range(2 * k):
                values[:, j] = np.asarray(model(points[:, j]), dtype=float).ravel()
        fu, fd = values[:, :k], values[:, k:]
        jac = (fu - fd) / (hu + hd)
        bad = ~np.isfinite(jac)
        if bad.any():
            one_sided = np.where(np.isfinite(fu), (fu - f0[:, None]) / hu, (f0[:, None] - fd) / hd)
            jac = np.where(bad, one_sided, jac)
            jac[~np.isfinite(jac)] = np.nan
    return jac


def covariance(jac: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    """Covariance ``scale * pinv(J^T J)`` of the parameters of a least-squares fit.

    Parameters
    ----------
    jac : ndarray
        Jacobian of the *weighted* residuals ``(model - y) / sigma``, shape ``(n, k)``.
    scale : float
        ``1`` when the sigmas are absolute; the reduced chi-squared of the weighted
        residuals when they are relative weights (:func:`scipy.optimize.curve_fit`'s
        ``absolute_sigma=False``).

    Returns
    -------
    ndarray
        Shape ``(k, k)``.  The pseudo-inverse is taken by SVD of the Jacobian with its
        columns scaled to unit norm (so that the cutoff :data:`RCOND` does not depend on
        the units of each parameter); a parameter with a component along a direction
        below the cutoff (the data do not determine it, e.g. ``params[0]*params[1]*x``)
        has infinite variance, as have its covariances.  All ``nan`` if the Jacobian has
        a ``nan``.
    """
    jac = np.asarray(jac, dtype=float)
    n, k = jac.shape
    if math.isnan(scale):
        return np.full((k, k), np.nan)
    if scale == math.inf or k == 0 or n == 0:  # no degrees of freedom to scale with
        return np.full((k, k), np.inf)
    with np.errstate(all="ignore"):  # tiny or huge weights: variances may be 0 or inf
        norms = np.sqrt(np.einsum("ij,ij->j", jac, jac))
        if not np.isfinite(norms).all():
            if not np.isfinite(jac).all():
                return np.full((k, k), np.nan)
            top = np.max(np.abs(jac), axis=0)  # the squares overflowed: scale them first
            top[top == 0] = 1.0
            norms = top * np.sqrt(np.einsum("ij,ij->j", jac / top, jac / top))
        dead = norms == 0.0  # a parameter the model does not depend on
        any_dead = bool(dead.any())
        safe = np.where(dead, 1.0, norms) if any_dead else norms
        # Every right singular vector is needed, the null space of a short J included;
        # the full factors only for a short J (an n x n factor of a long one is huge).
        _, s, vt = np.linalg.svd(jac / safe, full_matrices=n < k)
        root = np.sqrt(scale) / safe  # the scale split so that the product overflows last
        if not any_dead and s.size == k and s[-1] > RCOND * s[0]:  # full rank: all kept
            w = vt / s[:, None]
            return (w.T @ w) * np.outer(root, root)
        keep = np.zeros(k, dtype=bool)
        if s.size and s[0] > 0:
            keep[: s.size] = s > RCOND * s[0]
        v = vt.T
        inner = (v[:, keep] / s[keep[: s.size]] ** 2) @ v[:, keep].T
        cov = inner * np.outer(root, root)
        null = v[:, ~keep]
        lost = dead | (np.einsum("ij,ij->i", null, null) > _NULL_COMPONENT**2)
    cov[lost, :] = np.inf
    cov[:, lost] = np.inf
    return cov


@dataclass(frozen=True)
class FitStatistics:
    """What :func:`fit_statistics` found at the end of a fit (fields of ``FitResult``)."""

    ok: bool
    note: str
    nchi2: float
    chi2: float
    dof: int
    covariance: np.ndarray | None
    description_length: float


def fit_statistics(
    model: Callable[[np.ndarray], np.ndarray],
    y: np.ndarray,
    p: np.ndarray,
    *,
    weight: np.ndarray,
    sigma: np.ndarray | None,
    absolute_sigma: bool,
    noise: float,
    alpha: float,
    eps: float,
    scale: np.ndarray,
    deadline: float,
    structure: Callable[[], tuple[int, int, float]],
    batch: Callable[[np.ndarray], np.ndarray] | None = None,
) -> FitStatistics:
    """The statistics of a fit that ended at ``p``.

    Parameters
    ----------
    model : callable
        ``model(p) -> ndarray`` with the shape of ``y`` (may raise).
    y : ndarray
        The data.
    p : ndarray
        The fitted parameters (``nan`` for a fit that found no finite point).
    weight : ndarray
        The weights the fit minimised with (``1/sigma``, or ``1/nchi2_scale(y)``).
    sigma : ndarray or None
        The given error bars; ``chi2`` uses them, else ``noise`` for every point.
    absolute_sigma : bool
        Leave the covariance unscaled (only with ``sigma``).
    noise : float
        The noise level of ``chi2`` when ``sigma`` is None.
    alpha, eps : float
        Parameters of the nchi2 score.
    scale : ndarray
        ``nchi2_scale(y, alpha=alpha, eps=eps)``, already computed by the caller.
    deadline : float
        :func:`time.perf_counter` value beyond which the ``2 * len(p)`` evaluations of the
        Jacobian are not started (measured by the cost of one evaluation).
    structure : callable
        ``structure() -> (node count, node kinds)`` of the formula, called only for a
        successful fit whose Jacobian is known (it may go through sympy).
    batch : callable, optional
        The model at many parameter vectors at once (see :func:`jacobian`).

    Returns
    -------
    FitStatistics
        ``ok`` False with ``inf`` scores for a non-finite fit; ``note`` is appended to the
        fit's message.
    """
    k = p.size
    dof = int(y.size) - k
    failed = FitStatistics(False, "", math.inf, math.inf, dof, None, math.inf)
    if not np.all(np.isfinite(p)):
        return failed
    t_eval = time.perf_counter()
    yhat = np.asarray(model(p), dtype=float)
    t_eval = time.perf_counter() - t_eval
    if yhat.shape != y.shape:
        yhat = np.broadcast_to(yhat, y.shape)
    # nchi2(y, yhat) with the scale the caller has: the same operations, so the same
    # value to the bit; nchi2 itself where anything is not finite (its overflow guards).
    with np.errstate(all="ignore"):
        rn = (y - yhat) / scale
        value = float(np.mean(rn * rn))
    if not math.isfinite(value):
        value = nchi2(y, yhat, alpha=alpha, eps=eps)
        if not math.isfinite(value):
            return failed
    with np.errstate(all="ignore"):  # overflow gives inf chi2 or variances: no warning
        r = yhat - y
        rs = r / sigma if sigma is not None else r / noise
        chi2 = float(rs @ rs)
        chi2 = chi2 if math.isfinite(chi2) else math.inf
        cov, fisher, note = None, np.full(k, np.nan), ""
        if k and time.perf_counter() + 2 * k * t_eval > deadline:
            note = "; no covariance: the time budget is spent"
        elif k:
            try:
                jac = jacobian(model, p, yhat, batch=batch)
            except Exception:  # the model raised near the optimum: no errors, no failure
                log.debug("the jacobian failed", exc_info=True)
                note = "; no covariance: the model raised near the optimum"
            else:
                jw = jac * weight[:, None]
                if sigma is not None and absolute_sigma:
                    factor = 1.0
                else:  # curve_fit's convention: the weights are relative, residuals scale
                    rw = r * weight
                    factor = float(rw @ rw) / dof if dof > 0 else math.inf
                cov = covariance(jw, scale=factor)
                # The Fisher matrix of chi2 / 2 with the noise chi2 used (not rescaled).
                if sigma is not None:
                    fisher = np.einsum("ij,ij->j", jw, jw)
                else:
                    jn = jac / noise
                    fisher = np.einsum("ij,ij->j", jn, jn)
        else:
            cov = np.empty((0, 0))
    dl = math.nan
    if not np.isnan(fisher).any():  # else nan anyway: skip the structure (maybe sympy)
        complexity, n_op, numbers = structure()
        dl = description_length(chi2, complexity, n_op, fisher, p, number_cost=numbers)
    return FitStatistics(True, note, value, chi2, dof, cov, dl)


def _digits(value: float, error: float, precision: int | None) -> tuple[int, bool]:
    """(significant digits, whether the error decided them)."""
    fallback = DEFAULT_PRECISION if precision is None else int(precision)
    v, e = abs(float(value)), float(error)
    if not (math.isfinite(v) and math.isfinite(e)) or e <= 0 or v == 0:
        return fallback, False
    if e < EXACT_RELATIVE_ERROR * v:
        return fallback, False
    digits = max(math.floor(math.log10(v)) - math.floor(math.log10(e)) + 2, 1)
    if precision is not None and digits > precision:
        return int(precision), False
    return digits, True


def significant_digits(value: float, error: float, *, precision: int | None = None) -> int:
    """Significant digits of ``value`` that its standard error ``error`` justifies.

    Two significant digits of the error (``1.23456 +- 0.0123`` -> 4 digits: ``1.235``),
    never fewer than one, never more than ``precision`` (when given).  An error that is
    not finite, not positive, or below :data:`EXACT_RELATIVE_ERROR` of the value (an
    exact fit's rounding) says nothing: ``precision`` digits, or
    :data:`DEFAULT_PRECISION`.
    """
    return _digits(value, error, precision)[0]


def format_value(
    value: float,
    error: float = math.nan,
    *,
    precision: int | None = None,
    show_error: bool = False,
) -> str:
    """``value`` written with :func:`significant_digits` digits (``%g`` style).

    Where the error decided the digits, trailing zeros are kept (``2.000`` says the
    value is known to a thousandth); otherwise they are dropped (``2``, ``0.5``).  With
    ``show_error``, a finite error follows to two digits: ``1.235 ± 0.012``.
    """
    digits, justified = _digits(value, error, precision)
    if not justified:
        text = f"{float(value):.{digits}g}"
    else:
        mantissa, e, exponent = f"{float(value):#.{digits}g}".partition("e")
        text = mantissa.rstrip(".") + e + exponent
    return f"{text} ± {error:.2g}" if show_error and math.isfinite(error) else text
