"""The normalized chi-squared score and the fitting of ansatz parameters.

The score (Harvey et al., arXiv 2505.07956) is

.. math::

    n\\chi^2 = \\frac{1}{N}\\sum_i \\frac{(y_i - \\hat y_i)^2}{\\max(g, \\alpha|y_i|)^2},
    \\qquad g = \\max(\\mathrm{MAD}(y), \\alpha\\,\\mathrm{mean}|y|, \\epsilon)

with :math:`\\alpha = 0.01`, :math:`\\epsilon = 10^{-4}`.  It is a weighted least-squares
objective, so parameters are fitted by minimising it directly with
:func:`scipy.optimize.least_squares` from several starts.  By the reference convention
``score = -nchi2`` (higher is better).

With error bars (``sigma=``) the objective is the chi-squared instead, weights
``1/sigma`` as in :func:`scipy.optimize.curve_fit`; ``nchi2`` stays the score of record
either way.  Every fit also reports its chi-squared against the noise level (given, or
estimated from the data by :func:`llmlex._noise.estimate_noise`), the covariance and
standard errors of its parameters, and a description length
(:mod:`llmlex._criterion`) that weighs the fit against the size of the formula.

For code written for the reference library, :func:`fit_curve` (and
:func:`fit_curve_with_guess`, :func:`get_n_chi_squared`,
:func:`get_n_chi_squared_from_predictions`) fit and score the caller's own Python
functions with the reference's signatures and return shapes (:mod:`llmlex._curve`).
"""

from __future__ import annotations

import ast
import logging
import math
import time
from collections.abc import Sequence

import numpy as np

from llmlex._curve import (
    fit_curve,
    fit_curve_with_guess,
    fit_curve_with_guess_jax,
    get_n_chi_squared,
    get_n_chi_squared_from_predictions,
)
from llmlex._fit_result import FitResult, Provenance
from llmlex._lsq import Objective, OutOfTime, minimise
from llmlex._noise import remembered_noise
from llmlex._score import ALPHA, EPS, decade, nchi2, nchi2_scale, r2, score
from llmlex._uncertainty import fit_statistics
from llmlex._validation import check_noise, check_sigma, check_xy
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import AnsatzTooComplexError

__all__ = [
    "ALPHA",
    "EPS",
    "FitResult",
    "Provenance",
    "fit_ansatz",
    "fit_curve",
    "fit_curve_with_guess",
    "fit_curve_with_guess_jax",
    "get_n_chi_squared",
    "get_n_chi_squared_from_predictions",
    "given_result",
    "nchi2",
    "nchi2_scale",
    "r2",
    "score",
]

log = logging.getLogger(__name__)

#: A fit at or below this nchi2 is exact to rounding: no further starts are tried.
EXACT_NCHI2 = 1e-16


def given_result(
    text: str,
    values: Sequence[float],
    x: np.ndarray,
    y: np.ndarray,
    *,
    noise: float | None = None,
    message: str = "given",
) -> FitResult:
    """An ansatz with the parameter values someone gave, scored on the data (nothing is
    fitted): a parent of the reference's ``function_list``.

    ``values`` are indexed as the text's ``params[i]``.

    Raises
    ------
    AnsatzError
        If the text does not parse (a ``ValueError``).
    ValueError
        If fewer values are given than the text uses.
    """
    compiled = parse_ansatz(text)
    values = [float(v) for v in np.ravel(np.asarray(values, dtype=float))]
    if compiled.n_params and len(values) <= max(compiled.source_indices):
        raise ValueError(
            f"{text[:80]!r} uses params[{max(compiled.source_indices)}] but "
            f"{len(values)} value(s) are given"
        )
    params = np.array([values[k] for k in compiled.source_indices], dtype=float)
    with np.errstate(all="ignore"):
        value = nchi2(y, compiled(x, params))
    return FitResult(
        ansatz=compiled.text,
        params=params,
        nchi2=value if math.isfinite(value) else math.inf,
        success=math.isfinite(value),
        message=message,
        compiled=compiled,
        noise=math.nan if noise is None else noise,
    )


def _random_start(rng: np.random.Generator, n: int, wide: bool) -> np.ndarray:
    lo, hi = (-2.0, 2.0) if wide else (-1.0, 1.0)
    return rng.choice([-1.0, 1.0], size=n) * 10.0 ** rng.uniform(lo, hi, size=n)


