"""Multivariate symbolic regression through Kolmogorov-Arnold networks (pykan).

A trained KAN is a sum-and-compose network of univariate edge functions.  This module

1. regresses every active edge as a univariate problem (:func:`kan_to_symbolic`), cheap
   first: a constant, a line, then the offline proposer, and the language model only for
   edges that still miss ``exit_condition``;
2. assembles the network's formula exactly with sympy -- node and subnode scales and
   biases, multiplication nodes, edges fixed symbolic in pykan -- and checks, before
   anything else, that the formula reproduces a numerical replica of the network built
   from the same edge functions, and that the replica with pykan's own splines reproduces
   the network's output (:func:`assemble_expressions`, :func:`symbolic_from_edges`);
3. simplifies without ever making the fit worse: formulas built from the network's
   structure (products, sums, invariant combinations: :mod:`llmlex._separable`, with the
   network as a surrogate of the data), sympy under a time limit, then (with a client) an
   LLM asked for equivalent simpler forms, parsed by a whitelist; each candidate is
   refitted on the original data and kept only if its held-out nchi2 stays within a
   tolerance of the raw formula's; constants are snapped to simple values on the same rule;
4. refits the constants of the chosen formula on the original data.

:class:`KANLEX` wraps training (several seeds within a time budget, best by test loss) and
the steps above behind the reference library's ``get_symbolic``.

torch and pykan are imported inside the functions that need them (``pip install
"llmlex[kan]"``); pykan's checkpoints always go to a temporary directory.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import logging
import math
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmlex._kan_results import Candidate, KANSymbolicResult
from llmlex.exceptions import (
    AssemblyError,
    DataError,
    MissingDependencyError,
    NoValidAnsatzError,
)
from llmlex.fit import FitResult, fit_ansatz, nchi2, r2

if TYPE_CHECKING:
    import os

    import sympy

__all__ = [
    "DEFAULT_EXIT_CONDITION",
    "KANLEX",
    "AssemblyError",
    "Candidate",
    "EdgeResult",
    "EdgeTask",
    "KANEdges",
    "KANSymbolicResult",
    "TrainingReport",
    "TrainingRun",
    "assemble_expressions",
    "extract_edges",
    "kan_to_symbolic",
    "regress_edge",
    "symbolic_from_edges",
]

log = logging.getLogger(__name__)

#: Default per-edge exit condition (nchi2): edges reaching it stop being searched.
DEFAULT_EXIT_CONDITION = 1e-6
#: Relative tolerance of the parsimony rule when choosing an edge's formula: the spline
#: an edge is fitted to is itself approximate, so a simpler form within this factor of
#: the best nchi2 is preferred to an over-fitted one.
EDGE_PARSIMONY_RTOL = 1.0
#: Simple edge forms fitted before any search (pykan's ``auto_symbolic`` library, with
#: outer scale and offset; inner affine maps only where a shift or frequency is natural).
EDGE_LIBRARY: tuple[tuple[str, str], ...] = (
    ("constant", "params[0]"),
    ("linear", "params[0]*x + params[1]"),
    ("library", "params[0]*x**2 + params[1]"),
    ("library", "params[0]*x**3 + params[1]"),
    ("library", "params[0]/x + params[1]"),
    ("library", "params[0]/x**2 + params[1]"),
    ("library", "params[0]*np.sqrt(x) + params[1]"),
    ("library", "params[0]*np.log(x) + params[1]"),
    ("library", "params[0]*np.exp(params[1]*x) + params[2]"),
    ("library", "params[0]*x**params[1] + params[2]"),
    ("quadratic", "params[0]*x**2 + params[1]*x + params[2]"),
    ("library", "params[0]/(x + params[1]) + params[2]"),
    ("library", "params[0]*np.sqrt(x + params[1]) + params[2]"),
    ("library", "params[0]*np.log(x + params[1]) + params[2]"),
    ("library", "params[0]*np.sin(params[1]*x + params[2]) + params[3]"),
    ("library", "params[0]*np.tanh(params[1]*x + params[2]) + params[3]"),
)
#: Error budgets swept when assembling simpler formulas: each edge takes its simplest
#: alternative whose effect on the output stays within this many times the network's own
#: RMS error (first-order: the edge's residual times the output's sensitivity to it).
EDGE_ERROR_BUDGETS: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)
# Separability is tested on the network only where its relative RMS error is below this.
_SURROGATE_MAX_ERROR = 0.05
# An edge with a library form within the network's own error needs no search.
_EDGE_SEARCH_SKIP = 1.0
# Seconds one candidate's constant refit may take (large raw formulas have dozens of
# constants; their refit starts from the network's values, which are already close).
_REFIT_TIME = 10.0
# Assembled formula vs the numerical replica built from the same edge functions: both are
# float64 evaluations of the same arithmetic, so anything beyond rounding is a bug.
_ASSEMBLY_RTOL = 1e-7
# Replica with pykan's own splines vs pykan's forward (float32 inside torch).
_STRUCTURE_RTOL = 1e-3

EdgeStatus = Literal["fitted", "symbolic", "zero", "pruned"]
Key = tuple[int, int, int]


def _import_kan() -> tuple[Any, Any]:
    """Import torch and pykan, or raise :class:`MissingDependencyError` naming the extra."""
    try:
        import torch
        from kan import MultKAN
    except ImportError as err:
        raise MissingDependencyError(
            f"KAN support needs torch and pykan ({err}); install them with "
            '`pip install "llmlex[kan]"`'
        ) from err
    return torch, MultKAN


def _seed_for(seed: int | None, *key: int) -> int:
    """A per-task seed derived from ``seed`` and a key, independent of scheduling order."""
    ss = np.random.SeedSequence([0 if seed is None else int(seed), *key])
    return int(ss.generate_state(1)[0])


# ----------------------------------------------------------------------------- edges


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
    #: network's own RMS error (``None``: unknown); see :func:`edge_weighted_error`.
    weights: np.ndarray | None = None
    #: False: the library of simple forms only, no offline or LLM search.
    search: bool = True
    #: Seconds an edge's searches may take (checked between generations); ``None``: no cap.
    time_budget: float | None = None


@dataclass(frozen=True, eq=False)
class EdgeFit:
    """What an edge regressor returns: the chosen fit, and others worth keeping."""

    fit: FitResult
    source: str
    llm_calls: int = 0
    llm_calls_saved: int = 0
    candidates: tuple[FitResult, ...] = ()


def edge_weighted_error(task: EdgeTask, fit: FitResult) -> float:
    """First-order effect on the network's output of replacing the edge by ``fit``.

    The RMS over the edge's points of ``weights * (fit(x) - y)``: in units of the
    network's own RMS error, so 1 means "as large as the network's error".  Without
    weights, the RMS residual relative to the edge's standard deviation.
    """
    with np.errstate(all="ignore"):
        r = np.broadcast_to(fit.predict(task.x), task.x.shape) - task.y
    if not np.all(np.isfinite(r)):
        return math.inf
    if task.weights is None:
        return float(np.sqrt(np.mean(r**2)) / max(float(np.std(task.y)), 1e-300))
    return float(np.sqrt(np.mean((task.weights * r) ** 2)))


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
        errors (:func:`edge_weighted_error`): from simplest (a constant) to ``fit``, each
        more accurate than the ones before.  Used to assemble simpler formulas.
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


def _masks(model: Any, layer: int, i: int, j: int) -> tuple[float, float]:
    """(numerical mask, symbolic mask) of an edge, as pykan's forward applies them."""
    mask_n = float(model.act_fun[layer].mask[i, j])
    mask_s = float(model.symbolic_fun[layer].mask[j, i]) if model.symbolic_enabled else 0.0
    return mask_n, mask_s


def _symbolic_edge(model: Any, layer: int, i: int, j: int, mask_s: float) -> sympy.Expr:
    """pykan's own formula ``mask*(c*f(a*x+b)+d)`` of a symbolic edge, in the symbol x."""
    import sympy

    from llmlex._symbolic import X

    sf = model.symbolic_fun[layer]
    a, b, c, d = (float(v) for v in sf.affine[j, i].detach().cpu())
    inner = sympy.Float(a) * X + sympy.Float(b)
    out = sympy.Float(c) * sympy.sympify(sf.funs_sympy[j][i](inner)) + sympy.Float(d)
    return out if mask_s == 1.0 else sympy.Float(mask_s) * out


