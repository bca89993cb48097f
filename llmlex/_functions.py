"""The one table of the functions and constants of the safe expression language.

Every consumer reads this table instead of keeping its own list:

- :mod:`llmlex.ansatz` checks arity, compiles to :attr:`Function.numpy` and prints the
  normal form with :attr:`Function.module`;
- :mod:`llmlex._symbolic` builds sympy expressions with :meth:`Function.to_sympy`;
- :mod:`llmlex._kan_sympy` evaluates sympy heads with :func:`numpy_by_sympy_head` (the
  table's one-argument heads plus :data:`SYMPY_ONLY`) and accepts in
  ``parse_expression`` only the functions that evaluator handles;
- :mod:`llmlex.export` converts sympy heads to torch with :func:`sympy_head_rows` and
  :func:`torch_function`;
- :mod:`llmlex.llm` lists the functions, aliases and constants in its prompts.

It also parses expression text (:func:`parse_expression_tree`, the one caller of
:func:`ast.parse`, serialised by a lock) and resolves the names of a parsed (never
evaluated) expression: :func:`function_name` (``np.sin``, ``scipy.special.erf``, aliases
such as ``ln``), :func:`constant_name` (``np.pi``) and :func:`param_index` (``params[i]``).

Only numpy and scipy.special are imported here; sympy is imported on first use of a sympy
builder and torch is never imported (:func:`torch_function` takes the module).
"""

from __future__ import annotations

import ast
import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.special as sps

from llmlex.exceptions import AnsatzError

__all__ = [
    "ALIASES",
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_BESSEL_Y_ORDER",
    "NUMPY_BINOPS",
    "NUMPY_BOOLOPS",
    "NUMPY_COMPARISONS",
    "SYMPY_ONLY",
    "Constant",
    "Function",
    "constant_name",
    "function_name",
    "lookup",
    "numpy_by_sympy_head",
    "param_index",
    "parse_expression_tree",
    "scalar_value",
    "sympy_head_rows",
    "torch_function",
]

Arr = np.ndarray
#: Builds a sympy expression: ``builder(sympy_module, *args)``.
SympyBuilder = Callable[..., Any]
#: A torch counterpart: an attribute path under ``torch`` (``"special.bessel_j0"``) or a
#: callable ``f(torch_module, *args)``.
TorchOp = str | Callable[..., Any]


@dataclass(frozen=True)
class Function:
    """One function of the ansatz language.

    Attributes
    ----------
    name : str
        The canonical bare name, as written after ``np.`` / ``scipy.special.``.
    arity : tuple of int
        Accepted argument counts.
    numpy : callable
        The numpy / scipy implementation the compiled ansatz calls.
    module : {"np", "scipy.special"}
        Where the normal form of an ansatz writes it (``np.sin``, ``scipy.special.erf``).
    sympy : callable
        ``sympy(sympy_module, *args)`` builds the sympy expression with the same value.
    sympy_head : str or None
        Name of the one-argument sympy function that :attr:`sympy` builds from one
        argument (``sin`` -> ``sin``, ``gammaln`` -> ``loggamma``): the key under which the
        multivariate evaluator and the torch export find this row again.  None when the
        sympy form is composite (``expm1`` -> ``exp(a) - 1``) or takes other arguments
        (``j0`` -> ``besselj(0, a)``).
    torch : str, callable or None
        The torch counterpart: an attribute path under ``torch`` or a callable
        ``f(torch_module, *args)``; None when torch has none.
    latex : str or None
        The LaTeX name (``\\sin``, ``J_0``); None when the notation is not a name
        (``|x|``, ``x^2``).  sympy's printer writes LaTeX in practice; prompts and docs may
        read this.
    aliases : tuple of str
        Other names language models write for it (``asin``, ``ln``, ``sigmoid``).
    """

    name: str
    arity: tuple[int, ...]
    numpy: Callable[..., Any]
    module: Literal["np", "scipy.special"]
    sympy: SympyBuilder
    sympy_head: str | None = None
    torch: TorchOp | None = None
    latex: str | None = None
    aliases: tuple[str, ...] = ()

    def to_sympy(self, *args: Any) -> Any:
        """The sympy expression of this function applied to sympy ``args``."""
        import sympy  # lazily: sympy is slow to import and pure numerical work never needs it

        return self.sympy(sympy, *args)


