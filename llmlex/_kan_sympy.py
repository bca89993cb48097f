"""Multivariate sympy expressions: safe evaluation, constant fitting, snapping, simplification.

The ansatz language of :mod:`llmlex.ansatz` is univariate (``x``, ``params[i]``); the
expressions assembled from a KAN have several variables.  This module gives them what the
univariate path has:

- :func:`compile_expr` walks a sympy tree once and returns a closure over numpy functions
  (no ``exec``, no ``lambdify``): only whitelisted node types are accepted;
- :func:`parameterise` replaces the floating-point constants of an expression by parameter
  symbols, and :func:`fit_constants` refits them under the normalized chi-squared, or
  the chi-squared when the data have error bars;
- :func:`selection_score` and :func:`holdout_score` are the score candidates are judged
  by: the nchi2, or with error bars the chi-squared per point;
- :func:`snap_constants` tries simple values (0, integers, small fractions, multiples of pi,
  e) for each constant and keeps one only if the held-out score stays within tolerance;
- :func:`parse_expression` reads untrusted multivariate text (an LLM's simplification) by
  an AST whitelist into sympy, never evaluating it;
- :func:`simplify_with_timeout` runs :func:`sympy.simplify` in a child process that is
  killed when the time limit is spent (a thread cannot be stopped); without a time limit,
  :func:`simplify_bounded` runs it here, bounded by the Python calls it makes.
"""

from __future__ import annotations

import ast
import functools
import logging
import math
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from llmlex._functions import (
    FUNCTIONS,
    function_name,
    numpy_by_sympy_head,
    parse_expression_tree,
    scalar_value,
)
from llmlex._lsq import Objective, OutOfTime, minimise
from llmlex._score import chi2, nchi2, nchi2_scale
from llmlex._symbolic import MAX_EXACT_BITS, SMALL_ARGUMENT, power_too_big, time_bound
from llmlex.ansatz import MAX_DEPTH, MAX_NODES, MAX_TEXT_LENGTH
from llmlex.exceptions import AnsatzError, AnsatzTooComplexError

log = logging.getLogger(__name__)

Arr = np.ndarray
Evaluator = Callable[[Sequence[Any]], Any]

#: Sympy function class -> numpy function of one argument: the one-argument heads of the
#: table in :mod:`llmlex._functions` and its sympy-only heads (``cot``, ``sech``, ...).
_UNARY: dict[Any, Callable[[Any], Any]] = numpy_by_sympy_head()


def _pow(a: Any, b: Any) -> Any:
    return np.power(np.asarray(a, dtype=float), b)