def fit_ansatz(
    ansatz: Ansatz | str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    sigma: float | Sequence[float] | np.ndarray | None = None,
    absolute_sigma: bool = False,
    noise: float | None = None,
    initial: Sequence[float] | None = None,
    n_starts: int = 8,
    pool_size: int = 256,
    max_nfev: int | None = None,
    timeout: float | None = 5.0,
    seed: int | np.random.Generator | None = 0,
    alpha: float = ALPHA,
    eps: float = EPS,
    validate: bool = True,
) -> FitResult:
    """Fit the parameters of an ansatz by minimising the normalized chi-squared, or the
    chi-squared when error bars are given.

    Starts, in order: ``initial`` (if given), all ones, then the best of ``pool_size``
    random log-uniform vectors of both signs (magnitudes in [0.1, 10] and [0.01, 100],
    plus jitters of the best point so far), ranked by their score without optimising.
    A start at which the ansatz is not finite on the data is replaced by the nearest
    random draw where it is.  The search stops early once a start is exact to rounding,
    or once five starts agree on the best minimum.

    Parameters
    ----------
    ansatz : Ansatz or str
        The ansatz; text is parsed with :func:`~llmlex.ansatz.parse_ansatz`.
    x, y : array_like
        The data.
    sigma : float or array_like, optional
        Standard deviations of ``y``: one for all points or one per point, positive and
        finite.  The fit then minimises the chi-squared ``sum(((y - f) / sigma)**2)``
        (weights ``1/sigma``, as :func:`scipy.optimize.curve_fit`); without it, the
        normalized chi-squared (weights ``1 / nchi2_scale(y)``).
    absolute_sigma : bool
        Take ``sigma`` as absolute standard deviations: the covariance is
        ``pinv(J^T J)`` unscaled.  Otherwise (and always without ``sigma``) it is scaled
        by the reduced chi-squared of the weighted residuals, so only the relative sizes
        of the weights matter (``curve_fit``'s convention).
    noise : float, optional
        The noise standard deviation of ``y`` for ``chi2`` when ``sigma`` is not given
        (ignored when it is).  By default it is estimated from the data with
        :func:`~llmlex._noise.estimate_noise` (remembered for the last 64 data sets); a
        caller fitting many ansätze to one data set may pass the estimate once.
    initial : sequence of float, optional
        A first start (e.g. values the language model suggested).
    n_starts : int
        Most optimiser starts.
    pool_size : int
        Random parameter vectors screened (by their score, without optimising) to choose
        the starts after ``initial`` and all-ones; 0 disables screening.
    max_nfev : int, optional
        Most ansatz evaluations per start (default ``100 * (n_params + 1)``).
    timeout : float or None
        Wall-time budget of the whole fit in seconds.  Every evaluation checks it (at most
        every 32 when evaluations are cheap), so a fit overruns it by about one evaluation.
        ``None``: no clock (the fit is bounded by ``max_nfev`` and its starts alone, and
        gives the same result under any load).
    seed : int, Generator or None
        Randomness of the starts.
    alpha, eps : float
        Parameters of the score.
    validate : bool
        Check ``x`` and ``y`` (set False when the caller already has).

    Returns
    -------
    FitResult
        Never raises for a fit that fails: ``success`` is False, ``nchi2``, ``chi2`` and
        ``description_length`` are ``inf`` and the covariance is ``nan``.  An exception
        of the ansatz or the optimiser is such a failure (named in ``message``); where
        the ansatz raises for some parameters only, it counts as undefined there.  The
        covariance costs ``2 * n_params`` evaluations at the optimum; if the time budget
        is spent and they would overrun it by more than a tenth, it is left ``nan`` (and
        the description length with it), and ``message`` says so.

    Raises
    ------
    AnsatzError
        If ``ansatz`` is text that does not parse.
    DataError
        If ``x``, ``y``, ``sigma`` or ``noise`` is unusable.
    """
    t0 = time.perf_counter()
    compiled = parse_ansatz(ansatz) if isinstance(ansatz, str) else ansatz
    if validate:
        x, y = check_xy(x, y, allow_constant=True)
    else:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    sig = None if sigma is None else check_sigma(sigma, y.size)
    if sig is not None:
        top = float(np.max(sig))  # the RMS of sigmas near 1e308 without overflow
        level = top * float(np.sqrt(np.mean((sig / top) ** 2)))
    else:
        level = check_noise(noise) if noise is not None else remembered_noise(x, y)
    try:
        return _fit(
            compiled,
            x,
            y,
            t0,
            sigma=sig,
            absolute_sigma=absolute_sigma,
            noise=level,
            initial=initial,
            n_starts=n_starts,
            pool_size=pool_size,
            max_nfev=max_nfev,
            timeout=timeout,
            seed=seed,
            alpha=alpha,
            eps=eps,
        )
    except Exception as err:  # one candidate's failure, never the caller's (a search goes on)
        log.debug("fit of %s failed", compiled.text, exc_info=True)
        return FitResult(
            ansatz=compiled.text,
            params=np.full(compiled.n_params, np.nan),
            nchi2=math.inf,
            success=False,
            message=f"fit failed: {type(err).__name__}: {str(err)[:200]}",
            time=time.perf_counter() - t0,
            compiled=compiled,
            noise=level,
            chi2=math.inf,
            dof=int(y.size) - compiled.n_params,
            description_length=math.inf,
        )


