"""Regressing a KAN's edges: one univariate problem per edge, cheap forms first.

:func:`kan_to_symbolic` reads every edge of a trained network on the data
(:func:`llmlex._kan_torch.extract_edges`), weighs each by the output's sensitivity to it
(:func:`llmlex._kan_assembly.output_sensitivity`), and regresses the active ones on a
thread pool, each with its own seed (so the result does not depend on scheduling), each
recorded in the checkpoint (:mod:`llmlex._kan_checkpoint`) as soon as it is done.

:func:`regress_edge` is the default edge regressor: the library of simple forms
(:mod:`llmlex._forms`), the offline proposer, and the language model only for edges still
unexplained.  :func:`edge_weighted_error` measures a fit by its first-order effect on the
network's output; :func:`edge_alternatives` keeps, per edge, the simpler fits the assembly
can later trade accuracy for.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._clientspec import is_openai_client
from llmlex._forms import EDGE_LIBRARY, Form
from llmlex._kan_assembly import output_sensitivity
from llmlex._kan_checkpoint import EdgeCheckpoint
from llmlex._kan_torch import (
    as_2d,
    as_float_array,
    cached_inputs,
    extract_edges,
    masks,
    symbolic_evaluator,
    to_numpy,
)
from llmlex._kan_types import (
    DEFAULT_EXIT_CONDITION,
    EDGE_PARSIMONY_RTOL,
    EdgeFit,
    EdgeRegressor,
    EdgeResult,
    EdgeStatus,
    EdgeTask,
    KANEdges,
    Key,
)
from llmlex._llmcall import unpicklable_client_error
from llmlex._progress import progress_bar
from llmlex._settings import DEFAULTS
from llmlex.exceptions import DataError, NoValidAnsatzError
from llmlex.fit import FitResult, fit_ansatz
from llmlex.genetic import run_genetic

if TYPE_CHECKING:
    import os

__all__ = [
    "REFERENCE_OPTIONS",
    "check_reference_options",
    "edge_alternatives",
    "edge_weighted_error",
    "kan_to_symbolic",
    "regress_edge",
    "search_size",
    "seed_for",
]

# One logger for the KAN door: callers tune "llmlex.kan" (the examples do).
log = logging.getLogger("llmlex.kan")

# An edge with a library form within the network's own error needs no search.
_EDGE_SEARCH_SKIP = 1.0


def seed_for(seed: int | None, *key: int) -> int:
    """A per-task seed derived from ``seed`` and a key, independent of scheduling order.

    Parameters
    ----------
    seed : int or None
        The base seed (``None`` counts as 0).
    *key : int
        What the seed is for (an edge's ``(layer, i, j)``, an output, ...).

    Returns
    -------
    int
    """
    ss = np.random.SeedSequence([0 if seed is None else int(seed), *key])
    return int(ss.generate_state(1)[0])


def edge_weighted_error(task: EdgeTask, fit: FitResult) -> float:
    """First-order effect on the network's output of replacing the edge by ``fit``.

    The RMS over the edge's points of ``weights * (fit(x) - y)``: in units of the
    network's own RMS error, so 1 means "as large as the network's error".  Without
    weights, the RMS residual relative to the edge's standard deviation.

    Parameters
    ----------
    task : EdgeTask
        The edge's data and weights.
    fit : FitResult
        A formula fitted to it.

    Returns
    -------
    float
        The weighted error (``inf`` where the fit is not finite).
    """
    with np.errstate(all="ignore"):
        r = np.broadcast_to(fit.predict(task.x), task.x.shape) - task.y
    if not np.all(np.isfinite(r)):
        return math.inf
    if task.weights is None:
        return float(np.sqrt(np.mean(r**2)) / max(float(np.std(task.y)), 1e-300))
    return float(np.sqrt(np.mean((task.weights * r) ** 2)))


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


def regress_edge(
    task: EdgeTask,
    *,
    forms: Sequence[Form] = EDGE_LIBRARY,
    n_starts: int = 4,
    search: bool | None = None,
    time_budget: float | None = None,
    patience: int | None = None,
) -> EdgeFit:
    """Default edge regressor: a library of simple forms, the offline proposer, the LLM.

    The simple forms (constant, line, powers, roots, log, exp, sine, ...) are all
    fitted: they are cheap, and they are the alternatives the assembly later trades
    accuracy for simplicity with.  The offline search runs only if none of them reaches
    ``task.exit_condition`` and none is well inside the network's own error (weighted by
    the output's sensitivity to the edge); the language model is asked only when a
    client is given and the offline search missed the exit condition too.

    Other settings make other regressors, e.g.
    ``functools.partial(regress_edge, forms=POLYNOMIAL_LIBRARY, search=False)``.

    Parameters
    ----------
    task : EdgeTask
        The edge's data and search options.
    forms : sequence of (source, ansatz)
        The simple forms fitted first (default :data:`llmlex._forms.EDGE_LIBRARY`).
    n_starts : int
        Fit starts of each simple form.
    search : bool, optional
        Run the searches at all (default: ``task.search``).
    time_budget : float, optional
        Seconds the searches may take (default: ``task.time_budget``).  Without one, no
        fit has a clock either (each is bounded by its evaluations): the edge's formula
        is then the same under any load.
    patience : int, optional
        Stop a search after this many generations without a 1% improvement.

    Returns
    -------
    EdgeFit
        The chosen fit, and every fit made (the candidates of the alternatives).
    """
    search = task.search if search is None else search
    time_budget = task.time_budget if time_budget is None else time_budget
    # The per-fit clock is a safety net for a budget; without one it would only make
    # the outcome depend on the machine's load.
    fit_timeout = None if time_budget is None else DEFAULTS.fit_timeout
    cands: list[tuple[str, FitResult]] = []
    for source, text in forms:
        r = fit_ansatz(
            text, task.x, task.y, seed=task.seed, validate=False, n_starts=n_starts,
            timeout=fit_timeout,
        )  # fmt: skip
        cands.append((source, r))
    fits = tuple(r for _, r in cands)
    source, best = _prefer_simple(cands, task.parsimony_rtol, task.exit_condition)
    saved = task.population * task.generations if task.client is not None else 0
    if (
        not search
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
        "patience": patience,
        "fit_timeout": fit_timeout,
    }
    deadline = None if time_budget is None else time.perf_counter() + time_budget
    try:
        # The offline proposer hands over parameters it has already optimised: two starts
        # (those, and all ones) refit them; more would triple an edge's cost for nothing.
        run = run_genetic(
            None, None, task.x, task.y, time_budget=time_budget, fit_starts=2, **options
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
            task.client,
            None,
            task.x,
            task.y,
            model=task.gpt_model,
            time_budget=left,
            cache=task.cache,
            **options,
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


def edge_alternatives(
    task: EdgeTask, chosen: FitResult, candidates: Sequence[FitResult]
) -> tuple[tuple[FitResult, float], ...]:
    """Pareto front (complexity vs weighted error) of an edge's fits, simplest first.

    Only fits simpler than the chosen one; the chosen one closes the list.

    Parameters
    ----------
    task : EdgeTask
        The edge (its data and weights, see :func:`edge_weighted_error`).
    chosen : FitResult
        The edge's formula.
    candidates : sequence of FitResult
        Every fit made to the edge.

    Returns
    -------
    tuple of (FitResult, float)
        Fits with their weighted errors, each simpler and less accurate than the next.
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
    population: int | None = None,
    generations: int | None = None,
    temperature: float = 0.1,
    gpt_model: str = "openai/gpt-4o",
    exit_condition: float | None = DEFAULT_EXIT_CONDITION,
    verbose: int = 0,
    use_async: bool = True,
    *,
    population_size: int | None = None,
    num_of_generations: int | None = None,
    x: Any = None,
    y: Any = None,
    seed: int | None = 0,
    max_points: int = 500,
    max_concurrency: int = 4,
    parsimony_rtol: float = EDGE_PARSIMONY_RTOL,
    regressor: EdgeRegressor | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = True,
    search: bool = True,
    edge_time_budget: float | None = None,
    cache: Any = None,
    executor: concurrent.futures.Executor | None = None,
    progress: bool = False,
    **reference_options: Any,
) -> KANEdges:
    """Regress every active edge of a trained pykan KAN as a univariate problem.

    Takes no error bars: each edge is fitted to the network's own curve (its spline on
    the inputs ``x``), not to the data, so the data's ``sigma`` has no meaning here.
    Error bars act where the data are fitted: in the network's training and in the
    refits and scores of the assembled formula (:meth:`llmlex.kan.KANLEX.set_dataset`,
    :func:`llmlex.kan.symbolic_from_edges`).

    Parameters
    ----------
    model : kan.MultKAN
        The trained network (``KAN`` is ``MultKAN`` in pykan 0.2.8).
    client : openai client, ClientSpec or None
        ``None`` runs offline; with a client the LLM is asked only for edges that the
        constant, the line and the offline proposer leave above ``exit_condition``.
        With an ``executor`` of other processes, a :class:`~llmlex.ClientSpec`.
    population, generations : int, optional
        Children per generation and generations of each edge's genetic search (default
        10 and 3).  ``population_size`` and ``num_of_generations`` (the names of
        :func:`llmlex.run_genetic`) are accepted as keyword aliases; giving both
        spellings of one setting is a ``TypeError``.
    temperature : float
        Selection temperature of each edge's genetic search.
    gpt_model : str
        Model name for the LLM.
    exit_condition : float or None
        nchi2 at which an edge counts as solved (``None``: the default).
    verbose : int
        Log edge formulas at INFO level when positive.
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
        ``EdgeTask -> EdgeFit``, replacing :func:`regress_edge` (e.g. ``regress_edge``
        with other options through :func:`functools.partial`).
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
    cache : ReplyCache, str, path-like or None
        On-disk cache of LLM replies shared by every edge's search (see
        :func:`llmlex.run_genetic`): a request answered before costs no call.
    executor : concurrent.futures.Executor, optional
        Regress the edges there instead of on this process's thread pool: a
        :class:`~concurrent.futures.ProcessPoolExecutor`, Dask's
        ``client.get_executor()``, :class:`llmlex.batch.RayExecutor`.  Each edge travels
        as its own task (its points, seed and options, the ``regressor`` -- which must
        then pickle, as :func:`regress_edge` and a :func:`functools.partial` of it do --
        and the client, a :class:`~llmlex.ClientSpec` for other processes); the
        network stays here, and so do the checkpoint (written here as each edge comes
        back) and the fits of the assembly (each is about a millisecond).  Every edge has
        its own seed, so the edges are the same on any executor.  ``max_concurrency``
        and ``use_async`` then do not apply: the executor sets the parallelism.
    progress : bool
        Show a progress bar of the edges to regress.
    **reference_options
        Accepted for compatibility with the reference library (``plot_fit``,
        ``plot_parents``, ``demonstrate_parent_plotting``, ``constant_on_failure``); plots
        are not drawn.

    Returns
    -------
    KANEdges
        ``(layer, i, j) -> EdgeResult`` with totals of LLM calls made and saved (over
        every session of a resumed checkpoint).  The positional order of the arguments
        is the reference library's, and each edge also reads as its value there: a list
        of populations in ascending score (:attr:`EdgeResult.populations`).

    Raises
    ------
    llmlex.persist.CheckpointError
        If ``checkpoint`` is damaged or belongs to another network, data or options.
    """
    check_reference_options(reference_options, "kan_to_symbolic")
    population, generations = search_size(
        population, generations, population_size, num_of_generations, "kan_to_symbolic", (10, 3)
    )
    t0 = time.perf_counter()
    exit_condition = DEFAULT_EXIT_CONDITION if exit_condition is None else float(exit_condition)
    regress = regressor if regressor is not None else regress_edge
    raw = extract_edges(model, x)
    inputs = to_numpy(cached_inputs(model)) if x is None else as_2d(x)
    sensitivity = output_sensitivity(model, inputs, None if y is None else as_2d(y))
    results: dict[Key, EdgeResult] = {}
    tasks: list[EdgeTask] = []
    for key, (status, xe, ye, sym) in raw.items():
        rng_range = (float(np.min(xe)), float(np.max(xe))) if xe.size else (0.0, 0.0)
        if status == "fitted":
            idx = np.arange(xe.size)
            if xe.size > max_points:
                rng = np.random.default_rng(seed_for(seed, *key, 1))
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
                    seed=seed_for(seed, *key),
                    parsimony_rtol=parsimony_rtol,
                    weights=sensitivity[(key[0], key[2])][idx],
                    search=bool(search),
                    time_budget=None if edge_time_budget is None else float(edge_time_budget),
                    cache=cache,
                )
            )
        else:
            results[key] = _fixed_edge(model, key, status, sym, rng_range)

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
        inputs = as_float_array(x if x is not None else cached_inputs(model))
        store = EdgeCheckpoint(checkpoint, inputs, tasks, options, resume=resume)
        results.update(store.done)
        tasks = [t for t in tasks if t.key not in store.done]

    if executor is not None and client is not None and is_openai_client(client):
        raise unpicklable_client_error(client)

    bar = progress_bar(len(tasks), progress and bool(tasks), "KAN edges", unit="edge")
    bar_lock = threading.Lock()  # edges finish on the pool's threads

    def finish(task: EdgeTask, ef: EdgeFit, seconds: float) -> EdgeResult:
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
            time=seconds,
            alternatives=edge_alternatives(task, ef.fit, ef.candidates),
        )
        if store is not None:
            store.record(res, time.perf_counter() - t0)
        if verbose:
            log.info(
                "edge %s: %s (nchi2 %.3g, %s)", task.key, ef.fit.formula(), res.nchi2, res.source
            )
        if bar is not None:
            with bar_lock:
                bar.update(1)
        return res

    def run_one(task: EdgeTask) -> EdgeResult:
        return finish(task, *_timed(regress, task))

    try:
        if executor is None:
            done = _run_all(run_one, tasks, use_async, max_concurrency)
        else:
            done = _run_on(executor, regress, finish, tasks)
    finally:
        if bar is not None:
            bar.close()
    for res in done:
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


