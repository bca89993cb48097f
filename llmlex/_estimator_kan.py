"""The estimator's KAN generator: whether a network is worth training, and the run.

:class:`KANOptions` holds the estimator's ``kan_*`` and search settings;
:func:`points_needed` says how many training points a network of those settings needs
(two per spline coefficient: with fewer it interpolates the points, noise included, and
its edges describe the noise at the cost of minutes of searches); :func:`run_kan` trains
it and regresses it under the estimator's time budget.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._forms import POLYNOMIAL_LIBRARY
from llmlex.kan import KANLEX, EdgeRegressor, regress_edge

if TYPE_CHECKING:
    from llmlex._kan_results import KANSymbolicResult

__all__ = ["POINTS_PER_COEFFICIENT", "KANOptions", "edge_regressor", "points_needed", "run_kan"]

#: Training points a network needs per spline coefficient.
POINTS_PER_COEFFICIENT = 2


@dataclass(frozen=True)
class KANOptions:
    """The estimator's settings of its KAN generator (see ``LLMLExRegressor``)."""

    client: Any
    model: str
    hidden: tuple[int, ...]
    grid: int
    k: int
    steps: int
    restarts: int
    search: bool
    simplify: bool
    prune: bool
    population: int
    generations: int
    temperature: float
    patience: int | None
    progress: bool

    def edges(self, n_in: int) -> int:
        """Edges of the network on ``n_in`` inputs and one output."""
        widths = [n_in, *self.hidden, 1]
        return sum(a * b for a, b in itertools.pairwise(widths))

    def coefficients(self, n_in: int) -> int:
        """Spline coefficients of the network: ``grid + k`` B-splines on each edge."""
        return self.edges(n_in) * (self.grid + self.k)


def points_needed(options: KANOptions, n_in: int) -> int:
    """Fewest training points for a network of ``options`` on ``n_in`` inputs."""
    return POINTS_PER_COEFFICIENT * options.coefficients(n_in)


def edge_regressor(
    *, search: bool, time_budget: float | None, patience: int | None
) -> EdgeRegressor:
    """Edge regressor of the KAN path: :func:`~llmlex.kan.regress_edge` with options.

    The polynomial forms up to the cubic first (``search=False`` keeps the best of them:
    the fastest mode, enough for smooth edges); with ``search=True`` the search runs on
    edges they leave unexplained (the offline proposer first, the language model only
    when a client is given and the offline search missed), bounded by ``time_budget``
    seconds and ``patience`` generations per edge.
    """
    return functools.partial(
        regress_edge,
        forms=POLYNOMIAL_LIBRARY,
        n_starts=2,
        search=search,
        time_budget=time_budget,
        patience=patience,
    )


def run_kan(
    options: KANOptions,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int,
    names: Sequence[str],
    sig_train: np.ndarray | None,
    sig_test: np.ndarray | None,
    *,
    budget: float | None,
    executor: concurrent.futures.Executor | None = None,
) -> KANSymbolicResult:
    """Train the KAN and regress it: its formula, as the KAN pipeline chose it.

    With a ``budget`` (seconds), half of it goes to training; each edge search gets a
    share of half of what is left, the structure tests, simplification and snapping a
    tenth each (at most 30 s), and the assembly's refits stop at the end.  Without one no
    step is bounded by the clock (each by its work), so that the same data and seed give
    the same formula under any load.
    """
    t0 = time.perf_counter()
    kl = KANLEX(
        options.client,
        [X_train.shape[1], *options.hidden, 1],
        grid=options.grid,
        k=options.k,
        seed=seed % (2**31),
        variable_names=list(names),
    )
    try:
        kl.set_dataset(X_train, y_train, X_test, y_test, sigma_train=sig_train, sigma_test=sig_test)
        kl.train_kan(
            steps=options.steps,
            n_restarts=max(1, options.restarts),
            warmup=min(100, max(1, options.steps)),
            prune=options.prune,
            time_budget=None if budget is None else 0.5 * budget,
            progress=options.progress,
        )
        n_edges = options.edges(X_train.shape[1])
        left = None if budget is None else max(0.0, budget - (time.perf_counter() - t0))
        edge_budget = None if left is None else max(0.05, 0.5 * left / max(1, n_edges))
        simplify: float | None = 0.0
        snap: float | None = 0.0
        separable: float | None = 0.0
        if options.simplify:
            simplify = None if left is None else min(10.0, 0.1 * left)
            snap = None if left is None else min(30.0, 0.1 * left)
            separable = None if left is None else min(30.0, 0.1 * left)
        kl.get_symbolic(
            options.client,
            population=options.population,
            generations=options.generations,
            temperature=options.temperature,
            gpt_model=options.model,
            verbose=0,
            simplify_timeout=simplify,
            snap_time=snap,
            separable=options.simplify,
            separable_time=separable,
            seed=seed,
            regressor=edge_regressor(
                search=options.search, time_budget=edge_budget, patience=options.patience
            ),
            executor=executor,
            time_budget=left,
            progress=options.progress,
        )
        assert kl.results is not None
        return kl.results[0]
    finally:
        del kl  # its temporary checkpoint directory goes with it
