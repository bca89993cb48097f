"""Fitted values written into an ansatz: ``2*x - 0.5``, never ``2*x + -0.5``.

:func:`write_values` replaces each ``params[k]`` of an ansatz tree by a number given as
text (already rounded by the caller) and then tidies the signs that a negative value
brings: ``a + -b`` becomes ``a - b``, ``a - -b`` becomes ``a + b``, ``--b`` becomes
``b``, and a negative factor after ``*``, ``/``, ``//`` or ``%`` is put in parentheses
(``x*(-2)``); :func:`ast.unparse` already writes ``x ** (-2)`` and ``(-2) ** x``.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Sequence

from llmlex._functions import param_index

__all__ = ["write_values"]

_PRODUCT = (ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)


def _number(text: str) -> ast.expr:
    """A number as a node: a name holding the text, under a unary minus if negative (so
    that the sign rules below see it)."""
    if text.startswith("-"):
        return ast.UnaryOp(ast.USub(), ast.Name(text[1:], ast.Load()))
    return ast.Name(text, ast.Load())


def _negated(node: ast.expr) -> ast.expr | None:
    """``node`` without its leading minus (``-a`` -> ``a``, ``-a*b/c`` -> ``a*b/c``), or
    None if it does not start with one."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return node.operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, _PRODUCT):
        left = _negated(node.left)
        if left is not None:
            return ast.BinOp(left, node.op, node.right)
    return None


class _Writer(ast.NodeTransformer):
    def __init__(self, values: Sequence[str]) -> None:
        self.values = values

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        k = param_index(node)
        if k is not None and k < len(self.values):
            return _number(self.values[k])
        return self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            inner = _negated(node.operand)
            if inner is not None:  # --a -> a
                return inner
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        inner = _negated(node.right)
        if inner is None:
            return node
        if isinstance(node.op, ast.Add):
            return ast.BinOp(node.left, ast.Sub(), inner)
        if isinstance(node.op, ast.Sub):
            return ast.BinOp(node.left, ast.Add(), inner)
        if isinstance(node.op, _PRODUCT) and isinstance(node.right, ast.UnaryOp):
            # ast.unparse writes x * -2; a name holding the bracketed text is written as is.
            node.right = ast.Name(f"({ast.unparse(node.right)})", ast.Load())
        return node


def write_values(tree: ast.expr, values: Sequence[str]) -> str:
    """The text of ``tree`` with ``params[k]`` replaced by ``values[k]``, signs tidied.

    Parameters
    ----------
    tree : ast.expr
        An ansatz tree (not modified).
    values : sequence of str
        The numbers as they should be written (``"2.5"``, ``"-0.001"``, ``"nan"``).

    Returns
    -------
    str
        Python text; ``+ -`` and ``- -`` do not occur in it.
    """
    return ast.unparse(_Writer(values).visit(copy.deepcopy(tree)))
