"""The search: one-shot proposals (:func:`single_call`) and the FunSearch-style genetic
algorithm (:func:`run_genetic`).

A generation asks the proposer (a language model, or the offline proposer when there is
no client) for ``population_size`` children concurrently.  In the first generation the
proposer sees only the data; later, each child's request carries parents drawn from the
best distinct results so far by a softmax over their normalised scores.  Every proposed
text is parsed by the safe ansatz language and fitted in a worker thread, so fitting never
blocks the event loop that waits on the network.  A proposal that fails anywhere
(API, extraction, parsing, fitting) is counted in :class:`RunStats` and costs only that
child.

A run can be checkpointed after every generation and resumed after an interruption
(``checkpoint=``), answered from an on-disk cache of replies (``cache=``), and bounded by
budgets of calls, tokens and money (``max_calls=``, ``max_tokens=``, ``max_cost=``).

This module is the public door.  The options are one frozen
:class:`~llmlex._settings.GeneticSettings` (its defaults are the defaults of the
signatures below); the search runs in :mod:`llmlex._genetic_loop` (one generation's
children in :mod:`llmlex._search`); language-model calls and their accounting live in
:mod:`llmlex._llmcall`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from numpy.typing import ArrayLike

from llmlex._aio import run_sync
from llmlex._callstats import APICallStats
from llmlex._genetic_loop import GeneticLoop
from llmlex._results import GeneticRun, RunStats
from llmlex._search import make_proposer, select_parents
from llmlex._settings import DEFAULTS, OPTIONS, GeneticSettings, check_keywords
from llmlex._validation import check_sigma, check_xy
from llmlex.cache import ReplyCache
from llmlex.exceptions import LLMConnectionError, NoValidAnsatzError
from llmlex.fit import FitResult, Provenance
from llmlex.proposer import Proposer

__all__ = [
    "GeneticRun",
    "RunStats",
    "arun_genetic",
    "async_single_call",
    "make_proposer",
    "run_genetic",
    "select_parents",
    "single_call",
]

log = logging.getLogger(__name__)

#: Options ``single_call`` passes on (it sets the population and generations itself).
_SINGLE_CALL_OPTIONS = (
    *(
        n
        for n in OPTIONS
        if n
        not in (
            "population_size",
            "num_of_generations",
            "model",
            "system_prompt",
            "function_list",
            "imports",
        )
    ),
    "sigma",
)


def _collect(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword options among a function's arguments (``locals()`` on entry)."""
    return {name: scope[name] for name in OPTIONS}


async def _search(
    client: Any,
    base64_img: str | None,
    x: ArrayLike,
    y: ArrayLike,
    sigma: ArrayLike | float | None,
    options: Mapping[str, Any],
    compat: Mapping[str, Any],
    started: list[GeneticLoop] | None = None,
) -> GeneticRun:
    """Validate, build the settings, and run the loop (appended to ``started``)."""
    check_keywords(compat, known=(*OPTIONS, "sigma"), func="run_genetic")
    x, y = check_xy(x, y)
    errors = None if sigma is None else check_sigma(sigma, x.size)
    settings = GeneticSettings(**options)
    loop = GeneticLoop(client, base64_img, x, y, settings, sigma=errors)
    if started is not None:
        started.append(loop)
    return await loop.run()