def _fixed_edge(
    model: Any, key: Key, status: EdgeStatus, sym: Any, x_range: tuple[float, float]
) -> EdgeResult:
    """The result of an edge not to regress: symbolic in pykan, zero or pruned."""
    import sympy

    ev = None
    if status == "symbolic":
        mask_s = masks(model, *key)[1]
        ev = symbolic_evaluator(model, *key, mask_s)
    return EdgeResult(
        *key,
        status=status,
        expression=sym if sym is not None else sympy.Integer(0),
        source="pykan" if status == "symbolic" else "none",
        x_range=x_range,
        evaluator=ev,
    )


def _run_all(
    run_one: Callable[[EdgeTask], EdgeResult],
    tasks: Sequence[EdgeTask],
    use_async: bool,
    max_concurrency: int,
) -> Iterator[EdgeResult]:
    """``run_one`` over the tasks, on a thread pool if ``use_async``; results in task order."""
    if not (use_async and len(tasks) > 1):
        for task in tasks:
            yield run_one(task)
        return
    # Threads: the offline fits are numpy-bound and the LLM calls network-bound; each
    # task carries its own seed, so the result does not depend on scheduling.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_concurrency))
    try:
        yield from pool.map(run_one, tasks)
    except BaseException:
        # An edge failed or the caller interrupted: start no further edge; those in
        # flight finish (and are checkpointed) before the error propagates.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _timed(regress: EdgeRegressor, task: EdgeTask) -> tuple[EdgeFit, float]:
    """``regress(task)`` and the seconds it took (module-level: it travels by name)."""
    t = time.perf_counter()
    fit = regress(task)
    return fit, time.perf_counter() - t


