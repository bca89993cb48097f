"""Conversions between the ansatz language and sympy.

Imported lazily: sympy costs a fraction of a second to import and most numerical work
never needs it.  :func:`ast_to_sympy` builds each function with the sympy builder of its
row in :mod:`llmlex._functions`.  The direction sympy -> text is :func:`sympy_to_text`,
sympy's own SciPy printer kept inside the ansatz language;
:func:`llmlex.ansatz.ansatz_from_sympy` parses that text again, so anything printed is
re-checked by the whitelist.  This module imports nothing of llmlex but the table, so
:mod:`llmlex.ansatz` can import it lazily without a cycle.
"""

from __future__ import annotations

import ast
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from functools import cache, partial
from types import FrameType
from typing import Any

import sympy
from sympy.printing.numpy import SciPyPrinter

from llmlex._functions import (
    CONSTANTS,
    FUNCTIONS,
    NUMPY_BINOPS,
    NUMPY_BOOLOPS,
    constant_name,
    function_name,
    param_index,
    scalar_value,
)

__all__ = [
    "MAX_EXACT_BITS",
    "SMALL_ARGUMENT",
    "SYMPY_SECONDS",
    "X",
    "ast_to_sympy",
    "canonical_key",
    "node_count",
    "number_cost",
    "operator_kinds",
    "param",
    "power_too_big",
    "sympy_to_text",
    "time_bound",
]

#: Largest exact number the conversion keeps, in bits of its numerator or denominator
#: (about 1e331, past the range of doubles, where the ansatz computes inf or 0 anyway).
MAX_EXACT_BITS = 1100
#: Largest argument of an elementary function of numbers that sympy evaluates exactly
#: (``exp2(1000)`` is quick; ``sin(9**99)`` would be a Float in the ansatz anyway).
SMALL_ARGUMENT = 1000.0
#: Time bound of one sympy conversion of an ansatz, in seconds.
SYMPY_SECONDS = 1.0

#: The independent variable of univariate ansätze.
X = sympy.Symbol("x", real=True)


@cache
def param(k: int) -> sympy.Symbol:
    """The sympy symbol of ``params[k]``."""
    return sympy.Symbol(f"p{k}", real=True)


#: Canonical function name -> sympy builder of its arguments (views of the table).
_SYMPY_FUNCS: dict[str, Callable[..., sympy.Expr]] = {
    name: partial(f.sympy, sympy) for name, f in FUNCTIONS.items()
}
_SYMPY_CONSTANTS: dict[str, sympy.Expr] = {name: c.to_sympy() for name, c in CONSTANTS.items()}
_NUMPY_OPS = {**NUMPY_BINOPS, **NUMPY_BOOLOPS}
_SYMPY_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_SYMPY_CMP = {
    ast.Lt: sympy.Lt,
    ast.LtE: sympy.Le,
    ast.Gt: sympy.Gt,
    ast.GtE: sympy.Ge,
    ast.Eq: sympy.Eq,
    ast.NotEq: sympy.Ne,
}


def _number(v: float | int) -> sympy.Expr:
    if isinstance(v, int):
        return sympy.Integer(v)
    if v.is_integer() and abs(v) < 1e15:
        return sympy.Integer(int(v))
    frac = Fraction(v).limit_denominator(1000)
    if float(frac) == v:  # exactly a simple fraction such as 0.5 or 0.125
        return sympy.Rational(frac.numerator, frac.denominator)
    return sympy.Float(v)


def _bits(e: sympy.Expr, value: float) -> float:
    """Size in bits of an exact number (its numerator or denominator), or an estimate."""
    if e.is_Rational:
        return float(max(abs(int(e.p)).bit_length(), int(e.q).bit_length()))
    if math.isfinite(value) and value != 0.0:
        return abs(math.log2(abs(value))) + 1.0
    return math.inf


def _folded(value: float) -> sympy.Expr:
    """The double ``value`` as sympy (``oo`` / ``nan`` when it is not finite)."""
    return sympy.Float(value)