def run_genetic(
    client: Any,
    base64_img: str | None,
    x: ArrayLike,
    y: ArrayLike,
    population_size: int = DEFAULTS.population_size,
    num_of_generations: int = DEFAULTS.num_of_generations,
    temperature: float = DEFAULTS.temperature,
    model: str = DEFAULTS.model,
    exit_condition: float = DEFAULTS.exit_condition,
    system_prompt: str | None = DEFAULTS.system_prompt,
    elite: bool = DEFAULTS.elite,
    *,
    sigma: ArrayLike | float | None = None,
    absolute_sigma: bool = DEFAULTS.absolute_sigma,
    proposer: Proposer | None = DEFAULTS.proposer,
    max_concurrency: int = DEFAULTS.max_concurrency,
    hints: Sequence[str] | str = DEFAULTS.hints,
    allowed_functions: Sequence[str] | None = DEFAULTS.allowed_functions,
    llm_temperature: float | None = DEFAULTS.llm_temperature,
    llm_max_tokens: int | None = DEFAULTS.llm_max_tokens,
    num_parents: int = DEFAULTS.num_parents,
    hybrid: bool = DEFAULTS.hybrid,
    parsimony_rtol: float = DEFAULTS.parsimony_rtol,
    fit_starts: int = DEFAULTS.fit_starts,
    fit_timeout: float | None = DEFAULTS.fit_timeout,
    seed: int | None = DEFAULTS.seed,
    progress: bool = DEFAULTS.progress,
    callback: Callable[[int, tuple[FitResult, ...]], None] | None = DEFAULTS.callback,
    time_budget: float | None = DEFAULTS.time_budget,
    patience: int | None = DEFAULTS.patience,
    checkpoint: str | os.PathLike[str] | None = DEFAULTS.checkpoint,
    resume: bool = DEFAULTS.resume,
    cache: ReplyCache | str | os.PathLike[str] | None = DEFAULTS.cache,
    max_calls: int | None = DEFAULTS.max_calls,
    max_tokens: int | None = DEFAULTS.max_tokens,
    max_cost: float | None = DEFAULTS.max_cost,
    prices: Mapping[str, Sequence[float]] | None = DEFAULTS.prices,
    max_unparseable: int | None = DEFAULTS.max_unparseable,
    polish: bool = DEFAULTS.polish,
    function_list: Sequence[tuple[str, ArrayLike]] | None = DEFAULTS.function_list,
    imports: Sequence[str] | None = DEFAULTS.imports,
    constant_on_failure: bool = DEFAULTS.constant_on_failure,
    **compat: Any,
) -> GeneticRun:
    """Evolve a population of fitted ansätze (FunSearch-style genetic algorithm).

    Parameters
    ----------
    client : openai.OpenAI, openai.AsyncOpenAI, Proposer or None
        The language model's client (any OpenAI-compatible ``base_url``), or ``None`` to
        run the offline proposer with no network at all.
    base64_img : str or None
        Base64 PNG of the data (e.g. from :func:`llmlex.images.generate_base64_image`);
        ``None`` lets the proposer draw it.
    x, y : array_like
        One-dimensional data, finite, at least 5 points.
    population_size : int
        Children per generation.
    num_of_generations : int
        Most generations.
    temperature : float
        Selection temperature of the softmax over normalised scores (not the LLM's).
    model : str
        Model name sent to the API.
    exit_condition : float, optional
        Stop as soon as the best nchi2 is at or below this.  By default (None) the run
        stops once the result it would report explains the data to the noise: its
        chi-squared (under ``sigma``, or the estimated noise level) at most two standard
        deviations above its expectation, ``chi2 <= dof + 2*sqrt(2*dof)``.
    system_prompt : str, optional
        Replaces the default system prompt.
    elite : bool
        Carry the best result so far into every population after the first, in one of
        its ``population_size`` places (as the reference library: the size is kept).
    proposer : Proposer, optional
        Overrides the proposer chosen from ``client``.
    max_concurrency : int
        Most proposal calls in flight at once.
    hints : str or sequence of str
        Prior knowledge for the proposer ("periodic", "decays to zero", "no exp").
    allowed_functions : sequence of str, optional
        The only functions an ansatz may use (others are rejected at parsing).
    llm_temperature : float, optional
        Sampling temperature of the language model.
    llm_max_tokens : int, optional
        Reply length limit of each language-model call (the API's ``max_tokens``).
    num_parents : int
        Parents shown per child after the first generation.
    hybrid : bool
        With a client: run the offline proposer first and call the LLM only if it misses
        ``exit_condition`` (``stats.llm_calls_saved`` counts what that saved).
    sigma : float or array_like, optional
        Error bars of ``y`` (one for all points, or one per point), as in
        :func:`scipy.optimize.curve_fit`: every fit then minimises the chi-squared, and
        results report chi-squared per degree of freedom.  Without them the noise level
        is estimated from the data (:func:`llmlex._noise.estimate_noise`: a local cubic
        predicts each point from its neighbours, and the robust spread of the
        prediction errors is the noise), so that "fits to the noise" is a known number.
    absolute_sigma : bool
        Whether ``sigma`` is in absolute units (True) or only relative, the covariance
        of the parameters then scaled by the reduced chi-squared (False), as in
        :func:`scipy.optimize.curve_fit`.
    parsimony_rtol : float
        The fallback selection rule for results without a description length (loaded
        from older files): results within this relative nchi2 of the best compete on
        complexity.  The run's result is otherwise the one with the lowest description
        length (``FitResult.description_length``: the chi-squared plus the cost of
        every node and of every constant the data determine; Bartlett et al. 2023).
    fit_starts, fit_timeout : int, float or None
        Optimiser starts and time budget (seconds) of each fit; ``fit_timeout=None``
        bounds every fit, the offline proposer's included, by its evaluations alone, so
        that a seeded run gives the same result under any load.
    seed : int, optional
        Makes selection (and the offline proposer) reproducible.
    progress : bool
        Show a progress bar on stderr.
    callback : callable, optional
        Called as ``callback(generation, population)`` after every generation.
    patience : int, optional
        Stop after this many generations in a row without a 1% improvement of the best
        nchi2 (useful on noisy data, where ``exit_condition`` is never reached).
    time_budget : float, optional
        Wall-time budget in seconds: no new generation starts once it is spent (the
        generation in flight finishes, so nothing paid for is lost).
    checkpoint : str or path-like, optional
        A JSON file the run state is written to after every generation (atomically:
        a temporary file then :func:`os.replace`): populations, archive, counters, the
        random generator's state and the options that define the run.  If the file
        exists when the run starts, the run *resumes* from it: generations already
        recorded are not redone and their calls not repeated; at most the generation
        that was in flight when the process died is lost (with ``cache=`` even its
        finished calls are replayed for free).  A finished run's checkpoint returns the
        same run with no call.  ``num_of_generations``, the budgets, ``patience`` and
        ``exit_condition`` may differ on resume (to extend a run); the data, the image
        and every option that shapes the search must match, else
        :class:`~llmlex.persist.CheckpointError` is raised and the file is left alone.
        :func:`llmlex.persist.load_result` reads a checkpoint as the run so far.
    resume : bool
        False starts afresh and overwrites ``checkpoint``.
    cache : ReplyCache, str, path-like or None
        An on-disk cache of LLM replies (:class:`~llmlex.cache.ReplyCache` or its
        directory): a request whose content was answered before costs no call
        (``stats.cache_hits`` counts them).  Requests are told apart by their seed, so
        with a cache ``seed=None`` means ``seed=0``: re-running the same cell replays
        the same replies; pass another seed for fresh ones.
    max_calls : int, optional
        Budget of paid API calls for the whole run (a resumed run counts the calls made
        before).  Calls are reserved before they start, so it is never exceeded.
    max_tokens : int, optional
        Budget of prompt plus completion tokens (as reported by the server).
    max_cost : float, optional
        Budget in USD; needs ``prices`` for the model.
    prices : mapping, optional
        ``{model: (usd_per_1M_prompt_tokens, usd_per_1M_completion_tokens)}``; with a
        price for the model, ``stats.cost`` reports the money spent.

        A spent budget (``max_calls``, ``max_tokens``, ``max_cost``) ends the run cleanly
        with the best result so far and a ``stop_reason`` naming the budget: no new call
        starts once it is spent, but calls already in flight finish and are counted, so
        tokens and cost may end slightly above their budget (by at most the calls of one
        generation).  Budgets apply to LLM calls only; the offline proposer is free.
    max_unparseable : int or None
        Fail fast instead of paying for calls that cannot succeed: if this many replies
        in a row, before any reply of the run held a parseable ansatz, had none (a model
        that ignores the format, replies cut off by ``llm_max_tokens``, an endpoint
        answering with something else), the run stops with
        :class:`~llmlex.exceptions.NoValidAnsatzError`; None never stops for this.
        Once one reply parsed, unparseable replies are counted failures only.  Three
        calls in a row that cannot reach the server (connection refused, unknown host)
        likewise raise :class:`~llmlex.exceptions.LLMConnectionError` at once.  Both
        messages name the endpoint and what to check; the exception's ``partial_run`` is
        the run so far (None if no generation finished with a fit).
    polish : bool
        Before the run ends, fit simpler neighbours of the best results (each top-level
        term dropped, each constant replaced by the simplest number within its error,
        the sympy spelling of the formula: ``sqrt(x)*sqrt(x)`` is ``x``) and let the
        selection rule decide between them and the originals; costs no LLM call.
    function_list : sequence of (str, array_like), optional
        Parents for the first generation, as the reference's ``function_list``:
        ``[(ansatz, params), ...]``.  Every child of the first generation is shown them
        (in the prompt and drawn over the data) with the given parameter values; they
        are not results of the run.
    imports : sequence of str, optional
        The reference's import lines, shown to the model: imports of numpy and
        scipy.special only (``"import numpy as np"``, ``"from scipy import special"``,
        ``"import scipy.special as sp"``), which the ansatz language reads under those
        names.  They are never executed; any other line is a :class:`ValueError`.
    constant_on_failure : bool
        When no proposal of the whole run gave a fitted ansatz, return a run whose one
        population is the fitted constant ``params[0]`` instead of raising.
    **compat
        Keywords of the reference library that are accepted and ignored
        (``use_async``, ``for_kan``, ``demonstrate_parent_plotting``, ``plot_parents``,
        ``disable_parse_warnings``: see :data:`llmlex._settings.COMPAT_OPTIONS` for
        why each has nothing to do here); any other unknown keyword is a
        :class:`TypeError` that names the nearest option.

    Returns
    -------
    GeneticRun
        Sequence of populations; ``.best``, ``.archive``, ``.pareto_front``, ``.stats``.

    Raises
    ------
    DataError
        For unusable data.
    LLMAuthenticationError, LLMModelNotFoundError
        At once, when the endpoint rejects the key or the model.
    LLMConnectionError, NoValidAnsatzError
        When every proposal of the run failed; the message says at which stage and why.
    KeyboardInterrupt
        On Ctrl-C (or raised by ``callback`` or a proposer), re-raised once the run has
        stopped, with the run so far attached (below).

    Notes
    -----
    Nothing fitted is lost when a run ends early.  An exception that ends it after it
    started (``KeyboardInterrupt``, a fatal :class:`~llmlex.exceptions.LLMError` such
    as a key rejected mid-run, an error raised by ``callback``) carries the run so far
    as ``exc.partial_run``: a :class:`GeneticRun` of the completed generations and every
    fit archived so far (``partial_run.best`` is the best formula found), whose
    ``stop_reason`` says ``"interrupted by KeyboardInterrupt after 2 generation(s)"``
    or names the error; it is None if nothing had been fitted yet::

        try:
            run = run_genetic(client, None, x, y, checkpoint="run.json")
        except KeyboardInterrupt as exc:
            run = exc.partial_run          # None if interrupted before the first fit

    The checkpoint, if any, keeps the last completed generation, so resuming repeats
    no paid call it recorded.
    """
    options = _collect(locals())
    started: list[GeneticLoop] = []
    coro = _search(client, base64_img, x, y, sigma, options, compat, started)
    try:
        return run_sync(coro, workers=int(max_concurrency) + 2)
    except KeyboardInterrupt as exc:
        # Ctrl-C reaches the run as a cancellation (asyncio.run) or not at all (a run in
        # a worker thread, inside a notebook); the KeyboardInterrupt raised here is a
        # new one, so the run so far is attached to it here.
        if started:
            started[0].attach_partial(exc, started[0].interrupted("KeyboardInterrupt"))
        raise


