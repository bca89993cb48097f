"""The safe ansatz language.

An *ansatz* is untrusted text, usually written by a language model: a Python/numpy
expression in ``x`` and free parameters ``params[i]``, such as
``params[0]*np.sin(params[1]*x) + params[2]``.  This module turns such text into an
:class:`Ansatz` without ever evaluating it as code:

1. the text is parsed with :func:`ast.parse` (parsing runs nothing);
2. every node is checked against a whitelist -- numeric literals, ``x``,
   ``params[<int>]``, arithmetic, comparisons inside ``np.where``, and the functions and
   constants of the table in :mod:`llmlex._functions` (:data:`FUNCTIONS` /
   :data:`CONSTANTS`) -- and against bounds on size, nesting depth and exponent growth;
3. parameters are renumbered densely in order of their original index;
4. the checked tree is compiled into a tree of closures over numpy functions.  Literals
   become floats, so no unbounded integer arithmetic (``9**9**9``) can happen.

The compiled callable is vectorised: ``ansatz(x, params) -> ndarray`` of ``x.shape``.
Its sympy form (:attr:`Ansatz.sympy`) and :func:`ansatz_from_sympy`, the way back, import
:mod:`llmlex._symbolic` (and so sympy) on first use.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._functions import (
    ALIASES,
    Function,
    constant_name,
    function_name,
    param_index,
    parse_expression_tree,
)
from llmlex._functions import CONSTANTS as _CONSTANT_ROWS
from llmlex._functions import FUNCTIONS as _FUNCTIONS
from llmlex.exceptions import AnsatzError, AnsatzTooComplexError

if TYPE_CHECKING:  # sympy is imported lazily: it is slow to import
    import sympy

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_PARAMS",
    "MAX_TEXT_LENGTH",
    "Ansatz",
    "ansatz_from_sympy",
    "parse_ansatz",
]

#: Longest ansatz text accepted, in characters (checked before parsing).
MAX_TEXT_LENGTH = 2000
#: Most AST nodes accepted in one ansatz.
MAX_NODES = 400
#: Deepest nesting of AST nodes accepted.
MAX_DEPTH = 40
#: Most distinct parameters accepted.
MAX_PARAMS = 20
#: Largest parameter index accepted in the text (before renumbering).
MAX_PARAM_INDEX = 99
#: Largest magnitude of a literal exponent (``x**200`` is rejected).
MAX_LITERAL_EXPONENT = 100.0
#: Deepest nesting of powers inside exponents: 1 forbids towers such as ``a**b**c``.
MAX_POWER_NESTING = 1
#: Largest magnitude of a numeric literal.
MAX_LITERAL = 1e300

Arr = np.ndarray

#: Functions an ansatz may call: the rows of the table in :mod:`llmlex._functions`, by
#: canonical bare name.  ``np.``, ``numpy.``, ``math.`` and ``scipy.special.``,
#: ``special.``, ``sp.``, ``sps.``, ``sc.``, ``scs.`` prefixes are accepted on any of them.
FUNCTIONS: dict[str, Function] = _FUNCTIONS

#: Named constants an ansatz may use (bare or with a module prefix): name -> value.
CONSTANTS: dict[str, float] = {name: c.numpy for name, c in _CONSTANT_ROWS.items()}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_BOOLOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
    ast.And: np.logical_and,
    ast.Or: np.logical_or,
}


class _Checker:
    """Validates a parsed tree against the whitelist and bounds, collecting facts."""

    def __init__(self, allowed_functions: frozenset[str] | None) -> None:
        self.allowed = allowed_functions
        self.nodes = 0
        self.indices: set[int] = set()
        self.functions: set[str] = set()

    def check(self, node: ast.expr, depth: int = 0, pow_nesting: int = 0, cond: bool = False):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise AnsatzTooComplexError(f"ansatz has more than {MAX_NODES} syntax nodes")
        if depth > MAX_DEPTH:
            raise AnsatzTooComplexError(f"ansatz is nested deeper than {MAX_DEPTH} levels")
        d = depth + 1
        if isinstance(node, ast.Constant):
            v = node.value
            if type(v) not in (int, float):
                raise AnsatzError(f"literal {v!r} is not a real number")
            if type(v) is int and v.bit_length() > 1000:
                raise AnsatzTooComplexError("integer literal is too large")
            if not math.isfinite(float(v)) or abs(float(v)) > MAX_LITERAL:
                raise AnsatzTooComplexError(f"numeric literal {v!r} is not finite or too large")
            return
        if isinstance(node, ast.Name):
            if node.id == "x" or node.id in CONSTANTS:
                return
            raise AnsatzError(f"unknown name {node.id!r} (only x, params[i] and constants)")
        idx = param_index(node)
        if idx is not None:
            if not 0 <= idx <= MAX_PARAM_INDEX:
                raise AnsatzError(f"parameter index {idx} outside 0..{MAX_PARAM_INDEX}")
            self.indices.add(idx)
            return
        if constant_name(node) is not None:
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            if isinstance(node.op, ast.Pow):
                if pow_nesting >= MAX_POWER_NESTING:
                    raise AnsatzTooComplexError("powers are nested too deeply (a**b**c...)")
                e = node.right
                if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub | ast.UAdd):
                    e = e.operand
                if isinstance(e, ast.Constant) and type(e.value) in (int, float):
                    if abs(float(e.value)) > MAX_LITERAL_EXPONENT:
                        raise AnsatzTooComplexError(
                            f"literal exponent {e.value!r} exceeds {MAX_LITERAL_EXPONENT:g}"
                        )
                self.check(node.left, d, pow_nesting, cond)
                self.check(node.right, d, pow_nesting + 1, cond)
                return
            self.check(node.left, d, pow_nesting, cond)
            self.check(node.right, d, pow_nesting, cond)
            return
        if isinstance(node, ast.BinOp) and cond and type(node.op) in _BOOLOPS:
            self.check(node.left, d, pow_nesting, cond)
            self.check(node.right, d, pow_nesting, cond)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            self.check(node.operand, d, pow_nesting, cond)
            return
        if isinstance(node, ast.Compare):
            if not cond:
                raise AnsatzError("comparisons are only allowed in the condition of np.where")
            if not all(type(op) in _CMPOPS for op in node.ops):
                raise AnsatzError("unsupported comparison operator")
            for sub in (node.left, *node.comparators):
                self.check(sub, d, pow_nesting, False)
            return
        if isinstance(node, ast.BoolOp) and cond:
            for sub in node.values:
                self.check(sub, d, pow_nesting, cond)
            return
        if isinstance(node, ast.Call):
            name = function_name(node.func)
            if name is None:
                raise AnsatzError(f"call to a function that is not allowed: {_short(node.func)}")
            if node.keywords:
                raise AnsatzError(f"keyword arguments are not allowed (in {name})")
            fn = FUNCTIONS[name]
            if len(node.args) not in fn.arity:
                raise AnsatzError(f"{name} takes {fn.arity} arguments, got {len(node.args)}")
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise AnsatzError("starred arguments are not allowed")
            if self.allowed is not None and name not in self.allowed and name != "where":
                raise AnsatzError(f"function {name!r} is not among the allowed functions")
            self.functions.add(name)
            for i, a in enumerate(node.args):
                self.check(a, d, pow_nesting, cond=(name == "where" and i == 0))
            return
        raise AnsatzError(f"construct not allowed in an ansatz: {type(node).__name__}")


def _short(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # pragma: no cover - unparse of a parsed node should not fail
        text = type(node).__name__
    return text if len(text) <= 40 else text[:37] + "..."


class _Normaliser(ast.NodeTransformer):
    """Rewrite a checked tree into normal form: dense params, ``np.``/``scipy.special.``."""

    def __init__(self, mapping: dict[int, int]) -> None:
        self.mapping = mapping

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        idx = param_index(node)
        assert idx is not None
        return ast.Subscript(
            value=ast.Name("params", ast.Load()),
            slice=ast.Constant(self.mapping[idx]),
            ctx=ast.Load(),
        )

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        c = constant_name(node)
        if c is not None:
            return _attr("np", c)
        return node  # function attributes are handled in visit_Call

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in CONSTANTS:
            return _attr("np", node.id)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = function_name(node.func)
        assert name is not None
        func = _attr(FUNCTIONS[name].module, name)
        return ast.Call(func=func, args=[self.visit(a) for a in node.args], keywords=[])

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return node


def _attr(module: str, name: str) -> ast.expr:
    value: ast.expr = ast.Name(module.split(".")[0], ast.Load())
    for part in module.split(".")[1:]:
        value = ast.Attribute(value, part, ast.Load())
    return ast.Attribute(value, name, ast.Load())


def _compile(node: ast.expr) -> Callable[[Arr, Arr], Any]:
    """Compile a normalised, checked tree into nested closures (no eval, no exec)."""
    if isinstance(node, ast.Constant):
        v = float(node.value)  # floats only: no big-integer arithmetic is possible
        return lambda x, p: v
    if isinstance(node, ast.Name):  # only "x" survives normalisation
        return lambda x, p: x
    idx = param_index(node)
    if idx is not None:
        return lambda x, p: p[idx]
    c = constant_name(node)
    if c is not None:
        v = CONSTANTS[c]
        return lambda x, p: v
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op)) or _BOOLOPS[type(node.op)]
        a, b = _compile(node.left), _compile(node.right)
        return lambda x, p: op(a(x, p), b(x, p))
    if isinstance(node, ast.UnaryOp):
        a = _compile(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda x, p: np.negative(a(x, p))
        return a
    if isinstance(node, ast.Compare):
        terms = [_compile(t) for t in (node.left, *node.comparators)]
        ops = [_CMPOPS[type(o)] for o in node.ops]

        def compare(x: Arr, p: Arr) -> Any:
            vals = [t(x, p) for t in terms]
            out = ops[0](vals[0], vals[1])
            for k in range(1, len(ops)):
                out = np.logical_and(out, ops[k](vals[k], vals[k + 1]))
            return out

        return compare
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        bop = _BOOLOPS[type(node.op)]

        def boolop(x: Arr, p: Arr) -> Any:
            out = parts[0](x, p)
            for part in parts[1:]:
                out = bop(out, part(x, p))
            return out

        return boolop
    if isinstance(node, ast.Call):
        name = function_name(node.func)
        assert name is not None
        impl = FUNCTIONS[name].numpy
        args = [_compile(a) for a in node.args]
        if len(args) == 1:
            (a0,) = args
            return lambda x, p: impl(a0(x, p))
        return lambda x, p: impl(*(a(x, p) for a in args))
    raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover


@dataclass(frozen=True, eq=False)
class Ansatz:
    """A checked, compiled ansatz.

    Create one with :func:`parse_ansatz`.  Calling it evaluates the expression,
    vectorised over ``x``: ``ansatz(x, params) -> ndarray`` with the shape of ``x``.
    Floating-point warnings are silenced; non-finite values are returned as they are.

    Attributes
    ----------
    text : str
        Normal form of the expression: parameters renumbered densely ``params[0..n-1]``,
        functions written ``np.name`` or ``scipy.special.name``.
    n_params : int
        Number of distinct parameters used.
    source_indices : tuple of int
        ``source_indices[k]`` is the index that ``params[k]`` had in the original text.
    functions : frozenset of str
        Names of the whitelisted functions used.
    """

    text: str
    n_params: int
    source_indices: tuple[int, ...]
    functions: frozenset[str]
    _func: Callable[[Arr, Arr], Any] = field(repr=False, compare=False)
    _tree: ast.expr = field(repr=False, compare=False)

    def __call__(self, x: Arr, params: Sequence[float] | Arr = ()) -> Arr:
        x = np.asarray(x, dtype=float)
        p = np.asarray(params, dtype=float).ravel()
        if p.size != self.n_params:
            raise ValueError(f"ansatz {self.text!r} takes {self.n_params} parameters, got {p.size}")
        with np.errstate(all="ignore"):
            out = self._func(x, p)
            out = np.asarray(out, dtype=float)
        if out.shape != x.shape:
            out = np.broadcast_to(out, x.shape).copy()
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ansatz) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __str__(self) -> str:
        return self.text

    def map_initial(self, values: Sequence[float] | None) -> Arr | None:
        """Map initial values given for the *original* indices onto the dense ones.

        Returns None when ``values`` is None or does not cover every used index.
        """
        if values is None:
            return None
        vals = list(values)
        if any(i >= len(vals) for i in self.source_indices):
            return None
        out = np.array([float(vals[i]) for i in self.source_indices], dtype=float)
        return out if np.all(np.isfinite(out)) else None

    @cached_property
    def sympy(self) -> sympy.Expr:
        """The expression as sympy, with symbols ``x`` and ``p0 .. p{n-1}``."""
        from llmlex._symbolic import ast_to_sympy

        return ast_to_sympy(self._tree)

    @cached_property
    def canonical(self) -> str:
        """A key under which equivalent spellings of one ansatz collide.

        Parameters are anonymised to one symbol after sympy's automatic canonical
        ordering, so ``params[0]*x + params[1]`` and ``params[1] + x*params[0]`` share a key.
        Falls back to the normal text if sympy cannot handle the expression.
        """
        from llmlex._symbolic import canonical_key

        try:
            return canonical_key(self.sympy, self.n_params)
        except Exception:  # sympy can fail on exotic input; de-dup is best effort
            return self.text

    @cached_property
    def complexity(self) -> int:
        """Node count of the sympy form (parameters count as one node each)."""
        from llmlex._symbolic import node_count

        try:
            return node_count(self.sympy)
        except Exception:
            return _node_count_ast(self._tree)


def _node_count_ast(tree: ast.AST) -> int:
    return sum(1 for _ in ast.walk(tree))


_LAMBDA_HEAD = re.compile(r"^\s*lambda\s+[^:]*:\s*")


def parse_ansatz(text: str, *, allowed_functions: Sequence[str] | None = None) -> Ansatz:
    """Parse, check and compile an ansatz text.

    Parameters
    ----------
    text : str
        An expression in ``x`` and ``params[i]``, e.g. ``"params[0]*np.exp(-params[1]*x)"``.
        A leading ``lambda x, *params:`` header is accepted and dropped.
    allowed_functions : sequence of str, optional
        If given, only these function names (bare, e.g. ``"sin"``) may be called;
        ``np.where`` is always allowed.

    Returns
    -------
    Ansatz
        The compiled ansatz, with its parameters renumbered densely.

    Raises
    ------
    AnsatzError
        If the text is not a valid expression of the safe language.
    AnsatzTooComplexError
        If it exceeds the bounds on length, nodes, depth, parameters or exponents.
    """
    if not isinstance(text, str):
        raise AnsatzError(f"ansatz must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise AnsatzTooComplexError(f"ansatz text longer than {MAX_TEXT_LENGTH} characters")
    body = _LAMBDA_HEAD.sub("", text.strip(), count=1).strip()
    if not body:
        raise AnsatzError("empty ansatz")
    tree = parse_expression_tree(body)  # under a lock: ast.parse is not thread-safe
    allowed = None
    if allowed_functions is not None:
        allowed = frozenset(ALIASES.get(f, f) for f in allowed_functions)
    checker = _Checker(allowed)
    checker.check(tree)
    if len(checker.indices) > MAX_PARAMS:
        raise AnsatzTooComplexError(f"ansatz uses more than {MAX_PARAMS} parameters")
    source = tuple(sorted(checker.indices))
    mapping = {old: new for new, old in enumerate(source)}
    norm = _Normaliser(mapping).visit(tree)
    ast.fix_missing_locations(norm)
    return Ansatz(
        text=ast.unparse(norm),
        n_params=len(source),
        source_indices=source,
        functions=frozenset(checker.functions),
        _func=_compile(norm),
        _tree=norm,
    )


def ansatz_from_sympy(expr: sympy.Expr) -> Ansatz:
    """Turn a sympy expression in ``x`` and ``p<k>`` back into a checked :class:`Ansatz`.

    The expression is printed as numpy/scipy text and parsed again, so everything printed
    is re-checked by the whitelist.

    Raises
    ------
    AnsatzError
        If the expression uses anything outside the ansatz language.
    """
    import sympy

    from llmlex._symbolic import sympy_to_text

    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        # sympy folds e.g. x/(x - x) to zoo*x: no real-valued ansatz to print.
        raise AnsatzError(f"expression is undefined or infinite everywhere: {expr}")
    try:
        text = sympy_to_text(expr)
    except (KeyError, TypeError, ValueError, NotImplementedError) as err:
        raise AnsatzError(f"cannot print {type(expr).__name__} as an ansatz: {err!r}") from None
    return parse_ansatz(text)