class _Converter:
    """Builds sympy from a checked tree; subtrees free of ``x`` and parameters are exact
    only while their exact value stays small.

    sympy evaluates numbers exactly: ``gamma(999999999)`` is a factorial,
    ``digamma(999999999)`` a harmonic sum and ``2**(2**99)`` an integer of 2**99 bits, none
    of which finishes.  So each number-only subtree is also evaluated in doubles, as the
    compiled ansatz does, and that value replaces the exact one (a sympy Float) for a
    special function (a ``scipy.special`` row) of numbers, for a function with an argument
    beyond :data:`SMALL_ARGUMENT`, and where a power would exceed :data:`MAX_EXACT_BITS`
    or an exact result did.
    """

    def conv(self, node: ast.expr) -> tuple[sympy.Expr, float | None]:
        """The sympy form of ``node`` and its double value if it is number-only."""
        if isinstance(node, ast.Constant):
            return _number(node.value), float(node.value)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return _SYMPY_CONSTANTS[node.id], CONSTANTS[node.id].numpy
            return X, None
        idx = param_index(node)
        if idx is not None:
            return param(idx), None
        c = constant_name(node)
        if c is not None:
            return _SYMPY_CONSTANTS[c], CONSTANTS[c].numpy
        if isinstance(node, ast.BinOp):
            (a, va), (b, vb) = self.conv(node.left), self.conv(node.right)
            op = type(node.op)
            v = None if va is None or vb is None else scalar_value(_NUMPY_OPS[op], va, vb)
            if op is ast.BitAnd:
                return sympy.And(a, b), v
            if op is ast.BitOr:
                return sympy.Or(a, b), v
            if v is not None and op is ast.Pow and power_too_big(a, b, va):
                return _folded(v), v
            return self._exact(_SYMPY_BINOPS[op](a, b), v)
        if isinstance(node, ast.UnaryOp):
            a, va = self.conv(node.operand)
            if isinstance(node.op, ast.USub):
                return -a, None if va is None else -va
            return a, va
        if isinstance(node, ast.Compare):
            pairs = [self.conv(t) for t in (node.left, *node.comparators)]
            vals = [e for e, _ in pairs]
            rels = [_SYMPY_CMP[type(op)](vals[k], vals[k + 1]) for k, op in enumerate(node.ops)]
            return (rels[0] if len(rels) == 1 else sympy.And(*rels)), None
        if isinstance(node, ast.BoolOp):
            f = sympy.And if isinstance(node.op, ast.And) else sympy.Or
            return f(*(self.conv(v)[0] for v in node.values)), None
        if isinstance(node, ast.Call):
            name = function_name(node.func)
            assert name is not None
            pairs = [self.conv(a) for a in node.args]
            args = [e for e, _ in pairs]
            vals = [v for _, v in pairs]
            if name == "where" or any(v is None for v in vals):
                return _SYMPY_FUNCS[name](*args), None
            row = FUNCTIONS[name]
            v = scalar_value(row.numpy, *vals)  # type: ignore[arg-type]
            # Special functions of numbers are folded whatever their size: even when sympy
            # leaves them unevaluated, printing sorts terms by their numeric value, and
            # mpmath takes seconds on some (besselk(1999/2, 999)).
            if row.module == "scipy.special" or not all(
                abs(u) <= SMALL_ARGUMENT  # type: ignore[arg-type]
                for u in vals
            ):
                return _folded(v), v  # also nan arguments: nothing exact to gain
            return self._exact(_SYMPY_FUNCS[name](*args), v)
        raise TypeError(f"cannot convert {type(node).__name__} to sympy")  # pragma: no cover

    @staticmethod
    def _exact(e: sympy.Expr, v: float | None) -> tuple[sympy.Expr, float | None]:
        """``e``, or its double value if it is an exact number grown too large."""
        if v is not None and e.is_Rational and _bits(e, v) > MAX_EXACT_BITS:
            return _folded(v), v
        return e, v


def power_too_big(base: sympy.Expr, expo: sympy.Expr, base_value: float | None) -> bool:
    """Whether sympy's exact ``base**expo`` would exceed :data:`MAX_EXACT_BITS`.

    ``base_value`` is the double value of ``base`` (None or nan if unknown: then any
    integer power beyond 1 of a non-rational base counts as too big).
    """
    if not expo.is_Rational or abs(expo) <= 1:  # roots and Float powers stay small
        return False
    bits = _bits(base, math.nan if base_value is None else base_value)
    return abs(float(expo)) * max(bits, 1.0) > MAX_EXACT_BITS


def ast_to_sympy(node: ast.expr) -> sympy.Expr:
    """Convert a checked ansatz tree into a sympy expression (symbols ``x``, ``p<k>``).

    Subtrees free of ``x`` and parameters whose exact value would be huge (or costly, as
    special functions of large numbers are) become the sympy Float of their double value,
    the number the compiled ansatz computes (see :class:`_Converter`).
    """
    return _Converter().conv(node)[0]


@contextmanager
def time_bound(
    error: type[Exception],
    what: str,
    seconds: float | None = None,
) -> Iterator[None]:
    """Stop the Python code run inside the block after ``seconds``, raising ``error``.

    sympy's evaluation has no deadline of its own and a thread cannot be stopped, so a
    profile hook of the current thread checks the clock every 64 Python calls and unwinds
    the block with an exception that sympy's ``except Exception`` clauses do not catch.
    A single long C operation (one huge integer power) is not interrupted: the size
    bounds of :class:`_Converter` and the ansatz checker keep those small.  Inside an
    enclosing bound, or under a profiler (``sys.getprofile()`` set), the block runs
    unbounded by this one.

    Parameters
    ----------
    error : type of Exception
        Raised as ``error(message)``, the message naming ``what``, when the time is spent
        (this module imports no llmlex error class, so the caller names its own).
    what : str
        What the block does, for the message.
    seconds : float, optional
        The time bound (default :data:`SYMPY_SECONDS`).
    """
    if sys.getprofile() is not None:
        yield
        return
    if seconds is None:
        seconds = SYMPY_SECONDS
    deadline = time.perf_counter() + seconds
    calls = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        calls += 1
        if not calls & 63 and time.perf_counter() > deadline:
            raise _Expired

    sys.setprofile(hook)
    try:
        yield
    except _Expired:
        raise error(f"{what} took longer than {seconds:g} s") from None
    finally:
        sys.setprofile(None)