@dataclass(frozen=True)
class Constant:
    """A named constant of the ansatz language.

    Attributes
    ----------
    name : str
        Its name in an ansatz (bare or ``np.``-prefixed).
    numpy : float
        Its value.
    sympy : str
        Name of the sympy singleton (``pi``, ``E``, ``EulerGamma``).
    latex : str
        Its LaTeX symbol.
    """

    name: str
    numpy: float
    sympy: str
    latex: str

    def to_sympy(self) -> Any:
        """The sympy constant."""
        import sympy

        return getattr(sympy, self.sympy)


# ----------------------------------------------------------------------------- builders


def _head(name: str) -> SympyBuilder:
    """A builder calling the sympy function ``name`` on the arguments as given."""

    def build(s: Any, *args: Any) -> Any:
        return getattr(s, name)(*args)

    return build


def _order(order: int, name: str) -> SympyBuilder:
    """A builder of a fixed-order Bessel function (``j0`` -> ``besselj(0, a)``)."""

    def build(s: Any, a: Any) -> Any:
        return getattr(s, name)(order, a)

    return build


def _heaviside(x: Arr, h: Any = 0.5) -> Arr:
    # numpy's heaviside needs the value at 0; the one-argument form means 1/2 there.
    return np.heaviside(x, h)


#: Largest order of ``yv`` computed (nan beyond): scipy computes an integer order n at a
#: large argument by a recurrence of n steps, in C where no time bound reaches
#: (``yv(1e9, 1e300)`` takes 20 s), and such orders are -inf or noise anyway.
MAX_BESSEL_Y_ORDER = 1000.0


def _yv(v: Arr, z: Arr) -> Arr:
    """``scipy.special.yv``, nan for orders beyond :data:`MAX_BESSEL_Y_ORDER`."""
    big = np.abs(v) > MAX_BESSEL_Y_ORDER
    return np.where(big, np.nan, sps.yv(np.where(big, 0.0, v), z))


def _heaviside_sympy(s: Any, a: Any, h: Any = None) -> Any:
    return s.Heaviside(a, s.S.Half if h is None else h)


def _heaviside_torch(t: Any, a: Any, h: Any = 0.5) -> Any:
    return t.heaviside(a, t.as_tensor(h, dtype=a.dtype))


