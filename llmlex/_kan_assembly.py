"""A KAN's formula from its edges: exact sympy assembly and its numerical replica.

:func:`assemble_expressions` mirrors pykan 0.2.8's ``MultKAN.forward`` by substitution:
input selection, per-edge functions summed into subnodes, subnode scale and bias,
multiplication nodes, node scale and bias.  The same layer arithmetic
(:func:`layer_combine`) runs on numpy arrays in :func:`replica_forward`, fed either by the
edge formulas (:func:`edge_postacts`) or by the network's own splines
(:func:`llmlex._kan_torch.spline_postacts`): comparing the three checks the assembly
before anything is built on it.  :func:`output_sensitivity` differentiates the spline
replica, to weigh each edge's residual by its effect on the output.

Pure numpy and sympy (sympy imported where a formula is built); the network's parameters
come as floats from :mod:`llmlex._kan_torch`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._kan_torch import input_columns, layer_affines, spline_postacts
from llmlex._kan_types import EdgeResult, Key

if TYPE_CHECKING:
    import sympy

__all__ = [
    "ASSEMBLY_RTOL",
    "STRUCTURE_RTOL",
    "Postacts",
    "assemble_expressions",
    "edge_postacts",
    "layer_combine",
    "output_sensitivity",
    "rel_error",
    "replica_forward",
]

#: Assembled formula vs the numerical replica built from the same edge functions: both
#: are float64 evaluations of the same arithmetic, so anything beyond rounding is a bug.
ASSEMBLY_RTOL = 1e-7
#: Replica with pykan's own splines vs pykan's forward (float32 inside torch).
STRUCTURE_RTOL = 1e-3

#: ``post(layer, H) -> (n, out, in)``: every edge output of a layer on its inputs ``H``.
Postacts = Callable[[int, np.ndarray], np.ndarray]


def _mult_groups(model: Any, layer: int) -> list[list[int]]:
    """Subnode indices multiplied by each multiplication node of layer ``layer + 1``."""
    n_sum, n_mult = model.width[layer + 1]
    groups: list[list[int]] = []
    start = n_sum
    for k in range(n_mult):
        if isinstance(model.mult_arity, int):
            arity = model.mult_arity
        else:
            arity = int(model.mult_arity[layer + 1][k])
        groups.append(list(range(start, start + arity)))
        start += arity
    return groups


def _affine(v: Any, scale: float, bias: float) -> Any:
    import sympy

    is_sym = isinstance(v, sympy.Basic)
    if scale != 1.0:
        v = (sympy.Float(scale) if is_sym else scale) * v
    if bias != 0.0:
        v = v + (sympy.Float(bias) if is_sym else bias)
    return v


def layer_combine(model: Any, layer: int, sums: list[Any]) -> list[Any]:
    """Apply subnode affine, multiplication nodes and node affine to a layer's sums.

    Works on sympy expressions and numpy arrays alike; a scale of exactly 1 and a bias of
    exactly 0 are skipped so that formulas stay readable (same value either way).
    """
    sub_s, sub_b, node_s, node_b = layer_affines(model, layer)
    sub = [_affine(s, sub_s[j], sub_b[j]) for j, s in enumerate(sums)]
    n_sum = model.width[layer + 1][0]
    nodes = sub[:n_sum]
    for group in _mult_groups(model, layer):
        prod = sub[group[0]]
        for g in group[1:]:
            prod = prod * sub[g]
        nodes.append(prod)
    return [_affine(v, node_s[k], node_b[k]) for k, v in enumerate(nodes)]


def assemble_expressions(
    model: Any, edges: Mapping[Key, EdgeResult], variables: Sequence[sympy.Symbol]
) -> list[sympy.Expr]:
    """The network's output formulas, built by sympy symbol substitution.

    Mirrors pykan 0.2.8's ``MultKAN.forward``: input selection (``input_id``), per-edge
    functions summed into subnodes, subnode scale/bias, multiplication nodes, node
    scale/bias.

    Parameters
    ----------
    model : kan.MultKAN
        The network.
    edges : Mapping
        ``(layer, i, j) -> EdgeResult`` for every edge (inactive ones contribute nothing).
    variables : sequence of sympy.Symbol
        ``variables[k]`` is the symbol of input column ``k``.

    Returns
    -------
    list of sympy.Expr
        One formula per output.
    """
    import sympy

    from llmlex._symbolic import X

    current = [variables[k] for k in input_columns(model)]
    for layer in range(model.depth):
        sums: list[Any] = []
        for j in range(model.width_out[layer + 1]):
            s = sympy.Integer(0)
            for i in range(model.width_in[layer]):
                e = edges[(layer, i, j)]
                if e.active:
                    s = s + e.expression.xreplace({X: current[i]})
            sums.append(s)
        current = layer_combine(model, layer, sums)
    return current


def replica_forward(model: Any, X: np.ndarray, layer_postacts: Postacts) -> np.ndarray:
    """Numerical replica of the forward pass; ``layer_postacts(l, H) -> (n, out, in)``."""
    h = np.asarray(X, dtype=float)[:, input_columns(model)]
    for layer in range(model.depth):
        post = layer_postacts(layer, h)
        sums = [post[:, j, :].sum(axis=1) for j in range(model.width_out[layer + 1])]
        h = np.stack(layer_combine(model, layer, sums), axis=1)
    return h


def edge_postacts(model: Any, edges: Mapping[Key, EdgeResult]) -> Postacts:
    """Post-activations computed from the edge formulas (:meth:`EdgeResult.predict`)."""

    def post(layer: int, h: np.ndarray) -> np.ndarray:
        n_in, n_out = model.width_in[layer], model.width_out[layer + 1]
        out = np.zeros((h.shape[0], n_out, n_in))
        for i in range(n_in):
            for j in range(n_out):
                e = edges[(layer, i, j)]
                if e.active:
                    out[:, j, i] = e.predict(h[:, i])
        return out

    return post


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Max error relative to the scale of ``b`` (NaN in both counts as agreement)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both_nan = ~np.isfinite(a) & ~np.isfinite(b)
    if np.any(np.isfinite(a) != np.isfinite(b)):
        return math.inf
    diff = np.abs(np.where(both_nan, 0.0, a - b))
    scale = float(np.max(np.abs(np.where(both_nan, 0.0, b)))) if b.size else 0.0
    return float(np.max(diff)) / max(scale, 1e-300) if diff.size else 0.0


def output_sensitivity(
    model: Any, X: np.ndarray, Y: np.ndarray | None = None
) -> dict[tuple[int, int], np.ndarray]:
    """Per point, ``max_o |d out_o / d s| / rmse_o`` for every subnode sum ``s``.

    ``s`` is the sum of the edges ``(layer, *, j)``, so an edge's residual times this is
    its first-order effect on the outputs, in units of the network's RMS error ``rmse_o``
    on ``(X, Y)`` (without ``Y``: 1e-3 of each output's spread).  Central differences
    through the spline replica of the forward pass.

    Parameters
    ----------
    model : kan.MultKAN
        The network.
    X : ndarray
        Inputs, shape ``(n, n_var)``.
    Y : ndarray, optional
        Targets, shape ``(n, n_out)``.

    Returns
    -------
    dict
        ``(layer, j) -> (n,)`` array of sensitivities.
    """
    post = spline_postacts(model)

    def sums_of(layer: int, h: np.ndarray) -> list[np.ndarray]:
        p = post(layer, h)
        return [p[:, j, :].sum(axis=1) for j in range(model.width_out[layer + 1])]

    def propagate(layer: int, sums: list[np.ndarray]) -> np.ndarray:
        h = np.stack(layer_combine(model, layer, sums), axis=1)
        for nxt in range(layer + 1, model.depth):
            h = np.stack(layer_combine(model, nxt, sums_of(nxt, h)), axis=1)
        return h

    h = np.asarray(X, dtype=float)[:, input_columns(model)]
    layer_sums = []
    for layer in range(model.depth):
        sums = sums_of(layer, h)
        layer_sums.append(sums)
        h = np.stack(layer_combine(model, layer, sums), axis=1)
    out = h
    spread = np.std(out, axis=0) + np.mean(np.abs(out), axis=0)
    if Y is not None and Y.shape == out.shape:
        rmse = np.sqrt(np.mean((Y - out) ** 2, axis=0))
    else:
        rmse = 1e-3 * np.std(out, axis=0)
    rmse = np.maximum(rmse, 1e-9 * np.maximum(spread, 1e-300))
    sens: dict[tuple[int, int], np.ndarray] = {}
    for layer, sums in enumerate(layer_sums):
        for j, s in enumerate(sums):
            # float32 splines downstream: a step far above their rounding, far below
            # the scale on which they bend.
            d = 1e-3 * max(float(np.std(s) + np.mean(np.abs(s))), 1e-6)
            plus, minus = list(sums), list(sums)
            plus[j], minus[j] = s + d, s - d
            grad = (propagate(layer, plus) - propagate(layer, minus)) / (2 * d)
            sens[(layer, j)] = np.max(np.abs(grad) / rmse, axis=1)
    return sens
