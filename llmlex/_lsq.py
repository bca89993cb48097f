"""The one least-squares engine: weighted residuals, best point kept, deadline, local solver.

Both the univariate fit (:func:`llmlex.fit.fit_ansatz`) and the refit of a multivariate
formula's constants (:func:`llmlex._kan_sympy.fit_constants`) minimise
``sum(((model(p) - y) * weight)**2)``.  They share :class:`Objective`, which

- keeps the best point *ever evaluated*, not only where the optimiser stops (MINPACK can
  wander off a good point when the model is undefined nearby);
- steers the optimiser away from where the model is undefined or overflows, by capping
  non-finite residuals;
- stops the optimiser at a wall-clock deadline by raising :class:`OutOfTime` from inside
  the residual function (the caller keeps the best point), reading the clock as often as
  the cost of an evaluation warrants: every call once one evaluation is slow;
- treats a model that raises (any ``Exception``) like one that is undefined there: its
  residuals are nan and the first such error is kept in :attr:`Objective.error`;

and :func:`minimise`, one local solve: MINPACK's Levenberg-Marquardt
(:func:`scipy.optimize.leastsq`, the least per-call overhead: its finite differences run
in compiled code) for up to :data:`LM_MAX_PARAMS` parameters with at least as many
residuals, else the trust-region solver of :func:`scipy.optimize.least_squares`.

Why not MINPACK for many parameters: scipy's MINPACK (1.17, measured here) gives results
that depend on the contents of freed heap memory when the Jacobian is (nearly) rank
deficient -- the same problem from the same start ends at a different point after other
work in the process has left NaN bit patterns in the heap (reproduced with glibc's
``MALLOC_PERTURB_`` on a seven-constant numpy model, two of them redundant).  Formulas with
dozens of constants (assembled KAN edges) are nearly rank deficient as a rule, and their
refits decided which formula a seeded run returned; the trust-region solver (an SVD per
step) gives the same point whatever the heap holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from scipy.optimize import least_squares, leastsq

__all__ = ["CLOCK_PERIOD", "LM_MAX_PARAMS", "RESIDUAL_CAP", "Objective", "OutOfTime", "minimise"]

#: Non-finite residuals are replaced by this (and the others clipped to it) so that the
#: optimiser's squares never overflow.
RESIDUAL_CAP = 1e10
_EPS = float(np.finfo(float).eps)
#: Most parameters fitted by MINPACK's Levenberg-Marquardt; more go to the trust-region
#: solver, whose result does not depend on the heap (see the module docstring).
LM_MAX_PARAMS = 10
#: The deadline is checked about this often (seconds): every ``check_every`` evaluations
#: for cheap models, every evaluation for models slower than this.
CLOCK_PERIOD = 2e-3


class OutOfTime(Exception):
    """Raised inside the residual function when the deadline has passed."""


class Objective:
    """Weighted residuals ``(model(p) - y) * weight`` that remember the best point.

    Parameters
    ----------
    model : callable
        ``model(p) -> ndarray`` broadcastable to ``y.shape`` (may be non-finite).
    y, weight : ndarray
        Targets and per-point weights (``1 / sigma``).
    deadline : float, optional
        A :func:`time.perf_counter` value after which a call raises :class:`OutOfTime`.
    check_every : int
        Check the clock at most every this many evaluations (the clock costs more than a
        cheap model); fewer when evaluations are slow, so that the deadline is checked
        about every :data:`CLOCK_PERIOD` seconds, or at every evaluation.
    after_finite : bool
        Raise :class:`OutOfTime` only once a finite point is known (a refit that starts
        from a good point must at least evaluate it).

    Attributes
    ----------
    best : float
        Lowest mean squared weighted residual seen (``inf`` if none was finite).
    best_p : ndarray or None
        Where it was seen.
    nfev : int
        Evaluations of the model.
    error : Exception or None
        The first exception the model raised (its residuals were taken as nan).
    """

    def __init__(
        self,
        model: Callable[[np.ndarray], np.ndarray],
        y: np.ndarray,
        weight: np.ndarray | float,
        *,
        deadline: float | None = None,
        check_every: int = 1,
        after_finite: bool = False,
    ) -> None:
        self.model = model
        self.y = y
        self.weight = weight
        self.m = int(y.size)
        self.deadline = deadline
        self.check_every = max(int(check_every), 1)
        self.after_finite = after_finite
        self.best = math.inf
        self.best_p: np.ndarray | None = None
        self.nfev = 0
        self.error: Exception | None = None
        self._every = 1  # evaluations between clock reads, adapted to their cost
        self._since = 0
        self._last: float | None = None

    def _check_deadline(self) -> None:
        """Raise :class:`OutOfTime` past the deadline (reading the clock when due)."""
        if self.deadline is None:
            return
        self._since += 1
        if self._since < self._every:
            return
        now = time.perf_counter()
        if self._last is not None:
            per_eval = (now - self._last) / self._since
            fit = int(CLOCK_PERIOD / per_eval) if per_eval > 0 else self.check_every
            self._every = max(1, min(self.check_every, fit))
        self._last, self._since = now, 0
        if now > self.deadline and (not self.after_finite or self.best < math.inf):
            raise OutOfTime

    def _weighted(self, p: np.ndarray) -> np.ndarray:
        try:
            with np.errstate(all="ignore"):  # overflow is expected far from the optimum
                r = (np.asarray(self.model(p), dtype=float) - self.y) * self.weight
            return np.broadcast_to(r, self.y.shape)
        except Exception as err:  # a model that raises here is undefined here
            if self.error is None:
                self.error = err
            return np.full(self.y.shape, np.nan)

    def raw(self, p: np.ndarray) -> np.ndarray:
        """Weighted residuals at ``p`` as they are (may be non-finite); not counted.

        Deadline-checked like every evaluation.
        """
        self._check_deadline()
        return self._weighted(p)

    def finite_at(self, p: np.ndarray) -> bool:
        """Whether every residual is finite at ``p`` (one evaluation, deadline-checked)."""
        self._check_deadline()
        self.nfev += 1
        return bool(np.all(np.isfinite(self._weighted(p))))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Residuals for the optimiser: recorded, capped where non-finite, deadline-checked."""
        self._check_deadline()
        self.nfev += 1
        r = self._weighted(p)
        with np.errstate(all="ignore"):
            value = float(r @ r) / self.m  # nan or inf when anything is non-finite
        if value < self.best:
            self.best, self.best_p = value, np.array(p, dtype=float)
        elif not math.isfinite(value):
            r = np.where(np.isfinite(r), np.clip(r, -RESIDUAL_CAP, RESIDUAL_CAP), RESIDUAL_CAP)
        return r


