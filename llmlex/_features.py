"""Cheap features of univariate data that steer the offline proposer.

A language model looks at a plot and sees "periodic", "decays", "a power law"; these are
the numerical stand-ins: periodicity from a Lomb-Scargle periodogram (the samples need not
be evenly spaced), monotonicity, linearity in log-log and semi-log axes, symmetry about
``x = 0``, curvature, sign and domain.  Everything here costs well under a millisecond
per feature on the data sizes the search sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DataFeatures", "compute_features"]


@dataclass(frozen=True)
class DataFeatures:
    """What the data look like.

    Attributes
    ----------
    xmin, xmax : float
        Range of ``x``.
    x_positive, x_nonnegative : bool
        Domain of ``x`` (decides whether ``log(x)``, ``x**p``, ``sqrt(x)`` are usable).
    y_positive, y_negative : bool
        Sign of ``y`` everywhere.
    monotone : int
        +1 increasing, -1 decreasing, 0 neither (on the sorted samples, ignoring ties).
    even, odd : bool
        Whether ``y(-x)`` matches ``y(x)`` (resp. ``-y(x)``) on a symmetric range.
    periodic : bool
        Whether a sinusoid explains most of the detrended signal over at least one period.
    frequencies : tuple of float
        Angular frequencies of the strongest periodogram peaks, strongest first.
    loglog_slope : float or None
        Slope of ``log|y|`` against ``log x`` when that line explains the data (power law).
    semilog_slope : float or None
        Slope of ``log|y|`` against ``x`` when that line explains the data (exponential).
    ylogx_linear : bool
        Whether ``y`` is linear in ``log x`` (logarithm).
    poly_degree : int or None
        Smallest polynomial degree (<= 6) that fits to rounding, if any.
    curvature : int
        Sign of the mean second derivative (+1 convex, -1 concave, 0 mixed).
    spiky : bool
        Whether a few points dwarf the rest (a pole or a steep asymptote).
    """

    xmin: float
    xmax: float
    x_positive: bool
    x_nonnegative: bool
    y_positive: bool
    y_negative: bool
    monotone: int
    even: bool
    odd: bool
    periodic: bool
    frequencies: tuple[float, ...]
    loglog_slope: float | None
    semilog_slope: float | None
    ylogx_linear: bool
    poly_degree: int | None
    curvature: int
    spiky: bool


def _r2(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """R² of the straight-line fit of b on a, with the slope and intercept."""
    if a.size < 3 or np.ptp(a) == 0:
        return 0.0, 0.0, 0.0
    slope, icpt = np.polyfit(a, b, 1)
    res = b - (slope * a + icpt)
    tot = float(np.sum((b - b.mean()) ** 2))
    r2 = 1.0 - float(res @ res) / tot if tot > 0 else 0.0
    return r2, float(slope), float(icpt)


def _symmetry(x: np.ndarray, y: np.ndarray, sign: float) -> bool:
    """Whether y(-x) ≈ sign*y(x), comparing against linear interpolation on the mirror."""
    lo, hi = max(x.min(), -x.max()), min(x.max(), -x.min())
    if hi - lo < 0.5 * np.ptp(x):  # not enough of the range is mirrored
        return False
    inside = (x >= lo) & (x <= hi) & (np.abs(x) > 1e-12)
    if inside.sum() < 4:
        return False
    mirrored = np.interp(-x[inside], x, y)
    scale = max(float(np.ptp(y)), 1e-12)
    return float(np.median(np.abs(mirrored - sign * y[inside]))) < 0.03 * scale


def _periodogram(x: np.ndarray, y: np.ndarray) -> tuple[bool, tuple[float, ...]]:
    """Strong peaks of the Lomb-Scargle periodogram of the detrended data."""
    from scipy.signal import lombscargle

    span = float(np.ptp(x))
    n = x.size
    if n < 8 or span <= 0:
        return False, ()
    resid = y - np.polyval(np.polyfit(x, y, 2), x)
    if np.std(resid) <= 0.05 * np.std(y):  # nothing left once the trend is removed
        return False, ()
    # From half a period over the range up to the (average) Nyquist frequency.
    w = np.linspace(math.pi / span, math.pi * n / span, 400)
    power = lombscargle(x, resid - resid.mean(), w, normalize=True)
    order = np.argsort(power)[::-1]
    peaks: list[float] = []
    for k in order:
        if len(peaks) == 3 or power[k] < 0.3:
            break
        if all(abs(w[k] - p) > 2 * math.pi / span for p in peaks):
            peaks.append(float(w[k]))
    best = float(power[order[0]])
    crossings = int(np.sum(np.diff(np.sign(resid[np.argsort(x)])) != 0))
    periodic = best > 0.6 and bool(peaks) and peaks[0] * span / (2 * math.pi) >= 1.5
    periodic = periodic and crossings >= 4
    return periodic, tuple(peaks)


def compute_features(x: np.ndarray, y: np.ndarray) -> DataFeatures:
    """Compute the :class:`DataFeatures` of finite 1-D data ``x``, ``y``.

    Parameters
    ----------
    x, y : ndarray
        The data (same length, finite).

    Returns
    -------
    DataFeatures
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    dy = np.diff(ys)
    dy = dy[np.abs(dy) > 1e-12 * max(1.0, float(np.ptp(y)))]
    monotone = 0
    if dy.size and np.all(dy > 0):
        monotone = 1
    elif dy.size and np.all(dy < 0):
        monotone = -1

    x_pos = bool(np.all(x > 0))
    y_pos, y_neg = bool(np.all(y > 0)), bool(np.all(y < 0))
    loglog = semilog = None
    ylogx = False
    if y_pos or y_neg:
        ly = np.log(np.abs(y))
        if x_pos:
            r2, slope, _ = _r2(np.log(x), ly)
            if r2 > 0.995:
                loglog = slope
        r2, slope, _ = _r2(x, ly)
        if r2 > 0.995:
            semilog = slope
    if x_pos:
        ylogx = _r2(np.log(x), y)[0] > 0.995

    poly_degree = None
    scale = max(float(np.median(np.abs(y - np.median(y)))), 1e-12)
    for d in range(1, 7):
        if x.size <= d + 2:
            break
        res = y - np.polyval(np.polyfit(x, y, d), x)
        if float(np.sqrt(np.mean(res**2))) < 1e-9 * scale:
            poly_degree = d
            break

    curvature = 0
    if xs.size >= 5:
        d2 = np.diff(np.diff(ys) / np.maximum(np.diff(xs), 1e-300))
        if np.mean(d2 > 0) > 0.8:
            curvature = 1
        elif np.mean(d2 < 0) > 0.8:
            curvature = -1

    med = float(np.median(np.abs(y - np.median(y))))
    spiky = bool(np.max(np.abs(y - np.median(y))) > 30 * max(med, 1e-12))
    periodic, freqs = _periodogram(xs, ys)
    return DataFeatures(
        xmin=float(x.min()),
        xmax=float(x.max()),
        x_positive=x_pos,
        x_nonnegative=bool(np.all(x >= 0)),
        y_positive=y_pos,
        y_negative=y_neg,
        monotone=monotone,
        even=_symmetry(xs, ys, 1.0),
        odd=_symmetry(xs, ys, -1.0),
        periodic=periodic,
        frequencies=freqs,
        loglog_slope=loglog,
        semilog_slope=semilog,
        ylogx_linear=ylogx,
        poly_degree=poly_degree,
        curvature=curvature,
        spiky=spiky,
    )