async def arun_genetic(
    client: Any,
    base64_img: str | None,
    x: ArrayLike,
    y: ArrayLike,
    population_size: int = DEFAULTS.population_size,
    num_of_generations: int = DEFAULTS.num_of_generations,
    temperature: float = DEFAULTS.temperature,
    model: str = DEFAULTS.model,
    exit_condition: float = DEFAULTS.exit_condition,
    system_prompt: str | None = DEFAULTS.system_prompt,
    elite: bool = DEFAULTS.elite,
    *,
    sigma: ArrayLike | float | None = None,
    absolute_sigma: bool = DEFAULTS.absolute_sigma,
    proposer: Proposer | None = DEFAULTS.proposer,
    max_concurrency: int = DEFAULTS.max_concurrency,
    hints: Sequence[str] | str = DEFAULTS.hints,
    allowed_functions: Sequence[str] | None = DEFAULTS.allowed_functions,
    llm_temperature: float | None = DEFAULTS.llm_temperature,
    llm_max_tokens: int | None = DEFAULTS.llm_max_tokens,
    num_parents: int = DEFAULTS.num_parents,
    hybrid: bool = DEFAULTS.hybrid,
    parsimony_rtol: float = DEFAULTS.parsimony_rtol,
    fit_starts: int = DEFAULTS.fit_starts,
    fit_timeout: float | None = DEFAULTS.fit_timeout,
    seed: int | None = DEFAULTS.seed,
    progress: bool = DEFAULTS.progress,
    callback: Callable[[int, tuple[FitResult, ...]], None] | None = DEFAULTS.callback,
    time_budget: float | None = DEFAULTS.time_budget,
    patience: int | None = DEFAULTS.patience,
    checkpoint: str | os.PathLike[str] | None = DEFAULTS.checkpoint,
    resume: bool = DEFAULTS.resume,
    cache: ReplyCache | str | os.PathLike[str] | None = DEFAULTS.cache,
    max_calls: int | None = DEFAULTS.max_calls,
    max_tokens: int | None = DEFAULTS.max_tokens,
    max_cost: float | None = DEFAULTS.max_cost,
    prices: Mapping[str, Sequence[float]] | None = DEFAULTS.prices,
    max_unparseable: int | None = DEFAULTS.max_unparseable,
    polish: bool = DEFAULTS.polish,
    function_list: Sequence[tuple[str, ArrayLike]] | None = DEFAULTS.function_list,
    imports: Sequence[str] | None = DEFAULTS.imports,
    constant_on_failure: bool = DEFAULTS.constant_on_failure,
    **compat: Any,
) -> GeneticRun:
    """Asynchronous :func:`run_genetic`; await it inside a running event loop.

    Takes the same arguments, with the same defaults and meaning, and returns the same
    :class:`GeneticRun`.

    Returns
    -------
    GeneticRun
        Sequence of populations; ``.best``, ``.archive``, ``.pareto_front``, ``.stats``.

    See Also
    --------
    run_genetic : The synchronous entry point, which documents every option.

    Notes
    -----
    As in :func:`run_genetic`, an exception that ends the run early carries the run so
    far as ``exc.partial_run``; so does the :class:`asyncio.CancelledError` of a
    cancelled run.
    """
    return await _search(client, base64_img, x, y, sigma, _collect(locals()), compat)


