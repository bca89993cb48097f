"""Validation of user data: every public entry point goes through :func:`check_xy`."""

from __future__ import annotations

import numpy as np

from llmlex.exceptions import DataError

__all__ = [
    "LARGEST",
    "MIN_POINTS",
    "SMALLEST",
    "check_magnitude",
    "check_noise",
    "check_sample_weight",
    "check_sigma",
    "check_xy",
]

#: Fewest data points a regression accepts.
MIN_POINTS = 5
#: Largest magnitudes accepted: beyond, products of the data overflow (or lose digits
#: to subnormal numbers) before any law can be fitted.
SMALLEST, LARGEST = 1e-300, 1e300


def check_magnitude(
    values: np.ndarray, name: str, *, smallest: float = SMALLEST, largest: float = LARGEST
) -> None:
    """Raise :class:`DataError` if the largest ``|values|`` (finite, validated) is
    outside ``[smallest, largest]`` (all zeros pass): the message says to rescale."""
    top = float(np.max(np.abs(values)))
    if top != 0.0 and not smallest <= top <= largest:
        raise DataError(
            f"the largest |{name}| is {top:.3g}, outside [{smallest:g}, {largest:g}]: "
            f"rescale {name} (change its units) so that its values are nearer 1"
        )


def _as_1d(name: str, values: object) -> np.ndarray:
    if isinstance(values, np.ndarray) and np.iscomplexobj(values):
        # numpy would drop the imaginary parts with a warning.
        if np.any(values.imag != 0):
            raise DataError(f"{name} must be real, got complex values")
        values = values.real
    try:
        arr = np.asarray(values, dtype=float)
    except OverflowError as err:  # Python ints (or Fractions) beyond the doubles
        raise DataError(
            f"{name} holds a number too large for a float (beyond ~1.8e308): {err}"
        ) from None
    except (TypeError, ValueError, RecursionError) as err:
        raise DataError(f"{name} must be numeric: {err}") from err
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()  # a column or row vector is unambiguous
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.flatnonzero(bad)
        kind = "NaN" if np.isnan(arr[idx[0]]) else "inf"
        raise DataError(
            f"{name} contains {bad.sum()} non-finite value(s) ({kind} at index {idx[0]}); "
            "drop or impute them first"
        )
    return arr


def check_xy(
    x: object, y: object, *, min_points: int = MIN_POINTS, allow_constant: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert univariate data.

    Parameters
    ----------
    x, y : array_like
        Abscissae and ordinates, one-dimensional (column vectors are accepted).
    min_points : int
        Fewest points accepted.
    allow_constant : bool
        Accept a constant ``y`` (a KAN edge may legitimately be constant).

    Returns
    -------
    x, y : ndarray
        Float64 copies.

    Raises
    ------
    DataError
        Naming the problem: non-numeric, not 1-D, NaN/inf, length mismatch, too few
        points, constant ``y`` or constant ``x``.
    """
    xa = _as_1d("x", x)
    ya = _as_1d("y", y)
    if xa.shape != ya.shape:
        raise DataError(f"x and y differ in length: {xa.size} != {ya.size}")
    if xa.size < min_points:
        raise DataError(f"need at least {min_points} data points, got {xa.size}")
    with np.errstate(over="ignore"):  # the range of values near 1e308 overflows to inf
        constant_x, constant_y = np.ptp(xa) == 0, np.ptp(ya) == 0
    if constant_x:
        raise DataError("x is constant: there is no function of x to find")
    if not allow_constant and constant_y:
        raise DataError(f"y is constant ({ya[0]!r}): there is no function of x to find")
    return xa.copy(), ya.copy()


def check_sigma(sigma: object, n: int) -> np.ndarray:
    """Validate error bars: a scalar or one per point, positive and finite.

    Parameters
    ----------
    sigma : float or array_like
        Standard deviations of the ``y`` values.
    n : int
        Number of data points.

    Returns
    -------
    ndarray
        ``n`` float64 values (a scalar is repeated).

    Raises
    ------
    DataError
        Naming the problem: non-numeric, wrong length, non-finite, zero or negative.
    """
    if np.ndim(sigma) == 0:
        try:
            value = float(sigma)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError) as err:
            raise DataError(f"sigma must be a number or one per point: {err}") from None
        arr = np.full(n, value)
    else:
        arr = _as_1d("sigma", sigma)
        if arr.size != n:
            raise DataError(f"sigma has {arr.size} values for {n} data points")
    if not np.all(np.isfinite(arr)):
        raise DataError("sigma must be finite")
    bad = arr <= 0
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"sigma must be positive: {bad.sum()} value(s) <= 0 (first {arr[k]!r} at index {k})"
        )
    return arr


def check_noise(noise: object) -> float:
    """Validate a noise level: a positive finite number (raises :class:`DataError`)."""
    try:
        value = float(noise)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as err:
        raise DataError(f"noise must be a number: {err}") from None
    if not (np.isfinite(value) and value > 0):
        raise DataError(f"noise must be positive and finite, got {value!r}")
    return value


def check_sample_weight(sample_weight: object, n: int, *, min_positive: int) -> np.ndarray | None:
    """Validated weights: ``n`` finite non-negative floats, ``min_positive`` of them nonzero.

    A scalar is the same weight for every sample.  Raises :class:`DataError` (a
    ``ValueError``) naming the problem (scikit-learn's checks expect "zero" and "weight"
    in the all-zero message).
    """
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"sample_weight must be numbers: {err}") from None
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise DataError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataError("sample_weight must be finite and non-negative")
    positive = int(np.count_nonzero(w))
    if positive == 0:
        raise DataError("sample_weight is zero for every sample")
    if positive < min_positive:
        raise DataError(
            f"sample_weight leaves {positive} samples of nonzero weight; "
            f"at least {min_positive} are needed"
        )
    return w
