"""Structure from a smooth surrogate: separability, transforms, invariant combinations.

A trained KAN is a smooth, cheap stand-in for the data (AI Feynman's idea, Udrescu &
Tegmark 2020).  Given such a surrogate ``f`` of ``n`` variables, :func:`decompose` looks
for structure that reduces the problem to one-variable regressions:

- **separability**: ``T(f) = A(x_k) * B(rest)`` or ``A(x_k) + B(rest)`` for a transform
  ``T`` among identity, ``1/f``, ``f**2`` and ``1/f**2``, tested on random pairs of points
  (for a product, ``g(a) g(b) = g(a_k, b_rest) g(b_k, a_rest)``; for a sum, the same with
  ``+``); each part is decomposed in turn, one variable at a time;
- **invariant combinations** of two variables: ``g(x_i, x_j) = h(u)`` with ``u`` one of
  ``x_i*x_j``, ``x_i/x_j``, ``x_i + x_j``, ``x_i - x_j`` (tested by moving along the
  level sets of ``u``: the value must not change);
- **one variable**: the library of simple forms, then the offline genetic search, on a
  slice of the surrogate through a reference point.

Every test is judged against the surrogate's own error (its RMS error on the data,
propagated through the transform), so a rough surrogate finds nothing rather than
something wrong; and every formula found is only a *candidate*: the caller refits its
constants on the data and judges it on held-out points.

The expensive part is the one-variable regressions; with an ``executor`` they run there
(both sides of a separation at once, and every invariant combination that passes its
test), each as its slice -- points, values, tolerance, seed, search settings -- so the
surrogate itself never travels.  Every regression's seed and every test's random points
derive from the problem they belong to, not from the order in which work is done or
comes back: the same seed gives the same formulas with or without an executor.

This module needs numpy and sympy only; the surrogate is any vectorised callable.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy

from llmlex._forms import SLICE_LIBRARY
from llmlex._settings import DEFAULTS
from llmlex.exceptions import AnsatzTooComplexError, DataError, NoValidAnsatzError
from llmlex.fit import FitResult, fit_ansatz, nchi2
from llmlex.genetic import run_genetic

__all__ = ["decompose"]

log = logging.getLogger(__name__)

Surrogate = Callable[[np.ndarray], np.ndarray]

# Mismatch allowed in the separability and invariance tests, in units of the surrogate's
# propagated error (four evaluations enter each test; the error is not white noise).
_TEST_FACTOR = 20.0
# An invariance test counts only if moving one variable alone changes the value by at
# least this many times what the invariant move does (otherwise it has no power).
_POWER = 10.0
# One-variable formulas kept per part (simplest first, and the most accurate).
_ALTERNATIVES = 3
# Variants of one decomposition returned (each part at one of its alternatives).
_MAX_VARIANTS = 8
# A reciprocal transform needs the surrogate this far from zero (relative to its scale).
_MIN_ABS = 1e-2


@dataclass(frozen=True)
class _Transform:
    name: str  # how the origin text shows it, e.g. "1/f"
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[sympy.Expr, int], sympy.Expr]  # (expression, sign of f) -> f


_TRANSFORMS: tuple[_Transform, ...] = (
    _Transform("f", lambda v: v, lambda e, s: e),
    _Transform("1/f", lambda v: 1.0 / v, lambda e, s: 1 / e),
    _Transform("f**2", lambda v: v * v, lambda e, s: s * sympy.sqrt(e)),
    _Transform("1/f**2", lambda v: 1.0 / (v * v), lambda e, s: s / sympy.sqrt(e)),
)

# For one-variable parts only: a product of parts already covers sums of logarithms.
_LOG = _Transform("log|f|", lambda v: np.log(np.abs(v)), lambda e, s: s * sympy.exp(e))

# Two-variable combinations u(x_i, x_j): sympy form, numeric form, and the move that
# keeps u fixed (the first variable moved by ``t``, the second compensating).
_COMBOS: tuple[tuple[str, Callable, Callable, Callable], ...] = (
    ("*", lambda a, b: a * b, lambda a, b, t: (a * (1 + t), b / (1 + t)), lambda a, t: a * (1 + t)),
    ("/", lambda a, b: a / b, lambda a, b, t: (a * (1 + t), b * (1 + t)), lambda a, t: a * (1 + t)),
    ("+", lambda a, b: a + b, lambda a, b, t: (a + t, b - t), lambda a, t: a + t),
    ("-", lambda a, b: a - b, lambda a, b, t: (a + t, b + t), lambda a, t: a + t),
)


#: A test point is near the data when its distance to the nearest sample (columns
#: standardised) is at most this many times the 95th percentile of the samples' own
#: nearest-neighbour distances: beyond it the surrogate extrapolates.
_REACH = 2.0
#: Fewest points near the data for a test to be judged (and for a slice to be regressed).
_MIN_COVERED = 16


class _Coverage:
    """Where a surrogate fitted to the samples ``X`` can be trusted: near them.

    Samples need not fill a box: along trajectories or with correlated inputs the mixed
    points of a test (``x_k`` of one sample, the rest of another) and the slices through
    the reference can leave the samples' hull, where a network's values mean nothing.
    """

    def __init__(self, X: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        self.center = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale = np.where(scale > 0, scale, 1.0)
        Z = (X - self.center) / self.scale
        self.tree = cKDTree(Z)
        if X.shape[0] > 1:
            d, _ = self.tree.query(Z, k=2)
            self.reach = _REACH * float(np.quantile(d[:, 1], 0.95))
        else:
            self.reach = math.inf

    def near(self, Z: np.ndarray) -> np.ndarray:
        """Which rows of ``Z`` are within reach of a sample."""
        d, _ = self.tree.query((np.asarray(Z, dtype=float) - self.center) / self.scale, k=1)
        return np.asarray(d <= self.reach)


@dataclass
class _Context:
    f: Surrogate
    X: np.ndarray  # points in the domain (the training inputs)
    ref: np.ndarray  # reference point every slice goes through
    rmse: float  # the surrogate's RMS error on the data
    lo: np.ndarray
    hi: np.ndarray
    variables: Sequence[sympy.Symbol]
    seed: int
    deadline: float  # time.time() at which searches stop (a wall-clock time: it travels)
    population: int
    generations: int
    n_pairs: int
    n_slice: int
    executor: concurrent.futures.Executor | None = None
    coverage: _Coverage | None = None
    # Tests and slices that could not be judged for lack of samples near their points.
    unjudged: list[str] = field(default_factory=list)
    # One-variable parts already started, by problem: none is regressed twice.
    parts: dict[tuple, _Part] = field(default_factory=dict)
    futures: list[concurrent.futures.Future] = field(default_factory=list)


def _rng(ctx: _Context, chain: Sequence[_Transform], vars_: Sequence[int]) -> np.random.Generator:
    """The random points of the tests of ``chain(f)`` on ``vars_``: drawn from the problem's
    own stream, so they do not depend on which other problems were tested before."""
    codes = [_TRANSFORMS.index(t) for t in chain]
    return np.random.default_rng([ctx.seed % 2**64, len(codes), *codes, *vars_])


def _near(ctx: _Context, *Zs: np.ndarray) -> np.ndarray:
    """Rows near the data in every one of ``Zs`` (all rows without a coverage map)."""
    keep = np.ones(Zs[0].shape[0], dtype=bool)
    if ctx.coverage is not None:
        for Z in Zs:
            keep &= ctx.coverage.near(Z)
    return keep


def _unjudged(ctx: _Context, what: str, kept: int, total: int) -> None:
    note = f"{what}: {kept} of {total} points near the data"
    if note not in ctx.unjudged:
        ctx.unjudged.append(note)
        log.info("not judged for lack of coverage: %s", note)


def _chain_eval(ctx: _Context, chain: Sequence[_Transform], Z: np.ndarray, shift: float = 0.0):
    v = ctx.f(Z) + shift
    with np.errstate(all="ignore"):
        for t in chain:
            v = t.forward(v)
    return v


def _points(ctx: _Context, rng: np.random.Generator, vars_: Sequence[int], n: int) -> np.ndarray:
    """``n`` data points with the columns outside ``vars_`` held at the reference."""
    Z = np.repeat(ctx.ref[None, :], n, axis=0)
    rows = rng.integers(0, ctx.X.shape[0], size=n)
    cols = list(vars_)
    Z[:, cols] = ctx.X[rows][:, cols]
    return Z


def _noise(ctx: _Context, chain: Sequence[_Transform], Z: np.ndarray, g: np.ndarray) -> float:
    """The surrogate's error propagated through ``chain`` (RMS over ``Z``)."""
    up = _chain_eval(ctx, chain, Z, ctx.rmse)
    down = _chain_eval(ctx, chain, Z, -ctx.rmse)
    d = 0.5 * np.abs(up - down)
    return float(np.sqrt(np.mean(d[np.isfinite(d)] ** 2))) if np.any(np.isfinite(d)) else math.inf