def single_call(
    client: Any,
    base64_img: str | None,
    x: ArrayLike,
    y: ArrayLike,
    model: str = DEFAULTS.model,
    function_list: Sequence[tuple[str, ArrayLike]] | None = None,
    system_prompt: str | None = DEFAULTS.system_prompt,
    max_retries: int = 3,
    stats: APICallStats | None = None,
    imports: Sequence[str] | None = None,
    *,
    n_calls: int = 1,
    **options: Any,
) -> FitResult:
    """Ask the proposer once (or ``n_calls`` times concurrently) and return the best fit.

    The reference library's signature, positional order included.

    Parameters
    ----------
    client : openai.OpenAI, openai.AsyncOpenAI, Proposer or None
        As in :func:`run_genetic`; ``None`` runs offline.
    base64_img : str or None
        Base64 PNG of the data, or ``None`` to have it drawn.
    x, y : array_like
        The data.
    model : str
        Model name sent to the API.
    function_list : sequence of (str, array_like), optional
        Parents to show the model, ``[(ansatz, params), ...]`` (see :func:`run_genetic`).
    system_prompt : str, optional
        Replaces the default system prompt.
    max_retries : int
        Further attempts, each a new call, when an attempt gives no fitted ansatz (no
        usable reply, or the server unreachable after the client's own retries).  A
        rejected key or an unknown model is not retried.
    stats : APICallStats, optional
        Counters the calls of every attempt are added to (the reference's ``stats``).
    imports : sequence of str, optional
        Import lines shown to the model: numpy and scipy.special only (see
        :func:`run_genetic`).
    n_calls : int
        Independent proposals to ask for in each attempt.
    **options
        Any keyword option of :func:`run_genetic` but ``population_size`` and
        ``num_of_generations`` (``hints``, ``allowed_functions``, ``llm_temperature``,
        ``seed``, ``progress``, ...); ``progress`` defaults to False.

    Returns
    -------
    FitResult
        Readable as the reference's dict: ``result['ansatz']``, ``['params']``,
        ``['score']``, ``['Num_params']``, ``['response']`` (the reply text),
        ``['prompt']``, ``['function_list']`` and ``['stats']`` (an
        :class:`~llmlex.response.APICallStats` of this call when ``stats`` was not
        given, else None, as in the reference).

    Raises
    ------
    TypeError
        For an unknown option (the message names the nearest one).
    NoValidAnsatzError, LLMConnectionError
        When every attempt failed (the last attempt's error).
    """
    # One implementation: the coroutine, run to completion here (also inside Jupyter).
    check_keywords(options, known=_SINGLE_CALL_OPTIONS, func="single_call")
    return run_sync(
        async_single_call(
            client,
            base64_img,
            x,
            y,
            model,
            function_list,
            system_prompt,
            max_retries,
            stats,
            imports=imports,
            n_calls=n_calls,
            **options,
        )
    )


