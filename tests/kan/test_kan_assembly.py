"""llmlex._kan_assembly: the exact sympy assembly of a network and its checks."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from kan_helpers import needs_kan, symbolic_multkan, torch

from llmlex import _kan_sympy as ks
from llmlex.kan import (
    AssemblyError,
    EdgeResult,
    assemble_expressions,
    kan_to_symbolic,
    symbolic_from_edges,
)


@needs_kan
def test_assembly_reproduces_symbolic_multkan_forward():
    model = symbolic_multkan()
    X = np.random.default_rng(1).uniform(-1, 1, size=(200, 2))
    edges = kan_to_symbolic(model, None, x=X)
    assert {e.status for e in edges.values()} == {"symbolic"}
    assert len(edges) == 2 * 3 + 2 * 1  # (in x subnodes) per layer
    x0, x1 = sympy.symbols("x0 x1", real=True)
    (expr,) = assemble_expressions(model, edges, [x0, x1])
    with torch.no_grad():
        kan_out = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0]
    got = ks.evaluate(expr, [x0, x1], X)
    # torch runs in float32: agreement to its rounding, on a formula with a product node.
    np.testing.assert_allclose(got, kan_out, rtol=2e-5, atol=2e-5 * np.abs(kan_out).max())
    assert expr.has(sympy.tanh) and expr.has(sympy.exp)
    # Changing a node scale changes the network and the assembled formula alike.
    with torch.no_grad():
        model.node_scale[0].data[1] = 0.5
    (expr2,) = assemble_expressions(model, edges, [x0, x1])
    with torch.no_grad():
        kan_out2 = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0]
    assert not np.allclose(kan_out2, kan_out)
    np.testing.assert_allclose(ks.evaluate(expr2, [x0, x1], X), kan_out2, rtol=2e-5, atol=1e-4)


@needs_kan
def test_assembly_mismatch_raises():
    model = symbolic_multkan()
    X = np.random.default_rng(2).uniform(-1, 1, size=(100, 2))
    edges = dict(kan_to_symbolic(model, None, x=X))
    e = edges[(0, 0, 0)]
    # Same pykan evaluator, but a formula that is not the edge's: assembly must notice.
    edges[(0, 0, 0)] = EdgeResult(
        0, 0, 0, status="symbolic", expression=e.expression + 0.5, evaluator=e.evaluator
    )
    y = np.zeros(100)
    with pytest.raises(AssemblyError, match="replica"):
        symbolic_from_edges(model, edges, X, y + 1, X, y + 1, simplify_timeout=0)
