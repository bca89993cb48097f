"""The offline proposer's library: parametric primitives read off the data, as templates.

A template (:mod:`llmlex._offline_linear`) is text pieces and floats, each float a
parameter started at its value.  :func:`primitives` instantiates the library -- powers and
roots, shifted logarithms, exponentials and gaussians, sinusoids (also of ``x**2``),
sigmoids, simple rational functions, compositions -- with starting values from the data's
features; :func:`column` evaluates a primitive at its starts and :func:`linear_start` fits
the amplitudes of a sum of them by linear least squares (the proposer's cheap screen).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from llmlex._features import DataFeatures
from llmlex._offline_linear import Template, Token
from llmlex.ansatz import Ansatz, parse_ansatz

__all__ = ["Prim", "column", "linear_start", "nice", "primitives", "render"]


@dataclass(frozen=True)
class Prim:
    """A parametric building block in ``x`` (without an outer amplitude)."""

    name: str
    tokens: Template
    weight: float
    tags: frozenset[str]


def render(tokens: Sequence[Token], offset: int = 0) -> tuple[str, tuple[float, ...]]:
    """Text of a template with parameters numbered from ``offset``, and their starts."""
    out: list[str] = []
    init: list[float] = []
    for t in tokens:
        if isinstance(t, str):
            out.append(t)
        else:
            out.append(f"params[{offset + len(init)}]")
            init.append(float(t))
    return "".join(out), tuple(init)


def nice(v: float) -> float:
    """Round a starting value to 3 significant digits (keeps texts short in logs)."""
    if v == 0 or not math.isfinite(v):
        return 0.0
    return float(f"{v:.3g}")


def primitives(f: DataFeatures, x_unit: float = 1.0) -> list[Prim]:
    """The primitive library, instantiated with starting values read off the data.

    ``x_unit`` is the power of ten the caller's x was divided by (see
    :class:`~llmlex.proposer.ProposalRequest`).
    """
    span = max(f.xmax - f.xmin, 1e-12)
    sx = max(abs(f.xmin), abs(f.xmax), 1e-12)
    # A shift that keeps x + c positive on the data, for logs, roots and poles.
    shift = nice(1.0 if f.xmin >= 0 else 1.0 - f.xmin)
    rate = nice(f.semilog_slope) if f.semilog_slope else nice(-1.0 / sx)
    power = nice(f.loglog_slope) if f.loglog_slope else 0.5
    mid = nice(0.5 * (f.xmin + f.xmax))
    width = nice(4.0 / span)
    freqs = [nice(w) for w in f.frequencies[:2]]
    for w in (1.0, 2.0, nice(math.pi)):
        if all(abs(w - u) > 0.3 * w for u in freqs):
            freqs.append(w)
    per = 3.0 if f.periodic else 0.6
    sym_even = 1.6 if f.even else (0.6 if f.odd else 1.0)
    sym_odd = 1.6 if f.odd else (0.6 if f.even else 1.0)
    mono = 1.5 if f.monotone else 0.8
    spike = 3.0 if f.spiky else 0.7
    prims: list[Prim] = []

    def add(name: str, tokens: Template, weight: float, *tags: str) -> None:
        prims.append(Prim(name, tokens, weight, frozenset(tags)))

    add("x", ("x",), 1.5 * sym_odd, "odd", "poly")
    add("x2", ("x**2",), 1.5 * sym_even, "even", "poly")
    add("x3", ("x**3",), 1.0 * sym_odd, "odd", "poly")
    if f.x_positive:
        add("pow", ("x**", power), 2.5 if f.loglog_slope else 1.5, "power")
        add("log", ("np.log(x)",), 2.5 if f.ylogx_linear else 1.2, "log")
        add("invx", ("1/x",), 0.8, "rational")
    if f.x_nonnegative:
        add("sqrt", ("np.sqrt(x)",), 1.5, "root")
    add("sqrtshift", ("np.sqrt(x + ", shift, ")"), 0.8 * mono, "root")
    add("cbrt", ("np.cbrt(x)",), 0.6 * sym_odd, "root", "odd")
    # Distances and relativistic energies: sqrt(x**2 + c).
    add("hypot", ("np.sqrt(x**2 + ", 1.0, ")"), 0.8 * sym_even, "root", "even")
    add("logshift", ("np.log(x + ", shift, ")"), 1.2 * mono, "log")
    add("log1px2", ("np.log(x**2 + ", 1.0, ")"), 1.0 * sym_even, "log", "even")
    add("exp", ("np.exp(", rate, "*x)"), 2.5 if f.semilog_slope else 1.2, "exp")
    add("gauss", ("np.exp(-", width, "*(x - ", mid, ")**2)"), 1.0, "exp")
    add("expx2", ("np.exp(", -1.0, "*x**2)"), 0.8 * sym_even, "exp", "even")
    add("xexp", ("x*np.exp(", rate, "*x)"), 0.8, "exp")
    for w in freqs:
        add(f"sin{w}", ("np.sin(", w, "*x)"), per * sym_odd, "trig", "odd")
        add(f"cos{w}", ("np.cos(", w, "*x)"), per * sym_even, "trig", "even")
        add(f"sinph{w}", ("np.sin(", w, "*x + ", 0.5, ")"), per, "trig")
    # Oscillations that the sampling aliases (sin(x**2) on a grid of step 0.2) leave no
    # frequency to read off the data: only a start near the truth fits them.  Constants of
    # order one in the caller's units are the natural guess, besides those in the search's.
    units = [1.0] if abs(math.log10(x_unit)) < 0.5 else [1.0, x_unit]
    for u in units:
        tag = "" if u == 1.0 else "u"
        if u != 1.0:
            add(f"sin{tag}", ("np.sin(", u, "*x)"), per * sym_odd, "trig", "odd")
            add(f"cos{tag}", ("np.cos(", u, "*x)"), per * sym_even, "trig", "even")
        add(f"sinx2{tag}", ("np.sin(", u * u, "*x**2)"), 0.8 * sym_even, "trig", "even")
        add(f"cosx2{tag}", ("np.cos(", u * u, "*x**2)"), 0.6 * sym_even, "trig", "even")
        add(f"sinquad{tag}", ("np.sin(", u * u, "*x**2 + ", u, "*x)"), 0.7, "trig")
    add("expsin", ("np.exp(np.sin(", freqs[0], "*x))"), 0.5 * per, "trig", "exp")
    add("tanh", ("np.tanh(", width, "*(x - ", mid, "))"), 1.0 * mono, "sigmoid")
    add("sigmoid", ("1/(1 + np.exp(-", width, "*(x - ", mid, ")))"), 0.8 * mono, "sigmoid")
    add("arctan", ("np.arctan(", width, "*(x - ", mid, "))"), 0.6 * mono, "sigmoid")
    pole = nice(f.xmin - 0.5 * span)
    add("pole", ("1/(x - ", pole, ")"), 0.8 * spike, "rational")
    add("lorentz", ("1/(x**2 + ", 1.0, ")"), 0.8 * sym_even, "rational", "even")
    add("xlorentz", ("x/(x**2 + ", 1.0, ")"), 0.6 * sym_odd, "rational", "odd")
    return prims


@lru_cache(maxsize=4096)
def parse_cached(text: str) -> Ansatz:
    return parse_ansatz(text)


def column(tokens: Template, x: np.ndarray) -> np.ndarray | None:
    """Values of a term (without amplitude) at its starting parameters."""
    text, init = render(tokens)
    col = parse_cached(text)(x, init)
    return col if np.all(np.isfinite(col)) else None


def linear_start(
    terms: Sequence[Template], cols: Sequence[np.ndarray], y: np.ndarray, w: np.ndarray
) -> tuple[Template, float]:
    """``a_1*t_1 + ... + a_k*t_k + c`` with amplitudes from weighted least squares.

    Solving for the linear parameters at the terms' starting values is what a person
    does before a nonlinear fit; the residual also screens candidates cheaply.
    """
    a = np.column_stack([*cols, np.ones_like(y)]) * w[:, None]
    coef, *_ = np.linalg.lstsq(a, y * w, rcond=None)
    res = a @ coef - y * w
    toks: list[Token] = []
    for c, t in zip(coef[:-1], terms, strict=True):
        toks += [float(c), "*", *t, " + "]
    toks.append(float(coef[-1]))
    return tuple(toks), float(res @ res) / y.size