def _row(
    name: str,
    arity: tuple[int, ...],
    numpy: Callable[..., Any],
    module: Literal["np", "scipy.special"],
    *,
    head: str | None = None,
    sympy: SympyBuilder | None = None,
    torch: TorchOp | None = None,
    latex: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Function:
    """A table row; ``head`` gives both the sympy builder and :attr:`Function.sympy_head`."""
    if sympy is None:
        if head is None:
            raise ValueError(f"row {name!r} needs a sympy builder or a sympy head")
        sympy = _head(head)
    return Function(name, arity, numpy, module, sympy, head, torch, latex, aliases)


def _np(
    name: str, head: str, latex: str, *, torch: str | None = None, aliases: tuple[str, ...] = ()
) -> Function:
    """A one-argument numpy row whose sympy form is the head ``head`` of its argument."""
    return _row(
        name,
        (1,),
        getattr(np, name),
        "np",
        head=head,
        torch=torch or head,
        latex=latex,
        aliases=aliases,
    )


# ----------------------------------------------------------------------------- the table

_ROWS: tuple[Function, ...] = (
    # Trigonometric and hyperbolic functions and their inverses.
    _np("sin", "sin", r"\sin"),
    _np("cos", "cos", r"\cos"),
    _np("tan", "tan", r"\tan"),
    _np("arcsin", "asin", r"\arcsin", aliases=("asin",)),
    _np("arccos", "acos", r"\arccos", aliases=("acos",)),
    _np("arctan", "atan", r"\arctan", aliases=("atan",)),
    _np("sinh", "sinh", r"\sinh"),
    _np("cosh", "cosh", r"\cosh"),
    _np("tanh", "tanh", r"\tanh"),
    _np("arcsinh", "asinh", r"\operatorname{asinh}", aliases=("asinh",)),
    _np("arccosh", "acosh", r"\operatorname{acosh}", aliases=("acosh",)),
    _np("arctanh", "atanh", r"\operatorname{atanh}", aliases=("atanh",)),
    # Exponentials and logarithms.
    _np("exp", "exp", r"\exp"),
    _row("exp2", (1,), np.exp2, "np", sympy=lambda s, a: s.Integer(2) ** a, torch="exp2"),
    _row("expm1", (1,), np.expm1, "np", sympy=lambda s, a: s.exp(a) - 1, torch="expm1"),
    _np("log", "log", r"\log", aliases=("ln",)),
    _row(
        "log2",
        (1,),
        np.log2,
        "np",
        sympy=lambda s, a: s.log(a) / s.log(2),
        torch="log2",
        latex=r"\log_2",
    ),
    _row(
        "log10",
        (1,),
        np.log10,
        "np",
        sympy=lambda s, a: s.log(a) / s.log(10),
        torch="log10",
        latex=r"\log_{10}",
    ),
    _row("log1p", (1,), np.log1p, "np", sympy=lambda s, a: s.log(1 + a), torch="log1p"),
    # Powers, roots and the like.
    _row("sqrt", (1,), np.sqrt, "np", sympy=lambda s, a: s.sqrt(a), torch="sqrt"),
    _row("cbrt", (1,), np.cbrt, "np", sympy=lambda s, a: s.cbrt(a)),  # torch has no cbrt
    _row("abs", (1,), np.abs, "np", head="Abs", torch="abs", aliases=("fabs", "absolute")),
    _row("sign", (1,), np.sign, "np", head="sign", torch="sign", latex=r"\operatorname{sgn}"),
    _row("square", (1,), np.square, "np", sympy=lambda s, a: a**2, torch="square"),
    _row("reciprocal", (1,), np.reciprocal, "np", sympy=lambda s, a: 1 / a, torch="reciprocal"),
    # numpy's sinc is the normalised one, sin(pi x) / (pi x); so is torch's.
    _row(
        "sinc",
        (1,),
        np.sinc,
        "np",
        sympy=lambda s, a: s.sinc(s.pi * a),
        torch="sinc",
        latex=r"\operatorname{sinc}",
    ),
    # Functions of several arguments.
    _row(
        "arctan2",
        (2,),
        np.arctan2,
        "np",
        sympy=_head("atan2"),
        torch="atan2",
        latex=r"\operatorname{atan2}",
        aliases=("atan2",),
    ),
    _row(
        "hypot",
        (2,),
        np.hypot,
        "np",
        sympy=lambda s, a, b: s.sqrt(a**2 + b**2),
        torch="hypot",
    ),
    _row("power", (2,), np.power, "np", sympy=lambda s, a, b: a**b, torch="pow", aliases=("pow",)),
    _row("maximum", (2,), np.maximum, "np", sympy=_head("Max"), torch="maximum", latex=r"\max"),
    _row("minimum", (2,), np.minimum, "np", sympy=_head("Min"), torch="minimum", latex=r"\min"),
    _row(
        "where",
        (3,),
        np.where,
        "np",
        sympy=lambda s, c, a, b: s.Piecewise((a, c), (b, True)),
        torch="where",
    ),
    _row(
        "heaviside",
        (1, 2),
        _heaviside,
        "np",
        sympy=_heaviside_sympy,
        torch=_heaviside_torch,
        latex=r"\theta",
    ),
    # scipy.special: error and gamma functions.
    _row(
        "erf", (1,), sps.erf, "scipy.special", head="erf", torch="erf", latex=r"\operatorname{erf}"
    ),
    _row(
        "erfc",
        (1,),
        sps.erfc,
        "scipy.special",
        head="erfc",
        torch="erfc",
        latex=r"\operatorname{erfc}",
    ),
    _row(
        "erfinv",
        (1,),
        sps.erfinv,
        "scipy.special",
        head="erfinv",
        torch="erfinv",
        latex=r"\operatorname{erf}^{-1}",
    ),
    _row("gamma", (1,), sps.gamma, "scipy.special", head="gamma", latex=r"\Gamma"),
    _row(
        "gammaln",
        (1,),
        sps.gammaln,
        "scipy.special",
        head="loggamma",
        torch="lgamma",
        latex=r"\ln\Gamma",
        aliases=("lgamma",),
    ),
    # sympy rewrites digamma(a) as polygamma(0, a), which neither evaluator handles: no head.
    _row(
        "digamma",
        (1,),
        sps.digamma,
        "scipy.special",
        sympy=_head("digamma"),
        torch="digamma",
        latex=r"\psi",
    ),
    # Bessel functions of fixed order.
    _row(
        "j0",
        (1,),
        sps.j0,
        "scipy.special",
        sympy=_order(0, "besselj"),
        torch="special.bessel_j0",
        latex="J_0",
    ),
    _row(
        "j1",
        (1,),
        sps.j1,
        "scipy.special",
        sympy=_order(1, "besselj"),
        torch="special.bessel_j1",
        latex="J_1",
    ),
    _row(
        "y0",
        (1,),
        sps.y0,
        "scipy.special",
        sympy=_order(0, "bessely"),
        torch="special.bessel_y0",
        latex="Y_0",
    ),
    _row(
        "y1",
        (1,),
        sps.y1,
        "scipy.special",
        sympy=_order(1, "bessely"),
        torch="special.bessel_y1",
        latex="Y_1",
    ),
    _row(
        "i0",
        (1,),
        sps.i0,
        "scipy.special",
        sympy=_order(0, "besseli"),
        torch="special.i0",
        latex="I_0",
    ),
    _row(
        "i1",
        (1,),
        sps.i1,
        "scipy.special",
        sympy=_order(1, "besseli"),
        torch="special.i1",
        latex="I_1",
    ),
    _row(
        "k0",
        (1,),
        sps.k0,
        "scipy.special",
        sympy=_order(0, "besselk"),
        torch="special.modified_bessel_k0",
        latex="K_0",
    ),
    _row(
        "k1",
        (1,),
        sps.k1,
        "scipy.special",
        sympy=_order(1, "besselk"),
        torch="special.modified_bessel_k1",
        latex="K_1",
    ),
    # Elliptic integrals (parameter m, as in scipy and sympy), Dawson, logistic, beta.
    _row("ellipk", (1,), sps.ellipk, "scipy.special", head="elliptic_k", latex="K"),
    _row("ellipe", (1,), sps.ellipe, "scipy.special", head="elliptic_e", latex="E"),
    _row(
        "dawsn",
        (1,),
        sps.dawsn,
        "scipy.special",
        sympy=lambda s, a: s.sqrt(s.pi) / 2 * s.exp(-(a**2)) * s.erfi(a),
        latex="F",
    ),
    _row(
        "expit",
        (1,),
        sps.expit,
        "scipy.special",
        sympy=lambda s, a: 1 / (1 + s.exp(-a)),
        torch="sigmoid",
        latex=r"\sigma",
        aliases=("sigmoid",),
    ),
    # Bessel functions of any order: the order comes first, as in scipy.
    _row("jv", (2,), sps.jv, "scipy.special", sympy=_head("besselj"), latex=r"J_\nu"),
    _row("yv", (2,), _yv, "scipy.special", sympy=_head("bessely"), latex=r"Y_\nu"),
    _row("iv", (2,), sps.iv, "scipy.special", sympy=_head("besseli"), latex=r"I_\nu"),
    _row("kv", (2,), sps.kv, "scipy.special", sympy=_head("besselk"), latex=r"K_\nu"),
    _row("beta", (2,), sps.beta, "scipy.special", sympy=_head("beta"), latex=r"\mathrm{B}"),
)

#: Functions an ansatz may call, by canonical bare name.  ``np.``, ``numpy.``, ``math.``,
#: ``scipy.special.``, ``special.``, ``sp.``, ``sps.``, ``sc.`` and ``scs.`` prefixes are
#: all accepted (see :func:`function_name`).
FUNCTIONS: dict[str, Function] = {f.name: f for f in _ROWS}

#: Alias -> canonical name, from every row's :attr:`Function.aliases`.
ALIASES: dict[str, str] = {a: f.name for f in _ROWS for a in f.aliases}

#: Named constants an ansatz may use (bare or with a numpy-like prefix).
CONSTANTS: dict[str, Constant] = {
    c.name: c
    for c in (
        Constant("pi", math.pi, "pi", r"\pi"),
        Constant("e", math.e, "E", "e"),
        Constant("euler_gamma", float(np.euler_gamma), "EulerGamma", r"\gamma"),
    )
}


#: The operators of the language: AST operator class -> numpy function.
NUMPY_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
}
#: Comparisons, allowed only in the condition of ``np.where``.
NUMPY_COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
#: Logical connectives of conditions (``&``, ``|``, ``and``, ``or``).
NUMPY_BOOLOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
    ast.And: np.logical_and,
    ast.Or: np.logical_or,
}