def _usable(ctx: _Context, chain: Sequence[_Transform], tr: _Transform, Z: np.ndarray) -> bool:
    """Whether ``tr`` is well conditioned on ``chain(f)`` at ``Z`` (no pole of 1/f, ...)."""
    base = _chain_eval(ctx, chain, Z)
    with np.errstate(all="ignore"):
        g = tr.forward(base)
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(g))):
        return False
    if tr.name.startswith("1/") and np.min(np.abs(base)) < _MIN_ABS * np.max(np.abs(base)):
        return False
    # f**2 loses the sign: only for a function of one sign.
    return not ("**2" in tr.name and np.min(base) < 0 < np.max(base))


def _separation(
    ctx: _Context,
    rng: np.random.Generator,
    chain: Sequence[_Transform],
    k: int,
    vars_: Sequence[int],
) -> list[str]:
    """Kinds (``"product"``, ``"sum"``) in which ``chain(f)`` separates ``x_k`` from the rest."""
    A = _points(ctx, rng, vars_, ctx.n_pairs)
    B = _points(ctx, rng, vars_, ctx.n_pairs)
    AkB, BkA = B.copy(), A.copy()
    AkB[:, k], BkA[:, k] = A[:, k], B[:, k]
    keep = _near(ctx, A, B, AkB, BkA)
    if keep.sum() < _MIN_COVERED:
        _unjudged(ctx, f"separation of {ctx.variables[k]}", int(keep.sum()), keep.size)
        return []
    A, B, AkB, BkA = A[keep], B[keep], AkB[keep], BkA[keep]
    ga, gb = _chain_eval(ctx, chain, A), _chain_eval(ctx, chain, B)
    gab, gba = _chain_eval(ctx, chain, AkB), _chain_eval(ctx, chain, BkA)
    if not all(np.all(np.isfinite(v)) for v in (ga, gb, gab, gba)):
        return []
    scale = float(np.sqrt(np.mean(np.concatenate([ga, gb]) ** 2)))
    noise = _noise(ctx, chain, np.concatenate([A, B]), np.concatenate([ga, gb]))
    if not (scale > 0 and math.isfinite(noise)):
        return []
    noise = max(noise, 1e-12 * scale)
    kinds = []
    if np.sqrt(np.mean((ga * gb - gab * gba) ** 2)) <= _TEST_FACTOR * noise * scale:
        kinds.append("product")
    if np.sqrt(np.mean((ga + gb - gab - gba) ** 2)) <= _TEST_FACTOR * noise:
        kinds.append("sum")
    return kinds


