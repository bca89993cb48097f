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
from collections.abc import Callable
from fractions import Fraction
from functools import cache, partial

import sympy
from sympy.printing.numpy import SciPyPrinter

from llmlex._functions import CONSTANTS, FUNCTIONS, constant_name, function_name, param_index

__all__ = ["X", "ast_to_sympy", "canonical_key", "node_count", "param", "sympy_to_text"]

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


def ast_to_sympy(node: ast.expr) -> sympy.Expr:
    """Convert a checked ansatz tree into a sympy expression (symbols ``x``, ``p<k>``)."""
    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return _SYMPY_CONSTANTS[node.id]
        return X
    idx = param_index(node)
    if idx is not None:
        return param(idx)
    c = constant_name(node)
    if c is not None:
        return _SYMPY_CONSTANTS[c]
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitAnd):
            return sympy.And(ast_to_sympy(node.left), ast_to_sympy(node.right))
        if isinstance(node.op, ast.BitOr):
            return sympy.Or(ast_to_sympy(node.left), ast_to_sympy(node.right))
        return _SYMPY_BINOPS[type(node.op)](ast_to_sympy(node.left), ast_to_sympy(node.right))
    if isinstance(node, ast.UnaryOp):
        a = ast_to_sympy(node.operand)
        return -a if isinstance(node.op, ast.USub) else a
    if isinstance(node, ast.Compare):
        vals = [ast_to_sympy(t) for t in (node.left, *node.comparators)]
        rels = [_SYMPY_CMP[type(op)](vals[k], vals[k + 1]) for k, op in enumerate(node.ops)]
        return rels[0] if len(rels) == 1 else sympy.And(*rels)
    if isinstance(node, ast.BoolOp):
        f = sympy.And if isinstance(node.op, ast.And) else sympy.Or
        return f(*(ast_to_sympy(v) for v in node.values))
    if isinstance(node, ast.Call):
        name = function_name(node.func)
        assert name is not None
        return _SYMPY_FUNCS[name](*(ast_to_sympy(a) for a in node.args))
    raise TypeError(f"cannot convert {type(node).__name__} to sympy")  # pragma: no cover


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


def snap_number(v: float, *, rel: float = 1e-9) -> sympy.Expr:
    """A simple sympy number (integer, small fraction, multiple of pi) near ``v``, else Float."""
    if not math.isfinite(v):
        return sympy.Float(v)
    frac = Fraction(v).limit_denominator(100)
    if abs(float(frac) - v) <= rel * max(1.0, abs(v)):
        return sympy.Rational(frac.numerator, frac.denominator)
    return sympy.Float(v)