def compile_expr(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> Evaluator:
    """Compile a sympy expression into a numpy closure ``f(values) -> array``.

    ``values[k]`` is the value (array or scalar) of ``symbols[k]``.  Only arithmetic, the
    one-argument functions of ``_UNARY`` (read from :mod:`llmlex._functions`), ``log``,
    ``Max``/``Min``, numbers and the listed symbols are accepted; anything else raises
    :class:`ValueError`.  Nothing is ever ``exec``-ed.
    """
    index = {s: k for k, s in enumerate(symbols)}

    def build(e: sympy.Basic) -> Evaluator:
        if e.is_Symbol:
            if e not in index:
                raise ValueError(f"unknown symbol {e} (expected one of {list(symbols)})")
            k = index[e]
            return lambda v: v[k]
        if e.is_Number or e.is_NumberSymbol:
            c = _float(e)  # an Integer beyond the doubles is inf, as numpy would have it
            return lambda v: c
        if e in (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            c = float("nan")
            return lambda v: c
        args = [build(a) for a in e.args]
        if e.is_Add:

            def add(v: Sequence[Any]) -> Any:
                out = args[0](v)
                for f in args[1:]:
                    out = out + f(v)
                return out

            return add
        if e.is_Mul:

            def mul(v: Sequence[Any]) -> Any:
                out = args[0](v)
                for f in args[1:]:
                    out = out * f(v)
                return out

            return mul
        if e.is_Pow:
            base, expo = args
            if e.exp == sympy.Rational(1, 2):
                return lambda v: np.sqrt(base(v))
            if e.exp == -1:
                return lambda v: 1.0 / base(v)
            # The ansatz language's cbrt (numpy's real cube root) arrives from sympy as
            # x**(1/3); evaluate it as numpy would, not as the principal complex root.
            if e.exp == sympy.Rational(1, 3):
                return lambda v: np.cbrt(base(v))
            if e.exp == sympy.Rational(-1, 3):
                return lambda v: 1.0 / np.cbrt(base(v))
            return lambda v: _pow(base(v), expo(v))
        if isinstance(e, sympy.log):
            if len(args) == 1:
                return lambda v: np.log(args[0](v))
            return lambda v: np.log(args[0](v)) / np.log(args[1](v))
        if isinstance(e, sympy.Max):
            return lambda v: _fold(np.maximum, args, v)
        if isinstance(e, sympy.Min):
            return lambda v: _fold(np.minimum, args, v)
        fn = _UNARY.get(e.func)
        if fn is not None and len(args) == 1:
            a0 = args[0]
            return lambda v: fn(a0(v))
        raise ValueError(f"cannot evaluate sympy node {e.func.__name__}")

    return build(expr)


def _fold(fn: Callable[[Any, Any], Any], args: list[Evaluator], v: Sequence[Any]) -> Any:
    out = args[0](v)
    for f in args[1:]:
        out = fn(out, f(v))
    return out


def evaluate(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], X: Arr) -> Arr:
    """Evaluate ``expr`` at the rows of ``X`` (column ``k`` is ``symbols[k]``)."""
    X = np.asarray(X, dtype=float)
    f = compile_expr(expr, symbols)
    with np.errstate(all="ignore"):
        out = f([X[:, k] for k in range(X.shape[1])])
    return np.broadcast_to(np.asarray(out, dtype=float), (X.shape[0],)).copy()


# ----------------------------------------------------------------------------- constants


def param_symbol(k: int) -> sympy.Symbol:
    """The symbol of the ``k``-th free constant of a multivariate expression."""
    return sympy.Symbol(f"_c{k}", real=True)


def fold_numbers(expr: sympy.Expr) -> sympy.Expr:
    """Turn numeric function values (``log(102)``, ``exp(0.3)``) into Floats.

    Snapping can leave such values behind (a constant inside a ``log`` snapped to an
    integer); as Floats they merge with neighbouring coefficients and can be fitted and
    snapped again.  ``pi``, ``E`` and roots of rationals are kept: they are simple values.
    """
    repl = {}
    for e in expr.atoms(sympy.Function):
        if e.is_number and not e.free_symbols:
            try:
                v = float(e)
            except TypeError:  # complex value: leave it to the evaluator to reject
                continue
            if math.isfinite(v):
                repl[e] = sympy.Float(v)
    return expr.xreplace(repl) if repl else expr


def parameterise(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Symbol], np.ndarray]:
    """Replace every Float of ``expr`` by a parameter symbol.

    Integers, rationals and named constants (pi, e) stay fixed: they are either structure
    (``x**2``, ``-x``) or values already snapped.  Returns the template, its parameter
    symbols and their current values.
    """
    expr = fold_numbers(expr)
    floats = sorted(expr.atoms(sympy.Float), key=lambda f: (abs(float(f)), float(f)))
    mapping = {f: param_symbol(k) for k, f in enumerate(floats)}
    template = expr.xreplace(mapping)
    syms = [mapping[f] for f in floats if mapping[f] in template.free_symbols]
    values = np.array([float(f) for f in floats if mapping[f] in template.free_symbols])
    return template, syms, values


@dataclass(frozen=True)
class ConstantFit:
    """A template with fitted constants.

    ``nchi2`` is the value of the objective minimised at ``params``: the normalized
    chi-squared, or with error bars the chi-squared per point.
    """

    expression: sympy.Expr
    params: np.ndarray
    nchi2: float


def fit_constants(
    template: sympy.Expr,
    variables: Sequence[sympy.Symbol],
    params: Sequence[sympy.Symbol],
    p0: np.ndarray,
    X: Arr,
    y: Arr,
    *,
    sigma: Arr | None = None,
    max_nfev: int | None = None,
    deadline: float | None = None,
) -> ConstantFit:
    """Refit the constants of ``template`` on ``(X, y)`` under the normalized chi-squared.

    Starts from ``p0`` (the KAN's values, usually close); the best point ever evaluated is
    kept, so the result is never worse than ``p0``.  ``deadline`` (a
    :func:`time.perf_counter` value) stops the optimiser early, keeping that best point.
    With ``sigma`` (error bars of ``y``, validated by the caller) the chi-squared
    ``sum(((y - f) / sigma)**2)`` is minimised instead: weights ``1/sigma``, weighted
    least squares as in :func:`scipy.optimize.curve_fit`.
    """
    f = compile_expr(template, [*variables, *params])
    cols = [X[:, k] for k in range(X.shape[1])]
    weight = 1.0 / nchi2_scale(y) if sigma is None else 1.0 / np.asarray(sigma, dtype=float)
    objective = Objective(lambda p: f([*cols, *p]), y, weight, deadline=deadline, after_finite=True)
    p_start = np.asarray(p0, dtype=float).copy()
    objective(p_start)
    if params:
        budget = max_nfev if max_nfev is not None else 200 * (len(params) + 1)
        try:
            minimise(objective, p_start, max_nfev=budget, ftol=1e-14, xtol=1.49012e-08)
        except OutOfTime:
            log.debug("constant refit stopped at its deadline")
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
            log.debug("constant refit failed: %s", err)
    p = objective.best_p if objective.best_p is not None else p_start
    expr = template.xreplace({s: sympy.Float(float(v)) for s, v in zip(params, p, strict=True)})
    return ConstantFit(expression=expr, params=p, nchi2=objective.best)