@dataclass(frozen=True)
class _Formula:
    expression: sympy.Expr  # in the symbol ``x`` of the ansatz language
    complexity: int
    nchi2: float


def _transformed_fits(
    x: np.ndarray, g: np.ndarray, seed: int, fit_timeout: float | None
) -> list[_Formula]:
    """Library forms of ``1/g``, ``g**2``, ``1/g**2`` and ``log|g|``, mapped back to ``g``.

    ``1/sqrt(1 - x**2)``, ``sqrt((1 + x)/(1 - x))`` or ``exp(sin(x))`` are not in the
    library, but their transforms are (a quadratic, a shifted reciprocal, a sine).
    """
    from llmlex._kan_sympy import evaluate
    from llmlex._symbolic import X as XSYM
    from llmlex._symbolic import node_count

    out = []
    sign = 1 if float(np.median(g)) >= 0 else -1
    one_signed = not (np.min(g) < 0 < np.max(g))
    far_from_zero = np.min(np.abs(g)) >= _MIN_ABS * np.max(np.abs(g))
    for tr in (*_TRANSFORMS[1:], _LOG):
        if tr.name.startswith("1/") and not far_from_zero:
            continue
        if ("**2" in tr.name or tr is _LOG) and not one_signed:
            continue
        with np.errstate(all="ignore"):
            h = tr.forward(g)
        if not np.all(np.isfinite(h)) or np.ptp(h) <= 0:
            continue
        for text in SLICE_LIBRARY[1:]:
            r = fit_ansatz(text, x, h, seed=seed, validate=False, n_starts=4, timeout=fit_timeout)
            if not (r.success and math.isfinite(r.nchi2)):
                continue
            try:  # sympy is work-bounded: a form too costly to build is left out
                e = tr.inverse(r.expression, sign)
            except AnsatzTooComplexError:
                continue
            with np.errstate(all="ignore"):
                pred = evaluate(e, [XSYM], x[:, None])
            if np.all(np.isfinite(pred)):
                out.append(_Formula(e, node_count(e), nchi2(g, pred)))
    return out


