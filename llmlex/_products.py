"""Products of factors, found by sparse regression on ``log|y|``: a generator of
multivariate candidate formulas beside :mod:`llmlex._sparse`.

Many laws of physics are a constant times a product of powers of simple factors:
``q1*q2/(4*pi*eps*r**2)``, ``r*F*sin(theta)``, ``m0/sqrt(1 - v**2/c**2)`` (that is
``m0*c*(c**2 - v**2)**(-1/2)``), ``kappa*(T2 - T1)*A/d``.  On a log scale such a law is a
*sum*, ``log|y| = log|c| + sum_k a_k log|f_k(x)|``, so the sparse regression of
:mod:`llmlex._sparse` finds it over a library of factors ``f_k``
(:func:`factor_library`): each input, its ``sin`` and ``cos``, ``x - 1``, its ``log``
where positive, ``exp`` of an input and of its square; of each pair of inputs their
difference, sum, difference and sum of squares, the log of their ratio; binomials
``m1 +- m2`` of low-degree monomials (``x - u*t``, ``c**2 + u*v``) and sums of three
squares; and (:func:`composite_factors`) functions of a monomial argument:
``exp(-m*g*h/(k*T))``, ``exp(M) - 1``, ``cosh``, ``tanh``, ``sin``, ``cos`` of ``k*M``,
gaussians of differences.  With some laws the
product sits inside one outer function, which is undone first: ``y = arcsin(F)`` (then
``sin(y) = F``) and ``y = 1/(exp(F) - 1)`` (then ``log(1 + 1/y) = F``).

The supports are the sparsity paths of :mod:`llmlex._sparse` and, because a greedy path
misses a factor that helps only with a partner, every input's power with every one or
two other factors (batched normal equations) and a beam search, each pruned of the
factors whose removal shortens ``chi2/2`` plus the factors' cost.

The log-space fit weights each sample by ``|u| / sigma_u`` (the error of ``log|u|`` to
first order, floored at a relative precision of 1e-7), so that samples near a zero of the
law, where the log is noise, do not decide.  A factor whose sign changes on the data
takes an integer exponent (its sign must then match the data's); the others a free one.
The candidates are returned with their log-space constants and a ``nan`` description
length: the caller refits them on ``y`` by nonlinear least squares and scores them
(:mod:`llmlex._multivariate`).

numpy, sympy and scikit-learn (through :mod:`llmlex._sparse`); no torch.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from llmlex._sparse import LinearCandidate, _fill, _search
from llmlex._symbolic import node_count

__all__ = [
    "Factor",
    "ProductLibrary",
    "composite_factors",
    "factor_library",
    "product_candidates",
    "product_library",
]

log = logging.getLogger("llmlex.products")

#: Most factors of a candidate.
MAX_FACTORS = 6
#: Fewest usable samples (where the transformed target is finite and nonzero).
_MIN_ROWS = 10
#: Binomial factors (:func:`_binomials`) up to this many inputs (their number grows as
#: the fourth power of the inputs').
_BINOMIAL_INPUTS = 6
#: Relative precision below which the log-space fit does not weight a sample further.
_LOG_PRECISION = 1e-7
#: Other factors tried in pairs with the powers (the best alone, in a large library).
_SHORTLIST = 1600
#: Supports kept at each size of the beam search over other factors.
_BEAM = 10
#: An integer exponent is taken only if the log-space one is this close to it.
_INTEGER_TOLERANCE = 0.2
#: Composites whose log values beside the powers are this parallel are one factor.
_SAME_DIRECTION = 0.99
#: Most monomial arguments of the composite factors: arguments of fewer inputs are taken
#: beyond it (their number grows as ``C(d, k) 2**k``: 34,000 of three of 30 inputs, each
#: giving a dozen factors, for minutes of work on a wide table of a few rows).
_MOST_ARGUMENTS = 2000


@dataclass(frozen=True, eq=False)
class Factor:
    """A factor of a product: ``base**a`` (``kind="power"``) or ``exp(a*base)``
    (``kind="exp"``), and the log of its absolute value per unit exponent on the data.

    ``signed`` factors change sign on the data: their exponent must be an integer.  The
    base is given, or built on first use by ``make`` (thousands of factors of monomial
    arguments are screened, a few used; building ``sin(1.0*x0*x1/x2)`` in sympy costs
    far more than evaluating it), with ``nodes`` its size."""

    source: sympy.Expr | None
    log_values: np.ndarray
    kind: str = "power"
    signed: bool = False
    variables: int = 1
    sign: np.ndarray | None = None  # of a signed factor on the data
    make: Callable[[], sympy.Expr] | None = None
    nodes: int = 0
    negated: bool = False

    @functools.cached_property
    def base(self) -> sympy.Expr:
        if self.source is not None:
            return self.source
        assert self.make is not None
        return -self.make() if self.negated else self.make()

    @functools.cached_property
    def size(self) -> int:
        """sympy nodes of the base."""
        return self.nodes if self.source is None else node_count(self.source)

    def expr(self, exponent: sympy.Expr) -> sympy.Expr:
        """The factor at ``exponent``: ``base**exponent`` or ``exp(exponent*base)``."""
        if self.kind == "exp":
            return sympy.exp(exponent * self.base)
        return self.base**exponent


def _power(
    base: sympy.Expr | None,
    v: np.ndarray,
    nvars: int,
    make: Callable[[], sympy.Expr] | None = None,
    nodes: int = 0,
) -> Factor | None:
    """``base`` (or ``-base`` where it is negative throughout) as a power factor, if it
    stays away from 0 on every sample; ``make`` and ``nodes`` for a base built later."""
    v = np.asarray(v, dtype=float)
    if not np.all(np.isfinite(v)):
        return None
    a = np.abs(v)
    top = float(np.max(a)) if a.size else 0.0
    if top == 0.0 or float(np.min(a)) <= 1e-6 * top or np.ptp(v) == 0.0:
        return None
    lazy = {"make": make, "nodes": nodes}
    if np.all(v < 0):
        if base is None:
            return Factor(None, np.log(a), variables=nvars, negated=True, **lazy)
        return Factor(-base, np.log(a), variables=nvars)
    if np.all(v > 0):
        return Factor(base, np.log(a), variables=nvars, **lazy)
    return Factor(base, np.log(a), signed=True, variables=nvars, sign=np.sign(v), **lazy)


def _binomials(
    X: np.ndarray, variables: Sequence[sympy.Symbol], *, with_one: bool = False
) -> list[Factor | None]:
    """``m1 + m2`` and ``m1 - m2`` for monomials of degree 1 and 2 (and 3 up to four
    inputs) not both of degree 1 (those are the pair factors): ``x - u*t``,
    ``c**2 + u*v``, ``w0**2 - w**2``, ``t*c**2 - u*x``; ``with_one``, also ``1 +- m``.
    Also the sum of the squares of three inputs (the length of a vector)."""
    d = X.shape[1]
    monos: list[tuple[sympy.Expr, np.ndarray, int]] = [(variables[k], X[:, k], 1) for k in range(d)]
    if with_one:
        monos.insert(0, (sympy.Integer(1), np.ones(X.shape[0]), 0))
    for g in (2, 3) if d <= 4 else (2,):
        for combo in itertools.combinations_with_replacement(range(d), g):
            expr = sympy.Mul(*(variables[k] for k in combo))
            monos.append((expr, np.prod([X[:, k] for k in combo], axis=0), g))
    out: list[Factor | None] = []
    for (e1, v1, g1), (e2, v2, g2) in itertools.combinations(monos, 2):
        if g1 == g2 == 1:
            continue
        nv = len(e1.free_symbols | e2.free_symbols)
        out += [_power(e1 - e2, v1 - v2, nv), _power(e1 + e2, v1 + v2, nv)]
    for i, j, k in itertools.combinations(range(d), 3):
        xi, xj, xk = variables[i], variables[j], variables[k]
        v = X[:, i] ** 2 + X[:, j] ** 2 + X[:, k] ** 2
        out.append(_power(xi**2 + xj**2 + xk**2, v, 3))
    return out


def factor_library(
    X: np.ndarray, variables: Sequence[sympy.Symbol], *, dimensionless: bool = False
) -> list[Factor]:
    """The factors a product may be made of, evaluated on ``X`` (see the module's
    docstring).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs (finite).
    variables : sequence of sympy.Symbol
        One symbol per column of ``X``.

    Returns
    -------
    list of Factor
        Each finite and away from 0 on every sample, none a multiple of another on the
        log scale; the inputs' powers first.
    """
    d = X.shape[1]
    raw: list[Factor | None] = []
    for k in range(d):
        x, v = variables[k], X[:, k]
        raw += [
            _power(x, v, 1),
            _power(sympy.sin(x), np.sin(v), 1),
            _power(sympy.cos(x), np.cos(v), 1),
            _power(x - 1, v - 1.0, 1),
            Factor(x, v, kind="exp"),
            Factor(x**2, v * v, kind="exp"),
        ]
        if np.all(v > 0):  # n*log(V2/V1) once the volumes' ratio is one variable
            raw.append(_power(sympy.log(x), np.log(v), 1))
    for k, j in itertools.combinations(range(d), 2):
        xk, xj, vk, vj = variables[k], variables[j], X[:, k], X[:, j]
        raw += [
            _power(xk - xj, vk - vj, 2),
            _power(xk + xj, vk + vj, 2),
            _power(xk**2 - xj**2, vk * vk - vj * vj, 2),
            _power(xk**2 + xj**2, vk * vk + vj * vj, 2),
        ]
        if np.all(vk > 0) and np.all(vj > 0):
            raw.append(_power(sympy.log(xk / xj), np.log(vk / vj), 2))
    if d <= _BINOMIAL_INPUTS:
        raw += _binomials(X, variables, with_one=dimensionless)
    out: list[Factor] = []
    units: list[np.ndarray] = []
    for f in raw:
        if f is None or not np.all(np.isfinite(f.log_values)):
            continue
        centred = f.log_values - f.log_values.mean()
        norm = float(np.linalg.norm(centred))
        if norm == 0.0 or float(np.max(np.abs(f.log_values))) > 700.0:
            continue
        u = centred / norm
        if units and np.max(np.abs(np.asarray(units) @ u)) > 1.0 - 1e-10:
            continue
        units.append(u)
        out.append(f)
    return out


#: Functions ``g`` of a monomial argument that a product may hold as a factor
#: ``g(k*M)**a`` (with ``k`` refitted from 1 and the listed starts).
_COMPOSITES: tuple[tuple[str, Callable[[sympy.Expr], sympy.Expr], Callable, tuple], ...] = (
    ("expm1", lambda t: sympy.exp(t) - 1, np.expm1, (1.0, 0.5, 1 / (2 * math.pi))),
    ("cosh", sympy.cosh, np.cosh, (1.0,)),
    ("tanh", sympy.tanh, np.tanh, (1.0,)),
    ("sin", sympy.sin, np.sin, (1.0, 0.5, 2 * math.pi)),
    ("cos", sympy.cos, np.cos, (1.0, 2 * math.pi)),
)


def _monomial_args(
    X: np.ndarray, variables: Sequence[sympy.Symbol], exponents: Sequence[int], most: int
) -> list[tuple[sympy.Expr, np.ndarray]]:
    """Monomials ``prod x_k**e_k`` of at least two inputs (or one at an exponent other than
    1 and 2, which the factor library has) with ``e_k`` from ``exponents`` and at most
    ``most`` of them nonzero."""
    d = X.shape[1]
    out: list[tuple[sympy.Expr, np.ndarray]] = []
    with np.errstate(all="ignore"):
        for k in range(1, most + 1):
            for idx in itertools.combinations(range(d), k):
                for es in itertools.product(exponents, repeat=k):
                    if k == 1 and es[0] in (1, 2):
                        continue
                    expr = sympy.Mul(*(variables[i] ** e for i, e in zip(idx, es, strict=True)))
                    vals = np.prod([X[:, i] ** float(e) for i, e in zip(idx, es, strict=True)], 0)
                    if np.all(np.isfinite(vals)):
                        out.append((expr, vals))
    return out


def _argument_inputs(d: int) -> int:
    """Most inputs of a monomial argument on ``d`` inputs: five up to six inputs, three
    beyond, fewer where the arguments would outnumber :data:`_MOST_ARGUMENTS`."""
    most = 5 if d <= 6 else 3
    while most > 1 and sum(math.comb(d, k) * 2**k for k in range(1, most + 1)) > _MOST_ARGUMENTS:
        most -= 1
    return most


def composite_factors(X: np.ndarray, variables: Sequence[sympy.Symbol]) -> list[Factor]:
    """Factors of a monomial argument ``M``: ``exp(a*M)`` and ``g(k*M)**a`` for ``g`` in
    ``exp(.) - 1``, ``cosh``, ``tanh``, ``sin``, ``cos``: Boltzmann factors, gaussians,
    Planck's law.  ``M`` has exponents +-1 on up to five inputs (three beyond six inputs,
    fewer beyond 11: at most :data:`_MOST_ARGUMENTS` such arguments),
    or +-2 and +-1 on up to two (``exp`` only), or is ``(x_i - x_j)**2`` or
    ``((x_i - x_j)/x_k)**2`` (``exp`` only); the scale ``k`` is a float the refit frees.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs (finite).
    variables : sequence of sympy.Symbol
        One symbol per column of ``X``.

    Returns
    -------
    list of Factor
        Finite and varying on every sample; their sympy bases built only when used.
    """
    d = X.shape[1]
    out: list[Factor] = []
    squares = [
        (e, v)
        for e, v in _monomial_args(X, variables, (-2, -1, 1, 2), 2)
        if any(abs(p) == 2 for p in e.as_powers_dict().values())
    ]
    # Gaussians of a difference: exp(a*(x_i - x_j)**2), exp(a*((x_i - x_j)/x_k)**2).
    for i, j in itertools.combinations(range(d), 2):
        diff = X[:, i] - X[:, j]
        squares.append(((variables[i] - variables[j]) ** 2, diff * diff))
        for k in range(d):
            if k not in (i, j) and np.all(X[:, k] != 0):
                q = diff / X[:, k]
                squares.append((((variables[i] - variables[j]) / variables[k]) ** 2, q * q))
    plain = _monomial_args(X, variables, (-1, 1), _argument_inputs(d))
    for expr, vals in [*plain, *squares]:
        if float(np.max(np.abs(vals))) <= 700.0 and np.ptp(vals) > 0:
            out.append(Factor(expr, vals, kind="exp", variables=len(expr.free_symbols)))
    # g of a single input too, at the scales other than 1 (sin(x/2); sin(x) is a factor).
    single = [(variables[k], X[:, k]) for k in range(d)]
    for expr, vals in [*single, *plain]:
        nv, size = len(expr.free_symbols), node_count(expr) + 3
        for name, g, fn, scales in _COMPOSITES:
            for k in scales:
                if k == 1.0 and expr in variables and name in ("sin", "cos"):
                    continue
                with np.errstate(all="ignore"):
                    f = _power(
                        None,
                        fn(k * vals),
                        nv,
                        make=lambda g=g, k=k, expr=expr: g(sympy.Float(k) * expr),
                        nodes=size,
                    )
                if f is not None and float(np.max(np.abs(f.log_values))) <= 700.0:
                    out.append(f)
    return out


def _powers_and_one(
    A: np.ndarray, b: np.ndarray, C: np.ndarray, powers: Sequence[int], cost: np.ndarray, top: int
) -> list[int]:
    """Indices of the ``top`` columns of ``C`` that best complete the powers of ``A``
    (``chi2/2`` plus the column's cost; batched normal equations: the Gram matrix of the
    powers, bordered by each column)."""
    P = A[:, list(powers)]
    if P.shape[1] == 0 or C.shape[1] == 0:
        return []
    Gpp, cp = P.T @ P, P.T @ b
    Gpc, cc = P.T @ C, C.T @ b
    dc = np.einsum("ij,ij->j", C, C)
    m = P.shape[1]
    G = np.empty((C.shape[1], m + 1, m + 1))
    G[:, :m, :m] = Gpp
    G[:, :m, m] = Gpc.T
    G[:, m, :m] = Gpc.T
    G[:, m, m] = dc
    rhs = np.concatenate([np.broadcast_to(cp, (C.shape[1], m)), cc[:, None]], axis=1)
    with np.errstate(all="ignore"):
        try:
            coef = np.linalg.solve(
                G + 1e-12 * np.eye(m + 1) * (1 + dc[:, None, None]), rhs[..., None]
            )[..., 0]
        except np.linalg.LinAlgError:
            return []
        chi2_value = float(b @ b) - np.sum(rhs * coef, axis=1)
    value = np.where(dc > 0, 0.5 * chi2_value + cost, np.inf)  # a constant column: none
    order = np.argsort(np.where(np.isfinite(value), value, np.inf))
    # Near-copies beside the powers (exp(x/2) - 1 and exp(x) - 1 on a short range) would
    # fill the shortlist with one factor: each chosen column differs from the others
    # once the powers are projected out.
    with np.errstate(all="ignore"):
        R = C - P @ np.linalg.lstsq(P, C, rcond=None)[0]
        R = R / np.linalg.norm(R, axis=0)
    chosen: list[int] = []
    for i in order:
        if len(chosen) == top or not np.isfinite(value[i]):
            break
        if chosen and np.all(np.isfinite(R[:, i])):
            if float(np.max(np.abs(R[:, chosen].T @ R[:, i]))) > _SAME_DIRECTION:
                continue
        chosen.append(int(i))
    return chosen


@dataclass(frozen=True, eq=False)
class ProductLibrary:
    """The factors of :func:`factor_library` and :func:`composite_factors` on one ``X``,
    their log values stacked and their approximate costs: they depend on the inputs only,
    so a caller that searches several targets or noise levels builds them once."""

    factors: list[Factor]
    composites: list[Factor]
    L: np.ndarray
    Lc: np.ndarray
    cost: np.ndarray
    cost_c: np.ndarray


def product_library(
    X: np.ndarray, variables: Sequence[sympy.Symbol], *, dimensionless: bool = False
) -> ProductLibrary:
    """The library :func:`product_candidates` searches, built on ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs (finite).
    variables : sequence of sympy.Symbol
        One symbol per column of ``X``.
    dimensionless : bool
        The inputs are dimensionless groups (:mod:`llmlex._dimensions`): ``1 +- m`` of a
        monomial ``m`` is then a factor too (``1 - v**2/c**2`` in ``v/c``); of inputs in
        units, ``1 + x`` means nothing.

    Returns
    -------
    ProductLibrary
    """
    factors = factor_library(X, variables, dimensionless=dimensionless)
    comp = composite_factors(X, variables)
    n = X.shape[0]
    L = np.stack([f.log_values for f in factors], axis=1) if factors else np.zeros((n, 0))
    Lc = np.stack([f.log_values for f in comp], axis=1) if comp else np.zeros((n, 0))
    per_node = math.log(6.0)
    return ProductLibrary(
        factors,
        comp,
        L,
        Lc,
        np.array([(f.size + 2) * per_node for f in factors]),
        np.array([(f.size + 2) * per_node for f in comp]),
    )


@dataclass(frozen=True)
class _Outer:
    """An outer function ``y = g(F)`` undone before the log-space fit: ``u = g^-1(y)``,
    ``|du/dy|``, and ``g`` as a sympy function of ``F``."""

    name: str
    applies: Callable[[np.ndarray], bool]
    inverse: Callable[[np.ndarray], np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]
    outer: Callable[[sympy.Expr], sympy.Expr]


_OUTERS: tuple[_Outer, ...] = (
    _Outer("product", lambda y: True, lambda y: y, np.ones_like, lambda F: F),
    _Outer(
        "asin-product",
        lambda y: float(np.max(np.abs(y))) < 0.99 * math.pi / 2,
        np.sin,
        lambda y: np.abs(np.cos(y)),
        sympy.asin,
    ),
    _Outer(
        "bose-product",
        lambda y: bool(np.all(y > 0)),
        lambda y: np.log1p(1.0 / y),
        lambda y: 1.0 / (y * (1.0 + y)),
        lambda F: 1 / (sympy.exp(F) - 1),
    ),
)


def _template(
    factors: Sequence[Factor],
    coef: np.ndarray,
    intercept: float,
    u: np.ndarray,
    w: np.ndarray,
    rows: np.ndarray,
) -> tuple[sympy.Expr, np.ndarray] | None:
    """``p0 * prod factor_k(p_k)`` with the log-space constants, signed factors at integer
    exponents; ``None`` if an exponent of a signed factor is not near an integer or the
    signs of the product do not follow the data's."""
    p0 = sympy.Symbol("p0", real=True)
    parts: list[sympy.Expr] = []
    params = [math.exp(min(intercept, 700.0))]
    sign = np.ones(u.size)
    for f, a in zip(factors, coef, strict=True):
        if f.signed:
            m = round(float(a))
            if m == 0 or abs(float(a) - m) > _INTEGER_TOLERANCE:
                return None
            parts.append(f.expr(sympy.Integer(m)))
            if m % 2 and f.sign is not None:
                sign = sign * f.sign[rows]
            continue
        p = sympy.Symbol(f"p{len(params)}", real=True)
        params.append(float(a))
        parts.append(f.expr(p))
    # The data's sign over the product's, where the data are clearly away from 0.
    clear = w > 3.0
    ratio = np.sign(u) * sign
    if not np.any(clear):
        return None
    s = 1.0 if np.sum(ratio[clear] > 0) >= np.sum(ratio[clear] < 0) else -1.0
    if np.mean(ratio[clear] != s) > 0.01:
        return None
    params[0] *= s
    return p0 * sympy.Mul(*parts), np.asarray(params)