def holdout_nchi2(expr: sympy.Expr, variables: Sequence[sympy.Symbol], X: Arr, y: Arr) -> float:
    """nchi2 of ``expr`` on ``(X, y)`` (``inf`` if it cannot be evaluated)."""
    return holdout_score(expr, variables, X, y)


def selection_score(y: Arr, yhat: Arr, sigma: Arr | None = None) -> float:
    """The score formulas are judged by (lower is better).

    The nchi2 of ``yhat`` against ``y``; with ``sigma`` (error bars of ``y``) the
    chi-squared per point, ``mean(((y - yhat) / sigma)**2)``: about 1 for a formula that
    fits to the noise.  ``inf`` if a prediction is not finite.
    """
    if sigma is None:
        return nchi2(y, yhat)
    return chi2(y, yhat, sigma) / max(1, np.size(y))


def holdout_score(
    expr: sympy.Expr,
    variables: Sequence[sympy.Symbol],
    X: Arr,
    y: Arr,
    sigma: Arr | None = None,
) -> float:
    """:func:`selection_score` of ``expr`` on ``(X, y)`` (``inf`` if it cannot be evaluated)."""
    try:
        return selection_score(y, evaluate(expr, variables, X), sigma)
    except (ValueError, TypeError, ZeroDivisionError):
        return math.inf


def within(value: float, reference: float, rtol: float, atol: float) -> bool:
    """Whether ``value`` is no worse than ``reference`` up to the tolerance."""
    return bool(value <= reference * (1.0 + rtol) + atol)


def _snap_candidates(v: float, stage: int) -> list[sympy.Expr]:
    """Simple values near ``v`` to try, by stage: 0 -> zero, 1 -> integers, 2 -> others."""
    if stage == 0:
        return [sympy.Integer(0)] if v != 0 else []
    near = 0.2 * max(1.0, abs(v))
    out: list[sympy.Expr] = []
    if stage == 1:
        r = round(v)
        if r != 0 and abs(v - r) <= near:
            out.append(sympy.Integer(r))
        return out
    for q in (2, 3, 4, 5, 6, 8, 10, 12):  # small fractions
        fr = Fraction(v).limit_denominator(q)
        if fr.denominator > 1 and abs(float(fr) - v) <= 0.02 * max(1.0, abs(v)):
            out.append(sympy.Rational(fr.numerator, fr.denominator))
            break
    fr = Fraction(v / math.pi).limit_denominator(6)  # multiples of pi
    if fr != 0 and abs(float(fr) * math.pi - v) <= 0.02 * abs(v):
        out.append(sympy.Rational(fr.numerator, fr.denominator) * sympy.pi)
    for c in (sympy.E, 1 / sympy.E, sympy.sqrt(2), sympy.sqrt(sympy.pi)):
        for sgn in (1, -1):
            if abs(sgn * float(c) - v) <= 0.02 * abs(v):
                out.append(sgn * c)
    return out