def _symbolic_evaluator(model: Any, layer: int, i: int, j: int, mask_s: float) -> Callable:
    torch, _ = _import_kan()
    sf = model.symbolic_fun[layer]

    def evaluate(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
            a, b, c, d = sf.affine[j, i].detach().to(torch.float64)
            out = c * sf.funs[j][i](a * xt + b) + d
        return mask_s * out.numpy()

    return evaluate


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(float)


def extract_edges(
    model: Any, x: Any = None
) -> dict[Key, tuple[EdgeStatus, np.ndarray, np.ndarray, Any]]:
    """Inputs and outputs of every edge of ``model`` on the inputs ``x``.

    The training inputs are run through the model first, because pykan keeps only the
    activations of its *last* forward pass (often a test batch).

    Parameters
    ----------
    model : kan.MultKAN
        A trained pykan model.
    x : array_like or torch.Tensor, optional
        Inputs, shape ``(n, n_var)``; default: the model's cached last input.

    Returns
    -------
    dict
        ``(layer, i, j) -> (status, x_edge, y_edge, sympy_or_None)``: status ``fitted``
        (to be regressed), ``symbolic`` (with pykan's formula), ``zero`` or ``pruned``.
    """
    torch, _ = _import_kan()
    if x is None:
        if model.cache_data is None:
            raise ValueError("the model has not been run yet: pass the training inputs as x")
        xt = model.cache_data
        log.warning("no inputs given: using the model's last forward input")
    else:
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x)
        xt = xt.to(dtype=torch.get_default_dtype(), device=model.device)
    save_act = model.save_act
    model.save_act = True
    try:
        with torch.no_grad():
            model(xt)
    finally:
        model.save_act = save_act
    out: dict[Key, tuple[EdgeStatus, np.ndarray, np.ndarray, Any]] = {}
    for layer in range(model.depth):
        acts = _to_numpy(model.acts[layer])
        post = _to_numpy(model.spline_postacts[layer])
        for i in range(model.width_in[layer]):
            for j in range(model.width_out[layer + 1]):
                mask_n, mask_s = _masks(model, layer, i, j)
                xe, ye = acts[:, i], post[:, j, i]
                if mask_n == 0.0 and mask_s == 0.0:
                    out[(layer, i, j)] = ("pruned", xe, ye, None)
                elif mask_n == 0.0:
                    name = model.symbolic_fun[layer].funs_name[j][i]
                    if name == "0":
                        out[(layer, i, j)] = ("zero", xe, ye, None)
                    else:
                        sym = _symbolic_edge(model, layer, i, j, mask_s)
                        out[(layer, i, j)] = ("symbolic", xe, ye, sym)
                elif not np.any(np.abs(ye) > 1e-12 * max(1.0, float(np.max(np.abs(acts))))):
                    out[(layer, i, j)] = ("zero", xe, ye, None)
                else:
                    out[(layer, i, j)] = ("fitted", xe, ye, None)
    return out


def _prefer_simple(
    cands: Sequence[tuple[str, FitResult]], rtol: float, good_enough: float
) -> tuple[str, FitResult]:
    """Simplest candidate within ``rtol`` of the lowest nchi2, or at most ``good_enough``.

    An edge is a spline that only approximates the true function: below the network's
    own error level, a better nchi2 is fitting the spline's wiggles, not the function.
    """
    ok = [c for c in cands if c[1].success and math.isfinite(c[1].nchi2)]
    if not ok:
        return cands[0]
    lowest = min(c[1].nchi2 for c in ok)
    level = max(lowest * (1.0 + rtol), good_enough, 1e-20)
    near = [c for c in ok if c[1].nchi2 <= level]
    return min(near, key=lambda c: (c[1].complexity, c[1].nchi2))


def regress_edge(task: EdgeTask) -> EdgeFit:
    """Default edge regressor: a library of simple forms, the offline proposer, the LLM.

    The simple forms of :data:`EDGE_LIBRARY` (constant, line, powers, roots, log, exp,
    sine, ...) are all fitted: they are cheap, and they are the alternatives the assembly
    later trades accuracy for simplicity with.  The offline search runs only if none of
    them reaches ``task.exit_condition`` and none is well inside the network's own error
    (weighted by the output's sensitivity to the edge); the language model is asked only
    when a client is given and the offline search missed the exit condition too.
    """
    from llmlex.genetic import run_genetic

    cands: list[tuple[str, FitResult]] = []
    for source, text in EDGE_LIBRARY:
        r = fit_ansatz(text, task.x, task.y, seed=task.seed, validate=False, n_starts=4)
        cands.append((source, r))
    fits = tuple(r for _, r in cands)
    source, best = _prefer_simple(cands, task.parsimony_rtol, task.exit_condition)
    saved = task.population * task.generations if task.client is not None else 0
    if (
        not task.search
        or best.nchi2 <= task.exit_condition
        or (
            task.weights is not None
            and min(edge_weighted_error(task, r) for r in fits) <= _EDGE_SEARCH_SKIP
        )
    ):
        return EdgeFit(best, source, 0, saved, fits)
    options = {
        "population_size": task.population,
        "num_of_generations": task.generations,
        "temperature": task.temperature,
        "exit_condition": task.exit_condition,
        "seed": task.seed,
        "progress": False,
        "parsimony_rtol": task.parsimony_rtol,
    }
    deadline = None if task.time_budget is None else time.perf_counter() + task.time_budget
    try:
        # The offline proposer hands over parameters it has already optimised: two starts
        # (those, and all ones) refit them; more would triple an edge's cost for nothing.
        run = run_genetic(
            None, None, task.x, task.y, time_budget=task.time_budget, fit_starts=2, **options
        )
        cands.extend(("offline", r) for r in run.archive[:20])
    except (DataError, NoValidAnsatzError) as err:  # the cheap fits still stand
        log.info("edge %s: offline search gave nothing (%s)", task.key, err)
    source, best = _prefer_simple(cands, task.parsimony_rtol, task.exit_condition)
    fits = tuple(r for _, r in cands)
    if task.client is None:
        return EdgeFit(best, source, candidates=fits)
    if best.nchi2 <= task.exit_condition:
        return EdgeFit(best, source, 0, saved, fits)
    left = None if deadline is None else max(1.0, deadline - time.perf_counter())
    try:
        llm_run = run_genetic(
            task.client, None, task.x, task.y, model=task.gpt_model, time_budget=left, **options
        )
    except NoValidAnsatzError as err:  # bad replies cost only this edge's LLM stage;
        # authentication and connection errors propagate: they would hit every edge.
        log.warning("edge %s: the LLM gave no usable ansatz (%s)", task.key, err)
        # The run's own call count is lost with the exception: report the upper bound.
        return EdgeFit(best, source, task.population * task.generations, 0, fits)
    cands.extend(("llm", r) for r in llm_run.archive[:20])
    source, best = _prefer_simple(cands, task.parsimony_rtol, task.exit_condition)
    fits = tuple(r for _, r in cands)
    return EdgeFit(best, source, llm_run.stats.calls, llm_run.stats.llm_calls_saved, fits)


def _alternatives(
    task: EdgeTask, chosen: FitResult, candidates: Sequence[FitResult]
) -> tuple[tuple[FitResult, float], ...]:
    """Pareto front (complexity vs weighted error) of an edge's fits, simplest first.

    Only fits simpler than the chosen one; the chosen one closes the list.
    """
    scored = []
    for r in candidates:
        if r is chosen or not r.success or r.complexity >= chosen.complexity:
            continue
        err = edge_weighted_error(task, r)
        if math.isfinite(err):
            scored.append((r.complexity, err, r))
    scored.sort(key=lambda t: (t[0], t[1]))
    front: list[tuple[FitResult, float]] = []
    for _, err, r in scored:
        if not front or err < front[-1][1]:
            front.append((r, err))
    chosen_err = edge_weighted_error(task, chosen)
    front = [(r, e) for r, e in front if e > chosen_err]
    return (*front, (chosen, chosen_err))