@dataclass(frozen=True)
class _Slice:
    """One one-variable regression: all a worker needs (numpy arrays and numbers: it pickles)."""

    x: np.ndarray
    g: np.ndarray
    tol: float  # nchi2 a formula of ``g`` may keep
    seed: int  # derived from the problem, not from the order of work
    population: int
    generations: int
    deadline: float  # time.time() at which the search stops


def _slice(ctx: _Context, x: np.ndarray, g: np.ndarray, tol: float, key: int) -> _Slice:
    return _Slice(
        x=x,
        g=g,
        tol=tol,
        seed=(ctx.seed * 1_000_003 + key) % 2**32,
        population=ctx.population,
        generations=ctx.generations,
        deadline=ctx.deadline,
    )


def _regress(task: _Slice) -> list[_Formula]:
    """Formulas of ``g(x)``: the simplest ones within ``tol`` (nchi2) and the most accurate.

    The library first, then the library on transforms of ``g``, then the offline search.
    At most :data:`_ALTERNATIVES`, simplest first; empty if none comes near ``tol``.  The
    surrogate cannot tell apart formulas within its own error: the data will.
    Module-level, taking one picklable task: an executor runs it by name.
    """
    from llmlex._symbolic import node_count

    x, g, tol, seed = task.x, task.g, task.tol, task.seed
    # No per-fit clock without a time budget: the formulas must not depend on the load.
    fit_timeout = None if math.isinf(task.deadline) else DEFAULTS.fit_timeout

    def formulas(results: Sequence[FitResult]) -> list[_Formula]:
        out = []
        for r in results:
            if not (r.success and math.isfinite(r.nchi2)):
                continue
            try:  # sympy is work-bounded: a form too costly to build is left out
                expr = r.expression
            except AnsatzTooComplexError:
                continue
            out.append(_Formula(expr, node_count(expr), float(r.nchi2)))
        return out

    ok = formulas(
        [
            fit_ansatz(t, x, g, seed=seed, validate=False, n_starts=4, timeout=fit_timeout)
            for t in SLICE_LIBRARY
        ]
    )
    if not ok or min(r.nchi2 for r in ok) > tol:
        ok.extend(_transformed_fits(x, g, seed, fit_timeout))
    if not ok or min(r.nchi2 for r in ok) > tol:
        left = task.deadline - time.time()  # inf without a time budget
        if left > 1.0:
            try:
                run = run_genetic(
                    None,
                    None,
                    x,
                    g,
                    population_size=task.population,
                    num_of_generations=task.generations,
                    exit_condition=tol / 4.0,
                    seed=seed,
                    progress=False,
                    time_budget=None if math.isinf(left) else left,
                    fit_timeout=fit_timeout,
                )
                ok.extend(formulas(run.archive[:20]))
            except (DataError, NoValidAnsatzError) as err:
                log.info("one-variable search gave nothing (%s)", err)
    if not ok:
        return []
    lowest = min(r.nchi2 for r in ok)
    if lowest > 10.0 * tol:  # nothing near the surrogate's accuracy: no structure claimed
        return []
    near = sorted(
        (r for r in ok if r.nchi2 <= max(tol, 2.0 * lowest)), key=lambda r: (r.complexity, r.nchi2)
    )
    picked: list[_Formula] = []
    for r in [*near, min(ok, key=lambda r: r.nchi2)]:
        if len(picked) >= _ALTERNATIVES:
            break
        if all(r.expression != q.expression for q in picked):
            picked.append(r)
    return picked


