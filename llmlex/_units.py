"""Units: the search runs on data scaled by powers of ten, results come back in the user's.

A law does not depend on the units its data are written in, but a search does: the
score's absolute floor (``eps``), the fitter's random starts (magnitudes 0.01 to 100) and
a proposer reading the numbers all assume values of order one.  So the search works on
``x / sx`` and ``y / sy``, with ``sx`` and ``sy`` the powers of ten that bring the largest
magnitude of each into ``[0.5, 5)``, and every result is mapped back exactly: the ansatz
``f(x)`` found on the scaled data becomes ``sy * f(x / sx)`` with the same parameter
values, so fits, predictions and uncertainties carry over unchanged.

Why powers of ten rather than the data's RMS: data already of order one (the common
case, and every benchmark's) are searched exactly as given, and a change of decimal unit
(an SI prefix: mm to km, uA to A) gives a bit-for-bit identical search.  Any other unit
factor leaves an order-one factor, as if the data had come in other units of order one.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from llmlex._functions import parse_expression_tree
from llmlex._score import decade, nchi2
from llmlex._validation import LARGEST, SMALLEST, check_magnitude
from llmlex.ansatz import Ansatz, ansatz_from_sympy, parse_ansatz
from llmlex.exceptions import AnsatzTooComplexError
from llmlex.fit import FitResult

__all__ = ["LARGEST", "SMALLEST", "Scaling", "choose_scaling"]

log = logging.getLogger(__name__)


def _decade(values: np.ndarray, name: str) -> float:
    """:func:`llmlex._score.decade` of validated data, or DataError beyond the range."""
    check_magnitude(values, name)
    return decade(values)


#: Significant bits of the data a search works on.  ``(1000*x)/1000`` differs from ``x``
#: in the last bit, and a search is chaotic: from rounding errors it would find other
#: formulas in other units.  Rounded to 42 bits (13 digits: below any measurement's
#: precision, and below the noise floor of 1e-12 of RMS(y) that noise-free data get) the
#: two agree but where a value lies within a rounding error of a rounding boundary
#: (about one point in 2000).
WORKING_BITS = 42


def quantize(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to :data:`WORKING_BITS` significant bits (exact on zeros and
    on numbers with fewer bits)."""
    mantissa, exponent = np.frexp(np.asarray(values, dtype=float))
    return np.ldexp(np.round(mantissa * 2.0**WORKING_BITS) / 2.0**WORKING_BITS, exponent)