async def async_single_call(
    client: Any,
    base64_img: str | None,
    x: ArrayLike,
    y: ArrayLike,
    model: str = DEFAULTS.model,
    function_list: Sequence[tuple[str, ArrayLike]] | None = None,
    system_prompt: str | None = DEFAULTS.system_prompt,
    max_retries: int = 3,
    stats: APICallStats | None = None,
    plot_parents: bool = False,
    imports: Sequence[str] | None = None,
    *,
    n_calls: int = 1,
    **options: Any,
) -> FitResult:
    """:func:`single_call` as a coroutine, in the reference's positional order.

    ``plot_parents`` is accepted for the reference's signature: the parents of
    ``function_list`` are always drawn over the data for a language model.  Every other
    argument, the result and the errors are those of :func:`single_call`.
    """
    del plot_parents  # always drawn
    counts, seed = _single_setup(options, max_retries, stats, "async_single_call")
    options.update(
        population_size=n_calls,
        num_of_generations=1,
        model=model,
        system_prompt=system_prompt,
        function_list=function_list,
        imports=imports,
    )
    for attempt in range(max_retries + 1):
        try:
            seeded = _attempt_seed(seed, attempt)
            run = await arun_genetic(client, base64_img, x, y, seed=seeded, **options)
        except (NoValidAnsatzError, LLMConnectionError) as err:
            _failed_attempt(counts, err, attempt, max_retries)
            continue
        return _single_result(run, counts, stats)
    raise AssertionError("unreachable")  # the loop returns or raises