def scalar_value(fn: Callable[..., Any], *args: float) -> float:
    """``fn(*args)`` of float scalars as a float, as a compiled ansatz computes it.

    Floating-point warnings are silenced; ``nan`` when ``fn`` raises (the callers use the
    value to bound exact arithmetic, where an unknown value is treated as unsafe).
    """
    try:
        with np.errstate(all="ignore"):
            return float(np.asarray(fn(*args), dtype=float))
    except Exception:  # any odd input (a TypeError of a ufunc, ...): the value is unknown
        return math.nan


# ----------------------------------------------------------------------------- sympy-only


def _cot(a: Arr) -> Arr:
    return 1.0 / np.tan(a)


def _sec(a: Arr) -> Arr:
    return 1.0 / np.cos(a)


def _csc(a: Arr) -> Arr:
    return 1.0 / np.sin(a)


def _coth(a: Arr) -> Arr:
    return 1.0 / np.tanh(a)


def _sech(a: Arr) -> Arr:
    return 1.0 / np.cosh(a)


def _csch(a: Arr) -> Arr:
    return 1.0 / np.sinh(a)


def _acot(a: Arr) -> Arr:
    return np.arctan(1.0 / a)


#: Sympy-only heads: NOT part of the ansatz language, but sympy produces them when it
#: simplifies (``1/tan(x)`` -> ``cot(x)``), so the multivariate evaluator accepts them.
#: Sympy function name -> numpy implementation.
SYMPY_ONLY: dict[str, Callable[[Arr], Arr]] = {
    "cot": _cot,
    "sec": _sec,
    "csc": _csc,
    "coth": _coth,
    "sech": _sech,
    "csch": _csch,
    "acot": _acot,
}