def _run_on(
    executor: concurrent.futures.Executor,
    regress: EdgeRegressor,
    finish: Callable[[EdgeTask, EdgeFit, float], EdgeResult],
    tasks: Sequence[EdgeTask],
) -> Iterator[EdgeResult]:
    """Each edge's regression as a task of ``executor``; each finished here as it returns
    (checkpointed at once), in the order they complete."""
    futures = {executor.submit(_timed, regress, task): task for task in tasks}
    try:
        for future in concurrent.futures.as_completed(futures):
            fit, seconds = future.result()
            yield finish(futures[future], fit, seconds)
    except BaseException:
        # An edge failed or the caller interrupted: start no further edge (those running
        # finish on their workers; their results are not waited for).
        for future in futures:
            future.cancel()
        raise


#: Options of the reference library accepted for compatibility (no plots are drawn).
REFERENCE_OPTIONS = (
    "plot_fit",
    "plot_parents",
    "demonstrate_parent_plotting",
    "constant_on_failure",
    "disable_parse_warnings",
    "imports",
    # get_symbolic's options of the reference's second (LLM) simplification
    "num_answers_per_prompt",
    "timeout_simplify",
    "custom_system_prompt_for_second_simplification",
    "prune_small_terms",
    "plot_all",
    "original_f",
    "number_of_prompts",
    "simplification_gpt_model",
)