def _tolerance(ctx: _Context, chain: Sequence[_Transform], Z: np.ndarray, g: np.ndarray) -> float:
    """nchi2 a formula of ``g`` may keep: a few times that of the surrogate's own error."""
    up = _chain_eval(ctx, chain, Z, ctx.rmse)
    if not np.all(np.isfinite(up)):
        up = g + _noise(ctx, chain, Z, g)
    return 4.0 * nchi2(g, up)


class _Part:
    """The formulas of a one-variable part: regressed on the executor from the start, or
    here when first asked for (without an executor, only the parts the search needs)."""

    def __init__(
        self,
        ctx: _Context,
        task: _Slice | None,
        symbol: sympy.Expr,
        value: list[sympy.Expr] | None = None,
    ) -> None:
        self._task = task
        self._symbol = symbol  # what the ansatz's ``x`` stands for
        self._value = value
        self._future: concurrent.futures.Future | None = None
        if value is None and ctx.executor is not None:
            self._future = ctx.executor.submit(_regress, task)
            ctx.futures.append(self._future)

    def done(self) -> bool:
        """Whether :meth:`exprs` returns without waiting for a regression."""
        return self._value is not None or (self._future is not None and self._future.done())

    def exprs(self) -> list[sympy.Expr]:
        """The part's formulas (variants, the first preferred); empty if none was found."""
        from llmlex._symbolic import X as XSYM

        if self._value is None:
            assert self._task is not None
            found = _regress(self._task) if self._future is None else self._future.result()
            self._value = [r.expression.xreplace({XSYM: self._symbol}) for r in found]
        return self._value


def _chain_key(chain: Sequence[_Transform]) -> tuple[int, ...]:
    return tuple(_TRANSFORMS.index(t) for t in chain)