def snap_constants(
    expr: sympy.Expr,
    variables: Sequence[sympy.Symbol],
    X_fit: Arr,
    y_fit: Arr,
    X_hold: Arr,
    y_hold: Arr,
    reference: float,
    *,
    rtol: float,
    atol: float,
    deadline: float | None = None,
    max_trials: int = 300,
    sigma_fit: Arr | None = None,
    sigma_hold: Arr | None = None,
) -> sympy.Expr:
    """Replace Floats of ``expr`` by simple values wherever the held-out score allows.

    At most ``max_trials`` refits (a bound on work: the result does not depend on the
    machine's load), and none started after ``deadline`` (a :func:`time.perf_counter`
    value; ``None``: no clock); a refit running at the deadline stops at its best point.

    Greedy, in three passes -- zero, then integers, then fractions / multiples of pi / e --
    because removing a redundant constant first (``A*exp(x + c)`` has one too many) lets
    the refit move the others onto simple values.  After each trial the remaining Floats
    are refitted on ``(X_fit, y_fit)`` (with error bars ``sigma_fit`` if given); the trial
    is kept only if the held-out score (:func:`holdout_score`, with ``sigma_hold``) stays
    within tolerance of ``reference``.
    """
    if not math.isfinite(reference):  # nothing to compare with: "not worse" means nothing
        return expr
    template, syms, values = parameterise(expr)
    fixed: dict[sympy.Symbol, sympy.Expr] = {}
    free = dict(zip(syms, values, strict=True))
    trials = 0
    for stage in (0, 1, 2):
        for target in syms:
            if target not in free:
                continue
            if deadline is not None and time.perf_counter() > deadline:
                return _substitute(template, fixed, free)
            for cand in _snap_candidates(float(free[target]), stage):
                if trials >= max_trials:
                    return _substitute(template, fixed, free)
                trials += 1
                trial = template.xreplace({**fixed, target: cand})
                live = trial.free_symbols
                rest = [s for s in syms if s in free and s != target and s in live]
                p0 = np.array([free[s] for s in rest])
                fitted = fit_constants(
                    trial, variables, rest, p0, X_fit, y_fit, sigma=sigma_fit, deadline=deadline
                )
                score = holdout_score(fitted.expression, variables, X_hold, y_hold, sigma_hold)
                if within(score, reference, rtol, atol):
                    fixed[target] = cand
                    free = dict(zip(rest, fitted.params, strict=True))
                    break
    return _substitute(template, fixed, free)


def _substitute(
    template: sympy.Expr,
    fixed: dict[sympy.Symbol, sympy.Expr],
    free: dict[sympy.Symbol, float],
) -> sympy.Expr:
    return template.xreplace({**fixed, **{s: sympy.Float(float(v)) for s, v in free.items()}})


# ----------------------------------------------------------------------------- parsing


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_NAMED = {"pi": sympy.pi, "e": sympy.E}


@functools.cache
def _parseable_functions() -> frozenset[str]:
    """The one-argument functions of the table whose sympy form :func:`compile_expr` evaluates.

    Found by compiling each row's sympy form of a symbol, so the text parser can never
    accept a function the evaluator then rejects (``np.j0`` becomes ``besselj(0, x)``).
    """
    z = sympy.Symbol("z", real=True)
    out: set[str] = set()
    for name, fn in FUNCTIONS.items():
        if 1 not in fn.arity:
            continue
        try:
            compile_expr(fn.to_sympy(z), [z])
        except ValueError:
            continue
        out.add(name)
    return frozenset(out)


