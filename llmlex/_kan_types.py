"""Value types of the KAN edge stage: what an edge regressor receives and returns.

:class:`EdgeTask` (one edge's data and search options) goes to an edge regressor, which
returns an :class:`EdgeFit`; :func:`llmlex.kan.kan_to_symbolic` turns each into an
:class:`EdgeResult` and collects them in :class:`KANEdges`.  Below every other KAN module
(the edge checkpoint stores these types, the assembly reads them); numpy only at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmlex.fit import FitResult

if TYPE_CHECKING:
    import sympy

__all__ = [
    "DEFAULT_EXIT_CONDITION",
    "EDGE_PARSIMONY_RTOL",
    "EdgeFit",
    "EdgeRegressor",
    "EdgeResult",
    "EdgeStatus",
    "EdgeTask",
    "KANEdges",
    "Key",
    "TrainingReport",
    "TrainingRun",
]

#: Default per-edge exit condition (nchi2): edges reaching it stop being searched.
DEFAULT_EXIT_CONDITION = 1e-6
#: Relative tolerance of the parsimony rule when choosing an edge's formula: the spline
#: an edge is fitted to is itself approximate, so a simpler form within this factor of
#: the best nchi2 is preferred to an over-fitted one.
EDGE_PARSIMONY_RTOL = 1.0

EdgeStatus = Literal["fitted", "symbolic", "zero", "pruned"]
Key = tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class EdgeTask:
    """What an edge regressor receives: one edge's data and the search options."""

    key: Key
    x: np.ndarray
    y: np.ndarray
    client: Any
    gpt_model: str
    exit_condition: float
    population: int
    generations: int
    temperature: float
    seed: int
    parsimony_rtol: float = EDGE_PARSIMONY_RTOL
    #: Per-point sensitivity of the network's output to this edge, in units of the
    #: network's own RMS error (``None``: unknown); see
    #: :func:`llmlex._kan_edges.edge_weighted_error`.
    weights: np.ndarray | None = None
    #: False: the library of simple forms only, no offline or LLM search.
    search: bool = True
    #: Seconds an edge's searches may take (checked between generations); ``None``: no cap.
    time_budget: float | None = None
    #: Reply cache of the LLM calls (a :class:`~llmlex.cache.ReplyCache` or its directory).
    cache: Any = None


@dataclass(frozen=True, eq=False)
class EdgeFit:
    """What an edge regressor returns: the chosen fit, and others worth keeping."""

    fit: FitResult
    source: str
    llm_calls: int = 0
    llm_calls_saved: int = 0
    candidates: tuple[FitResult, ...] = ()


EdgeRegressor = Callable[[EdgeTask], EdgeFit]


