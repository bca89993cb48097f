"""Sparse regression over a library of terms: short multivariate formulas, linear in
their constants, and rational functions ``P / (1 + Q)``.

A generator of candidate formulas beside the KAN route (:mod:`llmlex._multivariate`
makes them compete under one criterion).  The method is that of SINDy (Brunton,
Proctor & Kutz 2016) for a static law ``y = f(x)``:

1. A library of terms evaluated on the data (:func:`term_library`): the monomials of the
   inputs up to a degree, simple functions of each input (``sin``, ``cos``, ``exp``,
   ``log``, ``sqrt``, ``1/x``, ...), their products with an input, products of
   trigonometric functions of two inputs, and functions of the pair invariants
   (``x_i * x_j``, ``x_i / x_j``, ``x_i^2 + x_j^2``).  A term is kept only where it is
   finite on every sample; terms equal to an earlier one (up to a factor) are dropped.
2. The sparsity path is scanned, not one threshold: the supports of scikit-learn's
   least-angle regression (``lars_path``, lasso variant) and orthogonal matching pursuit
   (``orthogonal_mp`` with ``return_path``), and of backward elimination from the full
   least-squares fit (the term of smallest ``|t|`` dropped at each step).
3. Every support up to :data:`MAX_TERMS` terms is refitted by (weighted) least squares and
   scored by its description length (:mod:`llmlex._criterion`) at the noise level: the
   constants and the nodes cost, fit beyond the noise earns nothing.

Rational forms ``P / (1 + Q)`` are linearised as ``y = P - y Q`` (Levy's method): the
same path over the columns of ``P`` and of ``-y q``; each support is then refitted by
nonlinear least squares on the real residuals (the linearised fit weights them by
``1 + Q``).

numpy, sympy and scikit-learn (the ``kan`` extra); no torch.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from llmlex._criterion import description_length
from llmlex._symbolic import node_count, number_cost, operator_kinds

__all__ = [
    "MAX_TERMS",
    "LinearCandidate",
    "Term",
    "column_norms",
    "linear_candidates",
    "term_library",
]

log = logging.getLogger("llmlex.sparse")

#: Most terms of a candidate (supports beyond it are not refitted).
MAX_TERMS = 8
#: Largest magnitude a library column may reach (relative to the data's scale this is
#: overflow territory: ``exp`` of a large input).
_MAX_VALUE = 1e12
#: Columns whose correlation with an earlier one is beyond this are the same term.
_SAME = 1.0 - 1e-10


@dataclass(frozen=True)
class Term:
    """A library term: its formula in the input symbols, its values on the data, and
    its family (``poly``, ``trig``, ``exp``, ``log``, ``power``, ``pair``), which
    decides the sub-libraries it is searched in."""

    expr: sympy.Expr
    values: np.ndarray
    family: str = "poly"
    degree: int = 0


@dataclass(frozen=True)
class LinearCandidate:
    """A formula found by sparse regression, fitted and scored.

    Attributes
    ----------
    origin : str
        ``"sparse"`` (a linear combination of library terms) or ``"rational"``.
    expression : sympy.Expr
        The formula with its fitted constants as Floats.
    template : sympy.Expr
        The same with the fitted constants as parameter symbols ``p0, p1, ...``.
    params : ndarray
        Fitted values of the parameters.
    chi2 : float
        Squared residuals over the noise variance.
    description_length : float
        Nats (lower is better).
    """

    origin: str
    expression: sympy.Expr
    template: sympy.Expr
    params: np.ndarray
    chi2: float
    description_length: float


def column_norms(A: np.ndarray) -> np.ndarray:
    """Euclidean norms of the columns of ``A``, without underflow or overflow of their
    squares (columns near 1e-160 or 1e160: a target of 1e305 weights its terms so)."""
    scale = np.max(np.abs(A), axis=0)
    safe = np.where(scale > 0, scale, 1.0)
    return scale * np.linalg.norm(A / safe, axis=0)


def _guarded(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(fn(x), dtype=float)


def _one_sign(v: np.ndarray) -> bool:
    """Whether ``v`` stays on one side of 0 (and away from it): a divisor whose sign
    changes puts a pole inside the data, which a law may have but a library term should
    not impose."""
    return bool((np.all(v > 0) or np.all(v < 0)) and np.min(np.abs(v)) > 1e-6 * np.max(np.abs(v)))


def _unary(x: sympy.Symbol, v: np.ndarray) -> list[tuple[sympy.Expr, np.ndarray, str]]:
    """Simple functions of one input where they are defined on all of its values: the
    first four (``sin``, ``cos``, ``exp``, ``exp(-x)``) always are."""
    out: list[tuple[sympy.Expr, np.ndarray, str]] = [
        (sympy.sin(x), np.sin(v), "trig"),
        (sympy.cos(x), np.cos(v), "trig"),
        (sympy.exp(x), _guarded(np.exp, v), "exp"),
        (sympy.exp(-x), _guarded(lambda t: np.exp(-t), v), "exp"),
    ]
    if np.all(v > 0):
        out += [(sympy.log(x), np.log(v), "log")]
    if np.all(v >= 0):
        out += [(sympy.sqrt(x), np.sqrt(v), "power")]
    if _one_sign(v):
        out += [(1 / x, 1.0 / v, "power"), (x**-2, v**-2.0, "power")]
    return out


def _degree(degree: int | None, d: int) -> int:
    """The monomials' degree for ``d`` inputs: given, else 4 for up to 2 inputs, 3 up to 6,
    1 beyond (the library stays within a few hundred terms)."""
    if degree is not None:
        return int(degree)
    return 4 if d <= 2 else 3 if d <= 6 else 1


def _monomials(
    X: np.ndarray, variables: Sequence[sympy.Symbol], degree: int
) -> list[tuple[sympy.Expr, np.ndarray, str, int]]:
    """The constant and the monomials of the inputs up to ``degree``, by degree."""
    n, d = X.shape
    raw: list[tuple[sympy.Expr, np.ndarray, str, int]] = [(sympy.Integer(1), np.ones(n), "poly", 0)]
    for m in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(d), m):
            expr = sympy.Mul(*(variables[k] for k in combo))
            raw.append((expr, np.prod([X[:, k] for k in combo], axis=0), "poly", m))
    return raw


def term_library(
    X: np.ndarray, variables: Sequence[sympy.Symbol], *, degree: int | None = None
) -> list[Term]:
    """The candidate terms of a sparse regression, evaluated on ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs.
    variables : sequence of sympy.Symbol
        One symbol per column.
    degree : int, optional
        Highest total degree of the monomials; by default 4 for up to 2 inputs, 3 up to 6
        and 1 beyond, so that the library stays within a few hundred terms.

    Returns
    -------
    list of Term
        The constant first, then the monomials by degree, then the rest; every column
        finite and at most :data:`_MAX_VALUE` in magnitude, none a multiple of another.
    """
    d = X.shape[1]
    deg = _degree(degree, d)
    cols = [X[:, k] for k in range(d)]
    raw = _monomials(X, variables, deg)
    unary = [_unary(variables[k], cols[k]) for k in range(d)]
    for k in range(d):
        raw += [(e, v, fam, 1) for e, v, fam in unary[k]]
    for k, j in itertools.product(range(d), range(d)):
        # An input times a function of one (x * sin(x), x0 * exp(-x1), ...).
        for expr, v, fam in unary[k][:4]:
            raw.append((variables[j] * expr, cols[j] * v, fam, 2))
    if 3 <= d <= 6:
        # Two inputs times sin or cos of one (q*v*B*sin(theta), beta*alpha*cos(theta)).
        for k in range(d):
            for i, j in itertools.combinations_with_replacement(range(d), 2):
                for expr, v, fam in unary[k][:2]:
                    raw.append((variables[i] * variables[j] * expr, cols[i] * cols[j] * v, fam, 3))
    for k, j in itertools.combinations(range(d), 2):
        xk, xj = variables[k], variables[j]
        vk, vj = cols[k], cols[j]
        for (ek, ak, _), (ej, aj, _) in itertools.product(unary[k][:2], unary[j][:2]):
            raw.append((ek * ej, ak * aj, "trig", 2))
        prod = vk * vj
        raw += [
            (sympy.sin(xk * xj), np.sin(prod), "pair", 2),
            (sympy.cos(xk * xj), np.cos(prod), "pair", 2),
            (sympy.exp(-xk * xj), _guarded(lambda t: np.exp(-t), prod), "pair", 2),
            (sympy.sqrt(xk**2 + xj**2), np.sqrt(vk * vk + vj * vj), "pair", 2),
        ]
        if _one_sign(vj):
            raw += [(xk / xj, vk / vj, "pair", 2), ((xk / xj) ** 2, (vk / vj) ** 2, "pair", 2)]
        if _one_sign(vk):
            raw += [(xj / xk, vj / vk, "pair", 2), ((xj / xk) ** 2, (vj / vk) ** 2, "pair", 2)]
    return _distinct(raw)


def _distinct(raw: Sequence[tuple[sympy.Expr, np.ndarray, str, int]]) -> list[Term]:
    """Usable columns, the first of each group of proportional ones."""
    kept: list[Term] = []
    units: list[np.ndarray] = []
    seen: set[sympy.Expr] = set()
    for expr, v, family, degree in raw:
        if expr in seen:
            continue
        seen.add(expr)
        v = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(v)) or np.max(np.abs(v)) > _MAX_VALUE:
            continue
        norm = float(np.linalg.norm(v))
        if norm == 0.0 or (expr != 1 and np.ptp(v) == 0.0):
            continue
        u = v / norm
        if units and np.max(np.abs(np.asarray(units) @ u)) > _SAME:
            continue
        units.append(u)
        kept.append(Term(expr, v, family, degree))
    return kept


def sub_libraries(terms: Sequence[Term]) -> list[list[int]]:
    """Index lists of the sub-libraries searched: each family with the low-degree
    monomials, the polynomials alone, and the whole library.  A greedy path through a
    small library of weakly correlated columns finds supports that the same path through
    the whole library (where ``exp(-x)`` looks like ``1 - x + x**2/2``) misses, and a
    small library can be searched exhaustively."""
    poly = [i for i, t in enumerate(terms) if t.family == "poly"]
    low = [i for i in poly if terms[i].degree <= 1]
    quad = [i for i in poly if terms[i].degree <= 2]
    libs = [poly]
    for fam, base in (("trig", low), ("exp", low), ("log", low), ("power", low), ("pair", quad)):
        extra = [i for i, t in enumerate(terms) if t.family == fam]
        if extra:
            libs.append(sorted(set(base) | set(extra)))
    libs.append(list(range(len(terms))))
    out: list[list[int]] = []
    for lib in libs:
        if lib and lib not in out:
            out.append(lib)
    return out


# ----------------------------------------------------------------- the sparsity path

#: Rational supports of at most this many terms are all tried (at most
#: ``_RATIONAL_EXHAUSTIVE`` of them), each judged by its real residual.
_RATIONAL_EXHAUSTIVE_TERMS = 4
_RATIONAL_EXHAUSTIVE = 6_000
#: Most supports one sub-library is searched over exhaustively (by increasing size; larger
#: supports come from the greedy paths only).
EXHAUSTIVE_SUPPORTS = 20_000


def _exhaustive(p: int, kmax: int) -> list[tuple[int, ...]]:
    """Every support of ``p`` columns by increasing size, up to :data:`EXHAUSTIVE_SUPPORTS`."""
    out: list[tuple[int, ...]] = []
    for k in range(1, kmax + 1):
        if len(out) + math.comb(p, k) > EXHAUSTIVE_SUPPORTS:
            break
        out += list(itertools.combinations(range(p), k))
    return out


def _paths(A: np.ndarray, b: np.ndarray, kmax: int) -> list[tuple[int, ...]]:
    """Supports along the sparsity paths of ``b ~ A c`` (columns of ``A`` of unit norm):
    LARS-lasso, orthogonal matching pursuit and backward elimination, each of at most
    ``kmax`` columns."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lars_path, orthogonal_mp

    p = A.shape[1]
    found: dict[tuple[int, ...], None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            _, _, coefs = lars_path(A, b, method="lasso", max_iter=4 * kmax)
            for c in coefs.T:
                s = tuple(int(i) for i in np.flatnonzero(c))
                if 0 < len(s) <= kmax:
                    found.setdefault(s)
        except (ValueError, np.linalg.LinAlgError) as err:
            log.debug("lars path failed: %s", err)
        try:
            path = orthogonal_mp(A, b, n_nonzero_coefs=kmax, return_path=True)
            for c in np.asarray(path).reshape(p, -1).T:
                s = tuple(int(i) for i in np.flatnonzero(c))
                if 0 < len(s) <= kmax:
                    found.setdefault(s)
        except (ValueError, np.linalg.LinAlgError) as err:
            log.debug("orthogonal matching pursuit failed: %s", err)
    for s in _backward(A, b, kmax):
        found.setdefault(s)
    return list(found)


def _backward(A: np.ndarray, b: np.ndarray, kmax: int) -> list[tuple[int, ...]]:
    """Backward elimination: from the full least-squares fit (when there are points
    enough for it), drop the column of smallest ``|t|`` until one is left; the supports
    of at most ``kmax`` columns on the way.  The inverse Gram matrix of the remaining
    columns is downdated at each step (``H - h h^T / h_jj``), not recomputed."""
    n, p = A.shape
    if p > n // 2 or p < 1:
        return []
    norms = column_norms(A)
    U = A / norms
    c = U.T @ b
    bb = float(b @ b)
    try:
        H = np.linalg.pinv(U.T @ U)
    except np.linalg.LinAlgError as err:  # columns that differ by hundreds of decades
        log.debug("backward elimination skipped: %s", err)
        return []
    active = list(range(p))
    out: list[tuple[int, ...]] = []
    while active:
        coef = H @ c[active]
        if len(active) <= kmax:
            out.append(tuple(sorted(active)))
        if len(active) == 1:
            break
        s2 = max(bb - float(c[active] @ coef), 0.0) / max(1, n - len(active))
        with np.errstate(all="ignore"):
            t = np.abs(coef) / np.sqrt(np.maximum(np.diag(H) * s2, 1e-300))
        j = int(np.nanargmin(t)) if np.any(np.isfinite(t)) else 0
        h = H[:, j].copy()
        if abs(h[j]) > 1e-300:
            H = H - np.outer(h, h) / h[j]
        H = np.delete(np.delete(H, j, axis=0), j, axis=1)
        active.pop(j)
    return out


def _screen(
    A: np.ndarray, b: np.ndarray, supports: Sequence[tuple[int, ...]], cost: np.ndarray, top: int
) -> list[tuple[int, ...]]:
    """The ``top`` supports of smallest approximate description length, and the
    closest fit of each size.

    Least squares of each support from the Gram matrix of the unit-norm columns (batched
    by size), ``chi2 / 2`` plus the structure cost of its terms (``cost``, nats per
    term) plus the precision cost of each coefficient: the exact description length of
    the best ones is computed after (the Gram matrix loses the digits of a near-exact
    fit, which is why this only screens)."""
    norms = column_norms(A)
    U = A / norms
    G = U.T @ U
    c = U.T @ b
    # Below this the Gram matrix's chi-squared is rounding: near-exact supports tie there
    # and their structure decides.
    bb = float(b @ b)
    floor = 1e-9 * bb
    scored: list[tuple[float, tuple[int, ...]]] = []
    closest: list[tuple[int, ...]] = []
    by_size: dict[int, list[tuple[int, ...]]] = {}
    for s in supports:
        by_size.setdefault(len(s), []).append(s)
    for k, group in by_size.items():
        idx = np.asarray(group, dtype=int)  # (m, k)
        Gs = G[idx[:, :, None], idx[:, None, :]] + 1e-12 * np.eye(k)
        cs = c[idx]
        with np.errstate(all="ignore"):
            try:
                coef = np.linalg.solve(Gs, cs[..., None])[..., 0]
            except np.linalg.LinAlgError:
                continue
            chi2_value = np.maximum(bb - np.sum(cs * coef, axis=1), floor)
            theta2 = coef * coef  # unit-norm columns: Fisher diagonal 1 for the scaled theta
            pcost = np.sum(np.maximum(0.0, 0.5 * np.log(theta2 / 3.0)), axis=1)
            dl = 0.5 * chi2_value + np.sum(cost[idx], axis=1) + pcost
        for value, sup in zip(dl, group, strict=True):
            if math.isfinite(value):
                scored.append((float(value), sup))
        # The closest fit of each size too, whatever its cost at this noise level: if the
        # level was overestimated, that is the formula that shows it.
        if np.any(np.isfinite(chi2_value)):
            closest.append(group[int(np.nanargmin(chi2_value))])
    scored.sort(key=lambda t: t[0])
    return list(dict.fromkeys([*(sup for _, sup in scored[:top]), *closest]))


def _search(
    A: np.ndarray,
    b: np.ndarray,
    libs: Sequence[Sequence[int]],
    cost: np.ndarray,
    kmax: int,
    top: int,
    valid: Callable[[tuple[int, ...]], bool] | None = None,
) -> list[tuple[int, ...]]:
    """Supports (as column indices of ``A``) worth an exact score: exhaustive over each
    small sub-library, the greedy paths over the others, screened by
    :func:`_screen`."""
    n = A.shape[0]
    kmax = min(kmax, n - 1)
    found: dict[tuple[int, ...], None] = {}
    norms = column_norms(A)
    for lib in libs:
        lib = list(lib)
        sub = A[:, lib] / norms[lib]
        local = _exhaustive(len(lib), kmax)
        if not local or len(local[-1]) < min(kmax, len(lib)):
            local += _paths(sub, b, kmax)
        for s in local:
            found.setdefault(tuple(sorted(lib[i] for i in s)))
    supports = [s for s in found if valid is None or valid(s)]
    return _screen(A, b, supports, cost, top)


# ----------------------------------------------------------------- scoring


def _linear_dl(
    terms: Sequence[Term], coef: np.ndarray, chi2_value: float, fisher: np.ndarray
) -> tuple[float, sympy.Expr]:
    """Description length of ``sum coef_k * term_k`` and its template."""
    syms = [sympy.Symbol(f"p{k}", real=True) for k in range(len(terms))]
    template = sympy.Add(*(s * t.expr for s, t in zip(syms, terms, strict=True)))
    dl = description_length(
        chi2_value,
        node_count(template),
        operator_kinds(template),
        fisher,
        coef,
        number_cost=number_cost(template),
    )
    return dl, template


def _fill(template: sympy.Expr, params: np.ndarray) -> sympy.Expr:
    return template.xreplace(
        {sympy.Symbol(f"p{k}", real=True): sympy.Float(float(v)) for k, v in enumerate(params)}
    )


def _term_costs(terms: Sequence[Term]) -> np.ndarray:
    """Approximate nats of each term in a sum (its nodes, a coefficient and a product, at
    a typical ``ln 6`` per node, and its numbers), for :func:`_screen`."""
    per_node = math.log(6.0)
    return np.array([(node_count(t.expr) + 2) * per_node + number_cost(t.expr) for t in terms])


def linear_candidates(
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    variables: Sequence[sympy.Symbol],
    *,
    degree: int | None = None,
    max_terms: int = MAX_TERMS,
    rational: bool = True,
    keep: int = 12,
    screen: int = 40,
    deadline: float | None = None,
    terms: Sequence[Term] | None = None,
) -> list[LinearCandidate]:
    """Sparse-regression candidates for ``y = f(X)``, best description length first.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs (finite).
    y : ndarray of shape (n,)
        Target (finite).
    sigma : ndarray of shape (n,)
        Error bar of each sample (given, or the estimated noise level).
    variables : sequence of sympy.Symbol
        One symbol per column of ``X``.
    degree : int, optional
        Highest degree of the monomials of the library (see :func:`term_library`).
    max_terms : int
        Most terms of a candidate.
    rational : bool
        Also propose rational functions ``P / (1 + Q)`` (``P`` and ``Q`` polynomials of
        degree <= 2, ``Q`` without constant).
    keep : int
        Candidates returned.
    screen : int
        Supports of each kind given an exact score (the best by the approximate one).
    deadline : float, optional
        A :func:`time.perf_counter` value after which no new support is refitted.
    terms : sequence of Term, optional
        The library, if already built on ``X`` (``degree`` is then ignored): it depends
        on the inputs only, and callers regress several targets on the same inputs.

    Returns
    -------
    list of LinearCandidate
        The linear ones best first (each fitted by weighted least squares: the nonlinear
        fit too; ``keep`` of them, then the closest fit of each size not among them),
        then the rational ones with their linearised constants and a ``nan``
        description length (refit them first).
    """
    terms = list(terms) if terms is not None else term_library(X, variables, degree=degree)
    w = 1.0 / np.asarray(sigma, dtype=float)
    A = np.stack([t.values for t in terms], axis=1) * w[:, None]
    b = y * w
    supports = _search(A, b, sub_libraries(terms), _term_costs(terms), max_terms, screen)
    out: list[LinearCandidate] = []
    for s in supports:
        if deadline is not None and time.perf_counter() > deadline:
            break
        sub = A[:, list(s)]
        coef, *_ = np.linalg.lstsq(sub, b, rcond=None)
        resid = b - sub @ coef
        chi2_value = float(resid @ resid)
        fisher = np.sum(sub * sub, axis=0)
        dl, template = _linear_dl([terms[i] for i in s], coef, chi2_value, fisher)
        if math.isfinite(dl):
            out.append(
                LinearCandidate("sparse", _fill(template, coef), template, coef, chi2_value, dl)
            )
    out.sort(key=lambda c: c.description_length)
    seen: set[str] = set()
    unique = []
    for c in out:
        key = sympy.srepr(c.template)
        if key not in seen:
            seen.add(key)
            unique.append(c)
    # And the closest fit of each size (what shows an overestimated noise level).
    closest: dict[int, LinearCandidate] = {}
    for c in unique:
        k = len(c.params)
        if k not in closest or c.chi2 < closest[k].chi2:
            closest[k] = c
    chosen = unique[:keep]
    chosen += [c for c in closest.values() if all(c is not o for o in chosen)]
    rationals = _rational_candidates(X, y, sigma, variables, max_terms) if rational else []
    return chosen + rationals


def _real_screen(
    A: np.ndarray,
    b: np.ndarray,
    base: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    n_p: int,
    supports: Sequence[tuple[int, ...]],
    cost: np.ndarray,
    top: int,
) -> list[tuple[int, ...]]:
    """The ``top`` rational supports by the *real* residual ``y - P/Q`` at their
    linearised least-squares constants (plus their approximate structure cost), computed
    for all supports at once by size (normal equations of the unit-norm columns)."""
    norms = column_norms(A)
    U = A / norms
    G, c = U.T @ U, U.T @ b
    scored: list[tuple[float, tuple[int, ...]]] = []
    by_size: dict[int, list[tuple[int, ...]]] = {}
    for sup in supports:
        by_size.setdefault(len(sup), []).append(sup)
    for k, group in by_size.items():
        for start in range(0, len(group), 512):  # bounded memory: n x 512 x k values
            chunk = group[start : start + 512]
            idx = np.asarray(chunk, dtype=int)
            Gs = G[idx[:, :, None], idx[:, None, :]] + 1e-12 * np.eye(k)
            with np.errstate(all="ignore"):
                try:
                    coef = np.linalg.solve(Gs, c[idx][..., None])[..., 0] / norms[idx]
                except np.linalg.LinAlgError:
                    continue
                terms = base[:, idx] * coef[None]  # (n, m, k)
                is_q = idx >= n_p
                P = np.sum(np.where(is_q[None], 0.0, terms), axis=2)
                Q = 1.0 + np.sum(np.where(is_q[None], terms, 0.0), axis=2)
                r = (y[:, None] - P / Q) * w[:, None]
                chi2_value = np.sum(r * r, axis=0)
            dl = 0.5 * chi2_value + np.sum(cost[idx], axis=1)
            for value, sup in zip(dl, chunk, strict=True):
                if math.isfinite(value):
                    scored.append((float(value), sup))
    scored.sort(key=lambda t: t[0])
    return [sup for _, sup in scored[:top]]


def _rational_candidates(
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    variables: Sequence[sympy.Symbol],
    max_terms: int,
    *,
    refits: int = 6,
) -> list[LinearCandidate]:
    """``P / (1 + Q)`` by the linearisation ``y = P - y Q``: the best ``refits`` supports
    by the chi-squared of the rational form at the linearised constants plus their
    approximate structure cost, with those constants (to be refitted by nonlinear least
    squares: their description length is ``nan``)."""
    n, d = X.shape
    # Only the polynomials: the rest of the library is not built for nothing.
    numer = _distinct(_monomials(X, variables, 2 if d <= 6 else 1))
    denom = [t for t in numer if t.degree > 0]
    if not denom:
        return []
    w = 1.0 / np.asarray(sigma, dtype=float)
    A = np.stack([t.values for t in numer] + [-y * t.values for t in denom], axis=1) * w[:, None]
    b = y * w
    if not np.all(column_norms(A) > 0):
        return []
    n_p = len(numer)
    cost = _term_costs([*numer, *denom])

    def valid(s: tuple[int, ...]) -> bool:  # a numerator and a denominator
        return any(i >= n_p for i in s) and any(i < n_p for i in s)

    # Values of the terms themselves: P = base[:, s_p] @ c_p, Q = 1 + base[:, s_q] @ c_q.
    base = np.stack([t.values for t in numer] + [t.values for t in denom], axis=1)

    def fractions(support: Sequence[int], coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(support) >= n_p
        cols = base[:, list(support)]
        return cols[:, ~q] @ coef[~q], 1.0 + cols[:, q] @ coef[q]

    # Rows weighted by 1 / |Q| of the full fit, then of the best support (Sanathanan &
    # Koerner): the linearised residual y Q - P is the real one times Q, and would favour
    # supports that only make Q small where y is noisy.
    row = np.ones(n)
    supports: list[tuple[int, ...]] = []
    start: tuple[int, ...] | None = tuple(range(A.shape[1])) if A.shape[1] < n // 2 else None
    for _ in range(2):
        if start is not None:
            coef, *_ = np.linalg.lstsq(A[:, list(start)] * row[:, None], b * row, rcond=None)
            Q = fractions(start, coef)[1]
            if np.all(np.abs(Q) > 1e-9):
                row = 1.0 / np.abs(Q)
        found = _search(
            A * row[:, None],
            b * row,
            [list(range(A.shape[1]))],
            cost,
            max_terms,
            10 * refits,
            valid,
        )
        supports = list(dict.fromkeys([*found, *supports]))
        start = found[0] if found else None
    # Small supports are all tried and judged by the real residual: the linearised one
    # rewards a Q that nearly vanishes on the data (y Q - P ~ 0 for any y), a degenerate
    # solution the screening above can prefer to the law.
    small = [t for t in _exhaustive(A.shape[1], _RATIONAL_EXHAUSTIVE_TERMS) if valid(t)]
    small = _real_screen(A, b, base, y, w, n_p, small[:_RATIONAL_EXHAUSTIVE], cost, 10 * refits)
    supports = list(dict.fromkeys([*supports, *small]))
    ranked: list[tuple[float, tuple[int, ...], np.ndarray]] = []
    for s in supports:
        sub = A[:, list(s)]
        row = np.ones(n)
        best: tuple[float, np.ndarray] | None = None
        for _ in range(3):
            coef, *_ = np.linalg.lstsq(sub * row[:, None], b * row, rcond=None)
            P, Q = fractions(s, coef)
            if not np.all(np.abs(Q) > 1e-9):
                break
            with np.errstate(all="ignore"):
                r = (y - P / Q) * w
            c2 = float(r @ r)
            if math.isfinite(c2) and (best is None or c2 < best[0]):
                best = (c2, coef)
            row = 1.0 / np.abs(Q)
        if best is not None:
            ranked.append((0.5 * best[0] + float(np.sum(cost[list(s)])), s, best[1]))
    ranked.sort(key=lambda t: t[0])
    out = []
    for _, s, coef in ranked[:refits]:
        syms = [sympy.Symbol(f"p{k}", real=True) for k in range(len(s))]
        P = sympy.Add(*(p * numer[i].expr for p, i in zip(syms, s, strict=True) if i < n_p))
        Q = sympy.Add(*(p * denom[i - n_p].expr for p, i in zip(syms, s, strict=True) if i >= n_p))
        template = P / (1 + Q)
        c2 = float(np.sum(((y - np.divide(*fractions(s, coef))) * w) ** 2))
        out.append(LinearCandidate("rational", _fill(template, coef), template, coef, c2, math.nan))
    return out