def _fit(
    compiled: Ansatz,
    x: np.ndarray,
    y: np.ndarray,
    t0: float,
    *,
    sigma: np.ndarray | None,
    absolute_sigma: bool,
    noise: float,
    initial: Sequence[float] | None,
    n_starts: int,
    pool_size: int,
    max_nfev: int | None,
    timeout: float | None,
    seed: int | np.random.Generator | None,
    alpha: float,
    eps: float,
) -> FitResult:
    """The search of :func:`fit_ansatz` on checked data (it may raise: the caller catches)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = compiled.n_params
    scale = nchi2_scale(y, alpha=alpha, eps=eps)
    # The score's absolute floor eps, in the units of y: on data of order 1e-9 it would
    # otherwise make every formula "exact" (nchi2 itself stays the reference score).
    unit = decade(y)
    weight_scale = scale if unit == 1.0 else nchi2_scale(y, alpha=alpha, eps=eps * unit)
    weight = 1.0 / weight_scale if sigma is None else 1.0 / sigma
    deadline = math.inf if timeout is None else t0 + timeout
    # fit statistics (covariance, structure) get a tenth of the budget more
    stats_deadline = math.inf if timeout is None else deadline + 0.1 * timeout
    # Every function of the language is elementwise, so the compiled closures evaluate
    # many parameter vectors at once: x as a column, each params[i] a row.
    batch = (lambda pts: compiled._func(x[:, None], pts)) if x.ndim == 1 else None

    def done(p: np.ndarray, msg: str, nfev: int, starts: int) -> FitResult:
        st = fit_statistics(
            lambda q: compiled(x, q), y, p, weight=weight, sigma=sigma,
            absolute_sigma=absolute_sigma, noise=noise, alpha=alpha, eps=eps, scale=scale,
            deadline=stats_deadline, structure=lambda: _structure(compiled),
            batch=batch,
        )  # fmt: skip
        return FitResult(
            ansatz=compiled.text,
            params=p,
            nchi2=st.nchi2,
            success=st.ok,
            message=msg + st.note if n or st.ok else "non-finite",
            nfev=nfev,
            n_starts=starts,
            time=time.perf_counter() - t0,
            compiled=compiled,
            noise=noise,
            chi2=st.chi2,
            dof=st.dof,
            covariance=st.covariance,
            description_length=st.description_length,
        )

    if n == 0:
        return done(np.empty(0), "no parameters", 1, 0)

    # With sigma the objective is chi2 / N, not nchi2; nchi2 >= min((sigma/scale)**2)
    # times it, so only a value that low can be an exact fit, then checked on nchi2.
    with np.errstate(over="ignore"):  # inf for huge sigma: no exact-fit shortcut then
        exact_factor = 1.0 if sigma is None else float(np.min((sigma / scale) ** 2))

    # The clock is read at most every 32 evaluations (it costs more than a cheap ansatz),
    # and at every one when an evaluation is slow (jv on a million points): every
    # evaluation, in screening and the finite-start search too, checks the deadline.
    objective = Objective(lambda p: compiled(x, p), y, weight, deadline=deadline, check_every=32)
    finite_at = objective.finite_at
    raw_residuals = objective.raw

    def find_finite(p0: np.ndarray) -> np.ndarray | None:
        if finite_at(p0):
            return p0
        for k in range(64):
            # First perturb the proposed start, then roam more widely.
            if k < 16:
                cand = p0 * 10.0 ** rng.uniform(-1, 1, n) * rng.choice([-1.0, 1.0], n)
            else:
                cand = _random_start(rng, n, wide=k >= 32)
            if finite_at(cand):
                return cand
        return None

    def screen_starts() -> list[np.ndarray]:
        # Multimodal objectives (frequencies, sums of exponentials) defeat local starts
        # drawn blindly.  Screening a few hundred random points costs about as much as
        # one local fit and sends the remaining starts into the most promising basins.
        half = pool_size // 2
        logs = np.concatenate(
            [rng.uniform(-1.0, 1.0, (half, n)), rng.uniform(-2.0, 2.0, (pool_size - half, n))]
        )
        points = rng.choice([-1.0, 1.0], size=logs.shape) * 10.0**logs
        if objective.best_p is not None and np.all(np.isfinite(objective.best_p)):
            jitter = 10.0 ** rng.uniform(-0.5, 0.5, size=(pool_size // 4, n))
            points = np.vstack([points, objective.best_p * jitter])
        values = np.empty(len(points))
        with np.errstate(all="ignore"):
            for k, pt in enumerate(points):
                r = raw_residuals(pt)  # raises OutOfTime at the deadline
                objective.nfev += 1
                values[k] = float(r @ r)
        values[~np.isfinite(values)] = np.inf
        order = [k for k in np.argsort(values, kind="stable") if np.isfinite(values[k])]
        # Greedy diversity: the best points often crowd one basin, so take each next
        # start only if it is apart from those already chosen (in signed-log coordinates).
        coords = np.sign(points) * np.log10(1.0 + np.abs(points))
        chosen: list[int] = []
        for k in order:
            if all(np.max(np.abs(coords[k] - coords[j])) > 0.15 for j in chosen):
                chosen.append(k)
            if len(chosen) >= n_starts:
                break
        return [points[k] for k in chosen]

    starts: list[np.ndarray] = []
    if initial is not None:
        init = np.asarray(initial, dtype=float).ravel()
        if init.size == n and np.all(np.isfinite(init)):
            starts.append(init)
    starts.append(np.ones(n))
    if unit != 1.0:  # y far from order one: a linear parameter is of its order
        starts.append(np.full(n, unit))
    budget = max_nfev if max_nfev is not None else 100 * (n + 1)
    tried = 0
    agree = 0
    message = "no start where the ansatz is finite on the data"
    pool: list[np.ndarray] | None = None
    try:
        while tried < n_starts:
            if tried < len(starts):
                p0 = starts[tried]
            else:
                if pool is None:
                    pool = screen_starts() if pool_size > 0 else []
                p0 = pool.pop(0) if pool else _random_start(rng, n, wide=tried >= 5)
            tried += 1
            p0 = find_finite(p0)
            if p0 is None:
                continue
            before = objective.best
            try:
                reached = minimise(objective, p0, max_nfev=budget)
                message = "converged"
            except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
                message = f"optimiser failed: {err}"
                continue
            if objective.best * exact_factor <= EXACT_NCHI2 and (
                sigma is None or nchi2(y, compiled(x, objective.best_p)) <= EXACT_NCHI2
            ):
                message = "exact fit"
                break
            # Five starts landing on the same best minimum: more are unlikely to help.
            if np.isfinite(before) and abs(reached - before) <= 1e-8 * before:
                agree += 1
                if agree >= 4:
                    break
            if time.perf_counter() > deadline:
                raise OutOfTime
    except OutOfTime:  # from any evaluation: a start, screening or the finite-start search
        message = f"time budget of {timeout:g} s spent"

    nfev = objective.nfev
    if objective.best_p is None or not np.isfinite(objective.best):
        if objective.error is not None:
            err = objective.error
            message += f" (the ansatz raised {type(err).__name__}: {str(err)[:200]})"
        return done(np.full(n, np.nan), message, nfev, tried)
    return done(objective.best_p, str(message), nfev, tried)


_STRUCTURES: dict[str, tuple[int, int]] = {}


def _structure(compiled: Ansatz) -> tuple[int, int, float]:
    """Node count, number of node kinds and the cost of the numbers of the ansatz (from
    its sympy form, else its syntax tree, numbers then free), remembered by text: the
    sympy conversion costs about as much as a fit, and the same forms are fitted again
    and again (every KAN edge, every seed)."""
    hit = _STRUCTURES.get(compiled.text)
    if hit is not None:
        return hit
    from llmlex._symbolic import number_cost, operator_kinds

    try:  # both sympy steps are work-bounded inside the Ansatz
        expr = compiled.sympy
        found = compiled.complexity, operator_kinds(expr), number_cost(expr)
    except AnsatzTooComplexError:  # no sympy form: the syntax tree, as complexity does
        kinds = len({type(n).__name__ for n in ast.walk(compiled._tree)})
        found = compiled.complexity, kinds, 0.0
    if len(_STRUCTURES) >= 4096:
        _STRUCTURES.clear()
    _STRUCTURES[compiled.text] = found
    return found