# ----------------------------------------------------------------------------- lookups


def lookup(name: str) -> Function | None:
    """The row of a bare function name or alias (``"sin"``, ``"ln"``), else None."""
    return FUNCTIONS.get(ALIASES.get(name, name))


@functools.cache
def sympy_head_rows() -> dict[Any, Function]:
    """Sympy function class -> row, for the rows with a :attr:`Function.sympy_head`.

    Built on first use (it imports sympy) and cached.
    """
    import sympy

    return {getattr(sympy, f.sympy_head): f for f in _ROWS if f.sympy_head is not None}


@functools.cache
def numpy_by_sympy_head() -> dict[Any, Callable[..., Any]]:
    """Sympy function class -> numpy implementation of one argument.

    The table's one-argument heads and the :data:`SYMPY_ONLY` ones: what the multivariate
    evaluator (:func:`llmlex._kan_sympy.compile_expr`) accepts besides arithmetic, ``log``,
    ``Max`` and ``Min``.  Built on first use (it imports sympy) and cached.
    """
    import sympy

    out: dict[Any, Callable[..., Any]] = {h: f.numpy for h, f in sympy_head_rows().items()}
    out.update({getattr(sympy, name): fn for name, fn in SYMPY_ONLY.items()})
    return out


def torch_function(fn: Function, torch: Any) -> Callable[..., Any] | None:
    """The torch counterpart of ``fn`` as a callable of its arguments, or None.

    Parameters
    ----------
    fn : Function
        A table row.
    torch : module
        The imported ``torch`` module (this module never imports it).
    """
    op = fn.torch
    if op is None:
        return None
    if callable(op):
        return functools.partial(op, torch)
    out: Any = torch
    for part in op.split("."):
        out = getattr(out, part)
    return out