def _powers_and_others(
    A: np.ndarray,
    b: np.ndarray,
    powers: Sequence[int],
    cost: np.ndarray,
    top: int,
    floor: float,
) -> list[tuple[int, ...]]:
    """Supports of every input's power and up to two (three in a small library) other
    factors, the ``top`` best by ``chi2/2`` plus the other factors' cost.

    The greedy paths miss products such as ``x0*x3*(x1 - x2)/x4``: on the log scale
    ``x0 + x3`` correlates with ``x0*x3`` and enters first.  With all the powers present
    the other factors are few, and their pairs can all be tried (batched normal
    equations); :func:`_pruned` then drops the powers the law has not."""
    p = A.shape[1]
    others = [i for i in range(p) if i not in set(powers)]
    norms = np.linalg.norm(A, axis=0)
    with np.errstate(all="ignore"):
        U = A / np.where(norms > 0, norms, 1.0)
    G, c, bb = U.T @ U, U.T @ b, float(b @ b)

    def scored(extras: Sequence[tuple[int, ...]]) -> list[tuple[float, tuple[int, ...]]]:
        out: list[tuple[float, tuple[int, ...]]] = []
        by_size: dict[int, list[tuple[int, ...]]] = {}
        for e in extras:
            sup = tuple(sorted({*powers, *e}))
            if sup:
                by_size.setdefault(len(sup), []).append(sup)
        for group in by_size.values():
            for start in range(0, len(group), 4096):
                chunk = group[start : start + 4096]
                idx = np.asarray(chunk, dtype=int)
                m = idx.shape[1]
                Gs = G[idx[:, :, None], idx[:, None, :]] + 1e-12 * np.eye(m)
                with np.errstate(all="ignore"):
                    try:
                        coef = np.linalg.solve(Gs, c[idx][..., None])[..., 0]
                    except np.linalg.LinAlgError:
                        continue
                    chi2_value = np.maximum(bb - np.sum(c[idx] * coef, axis=1), floor)
                extra_cost = np.sum(np.where(np.isin(idx, powers), 0.0, cost[idx]), axis=1)
                for value, sup in zip(0.5 * chi2_value + extra_cost, chunk, strict=True):
                    if math.isfinite(value):
                        out.append((float(value), sup))
        return out

    # A large library: pairs (and triples) only among the others that do best alone,
    # and a beam: the best few supports of each size, each grown by every other factor
    # (a factor that helps only with a partner is found once the partner is in).
    alone = scored([(), *((i,) for i in others)])
    alone.sort(key=lambda t: t[0])
    shortlist = others
    if len(others) > _SHORTLIST:
        shortlist = sorted({i for _, sup in alone[:_SHORTLIST] for i in sup if i in others})
    kmax = 3 if len(shortlist) <= 25 else 2
    extra: list[tuple[int, ...]] = []
    for k in range(2, kmax + 1):
        extra += list(itertools.combinations(shortlist, k))
    ranked = alone + scored(extra)
    beam = [tuple(i for i in sup if i in others) for _, sup in alone[:_BEAM]]
    for _ in range(2):
        grown = scored([tuple(sorted({*b, i})) for b in beam for i in others if i not in b])
        grown.sort(key=lambda t: t[0])
        ranked += grown
        beam = [tuple(i for i in sup if i in others) for _, sup in grown[:_BEAM]]
    ranked.sort(key=lambda t: t[0])
    return list(dict.fromkeys(sup for _, sup in ranked[:top]))


