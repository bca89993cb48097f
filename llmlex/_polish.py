"""Simpler neighbours of the best fitted ansätze, tried on the data before a run ends.

A search driven by the fit alone leaves formulas with parts the data do not need: a
term fitted to the noise (``x + 0.0105*cos(29.4*x)``), a constant equal to a simple
number within its error (``0.9999999999999996*exp(...)``, a phase of ``pi/2``), a spelling
undefined where a simpler one is not (``sqrt(x)*sqrt(x)`` for ``x``).  For each of the best
few results :func:`neighbours` writes

- the ansatz as sympy prints it (the same function, spelled simply: ``sqrt(x)*sqrt(x)``
  is ``x``, ``sin(u + pi/2)`` is ``cos(u)``), and with its logarithms expanded;
- a rational function as one fraction, cancelled and factored (a search in rescaled units
  leaves ``10*(x**3/10 + 3*x**2/10 + 3*x/10 + 1/10)/(x**2 - x + 1)``, which is
  ``(x + 1)**3/(x**2 - x + 1)``);
- the ansatz without each one of its top-level terms;
- the ansatz with each parameter replaced by the simplest number within its error
  (zero, an integer, a small fraction, a multiple of pi/2), and with all of them at once;

and :func:`polish` fits them, starting from the values they inherit.  Nothing is adopted
here: the neighbours join the archive, and the run's selection rule (the description
length, which charges for every constant and node) decides whether a simpler form
explains the data as well.  :func:`reduce_phases` puts phases of periodic functions into
``(-pi, pi]``, which changes no value of the formula.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np

from llmlex.ansatz import Ansatz, ansatz_from_sympy
from llmlex.exceptions import AnsatzError, AnsatzTooComplexError
from llmlex.fit import FitResult, fit_ansatz

__all__ = ["neighbours", "polish", "reduce_phases"]

log = logging.getLogger(__name__)

#: Most neighbours written for one result.
MAX_NEIGHBOURS = 24
#: Largest integer (and numerator) a constant is snapped to.
SIMPLE_MAX = 100
#: Largest denominator of a fraction a constant is snapped to (halves, thirds, quarters:
#: the fractions of physical laws; 7/10 is a measured value, not a simple one).
SIMPLE_DENOMINATOR = 4


def _simple_values(v: float, tol: float) -> list[float]:
    """Simple numbers within ``tol`` of ``v``, simplest first.

    Simple: zero, an integer up to :data:`SIMPLE_MAX` in magnitude, a fraction with a
    denominator up to :data:`SIMPLE_DENOMINATOR` and such a numerator, a multiple of
    pi/2 up to 4*pi.  (A number such as 100000/3 is not simple: it is a value in some
    units.)  The description length charges for the digits of what is written.
    """
    out: list[float] = []
    if not (math.isfinite(v) and math.isfinite(tol)):
        return out
    if abs(v) <= tol:
        out.append(0.0)
    n = round(v)
    if abs(n) <= SIMPLE_MAX and abs(n - v) <= tol:
        out.append(float(n))
    frac = (
        Fraction(v).limit_denominator(SIMPLE_DENOMINATOR) if abs(v) <= SIMPLE_MAX else Fraction(0)
    )
    if frac and abs(frac.numerator) <= SIMPLE_MAX and abs(float(frac) - v) <= tol:
        out.append(float(frac))
    quarter = round(v / (math.pi / 2))
    if 0 < abs(quarter) <= 8 and abs(quarter * math.pi / 2 - v) <= tol:
        out.append(quarter * math.pi / 2)
    return list(dict.fromkeys(out))


def _tolerance(result: FitResult, k: int) -> float:
    """How far parameter ``k`` may move: two standard errors, or 1e-9 relative."""
    v = float(result.params[k])
    floor = 1e-9 * max(abs(v), 1e-300)
    errors = getattr(result, "param_errors", None)
    if errors is None:
        return floor
    e = float(np.asarray(errors)[k])
    return max(2.0 * e, floor) if math.isfinite(e) else floor


#: The kinds of neighbour (see :func:`neighbours`).
KINDS = frozenset({"spelling", "logs", "rational", "numbers", "drop", "snap_all", "snap_each"})


def neighbours(
    result: FitResult, *, kinds: Collection[str] = KINDS
) -> list[tuple[Ansatz, np.ndarray | None]]:
    """Simpler ansätze near a fitted one, each with the start values it inherits.

    ``kinds`` chooses which are written: ``"spelling"`` (sympy's), ``"logs"`` (logarithms
    expanded), ``"rational"`` (a rational function cancelled and factored), ``"numbers"``
    (numbers on x taken up by the parameters), ``"drop"`` (each
    top-level term dropped), ``"snap_all"`` (every constant at its simplest value at once),
    ``"snap_each"`` (one constant at a time).  Returns an empty list when sympy cannot
    handle the ansatz in its work bound.
    """
    import sympy

    from llmlex._symbolic import merge_redundant_params, param, time_bound

    if result.compiled is None or not result.success:
        return []
    n = result.n_params
    values = np.asarray(result.params, dtype=float)
    out: list[tuple[Ansatz, np.ndarray | None]] = []

    def add(expr: sympy.Expr, start_values: np.ndarray = values) -> None:
        # A dropped term or a snapped constant can leave two bare parameters side by
        # side (p3 + p4): merged, so that rounding errors do not split them.
        expr, merged = merge_redundant_params(expr, dict(enumerate(start_values)))
        start_values = np.array([merged[k] for k in range(len(start_values))])
        try:
            a = ansatz_from_sympy(expr)
        except (AnsatzError, ValueError, TypeError):
            return
        if a.text == result.ansatz or len(out) >= MAX_NEIGHBOURS:
            return
        # The sympy form keeps the symbols p<k>: the parser's renumbering says which.
        start = start_values[list(a.source_indices)] if a.n_params else None
        out.append((a, start))

    try:
        with time_bound(AnsatzTooComplexError, f"the neighbours of {result.ansatz[:60]!r}"):
            expr = result.compiled.sympy
            if "spelling" in kinds:
                add(expr)
            # log(x/100) + p0 is log(x) + (p0 - log(100)) where it is defined at all: a
            # rescaled logarithm leaves such a constant for the snapping to remove.
            expanded = sympy.expand_log(expr, force=True) if "logs" in kinds else expr
            if expanded != expr:
                add(_absorb_numbers(expanded, n))
            if "rational" in kinds:
                for form in _one_fraction(expr):
                    add(form)
            # p0/(p1 + x/10) is 10*p0/(10*p1 + x): the parameters take up the number (a
            # search in rescaled units leaves such factors on x).
            pulled, moved, factor = _absorb_factors(_pull_numbers(expr), values)
            if "numbers" in kinds and pulled != expr:
                add(pulled, moved)
            if "drop" in kinds and isinstance(expr, sympy.Add) and len(expr.args) > 1:
                for term in expr.args:
                    add(expr - term)
            errors = np.array([_tolerance(result, k) for k in range(n)])
            forms = [(expr, values, errors)]
            if pulled != expr:  # its constants may be simple where expr's are not
                forms.append((pulled, moved, errors * np.abs(factor)))
            for form, vals, tol in forms:
                simple = {
                    k: [sympy.nsimplify(v, [sympy.pi]) if v else sympy.Integer(0) for v in found]
                    for k in range(n)
                    if form.has(param(k)) and (found := _simple_values(float(vals[k]), tol[k]))
                }
                if "snap_all" in kinds and (
                    len(simple) > 1 or (simple and "snap_each" not in kinds) or form is pulled
                ):
                    # Every constant at its simplest value at once: one step where one at
                    # a time would take a round per constant (x**6 + ... + x: seven fits).
                    snapped = form.xreplace({param(k): nums[0] for k, nums in simple.items()})
                    add(snapped, vals)
                if form is expr and "snap_each" in kinds:
                    for k, numbers in simple.items():
                        for number in numbers:
                            add(expr.xreplace({param(k): number}))
    except Exception:  # sympy on an exotic formula: no neighbours, not a failed run
        log.debug("no neighbours for %s", result.ansatz, exc_info=True)
    return out


def _one_fraction(expr: Any) -> list[Any]:
    """A rational function of x with exact coefficients and no parameter, as one
    cancelled fraction, and factored; floats equal to small integers are written as
    integers first (``10.0*(x/10 + 1)/x`` is ``(x + 10)/x``).  Empty for anything else
    (a polynomial included: its factored form is no simpler)."""
    import sympy

    from llmlex._symbolic import X

    if expr.free_symbols != {X} or not expr.is_rational_function(X):
        return []
    whole = {
        f: sympy.Integer(int(f))
        for f in expr.atoms(sympy.Float)
        if float(f).is_integer() and abs(float(f)) <= 1e6
    }
    expr = expr.xreplace(whole)
    if expr.atoms(sympy.Float) or not sympy.denom(sympy.together(expr)).has(X):
        return []
    cancelled = sympy.cancel(expr)
    factored = sympy.factor(cancelled)
    return list(dict.fromkeys(e for e in (cancelled, factored) if e != expr))


def _absorb_numbers(expr: Any, n: int) -> Any:
    """``expr`` without its number-only terms when a bare parameter is also a term (the
    parameter takes them up: ``p0 + log(x) - log(100)`` is ``p0 + log(x)``)."""
    import sympy

    from llmlex._symbolic import param

    if not isinstance(expr, sympy.Add):
        return expr
    params = {param(k) for k in range(n)}
    if not any(term in params for term in expr.args):
        return expr
    return sympy.Add(*(t for t in expr.args if t.free_symbols))


def _pull_numbers(expr: Any) -> Any:
    """``expr`` with a number shared by the x-terms of a sum taken out of a power or a
    logarithm: ``(p1 + x/10)**-1`` is ``10*(10*p1 + x)**-1``, ``log(p1 + x/10)`` is
    ``log(10*p1 + x) - log(10)`` (valid where the original is defined: the number is
    positive, or the exponent an integer)."""
    import sympy

    from llmlex._symbolic import X

    def shared(arg: Any) -> Any:
        if not isinstance(arg, sympy.Add) or not arg.has(X):
            return None
        coeffs = {t.as_coeff_Mul()[0] for t in arg.args if t.has(X)}
        if len(coeffs) != 1:
            return None
        (c,) = coeffs
        return c if c.is_Number and c not in (0, 1, -1) else None

    def visit(e: Any) -> Any:
        if e.is_Atom:
            return e
        e = e.func(*(visit(a) for a in e.args))
        if isinstance(e, sympy.Pow) and e.exp.is_Number:
            c = shared(e.base)
            if c is not None and (c > 0 or e.exp.is_integer):
                inner = sympy.Add(*(t / c for t in e.base.args))
                return c**e.exp * inner**e.exp
        if isinstance(e, sympy.log):
            c = shared(e.args[0])
            if c is not None and c > 0:
                return sympy.log(c) + sympy.log(sympy.Add(*(t / c for t in e.args[0].args)))
        return e

    return visit(expr)


def _absorb_factors(expr: Any, values: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """``expr`` with every number that multiplies or adds to a parameter used once taken
    up by that parameter (``10*p1 + x`` -> ``p1 + x``, ``p0 - log(10)`` -> ``p0``),
    the values that keep the function the same, and the factor each parameter was
    multiplied by (its error scales with it)."""
    import sympy

    from llmlex._symbolic import param

    vals = np.array(values, dtype=float)
    factor = np.ones_like(vals)
    params = {param(k): k for k in range(vals.size)}
    for _ in range(8):  # each pass removes at least one number; formulas are small
        uses: dict[Any, int] = {}
        for a in sympy.preorder_traversal(expr):
            if a in params:
                uses[a] = uses.get(a, 0) + 1
        found = None
        for node in sympy.preorder_traversal(expr):
            if not isinstance(node, sympy.Mul | sympy.Add):
                continue
            once = [a for a in node.args if a in params and uses.get(a) == 1]
            numbers = [a for a in node.args if a.is_number]
            if once and numbers:
                found = node, once[0], numbers
                break
        if found is None:
            break
        node, p, numbers = found
        number = sympy.Mul(*numbers) if isinstance(node, sympy.Mul) else sympy.Add(*numbers)
        k = params[p]
        folded = float(number)
        if not math.isfinite(folded):
            break
        if isinstance(node, sympy.Mul):
            vals[k] *= folded
            factor[k] *= folded
        else:
            vals[k] += folded
        rest = [a for a in node.args if not a.is_number]
        expr = expr.xreplace({node: node.func(*rest)})
    return expr, vals, factor


def reduce_phases(result: FitResult) -> FitResult:
    """``result`` with each phase of a sine or cosine reduced into ``(-pi, pi]``.

    A parameter qualifies when it appears once, as a term of the argument of ``sin`` or
    ``cos``: shifting it by a multiple of ``2*pi`` changes no value of the formula.
    """
    import sympy

    from llmlex._symbolic import param, time_bound

    if result.compiled is None or not result.success or not result.n_params:
        return result
    try:
        with time_bound(AnsatzTooComplexError, "reducing phases"):
            expr = result.compiled.sympy
            params = np.array(result.params, dtype=float)
            changed = False
            for k in range(result.n_params):
                p = param(k)
                if sum(1 for a in sympy.preorder_traversal(expr) if a == p) != 1:
                    continue
                for f in expr.atoms(sympy.sin, sympy.cos):
                    arg = f.args[0]
                    if isinstance(arg, sympy.Add) and p in arg.args:
                        reduced = math.remainder(params[k], 2 * math.pi)
                        if reduced == -math.pi:
                            reduced = math.pi
                        if reduced != params[k]:
                            params[k], changed = reduced, True
        return replace(result, params=params) if changed else result
    except (AnsatzError, RecursionError, TypeError, ValueError):
        return result


def polish(
    results: Sequence[FitResult],
    x: np.ndarray,
    y: np.ndarray,
    *,
    known: Iterable[str],
    key: Callable[[FitResult], Any],
    fit_options: Mapping[str, Any],
    seed: int = 0,
    deadline: float | None = None,
    kinds: Collection[str] = KINDS,
) -> list[FitResult]:
    """Fit the :func:`neighbours` of ``results`` that are not ``known`` (archive keys).

    Parameters
    ----------
    results : sequence of FitResult
        The results to start from, best first.
    x, y : ndarray
        The data they were fitted to.
    known : iterable of str
        Archive keys (:attr:`Ansatz.canonical`) already fitted; their neighbours are not
        refitted.
    key : callable
        Archive key of a result.
    fit_options : mapping
        Keyword options of :func:`~llmlex.fit.fit_ansatz`.
    seed : int
        Seed of the fits.
    deadline : float, optional
        A :func:`time.perf_counter` value: no fit starts after it, and none runs past it.
    kinds : collection of str
        The kinds of neighbour to fit (see :func:`neighbours`).

    Returns
    -------
    list of FitResult
        The successful fits, phases reduced, each with the ``origin`` of the result it
        is a neighbour of; failures are left out (logged at debug).
    """
    seen = set(known)
    out: list[FitResult] = []
    for result in results:
        if deadline is not None and time.perf_counter() >= deadline:
            return out
        for ansatz, start in neighbours(result, kinds=kinds):
            options = dict(fit_options)
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return out
                own = options.get("timeout")  # None: the fit's own clock is off
                options["timeout"] = left if own is None else min(float(own), left)
            canonical = ansatz.canonical
            # A respelling of a known ansatz is fitted too: it may be defined where the
            # known spelling is not.
            if canonical in seen and canonical != key(result):
                continue
            seen.add(canonical)
            try:
                fitted = fit_ansatz(
                    ansatz, x, y, initial=start, seed=seed, validate=False, **options
                )
            except Exception:  # one neighbour's failure costs only that neighbour
                log.debug("polishing %s failed", ansatz.text, exc_info=True)
                continue
            if fitted.success:
                # A neighbour is the proposal it came from, simplified: same provenance.
                object.__setattr__(fitted, "origin", result.origin)
                out.append(reduce_phases(fitted))
    return out