def minimise(
    objective: Objective,
    p0: np.ndarray,
    *,
    max_nfev: int,
    ftol: float = 1e-12,
    xtol: float = 1e-12,
) -> float:
    """One local minimisation from ``p0``; the mean squared residual where it stopped.

    Raises :class:`OutOfTime` (from the objective) at the deadline, and lets scipy's
    ``ValueError`` / ``LinAlgError`` through: the caller decides what a failed start costs.
    """
    p0 = np.asarray(p0, dtype=float)
    with np.errstate(all="ignore"):
        if objective.m >= p0.size and p0.size <= LM_MAX_PARAMS:
            # full_output: MINPACK reports a spent budget in its return, not as a warning.
            p, *_ = leastsq(objective, p0, full_output=True, maxfev=max_nfev, ftol=ftol, xtol=xtol)
        elif objective.m >= p0.size:
            # Scaled by the Jacobian's columns, as MINPACK scales; no gradient test (as
            # MINPACK is called): ftol and xtol decide.  Its max_nfev does not count the
            # finite-difference evaluations, MINPACK's maxfev does: the same bound on work.
            p = least_squares(
                objective,
                p0,
                method="trf",
                max_nfev=max(1, max_nfev // (p0.size + 1)),
                ftol=max(ftol, _EPS),
                xtol=max(xtol, _EPS),
                gtol=None,
                x_scale="jac",
            ).x
        else:
            p = least_squares(objective, p0, method="trf", max_nfev=max_nfev).x
        r = objective(np.asarray(p, dtype=float))
    return float(r @ r) / objective.m