class _Expired(BaseException):
    """Raised by :func:`time_bound`'s hook; not an ``Exception``, so sympy cannot swallow it."""


class _AnsatzPrinter(SciPyPrinter):
    """SciPy printer whose output stays inside the ansatz language."""

    def __init__(self, symbol_names: dict[sympy.Symbol, str] | None = None) -> None:
        super().__init__({"fully_qualified_modules": True, "inline": True})
        self._names = symbol_names or {}

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        if expr in self._names:
            return self._names[expr]
        name = expr.name
        if name.startswith("p") and name[1:].isdigit():
            return f"params[{int(name[1:])}]"
        return name

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        out = "numpy.nan"
        for value, cond in reversed(expr.args):
            if cond == sympy.true:
                out = self._print(value)
            else:
                out = f"numpy.where({self._print(cond)}, {self._print(value)}, {out})"
        return out

    def _print_Relational(self, expr: sympy.core.relational.Relational) -> str:
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr: sympy.And) -> str:
        return " & ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr: sympy.Or) -> str:
        return " | ".join(f"({self._print(a)})" for a in expr.args)

    def _nested(self, fn: str, args: tuple[sympy.Expr, ...]) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"numpy.{fn}({out}, {self._print(a)})"
        return out

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._nested("maximum", expr.args)

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._nested("minimum", expr.args)

    def _print_Pi(self, expr: sympy.Expr) -> str:
        return "numpy.pi"

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return f"({expr.p}/{expr.q})"

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return str(int(expr))


def sympy_to_text(expr: sympy.Expr, symbol_names: dict[sympy.Symbol, str] | None = None) -> str:
    """Print a sympy expression as numpy/scipy text (not yet checked)."""
    return _AnsatzPrinter(symbol_names).doprint(expr)


def canonical_key(expr: sympy.Expr, n_params: int) -> str:
    """Key of an expression with its parameters anonymised (see ``Ansatz.canonical``)."""
    c = sympy.Symbol("c", real=True)
    anon = expr.xreplace({param(k): c for k in range(n_params)})
    return sympy.srepr(anon)


def node_count(expr: sympy.Expr) -> int:
    """Number of nodes of a sympy expression tree."""
    return sum(1 for _ in sympy.preorder_traversal(expr))


def operator_kinds(expr: sympy.Expr) -> int:
    """Number of distinct kinds of node in a sympy expression tree.

    Each operator and function is a kind (``Add``, ``Mul``, ``Pow``, ``sin``, ...), as is
    each named constant (``pi``); the atoms make three more at most: ``x`` (any other
    symbol), a parameter ``p<k>`` (all parameters are one kind), and a number (all numbers
    are one kind).  The ``n_op`` of the description length (:mod:`llmlex._criterion`).
    """
    kinds: set[str] = set()
    for node in sympy.preorder_traversal(expr):
        if node.is_Symbol:
            kinds.add("param" if node.name[:1] == "p" and node.name[1:].isdigit() else "x")
        elif node.is_Number:
            kinds.add("number")
        else:
            kinds.add(type(node).__name__)
    return len(kinds)


def number_cost(expr: sympy.Expr) -> float:
    """Nats to write the numbers of a sympy tree, after ESR: ``ln|n|`` for an integer
    (0 for 0 and 1), ``ln|p| + ln q`` for a fraction ``p/q``, and ``ln 10`` per
    significant digit (at most 17) for any other number.

    Part of the description length (:mod:`llmlex._criterion`): a formula that writes
    ``28/11`` says more than one that writes ``2``.
    """
    total = 0.0
    for node in sympy.preorder_traversal(expr):
        if not node.is_Number:
            continue
        if node.is_Integer:
            total += math.log(max(abs(int(node)), 1))
        elif node.is_Rational:
            total += math.log(max(abs(int(node.p)), 1)) + math.log(int(node.q))
        else:
            digits = len(
                f"{float(node):.17g}".split("e")[0].replace("-", "").replace(".", "").strip("0")
            )
            total += min(max(digits, 1), 17) * math.log(10.0)
    return total


def snap_number(v: float, *, rel: float = 1e-9) -> sympy.Expr:
    """A simple sympy number (integer, small fraction, multiple of pi) near ``v``, else Float."""
    if not math.isfinite(v):
        return sympy.Float(v)
    frac = Fraction(v).limit_denominator(100)
    if abs(float(frac) - v) <= rel * max(1.0, abs(v)):
        return sympy.Rational(frac.numerator, frac.denominator)
    return sympy.Float(v)