def _single_setup(
    options: dict[str, Any], max_retries: int, stats: APICallStats | None, func: str
) -> tuple[APICallStats, int | None]:
    """Check a one-shot call's options; its counters and its seed (taken out of them)."""
    check_keywords(options, known=_SINGLE_CALL_OPTIONS, func=func)
    if isinstance(max_retries, bool) or int(max_retries) != max_retries or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    options.setdefault("progress", False)
    seed = options.pop("seed", DEFAULTS.seed)
    return (APICallStats() if stats is None else stats), seed


def _attempt_seed(seed: int | None, attempt: int) -> int | None:
    # A new call on a retry: a fixed seed would replay a cached failure.
    return None if seed is None else seed + attempt


def _failed_attempt(counts: APICallStats, err: Exception, attempt: int, max_retries: int) -> None:
    """Count a failed attempt; re-raise it if it was the last."""
    stage = "api_call" if isinstance(err, LLMConnectionError) else "ansatz_extraction"
    counts.stage_failure(stage, err)
    if attempt == max_retries:
        raise err
    log.info("attempt %d gave no ansatz (%s); retrying", attempt + 1, err)


def _single_result(run: GeneticRun, counts: APICallStats, stats: APICallStats | None) -> FitResult:
    """The best result of a one-shot run; its ``stats`` are the call's counters when the
    caller passed none (the reference's convention), else None."""
    counts.add_run(run.stats)
    best = run.best
    if stats is not None:
        return best
    origin = best.origin or Provenance()
    return dataclasses.replace(best, origin=dataclasses.replace(origin, stats=counts))