@dataclass(frozen=True, eq=False)
class EdgeResult:
    """The univariate formula of one KAN edge ``(layer, i, j)`` (input node i -> output j).

    Attributes
    ----------
    layer, i, j : int
        Position of the edge.
    status : {"fitted", "symbolic", "zero", "pruned"}
        ``fitted``: regressed here; ``symbolic``: fixed symbolic in pykan (its own function
        is used); ``zero``: active but identically zero on the data; ``pruned``: masked out.
    expression : sympy.Expr
        The edge function in the symbol ``x`` (``0`` for zero and pruned edges).
    fit : FitResult or None
        The fitted ansatz of a ``fitted`` edge.
    source : str
        ``constant``, ``linear``, ``offline``, ``llm`` (which stage found it), ``pykan``
        for symbolic edges, ``none`` otherwise.
    nchi2 : float
        Score of the formula on the edge's data (0 for symbolic, zero and pruned edges).
    x_range : tuple of float
        Range of the edge's input on the data.
    llm_calls, llm_calls_saved : int
        LLM calls made for this edge, and calls not needed thanks to the cheap stages.
    time : float
        Wall time spent on the edge.
    alternatives : tuple of (FitResult, float)
        Simpler formulas than ``fit`` that were fitted to this edge, with their weighted
        errors (:func:`llmlex._kan_edges.edge_weighted_error`): from simplest (a constant)
        to ``fit``, each more accurate than the ones before.  Used to assemble simpler
        formulas.
    """

    layer: int
    i: int
    j: int
    status: EdgeStatus
    expression: sympy.Expr
    fit: FitResult | None = None
    source: str = "none"
    nchi2: float = 0.0
    x_range: tuple[float, float] = (0.0, 0.0)
    llm_calls: int = 0
    llm_calls_saved: int = 0
    time: float = 0.0
    evaluator: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    alternatives: tuple[tuple[FitResult, float], ...] = field(default=(), repr=False)

    @property
    def key(self) -> Key:
        """``(layer, i, j)``."""
        return (self.layer, self.i, self.j)

    @property
    def populations(self) -> list[list[FitResult]]:
        """The reference library's value of an edge: a list of populations in ascending
        score -- here one, the formulas fitted to the edge (the simpler alternatives and
        the fit); empty for an edge with none (zero, pruned or symbolic).

        An :class:`EdgeResult` also reads as this list (``edge[-1][-1]`` is the fit).
        """
        fits = [r for r, _ in self.alternatives] or ([self.fit] if self.fit is not None else [])
        return [sorted(fits, key=lambda r: r.score)] if fits else []

    def __iter__(self) -> Iterator[list[FitResult]]:
        return iter(self.populations)

    def __getitem__(self, k: int) -> list[FitResult]:
        return self.populations[k]

    def __len__(self) -> int:
        return len(self.populations)

    def __bool__(self) -> bool:  # an edge is a result even when it has no formula
        return True

    @property
    def active(self) -> bool:
        """Whether the edge contributes to the network's output."""
        return self.status in ("fitted", "symbolic")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Evaluate the edge function at ``x``, independently of :attr:`expression`.

        Fitted edges use the compiled ansatz, symbolic ones pykan's torch function, so that
        comparing with the assembled sympy formula checks the assembly.
        """
        x = np.asarray(x, dtype=float)
        if self.status in ("zero", "pruned"):
            return np.zeros_like(x)
        if self.fit is not None:
            with np.errstate(all="ignore"):
                return np.broadcast_to(self.fit.predict(x), x.shape).astype(float)
        if self.evaluator is not None:
            return self.evaluator(x)
        from llmlex._kan_sympy import evaluate
        from llmlex._symbolic import X

        return evaluate(self.expression, [X], x[:, None])

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary."""
        from llmlex._symbolic import sympy_to_text

        return {
            "key": self.key,
            "status": self.status,
            "expression": sympy_to_text(self.expression),
            "ansatz": self.fit.ansatz if self.fit is not None else None,
            "params": [float(v) for v in self.fit.params] if self.fit is not None else [],
            "source": self.source,
            "nchi2": self.nchi2,
            "x_range": self.x_range,
            "llm_calls": self.llm_calls,
            "llm_calls_saved": self.llm_calls_saved,
            "time": self.time,
        }


@dataclass(frozen=True, eq=False)
class KANEdges(Mapping[Key, EdgeResult]):
    """Mapping ``(layer, i, j) -> EdgeResult`` over every edge of a KAN, with totals.

    Attributes
    ----------
    edges : dict
        The edge results.
    llm_calls : int
        LLM calls made over all edges.
    llm_calls_saved : int
        LLM calls the cheap stages made unnecessary (0 without a client).
    time : float
        Wall time of the edge regression.
    """

    edges: Mapping[Key, EdgeResult]
    llm_calls: int = 0
    llm_calls_saved: int = 0
    time: float = 0.0

    def __getitem__(self, key: Key) -> EdgeResult:
        return self.edges[key]

    def __iter__(self) -> Iterator[Key]:
        return iter(self.edges)

    def __len__(self) -> int:
        return len(self.edges)

    def by_status(self, status: EdgeStatus) -> tuple[EdgeResult, ...]:
        """The edges with the given status, in key order."""
        return tuple(e for _, e in sorted(self.edges.items()) if e.status == status)


@dataclass(frozen=True)
class TrainingRun:
    """One training restart: its seed, final train/test RMSE and wall time.

    With error bars the RMSEs are weighted, ``sqrt(mean(w * r**2))`` with weights
    ``1/sigma**2`` normalised to mean 1 (the plain RMSE when all error bars are equal).
    A restart that failed inside pykan has infinite losses and says why in ``error``.
    """

    seed: int
    train_loss: float
    test_loss: float
    time: float
    error: str = ""


@dataclass(frozen=True)
class TrainingReport:
    """Outcome of :meth:`KANLEX.train_kan`.

    Attributes
    ----------
    runs : tuple of TrainingRun
        Every restart tried, in order.
    best_seed : int
        Seed of the model kept.
    best_test_loss : float
        Its test RMSE (after pruning if pruning was kept).
    pruned : bool
        Whether the kept model is the pruned one.
    time : float
        Total wall time.
    stop_reason : str
        ``all restarts run`` or ``time budget``.
    """

    runs: tuple[TrainingRun, ...]
    best_seed: int
    best_test_loss: float
    pruned: bool
    time: float
    stop_reason: str
