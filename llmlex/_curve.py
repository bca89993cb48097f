"""Fitting a caller's own Python function, as the reference library's ``fit_curve``.

:func:`llmlex.fit.fit_ansatz` fits an ansatz *text* of the safe language.  Code written
for the reference library also fits its own callables ``curve(x, *params)`` (a lambda it
wrote, a function of its module) with ``fit_curve(x, y, curve, n)``; these functions are
the caller's code, so calling them is the caller's choice -- nothing here reads model
output.  The objective is the same normalized chi-squared and the engine the same
(:mod:`llmlex._lsq`); the return shapes are the reference's: ``(params, nchi2)``, and a
fit that fails is ``(ones, inf)``, never an exception.
"""

from __future__ import annotations

import ast
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from llmlex._lsq import Objective, OutOfTime, minimise
from llmlex._score import ALPHA, EPS, nchi2, nchi2_scale
from llmlex.ansatz import parse_ansatz

__all__ = [
    "fit_curve",
    "fit_curve_with_guess",
    "fit_curve_with_guess_jax",
    "get_n_chi_squared",
    "get_n_chi_squared_from_predictions",
]

log = logging.getLogger(__name__)

#: Random starts tried after the given one (the reference tries one).
_RANDOM_STARTS = 4


class _Rename(ast.NodeTransformer):
    """Writes ``params[i]`` for the ``i``-th named parameter of a lambda."""

    def __init__(self, names: Sequence[str]) -> None:
        self.index = {name: k for k, name in enumerate(names)}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        k = self.index.get(node.id)
        if k is None:
            return node
        return ast.Subscript(ast.Name("params", ast.Load()), ast.Constant(k), ast.Load())


