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
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._functions import (
    ALIASES,
    NUMPY_BINOPS,
    NUMPY_BOOLOPS,
    NUMPY_COMPARISONS,
    Function,
    constant_name,
    function_name,
    param_index,
    parse_expression_tree,
    scalar_value,
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

_BINOPS = NUMPY_BINOPS
_CMPOPS = NUMPY_COMPARISONS
_BOOLOPS = NUMPY_BOOLOPS


#: Functions that raise to a power: name -> (index of the base argument or None, index of
#: the exponent argument or None, fixed exponent or None).  ``exp2(a)`` is ``2**a``.
_POWER_CALLS: dict[str, tuple[int | None, int | None, float | None]] = {
    "power": (0, 1, None),
    "exp2": (None, 0, None),
    "square": (0, None, 2.0),
    "sqrt": (0, None, 0.5),
    "cbrt": (0, None, 1.0 / 3.0),
    "reciprocal": (0, None, -1.0),
}
#: Of those, the ones that make numbers grow: not allowed inside an exponent.
_GROWING_POWERS = frozenset({"power", "exp2", "square"})


class _Checker:
    """Validates a parsed tree against the whitelist and bounds, collecting facts.

    :meth:`check` returns the float value of a subtree free of ``x`` and parameters (None
    otherwise), so the exponent bounds also see exponents written as arithmetic
    (``9**(99*99)``), negated (``2**--1000``) or as function calls (``np.power``,
    ``np.exp2``).
    """

    def __init__(self, allowed_functions: frozenset[str] | None) -> None:
        self.allowed = allowed_functions
        self.nodes = 0
        self.indices: set[int] = set()
        self.functions: set[str] = set()

    def check(
        self,
        node: ast.expr,
        depth: int = 0,
        pow_nesting: int = 0,
        cond: bool = False,
        tower: float = 1.0,
    ) -> float | None:
        """Check ``node``; its value if it is free of ``x`` and parameters, else None.

        ``pow_nesting`` counts the exponents ``node`` sits in; ``tower`` is the product of
        the exponents of the powers of which ``node`` is the base (``(a**b)**c``).
        """
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
            return float(v)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            if node.id == "x":
                return None
            raise AnsatzError(f"unknown name {node.id!r} (only x, params[i] and constants)")
        idx = param_index(node)
        if idx is not None:
            if not 0 <= idx <= MAX_PARAM_INDEX:
                raise AnsatzError(f"parameter index {idx} outside 0..{MAX_PARAM_INDEX}")
            self.indices.add(idx)
            return None
        c = constant_name(node)
        if c is not None:
            return CONSTANTS[c]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return self._power("**", node.left, node.right, 1.0, d, pow_nesting, cond, tower)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            a = self.check(node.left, d, pow_nesting, cond)
            b = self.check(node.right, d, pow_nesting, cond)
            return None if a is None or b is None else scalar_value(_BINOPS[type(node.op)], a, b)
        if isinstance(node, ast.BinOp) and cond and type(node.op) in _BOOLOPS:
            a = self.check(node.left, d, pow_nesting, cond)
            b = self.check(node.right, d, pow_nesting, cond)
            return None if a is None or b is None else scalar_value(_BOOLOPS[type(node.op)], a, b)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            # A sign does not end a tower: (-(a**b))**c is still a**(b*c) in size.
            a = self.check(node.operand, d, pow_nesting, cond, tower)
            return None if a is None else (-a if isinstance(node.op, ast.USub) else a)
        if isinstance(node, ast.Compare):
            if not cond:
                raise AnsatzError("comparisons are only allowed in the condition of np.where")
            if not all(type(op) in _CMPOPS for op in node.ops):
                raise AnsatzError("unsupported comparison operator")
            vals = [
                self.check(sub, d, pow_nesting, False) for sub in (node.left, *node.comparators)
            ]
            if any(v is None for v in vals):
                return None
            return float(
                all(
                    scalar_value(_CMPOPS[type(op)], vals[k], vals[k + 1])
                    for k, op in enumerate(node.ops)
                )
            )
        if isinstance(node, ast.BoolOp) and cond:
            vals = [self.check(sub, d, pow_nesting, cond) for sub in node.values]
            if any(v is None for v in vals):
                return None
            return float(all(vals) if isinstance(node.op, ast.And) else any(vals))
        if isinstance(node, ast.Call):
            name = self._call_head(node)
            spec = _POWER_CALLS.get(name)
            if spec is not None:
                b, e, fixed = spec
                base = node.args[b] if b is not None else None
                expo = node.args[e] if e is not None else None
                return self._power(name, base, expo, fixed, d, pow_nesting, cond, tower)
            vals = [
                self.check(a, d, pow_nesting, cond=(name == "where" and i == 0))
                for i, a in enumerate(node.args)
            ]
            if any(v is None for v in vals):
                return None
            return scalar_value(FUNCTIONS[name].numpy, *vals)  # type: ignore[arg-type]
        raise AnsatzError(f"construct not allowed in an ansatz: {type(node).__name__}")

    def _power(
        self,
        name: str,
        base: ast.expr | None,
        expo: ast.expr | None,
        fixed: float | None,
        d: int,
        pow_nesting: int,
        cond: bool,
        tower: float,
    ) -> float | None:
        """Check ``base ** expo`` (``**``, ``np.power``, ``np.exp2``, ``np.square``, ...).

        Bounds: no growing power inside an exponent (``a**b**c``, ``np.exp2(np.exp2(9))``);
        an exponent free of ``x`` and parameters is finite and at most
        :data:`MAX_LITERAL_EXPONENT` in magnitude however it is written; and so is the
        product of the exponents of a tower ``((a**b)**c)**d``.
        """
        if (name == "**" or name in _GROWING_POWERS) and pow_nesting >= MAX_POWER_NESTING:
            raise AnsatzTooComplexError("powers are nested too deeply (a**b**c...)")
        ve = fixed
        if expo is not None:
            ve = self.check(expo, d, pow_nesting + 1, cond)
            if ve is not None and not abs(ve) <= MAX_LITERAL_EXPONENT:  # also nan
                shown = f"{ve:g}" if isinstance(expo, ast.Constant) else f"{_short(expo)} = {ve:g}"
                raise AnsatzTooComplexError(
                    f"exponent {shown} exceeds {MAX_LITERAL_EXPONENT:g} in magnitude"
                )
        total = tower * (abs(ve) if ve is not None else 1.0)
        if total > MAX_LITERAL_EXPONENT:
            raise AnsatzTooComplexError(
                f"a tower of powers ((a**b)**c) raises to more than {MAX_LITERAL_EXPONENT:g}"
            )
        vb = self.check(base, d, pow_nesting, cond, total) if base is not None else None
        args = [v for v, n in ((vb, base), (ve, expo)) if n is not None]
        if any(v is None for v in args):
            return None
        return scalar_value(np.power if name == "**" else FUNCTIONS[name].numpy, *args)  # type: ignore[arg-type]

    def _call_head(self, node: ast.Call) -> str:
        """Check a call's function, arguments and arity; its canonical name."""
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
        return name


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


def _truth(holds: Any) -> Arr:
    """A condition's truth as 1.0 / 0.0: arithmetic on conditions (``-(x > 1)``,
    ``(x > 1) - (x > 2)``) is then float arithmetic, as the checker and the sympy form
    compute it, never numpy's boolean arithmetic (which refuses ``-`` and reads ``+`` as
    *or*)."""
    return np.asarray(holds, dtype=float)


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
        a, b = _compile(node.left), _compile(node.right)
        op = _BINOPS.get(type(node.op))
        if op is None:
            lop = _BOOLOPS[type(node.op)]
            return lambda x, p: _truth(lop(a(x, p), b(x, p)))
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
            return _truth(out)

        return compare
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        bop = _BOOLOPS[type(node.op)]

        def boolop(x: Arr, p: Arr) -> Any:
            out = parts[0](x, p)
            for part in parts[1:]:
                out = bop(out, part(x, p))
            return _truth(out)

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

    def __reduce__(self) -> tuple[Any, ...]:
        # The compiled closures do not pickle: the normal-form text is parsed again (by
        # the safe parser: a pickle carries no code), keeping the original indices.
        return (_rebuild_ansatz, (self.text, self.source_indices))

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
    def _sympy_or_error(self) -> sympy.Expr | str:
        # The conversion is work-bounded and its failure cached: one hostile ansatz costs
        # one bounded attempt, however often its sympy form is asked for.
        from llmlex._symbolic import ast_to_sympy, time_bound

        try:
            with time_bound(AnsatzTooComplexError, f"the sympy form of {_short(self._tree)!r}"):
                return ast_to_sympy(self._tree, AnsatzError)
        except (AnsatzError, RecursionError, MemoryError) as err:
            return f"no sympy form: {err}"
        except Exception as err:  # a sympy failure on exotic input: a bug, but not a crash
            return f"no sympy form: sympy raised {type(err).__name__}: {err}"

    @property
    def sympy(self) -> sympy.Expr:
        """The expression as sympy, with symbols ``x`` and ``p0 .. p{n-1}``.

        Numbers too large for sympy to evaluate exactly (``gamma(999999999)``) or that
        sympy would make complex (``arccos(2)``, ``log(-2)``) appear as the Float the
        compiled ansatz computes (nan, for those two); comparisons of numbers are decided
        as the compiled ansatz decides them, and a condition used as a number is 1 where
        it holds, 0 elsewhere.

        Raises
        ------
        AnsatzTooComplexError
            If the conversion exceeds its work bound
            (:data:`llmlex._symbolic.SYMPY_CALLS`), or there is no real sympy form (a
            comparison with a value sympy knows is complex, ``np.sqrt(-x**2 - 1) > 0``).
        """
        out = self._sympy_or_error
        if isinstance(out, str):
            raise AnsatzTooComplexError(out)
        return out

    @cached_property
    def canonical(self) -> str:
        """A key under which equivalent spellings of one ansatz collide.

        Parameters are anonymised to one symbol after sympy's automatic canonical
        ordering, so ``params[0]*x + params[1]`` and ``params[1] + x*params[0]`` share a key.
        Falls back to the normal text if sympy cannot handle the expression in its time
        bound.
        """
        from llmlex._symbolic import canonical_key, time_bound

        # The sympy form first, under its own bound: inside this one its bound would not
        # apply, and a conversion stopped by this one would not be cached as failed.
        expr = self._sympy_or_error
        if isinstance(expr, str):
            return self.text
        try:
            with time_bound(AnsatzTooComplexError, "the canonical key"):
                return canonical_key(expr, self.n_params)
        except Exception:  # sympy can fail on exotic input; de-dup is best effort
            return self.text

    @cached_property
    def complexity(self) -> int:
        """Node count of the sympy form (parameters count as one node each); the count of
        syntax nodes if there is no sympy form."""
        from llmlex._symbolic import node_count, time_bound

        expr = self._sympy_or_error  # under its own bound, as in canonical
        if isinstance(expr, str):
            return _node_count_ast(self._tree)
        try:
            with time_bound(AnsatzTooComplexError, "the complexity"):
                return node_count(expr)
        except Exception:
            return _node_count_ast(self._tree)


def _node_count_ast(tree: ast.AST) -> int:
    return sum(1 for _ in ast.walk(tree))


_LAMBDA_HEAD = re.compile(r"^\s*lambda\s+[^:]*:\s*")


def _rebuild_ansatz(text: str, source_indices: tuple[int, ...]) -> Ansatz:
    """An unpickled :class:`Ansatz`: its text parsed again (see ``Ansatz.__reduce__``)."""
    return replace(parse_ansatz(text), source_indices=tuple(source_indices))


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

    from llmlex._symbolic import sympy_to_text, time_bound

    try:
        with time_bound(AnsatzError, "printing the sympy expression"):
            if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
                # sympy folds e.g. x/(x - x) to zoo*x: no real-valued ansatz to print.
                raise AnsatzError(f"expression is undefined or infinite everywhere: {expr}")
            text = sympy_to_text(expr)
    except (KeyError, TypeError, ValueError, NotImplementedError, RecursionError) as err:
        if isinstance(err, AnsatzError):
            raise
        raise AnsatzError(f"cannot print {type(expr).__name__} as an ansatz: {err!r}") from None
    return parse_ansatz(text)
