"""An exact, safe JSON codec for sympy expressions.

An expression is written as a tree of one-key JSON objects, the key naming the node::

    {"Add": [{"Mul": [{"Float": "-0.25"}, {"Symbol": "x0"}]}, {"Constant": "pi"}]}

Leaves are ``{"Symbol": name}`` (a real symbol, as llmlex creates them),
``{"Integer": "123"}``, ``{"Rational": ["1", "3"]}``, ``{"Float": "0.1"}`` (Python's
shortest round-trip representation of the double, so the value comes back bit-identical)
and ``{"Constant": name}`` for ``pi``, ``E``, ``I``, ``oo``, ``nan``, ``true``, ...  Inner
nodes are ``{"Head": [child, ...]}`` with ``Head`` one of a fixed whitelist: arithmetic
(``Add``, ``Mul``, ``Pow``), the functions llmlex's formulas use (``sin``, ``exp``,
``log``, ``Abs``, ``erf``, ``gamma``, ``besselj``, ``Max``, ``Heaviside``, ``Piecewise``,
...), relations and logic for ``Piecewise`` conditions.

Decoding builds each node by calling the whitelisted sympy class with
``evaluate=False`` on the decoded children, so the rebuilt tree is the stored tree,
node for node, and nothing is computed: no string is ever parsed by
:func:`sympy.sympify`, ``eval`` or ``exec``, and an unknown key, a wrongly typed child
or a tree deeper than :data:`MAX_DEPTH` or larger than :data:`MAX_NODES` raises
:class:`~llmlex.persist.PersistError`.  Encoding raises the same error, naming the node,
for anything outside the whitelist (and for Floats of other than double precision,
which a JSON number cannot hold exactly).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import sympy
from sympy.functions.elementary.piecewise import ExprCondPair as _ExprCondPair
from sympy.logic.boolalg import Boolean

from llmlex._symbolic import time_bound
from llmlex.exceptions import PersistError

__all__ = ["DECODE_SECONDS", "MAX_DEPTH", "MAX_NODES", "decode_expr", "encode_expr"]

#: Deepest tree accepted (encoding and decoding); far above any formula llmlex builds, and
#: low enough that sympy's recursive printers and comparisons stay within Python's default
#: recursion limit (at depth 199, ``str()`` of nested functions raises RecursionError).
MAX_DEPTH = 100
#: Time bound of one decoding, in seconds.
DECODE_SECONDS = 2.0
#: Largest tree accepted, in nodes.
MAX_NODES = 200_000
#: Longest integer (in digits) and symbol name accepted.
MAX_DIGITS = 1000
MAX_NAME = 200

_INT = re.compile(r"-?[0-9]+")
_DOUBLE_PREC = 53  # bits of a Python float; a sympy Float made from one has this _prec

_CONSTANTS: dict[str, sympy.Basic] = {
    "pi": sympy.pi,
    "E": sympy.E,
    "EulerGamma": sympy.EulerGamma,
    "GoldenRatio": sympy.GoldenRatio,
    "Catalan": sympy.Catalan,
    "I": sympy.I,
    "oo": sympy.oo,
    "-oo": -sympy.oo,
    "zoo": sympy.zoo,
    "nan": sympy.nan,
    "true": sympy.true,
    "false": sympy.false,
}

# Argument kinds of the inner nodes: every child an expression ("expr"), every child a
# condition ("bool"), an (expression, condition) pair ("pair") or pairs ("pieces").
_EXPR_HEADS: tuple[type, ...] = (
    sympy.Add,
    sympy.Mul,
    sympy.Pow,
    sympy.sin,
    sympy.cos,
    sympy.tan,
    sympy.cot,
    sympy.sec,
    sympy.csc,
    sympy.asin,
    sympy.acos,
    sympy.atan,
    sympy.acot,
    sympy.atan2,
    sympy.sinh,
    sympy.cosh,
    sympy.tanh,
    sympy.coth,
    sympy.sech,
    sympy.csch,
    sympy.asinh,
    sympy.acosh,
    sympy.atanh,
    sympy.exp,
    sympy.log,
    sympy.Abs,
    sympy.sign,
    sympy.floor,
    sympy.ceiling,
    sympy.erf,
    sympy.erfc,
    sympy.erfi,
    sympy.erfinv,
    sympy.gamma,
    sympy.loggamma,
    sympy.polygamma,
    sympy.beta,
    sympy.sinc,
    sympy.besselj,
    sympy.bessely,
    sympy.besseli,
    sympy.besselk,
    sympy.elliptic_k,
    sympy.elliptic_e,
    sympy.Max,
    sympy.Min,
    sympy.Heaviside,
)
_RELATIONS: tuple[type, ...] = (
    sympy.StrictLessThan,
    sympy.LessThan,
    sympy.StrictGreaterThan,
    sympy.GreaterThan,
    sympy.Equality,
    sympy.Unequality,
)
_LOGIC: tuple[type, ...] = (sympy.And, sympy.Or, sympy.Not)

#: Whitelisted inner nodes: name -> (sympy class, kind of its children).
_HEADS: dict[str, tuple[type, str]] = {
    **{c.__name__: (c, "expr") for c in (*_EXPR_HEADS, *_RELATIONS)},
    **{c.__name__: (c, "bool") for c in _LOGIC},
    "Piecewise": (sympy.Piecewise, "pieces"),
    "ExprCondPair": (_ExprCondPair, "pair"),
}
_HEAD_OF: dict[type, str] = {cls: name for name, (cls, _) in _HEADS.items()}
_LEAVES = ("Symbol", "Integer", "Rational", "Float", "Constant")


# --------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------


def _encode_float(node: sympy.Float) -> str:
    value = float(node)
    if (
        getattr(node, "_prec", None) != _DOUBLE_PREC
        or not math.isfinite(value)
        or sympy.Float(value)._mpf_ != node._mpf_
    ):
        raise PersistError(
            f"the Float {node!s} ({getattr(node, '_prec', '?')} bits) is not a double-precision "
            "number and cannot be stored exactly"
        )
    return repr(value)


def _encode_symbol(node: sympy.Symbol) -> str:
    if type(node) is not sympy.Symbol or node != sympy.Symbol(node.name, real=True):
        raise PersistError(
            f"cannot store the symbol {node.name!r} ({type(node).__name__}, assumptions "
            f"{node.assumptions0}): only real Symbols (Symbol(name, real=True)) are supported"
        )
    if not 0 < len(node.name) <= MAX_NAME:
        raise PersistError(f"symbol names must have 1 to {MAX_NAME} characters")
    return str(node.name)


def encode_expr(expr: sympy.Basic, *, check: bool = True) -> dict[str, Any]:
    """Encode a sympy expression as a JSON-able tree.

    Parameters
    ----------
    expr : sympy.Basic
        The expression (conditions of a ``Piecewise`` may be relations and logic).
    check : bool
        Decode the tree again and require it to equal ``expr`` (a guarantee that what is
        saved loads back identically; costs one decode).

    Returns
    -------
    dict
        Nested one-key dicts of strings and lists (see the module docstring).

    Raises
    ------
    PersistError
        For a node outside the whitelist (named in the message), a symbol other than a
        real ``Symbol``, a Float that is not a double, or a tree beyond
        :data:`MAX_DEPTH` / :data:`MAX_NODES`.
    """
    count = 0

    def enc(node: sympy.Basic, depth: int) -> dict[str, Any]:
        nonlocal count
        count += 1
        if depth > MAX_DEPTH:
            raise PersistError(f"the expression is nested deeper than {MAX_DEPTH} levels")
        if count > MAX_NODES:
            raise PersistError(f"the expression has more than {MAX_NODES} nodes")
        for name, const in _CONSTANTS.items():
            if node is const:
                return {"Constant": name}
        if isinstance(node, sympy.Symbol):
            return {"Symbol": _encode_symbol(node)}
        if isinstance(node, sympy.Integer):
            text = str(int(node.p))
            if len(text.lstrip("-")) > MAX_DIGITS:
                raise PersistError(f"an integer of more than {MAX_DIGITS} digits")
            return {"Integer": text}
        if isinstance(node, sympy.Rational):
            p, q = str(int(node.p)), str(int(node.q))
            if max(len(p.lstrip("-")), len(q)) > MAX_DIGITS:
                raise PersistError(f"a rational of more than {MAX_DIGITS} digits")
            return {"Rational": [p, q]}
        if isinstance(node, sympy.Float):
            return {"Float": _encode_float(node)}
        head = _HEAD_OF.get(type(node))
        if head is None:
            raise PersistError(
                f"cannot store the sympy node {type(node).__name__} ({str(node)[:80]}): "
                "not among the functions llmlex saves"
            )
        return {head: [enc(a, depth + 1) for a in node.args]}

    if not isinstance(expr, sympy.Basic):
        raise PersistError(f"expected a sympy expression, got {type(expr).__name__}")
    tree = enc(expr, 0)
    if check:
        back = decode_expr(tree, kind=None)
        if back != expr:
            raise PersistError(f"the expression {str(expr)[:80]} does not round-trip exactly")
    return tree


# --------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------


def _kind_of(obj: sympy.Basic) -> str:
    if isinstance(obj, _ExprCondPair):
        return "pair"
    if isinstance(obj, sympy.Expr):
        return "expr"
    if isinstance(obj, Boolean):
        return "bool"
    return "other"


def _decode_int(text: Any, what: str) -> int:
    if not isinstance(text, str) or not _INT.fullmatch(text):
        raise PersistError(f"{what} must be a string of digits, got {text!r:.80}")
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise PersistError(f"{what} has more than {MAX_DIGITS} digits")
    return int(text)


def _decode_leaf(key: str, payload: Any) -> sympy.Basic:
    if key == "Symbol":
        if not isinstance(payload, str) or not 0 < len(payload) <= MAX_NAME:
            raise PersistError(f"a symbol name must be a string of 1 to {MAX_NAME} characters")
        return sympy.Symbol(payload, real=True)
    if key == "Integer":
        return sympy.Integer(_decode_int(payload, "an Integer"))
    if key == "Rational":
        if not isinstance(payload, list) or len(payload) != 2:
            raise PersistError("a Rational must be a list [numerator, denominator]")
        p = _decode_int(payload[0], "a numerator")
        q = _decode_int(payload[1], "a denominator")
        if q < 2 or math.gcd(p, q) != 1:
            raise PersistError(f"the Rational {p}/{q} is not in lowest terms")
        return sympy.Rational(p, q)
    if key == "Float":
        if not isinstance(payload, str) or len(payload) > 40:
            raise PersistError(f"a Float must be a decimal string, got {payload!r:.80}")
        try:
            value = float(payload)
        except ValueError:
            raise PersistError(f"a Float must be a decimal string, got {payload!r:.80}") from None
        if not math.isfinite(value):
            raise PersistError(f"a Float must be finite, got {payload!r}")
        return sympy.Float(value)
    # key == "Constant"
    if not isinstance(payload, str) or payload not in _CONSTANTS:
        raise PersistError(f"unknown constant {payload!r:.80} (known: {', '.join(_CONSTANTS)})")
    return _CONSTANTS[payload]


def decode_expr(data: Any, *, kind: str | None = "expr") -> sympy.Basic:
    """Rebuild a sympy expression from :func:`encode_expr`'s tree, safely.

    Only the whitelisted node classes are constructed, with ``evaluate=False``; no text
    is parsed or evaluated.

    Parameters
    ----------
    data : Any
        The decoded JSON tree.
    kind : {"expr", None}
        Require the result to be a sympy ``Expr`` (the default) or accept any node
        (``None``).

    Returns
    -------
    sympy.Basic

    Raises
    ------
    PersistError
        For an unknown node or constant, a malformed leaf, children of the wrong kind or
        number, a tree beyond :data:`MAX_DEPTH` / :data:`MAX_NODES`, or one that takes sympy
        longer than :data:`DECODE_SECONDS` to build.
    """
    count = 0

    def dec(node: Any, depth: int) -> sympy.Basic:
        nonlocal count
        count += 1
        if depth > MAX_DEPTH:
            raise PersistError(f"the stored expression is nested deeper than {MAX_DEPTH} levels")
        if count > MAX_NODES:
            raise PersistError(f"the stored expression has more than {MAX_NODES} nodes")
        if not isinstance(node, dict) or len(node) != 1:
            raise PersistError(
                f"an expression node must be an object with one key, got {str(node)[:80]}"
            )
        ((key, payload),) = node.items()
        if key in _LEAVES:
            return _decode_leaf(key, payload)
        spec = _HEADS.get(key) if isinstance(key, str) else None
        if spec is None:
            raise PersistError(f"unsupported expression node {str(key)[:80]!r}")
        cls, arg_kind = spec
        if not isinstance(payload, list):
            raise PersistError(f"the arguments of {key} must be a list")
        args = [dec(a, depth + 1) for a in payload]
        return _build(key, cls, arg_kind, args)

    try:
        with time_bound(PersistError, "decoding the stored expression", DECODE_SECONDS):
            out = dec(data, 0)
    except RecursionError:
        raise PersistError("the stored expression is nested too deeply to rebuild") from None
    if kind == "expr" and not isinstance(out, sympy.Expr):
        raise PersistError(f"the stored expression is a {type(out).__name__}, not an Expr")
    return out


def _build(key: str, cls: type, arg_kind: str, args: list[sympy.Basic]) -> sympy.Basic:
    """Construct one whitelisted node from decoded children of the right kinds."""
    want = {"expr": "expr", "bool": "bool", "pieces": "pair"}.get(arg_kind)
    if arg_kind == "pair":
        if len(args) != 2 or _kind_of(args[0]) != "expr" or _kind_of(args[1]) != "bool":
            raise PersistError("an ExprCondPair must be [expression, condition]")
    elif any(_kind_of(a) != want for a in args):
        bad = next(a for a in args if _kind_of(a) != want)
        raise PersistError(f"{key} cannot take {type(bad).__name__} {str(bad)[:60]} as argument")
    if not args:
        raise PersistError(f"{key} needs arguments")
    make: Callable[..., sympy.Basic] = cls
    try:
        if arg_kind == "pair":  # ExprCondPair takes no evaluate flag and computes nothing
            return make(*args)
        return make(*args, evaluate=False)
    except Exception as err:  # sympy's own argument checks (count, domain)
        raise PersistError(f"cannot build {key} from the stored arguments: {err}") from None
