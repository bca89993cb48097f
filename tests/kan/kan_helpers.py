"""Shared helpers of the KAN tests: the torch/pykan guard, tiny networks, edge regressors.

Tests that need torch and pykan carry :func:`needs_kan` (the ``kan`` marker plus a skip
when either is missing); the others run without them.  The networks are tiny (a handful
of edges, grids of 3, a few hundred points) so that every file runs in seconds.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from llmlex.fit import fit_ansatz
from llmlex.kan import EdgeFit, EdgeTask


def _installed(name: str) -> bool:
    # A regular package, not the namespace package this test folder (tests/kan) would
    # pass for when pykan is absent and tests/ is on sys.path.
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


HAVE_KAN = _installed("torch") and _installed("kan")

if HAVE_KAN:
    import kan
    import torch
else:  # the tests that use them are skipped
    kan = torch = None  # type: ignore[assignment]

_skip_without_kan = pytest.mark.skipif(not HAVE_KAN, reason="needs torch and pykan (llmlex[kan])")


def needs_kan(test: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``test`` as a KAN test (``-m kan``) that is skipped without torch or pykan."""
    return pytest.mark.kan(_skip_without_kan(test))


def dataset(f, n_var=2, n=300, seed=0, lo=-1.0, hi=1.0):
    """Uniform training and test inputs with ``f``'s values: ``X, y, Xt, yt``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(lo, hi, size=(n, n_var))
    Xt = rng.uniform(lo, hi, size=(n // 2, n_var))
    return X, f(X), Xt, f(Xt)


def small_kan(width, **kw):
    """An untrained pykan KAN (grid 3, order 3, seed 0 unless given)."""
    kw.setdefault("grid", 3)
    kw.setdefault("k", 3)
    kw.setdefault("seed", 0)
    return kan.KAN(width=width, auto_save=False, **kw)


def network_function(model):
    """The network's own output 0 as a numpy function of ``X`` (float64)."""

    def f(X):
        with torch.no_grad():
            out = model(torch.tensor(X, dtype=torch.float32))
        return out.numpy()[:, 0].astype(float)

    return f


def symbolic_multkan():
    """A MultKAN with every edge fixed symbolic, non-trivial affine maps and a mult node."""
    model = small_kan([[2, 0], [1, 1], [1, 0]], symbolic_enabled=True, mult_arity=2)
    funs = {
        (0, 0, 0): ("sin", (1.3, 0.2, 0.7, -0.1)),
        (0, 1, 0): ("x^2", (0.9, 0.1, 1.1, 0.3)),
        (0, 0, 1): ("exp", (0.5, -0.2, 0.8, 0.05)),
        (0, 1, 1): ("x", (1.0, 0.0, 1.2, 0.4)),
        (0, 0, 2): ("cos", (0.7, 0.3, 1.5, 0.0)),
        (0, 1, 2): ("x^3", (0.6, 0.1, 0.9, 0.2)),
        (1, 0, 0): ("tanh", (0.8, 0.1, 2.0, -0.3)),
        (1, 1, 0): ("x", (1.0, 0.0, 0.7, 0.1)),
    }
    with torch.no_grad():
        for (layer, i, j), (name, affine) in funs.items():
            model.fix_symbolic(layer, i, j, name, fit_params_bool=False, verbose=False)
            model.symbolic_fun[layer].affine.data[j, i] = torch.tensor(affine)
        model.subnode_scale[0].data = torch.tensor([1.5, 0.8, -1.2])
        model.subnode_bias[0].data = torch.tensor([0.1, -0.2, 0.3])
        model.node_scale[0].data = torch.tensor([0.9, 1.3])
        model.node_bias[0].data = torch.tensor([-0.4, 0.2])
        model.subnode_scale[1].data = torch.tensor([1.1])
        model.subnode_bias[1].data = torch.tensor([0.05])
        model.node_scale[1].data = torch.tensor([2.0])
        model.node_bias[1].data = torch.tensor([-0.5])
    return model


def fixed_multkan(funs):
    """A [[2,0],[1,1],[1,0]] MultKAN whose edges are fixed symbolic: ``{key: (name, affine)}``.

    Edges not named are fixed to zero.
    """
    model = small_kan([[2, 0], [1, 1], [1, 0]], symbolic_enabled=True, mult_arity=2)
    keys = [(0, i, j) for i in range(2) for j in range(3)] + [(1, 0, 0), (1, 1, 0)]
    with torch.no_grad():
        for layer, i, j in keys:
            name, affine = funs.get((layer, i, j), ("0", (1.0, 0.0, 1.0, 0.0)))
            model.fix_symbolic(layer, i, j, name, fit_params_bool=False, verbose=False)
            model.symbolic_fun[layer].affine.data[j, i] = torch.tensor(affine)
    return model


def linear_regressor(task):
    """An edge regressor: the better of a line and a quadratic."""
    fits = [
        fit_ansatz(t, task.x, task.y, seed=task.seed)
        for t in ("params[0]*x + params[1]", "params[0]*x**2 + params[1]*x + params[2]")
    ]
    return EdgeFit(min(fits, key=lambda r: r.nchi2), "test")


def edge_task(x, y, **kw):
    """An :class:`EdgeTask` on ``(x, y)`` whose library never meets the exit condition."""
    opts = dict(
        key=(0, 0, 0),
        x=x,
        y=y,
        client=None,
        gpt_model="m",
        exit_condition=1e-20,  # unreachable: the library never stops the search itself
        population=2,
        generations=1,
        temperature=0.1,
        seed=0,
    )
    opts.update(kw)
    return EdgeTask(**opts)


class Interrupt(Exception):
    """Raised by :class:`Counting` to stand for an interruption."""


class Counting:
    """An edge regressor that records the edges it is asked for and may fail on the nth.

    Each edge reports two (pretend) paid LLM calls, so that totals can be checked.
    """

    def __init__(self, fail_at=None):
        self.keys = []
        self.fail_at = fail_at
        self._lock = threading.Lock()

    def __call__(self, task):
        with self._lock:
            self.keys.append(task.key)
            n = len(self.keys)
        if n == self.fail_at:
            raise Interrupt(f"edge {task.key}")
        fit = linear_regressor(task).fit
        const = fit_ansatz("params[0]", task.x, task.y, validate=False)
        return EdgeFit(fit, "test", llm_calls=2, llm_calls_saved=1, candidates=(const, fit))


def edge_summary(edges):
    """Everything of a KANEdges that must survive a checkpoint (not the wall times)."""
    return [
        (
            k,
            e.status,
            e.source,
            e.fit.ansatz if e.fit is not None else None,
            e.fit.params.tobytes() if e.fit is not None else None,
            e.nchi2,
            e.x_range,
            e.llm_calls,
            e.llm_calls_saved,
            e.expression,
            [(r.ansatz, r.params.tobytes(), err) for r, err in e.alternatives],
        )
        for k, e in edges.items()
    ]


def six_edges():
    """A [2, 2, 1] network (six edges, all regressed) and its inputs."""
    X = np.random.default_rng(5).uniform(-1, 1, size=(150, 2))
    return small_kan([2, 2, 1]), X