def _one_variable(ctx: _Context, chain: Sequence[_Transform], k: int) -> _Part:
    """``chain(f)`` on the slice through the reference along ``x_k``, started (once)."""
    key = ("slice", _chain_key(chain), k)
    if key in ctx.parts:
        return ctx.parts[key]
    Z = np.repeat(ctx.ref[None, :], ctx.n_slice, axis=0)
    Z[:, k] = np.linspace(ctx.lo[k], ctx.hi[k], ctx.n_slice)
    Z = Z[_near(ctx, Z)]
    var = ctx.variables[k]
    if Z.shape[0] < _MIN_COVERED:
        _unjudged(ctx, f"slice along {var}", Z.shape[0], ctx.n_slice)
        part = _Part(ctx, None, var, value=[])
        ctx.parts[key] = part
        return part
    g = _chain_eval(ctx, chain, Z)
    if not np.all(np.isfinite(g)):
        part = _Part(ctx, None, var, value=[])
    elif np.ptp(g) <= 1e-9 * max(float(np.max(np.abs(g))), 1e-300):
        part = _Part(ctx, None, var, value=[sympy.Float(float(np.mean(g)))])
    else:
        tol = _tolerance(ctx, chain, Z, g)
        part = _Part(ctx, _slice(ctx, Z[:, k], g, tol, 17 * k + len(chain)), var)
    ctx.parts[key] = part
    return part


def _combination(
    ctx: _Context, rng: np.random.Generator, chain: Sequence[_Transform], i: int, j: int
) -> tuple[str, list[sympy.Expr]] | None:
    """``chain(f)`` as a function of one combination of ``x_i`` and ``x_j``, if it is.

    Every combination that passes its test is started at once (on an executor they are
    regressed together); the first of them, in the order of :data:`_COMBOS`, that has a
    formula is the answer.
    """
    Z = _points(ctx, rng, (i, j), ctx.n_pairs)
    Z = Z[_near(ctx, Z)]
    if Z.shape[0] < _MIN_COVERED:
        _unjudged(
            ctx, f"combinations of {ctx.variables[i]}, {ctx.variables[j]}", Z.shape[0], ctx.n_pairs
        )
        return None
    g = _chain_eval(ctx, chain, Z)
    noise = max(_noise(ctx, chain, Z, g), 1e-12 * float(np.max(np.abs(g))))
    t = 0.05 * rng.uniform(-1.0, 1.0, size=Z.shape[0])
    vi, vj = ctx.variables[i], ctx.variables[j]
    started: list[tuple[str, _Part]] = []
    for op, num, move, alone in _COMBOS:
        # Relative moves for products and ratios, a fraction of the range for sums.
        step = t * min(ctx.hi[i] - ctx.lo[i], ctx.hi[j] - ctx.lo[j]) if op in "+-" else t
        Zm, Zi = Z.copy(), Z.copy()
        Zm[:, i], Zm[:, j] = move(Z[:, i], Z[:, j], step)
        Zi[:, i] = alone(Z[:, i], step)
        inside = np.all((Zm >= ctx.lo) & (Zm <= ctx.hi), axis=1) & (Zi[:, i] >= ctx.lo[i])
        inside &= (Zi[:, i] <= ctx.hi[i]) & _near(ctx, Zm, Zi)
        if inside.sum() < 32:
            continue
        gm = _chain_eval(ctx, chain, Zm[inside])
        gi = _chain_eval(ctx, chain, Zi[inside])
        kept = g[inside]
        moved = float(np.sqrt(np.mean((gm - kept) ** 2)))
        power = float(np.sqrt(np.mean((gi - kept) ** 2)))
        if not (moved <= _TEST_FACTOR * noise and power >= _POWER * max(moved, noise)):
            continue
        with np.errstate(all="ignore"):
            u = num(Z[:, i], Z[:, j])
        order = np.argsort(u)
        u, gu = u[order], g[order]
        if not np.all(np.isfinite(u)):
            continue
        key = ("combination", _chain_key(chain), i, j, op)
        if key not in ctx.parts:
            usym = {"*": vi * vj, "/": vi / vj, "+": vi + vj, "-": vi - vj}[op]
            tol = _tolerance(ctx, chain, Z[order], gu)
            ctx.parts[key] = _Part(ctx, _slice(ctx, u, gu, tol, 31 * i + j), usym)
        started.append((op, ctx.parts[key]))
    for op, part in started:
        if part.exprs():
            return f"{vi}{op}{vj}", part.exprs()
    return None