def kan_to_symbolic(
    model: Any,
    client: Any = None,
    gpt_model: str = "openai/gpt-4o",
    exit_condition: float | None = DEFAULT_EXIT_CONDITION,
    population: int = 10,
    generations: int = 3,
    temperature: float = 0.1,
    use_async: bool = True,
    *,
    x: Any = None,
    y: Any = None,
    seed: int | None = 0,
    max_points: int = 500,
    max_concurrency: int = 4,
    parsimony_rtol: float = EDGE_PARSIMONY_RTOL,
    regressor: EdgeRegressor | None = None,
    verbose: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = True,
    search: bool = True,
    edge_time_budget: float | None = None,
    **reference_options: Any,
) -> KANEdges:
    """Regress every active edge of a trained pykan KAN as a univariate problem.

    Parameters
    ----------
    model : kan.MultKAN
        The trained network (``KAN`` is ``MultKAN`` in pykan 0.2.8).
    client : openai client or None
        ``None`` runs offline; with a client the LLM is asked only for edges that the
        constant, the line and the offline proposer leave above ``exit_condition``.
    gpt_model : str
        Model name for the LLM.
    exit_condition : float or None
        nchi2 at which an edge counts as solved (``None``: the default).
    population, generations, temperature : int, int, float
        Genetic-search settings per edge.
    use_async : bool
        Regress edges concurrently (True) or one after another.
    x : array_like, optional
        The training inputs (recommended; default: the model's last forward input).
    y : array_like, optional
        The training targets, shape ``(n,)`` or ``(n, n_out)``: they set the network's own
        error level, the unit in which each edge's simpler alternatives are judged
        (default: 1e-3 of each output's standard deviation).
    seed : int or None
        Base seed; each edge gets its own seed derived from it and its key.
    max_points : int
        Most points per edge regression (a seeded subsample).
    max_concurrency : int
        Edges regressed at once.
    parsimony_rtol : float
        A simpler edge formula within this relative nchi2 of the best is preferred.
    regressor : callable, optional
        ``EdgeTask -> EdgeFit``, replacing :func:`regress_edge`.
    verbose : int
        Log edge formulas at INFO level when positive.
    checkpoint : str or path-like, optional
        A JSON file every finished edge is written to as soon as it is done (atomically:
        a temporary file then :func:`os.replace`; no pickle): its fitted ansatz and
        parameters, score, source, LLM calls made and saved.  If the file exists when
        the call starts, the call *resumes* from it: edges already recorded are loaded,
        not regressed again (their LLM calls are not repeated), and only the others run;
        after an interruption (even ``kill -9``) at most the edges in flight are lost.
        A finished checkpoint returns the same edges with no work.  The file also holds
        a fingerprint of the problem: a hash of the inputs ``x``, every edge's function
        at a few points (compared to a relative 1e-4: the same network re-evaluated in
        another process may differ in the last float32 bit, a retrained one differs far
        more) and the options that shape the results (``exit_condition``,
        ``population``, ``generations``, ``temperature``, ``seed``, ``gpt_model``,
        ``parsimony_rtol``, ``max_points``, offline or with a client, default or custom
        ``regressor``).  A checkpoint of another network, other data or other options
        raises :class:`~llmlex.persist.CheckpointError` and is left untouched, as is a
        damaged one.
    resume : bool
        False starts afresh and overwrites ``checkpoint``.
    search : bool
        False fits the library of simple forms only (no offline search, no LLM call):
        enough when the formula comes from elsewhere, e.g. a separable form.
    edge_time_budget : float, optional
        Seconds each edge's searches may take (checked between generations: a generation
        under way finishes); ``None``: no limit.
    **reference_options
        Accepted for compatibility with the reference library (``plot_fit``,
        ``plot_parents``, ``demonstrate_parent_plotting``, ``constant_on_failure``); plots
        are not drawn.

    Returns
    -------
    KANEdges
        ``(layer, i, j) -> EdgeResult`` with totals of LLM calls made and saved (over
        every session of a resumed checkpoint).

    Raises
    ------
    llmlex.persist.CheckpointError
        If ``checkpoint`` is damaged or belongs to another network, data or options.
    """
    _check_reference_options(reference_options, "kan_to_symbolic")
    t0 = time.perf_counter()
    exit_condition = DEFAULT_EXIT_CONDITION if exit_condition is None else float(exit_condition)
    regress = regressor if regressor is not None else regress_edge
    raw = extract_edges(model, x)
    inputs = _to_numpy(model.cache_data) if x is None else _as_2d(x)
    sensitivity = _output_sensitivity(model, inputs, None if y is None else _as_2d(y))
    results: dict[Key, EdgeResult] = {}
    tasks: list[EdgeTask] = []
    for key, (status, xe, ye, sym) in raw.items():
        rng_range = (float(np.min(xe)), float(np.max(xe))) if xe.size else (0.0, 0.0)
        if status == "fitted":
            idx = np.arange(xe.size)
            if xe.size > max_points:
                rng = np.random.default_rng(_seed_for(seed, *key, 1))
                idx = np.sort(rng.choice(xe.size, max_points, replace=False))
            tasks.append(
                EdgeTask(
                    key=key,
                    x=xe[idx].astype(float),
                    y=ye[idx].astype(float),
                    client=client,
                    gpt_model=gpt_model,
                    exit_condition=exit_condition,
                    population=population,
                    generations=generations,
                    temperature=temperature,
                    seed=_seed_for(seed, *key),
                    parsimony_rtol=parsimony_rtol,
                    weights=sensitivity[(key[0], key[2])][idx],
                    search=bool(search),
                    time_budget=None if edge_time_budget is None else float(edge_time_budget),
                )
            )
        else:
            import sympy

            ev = None
            if status == "symbolic":
                mask_s = _masks(model, *key)[1]
                ev = _symbolic_evaluator(model, *key, mask_s)
            results[key] = EdgeResult(
                *key,
                status=status,
                expression=sym if sym is not None else sympy.Integer(0),
                source="pykan" if status == "symbolic" else "none",
                x_range=rng_range,
                evaluator=ev,
            )

    store = None
    if checkpoint is not None:
        options = {
            "exit_condition": exit_condition,
            "population": int(population),
            "generations": int(generations),
            "temperature": float(temperature),
            "seed": None if seed is None else int(seed),
            "gpt_model": str(gpt_model),
            "parsimony_rtol": float(parsimony_rtol),
            "max_points": int(max_points),
            "client": "offline" if client is None else "llm",
            "regressor": "default" if regressor is None else "custom",
            "search": bool(search),
        }
        inputs = _as_float_array(x if x is not None else model.cache_data)
        store = _EdgeCheckpoint(checkpoint, inputs, tasks, options, resume=resume)
        results.update(store.done)
        tasks = [t for t in tasks if t.key not in store.done]

    def run_one(task: EdgeTask) -> EdgeResult:
        t = time.perf_counter()
        ef = regress(task)
        res = EdgeResult(
            *task.key,
            status="fitted",
            expression=ef.fit.expression,
            fit=ef.fit,
            source=ef.source,
            nchi2=float(ef.fit.nchi2),
            x_range=(float(np.min(task.x)), float(np.max(task.x))),
            llm_calls=ef.llm_calls,
            llm_calls_saved=ef.llm_calls_saved,
            time=time.perf_counter() - t,
            alternatives=_alternatives(task, ef.fit, ef.candidates),
        )
        if store is not None:
            store.record(res, time.perf_counter() - t0)
        if verbose:
            log.info(
                "edge %s: %s (nchi2 %.3g, %s)", task.key, ef.fit.formula(), res.nchi2, res.source
            )
        return res

    if use_async and len(tasks) > 1:
        # Threads: the offline fits are numpy-bound and the LLM calls network-bound; each
        # task carries its own seed, so the result does not depend on scheduling.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_concurrency))
        try:
            for res in pool.map(run_one, tasks):
                results[res.key] = res
        except BaseException:
            # An edge failed or the caller interrupted: start no further edge; those in
            # flight finish (and are checkpointed) before the error propagates.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    else:
        for task in tasks:
            res = run_one(task)
            results[res.key] = res
    elapsed = time.perf_counter() - t0
    if store is not None:
        elapsed = store.finish(elapsed)
    ordered = {k: results[k] for k in sorted(results)}
    return KANEdges(
        edges=ordered,
        llm_calls=sum(e.llm_calls for e in ordered.values()),
        llm_calls_saved=sum(e.llm_calls_saved for e in ordered.values()),
        time=elapsed,
    )


_REFERENCE_OPTIONS = (
    "plot_fit",
    "plot_parents",
    "demonstrate_parent_plotting",
    "constant_on_failure",
)


