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
import inspect
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from functools import cache, partial
from pathlib import Path
from types import FrameType
from typing import Any

import sympy
from sympy.logic.boolalg import Boolean, BooleanAtom
from sympy.printing.numpy import SciPyPrinter

from llmlex._functions import (
    CONSTANTS,
    FUNCTIONS,
    NUMPY_BINOPS,
    NUMPY_BOOLOPS,
    NUMPY_COMPARISONS,
    constant_name,
    function_name,
    param_index,
    scalar_value,
)

__all__ = [
    "MAX_EXACT_BITS",
    "SMALL_ARGUMENT",
    "SYMPY_CALLS",
    "SYMPY_SECONDS",
    "X",
    "ast_to_sympy",
    "canonical_key",
    "merge_redundant_params",
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
#: Time bound of one sympy conversion of an ansatz, in seconds, where a caller asks for
#: a time bound (:func:`time_bound`'s default is :data:`SYMPY_CALLS`).
SYMPY_SECONDS = 1.0
#: Work bound of one sympy conversion, in Python calls (profile events): about a second
#: on this machine, but the same work under any load, so that what a search finds does
#: not depend on how busy the machine is.
SYMPY_CALLS = 4_000_000

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


def _double(e: sympy.Number) -> float:
    """The double nearest to a sympy number (an infinity beyond the range of doubles)."""
    try:
        return float(e)
    except OverflowError:  # an exact number of more than about 1e308
        return math.inf if e > 0 else -math.inf


def _truth(holds: bool) -> BooleanAtom:
    return sympy.true if holds else sympy.false


def _as_number(e: sympy.Basic) -> sympy.Expr:
    """A condition used as a number (``(x > 1) + 1`` inside a condition) is 1 where it
    holds and 0 elsewhere, as in the compiled ansatz; other expressions are unchanged."""
    if isinstance(e, sympy.Expr):  # a Symbol is also a Boolean
        return e
    if isinstance(e, BooleanAtom):
        return sympy.Integer(1 if e else 0)
    return sympy.Piecewise((1, e), (0, True))


def _as_condition(e: sympy.Basic, value: float | None) -> Boolean:
    """An expression used as a condition holds where it is nonzero, nan included, as
    ``np.where`` and ``np.logical_and`` read it; conditions are unchanged."""
    if not isinstance(e, sympy.Expr):  # a relation or logic (a Symbol is also a Boolean)
        return e
    if value is not None:
        return _truth(value != 0.0)  # nan != 0
    if e is sympy.nan:
        return sympy.true
    if e.has(sympy.Piecewise):
        # Each branch's condition, not Ne(Piecewise, 0): sympy rewrites a Piecewise inside
        # a condition as sets and simplifies them, which takes seconds.
        folded = sympy.piecewise_fold(e)
        if isinstance(folded, sympy.Piecewise):
            terms, earlier = [], []
            for val, cond in folded.args:
                here = _as_condition(val, None)
                terms.append(sympy.And(cond, here, *(sympy.Not(c) for c in earlier)))
                earlier.append(cond)
            return sympy.Or(*terms)
    return sympy.Ne(e, 0)


def _is_nan(e: sympy.Basic, value: float | None) -> bool:
    return e is sympy.nan or (value is not None and math.isnan(value))


def _compare(op: type, a: sympy.Expr, va: float | None, b: sympy.Expr, vb: float | None) -> Any:
    """The relation ``a op b`` as the compiled ansatz decides it, where it can be decided.

    Numbers are compared as doubles (sympy would compare them exactly, and refuses to
    compare nan or a non-real number such as ``acos(2)``, whose double is nan), and
    anything compared with nan is false (``!=``: true).
    """
    if va is not None and vb is not None:
        return _truth(bool(scalar_value(NUMPY_COMPARISONS[op], va, vb)))
    if _is_nan(a, va) or _is_nan(b, vb):
        return _truth(op is ast.NotEq)
    return _SYMPY_CMP[op](a, b)


def _max_min(name: str, args: list[sympy.Expr]) -> sympy.Expr:
    """``Max`` / ``Min``, with nan propagated as ``np.maximum`` does (sympy refuses it)."""
    return sympy.nan if sympy.nan in args else _SYMPY_FUNCS[name](*args)


#: How sympy refuses to compare a nan or a number it knows is complex: the messages of its
#: TypeError (relations) and ValueError (``Max``, ``Min``).
_UNCOMPARABLE = ("Invalid NaN comparison", "Invalid comparison of non-real", "not comparable")


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
        e, v = self._conv(node)
        if v is None and isinstance(e, sympy.Number) and e is not sympy.zoo:
            # sympy cancelled x (x - x + 1e300, a np.where with a constant condition):
            # the number is folded from here on like any other.
            v = _double(e)
        return e, v

    def _conv(self, node: ast.expr) -> tuple[sympy.Expr, float | None]:
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
            if op in NUMPY_BOOLOPS:
                f = sympy.And if op is ast.BitAnd else sympy.Or
                return f(_as_condition(a, va), _as_condition(b, vb)), v
            a, b = _as_number(a), _as_number(b)
            if op is ast.Pow:
                if v is not None and power_too_big(a, b, va):
                    return _folded(v), v
                b = _tame_exponent(b)
            try:
                e = _SYMPY_BINOPS[op](a, b)
            except ZeroDivisionError:  # sympy 1.14: Float / Float(0) raises instead of zoo
                # Only a division of two Floats raises: divide as the compiled ansatz does.
                return _folded(scalar_value(_NUMPY_OPS[op], float(a), float(b))), v
            return self._exact(e, v)
        if isinstance(node, ast.UnaryOp):
            a, va = self.conv(node.operand)
            if isinstance(node.op, ast.USub):
                return -_as_number(a), None if va is None else -va
            return a, va
        if isinstance(node, ast.Compare):
            pairs = [self.conv(t) for t in (node.left, *node.comparators)]
            rels = [_compare(type(op), *pairs[k], *pairs[k + 1]) for k, op in enumerate(node.ops)]
            # Numbers are compared as doubles: then every relation is true or false.
            known = all(u is not None for _, u in pairs)
            v = float(all(r is sympy.true for r in rels)) if known else None
            return (rels[0] if len(rels) == 1 else sympy.And(*rels)), v
        if isinstance(node, ast.BoolOp):
            pairs = [self.conv(sub) for sub in node.values]
            conds = [_as_condition(e, u) for e, u in pairs]
            vals = [u for _, u in pairs]
            is_and = isinstance(node.op, ast.And)
            v = None
            if all(u is not None for u in vals):
                v = float(all(vals) if is_and else any(vals))  # type: ignore[arg-type]
            return (sympy.And if is_and else sympy.Or)(*conds), v
        if isinstance(node, ast.Call):
            name = function_name(node.func)
            assert name is not None
            pairs = [self.conv(a) for a in node.args]
            vals = [v for _, v in pairs]
            row = FUNCTIONS[name]
            known = all(u is not None for u in vals)
            v = scalar_value(row.numpy, *vals) if known else None  # type: ignore[arg-type]
            if name == "where":
                cond = _as_condition(pairs[0][0], vals[0])
                return _SYMPY_FUNCS[name](cond, *(_as_number(e) for e, _ in pairs[1:])), v
            args = [_as_number(e) for e, _ in pairs]
            if name in ("maximum", "minimum"):
                return _max_min(name, args), v
            if not known:
                if name == "power":
                    args[1] = _tame_exponent(args[1])
                return _SYMPY_FUNCS[name](*args), None
            # Special functions of numbers are folded whatever their size: even when sympy
            # leaves them unevaluated, printing sorts terms by their numeric value, and
            # mpmath takes seconds on some (besselk(1999/2, 999)).
            if row.module == "scipy.special" or not all(
                abs(u) <= SMALL_ARGUMENT  # type: ignore[arg-type]
                for u in vals
            ):
                return _folded(v), v  # also nan arguments: nothing exact to gain
            return self._exact(_SYMPY_FUNCS[name](*args), v)  # type: ignore[arg-type]
        raise TypeError(f"cannot convert {type(node).__name__} to sympy")  # pragma: no cover

    @staticmethod
    def _exact(e: sympy.Expr, v: float | None) -> tuple[sympy.Expr, float | None]:
        """``e``, or its double value if it is an exact number grown too large or one that
        is not real."""
        if v is None:
            return e, v
        if e.is_Rational and _bits(e, v) > MAX_EXACT_BITS:
            return _folded(v), v
        # sympy's complex numbers (acos(2), log(-2), cbrt(-8), 1/0 = zoo) are nan, a real
        # root or an infinity in the ansatz; a complex value has no place in a real formula
        # (and sympy refuses to compare it or take its Max).
        if e is sympy.nan or e.is_extended_real is False:
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


def _tame_exponent(expo: sympy.Expr) -> sympy.Expr:
    """An exact exponent beyond :data:`MAX_EXACT_BITS` as a Float.

    The checker bounds exponents it can evaluate; one that only sympy reduces to a number
    (``np.where(x > 0, 4e16, 4e16)``) is exact, and sympy raises every branch of a
    ``Piecewise`` base to it exactly: an integer of 10**17 bits, computed in one C call
    that no time bound stops.
    """
    if expo.is_Rational and abs(expo) > MAX_EXACT_BITS:
        return sympy.Float(_double(expo))
    return expo


def ast_to_sympy(node: ast.expr, error: type[Exception] = ValueError) -> sympy.Expr:
    """Convert a checked ansatz tree into a sympy expression (symbols ``x``, ``p<k>``).

    Subtrees free of ``x`` and parameters whose exact value would be huge (or costly, as
    special functions of large numbers are) or not real (``acos(2)``) become the sympy
    Float of their double value, the number the compiled ansatz computes (see
    :class:`_Converter`).  Comparisons of numbers are decided in doubles too, and a
    condition used as a number is 1 where it holds, 0 elsewhere.

    Raises
    ------
    error
        If the tree has no real sympy form: sympy would have to compare (or take the
        ``Max`` of, or sort to print) a value it knows is not real (``np.sqrt(-x**2 - 1) >
        0``) or a nan the ansatz computes (``np.log(-1)`` in a branch of ``np.where``),
        which it refuses.  This module imports no llmlex error class, so the caller names
        its own.
    """
    try:
        out = _Converter().conv(node)[0]
        if out is not sympy.nan and out.has(sympy.nan):
            # sympy sorts the terms of a sum or a product to print them: a form that
            # cannot be printed is no form.
            str(out)
    except (TypeError, ValueError) as err:
        # sympy compares where the ansatz does, but also where it folds relations over
        # the branches of a Piecewise (acosh(0) = I*pi/2 in a branch) and where it sorts
        # terms to print them.
        if not any(m in str(err) for m in _UNCOMPARABLE):
            raise
        raise error(f"sympy cannot compare a nan or complex value of it ({err})") from None
    return out


@contextmanager
def time_bound(
    error: type[Exception],
    what: str,
    seconds: float | None = None,
    *,
    calls: int | None = None,
) -> Iterator[None]:
    """Stop the Python code run inside the block after ``calls`` Python calls or
    ``seconds``, raising ``error``; by default after :data:`SYMPY_CALLS` calls, with no
    clock (a bound on work: the same block stops at the same point under any load).

    sympy's evaluation has no deadline of its own and a thread cannot be stopped, so a
    profile hook of the current thread counts the calls (and, given ``seconds``, checks
    the clock every 64) and unwinds
    the block with an exception that sympy's ``except Exception`` clauses do not catch,
    raised in the first frame after the deadline that is not a generator's.
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
        A time bound in seconds (default: none).
    calls : int, optional
        Stop after this many Python calls (profile events): a bound on work rather than
        time, so that what the block yields does not depend on the machine's load.  With
        neither ``seconds`` nor ``calls``: :data:`SYMPY_CALLS` calls and no clock.
    """
    if sys.getprofile() is not None:
        yield
        return
    if seconds is None and calls is None:
        calls = SYMPY_CALLS
    if seconds is None:
        seconds = math.inf
    deadline = time.perf_counter() + seconds
    most = math.inf if calls is None else calls
    made = 0
    expired = False
    # The file whose code entered the block may be unwound too (past contextmanager).
    origin = sys._getframe(2).f_code.co_filename

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal made, expired
        made += 1
        if not expired:
            if made & 63 or (made <= most and time.perf_counter() <= deadline):
                return
            expired = True
        # Never inside a generator, nor in code that is not sympy's (or mpmath's, or
        # ours): a generator closed by the garbage collector, or a weakref callback the
        # collector runs (WeakSet._remove), swallows the exception ("Exception ignored
        # in ..."), and CPython then removes this hook, so the block would run
        # unbounded.  The next such frame raises instead.
        code = frame.f_code
        if not code.co_flags & _GENERATOR_FLAGS and (
            code.co_filename == origin or _interruptible(code.co_filename)
        ):
            raise _Expired

    sys.setprofile(hook)
    try:
        yield
    except _Expired:
        if made > most:
            raise error(f"{what} took more than {most} calls") from None
        raise error(f"{what} took longer than {seconds:g} s") from None
    finally:
        sys.setprofile(None)


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


@cache
def _interruptible(filename: str) -> bool:
    """Whether a time bound may unwind a frame of this file: sympy, mpmath, llmlex."""
    parts = set(Path(filename).parts)
    return bool(parts & {"sympy", "mpmath", "llmlex"})


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


def merge_redundant_params(
    expr: sympy.Expr, values: dict[int, float]
) -> tuple[sympy.Expr, dict[int, float]]:
    """``expr`` with the bare parameters of each sum (``p3 + p5``) and of each product
    (``p0*p4``) merged into one, started at the sum or product of their values.

    Edits of formulas write such redundancy (a line added to a formula with a constant); the data
    determine only the merged value, so the split between the two -- and with it the
    description length of the fit, which charges each constant -- would be decided by
    rounding errors.
    """
    index = {param(k): k for k in values}
    values = dict(values)

    def visit(e: sympy.Expr) -> sympy.Expr:
        if e.is_Atom:
            return e
        e = e.func(*(visit(a) for a in e.args))
        if not isinstance(e, sympy.Add | sympy.Mul):
            return e
        bare = [a for a in e.args if a in index]
        if len(bare) < 2:
            return e
        keep, *drop = bare
        vals = [values[index[a]] for a in bare]
        values[index[keep]] = float(sum(vals) if isinstance(e, sympy.Add) else math.prod(vals))
        return e.func(*(a for a in e.args if a not in drop))

    return visit(expr), values