def parse_expression(text: str, variables: dict[str, sympy.Symbol]) -> sympy.Expr:
    """Parse untrusted multivariate text into sympy by an AST whitelist (never evaluated).

    Accepted: numbers, the given variable names, ``pi``/``e`` (bare or ``np.``-prefixed),
    ``+ - * / **``, unary minus and the one-argument functions of the ansatz language
    that :func:`compile_expr` can evaluate (``np.sin``, ``exp``, ...; not ``np.j0``,
    ``np.sinc``, ``np.heaviside``).  Exponents must be numbers of magnitude at most 100.

    Raises
    ------
    AnsatzError
        If the text uses anything else, or is too large.
    """
    allowed = _parseable_functions()
    text = text.strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise AnsatzTooComplexError("expression text too long")
    tree = parse_expression_tree(text)  # under a lock: ast.parse is not thread-safe
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise AnsatzTooComplexError(f"{nodes} nodes > {MAX_NODES}")

    def conv(node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise AnsatzTooComplexError("expression nested too deeply")
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            v = node.value
            if not abs(v) <= 1e300:  # also nan; an int too large for a float compares too
                raise AnsatzError(f"bad literal {str(v)[:40]}")
            return sympy.Integer(v) if isinstance(v, int) else sympy.Float(v)
        if isinstance(node, ast.Name):
            if node.id in variables:
                return variables[node.id]
            if node.id in _NAMED:
                return _NAMED[node.id]
            raise AnsatzError(f"unknown name {node.id!r}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in ("np", "numpy", "math") and node.attr in _NAMED:
                return _NAMED[node.attr]
            raise AnsatzError(f"unknown attribute {node.value.id}.{node.attr}")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left = conv(node.left, depth + 1)
            right = conv(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                if not right.is_Number or abs(float(right)) > 100:
                    raise AnsatzError("exponents must be numbers of magnitude <= 100")
                if left.is_number and power_too_big(left, right, _float(left)):
                    raise AnsatzTooComplexError("a power of numbers too large to keep exact")
            out = _BINOPS[type(node.op)](left, right)
            if out.is_Rational and max(abs(out.p), out.q).bit_length() > MAX_EXACT_BITS:
                raise AnsatzTooComplexError("a number too large to keep exact")
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            a = conv(node.operand, depth + 1)
            return -a if isinstance(node.op, ast.USub) else a
        if isinstance(node, ast.Call) and not node.keywords:
            name = function_name(node.func)
            if name is None or name not in allowed or len(node.args) != 1:
                raise AnsatzError(f"function not allowed: {ast.dump(node.func)[:60]}")
            row = FUNCTIONS[name]
            arg = conv(node.args[0], depth + 1)
            if arg.is_number:
                # As in the ansatz's sympy form: sympy would evaluate a special function
                # of a number, or any function of a big one, exactly (gamma(999999999)
                # never finishes); the double is what the evaluator computes anyway.
                v = _float(arg)
                if row.module == "scipy.special" or not abs(v) <= SMALL_ARGUMENT:
                    return sympy.Float(scalar_value(row.numpy, v))
            return row.to_sympy(arg)
        raise AnsatzError(f"construct not allowed: {type(node).__name__}")

    try:
        with time_bound(AnsatzTooComplexError, "parsing the expression"):
            return conv(tree, 0)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError) as err:
        if isinstance(err, AnsatzError):
            raise
        raise AnsatzError(f"cannot convert: {err}") from err


def _float(e: sympy.Expr) -> float:
    """The double value of a sympy number; nan if it has none (complex, undefined)."""
    try:
        return float(e)
    except OverflowError:
        return math.inf if e.is_extended_positive else -math.inf
    except (TypeError, ValueError):
        return math.nan


# ----------------------------------------------------------------------------- simplify


#: Python calls one in-process simplification may make (:func:`simplify_bounded`): about
#: five seconds here.
SIMPLIFY_CALLS = 20_000_000


def simplify_bounded(expr: sympy.Expr, calls: int = SIMPLIFY_CALLS) -> sympy.Expr | None:
    """:func:`sympy.simplify` of ``expr`` here, stopped after ``calls`` Python calls (a
    bound on work, not time: the same expression gives the same answer under any load);
    ``None`` when stopped or failing."""
    from llmlex._symbolic import time_bound

    try:
        # No clock at all (an infinite time bound): the call bound is the whole bound.
        with time_bound(TimeoutError, "a simplification", math.inf, calls=calls):
            out = sympy.simplify(expr)
    except Exception as err:  # sympy raises many kinds; the bound raises TimeoutError
        log.info("sympy simplification stopped: %s", err)
        return None
    return out if isinstance(out, sympy.Basic) else None


def simplify_with_timeout(
    expr: sympy.Expr, timeout: float | None, *, calls: int = SIMPLIFY_CALLS
) -> sympy.Expr | None:
    """:func:`simplify_bounded` of ``expr``, also stopped after ``timeout`` seconds;
    ``None`` when stopped or failing.

    With a timeout it runs in a child process (not a thread) because a single long C
    operation cannot be interrupted in-process; ``subprocess`` (not ``multiprocessing``)
    so that nothing of the caller's ``__main__`` is re-imported and no forked copy of
    torch's threads is made.  The expression travels as a pickle we made ourselves from
    sympy objects.  The child does the same work-bounded simplification as ``timeout=None``
    does here: the clock may stop it, never change what it yields.
    """
    if timeout is None:  # no clock: the bound on work alone
        return simplify_bounded(expr, calls)
    if timeout <= 0:
        return None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "llmlex._kan_sympy", str(int(calls))],
            input=pickle.dumps(expr),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.info("sympy simplification timed out after %.1f s", timeout)
        return None
    if proc.returncode != 0:
        log.info("sympy simplification failed: %s", proc.stderr.decode(errors="replace")[-300:])
        return None
    out = pickle.loads(proc.stdout)
    return out if isinstance(out, sympy.Basic) else None


def _worker() -> None:  # pragma: no cover - runs in the child process
    expr = pickle.loads(sys.stdin.buffer.read())
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else SIMPLIFY_CALLS
    sys.stdout.buffer.write(pickle.dumps(simplify_bounded(expr, calls)))


if __name__ == "__main__":  # pragma: no cover
    _worker()