# ----------------------------------------------------------------------------- parsing

#: Serialises :func:`ast.parse`: CPython before 3.11.8 / 3.12.1 shares the AST module's
#: recursion-depth counter between threads (gh-106905), so concurrent parses in worker
#: threads (Dask) can fail with ``SystemError: AST constructor recursion depth mismatch``.
_AST_LOCK = threading.Lock()


def parse_expression_tree(text: str) -> ast.expr:
    """Parse ``text`` as one Python expression (nothing is evaluated); the body node.

    Every parse of untrusted expression text in llmlex goes through here, under a
    module-level lock: :func:`ast.parse` is not thread-safe on some CPython versions.

    Raises
    ------
    AnsatzError
        If the text is not a Python expression (syntax error, null byte, too deeply
        nested for the parser, too large).
    """
    try:
        with _AST_LOCK:
            return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise AnsatzError(f"not a Python expression: {err}") from None


# ----------------------------------------------------------------------------- AST names

_NUMPY_PREFIXES = frozenset({"np", "numpy", "math"})
_SCIPY_PREFIXES = frozenset({"special", "sp", "sps", "sc", "scs"})


def function_name(node: ast.expr) -> str | None:
    """Resolve ``np.sin`` / ``scipy.special.erf`` / ``sin`` / ``ln`` to a canonical name.

    Returns None if the node does not name a whitelisted function.
    """
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    parts.reverse()
    *prefix, name = parts
    name = ALIASES.get(name, name)
    # Module prefixes are accepted leniently (models write math.exp, np.erf, special.erf):
    # what matters is that the bare name is whitelisted.
    ok = name in FUNCTIONS and (
        not prefix
        or (len(prefix) == 1 and prefix[0] in _NUMPY_PREFIXES | _SCIPY_PREFIXES)
        or prefix == ["scipy", "special"]
    )
    return name if ok else None


def constant_name(node: ast.expr) -> str | None:
    """Resolve ``pi`` / ``np.pi`` / ``math.e`` to a whitelisted constant name, else None."""
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return node.id
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in _NUMPY_PREFIXES
        and node.attr in CONSTANTS
    ):
        return node.attr
    return None


def param_index(node: ast.expr) -> int | None:
    """Return i for ``params[i]`` (also ``p[i]``), else None."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("params", "p")
        and isinstance(node.slice, ast.Constant)
        and type(node.slice.value) is int
    ):
        return node.slice.value
    return None
