"""The normalized chi-squared score of arXiv 2505.07956 and the coefficient of determination.

Pure numpy functions of observed and predicted values, with no knowledge of ansätze or
results, so that every layer above (fitting, reports, the KAN pipeline) shares one score.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ALPHA", "EPS", "chi2", "decade", "nchi2", "nchi2_scale", "r2", "score"]

#: Fraction of |y| below which the local scale does not shrink.
ALPHA = 0.01
#: Floor of the global scale.
EPS = 1e-4


def decade(values: np.ndarray) -> float:
    """The power of ten that brings ``max|values|`` into ``[0.5, 5)`` (1 for all zeros).

    The unit of a data set, as far as scales go: fits use ``eps * decade(y)`` as the
    absolute floor of their weights, so that the floor means the same in any units
    (:mod:`llmlex._units` scales a search's data by it).
    """
    top = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if top == 0.0 or not math.isfinite(top):
        return 1.0
    # The decimal literal is exactly rounded (10.0 ** k need not be).
    return float(f"1e{math.floor(math.log10(2.0 * top))}")


def nchi2_scale(y: np.ndarray, *, alpha: float = ALPHA, eps: float = EPS) -> np.ndarray:
    """Per-point denominator ``max(g, alpha*|y_i|)`` of the normalized chi-squared.

    Parameters
    ----------
    y : ndarray
        Observed values.
    alpha, eps : float
        The relative floor and the absolute floor of the scale.

    Returns
    -------
    ndarray
        Positive scales with the shape of ``y``.
    """
    y = np.asarray(y, dtype=float)
    abs_y = np.abs(y)
    if not abs_y.size:
        return abs_y
    with np.errstate(over="ignore", invalid="ignore"):
        mad = float(np.median(np.abs(y - np.median(y))))
        mean = float(np.mean(abs_y))
    if not (math.isfinite(mad) and math.isfinite(mean)):
        # Near the top of the double range y - median and sum |y| overflow, and an
        # infinite scale would make every residual zero: a perfect score.  The same
        # statistics of y / top, scaled back, are finite (MAD <= max|y|).
        top = float(np.max(abs_y))
        u = y / top
        mad = float(np.median(np.abs(u - np.median(u)))) * top
        mean = float(np.mean(abs_y / top)) * top
    g = max(mad, alpha * mean, eps)
    return np.maximum(g, alpha * abs_y)


def nchi2(y: np.ndarray, yhat: np.ndarray, *, alpha: float = ALPHA, eps: float = EPS) -> float:
    """Normalized chi-squared of predictions ``yhat`` against ``y`` (lower is better).

    Returns ``inf`` if any prediction is non-finite or the score exceeds the doubles; it
    is computed without overflow for any finite data (values near ``1e308`` included).

    Examples
    --------
    >>> import numpy as np
    >>> nchi2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    0.0
    """
    y = np.asarray(y, dtype=float)
    yhat = np.broadcast_to(np.asarray(yhat, dtype=float), y.shape)
    if not np.all(np.isfinite(yhat)):
        return float("inf")
    scale = nchi2_scale(y, alpha=alpha, eps=eps)
    with np.errstate(over="ignore", invalid="ignore"):
        r = (y - yhat) / scale
        if not np.all(np.isfinite(r)):  # y - yhat overflowed: divide first
            r = y / scale - yhat / scale
        value = float(np.mean(r * r))
        if not math.isfinite(value) and np.all(np.isfinite(r)):  # the squares overflowed
            top = float(np.max(np.abs(r)))
            value = float(np.mean((r / top) ** 2)) * top * top  # inf only if truly so
    return value if math.isfinite(value) else float("inf")


def chi2(y: np.ndarray, yhat: np.ndarray, sigma: np.ndarray | float) -> float:
    """Chi-squared ``sum(((y - yhat) / sigma)**2)`` of predictions against data with error bars.

    Parameters
    ----------
    y, yhat : ndarray
        Observed and predicted values.
    sigma : ndarray or float
        Standard deviations of ``y`` (positive; validated by the caller).

    Returns
    -------
    float
        ``inf`` if any prediction is non-finite or the sum exceeds the doubles.

    Examples
    --------
    >>> import numpy as np
    >>> chi2(np.array([1.0, 2.0]), np.array([1.5, 2.0]), 0.5)
    1.0
    """
    y = np.asarray(y, dtype=float)
    yhat = np.broadcast_to(np.asarray(yhat, dtype=float), y.shape)
    if not np.all(np.isfinite(yhat)):
        return float("inf")
    with np.errstate(over="ignore", invalid="ignore"):
        r = (y - yhat) / sigma
        if not np.all(np.isfinite(r)):  # y - yhat overflowed: divide first
            r = y / sigma - yhat / sigma
        value = float(np.sum(r * r))
    return value if math.isfinite(value) else float("inf")


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination of ``yhat`` against ``y``.

    ``-inf`` if a prediction is non-finite; for constant ``y``, 1 if exact, else ``-inf``.
    """
    y = np.asarray(y, dtype=float)
    yhat = np.broadcast_to(np.asarray(yhat, dtype=float), y.shape)
    if not np.all(np.isfinite(yhat)):
        return -math.inf
    with np.errstate(over="ignore", invalid="ignore"):
        ss = float(np.sum((y - np.mean(y)) ** 2))
        res = float(np.sum((y - yhat) ** 2))
        if not (math.isfinite(ss) and math.isfinite(res)):
            # Squares of values beyond ~1e154 overflow; the ratio does not change when
            # both are divided by the largest magnitude.
            top = max(float(np.max(np.abs(y))), float(np.max(np.abs(yhat))))
            ys, hs = y / top, yhat / top
            ss = float(np.sum((ys - np.mean(ys)) ** 2))
            res = float(np.sum((ys - hs) ** 2))
    return 1.0 - res / ss if ss > 0 else (1.0 if res == 0 else -math.inf)


def score(y: np.ndarray, yhat: np.ndarray, *, alpha: float = ALPHA, eps: float = EPS) -> float:
    """The reference library's score, ``-nchi2`` (higher is better)."""
    return -nchi2(y, yhat, alpha=alpha, eps=eps)