@dataclass(frozen=True)
class Scaling:
    """The powers of ten the search divides ``x`` and ``y`` by.

    Attributes
    ----------
    x, y : float
        Scales of the abscissa and the ordinate (1.0: unchanged).
    """

    x: float = 1.0
    y: float = 1.0

    @property
    def identity(self) -> bool:
        """Whether the search sees the data as given."""
        return self.x == 1.0 and self.y == 1.0

    def data(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The data the search works on: divided by the scales and rounded to
        :data:`WORKING_BITS` bits (see :func:`quantize`)."""
        return quantize(x / self.x), quantize(y / self.y)

    def sigma(self, sigma: np.ndarray | float | None) -> np.ndarray | float | None:
        """Error bars of ``y`` in the search's units."""
        if sigma is None or self.y == 1.0:
            return sigma
        return np.asarray(sigma, dtype=float) / self.y

    def ansatz_text(self, text: str) -> str:
        """``sy * f(x / sx)`` for the ansatz text ``f`` found on the scaled data."""
        if self.identity:
            return text
        tree = parse_expression_tree(text)
        if self.x != 1.0:
            tree = _SubstituteX(self.x).visit(tree)
        if self.y != 1.0:
            tree = ast.BinOp(left=ast.Constant(self.y), op=ast.Mult(), right=tree)
        return ast.unparse(ast.fix_missing_locations(tree))

    def search_text(self, text: str) -> str:
        """``f(x * sx) / sy`` for an ansatz text ``f`` in the user's units: the same
        function of its parameters on the data the search sees (the inverse of
        :meth:`ansatz_text`)."""
        if self.identity:
            return text
        tree = parse_expression_tree(text)
        if self.x != 1.0:
            tree = _SubstituteX(1.0 / self.x).visit(tree)
        if self.y != 1.0:
            tree = ast.BinOp(left=tree, op=ast.Div(), right=ast.Constant(self.y))
        return ast.unparse(ast.fix_missing_locations(tree))

    def to_user(self, result: FitResult, x: np.ndarray, y: np.ndarray) -> FitResult:
        """``result`` (fitted on the scaled data) in the units of ``x`` and ``y``.

        The mapped ansatz ``sy * f(x / sx)`` is the same function of the parameters.
        Where a parameter enters once, as a factor of a term, the scale factors in front
        of it are absorbed into its value (``1e-06*(params[0]*exp(params[1]*(x/1000.0)))``
        becomes ``params[0]*exp(params[1]*x)`` with ``p0*1e-6`` and ``p1/1000``), so that
        the parameters are the constants of the formula in the user's units.  The
        covariance is transformed with them; the chi-squared and the description length
        do not change; ``nchi2`` is the reference score on the user's data and the noise
        level is scaled back.
        """
        if self.identity:
            return result
        compiled, params, factors, order = self._absorbed(result)
        value = nchi2(y, compiled(x, params)) if result.success else result.nchi2
        changes: dict[str, object] = {
            "ansatz": compiled.text,
            "compiled": compiled,
            "nchi2": value,
            "params": params,
        }
        cov = getattr(result, "covariance", None)
        if cov is not None and np.shape(cov) == (result.n_params, result.n_params):
            with np.errstate(over="ignore", invalid="ignore"):  # inf variances stay inf
                scaled = np.asarray(cov, dtype=float) * np.outer(factors, factors)
            changes["covariance"] = scaled[np.ix_(order, order)]
        noise = getattr(result, "noise", None)
        if noise is not None:
            changes["noise"] = noise * self.y
        return dataclasses.replace(result, **changes)

    def _absorbed(self, result: FitResult) -> tuple[Ansatz, np.ndarray, np.ndarray, list[int]]:
        """The mapped ansatz, its parameter values, each old parameter's factor, and the
        old index of each new parameter."""
        n = result.n_params
        wrapped = parse_ansatz(self.ansatz_text(result.ansatz))
        if wrapped.n_params != n:  # the mapping keeps every parameter
            raise AssertionError(f"scaling changed the parameters of {result.ansatz!r}")
        plain = (wrapped, np.array(result.params, dtype=float), np.ones(n), list(range(n)))
        try:
            found = _absorb(wrapped, n)
        except Exception:  # sympy may fail on an exotic ansatz: the wrapped text is exact
            log.debug("kept the wrapped form of %s", result.ansatz, exc_info=True)
            return plain
        if found is None:
            return plain
        compiled, factors = found
        order = [int(k) for k in compiled.source_indices]
        values = (np.asarray(result.params, dtype=float) * factors)[order]
        if not _same_function(wrapped, plain[1], compiled, values, self.x):
            # e.g. a factor beyond the doubles (1e-598 for (x/1e299)**2): keep the wrapper.
            return plain
        return compiled, values, factors, order


def _same_function(a: Ansatz, pa: np.ndarray, b: Ansatz, pb: np.ndarray, scale: float) -> bool:
    """Whether two parameterised ansätze agree (to 1e-9) on a grid of the data's range."""
    if not (np.all(np.isfinite(pb)) and np.all(np.isfinite(pa))):
        return False
    grid = scale * np.linspace(-5.0, 5.0, 41)
    with np.errstate(all="ignore"):
        ya, yb = a(grid, pa), b(grid, pb)
    fa, fb = np.isfinite(ya), np.isfinite(yb)
    if np.any(fa & ~fb):  # absorbing must not lose where the formula is defined
        return False
    both = fa & fb
    return bool(
        np.allclose(
            yb[both], ya[both], rtol=1e-9, atol=1e-12 * np.max(np.abs(ya[both]), initial=0.0)
        )
    )


def _absorb(wrapped: Ansatz, n: int) -> tuple[Ansatz, np.ndarray] | None:
    """``wrapped`` with numeric factors of once-used parameters absorbed, and the factors.

    None when nothing can be absorbed or the result would lose a parameter.
    """
    import sympy

    from llmlex._symbolic import param, time_bound

    with time_bound(AnsatzTooComplexError, "absorbing the units"):
        expr = sympy.expand_mul(wrapped.sympy)
        symbols = [param(k) for k in range(n)]
        factors = np.ones(n)
        for k, p in enumerate(symbols):
            terms = [t for t in expr.atoms(sympy.Mul) if p in t.args]
            uses = sum(1 for a in sympy.preorder_traversal(expr) if a == p)
            if len(terms) != 1 or uses != 1:
                continue
            coeff, rest = terms[0].as_coeff_Mul()
            if not (coeff.is_Float or coeff.is_Rational) or coeff in (0, 1):
                continue
            factors[k] = float(coeff)
            expr = expr.xreplace({terms[0]: rest})
        if np.all(factors == 1.0):
            return None
        compiled = ansatz_from_sympy(expr)
    if compiled.n_params != n or sorted(compiled.source_indices) != list(range(n)):
        return None
    return compiled, factors


class _SubstituteX(ast.NodeTransformer):
    """Writes ``(x / scale)`` for every ``x``."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id != "x":
            return node
        return ast.BinOp(
            left=ast.Name("x", ast.Load()), op=ast.Div(), right=ast.Constant(self.scale)
        )


def choose_scaling(x: np.ndarray, y: np.ndarray) -> Scaling:
    """The :class:`Scaling` of validated data.

    Raises
    ------
    DataError
        If the largest magnitude of ``x`` or ``y`` is outside ``[1e-300, 1e300]``.
    """
    return Scaling(x=_decade(x, "x"), y=_decade(y, "y"))