def _params_text(text: str) -> str:
    """``lambda x, a, b: a*x + b`` as ``params[0]*x + params[1]`` (the text is parsed
    into a tree and rewritten, never run); any other text unchanged."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return text
    if not isinstance(tree, ast.Lambda) or tree.args.vararg is not None:
        return text
    names = [a.arg for a in tree.args.args]
    if not names or names[0] != "x":
        return text
    body = _Rename(names[1:]).visit(tree.body)
    return ast.unparse(ast.fix_missing_locations(body))


def _as_callable(curve: Any, curve_str: str | None) -> Callable[..., Any]:
    if callable(curve):
        return curve
    if curve is None and curve_str:
        # A text is model output, or may be: compiled by the safe language, never eval'd.
        compiled = parse_ansatz(_params_text(curve_str))
        return lambda x, *p: compiled(np.asarray(x, dtype=float), np.asarray(p, dtype=float))
    raise TypeError(f"curve must be a callable curve(x, *params), got {type(curve).__name__}")


def _predict(curve: Callable[..., Any], x: np.ndarray, params: Sequence[float]) -> np.ndarray:
    """``curve(x, *params)``; a 2-D ``x`` is passed as one argument per column."""
    if x.ndim == 2:
        return np.asarray(curve(*x.T, *params), dtype=float)
    return np.asarray(curve(x, *params), dtype=float)


def fit_curve_with_guess(
    x: Any,
    y: Any,
    curve: Callable[..., Any] | None,
    params_initial: Sequence[float],
    try_all_methods: bool = False,
    log_everything: bool = False,
    stats: Any = None,
    curve_str: str | None = None,
    timeout_curve_fit: float = 30.0,
) -> tuple[np.ndarray, float]:
    """Fit ``curve(x, *params)`` from ``params_initial``, minimising the normalized
    chi-squared; then from a few random starts if that one is not finite.

    Parameters
    ----------
    x, y : array_like
        The data (``x`` may be 2-D: one column per argument of ``curve``).
    curve : callable or None
        ``curve(x, *params)``; None to compile ``curve_str`` in the safe language.
    params_initial : sequence of float
        The first start; its length is the number of parameters.
    try_all_methods, log_everything : bool
        Accepted for the reference's signature (the one engine is used).
    stats : object, optional
        Accepted for the reference's signature.
    curve_str : str, optional
        The ansatz text, used only when ``curve`` is None.
    timeout_curve_fit : float
        Wall-time budget in seconds.

    Returns
    -------
    (ndarray, float)
        The best parameters and their nchi2; ``(params_initial, inf)`` when no start
        gave a finite fit.
    """
    f = _as_callable(curve, curve_str)
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float).ravel()
    p0 = np.atleast_1d(np.asarray(params_initial, dtype=float))
    deadline = time.perf_counter() + float(timeout_curve_fit)
    objective = Objective(
        lambda p: _predict(f, xa, p), ya, 1.0 / nchi2_scale(ya), deadline=deadline
    )
    rng = np.random.default_rng(0)  # fixed: the same call gives the same fit
    starts = [p0] + [rng.uniform(-1.0, 1.0, p0.size) for _ in range(_RANDOM_STARTS)]
    for start in starts:
        try:
            minimise(objective, start, max_nfev=1000 * (p0.size + 1))
        except OutOfTime:
            break
        except Exception:  # one start's failure; the best point so far is kept
            log.debug("fit_curve: a start failed", exc_info=True)
        if math.isfinite(objective.best):
            break
    if objective.best_p is None or not math.isfinite(objective.best):
        log.info("All methods failed for this fit (%s)", objective.error or "no finite value")
        return p0, math.inf
    params = objective.best_p
    log.debug("Optimised parameters: %s", params)
    return params, get_n_chi_squared(xa, ya, f, params)


def fit_curve_with_guess_jax(
    x: Any,
    y: Any,
    curve: Callable[..., Any] | None,
    params_initial: Sequence[float],
    log_everything: bool = False,
    log_methods: bool = False,
    then_do_reg_fitting: bool = False,
    numpy_curve_str: str | None = None,
    stats: Any = None,
    timeout_regular: float = 30.0,
) -> tuple[np.ndarray, float]:
    """The reference's JAX fit, done by :func:`fit_curve_with_guess` (llmlex fits with
    scipy).  ``curve`` may be None when ``numpy_curve_str`` holds the ansatz text, which
    is compiled by the safe ansatz language."""
    return fit_curve_with_guess(
        x, y, curve, params_initial, curve_str=numpy_curve_str, timeout_curve_fit=timeout_regular
    )


def fit_curve(
    x: Any,
    y: Any,
    curve: Callable[..., Any] | None,
    largest_entry: int,
    curve_str: str | None = None,
    allow_using_jax: bool = True,
    force_using_jax: bool = False,
    stats: Any = None,
    log_methods: bool = False,
) -> tuple[np.ndarray, float]:
    """Fit ``curve(x, *params)`` with ``largest_entry`` parameters, starting from ones.

    The reference library's ``fit_curve``: returns ``(params, nchi2)`` and never raises
    for a fit that fails (it returns ``(ones, inf)``).  The JAX options are accepted and
    ignored (llmlex fits with scipy).

    Parameters
    ----------
    x, y : array_like
        The data.
    curve : callable or None
        ``curve(x, *params)`` (or ``curve(x, a, b, c)``); None to compile ``curve_str``.
    largest_entry : int
        Number of parameters.
    curve_str : str, optional
        The ansatz text (``"lambda x,*params: ..."``, ``"lambda x, a, b: ..."`` or the
        body), compiled in the safe language when ``curve`` is None.
    allow_using_jax, force_using_jax, stats, log_methods
        Accepted for the reference's signature.

    Returns
    -------
    (ndarray, float)
        Parameters and nchi2 (``inf`` on failure).
    """
    n = int(largest_entry)
    log.debug("Fitting curve with %d parameters", n)
    return fit_curve_with_guess(x, y, curve, np.ones(n), curve_str=curve_str)


def get_n_chi_squared(
    x: Any,
    y: Any,
    curve: Callable[..., Any],
    params: Sequence[float],
    explain_if_inf: bool = False,
    string_for_explanation: str | None = None,
) -> float:
    """The normalized chi-squared of ``curve(x, *params)`` against ``y``.

    A 2-D ``x`` of shape ``(N, k)`` is passed as ``curve(x[:, 0], ..., x[:, k-1],
    *params)``.  ``inf`` when the curve raises or is not finite; with ``explain_if_inf``
    the reason is logged (naming ``string_for_explanation``).
    """
    xa = np.asarray(x, dtype=float)
    try:
        with np.errstate(all="ignore"):
            yhat = _predict(curve, xa, params)
    except Exception as err:  # the caller's function: its failure is an infinite score
        if explain_if_inf:
            log.info("%s raised %s: nchi2 is inf", string_for_explanation or "the curve", err)
        return math.inf
    value = get_n_chi_squared_from_predictions(xa, y, yhat)
    if explain_if_inf and not math.isfinite(value):
        log.info("%s is not finite on the data: nchi2 is inf", string_for_explanation or "curve")
    return value


def get_n_chi_squared_from_predictions(
    x: Any, y: Any, predictions: Any, alpha: float = ALPHA, eps_scale: float = EPS
) -> float:
    """The normalized chi-squared of ``predictions`` against ``y`` (``x`` is unused).

    The score of :func:`llmlex.fit.nchi2`, in the reference's signature.
    """
    ya = np.asarray(y, dtype=float).ravel()
    pred = np.broadcast_to(np.asarray(predictions, dtype=float).ravel(), ya.shape)
    return float(nchi2(ya, pred, alpha=alpha, eps=eps_scale))