def check_reference_options(options: Mapping[str, Any], func: str) -> None:
    """Raise ``TypeError`` (suggesting the nearest name) for an unknown keyword argument.

    Parameters
    ----------
    options : Mapping
        The extra keyword arguments a KAN entry point received.
    func : str
        Its name, for the message.
    """
    for name in options:
        if name not in REFERENCE_OPTIONS:
            near = difflib.get_close_matches(name, REFERENCE_OPTIONS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise TypeError(f"{func}() got an unexpected keyword argument {name!r}{hint}")


def search_size(
    population: int | None,
    generations: int | None,
    population_size: int | None,
    num_of_generations: int | None,
    func: str,
    defaults: tuple[int, int],
) -> tuple[int, int]:
    """Resolve the reference spellings and :func:`llmlex.run_genetic`'s aliases.

    ``population``/``generations`` (the reference library's KAN names) and
    ``population_size``/``num_of_generations`` (the univariate API's) name the same
    settings; either may be given, not both.

    Parameters
    ----------
    population, generations : int or None
        The KAN spellings (``None``: not given).
    population_size, num_of_generations : int or None
        The univariate spellings (``None``: not given).
    func : str
        The entry point, for the message.
    defaults : tuple of int
        ``(population, generations)`` when neither spelling is given.

    Returns
    -------
    tuple of int
        ``(population, generations)``.

    Raises
    ------
    TypeError
        If both spellings of one setting are given.
    """
    pairs = (
        ("population", population, "population_size", population_size, defaults[0]),
        ("generations", generations, "num_of_generations", num_of_generations, defaults[1]),
    )
    out = []
    for name, value, alias, alias_value, default in pairs:
        if value is not None and alias_value is not None:
            raise TypeError(
                f"{func}() got both {name}= and {alias}= (two names of one setting): give one"
            )
        chosen = value if value is not None else alias_value
        out.append(default if chosen is None else int(chosen))
    return out[0], out[1]