def _group(origin: str) -> str:
    return f"[{origin}]" if "=" in origin else origin


def _joiner(kind: str, tr: _Transform, g_ref: float, sign: int) -> Callable:
    """``f`` from the formulas of its parts: ``T(f) = A * B / T(f)(ref)`` or ``A + B - T(f)(ref)``
    (``A`` and ``B`` are slices through the reference point, so each contains it once)."""
    c = sympy.Float(g_ref)
    if kind == "product":
        return lambda p, q: tr.inverse(p * q / c, sign)
    return lambda p, q: tr.inverse(p + q - c, sign)


def _variants(a: list[sympy.Expr], b: list[sympy.Expr], join: Callable) -> list[sympy.Expr]:
    """``join`` of the first of each, then with one part at a time at an alternative."""
    out = [join(a[0], b[0])]
    out += [join(e, b[0]) for e in a[1:]]
    out += [join(a[0], e) for e in b[1:]]
    return out[:_MAX_VARIANTS]


def _solve(
    ctx: _Context, chain: tuple[_Transform, ...], vars_: tuple[int, ...]
) -> tuple[str, list[sympy.Expr]] | None:
    """A structure of ``chain(f)`` restricted to ``vars_`` (the rest at the reference).

    Returns its description and its formulas (variants, the first preferred), or None.
    Without an executor the rest of a separation is solved only once the part of ``x_k``
    has a formula; with one, the rest is solved (its parts submitted) while that part is
    regressed, unless it is already known to have none.  Either way the answer is the
    same: every test draws from its own problem's stream (:func:`_rng`).
    """
    if time.time() > ctx.deadline:
        return None
    if len(vars_) == 1:
        exprs = _one_variable(ctx, chain, vars_[0]).exprs()
        return (f"g({ctx.variables[vars_[0]]})", exprs) if exprs else None
    rng = _rng(ctx, chain, vars_)
    Z = _points(ctx, rng, vars_, ctx.n_pairs)
    sign = 1 if float(np.median(_chain_eval(ctx, chain, Z))) >= 0 else -1
    for tr in _TRANSFORMS:  # the simplest transform that explains it
        if tr.name == "f":
            sub = tuple(chain)
        elif _usable(ctx, chain, tr, Z):
            sub = (*chain, tr)
        else:
            continue
        g_ref = float(_chain_eval(ctx, sub, ctx.ref[None, :])[0])
        g_scale = float(np.sqrt(np.mean(_chain_eval(ctx, sub, Z) ** 2)))
        splits = vars_ if len(vars_) > 2 else vars_[:1]
        for k in splits:
            rest = tuple(v for v in vars_ if v != k)
            for kind in _separation(ctx, rng, sub, k, vars_):
                if kind == "product" and not abs(g_ref) > 1e-3 * g_scale:
                    continue  # the product's normalisation divides by g(ref)
                if time.time() > ctx.deadline:
                    continue  # no regression started past the deadline
                part = _one_variable(ctx, sub, k)
                if (ctx.executor is None or part.done()) and not part.exprs():
                    continue
                b = _solve(ctx, sub, rest)  # on an executor: while x_k's part is regressed
                a = part.exprs()
                if not a or b is None:
                    continue
                op = "*" if kind == "product" else "+"
                exprs = _variants(a, b[1], _joiner(kind, tr, g_ref, sign))
                text = f"{tr.name} = g({ctx.variables[k]}) {op} {_group(b[0])}"
                return text, exprs
    if len(vars_) == 2:
        comb = _combination(ctx, rng, chain, *vars_)
        if comb is not None:
            return f"g({comb[0]})", comb[1]
    return None