def _check_reference_options(options: Mapping[str, Any], func: str) -> None:
    import difflib

    for name in options:
        if name not in _REFERENCE_OPTIONS:
            near = difflib.get_close_matches(name, _REFERENCE_OPTIONS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise TypeError(f"{func}() got an unexpected keyword argument {name!r}{hint}")


# ----------------------------------------------------------------------------- checkpoints

#: Document kind of the checkpoints written by ``kan_to_symbolic(..., checkpoint=path)``.
EDGES_CHECKPOINT_KIND = "kan_edges_checkpoint"


def _key_text(key: Key) -> str:
    return ",".join(str(v) for v in key)


def _edge_to_dict(edge: EdgeResult) -> dict[str, Any]:
    """A regressed edge as JSON-able values (its expression is rebuilt from the fit)."""
    from llmlex.persist import encode_float, fit_result_to_dict

    if edge.fit is None:
        raise ValueError(f"edge {edge.key} has no fit to checkpoint")
    return {
        "key": list(edge.key),
        "status": edge.status,
        "fit": fit_result_to_dict(edge.fit),
        "source": edge.source,
        "nchi2": encode_float(edge.nchi2),
        "x_range": [encode_float(v) for v in edge.x_range],
        "llm_calls": int(edge.llm_calls),
        "llm_calls_saved": int(edge.llm_calls_saved),
        "time": encode_float(edge.time),
        # Simpler alternatives (the last is the fit itself), for the assembly's budgets.
        "alternatives": [
            [fit_result_to_dict(r), encode_float(err)] for r, err in edge.alternatives[:-1]
        ]
        + ([[None, encode_float(edge.alternatives[-1][1])]] if edge.alternatives else []),
    }


def _count(value: Any, name: str) -> int:
    from llmlex.persist import PersistError

    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PersistError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _edge_from_dict(data: Mapping[str, Any]) -> EdgeResult:
    """Inverse of :func:`_edge_to_dict`; raises PersistError if the entry is damaged."""
    from llmlex.persist import PersistError, decode_float, fit_result_from_dict

    try:
        raw_key = data["key"]
        if not isinstance(raw_key, list) or len(raw_key) != 3:
            raise PersistError(f"an edge key must be [layer, i, j], got {raw_key!r}")
        layer, i, j = (_count(v, "an edge key entry") for v in raw_key)
        if data["status"] != "fitted":
            raise PersistError(f"edge {raw_key}: status {data['status']!r} is not 'fitted'")
        fit = fit_result_from_dict(data["fit"])
        lo, hi = (decode_float(v) for v in data["x_range"])
        alternatives = tuple(
            (fit if d is None else fit_result_from_dict(d), decode_float(err))
            for d, err in data.get("alternatives", [])
        )
        return EdgeResult(
            layer,
            i,
            j,
            status="fitted",
            expression=fit.expression,
            fit=fit,
            source=str(data["source"]),
            nchi2=decode_float(data["nchi2"]),
            x_range=(lo, hi),
            llm_calls=_count(data["llm_calls"], "llm_calls"),
            llm_calls_saved=_count(data["llm_calls_saved"], "llm_calls_saved"),
            time=decode_float(data["time"]),
            alternatives=alternatives,
        )
    except KeyError as err:
        raise PersistError(f"a stored edge lacks the field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, PersistError):
            raise
        raise PersistError(f"a stored edge is malformed: {err}") from None


# A checkpoint stores, per edge, the edge function at a few points spread over its input
# range.  The same network evaluated again (in another process, say) may differ in the
# last bit of float32 arithmetic, so these are compared to a tolerance; a retrained or
# edited network differs by far more.
_CHECK_POINTS = 33
_CHECK_RTOL = 1e-4


def _as_float_array(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


def _edge_sample(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """An edge's size and its function at up to ``_CHECK_POINTS`` points spread over x."""
    from llmlex.persist import encode_float

    n = int(x.size)
    order = np.argsort(x, kind="stable")
    picks = np.unique(np.linspace(0, n - 1, min(n, _CHECK_POINTS)).round().astype(int))
    idx = order[picks] if n else picks
    return {
        "n": n,
        "x": [encode_float(v) for v in x[idx]],
        "y": [encode_float(v) for v in y[idx]],
    }


def _samples_close(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two :func:`_edge_sample` records describe the same edge function."""
    from llmlex.persist import decode_float

    if _count(old["n"], "an edge's size") != new["n"]:
        return False
    for name in ("x", "y"):
        a = np.array([decode_float(v) for v in old[name]])
        b = np.array([decode_float(v) for v in new[name]])
        if a.shape != b.shape:
            return False
        scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-12)
        if not np.all(np.abs(a - b) <= _CHECK_RTOL * scale):  # nan fails too
            return False
    return True


def _edges_mismatch(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """Why a checkpoint's fingerprint differs from this call's, or None if it does not.

    Raises KeyError, TypeError or ValueError if the saved fingerprint is malformed.
    """
    if saved["data"]["inputs"] != now["data"]["inputs"]:
        return "different data: the inputs x differ"
    old_edges, new_edges = saved["data"]["edges"], now["data"]["edges"]
    if set(old_edges) != set(new_edges):
        was, then = sorted(old_edges), sorted(new_edges)
        return f"a different network: the edges regressed were {was}, now {then}"
    changed = [k for k in sorted(new_edges) if not _samples_close(old_edges[k], new_edges[k])]
    if changed:
        shown = ", ".join(f"({k})" for k in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        return f"a different network: the function of edge(s) {shown}{more} differs"
    # Checkpoints written before the ``search`` option existed always searched.
    old, new = {"search": True, **saved["options"]}, now["options"]
    diff = [k for k in sorted(set(old) | set(new)) if not _same_option(old.get(k), new.get(k))]
    if diff:
        return "different options: " + "; ".join(
            f"{k} was {old.get(k)!r}, now {new.get(k)!r}" for k in diff
        )
    return None


def _same_option(a: Any, b: Any) -> bool:
    """Options match exactly, except floats: KANLEX derives ``exit_condition`` from the
    network's own error, which may differ in the last bits when evaluated elsewhere."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=_CHECK_RTOL)
    return bool(a == b) and type(a) is type(b)


class _EdgeCheckpoint:
    """The checkpoint file of one :func:`kan_to_symbolic` call.

    Loads the edges a previous session finished (after checking that the file belongs
    to this network, data and options) and records each new edge as soon as it is done.
    :meth:`record` is called from the worker threads: a lock serialises the writes, so
    the file always holds every edge finished so far.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        inputs: np.ndarray,
        tasks: Sequence[EdgeTask],
        options: Mapping[str, Any],
        *,
        resume: bool,
    ) -> None:
        import hashlib
        import threading
        from pathlib import Path

        self.path = Path(path)
        self.total = len(tasks)
        digest = hashlib.sha256(str(inputs.shape).encode())
        digest.update(np.ascontiguousarray(inputs, dtype=float).tobytes())
        self.fingerprint: dict[str, Any] = {
            "data": {
                "inputs": digest.hexdigest(),
                "edges": {_key_text(t.key): _edge_sample(t.x, t.y) for t in tasks},
            },
            "options": dict(options),
        }
        self.done: dict[Key, EdgeResult] = {}
        self.prior_time = 0.0
        self.loaded = False
        self.writes = 0
        self.lock = threading.Lock()
        if resume and self.path.exists():
            self._load()

    def _damaged(self, why: Any) -> Exception:
        from llmlex.persist import CheckpointError

        return CheckpointError(
            f"cannot resume from {str(self.path)!r}: {why}. It was left untouched; pass "
            "resume=False to start afresh and overwrite it, or another checkpoint path."
        )

    def _load(self) -> None:
        import json

        from llmlex.persist import CheckpointError, PersistError, check_envelope, decode_float

        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            check_envelope(doc, (EDGES_CHECKPOINT_KIND,))
            for name in ("data", "options"):
                if not isinstance(doc.get(name), dict):
                    raise PersistError(f"the field {name!r} is missing or not an object")
            if not isinstance(doc.get("edges"), list):
                raise PersistError("the field 'edges' is missing or not a list")
            why = _edges_mismatch(doc, self.fingerprint)
        except (ValueError, OSError) as err:  # PersistError is a ValueError
            raise self._damaged(err) from None
        except (KeyError, TypeError) as err:
            raise self._damaged(f"its fingerprint is malformed ({err!r})") from None
        if why is not None:
            raise CheckpointError(
                f"the checkpoint {str(self.path)!r} belongs to another KAN regression "
                f"({why}); it was left untouched. Pass resume=False to overwrite it, or "
                "another checkpoint path."
            )
        try:
            for entry in doc["edges"]:
                if not isinstance(entry, dict):
                    raise PersistError(f"a stored edge is not an object: {entry!r}")
                edge = _edge_from_dict(entry)
                if _key_text(edge.key) not in self.fingerprint["data"]["edges"]:
                    raise PersistError(f"edge {edge.key} is not among the network's edges")
                if edge.key in self.done:
                    raise PersistError(f"edge {edge.key} is stored twice")
                self.done[edge.key] = edge
            self.prior_time = decode_float(doc.get("time", 0.0))
        except (ValueError, TypeError) as err:
            self.done.clear()
            raise self._damaged(err) from None
        self.loaded = True
        log.info(
            "resuming from %s: %d of %d edge(s) already done, %d LLM call(s) already made",
            self.path,
            len(self.done),
            self.total,
            sum(e.llm_calls for e in self.done.values()),
        )

    def _write(self, elapsed: float) -> None:
        import json

        from llmlex.persist import encode_float, envelope, write_atomic

        edges = [self.done[k] for k in sorted(self.done)]
        body = {
            **self.fingerprint,
            "finished": len(self.done) == self.total,
            "n_edges": self.total,
            "llm_calls": sum(e.llm_calls for e in edges),
            "llm_calls_saved": sum(e.llm_calls_saved for e in edges),
            "time": encode_float(self.prior_time + elapsed),
            "edges": [_edge_to_dict(e) for e in edges],
        }
        doc = envelope(EDGES_CHECKPOINT_KIND, body)
        write_atomic(self.path, json.dumps(doc, indent=1, allow_nan=False))
        self.writes += 1

    def record(self, edge: EdgeResult, elapsed: float) -> None:
        """Add a finished edge and rewrite the file (``elapsed``: this session's time)."""
        with self.lock:
            self.done[edge.key] = edge
            self._write(elapsed)

    def finish(self, elapsed: float) -> float:
        """Make sure the file exists; return the wall time over every session."""
        with self.lock:
            if self.writes == 0 and not self.loaded:
                self._write(elapsed)
        return self.prior_time + elapsed


# ----------------------------------------------------------------------------- assembly


def _fvals(t: Any) -> list[float]:
    return [float(v) for v in t.detach().cpu().reshape(-1)]


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


def _layer_combine(model: Any, layer: int, sums: list[Any]) -> list[Any]:
    """Apply subnode affine, multiplication nodes and node affine to a layer's sums.

    Works on sympy expressions and numpy arrays alike; a scale of exactly 1 and a bias of
    exactly 0 are skipped so that formulas stay readable (same value either way).
    """
    sub_s, sub_b = _fvals(model.subnode_scale[layer]), _fvals(model.subnode_bias[layer])
    node_s, node_b = _fvals(model.node_scale[layer]), _fvals(model.node_bias[layer])
    sub = [_affine(s, sub_s[j], sub_b[j]) for j, s in enumerate(sums)]
    n_sum = model.width[layer + 1][0]
    nodes = sub[:n_sum]
    for group in _mult_groups(model, layer):
        prod = sub[group[0]]
        for g in group[1:]:
            prod = prod * sub[g]
        nodes.append(prod)
    return [_affine(v, node_s[k], node_b[k]) for k, v in enumerate(nodes)]


def _affine(v: Any, scale: float, bias: float) -> Any:
    import sympy

    is_sym = isinstance(v, sympy.Basic)
    if scale != 1.0:
        v = (sympy.Float(scale) if is_sym else scale) * v
    if bias != 0.0:
        v = v + (sympy.Float(bias) if is_sym else bias)
    return v


def assemble_expressions(
    model: Any, edges: Mapping[Key, EdgeResult], variables: Sequence[sympy.Symbol]
) -> list[sympy.Expr]:
    """The network's output formulas, built by sympy symbol substitution.

    Mirrors pykan 0.2.8's ``MultKAN.forward``: input selection (``input_id``), per-edge
    functions summed into subnodes, subnode scale/bias, multiplication nodes, node
    scale/bias.  ``variables[k]`` is the symbol of input column ``k``.
    """
    import sympy

    from llmlex._symbolic import X

    current = [variables[int(k)] for k in model.input_id]
    for layer in range(model.depth):
        sums: list[Any] = []
        for j in range(model.width_out[layer + 1]):
            s = sympy.Integer(0)
            for i in range(model.width_in[layer]):
                e = edges[(layer, i, j)]
                if e.active:
                    s = s + e.expression.xreplace({X: current[i]})
            sums.append(s)
        current = _layer_combine(model, layer, sums)
    return current


def _replica_forward(
    model: Any, X: np.ndarray, layer_postacts: Callable[[int, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Numerical replica of the forward pass; ``layer_postacts(l, H) -> (n, out, in)``."""
    h = np.asarray(X, dtype=float)[:, [int(k) for k in model.input_id]]
    for layer in range(model.depth):
        post = layer_postacts(layer, h)
        sums = [post[:, j, :].sum(axis=1) for j in range(model.width_out[layer + 1])]
        h = np.stack(_layer_combine(model, layer, sums), axis=1)
    return h


def _edge_postacts(model: Any, edges: Mapping[Key, EdgeResult]) -> Callable:
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


def _spline_postacts(model: Any) -> Callable:
    torch, _ = _import_kan()

    def post(layer: int, h: np.ndarray) -> np.ndarray:
        ht = torch.as_tensor(h, dtype=torch.get_default_dtype(), device=model.device)
        with torch.no_grad():
            total = model.act_fun[layer](ht)[2]
            if model.symbolic_enabled:
                total = total + model.symbolic_fun[layer](ht)[1]
        return _to_numpy(total)

    return post


def _rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Max error relative to the scale of ``b`` (NaN in both counts as agreement)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both_nan = ~np.isfinite(a) & ~np.isfinite(b)
    if np.any(np.isfinite(a) != np.isfinite(b)):
        return math.inf
    diff = np.abs(np.where(both_nan, 0.0, a - b))
    scale = float(np.max(np.abs(np.where(both_nan, 0.0, b)))) if b.size else 0.0
    return float(np.max(diff)) / max(scale, 1e-300) if diff.size else 0.0


def _kan_output(model: Any, X: np.ndarray) -> np.ndarray:
    torch, _ = _import_kan()
    xt = torch.as_tensor(X, dtype=torch.get_default_dtype(), device=model.device)
    with torch.no_grad():
        return _to_numpy(model(xt))


def _output_sensitivity(
    model: Any, X: np.ndarray, Y: np.ndarray | None = None
) -> dict[tuple[int, int], np.ndarray]:
    """Per point, ``max_o |d out_o / d s| / rmse_o`` for every subnode sum ``s``.

    ``s`` is the sum of the edges ``(layer, *, j)``, so an edge's residual times this is
    its first-order effect on the outputs, in units of the network's RMS error ``rmse_o``
    on ``(X, Y)`` (without ``Y``: 1e-3 of each output's spread).  Central differences
    through the spline replica of the forward pass.
    """
    post = _spline_postacts(model)

    def sums_of(layer: int, h: np.ndarray) -> list[np.ndarray]:
        p = post(layer, h)
        return [p[:, j, :].sum(axis=1) for j in range(model.width_out[layer + 1])]

    def propagate(layer: int, sums: list[np.ndarray]) -> np.ndarray:
        h = np.stack(_layer_combine(model, layer, sums), axis=1)
        for nxt in range(layer + 1, model.depth):
            h = np.stack(_layer_combine(model, nxt, sums_of(nxt, h)), axis=1)
        return h

    h = np.asarray(X, dtype=float)[:, [int(k) for k in model.input_id]]
    layer_sums = []
    for layer in range(model.depth):
        sums = sums_of(layer, h)
        layer_sums.append(sums)
        h = np.stack(_layer_combine(model, layer, sums), axis=1)
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


# ----------------------------------------------------------------------------- results


def _as_2d(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=float)
    return a[:, None] if a.ndim == 1 else a


def symbolic_from_edges(
    model: Any,
    edges: Mapping[Key, EdgeResult],
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    variable_names: Sequence[str] | None = None,
    client: Any = None,
    gpt_model: str = "openai/gpt-4o",
    tolerance: float = 0.1,
    simplify_timeout: float = 10.0,
    snap_time: float = 30.0,
    llm_candidates: int = 3,
    max_fit_points: int = 2000,
    seed: int | None = 0,
    separable: bool = True,
    separable_options: Mapping[str, Any] | None = None,
    separable_candidates: Sequence[Sequence[tuple[str, sympy.Expr]]] | None = None,
) -> list[KANSymbolicResult]:
    """Assemble, verify, simplify and refit the formulas of a KAN whose edges are fitted.

    Parameters
    ----------
    model : kan.MultKAN
        The network the edges came from.
    edges : Mapping
        ``(layer, i, j) -> EdgeResult``, e.g. from :func:`kan_to_symbolic`.
    X_train, y_train, X_test, y_test : array_like
        The original data: constants are refitted on the training part, candidates judged
        on the held-out part.
    variable_names : sequence of str, optional
        Names of the input columns (default ``x0, x1, ...``).
    client : openai client or None
        With a client, the LLM is also asked for simpler equivalent forms.
    gpt_model : str
        Model for those requests.
    tolerance : float
        A candidate is accepted if its held-out nchi2 is at most ``(1 + tolerance)`` times
        the raw formula's (plus 1e-12).
    simplify_timeout : float
        Time limit of each sympy simplification, in seconds.
    snap_time : float
        Time limit of the constant snapping, in seconds.
    llm_candidates : int
        Simplified forms asked of the LLM.
    max_fit_points : int
        Most training points used in refits (a seeded subsample; scores use all).
    seed : int or None
        Seed of the subsample.
    separable : bool
        Also try formulas built from the network used as a surrogate: if the output is
        (to the network's accuracy) a product or a sum of functions of one variable each,
        each factor is regressed by the offline search on a slice of the network, and
        the product or sum competes with the other candidates on the data.
    separable_options : mapping, optional
        ``population``, ``generations``, ``time_budget`` of those univariate searches.
    separable_candidates : sequence, optional
        Those candidates already computed (one list of ``(origin, expression)`` per
        output, as the separability test gives them), used instead of recomputing.
        A separable formula that fits the held-out data better than the raw one becomes
        the reference later candidates are judged against (so nothing after it can undo
        its accuracy), and the sweep of simpler edge assemblies, which can only
        approximate the network, is skipped.

    Returns
    -------
    list of KANSymbolicResult
        One per output.

    Raises
    ------
    AssemblyError
        If the assembled formula does not reproduce the network.
    """
    import sympy

    from llmlex._kan_sympy import (
        evaluate,
        simplify_with_timeout,
        snap_constants,
    )
    from llmlex._symbolic import node_count, sympy_to_text

    t_start = time.perf_counter()
    separable_options = dict(separable_options or {})
    X_train, X_test = _as_2d(X_train), _as_2d(X_test)
    Y_train, Y_test = _as_2d(y_train), _as_2d(y_test)
    n_var = X_train.shape[1]
    names = list(variable_names) if variable_names is not None else [f"x{k}" for k in range(n_var)]
    if len(names) != n_var:
        raise ValueError(f"{len(names)} variable names for {n_var} input columns")
    variables = [sympy.Symbol(n, real=True) for n in names]

    t0 = time.perf_counter()
    exprs = assemble_expressions(model, edges, variables)
    replica = _replica_forward(model, X_test, _edge_postacts(model, edges))
    spline_replica = _replica_forward(model, X_test, _spline_postacts(model))
    kan_out = _kan_output(model, X_test)
    structure_error = _rel_error(spline_replica, kan_out)
    if structure_error > _STRUCTURE_RTOL:
        raise AssemblyError(
            f"replica of the KAN's forward pass is off by {structure_error:.3g} (relative): "
            "this pykan model computes something the assembly does not model"
        )
    t_assembly = time.perf_counter() - t0

    rng = np.random.default_rng(seed)
    fit_idx = np.arange(X_train.shape[0])
    if fit_idx.size > max_fit_points:
        fit_idx = np.sort(rng.choice(fit_idx.size, max_fit_points, replace=False))
    Xf = X_train[fit_idx]
    edge_calls = sum(e.llm_calls for e in edges.values())
    edge_saved = sum(e.llm_calls_saved for e in edges.values())

    results = []
    for o, raw in enumerate(exprs):
        t_out = time.perf_counter()
        assembled = evaluate(raw, variables, X_test)
        assembly_error = _rel_error(assembled, replica[:, o])
        if assembly_error > _ASSEMBLY_RTOL:
            raise AssemblyError(
                f"output {o}: assembled formula differs from the edge-wise replica by "
                f"{assembly_error:.3g} (relative); formula: {raw}"
            )
        kan_error = _rel_error(assembled, kan_out[:, o])
        yf, yh = Y_train[fit_idx, o], Y_test[:, o]
        sel = _Selection(variables, Xf, yf, X_test, yh, tolerance)
        sel.start(raw)
        t1 = time.perf_counter()
        if separable_candidates is not None:
            sep = list(separable_candidates[o])
        elif separable:
            sep = _separable_candidates(
                model, X_train, variables, o, Y_train[:, o], seed=seed, **separable_options
            )
        else:
            sep = []
        for origin, expr in sep:
            sel.consider(origin, expr)
        # A separable formula that beats the raw one is the new reference: nothing later
        # may undo its accuracy, and simpler edge assemblies (approximations of the
        # network) cannot reach it.
        if not sel.tighten():
            # Loosest budget (simplest formula) first: the first one the data accept wins.
            for budget, expr in reversed(_simpler_assemblies(model, edges, variables, o)):
                if expr == raw:  # no edge had a simpler alternative within this budget
                    continue
                if sel.consider(f"edges<={budget:g}", expr):
                    break
        sel.consider("sympy", simplify_with_timeout(sel.best, simplify_timeout))
        llm_calls = 0
        if client is not None:
            texts, llm_calls = _llm_simplifications(
                client, gpt_model, sel.best, names, llm_candidates
            )
            for cand in texts:
                sel.consider("llm", cand)
        t_simplify = time.perf_counter() - t1

        t2 = time.perf_counter()
        snapped = snap_constants(
            sel.best,
            variables,
            Xf,
            yf,
            X_test,
            yh,
            sel.reference,
            rtol=tolerance,
            atol=1e-12,
            deadline=time.perf_counter() + snap_time,
        )
        if sel.consider("snapped", snapped, refit=False, force=True):
            sel.consider("snapped-sympy", simplify_with_timeout(snapped, simplify_timeout))
        t_snap = time.perf_counter() - t2

        t3 = time.perf_counter()
        final = sel.finish()
        t_refit = time.perf_counter() - t3

        pred_train = evaluate(final, variables, X_train)
        pred_test = evaluate(final, variables, X_test)
        results.append(
            KANSymbolicResult(
                output=o,
                expression=final,
                text=sympy_to_text(final),
                raw_expression=raw,
                variables=tuple(names),
                nchi2_train=nchi2(Y_train[:, o], pred_train),
                nchi2_test=nchi2(yh, pred_test),
                r2_train=r2(Y_train[:, o], pred_train),
                r2_test=r2(yh, pred_test),
                complexity=node_count(final),
                raw_complexity=node_count(raw),
                assembly_error=assembly_error,
                structure_error=structure_error,
                kan_error=kan_error,
                llm_calls=edge_calls + llm_calls,
                llm_calls_saved=edge_saved,
                timings={
                    "assembly": t_assembly,
                    "simplify": t_simplify,
                    "snap": t_snap,
                    "refit": t_refit,
                    "output_total": time.perf_counter() - t_out,
                    "total": time.perf_counter() - t_start,
                },
                candidates=tuple(sel.candidates),
            )
        )
    return results


def _simpler_assemblies(
    model: Any, edges: Mapping[Key, EdgeResult], variables: Sequence[sympy.Symbol], output: int
) -> list[tuple[float, sympy.Expr]]:
    """Formulas of ``output`` with each edge at its simplest alternative within a budget.

    For each budget of :data:`EDGE_ERROR_BUDGETS`, every fitted edge takes the simplest
    of its alternatives whose weighted error (its first-order effect on the output, in
    units of the network's own error) is within the budget: an edge the output hardly
    depends on becomes a constant, a nearly straight one a line.  Distinct formulas only,
    loosest budget last; the caller refits and judges each on the data.
    """
    out: list[tuple[float, sympy.Expr]] = []
    seen: set[sympy.Expr] = set()
    for budget in EDGE_ERROR_BUDGETS:
        chosen: dict[Key, EdgeResult] = {}
        for key, e in edges.items():
            pick = next((r for r, err in e.alternatives if err <= budget), None)
            if e.status == "fitted" and pick is not None and pick is not e.fit:
                e = replace(e, expression=pick.expression, fit=pick)
            chosen[key] = e
        expr = assemble_expressions(model, chosen, variables)[output]
        if expr not in seen:
            seen.add(expr)
            out.append((budget, expr))
    return out


def _separable_candidates(
    model: Any,
    X: np.ndarray,
    variables: Sequence[sympy.Symbol],
    output: int,
    y: np.ndarray,
    *,
    seed: int | None = 0,
    population: int = 6,
    generations: int = 4,
    time_budget: float = 30.0,
    n_pairs: int = 256,
    n_slice: int = 200,
) -> list[tuple[str, sympy.Expr]]:
    """Formulas of an output from the network's separability structure (or none).

    The trained network is a smooth surrogate of the data (the idea of AI Feynman):
    :func:`llmlex._separable.decompose` tests it for products and sums of parts (also of
    ``1/f``, ``f**2``, ``1/f**2``), for parts that depend on two variables only through
    ``x_i*x_j``, ``x_i/x_j``, ``x_i + x_j`` or ``x_i - x_j``, and regresses each
    one-variable part on a slice of the network.  The caller refits the result on the data
    and judges it like any candidate.
    """
    from llmlex._separable import decompose

    def f(Z: np.ndarray) -> np.ndarray:
        return _kan_output(model, Z)[:, output]

    return decompose(
        f,
        X,
        y,
        variables,
        seed=_seed_for(seed, 7, output),
        population=population,
        generations=generations,
        time_budget=time_budget,
        n_pairs=n_pairs,
        n_slice=n_slice,
        max_error=_SURROGATE_MAX_ERROR,
    )


class _Selection:
    """Candidate formulas of one output, judged on held-out data against the raw one."""

    def __init__(
        self,
        variables: Sequence[sympy.Symbol],
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        X_hold: np.ndarray,
        y_hold: np.ndarray,
        tolerance: float,
    ) -> None:
        self.variables = list(variables)
        self.X_fit, self.y_fit, self.X_hold, self.y_hold = X_fit, y_fit, X_hold, y_hold
        self.tolerance = tolerance
        self.candidates: list[Candidate] = []
        self.reference = math.inf
        self.best: Any = None
        self.best_score = math.inf
        self._accepted: list[tuple[sympy.Expr, float]] = []

    def refit(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with its Float constants refitted on the training data."""
        from llmlex._kan_sympy import fit_constants, parameterise

        template, syms, p0 = parameterise(expr)
        fitted = fit_constants(
            template,
            self.variables,
            syms,
            p0,
            self.X_fit,
            self.y_fit,
            deadline=time.perf_counter() + _REFIT_TIME,
        )
        return fitted.expression

    def score(self, expr: sympy.Expr) -> float:
        from llmlex._kan_sympy import holdout_nchi2

        return holdout_nchi2(expr, self.variables, self.X_hold, self.y_hold)

    def _record(self, origin: str, expr: sympy.Expr, score: float, ok: bool) -> None:
        from llmlex._symbolic import node_count, sympy_to_text

        self.candidates.append(Candidate(origin, sympy_to_text(expr), score, node_count(expr), ok))

    def start(self, raw: sympy.Expr) -> None:
        """Score the raw formula as it is and refitted; the better is the reference."""
        raw_score = self.score(raw)
        self._record("raw", raw, raw_score, True)
        refitted = self.refit(raw)
        refit_score = self.score(refitted)
        self._record("raw-refit", refitted, refit_score, True)
        if refit_score <= raw_score:
            self.best, self.best_score = refitted, refit_score
        else:
            self.best, self.best_score = raw, raw_score
        self.reference = self.best_score
        self._accepted.append((self.best, self.best_score))

    def consider(
        self, origin: str, expr: sympy.Expr | None, *, refit: bool = True, force: bool = False
    ) -> bool:
        """Refit and score a candidate; adopt it if within tolerance and simpler.

        ``force`` adopts an acceptable candidate even if it is not simpler (snapped
        constants: same size, simpler values).  Returns whether it was acceptable.
        """
        from llmlex._kan_sympy import within
        from llmlex._symbolic import node_count

        if expr is None:
            return False
        try:
            fitted = self.refit(expr) if refit else expr
            score = self.score(fitted)
        except (ValueError, TypeError) as err:  # not evaluable by the safe evaluator
            log.info("candidate %s rejected: %s", origin, err)
            return False
        ok = within(score, self.reference, self.tolerance, 1e-12)
        self._record(origin, fitted, score, ok)
        if ok:
            self._accepted.append((fitted, score))
        simpler = (node_count(fitted), score) < (node_count(self.best), self.best_score)
        if ok and (simpler or force):
            self.best, self.best_score = fitted, score
        return ok

    def tighten(self) -> bool:
        """Make the best score accepted so far the reference, if it beats the current one.

        The best formula becomes the simplest accepted one within tolerance of the new
        reference.  Returns whether the reference changed.
        """
        from llmlex._kan_sympy import within
        from llmlex._symbolic import node_count

        lowest = min(score for _, score in self._accepted)
        if not lowest < self.reference:
            return False
        self.reference = lowest
        near = [
            (node_count(e), score, e)
            for e, score in self._accepted
            if within(score, lowest, self.tolerance, 1e-12)
        ]
        _, self.best_score, self.best = min(near, key=lambda t: (t[0], t[1]))
        return True

    def finish(self) -> sympy.Expr:
        """Final refit of the chosen formula's constants (kept only if it scores no worse)."""
        final = self.refit(self.best)
        score = self.score(final)
        if score > self.best_score:
            final, score = self.best, self.best_score
        self._record("final", final, score, True)
        return final


_SIMPLIFY_PROMPT = (
    "Here is a formula fitted to data, with variables {names}:\n\n{formula}\n\n"
    "Write {n} simpler but mathematically equivalent (or nearly equivalent, up to small "
    "constant changes) forms of it, one per line, each a single Python/numpy expression "
    "in the variables {names} using numbers, + - * / **, and np.sin, np.cos, np.exp, "
    "np.log, np.sqrt, np.tanh, np.arctan, np.abs, np.pi. Recognise known forms (e.g. a "
    "Taylor series of exp or sin) and fold constants. No explanations, no code fences."
)


def _llm_simplifications(
    client: Any, gpt_model: str, expr: sympy.Expr, names: Sequence[str], n: int
) -> tuple[list[sympy.Expr], int]:
    """Ask the LLM for simpler forms; parse each reply line by the whitelist, never eval."""
    import sympy

    from llmlex._kan_sympy import parse_expression
    from llmlex._symbolic import sympy_to_text
    from llmlex.exceptions import AnsatzError

    formula = sympy_to_text(sympy.N(expr, 8))
    prompt = _SIMPLIFY_PROMPT.format(names=", ".join(names), formula=formula, n=n)
    try:
        reply = client.chat.completions.create(
            model=gpt_model, messages=[{"role": "user", "content": prompt}]
        )
        if hasattr(reply, "__await__"):
            from llmlex._aio import run_sync

            async def _await(r: Any = reply) -> Any:
                return await r

            reply = run_sync(_await())
        content = reply.choices[0].message.content or ""
    except Exception as err:  # any API failure costs only this optional step
        log.warning("LLM simplification request failed: %s", err)
        return [], 1
    symbols = {nm: sympy.Symbol(nm, real=True) for nm in names}
    out = []
    for line in content.splitlines():
        line = re.sub(r"^\s*(?:[-*]|\d+[.)])\s*", "", line).strip().strip("`").strip()
        if not line:
            continue
        if "=" in line and "==" not in line:
            line = line.split("=", 1)[1].strip()
        try:
            out.append(parse_expression(line, symbols))
        except AnsatzError as err:
            log.debug("LLM simplification %r rejected: %s", line[:80], err)
    return out[: max(n, 1) * 2], 1


# ----------------------------------------------------------------------------- KANLEX


@dataclass(frozen=True)
class TrainingRun:
    """One training restart: its seed, final train/test RMSE and wall time."""

    seed: int
    train_loss: float
    test_loss: float
    time: float


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


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Silence pykan's prints and progress bar (it offers no switch for either)."""
    if not enabled:
        yield
        return
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


class KANLEX:
    """Train a KAN on data and turn it into a formula with llmlex.

    Parameters
    ----------
    client : openai client or None
        LLM client; ``None`` runs everything offline.
    width : list
        The KAN's shape, e.g. ``[2, 1, 1]`` or with multiplication nodes
        ``[[2, 0], [1, 1], [1, 0]]`` (pykan's convention).
    grid, k : int
        Spline grid intervals and order.
    seed : int
        Base seed of the training restarts and of everything random afterwards.
    device : str
        torch device.
    model : kan.MultKAN, optional
        An already trained network (then ``width`` is taken from it).
    variable_names : sequence of str, optional
        Names of the inputs (default ``x0, x1, ...``).
    **kan_options
        Passed to ``kan.KAN`` (e.g. ``mult_arity``, ``symbolic_enabled``, ``base_fun``).

    Examples
    --------
    >>> kl = KANLEX(None, [2, 1, 1], grid=5, k=3, seed=0)  # doctest: +SKIP
    >>> kl.create_dataset(lambda x: torch.exp(torch.sin(torch.pi * x[:, [0]]) + x[:, [1]] ** 2),
    ...                   n_var=2)  # doctest: +SKIP
    >>> kl.train_kan(steps=50)  # doctest: +SKIP
    >>> exprs, scores, results, candidates = kl.get_symbolic(client=None)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any = None,
        width: Sequence[Any] | None = None,
        grid: int = 5,
        k: int = 3,
        seed: int = 0,
        *,
        device: str = "cpu",
        model: Any = None,
        variable_names: Sequence[str] | None = None,
        **kan_options: Any,
    ) -> None:
        if model is None and width is None:
            raise ValueError("give a KAN shape (width) or a trained model")
        self.client = client
        self.width = [list(w) if isinstance(w, (list, tuple)) else int(w) for w in width or []]
        self.grid = grid
        self.k = k
        self.seed = int(seed)
        self.device = device
        self.variable_names = list(variable_names) if variable_names is not None else None
        self.kan_options = {"symbolic_enabled": False, **kan_options}
        # pykan writes checkpoints (and model.copy() writes to the cwd): give it a private
        # directory that disappears with this object.
        self.ckpt_dir = tempfile.mkdtemp(prefix="llmlex-kan-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.ckpt_dir, ignore_errors=True)
        self.model = model
        self.dataset: dict[str, Any] | None = None
        self.training: TrainingReport | None = None
        self.edges: KANEdges | None = None
        self.results: list[KANSymbolicResult] | None = None

    def _new_model(self, seed: int) -> Any:
        import copy

        _, MultKAN = _import_kan()
        with _quiet(True):
            return MultKAN(
                width=copy.deepcopy(self.width),
                grid=self.grid,
                k=self.k,
                seed=seed,
                device=self.device,
                auto_save=False,
                ckpt_path=self.ckpt_dir,
                **self.kan_options,
            )

    def create_dataset(
        self,
        f: Callable[[Any], Any],
        n_var: int = 2,
        ranges: Sequence[float] | Sequence[Sequence[float]] = (-1.0, 1.0),
        train_num: int = 1000,
        test_num: int = 1000,
        seed: int | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Sample a dataset from ``f`` (a torch function of ``x[:, k]``) with pykan.

        Returns pykan's dictionary (``train_input``, ``train_label``, ``test_input``,
        ``test_label``) and keeps it for :meth:`train_kan`.
        """
        _import_kan()
        from kan.utils import create_dataset

        rng_list = [list(r) for r in ranges] if np.ndim(ranges) == 2 else list(ranges)
        self.dataset = create_dataset(
            f,
            n_var=n_var,
            ranges=rng_list,
            train_num=train_num,
            test_num=test_num,
            device=self.device,
            seed=self.seed if seed is None else int(seed),
            **options,
        )
        return self.dataset

    def set_dataset(self, X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> dict[str, Any]:
        """Use numpy data (``X`` of shape ``(n, n_var)``) instead of :meth:`create_dataset`."""
        torch, _ = _import_kan()

        def t(a: Any) -> Any:
            return torch.as_tensor(_as_2d(a), dtype=torch.get_default_dtype(), device=self.device)

        self.dataset = {
            "train_input": t(X_train),
            "train_label": t(y_train),
            "test_input": t(X_test),
            "test_label": t(y_test),
        }
        return self.dataset

    def train_kan(
        self,
        dataset: dict[str, Any] | None = None,
        *,
        steps: int = 100,
        opt: str = "LBFGS",
        lamb: float = 0.0,
        prune: bool = False,
        node_th: float = 1e-2,
        edge_th: float = 3e-2,
        n_restarts: int = 3,
        seeds: Sequence[int] | None = None,
        time_budget: float | None = None,
        warmup: int = 100,
        warmup_lr: float = 0.01,
        verbose: int = 0,
        **fit_options: Any,
    ) -> TrainingReport:
        """Train from several seeds within a time budget; keep the best by test loss.

        KAN training is seed-sensitive (some seeds stall far above the others), so
        restarts are cheap insurance.  A restart is not started when the budget would
        likely be exceeded (the first always runs).

        Parameters
        ----------
        dataset : dict, optional
            pykan-style dataset (default: the one from :meth:`create_dataset`).
        steps, opt, lamb : int, str, float
            Passed to ``model.fit``.
        prune : bool
            Prune the best network (``node_th``, ``edge_th``), retrain it for
            ``steps // 2`` steps, and keep it unless its test loss is more than twice worse.
        n_restarts : int
            Restarts (seeds ``seed, seed+1, ...``) unless ``seeds`` is given.
        time_budget : float, optional
            Wall-time budget in seconds for all restarts.
        warmup, warmup_lr : int, float
            Adam steps (and their learning rate) before an LBFGS run.  LBFGS from a
            random start often stalls (on ``exp(sin(pi*x0) + x1**2)`` with a [2, 1, 1]
            KAN, 8 of 8 seeds stalled at test RMSE ~0.57 after 30 steps); a short Adam
            warm-up got 3 of 3 below 0.05 in the same time.
        verbose : int
            0 silences pykan's output.
        **fit_options
            Other ``model.fit`` options.

        Returns
        -------
        TrainingReport
        """
        torch, _ = _import_kan()
        if dataset is not None:
            self.dataset = dataset
        if self.dataset is None:
            raise ValueError("no dataset: call create_dataset first or pass one")
        if not self.width:
            raise ValueError("this KANLEX was built from a model: nothing to train")
        ds = self.dataset
        seed_list = list(seeds) if seeds is not None else [self.seed + r for r in range(n_restarts)]
        t0 = time.perf_counter()
        runs: list[TrainingRun] = []
        best_model, best_loss, best_seed = None, math.inf, seed_list[0]
        stop = "all restarts run"
        for s in seed_list:
            elapsed = time.perf_counter() - t0
            if runs and time_budget is not None:
                mean = elapsed / len(runs)
                if elapsed + mean > time_budget:
                    stop = "time budget"
                    break
            t = time.perf_counter()
            model = self._new_model(s)
            warm = {"warmup": warmup, "warmup_lr": warmup_lr, **fit_options}
            train_loss = self._fit(model, ds, s, steps, opt, lamb, verbose, warm)
            test_loss = self._test_loss(model, ds)
            runs.append(TrainingRun(s, train_loss, test_loss, time.perf_counter() - t))
            log.info("restart seed %d: train RMSE %.3g, test RMSE %.3g", s, train_loss, test_loss)
            if test_loss < best_loss or best_model is None:
                best_model, best_loss, best_seed = model, test_loss, s
        pruned = False
        if prune and best_model is not None:
            with torch.no_grad():
                best_model(ds["train_input"])
            with _quiet(verbose == 0):
                candidate = best_model.prune(node_th=node_th, edge_th=edge_th)
            candidate.auto_save = False
            self._fit(candidate, ds, best_seed, max(1, steps // 2), opt, 0.0, verbose, fit_options)
            pruned_loss = self._test_loss(candidate, ds)
            if pruned_loss <= 2.0 * best_loss:
                best_model, best_loss, pruned = candidate, pruned_loss, True
            else:
                log.info("pruned network kept worse test loss (%.3g): not used", pruned_loss)
        self.model = best_model
        self.training = TrainingReport(
            runs=tuple(runs),
            best_seed=best_seed,
            best_test_loss=best_loss,
            pruned=pruned,
            time=time.perf_counter() - t0,
            stop_reason=stop,
        )
        return self.training

    @staticmethod
    def _fit(
        model: Any,
        ds: dict[str, Any],
        seed: int,
        steps: int,
        opt: str,
        lamb: float,
        verbose: int,
        fit_options: Mapping[str, Any],
    ) -> float:
        torch, _ = _import_kan()
        # pykan draws its batches from numpy's global generator: seed it for this run
        # and give the caller's state back afterwards.
        state = np.random.get_state()
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        options = dict(fit_options)
        warmup = int(options.pop("warmup", 0))
        warmup_lr = float(options.pop("warmup_lr", 0.01))
        try:
            with _quiet(verbose == 0):
                if warmup > 0 and opt == "LBFGS":
                    model.fit(
                        ds, opt="Adam", lr=warmup_lr, steps=warmup, lamb=lamb, log=1, **options
                    )
                res = model.fit(ds, opt=opt, steps=steps, lamb=lamb, log=1, **options)
        finally:
            np.random.set_state(state)
        losses = [float(v) for v in res.get("train_loss", [])]
        return losses[-1] if losses else math.nan

    def _kan_level(self) -> float:
        """The network's own nchi2 on its training data, as the edges' exit condition.

        Edge formulas better than the network itself only fit its splines' wiggles.
        Clipped to [1e-10, 1e-3].
        """
        ds = self.dataset
        assert ds is not None and self.model is not None
        y = _as_2d(ds["train_label"])
        pred = _kan_output(self.model, _as_2d(ds["train_input"]))
        level = max(nchi2(y[:, o], pred[:, o]) for o in range(y.shape[1]))
        return float(np.clip(level, 1e-10, 1e-3)) if math.isfinite(level) else 1e-3

    def _separable_first(
        self, seed: int | None, time_budget: float
    ) -> tuple[list[list[tuple[str, sympy.Expr]]], list[bool]]:
        """Separable candidates of each output, and whether one beats the network.

        "Beats" means: refitted on the training data, its held-out nchi2 is at most the
        network's own.
        """
        import sympy

        from llmlex._kan_sympy import fit_constants, holdout_nchi2, parameterise

        ds = self.dataset
        X, Xt = _as_2d(ds["train_input"]), _as_2d(ds["test_input"])
        Y, Yt = _as_2d(ds["train_label"]), _as_2d(ds["test_label"])
        names = self.variable_names or [f"x{k}" for k in range(X.shape[1])]
        variables = [sympy.Symbol(n, real=True) for n in names]
        kan_test = _kan_output(self.model, Xt)
        cands, beats = [], []
        for o in range(Y.shape[1]):
            found = _separable_candidates(
                self.model, X, variables, o, Y[:, o], seed=seed, time_budget=time_budget
            )
            level = nchi2(Yt[:, o], kan_test[:, o])
            ok = False
            for _, expr in found:
                template, syms, p0 = parameterise(expr)
                fitted = fit_constants(template, variables, syms, p0, X, Y[:, o]).expression
                ok = ok or holdout_nchi2(fitted, variables, Xt, Yt[:, o]) <= level
            cands.append(found)
            beats.append(ok)
        return cands, beats

    @staticmethod
    def _test_loss(model: Any, ds: dict[str, Any]) -> float:
        torch, _ = _import_kan()
        with torch.no_grad():
            pred = model(ds["test_input"])
            loss = float(torch.sqrt(torch.mean((pred - ds["test_label"]) ** 2)))
        return loss if math.isfinite(loss) else math.inf

    def get_symbolic(
        self,
        client: Any = None,
        population: int = 5,
        generations: int = 2,
        temperature: float = 0.1,
        gpt_model: str = "openai/gpt-4o",
        verbose: int = 1,
        use_async: bool = True,
        plot_fit: bool = False,
        plot_parents: bool = False,
        demonstrate_parent_plotting: bool = False,
        *,
        exit_condition: float | None = None,
        tolerance: float = 0.1,
        simplify_timeout: float = 10.0,
        snap_time: float = 30.0,
        separable: bool = True,
        seed: int | None = None,
        regressor: EdgeRegressor | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = True,
        edge_time_budget: float | None = None,
        separable_time: float = 30.0,
        **reference_options: Any,
    ) -> tuple[list[sympy.Expr], list[float], list[dict[str, Any]], list[list[dict[str, Any]]]]:
        """Formulas of the trained KAN: edges, exact assembly, safe simplification, refit.

        Returns, as the reference library does, ``best_expressions`` (one sympy formula per
        output), ``best_chi_squareds`` (their held-out nchi2), ``results_dicts`` (one
        summary dict per output; ``"result"`` holds the :class:`KANSymbolicResult`) and
        ``results_all_dicts`` (per output, every candidate considered, best nchi2 first).
        The same results stay on ``self.results`` and the edges on ``self.edges``.
        ``plot_*`` options are accepted for compatibility; no plots are drawn.

        ``exit_condition`` defaults to the network's own nchi2 on its training data
        (clipped to [1e-10, 1e-3]): an edge formula closer to the spline than the network
        is to the data fits the spline's wiggles, so the simplest formula at that level is
        taken.  ``tolerance``, ``simplify_timeout``, ``snap_time``, ``separable``: see
        :func:`symbolic_from_edges`; ``regressor``: see :func:`kan_to_symbolic`.

        With ``separable`` (the default) the network's separability test runs first: if a
        product or sum of one-variable formulas fits the held-out data better than the
        network itself, the edges are fitted by the library of simple forms only (no
        search, no LLM call) and the sweep of simpler edge assemblies is skipped.

        ``separable_time``: seconds the structure tests and their one-variable searches
        may take (per output).

        ``edge_time_budget``: seconds each edge's searches may take (``None``: no limit;
        a limit makes the result depend on the machine's speed).

        ``checkpoint`` (a JSON file) and ``resume``: see :func:`kan_to_symbolic`.  Every
        edge is recorded as soon as it is regressed; calling again after an interruption
        (a kernel restart, ``kill -9``) regresses only the edges not recorded, so no LLM
        call already made for an edge is paid for twice.
        """
        _check_reference_options(reference_options, "get_symbolic")
        del plot_fit, plot_parents, demonstrate_parent_plotting  # accepted, not drawn
        if self.model is None:
            raise ValueError("no trained model: call train_kan first")
        if self.dataset is None:
            raise ValueError("no dataset: call create_dataset or set_dataset first")
        client = client if client is not None else self.client
        seed = self.seed if seed is None else seed
        ds = self.dataset
        if exit_condition is None:
            exit_condition = self._kan_level()
        sep = None
        search = True
        if separable:
            # The separability test needs only the network: run it first, and if its
            # formulas already fit the held-out data better than the network does, the
            # edges need no search (their formulas would only approximate the network).
            sep, beats = self._separable_first(seed, separable_time)
            search = not all(beats)
            if not search:
                log.info("separable forms beat the network: edges fitted by the library only")
        self.edges = kan_to_symbolic(
            self.model,
            client,
            gpt_model=gpt_model,
            exit_condition=exit_condition,
            population=population,
            generations=generations,
            temperature=temperature,
            use_async=use_async,
            x=_as_2d(ds["train_input"]),
            y=_as_2d(ds["train_label"]),
            seed=seed,
            regressor=regressor,
            verbose=verbose,
            checkpoint=checkpoint,
            resume=resume,
            search=search,
            edge_time_budget=edge_time_budget,
        )
        self.results = symbolic_from_edges(
            self.model,
            self.edges,
            ds["train_input"],
            ds["train_label"],
            ds["test_input"],
            ds["test_label"],
            variable_names=self.variable_names,
            client=client,
            gpt_model=gpt_model,
            tolerance=tolerance,
            simplify_timeout=simplify_timeout,
            snap_time=snap_time,
            separable=separable,
            separable_candidates=sep,
            seed=seed,
        )
        if verbose:
            for r in self.results:
                log.info("output %d: %s (held-out nchi2 %.3g)", r.output, r.text, r.nchi2_test)
        best_expressions = [r.expression for r in self.results]
        best_chi_squareds = [r.nchi2_test for r in self.results]
        results_dicts = [{**r.to_dict(), "result": r} for r in self.results]
        results_all = [
            sorted(
                (
                    {
                        "origin": c.origin,
                        "expression": c.text,
                        "n_chi_squared": c.nchi2_test,
                        "complexity": c.complexity,
                        "accepted": c.accepted,
                    }
                    for c in r.candidates
                ),
                key=lambda d: d["n_chi_squared"],
            )
            for r in self.results
        ]
        return best_expressions, best_chi_squareds, results_dicts, results_all