def _pruned(
    A: np.ndarray, b: np.ndarray, support: tuple[int, ...], cost: np.ndarray, floor: float
) -> tuple[int, ...]:
    """``support`` without the factors whose removal shortens ``chi2/2 + cost``: the
    one that shortens it most first, until none does."""
    current = list(support)

    def score(s: Sequence[int]) -> float:
        if not s:
            return 0.5 * max(float(b @ b), floor)
        coef, *_ = np.linalg.lstsq(A[:, list(s)], b, rcond=None)
        r = b - A[:, list(s)] @ coef
        return 0.5 * max(float(r @ r), floor) + float(np.sum(cost[list(s)]))

    best = score(current)
    while len(current) > 1:
        trials = [(score(current[:j] + current[j + 1 :]), j) for j in range(len(current))]
        value, j = min(trials)
        if value >= best:
            break
        best = value
        current.pop(j)
    return tuple(sorted(current))


def product_candidates(
    X: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    variables: Sequence[sympy.Symbol],
    *,
    max_factors: int = MAX_FACTORS,
    keep: int = 6,
    screen: int = 30,
    deadline: float | None = None,
    library: ProductLibrary | None = None,
) -> list[LinearCandidate]:
    """Products ``c * prod f_k(x)**a_k`` (also inside ``arcsin`` and ``1/(exp(F) - 1)``)
    by sparse regression on the log scale.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs (finite).
    y : ndarray of shape (n,)
        Target (finite).
    sigma : ndarray of shape (n,)
        Error bar of each sample.
    variables : sequence of sympy.Symbol
        One symbol per column of ``X``.
    max_factors : int
        Most factors of a product.
    keep : int
        Candidates returned for ``y`` itself (the best by the log-space fit); half as
        many, at least 2, inside each outer function.
    screen : int
        Supports kept from each search (the sparsity paths, the powers with other
        factors) and, a third of it (at least 4), the factors of a monomial argument
        that join the library.
    deadline : float, optional
        A :func:`time.perf_counter` value after which no further outer function is
        tried (the candidates found so far are returned).
    library : ProductLibrary, optional
        :func:`product_library` of ``X``, if already built.

    Returns
    -------
    list of LinearCandidate
        Origin ``product`` (or ``asin-product``, ``bose-product``), the constants of the
        log-space fit and a ``nan`` chi-squared and description length: refit them first.
    """
    plib = library if library is not None else product_library(X, variables)
    factors, comp = plib.factors, plib.composites
    if not factors:
        return []
    L, Lc, cost, cost_c = plib.L, plib.Lc, plib.cost, plib.cost_c
    single = [i for i, f in enumerate(factors) if f.variables == 1]
    # Each input's power (an input negative throughout is the factor -x).
    powers = [
        i
        for i, f in enumerate(factors)
        if f.kind == "power" and (f.base in variables or -f.base in variables)
    ]
    libs = [single, list(range(len(factors)))] if len(single) < len(factors) else [single]
    sigma = np.asarray(sigma, dtype=float)
    out: list[LinearCandidate] = []
    for outer in _OUTERS:
        if not outer.applies(y):
            continue
        if deadline is not None and time.perf_counter() > deadline and out:
            break
        with np.errstate(all="ignore"):
            u = outer.inverse(y)
            # The log's error to first order, floored at a relative precision: weights
            # spanning many decades (a Boltzmann factor's tail at a rounding-level noise)
            # make the weighted least squares lose the exact fit to conditioning.
            w = 1.0 / np.hypot(outer.slope(y) * sigma / np.abs(u), _LOG_PRECISION)
            b = np.log(np.abs(u))
        rows = np.isfinite(b) & np.isfinite(w) & (w > 0)
        if rows.sum() < max(_MIN_ROWS, 0.8 * y.size):
            continue
        # Weighted and centred (the constant factor is the intercept, always present).
        ww = w[rows] ** 2
        mean_L = ww @ L[rows] / ww.sum()
        mean_b = float(ww @ b[rows] / ww.sum())
        A = (L[rows] - mean_L) * w[rows, None]
        bc = (b[rows] - mean_b) * w[rows]
        if not np.all(np.linalg.norm(A, axis=0) > 0):
            continue
        floor = 1e-9 * float(bc @ bc)  # below it, chi-squared is rounding
        supports = _search(A, bc, libs, cost, max_factors, screen)
        # The factors of a monomial argument that best complete the powers join this
        # target's library; then the powers with up to two (three) other factors.
        Ac = (Lc[rows] - ww @ Lc[rows] / ww.sum()) * w[rows, None]
        chosen = _powers_and_one(A, bc, Ac, powers, cost_c, max(4, screen // 3))
        lib = [*factors, *(comp[i] for i in chosen)]
        A = np.concatenate([A, Ac[:, chosen]], axis=1)
        mean_L = np.concatenate([mean_L, (ww @ Lc[rows] / ww.sum())[chosen]])
        cost_all = np.concatenate([cost, cost_c[chosen]])
        # Every power with up to three others: a fit only where the rows outnumber them
        # (on fewer, each support fits the data exactly and says nothing).
        if len(powers) + 3 < A.shape[0]:
            supports += _powers_and_others(A, bc, powers, cost_all, screen, floor)
        ranked: list[tuple[float, float, tuple[int, ...], np.ndarray]] = []
        for s in dict.fromkeys(_pruned(A, bc, s, cost_all, floor) for s in supports):
            if not s or len(s) > max_factors:
                continue
            coef, *_ = np.linalg.lstsq(A[:, list(s)], bc, rcond=None)
            r = bc - A[:, list(s)] @ coef
            c2 = max(float(r @ r), floor)
            ranked.append((0.5 * c2 + float(np.sum(cost_all[list(s)])), c2, s, coef))
        ranked.sort(key=lambda t: t[0])
        accepted: list[tuple[float, frozenset[int]]] = []
        for _, c2, s, coef in ranked:
            if len(accepted) >= (keep if outer.name == "product" else max(2, keep // 2)):
                break
            # A product that only adds factors to an accepted one without fitting clearly
            # better (chi-squared down by 2 per factor) is the same law.
            if any(a < set(s) and c2 > c_a - 2.0 * (len(s) - len(a)) for c_a, a in accepted):
                continue
            intercept = mean_b - float(mean_L[list(s)] @ coef)
            made = _template([lib[i] for i in s], coef, intercept, u[rows], w[rows], rows)
            if made is None:
                continue
            inner, params = made
            template = outer.outer(inner)
            out.append(
                LinearCandidate(
                    outer.name, _fill(template, params), template, params, math.nan, math.nan
                )
            )
            accepted.append((c2, frozenset(s)))
    log.debug("%d product candidates", len(out))
    return out