def decompose(
    f: Surrogate,
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[sympy.Symbol],
    *,
    seed: int = 0,
    population: int = 6,
    generations: int = 4,
    time_budget: float | None = 30.0,
    n_pairs: int = 256,
    n_slice: int = 200,
    max_error: float = 0.05,
    executor: concurrent.futures.Executor | None = None,
) -> list[tuple[str, sympy.Expr]]:
    """Candidate formulas of a smooth surrogate ``f`` from its separability structure.

    Parameters
    ----------
    f : callable
        Vectorised surrogate: an ``(m, n)`` array of points to ``m`` values.
    X : ndarray, shape (N, n)
        Points of the domain (the training inputs): tests and slices stay among them.
    y : ndarray, shape (N,)
        The data at ``X``: the surrogate's error on it sets every test's tolerance.
    variables : sequence of sympy.Symbol
        The symbols of the ``n`` columns.
    seed : int
        Seed of the random pairs and of the one-variable searches.
    population, generations : int
        Offline search settings for a one-variable part the library misses.
    time_budget : float or None
        Seconds for the whole decomposition (searches included); ``None``: no clock (the
        searches are bounded by their generations, and the result does not depend on the
        machine's load).
    n_pairs, n_slice : int
        Points per test, points per one-variable slice.
    max_error : float
        No test if the surrogate's RMS error exceeds this fraction of its RMS value: a
        rough surrogate would pass any test.
    executor : concurrent.futures.Executor, optional
        Run the one-variable regressions there (a process pool, Dask's
        ``client.get_executor()``, :class:`llmlex.batch.RayExecutor`, a thread pool):
        both sides of a separation are regressed at once, and so is every invariant
        combination that passes its test.  The surrogate stays here, where the tests
        evaluate it; each regression travels as its slice (points, values, tolerance,
        seed, search settings, and the deadline as a wall-clock time, so workers on other
        machines need synchronised clocks).  The formulas are those found without an
        executor: seeds and test points derive from the problem, never from the order in
        which work is done; only ``time_budget`` may end a search sooner or later.  A
        regression that fails on the executor (a lost worker) raises here.

    Returns
    -------
    list of (str, sympy.Expr)
        ``(origin, formula)``, origin naming the structure found, e.g.
        ``"separable: 1/f = g(x0) + g(x1, x2)"``.  Empty if none.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = X.shape[1]
    if n < 2 or len(variables) != n:
        return []
    fx = np.asarray(f(X), dtype=float)
    scale = float(np.sqrt(np.mean(fx**2)))
    # The surrogate may compute in float32: it is no more accurate than its rounding.
    rmse = max(float(np.sqrt(np.mean((fx - y) ** 2))), 1e-6 * scale)
    if not (scale > 0) or rmse > max_error * scale:
        log.info("surrogate error %.3g of its scale: no structure tests", rmse / max(scale, 1e-300))
        return []
    rng = np.random.default_rng(seed)
    # Reference point: a data point where the output is far from zero (products divide
    # by it), among a few random ones.
    pool = rng.choice(X.shape[0], size=min(64, X.shape[0]), replace=False)
    ref = X[pool[np.argmax(np.abs(fx[pool]))]].copy()
    ctx = _Context(
        f=f,
        X=X,
        ref=ref,
        rmse=rmse,
        lo=X.min(axis=0),
        hi=X.max(axis=0),
        variables=variables,
        seed=seed,
        deadline=math.inf if time_budget is None else time.time() + time_budget,
        population=population,
        generations=generations,
        n_pairs=n_pairs,
        n_slice=n_slice,
        executor=executor,
        coverage=_Coverage(X),
    )
    try:
        found = _solve(ctx, (), tuple(range(n)))
    finally:
        # Parts started but not needed (a later combination, the rest of a separation
        # whose part of x_k has no formula): not waited for.
        for future in ctx.futures:
            future.cancel()
    if found is None:
        return []
    return [(f"separable: {found[0]}", e) for e in found[1]]
