"""Multivariate formulas from several generators, chosen by one noise-aware criterion.

The estimator's route for several input columns (:class:`llmlex.LLMLExRegressor`):

1. The noise level: the error bars given, else estimated from the data
   (:func:`llmlex._noise.estimate_noise_nd`).
2. Sparse regression over a library of terms, rational functions, and square roots,
   reciprocals and quotients (by a monomial or a root) of short sums (:mod:`llmlex._sparse`,
   :mod:`llmlex._transforms`); products of factors found on the log scale, also inside
   ``arcsin`` and ``1/(exp(.) - 1)`` (:mod:`llmlex._products`): seconds, and exact when the
   law is short in those libraries. When the level was estimated and a formula fits
   improbably well under it (``p < 1e-3``), that formula's residuals set it instead (to a
   fixed point), and the search runs again.
3. When no such formula explains the data to the noise (``chi2 <= dof + 2 sqrt(2 dof)``,
   as the univariate search stops; under a level set by an inexact formula's own
   residuals, only a formula of at most four constants counts as explained), the KAN
   pipeline (:mod:`llmlex.kan`, with its
   separability tests and, with a client, the LLM) adds its formulas.
With the columns' physical units (``reduction``, :mod:`llmlex._dimensions`), steps 2 and
3 search ``y / P(x) = f(pi)`` over the dimensionless groups ``pi`` instead; without them,
columns far from order one are searched in powers of ten of their units
(:mod:`llmlex._frames`).  Every formula found is written back in the inputs before it is
scored.

4. Every candidate is scored by its description length on the training data
   (:mod:`llmlex._criterion`: every constant and every node costs, fit beyond the noise
   earns nothing); the best few get their constants snapped to simple values (0, which
   drops a term, integers, small fractions, multiples of pi, short decimals) where the
   description length says the data agree; the shortest description wins.

The result is a :class:`~llmlex.kan.KANSymbolicResult` whose ``origin`` names the
generator and whose ``candidates`` list every formula considered with its origin.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import sympy

from llmlex._criterion import description_length
from llmlex._dimensions import Reduction
from llmlex._frames import Frame, Problem, decimal_frame, units_frame
from llmlex._kan_results import Candidate, KANSymbolicResult
from llmlex._kan_sympy import compile_expr, evaluate, fit_constants, parameterise
from llmlex._noise import estimate_noise_nd
from llmlex._products import ProductLibrary, product_candidates, product_library
from llmlex._score import chi2 as chi2_of
from llmlex._sparse import Term, linear_candidates, term_library
from llmlex._symbolic import node_count, number_cost, operator_kinds, sympy_to_text, time_bound
from llmlex._transforms import transformed_candidates
from llmlex._uncertainty import covariance, jacobian, significant_digits
from llmlex.exceptions import AnsatzTooComplexError
from llmlex.fit import nchi2, r2

__all__ = [
    "Problem",
    "Scored",
    "choose_formula",
    "constant_errors",
    "explained",
    "rounded_to_errors",
    "score_expression",
    "snap_by_length",
]

log = logging.getLogger("llmlex.multivariate")

#: Candidates (best first) whose constants are snapped.
_SNAP_TOP = 3
#: Most constants of a formula whose constants are snapped (each is tried at several
#: values, each try a refit of the others).
_SNAP_MAX_CONSTANTS = 10
#: Most refits of one formula's snapping (a bound on work, not time: the result must
#: not depend on the machine's load).
_SNAP_TRIES = 60
#: Values farther than this many standard errors from a constant are not tried.
_SNAP_SIGMAS = 8.0
#: Formulas larger than this (sympy nodes) are not rewritten.
_REWRITE_MAX_NODES = 80
#: Python calls one sympy rewrite (``together``, ``apart``, ...) may make: about a
#: second here, but a bound on work and not on time, so that what is chosen does not
#: depend on the machine's load.
_REWRITE_CALLS = 4_000_000


@dataclass(frozen=True)
class Scored:
    """A candidate formula fitted to the training data and scored.

    Attributes
    ----------
    origin : str
        The generator: ``sparse``, ``rational``, ``kan``, ..., with ``+snapped`` once
        its constants were snapped.
    expression : sympy.Expr
        The formula, its fitted constants as Floats.
    chi2 : float
        Chi-squared on the training data at the noise level.
    description_length : float
        Nats (lower is better).
    complexity : int
        sympy node count.
    """

    origin: str
    expression: sympy.Expr
    chi2: float
    description_length: float
    complexity: int


def explained(chi2_value: float, dof: int) -> bool:
    """Whether a fit explains the data to the noise: ``chi2 <= dof + 2 sqrt(2 dof)``."""
    dof = max(int(dof), 1)
    return bool(chi2_value <= dof + 2.0 * math.sqrt(2.0 * dof))


def _model(f: Callable[[list], object], X: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``params -> predictions at the rows of X`` of a compiled template (variables first,
    then parameters), as the fits and Jacobians want it."""
    cols = [X[:, k] for k in range(X.shape[1])]
    n = X.shape[0]

    def model(params: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(f([*cols, *params]), dtype=float), (n,))

    return model


