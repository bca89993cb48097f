"""The normalized chi-squared score of arXiv 2505.07956 and the coefficient of determination.

Pure numpy functions of observed and predicted values, with no knowledge of ansätze or
results, so that every layer above (fitting, reports, the KAN pipeline) shares one score.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ALPHA", "EPS", "nchi2", "nchi2_scale", "r2", "score"]

#: Fraction of |y| below which the local scale does not shrink.
ALPHA = 0.01
#: Floor of the global scale.
EPS = 1e-4


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
    mad = float(np.median(np.abs(y - np.median(y))))
    g = max(mad, alpha * float(np.mean(abs_y)), eps)
    return np.maximum(g, alpha * abs_y)


def nchi2(y: np.ndarray, yhat: np.ndarray, *, alpha: float = ALPHA, eps: float = EPS) -> float:
    """Normalized chi-squared of predictions ``yhat`` against ``y`` (lower is better).

    Returns ``inf`` if any prediction is non-finite.

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
    with np.errstate(over="ignore"):
        r = (y - yhat) / nchi2_scale(y, alpha=alpha, eps=eps)
        value = float(np.mean(r * r))
    return value if np.isfinite(value) else float("inf")


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination of ``yhat`` against ``y``.

    ``-inf`` if a prediction is non-finite; for constant ``y``, 1 if exact, else ``-inf``.
    """
    y = np.asarray(y, dtype=float)
    yhat = np.broadcast_to(np.asarray(yhat, dtype=float), y.shape)
    if not np.all(np.isfinite(yhat)):
        return -math.inf
    ss = float(np.sum((y - np.mean(y)) ** 2))
    res = float(np.sum((y - yhat) ** 2))
    return 1.0 - res / ss if ss > 0 else (1.0 if res == 0 else -math.inf)


def score(y: np.ndarray, yhat: np.ndarray, *, alpha: float = ALPHA, eps: float = EPS) -> float:
    """The reference library's score, ``-nchi2`` (higher is better)."""
    return -nchi2(y, yhat, alpha=alpha, eps=eps)
