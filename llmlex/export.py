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

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex import _report
from llmlex._functions import sympy_head_rows, torch_function
from llmlex._report import stats_rows
from llmlex._results import GeneticRun
from llmlex.exceptions import MissingDependencyError
from llmlex.fit import FitResult

if TYPE_CHECKING:
    import sympy

__all__ = ["as_result", "report", "report_html", "to_latex", "to_numpy", "to_sympy", "to_torch"]


# ----------------------------------------------------------------------------- results


class _FittedEstimator:
    """A fitted scikit-learn estimator seen through the result protocol.

    The estimator names its inputs ``x0, x1, ...`` (its ``expression_``) whatever the
    result behind it calls them, predicts through its own ``predict``, and adds its search
    statistics to the report.
    """

    def __init__(self, est: Any) -> None:
        self.est = est
        self.result = est.result_
        self.kind = self.result.kind

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(f"x{k}" for k in range(int(self.est.n_features_in_)))

    @property
    def expression(self) -> sympy.Expr:
        return self.est.expression_

    @property
    def nchi2(self) -> float:
        return float(self.result.nchi2)

    @property
    def complexity(self) -> int:
        return int(self.result.complexity)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.est.predict(np.reshape(X, (-1, int(self.est.n_features_in_))))

    def report_rows(self, precision: int = 6) -> list[tuple[str, str]]:
        rows = self.result.report_rows(precision)
        if self.est.stats_ is not None:
            rows += stats_rows(self.est.stats_)
        return rows

    def pareto_points(self) -> tuple[list[tuple[int, float, str]], tuple[int, float] | None]:
        pts = [(p.complexity, p.nchi2, p.equation) for p in self.est.pareto_front_]
        return pts, (self.complexity, self.nchi2)


def as_result(obj: Any) -> Any:
    """The object behind the result protocol (:class:`llmlex._results.Result`) for ``obj``.

    llmlex's results follow the protocol themselves; a fitted
    :class:`~llmlex.estimator.LLMLExRegressor` (anything with a fitted ``result_``) is seen
    through a view that names its inputs ``x0, x1, ...``.
    """
    if hasattr(type(obj), "kind") and hasattr(type(obj), "report_rows"):
        return obj
    if hasattr(obj, "get_params") and hasattr(obj, "fit"):
        if not hasattr(obj, "result_"):
            raise ValueError("the estimator is not fitted yet: call fit first")
        return _FittedEstimator(obj)
    raise TypeError(f"cannot export a {type(obj).__name__}")


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

    if isinstance(result, sympy.Basic):
        return result
    return as_result(result).expression


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

    if isinstance(result, sympy.Basic):
        expr = result
        syms = _variables(expr)
    else:
        r = as_result(result)
        if isinstance(r, _FittedEstimator):
            est = r
            return NumpyFormula(lambda X: est.predict(X), r.variables)
        if r.kind in (FitResult.kind, GeneticRun.kind):  # reuse the compiled ansatz
            uni = r
            return NumpyFormula(lambda x: np.broadcast_to(uni.predict(x), np.shape(x)), ["x"])
        expr = r.expression
        syms = [sympy.Symbol(v, real=True) for v in r.variables]
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

    r = result if isinstance(result, sympy.Basic) else as_result(result)
    if isinstance(r, GeneticRun):
        r = r.best
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
        if isinstance(r, sympy.Basic):
            variables = [s for s in _variables(template) if s not in set(psyms)]
        else:
            variables = [sympy.Symbol(v, real=True) for v in r.variables]
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
    return _report.report(as_result(result), x=x, y=y, precision=precision)


def report_html(result: Any, *, x: Any = None, y: Any = None, precision: int = 6) -> str:
    """The report of :func:`report` as an HTML table (for notebooks' ``_repr_html_``)."""
    return _report.report_html(as_result(result), x=x, y=y, precision=precision)
