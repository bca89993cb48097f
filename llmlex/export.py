"""Exports of a result: sympy, LaTeX, a numpy callable, a torch module, text and HTML reports.

Every function accepts any llmlex result: a :class:`~llmlex.fit.FitResult`, a
:class:`~llmlex.kan.KANSymbolicResult`, a :class:`~llmlex.genetic.GeneticRun` (its
``best``), or a fitted :class:`~llmlex.estimator.LLMLExRegressor` (its ``result_``).
Nothing here evaluates text: numpy and torch callables are built by walking the sympy tree
(or, for a univariate fit, by reusing its compiled ansatz); the torch counterparts of
sympy's function heads come from the table in :mod:`llmlex._functions`.  torch is
imported only by :func:`to_torch`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._functions import sympy_head_rows, torch_function
from llmlex.exceptions import MissingDependencyError
from llmlex.fit import FitResult, nchi2, r2

if TYPE_CHECKING:
    import sympy

__all__ = ["report", "report_html", "to_latex", "to_numpy", "to_sympy", "to_torch"]


# ----------------------------------------------------------------------------- helpers


def _unwrap(result: Any) -> Any:
    """The FitResult / KANSymbolicResult / sympy expression behind ``result``."""
    if hasattr(result, "best") and hasattr(result, "archive"):  # GeneticRun
        return result.best
    if hasattr(result, "result_"):  # fitted LLMLExRegressor
        return result.result_
    if hasattr(result, "get_params") and hasattr(result, "fit"):
        raise ValueError("the estimator is not fitted yet: call fit first")
    return result


def _is_kan(r: Any) -> bool:
    return hasattr(r, "variables") and hasattr(r, "raw_expression")


def _variables(expr: sympy.Expr) -> list[sympy.Symbol]:
    return sorted(expr.free_symbols, key=lambda s: s.name)


# ----------------------------------------------------------------------------- sympy, latex


def to_sympy(result: Any) -> sympy.Expr:
    """The formula as a sympy expression with the fitted values substituted.

    Parameters
    ----------
    result : FitResult, KANSymbolicResult, GeneticRun, LLMLExRegressor or sympy.Expr
        The result.

    Returns
    -------
    sympy.Expr
        In the symbol ``x`` for univariate fits, ``x0, x1, ...`` for KAN results (and the
        estimator's ``x0``).
    """
    import sympy

    if hasattr(result, "expression_"):  # a fitted estimator names its inputs x0, x1, ...
        return result.expression_
    r = _unwrap(result)
    if isinstance(r, sympy.Basic):
        return r
    if isinstance(r, FitResult):
        from llmlex._symbolic import param

        a = r._compiled()
        # sympy.Float keeps a bare parameter a sympy expression (not a Python float).
        subs = {param(k): sympy.Float(float(v)) for k, v in enumerate(r.params)}
        return sympy.sympify(a.sympy.xreplace(subs))
    if _is_kan(r):
        return r.expression
    raise TypeError(f"cannot export a {type(result).__name__}")


def to_latex(result: Any, *, precision: int = 4) -> str:
    """The formula as LaTeX, with fitted numbers rounded to ``precision`` significant digits.

    Examples
    --------
    >>> import sympy
    >>> from llmlex._symbolic import X
    >>> to_latex(sympy.Float(2.5) * sympy.exp(-0.7 * X), precision=3)
    '2.5 e^{- 0.7 x}'
    """
    import sympy

    expr = to_sympy(result)
    repl = {f: sympy.Float(f"{float(f):.{precision}g}") for f in expr.atoms(sympy.Float)}
    return sympy.latex(expr.xreplace(repl))


# ----------------------------------------------------------------------------- numpy


class NumpyFormula:
    """A vectorised numpy callable of a fitted formula (built without ``eval``).

    Univariate results are called as ``f(x)`` with a 1-D array; multivariate ones as
    ``f(X)`` with ``X`` of shape ``(n, n_variables)`` (columns in :attr:`variables` order).
    """

    def __init__(self, func: Callable[[np.ndarray], np.ndarray], variables: Sequence[str]):
        self._func = func
        self.variables = tuple(variables)

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            return np.asarray(self._func(x), dtype=float)

    def __repr__(self) -> str:
        return f"NumpyFormula(variables={self.variables!r})"


def to_numpy(result: Any) -> NumpyFormula:
    """A safe vectorised numpy callable of the formula.

    A :class:`~llmlex.fit.FitResult` reuses its compiled ansatz; anything else is compiled
    by walking its sympy tree into numpy functions (no ``lambdify``, no ``eval``).

    Returns
    -------
    NumpyFormula
        ``f(x)`` for univariate results, ``f(X)`` (rows of ``X``) for multivariate ones.
    """
    import sympy

    from llmlex._kan_sympy import compile_expr

    if hasattr(result, "predict") and hasattr(result, "n_features_in_"):  # estimator
        est = result
        n = int(est.n_features_in_)
        names = [f"x{k}" for k in range(n)]
        return NumpyFormula(lambda X: est.predict(np.reshape(X, (-1, n))), names)
    r = _unwrap(result)
    if isinstance(r, FitResult):
        fit = r
        return NumpyFormula(lambda x: np.broadcast_to(fit.predict(x), np.shape(x)), ["x"])
    expr = to_sympy(r)
    kan = _is_kan(r)
    syms = [sympy.Symbol(v, real=True) for v in r.variables] if kan else _variables(expr)
    f = compile_expr(expr, syms)

    def call(X: np.ndarray) -> np.ndarray:
        if len(syms) <= 1 and X.ndim == 1:
            cols = [X] if syms else []
            shape = X.shape
        else:
            X2 = X.reshape(-1, len(syms)) if X.ndim == 1 else X
            cols = [X2[:, k] for k in range(X2.shape[1])]
            shape = (X2.shape[0],)
        return np.broadcast_to(np.asarray(f(cols), dtype=float), shape).copy()

    return NumpyFormula(call, [s.name for s in syms])


# ----------------------------------------------------------------------------- torch


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise MissingDependencyError(
            f'to_torch needs torch ({err}); install it with `pip install "llmlex[kan]"`'
        ) from err
    return torch


def _torch_builder(torch: Any, index: dict[Any, int], pindex: dict[Any, int]) -> Callable:
    """A recursive converter from a sympy tree to closures over torch operations."""
    import sympy

    # The table's one-argument sympy heads that have a torch counterpart.
    unary = {
        head: op
        for head, row in sympy_head_rows().items()
        if (op := torch_function(row, torch)) is not None
    }

    def build(e: Any) -> Callable[[Any, Any], Any]:
        if e in pindex:
            k = pindex[e]
            return lambda v, p: p[k]
        if e.is_Symbol:
            if e not in index:
                raise ValueError(f"unknown symbol {e}")
            k = index[e]
            return lambda v, p: v[k]
        if e.is_Number or e.is_NumberSymbol:
            c = float(e)
            return lambda v, p: c
        if e.is_number:
            # A constant subtree (log(2) in the form of log2, sqrt(2)): torch's functions
            # take tensors, not Python floats, so fold it to a float here.
            try:
                c = float(e)
            except TypeError:  # a complex constant: the conversion below rejects it
                pass
            else:
                return lambda v, p: c
        args = [build(a) for a in e.args]
        if e.is_Add:
            return lambda v, p: _fold(lambda a, b: a + b, args, v, p)
        if e.is_Mul:
            return lambda v, p: _fold(lambda a, b: a * b, args, v, p)
        if e.is_Pow:
            base, expo = args
            if e.exp == sympy.Rational(1, 2):
                return lambda v, p: torch.sqrt(base(v, p))
            if e.exp == sympy.Rational(1, 3):  # numpy's real cube root
                return lambda v, p: _cbrt(torch, base(v, p))
            if e.exp == sympy.Rational(-1, 3):
                return lambda v, p: 1.0 / _cbrt(torch, base(v, p))
            return lambda v, p: torch.pow(base(v, p), expo(v, p))
        if isinstance(e, sympy.log):
            if len(args) == 1:
                return lambda v, p: torch.log(args[0](v, p))
            return lambda v, p: torch.log(args[0](v, p)) / math.log(float(e.args[1]))
        if isinstance(e, sympy.Max):
            return lambda v, p: _fold(torch.maximum, args, v, p)
        if isinstance(e, sympy.Min):
            return lambda v, p: _fold(torch.minimum, args, v, p)
        fn = unary.get(e.func)
        if fn is not None and len(args) == 1:
            a0 = args[0]
            return lambda v, p: fn(_tensor(torch, a0(v, p)))
        raise ValueError(f"cannot convert sympy node {e.func.__name__} to torch")

    return build


def _tensor(torch: Any, a: Any) -> Any:
    if torch.is_tensor(a):
        return a
    return torch.as_tensor(a, dtype=torch.float64)


def _cbrt(torch: Any, a: Any) -> Any:
    return torch.sign(a) * torch.abs(a) ** (1.0 / 3.0)


def _fold(fn: Callable[[Any, Any], Any], args: list[Callable], v: Any, p: Any) -> Any:
    out = args[0](v, p)
    for f in args[1:]:
        out = fn(out, f(v, p))
    return out


def to_torch(result: Any) -> Any:
    """The formula as a trainable ``torch.nn.Module``.

    The fitted constants become one ``nn.Parameter`` vector ``module.params`` (the
    ansatz parameters of a univariate fit; every floating-point constant of a KAN
    formula), so the module can be refined by gradient descent or embedded in a network.
    ``forward(x)`` takes a 1-D tensor for univariate formulas and a ``(n, n_variables)``
    tensor otherwise, and returns a 1-D tensor (float64).

    Raises
    ------
    MissingDependencyError
        If torch is not installed (``pip install "llmlex[kan]"``).
    ValueError
        If the formula uses a function with no torch counterpart here.
    """
    torch = _import_torch()
    import sympy

    r = _unwrap(result)
    if isinstance(r, FitResult):
        from llmlex._symbolic import X, param

        template = r._compiled().sympy
        psyms = [param(k) for k in range(r.n_params)]
        values = np.asarray(r.params, dtype=float)
        variables = [X]  # one column, taken positionally (the estimator's x0)
    else:
        from llmlex._kan_sympy import parameterise

        expr = to_sympy(r)
        template, psyms, values = parameterise(expr)
        if _is_kan(r):
            variables = [sympy.Symbol(v, real=True) for v in r.variables]
        else:
            variables = [s for s in _variables(template) if s not in set(psyms)]
    index = {s: k for k, s in enumerate(variables)}
    pindex = {s: k for k, s in enumerate(psyms)}
    func = _torch_builder(torch, index, pindex)(template)
    names = [s.name for s in variables]

    class SymbolicModule(torch.nn.Module):
        """A fitted formula with trainable constants."""

        def __init__(self) -> None:
            super().__init__()
            self.params = torch.nn.Parameter(
                torch.tensor(np.array(values, dtype=float), dtype=torch.float64)
            )
            self.variables = tuple(names)

        def forward(self, x: Any) -> Any:
            x = torch.as_tensor(x, dtype=torch.float64)
            if x.ndim == 1:
                cols = [x]
                n = x.shape[0]
            else:
                cols = [x[:, k] for k in range(x.shape[1])]
                n = x.shape[0]
            out = func(cols, self.params)
            if not torch.is_tensor(out):
                out = torch.as_tensor(out, dtype=torch.float64)
            return out * torch.ones(n, dtype=torch.float64)

        def extra_repr(self) -> str:
            return f"variables={self.variables}, n_params={self.params.numel()}"

    return SymbolicModule()


# ----------------------------------------------------------------------------- reports


def _rows(result: Any, x: Any, y: Any, precision: int) -> list[tuple[str, str]]:
    """(label, value) rows shared by the text and HTML reports."""
    run = result if hasattr(result, "archive") and hasattr(result, "stats") else None
    est = result if hasattr(result, "result_") else None
    r = _unwrap(result)
    rows: list[tuple[str, str]] = []
    rows.append(("formula", str(to_sympy(result))))
    if isinstance(r, FitResult):
        rows.append(("ansatz", r.ansatz))
        params = ", ".join(f"p{k} = {v:.{precision}g}" for k, v in enumerate(r.params))
        rows.append(("parameters", params or "(none)"))
        rows.append(("nchi2", f"{r.nchi2:.{precision}g}"))
        rows.append(("complexity", str(r.complexity)))
        rows.append(("fit", f"{r.message}; {r.nfev} evaluations, {r.time:.3g} s"))
    elif _is_kan(r):
        rows.append(("variables", ", ".join(r.variables)))
        rows.append(
            (
                "nchi2 (train / test)",
                f"{r.nchi2_train:.{precision}g} / {r.nchi2_test:.{precision}g}",
            )
        )
        rows.append(
            ("R2 (train / test)", f"{r.r2_train:.{precision}g} / {r.r2_test:.{precision}g}")
        )
        rows.append(("complexity", f"{r.complexity} (raw {r.raw_complexity})"))
        rows.append(("LLM calls", f"{r.llm_calls} (saved {r.llm_calls_saved})"))
        total = r.timings.get("total") if r.timings else None
        if total is not None:
            rows.append(("time", f"{total:.3g} s (symbolic stage)"))
    if x is not None and y is not None:
        f = to_numpy(result)
        y_arr = np.asarray(y, dtype=float).ravel()
        yhat = np.broadcast_to(f(np.asarray(x, dtype=float)), y_arr.shape)
        rows.append(("nchi2 (given data)", f"{nchi2(y_arr, yhat):.{precision}g}"))
        rows.append(("R2 (given data)", f"{r2(y_arr, yhat):.{precision}g}"))
    stats = run.stats if run is not None else getattr(est, "stats_", None)
    if stats is not None:
        rows.append(("calls", str(stats.calls)))
        rows.append(
            (
                "tokens",
                f"{stats.prompt_tokens} prompt + {stats.completion_tokens} completion",
            )
        )
        failures = ", ".join(f"{k} {v}" for k, v in stats.failures.items() if v) or "none"
        rows.append(("failures", failures))
        rows.append(("time", f"{stats.time:.3g} s"))
    if run is not None:
        rows.append(("generations", str(len(run))))
        rows.append(("proposer", run.proposer))
        rows.append(("stopped", run.stop_reason))
    return rows


def report(result: Any, *, x: Any = None, y: Any = None, precision: int = 6) -> str:
    """A plain-text report: formula, parameters, nchi2, R2, complexity, calls, tokens, time.

    Parameters
    ----------
    result : FitResult, KANSymbolicResult, GeneticRun or LLMLExRegressor
        The result.
    x, y : array_like, optional
        Data to score the formula on (adds nchi2 and R2 rows).
    precision : int
        Significant digits of the numbers.

    Returns
    -------
    str
        One ``label: value`` line per item.
    """
    rows = _rows(result, x, y, precision)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}} : {v}" for k, v in rows)


def report_html(result: Any, *, x: Any = None, y: Any = None, precision: int = 6) -> str:
    """The report of :func:`report` as an HTML table (for notebooks' ``_repr_html_``)."""
    rows = _rows(result, x, y, precision)
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
        for k, v in rows
    )
    return f"<table class='llmlex-report'>{body}</table>"
