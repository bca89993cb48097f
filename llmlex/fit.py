"""The normalized chi-squared score and the fitting of ansatz parameters.

The score (Harvey et al., arXiv 2505.07956) is

.. math::

    n\\chi^2 = \\frac{1}{N}\\sum_i \\frac{(y_i - \\hat y_i)^2}{\\max(g, \\alpha|y_i|)^2},
    \\qquad g = \\max(\\mathrm{MAD}(y), \\alpha\\,\\mathrm{mean}|y|, \\epsilon)

with :math:`\\alpha = 0.01`, :math:`\\epsilon = 10^{-4}`.  It is a weighted least-squares
objective, so parameters are fitted by minimising it directly with
:func:`scipy.optimize.least_squares` from several starts.  By the reference convention
``score = -nchi2`` (higher is better).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmlex._jsonio import decode_float, encode_float
from llmlex._lsq import Objective, OutOfTime, minimise
from llmlex._report import report_html
from llmlex._score import ALPHA, EPS, nchi2, nchi2_scale, r2, score
from llmlex._validation import check_xy
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import AnsatzError, AnsatzTooComplexError, PersistError

if TYPE_CHECKING:
    import sympy

__all__ = [
    "ALPHA",
    "EPS",
    "FitResult",
    "fit_ansatz",
    "nchi2",
    "nchi2_scale",
    "r2",
    "score",
]

log = logging.getLogger(__name__)

#: A fit at or below this nchi2 is exact to rounding: no further starts are tried.
EXACT_NCHI2 = 1e-16


_MAPPING_KEYS = (
    "ansatz",
    "params",
    "score",
    "nchi2",
    "n_params",
    "complexity",
    "success",
    "message",
    "nfev",
    "time",
)


@dataclass(frozen=True, eq=False)
class FitResult:
    """An ansatz with fitted parameters.

    Also readable as a mapping, as in the reference library: ``result['ansatz']``,
    ``result['params']``, ``result['score']`` (and every other field name).

    Attributes
    ----------
    ansatz : str
        The ansatz in normal form (parameters ``params[0..n-1]``).
    params : ndarray
        Fitted parameter values (read-only).
    nchi2 : float
        Normalized chi-squared of the fit on the data it was fitted to; ``inf`` if the
        ansatz could not be evaluated to finite values.
    success : bool
        Whether a finite fit was found.
    message : str
        What the optimiser reported, or why the fit failed.
    nfev : int
        Evaluations of the ansatz spent over all starts.
    n_starts : int
        Optimiser starts tried.
    time : float
        Wall time of the fit in seconds.
    compiled : Ansatz or None
        The compiled ansatz, for :meth:`predict`.
    """

    ansatz: str
    params: np.ndarray
    nchi2: float
    success: bool
    message: str
    nfev: int = 0
    n_starts: int = 0
    time: float = 0.0
    compiled: Ansatz | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        p = np.array(self.params, dtype=float).ravel()
        p.setflags(write=False)
        object.__setattr__(self, "params", p)

    @property
    def score(self) -> float:
        """``-nchi2``: higher is better (the reference convention)."""
        return -self.nchi2

    @property
    def n_params(self) -> int:
        """Number of fitted parameters."""
        return int(self.params.size)

    @cached_property
    def complexity(self) -> int:
        """Node count of the sympy form of the ansatz (see :attr:`Ansatz.complexity`)."""
        return self._compiled().complexity

    @cached_property
    def expression(self) -> sympy.Expr:
        """The sympy expression in ``x`` with the fitted parameters substituted.

        Raises
        ------
        AnsatzTooComplexError
            If sympy cannot build it within its time bound
            (:data:`llmlex._symbolic.SYMPY_SECONDS`).
        """
        import sympy

        from llmlex._symbolic import param, time_bound

        a = self._compiled()
        with time_bound(AnsatzTooComplexError, f"the expression of {self.ansatz[:60]!r}"):
            values = {param(k): sympy.Float(float(v)) for k, v in enumerate(self.params)}
            return sympy.sympify(a.sympy).xreplace(values)

    def _compiled(self) -> Ansatz:
        return self.compiled if self.compiled is not None else parse_ansatz(self.ansatz)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Evaluate the fitted ansatz at ``x``."""
        return self._compiled()(np.asarray(x, dtype=float), self.params)

    __call__ = predict

    def formula(self, precision: int = 6) -> str:
        """The ansatz text with the fitted values written in place of ``params[i]``."""
        text = self.ansatz
        for k in range(self.n_params - 1, -1, -1):
            text = text.replace(f"params[{k}]", f"{self.params[k]:.{precision}g}")
        return text

    def __getstate__(self) -> dict[str, Any]:
        # The compiled closures cannot be pickled; they are rebuilt from the text.
        state = dict(self.__dict__)
        state["compiled"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _repr_html_(self) -> str:
        return report_html(self)

    # ------------------------------------------------------------ the Result protocol
    kind: ClassVar[str] = "fit_result"

    @property
    def variables(self) -> tuple[str, ...]:
        """``("x",)``: an ansatz is univariate."""
        return ("x",)

    def report_rows(self, precision: int = 6) -> list[tuple[str, str]]:
        """Rows of :func:`llmlex.export.report` after the formula."""
        params = ", ".join(f"p{k} = {v:.{precision}g}" for k, v in enumerate(self.params))
        return [
            ("ansatz", self.ansatz),
            ("parameters", params or "(none)"),
            ("nchi2", f"{self.nchi2:.{precision}g}"),
            ("complexity", str(self.complexity)),
            ("fit", f"{self.message}; {self.nfev} evaluations, {self.time:.3g} s"),
        ]

    def pareto_points(self) -> tuple[list[tuple[int, float, str]], tuple[int, float] | None]:
        """The one point of this fit."""
        return [(self.complexity, self.nchi2, self.ansatz)], (self.complexity, self.nchi2)

    def to_document(self) -> dict[str, Any]:
        """The body of its JSON document (see :mod:`llmlex.persist`)."""
        return {"result": fit_result_to_dict(self)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> FitResult:
        """Inverse of :meth:`to_document`; the ansatz is re-parsed, never evaluated."""
        if "result" not in doc:
            raise PersistError("the document lacks the field 'result'")
        return fit_result_from_dict(doc["result"])

    # Mapping-style access, for code written against the reference library.
    def __getitem__(self, key: str) -> Any:
        if key not in _MAPPING_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _MAPPING_KEYS

    def keys(self) -> tuple[str, ...]:
        """Names readable with ``result[name]``."""
        return _MAPPING_KEYS

    def get(self, key: str, default: Any = None) -> Any:
        """``result[key]`` or ``default``."""
        return getattr(self, key) if key in _MAPPING_KEYS else default

    def __iter__(self) -> Iterator[str]:
        return iter(_MAPPING_KEYS)

    def __len__(self) -> int:
        return len(_MAPPING_KEYS)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (JSON-serialisable)."""
        return {
            "ansatz": self.ansatz,
            "params": [float(v) for v in self.params],
            "nchi2": self.nchi2,
            "score": self.score,
            "success": self.success,
            "message": self.message,
            "nfev": self.nfev,
            "n_starts": self.n_starts,
            "time": self.time,
        }


def fit_result_to_dict(result: FitResult) -> dict[str, Any]:
    """The fields of a :class:`FitResult` as JSON-able values (the compiled ansatz is not
    stored: it is rebuilt from the text)."""
    return {
        "ansatz": result.ansatz,
        "params": [encode_float(v) for v in result.params],
        "nchi2": encode_float(result.nchi2),
        "success": bool(result.success),
        "message": str(result.message),
        "nfev": int(result.nfev),
        "n_starts": int(result.n_starts),
        "time": encode_float(result.time),
    }


def fit_result_from_dict(data: Mapping[str, Any]) -> FitResult:
    """Rebuild a :class:`FitResult`, re-parsing its ansatz in the safe language."""
    try:
        text = data["ansatz"]
        if not isinstance(text, str):
            raise PersistError(f"ansatz must be a string, got {type(text).__name__}")
        try:
            compiled = parse_ansatz(text)
        except AnsatzError as err:
            raise PersistError(f"stored ansatz {text[:80]!r} does not parse: {err}") from None
        params = [decode_float(v) for v in data["params"]]
        if len(params) != compiled.n_params:
            raise PersistError(
                f"ansatz {text[:80]!r} has {compiled.n_params} parameters but "
                f"{len(params)} values are stored"
            )
        return FitResult(
            ansatz=text,
            params=params,
            nchi2=decode_float(data["nchi2"]),
            success=bool(data["success"]),
            message=str(data.get("message", "")),
            nfev=int(data.get("nfev", 0)),
            n_starts=int(data.get("n_starts", 0)),
            time=decode_float(data.get("time", 0.0)),
            compiled=compiled,
        )
    except KeyError as err:
        raise PersistError(f"a stored result lacks the field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, PersistError):
            raise
        raise PersistError(f"a stored result is malformed: {err}") from None


def _random_start(rng: np.random.Generator, n: int, wide: bool) -> np.ndarray:
    lo, hi = (-2.0, 2.0) if wide else (-1.0, 1.0)
    return rng.choice([-1.0, 1.0], size=n) * 10.0 ** rng.uniform(lo, hi, size=n)


def fit_ansatz(
    ansatz: Ansatz | str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    initial: Sequence[float] | None = None,
    n_starts: int = 8,
    pool_size: int = 256,
    max_nfev: int | None = None,
    timeout: float = 5.0,
    seed: int | np.random.Generator | None = 0,
    alpha: float = ALPHA,
    eps: float = EPS,
    validate: bool = True,
) -> FitResult:
    """Fit the parameters of an ansatz by minimising the normalized chi-squared.

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
    initial : sequence of float, optional
        A first start (e.g. values the language model suggested).
    n_starts : int
        Most optimiser starts.
    pool_size : int
        Random parameter vectors screened (by their score, without optimising) to choose
        the starts after ``initial`` and all-ones; 0 disables screening.
    max_nfev : int, optional
        Most ansatz evaluations per start (default ``100 * (n_params + 1)``).
    timeout : float
        Wall-time budget of the whole fit in seconds.  Every evaluation checks it (at most
        every 32 when evaluations are cheap), so a fit overruns it by about one evaluation.
    seed : int, Generator or None
        Randomness of the starts.
    alpha, eps : float
        Parameters of the score.
    validate : bool
        Check ``x`` and ``y`` (set False when the caller already has).

    Returns
    -------
    FitResult
        Never raises for a fit that fails: ``success`` is False and ``nchi2`` is ``inf``.
        An exception of the ansatz or the optimiser is such a failure (named in
        ``message``); where the ansatz raises for some parameters only, it counts as
        undefined there.

    Raises
    ------
    AnsatzError
        If ``ansatz`` is text that does not parse.
    DataError
        If ``x`` or ``y`` is unusable.
    """
    t0 = time.perf_counter()
    compiled = parse_ansatz(ansatz) if isinstance(ansatz, str) else ansatz
    if validate:
        x, y = check_xy(x, y, allow_constant=True)
    else:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    try:
        return _fit(
            compiled,
            x,
            y,
            t0,
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
            nchi2=float("inf"),
            success=False,
            message=f"fit failed: {type(err).__name__}: {str(err)[:200]}",
            time=time.perf_counter() - t0,
            compiled=compiled,
        )


def _fit(
    compiled: Ansatz,
    x: np.ndarray,
    y: np.ndarray,
    t0: float,
    *,
    initial: Sequence[float] | None,
    n_starts: int,
    pool_size: int,
    max_nfev: int | None,
    timeout: float,
    seed: int | np.random.Generator | None,
    alpha: float,
    eps: float,
) -> FitResult:
    """The search of :func:`fit_ansatz` on checked data (it may raise: the caller catches)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = compiled.n_params
    weight = 1.0 / nchi2_scale(y, alpha=alpha, eps=eps)

    def done(p: np.ndarray, value: float, ok: bool, msg: str, nfev: int, starts: int):
        return FitResult(
            ansatz=compiled.text,
            params=p,
            nchi2=value,
            success=ok,
            message=msg,
            nfev=nfev,
            n_starts=starts,
            time=time.perf_counter() - t0,
            compiled=compiled,
        )

    if n == 0:
        value = nchi2(y, compiled(x, ()), alpha=alpha, eps=eps)
        ok = bool(np.isfinite(value))
        return done(np.empty(0), value, ok, "no parameters" if ok else "non-finite", 1, 0)

    deadline = t0 + timeout
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
            if objective.best <= EXACT_NCHI2:
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
        return done(np.full(n, np.nan), float("inf"), False, message, nfev, tried)
    best_p = objective.best_p
    final = nchi2(y, compiled(x, best_p), alpha=alpha, eps=eps)
    return done(best_p, final, bool(np.isfinite(final)), str(message), nfev, tried)