def score_expression(
    origin: str,
    expr: sympy.Expr,
    variables: Sequence[sympy.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    *,
    refit: bool = True,
) -> Scored | None:
    """Refit the Float constants of ``expr`` on ``(X, y)`` and compute its description
    length (``None`` if it cannot be evaluated there).

    The Fisher diagonal is that of the chi-squared at the fitted constants, from a
    central-difference Jacobian.
    """
    try:
        template, syms, p0 = parameterise(expr)
        if refit and syms:
            fitted = fit_constants(
                template,
                variables,
                syms,
                p0,
                X,
                y,
                sigma=sigma,
                # Bounded by evaluations (fit_constants' default), not by the clock:
                # what is chosen must not depend on the machine's load.
            )
            params = np.asarray(fitted.params, dtype=float)
        else:
            params = np.asarray(p0, dtype=float)
        f = compile_expr(template, [*variables, *syms])
    except (ValueError, TypeError, ZeroDivisionError) as err:
        log.debug("candidate %s not evaluable: %s", origin, err)
        return None
    model = _model(f, X)
    w = 1.0 / sigma
    with np.errstate(all="ignore"):
        try:
            pred = model(params)
        except (ValueError, TypeError, ZeroDivisionError):
            return None
        if not np.all(np.isfinite(pred)):
            return None
        chi2_value = float(np.sum(((y - pred) * w) ** 2))
        if syms:
            fisher = np.sum((jacobian(model, params, pred) * w[:, None]) ** 2, axis=0)
        else:
            fisher = np.zeros(0)
    dl = description_length(
        chi2_value,
        node_count(template),
        operator_kinds(template),
        fisher,
        params,
        number_cost=number_cost(template),
    )
    if not math.isfinite(dl):
        return None
    final = template.xreplace({s: sympy.Float(float(v)) for s, v in zip(syms, params, strict=True)})
    return Scored(origin, final, chi2_value, dl, node_count(final))


def _simple_values(v: float) -> list[sympy.Expr]:
    """Simple numbers near ``v``, simplest first: 0, the nearest integer, fractions of
    denominator up to 12, such fractions times pi, over pi and times pi**2, ``v`` to 1-3
    digits."""
    out: list[sympy.Expr] = [sympy.Integer(0)]
    if not math.isfinite(v) or v == 0.0:
        return out
    out.append(sympy.Integer(round(v)))
    frac = Fraction(v).limit_denominator(12)
    out.append(sympy.Rational(frac.numerator, frac.denominator))
    frac_pi = Fraction(v / math.pi).limit_denominator(12)
    if frac_pi != 0:
        out.append(sympy.pi * sympy.Rational(frac_pi.numerator, frac_pi.denominator))
    per_pi = Fraction(v * math.pi).limit_denominator(12)
    if per_pi != 0:
        out.append(sympy.Rational(per_pi.numerator, per_pi.denominator) / sympy.pi)
    frac_pi2 = Fraction(v / math.pi**2).limit_denominator(12)
    if frac_pi2 != 0:
        out.append(sympy.pi**2 * sympy.Rational(frac_pi2.numerator, frac_pi2.denominator))
    for digits in (1, 2, 3):
        short = Fraction(f"{v:.{digits}g}")
        out.append(sympy.Rational(short.numerator, short.denominator))
    unique: list[sympy.Expr] = []
    for c in out:
        if c not in unique:
            unique.append(c)
    return unique


def snap_by_length(
    scored: Scored,
    variables: Sequence[sympy.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    *,
    deadline: float | None = None,
    max_tries: int = _SNAP_TRIES,
) -> Scored:
    """Replace constants of ``scored`` by simple numbers while its description length
    falls (the other constants refitted each time).  0 drops a term.

    Constants are tried largest first, each value simplest first, among the values within
    :data:`_SNAP_SIGMAS` standard errors of the constant (farther ones would cost more
    chi-squared than any shorter writing saves); the first replacement that shortens the
    description is kept and the search starts over.  At most ``max_tries`` refits: a
    bound on work, so that the result does not depend on the machine's speed (the
    ``deadline``, a :func:`time.perf_counter` value, is only a caller's time budget).
    """
    best = scored
    origin = scored.origin if scored.origin.endswith("+snapped") else scored.origin + "+snapped"
    tried: set[str] = set()
    tries = 0
    improved = True
    while improved:
        improved = False
        errors = constant_errors(best.expression, variables, X, y, sigma, absolute_sigma=True)
        floats = sorted(best.expression.atoms(sympy.Float), key=lambda f: -abs(float(f)))
        for f in floats:
            v, err = float(f), errors.get(f, math.inf)
            for value in _simple_values(v):
                if abs(float(value) - v) > _SNAP_SIGMAS * err:
                    continue
                if tries >= max_tries or (deadline is not None and time.perf_counter() > deadline):
                    return best
                new = best.expression.xreplace({f: value})
                key = sympy.srepr(new)
                if key in tried:
                    continue
                tried.add(key)
                tries += 1
                cand = score_expression(origin, new, variables, X, y, sigma)
                if cand is not None and cand.description_length < best.description_length - 1e-9:
                    best, improved = cand, True
                    break
            if improved:
                break
    return best


def rewrites(expr: sympy.Expr, variables: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
    """Equivalent ways of writing ``expr``, for the description length to choose among:
    over a common denominator (``together``, ``cancel``), ``factor``, and partial
    fractions in each variable (``apart``).  ``4/(x**2/2 + 1)`` and ``8/(x**2 + 2)`` are
    the same law, but the second writes fewer numbers; ``(2x - xy/2 - y/2)/(x + 1)`` is
    ``2x/(x + 1) - y/2``.  Each rewrite is bounded by the Python calls it makes; one that
    fails is left out."""
    out: list[sympy.Expr] = []
    steps: list[Callable[[], sympy.Expr]] = [
        lambda: sympy.together(expr),
        lambda: sympy.cancel(expr),
        lambda: sympy.factor(expr),
        *((lambda v=v: sympy.apart(expr, v)) for v in variables),
    ]
    for step in steps:
        try:
            with time_bound(AnsatzTooComplexError, "a rewrite", math.inf, calls=_REWRITE_CALLS):
                new = step()
        except Exception as err:  # sympy raises many kinds (PolynomialError, ...)
            log.debug("rewrite failed: %s", err)
            continue
        if new != expr and new not in out:
            out.append(new)
    return out


@dataclass(frozen=True, eq=False)
class _Libraries:
    """The generators' libraries on the training inputs, built once for every noise
    level the search is run at."""

    terms: list[Term]
    products: ProductLibrary


def _sparse_pool(
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    variables: Sequence[sympy.Symbol],
    libraries: _Libraries | None,
    deadline: float | None,
) -> list[Scored]:
    """The sparse generators' candidates (:mod:`llmlex._sparse`, :mod:`llmlex._products`),
    scored at ``sigma``; none without ``libraries`` (the generators are off)."""
    if libraries is None:
        return []
    terms = libraries.terms
    found = linear_candidates(X, y, sigma, variables, deadline=deadline, terms=terms)
    found += product_candidates(
        X, y, sigma, variables, deadline=deadline, library=libraries.products
    )
    found += transformed_candidates(X, y, sigma, variables, deadline=deadline, terms=terms)
    pool: list[Scored] = []
    for c in found:
        if math.isnan(c.description_length):  # linearised constants: the real fit first
            scored = score_expression(c.origin, c.expression, variables, X, y, sigma)
            if scored is not None:
                pool.append(scored)
        else:
            size = node_count(c.expression)
            pool.append(Scored(c.origin, c.expression, c.chi2, c.description_length, size))
    return pool


#: A formula whose chi-squared is below this quantile of its distribution under the
#: estimated noise level shows that level to be too high.
_REVISE_P = 1e-3


#: Most constants of a formula that may end the search under a noise level it set.
_SHORT_CONSTANTS = 4
#: Lowest noise level a revision sets, relative to the RMS of the target: below it, two
#: ways of writing one law differ by rounding (a few hundred ulps) and a term of 1e-16
#: would be "worth" its cost.
_ROUNDING = 1e-12


def _lifted(
    pool: Sequence[Scored],
    red: Frame,
    variables: Sequence[sympy.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
) -> list[Scored]:
    """Formulas of a frame written in the inputs and scored there (the same fit: the
    chi-squared does not change, the description length does)."""
    out = []
    for s in pool:
        scored = score_expression(
            s.origin, red.lift(s.expression), variables, X, y, sigma, refit=False
        )
        if scored is not None:
            out.append(scored)
    return out


def _revised_noise(pool: Sequence[Scored], noise: float, y: np.ndarray) -> float | None:
    """A lower noise level if the shortest description among the formulas that fit
    improbably well under ``noise`` says so: that formula's residual scale (floored at
    :data:`llmlex._noise.NOISE_FLOOR` of the level and at :data:`_ROUNDING` of the
    target's RMS), else ``None``.

    Repeated to a fixed point on the same pool, its chi-squared values and description
    lengths rescaled to each new level (``chi2 * (s/s')**2``; each constant's precision
    costs ``log(s/s')`` more): at a high level the shortest improbable formula is an
    approximation, at its level the exact one may be the shortest improbable one."""
    from scipy.stats import chi2 as chi2_dist

    from llmlex._noise import NOISE_FLOOR

    n = y.size
    floor = max(NOISE_FLOOR * noise, _ROUNDING * float(np.sqrt(np.mean(y * y))))
    level = noise
    for _ in range(20):
        ratio2 = (noise / level) ** 2
        improbable = []
        for s in pool:
            k = len(s.expression.atoms(sympy.Float))
            dof = n - k
            c2 = s.chi2 * ratio2
            if dof > 0 and math.isfinite(c2) and chi2_dist.cdf(c2, dof) < _REVISE_P:
                dl = s.description_length + 0.5 * (c2 - s.chi2) + 0.5 * k * math.log(ratio2)
                improbable.append((dl, c2, dof))
        if not improbable:
            break
        _, c2, dof = min(improbable)
        new = max(level * math.sqrt(c2 / dof), floor)
        if new >= level * (1.0 - 1e-9):
            break
        level = new
    return level if level < noise else None


def choose_formula(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    names: Sequence[str],
    *,
    sigma_train: np.ndarray | None = None,
    sigma_test: np.ndarray | None = None,
    kan: Callable[[Problem], KANSymbolicResult | None] | None = None,
    sparse: bool = True,
    reduction: Reduction | None = None,
    deadline: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> KANSymbolicResult:
    """The estimator's multivariate route (see the module's docstring).

    Parameters
    ----------
    X_train, y_train : ndarray
        Data the constants are fitted on and the description lengths computed on.
    X_test, y_test : ndarray
        Held-out data for the reported scores (may be the training data).
    names : sequence of str
        Variable names (``x0, x1, ...``).
    sigma_train, sigma_test : ndarray, optional
        Error bars; without them the noise level is estimated from the training data.
    kan : callable, optional
        Runs the KAN pipeline on the :class:`Problem` it is given and returns its result
        (``None`` when it cannot run); called only when no sparse formula explains the
        data to the noise.
    sparse : bool
        Propose sparse-regression formulas (:mod:`llmlex._sparse`).
    reduction : Reduction, optional
        The columns' dimensional analysis: the generators search the dimensionless
        problem, and their formulas are written back in the inputs.
    deadline : float, optional
        :func:`time.perf_counter` value after which no more refits start (sparse search
        and snapping; the KAN keeps its own budget).
    progress : callable, optional
        Called with the name of each stage as it starts.

    Returns
    -------
    KANSymbolicResult
    """
    t0 = time.perf_counter()
    variables = [sympy.Symbol(n, real=True) for n in names]
    n = y_train.size
    if sigma_train is None:
        noise = estimate_noise_nd(X_train, y_train)
        sigma = np.full(n, noise)
    else:
        sigma = np.asarray(sigma_train, dtype=float)
        noise = math.nan
    problem = Problem(X_train, y_train, X_test, y_test, tuple(names), sigma_train, sigma_test)
    red: Frame | None
    if reduction is not None and not reduction.trivial:
        red = units_frame(reduction, problem, variables)
        log.info("dimensional analysis: %s", reduction.describe(names))
    else:  # columns far from order one: searched in powers of ten of their units
        red = decimal_frame(problem, variables)
    if red is not None:
        problem = red.problem
    search_vars = variables if red is None else red.variables
    X_s, y_s = problem.X_train, problem.y_train
    factor = np.ones(n) if red is None else np.abs(red.factor)

    def generate(sigma: np.ndarray) -> list[Scored]:
        """The sparse generators' formulas, in the inputs, scored at ``sigma``."""
        if X_s.shape[1] == 0:  # no group: y = c * P(x) by dimensions alone
            assert red is not None
            c = sympy.Float(
                float(np.sum(y_s * factor**2 / sigma**2) / np.sum(factor**2 / sigma**2))
            )
            one = score_expression("units", red.lift(c), variables, X_train, y_train, sigma)
            return [] if one is None else [one]
        found = _sparse_pool(X_s, y_s, sigma / factor, search_vars, libraries, deadline)
        return found if red is None else _lifted(found, red, variables, X_train, y_train, sigma)

    if progress:
        progress("sparse regression")
    libraries = (
        _Libraries(
            term_library(X_s, search_vars),
            product_library(X_s, search_vars, dimensionless=red is not None and red.dimensionless),
        )
        if sparse and X_s.shape[1] > 0
        else None
    )
    pool = generate(sigma)
    # A level set by an inexact formula's own residuals cannot say that formula explains
    # the data (its chi-squared is then the degrees of freedom by construction): unless
    # the best formula is short (at most _SHORT_CONSTANTS constants: a short law with
    # noise, not a long approximation), the network still runs.  A level set by an exact
    # formula (rounding) can say it.
    approximate_level = False
    if sigma_train is None:
        # The estimate from the data alone reads curvature between sparse samples as noise
        # (20 points in a plane): a formula whose chi-squared is improbably small under it
        # (p < 1e-3) sets the level instead, and the candidates are found again at it.
        for _ in range(2):
            revised = _revised_noise(pool, noise, y_train)
            if revised is None:
                break
            log.info(
                "noise level revised from %.3g to %.3g by a formula's residuals", noise, revised
            )
            noise = revised
            rounding = _ROUNDING * float(np.sqrt(np.mean(y_train * y_train)))
            approximate_level = revised > 1e3 * rounding
            sigma = np.full(n, noise)
            pool = generate(sigma)
    kan_result: KANSymbolicResult | None = None
    best = min(pool, key=lambda s: s.description_length, default=None)
    if best is not None:
        k = len(best.expression.atoms(sympy.Float))
        done = explained(best.chi2, n - k) and not (approximate_level and k > _SHORT_CONSTANTS)
    else:
        done = False
    t_sparse = time.perf_counter() - t0
    if not done and kan is not None and X_s.shape[1] > 0:
        if progress:
            progress("KAN")
        kan_result = kan(problem)
        if kan_result is not None:
            expr = kan_result.expression if red is None else red.lift(kan_result.expression)
            scored = score_expression("kan", expr, variables, X_train, y_train, sigma, refit=False)
            if scored is not None:
                pool.append(scored)
            if red is not None:  # its own candidates are formulas of the frame
                kan_result = replace(
                    kan_result,
                    raw_expression=red.lift(kan_result.raw_expression),
                    candidates=(),
                )
    if not pool:
        raise ValueError("no candidate formula could be evaluated on the data")
    if progress:
        progress("snapping constants")
    pool.sort(key=lambda s: s.description_length)
    snap_deadline = deadline

    def snap(s: Scored) -> Scored:
        return snap_by_length(s, variables, X_train, y_train, sigma, deadline=snap_deadline)

    top = [
        s for s in pool[:_SNAP_TOP] if len(s.expression.atoms(sympy.Float)) <= _SNAP_MAX_CONSTANTS
    ]
    snapped = [snap(s) for s in top]
    # The same laws written otherwise (a common denominator, partial fractions), scored
    # and snapped again: the description length depends on how a formula is written.
    rewritten: list[Scored] = []
    for s in snapped:
        if snap_deadline is not None and time.perf_counter() > snap_deadline:
            break
        if s.complexity > _REWRITE_MAX_NODES:  # a network's assembly: nothing to gain
            continue
        for expr in rewrites(s.expression, variables):
            if len(expr.atoms(sympy.Float)) > _SNAP_MAX_CONSTANTS:
                continue
            r = score_expression(s.origin, expr, variables, X_train, y_train, sigma)
            if r is not None:
                rewritten.append(snap(r))
    pool = sorted([*pool, *snapped, *rewritten], key=lambda s: s.description_length)
    chosen = pool[0]
    log.info(
        "chose %s formula %s (%.1f nats)",
        chosen.origin,
        chosen.expression,
        chosen.description_length,
    )
    return _result(
        chosen,
        pool,
        kan_result,
        variables,
        names,
        (X_train, y_train, X_test, y_test),
        (sigma_train, sigma_test),
        noise,
        {"sparse": t_sparse, "total": time.perf_counter() - t0},
    )


def _result(
    chosen: Scored,
    pool: Sequence[Scored],
    kan_result: KANSymbolicResult | None,
    variables: Sequence[sympy.Symbol],
    names: Sequence[str],
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sigmas: tuple[np.ndarray | None, np.ndarray | None],
    noise: float,
    timings: dict[str, float],
) -> KANSymbolicResult:
    """The chosen formula as a result, every candidate listed with its origin."""
    X_train, y_train, X_test, y_test = data
    sigma_train, sigma_test = sigmas
    expr = chosen.expression
    pred_train = evaluate(expr, variables, X_train)
    pred_test = evaluate(expr, variables, X_test)
    candidates = [] if kan_result is None else list(kan_result.candidates)
    seen: set[str] = set()
    for s in pool:
        text = sympy_to_text(s.expression)
        if text in seen:
            continue
        seen.add(text)
        held = nchi2(y_test, evaluate(s.expression, variables, X_test))
        candidates.append(
            Candidate(
                s.origin,
                text,
                held,
                s.complexity,
                s is chosen,
                description_length=s.description_length,
            )
        )
    n_constants = len(parameterise(expr)[1])
    chi2_train = chi2_test = math.nan
    if sigma_train is not None and sigma_test is not None:
        chi2_train = chi2_of(y_train, pred_train, sigma_train)
        chi2_test = chi2_of(y_test, pred_test, sigma_test)
    fields = {
        "expression": expr,
        "text": sympy_to_text(expr),
        "variables": tuple(names),
        "nchi2_train": nchi2(y_train, pred_train),
        "nchi2_test": nchi2(y_test, pred_test),
        "r2_train": r2(y_train, pred_train),
        "r2_test": r2(y_test, pred_test),
        "complexity": node_count(expr),
        "candidates": tuple(candidates),
        "chi2_train": chi2_train,
        "dof_train": y_train.size - n_constants,
        "chi2_test": chi2_test,
        "dof_test": y_test.size,
        "origin": chosen.origin.split("+")[0],
        "description_length": chosen.description_length,
        "noise": noise,
    }
    if kan_result is not None and chosen.origin.startswith("kan"):
        timings = {**dict(kan_result.timings), **timings}
        return replace(kan_result, timings=timings, **fields)
    return KANSymbolicResult(
        output=0,
        raw_expression=expr,
        raw_complexity=node_count(expr),
        assembly_error=math.nan,
        structure_error=math.nan,
        kan_error=math.nan,
        llm_calls=0 if kan_result is None else kan_result.llm_calls,
        llm_calls_saved=0 if kan_result is None else kan_result.llm_calls_saved,
        timings=timings,
        **fields,
    )


def constant_errors(
    expr: sympy.Expr,
    variables: Sequence[sympy.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    *,
    absolute_sigma: bool = False,
) -> dict[sympy.Float, float]:
    """Standard errors of the Float constants of ``expr`` fitted to ``(X, y)``, from the
    Jacobian at the fitted values (scaled by the reduced chi-squared unless
    ``absolute_sigma``, as :func:`scipy.optimize.curve_fit`); empty if not evaluable."""
    try:
        template, syms, p = parameterise(expr)
        if not syms:
            return {}
        f = compile_expr(template, [*variables, *syms])
    except (ValueError, TypeError, ZeroDivisionError):
        return {}
    model = _model(f, X)
    w = 1.0 / sigma
    with np.errstate(all="ignore"):
        pred = model(p)
        jac = jacobian(model, p, pred) * w[:, None]
        dof = y.size - p.size
        red = float(np.sum(((y - pred) * w) ** 2)) / dof if dof > 0 else math.inf
        cov = covariance(jac, scale=1.0 if absolute_sigma else red)
    errors = np.sqrt(np.abs(np.diag(cov)))
    floats = {float(v): v for v in expr.atoms(sympy.Float)}
    return {
        floats[float(v)]: float(e) for v, e in zip(p, errors, strict=True) if float(v) in floats
    }


def rounded_to_errors(expr: sympy.Expr, errors: dict[sympy.Float, float]) -> sympy.Expr:
    """``expr`` with each Float written to the significant digits its error justifies
    (6 where the error says nothing)."""
    out = {}
    for f in expr.atoms(sympy.Float):
        digits = significant_digits(float(f), errors.get(f, math.nan), precision=6)
        out[f] = sympy.Float(f"{float(f):.{digits}g}")
    return expr.xreplace(out)
