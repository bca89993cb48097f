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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from llmlex._aio import run_sync
from llmlex._validation import check_xy
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import (
    AnsatzError,
    LLMConnectionError,
    LLMError,
    NoValidAnsatzError,
)
from llmlex.fit import FitResult, fit_ansatz
from llmlex.proposer import ProposalBatch, ProposalRequest, Proposer

__all__ = [
    "GeneticRun",
    "RunStats",
    "arun_genetic",
    "make_proposer",
    "run_genetic",
    "select_parents",
    "single_call",
]

log = logging.getLogger(__name__)

STAGES = ("api", "extraction", "parsing", "fitting")
#: Default relative tolerance of the parsimony rule (see :attr:`GeneticRun.best`).
PARSIMONY_RTOL = 0.05
#: Below this nchi2 two fits are both "exact" and only complexity decides between them.
EXACT_LEVEL = 1e-20


@dataclass(frozen=True)
class RunStats:
    """Counts of a search.

    Attributes
    ----------
    calls : int
        Paid API calls made.
    prompt_tokens, completion_tokens : int
        Token usage reported by the server.
    proposals : int
        Candidate ansatz texts received.
    fits : int
        Candidates parsed and fitted.
    failures : Mapping[str, int]
        Lost proposals by stage: ``api``, ``extraction``, ``parsing``, ``fitting``.
    llm_calls_saved : int
        LLM calls that hybrid mode did not need to make.
    generations : int
        Generations run.
    time : float
        Wall time in seconds.
    last_error : str
        The last failure message seen (empty if none).
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    proposals: int = 0
    fits: int = 0
    failures: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    llm_calls_saved: int = 0
    generations: int = 0
    time: float = 0.0
    last_error: str = ""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class _Counter:
    """Mutable tally behind :class:`RunStats` (only touched from the event loop thread)."""

    def __init__(self) -> None:
        self.calls = self.prompt_tokens = self.completion_tokens = 0
        self.proposals = self.fits = self.saved = self.generations = 0
        self.failures = dict.fromkeys(STAGES, 0)
        self.errors: list[tuple[str, str]] = []
        self.t0 = time.perf_counter()

    def fail(self, stage: str, message: str) -> None:
        self.failures[stage] += 1
        self.errors.append((stage, message))
        log.debug("proposal lost at %s: %s", stage, message)

    def add_batch(self, batch: ProposalBatch) -> None:
        self.calls += batch.calls
        self.prompt_tokens += batch.prompt_tokens
        self.completion_tokens += batch.completion_tokens
        self.proposals += len(batch.proposals)
        if batch.failure is not None:
            self.fail(*batch.failure)

    def snapshot(self) -> RunStats:
        return RunStats(
            calls=self.calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            proposals=self.proposals,
            fits=self.fits,
            failures=dict(self.failures),
            llm_calls_saved=self.saved,
            generations=self.generations,
            time=time.perf_counter() - self.t0,
            last_error=self.errors[-1][1] if self.errors else "",
        )


def _prefer(a: FitResult, b: FitResult, rtol: float) -> FitResult:
    """The better of two results under the parsimony rule."""
    lo, hi = (a, b) if a.nchi2 <= b.nchi2 else (b, a)
    if _within(hi.nchi2, lo.nchi2, rtol) and hi.complexity < lo.complexity:
        return hi
    return lo


def _within(value: float, best: float, rtol: float) -> bool:
    return value <= max(best * (1.0 + rtol), EXACT_LEVEL)


@dataclass(frozen=True, eq=False)
class GeneticRun(Sequence[tuple[FitResult, ...]]):
    """The outcome of :func:`run_genetic`.

    Behaves as the sequence of populations the reference library returned
    (``run[-1]`` is the last generation, each a tuple of :class:`FitResult`, best first).

    Attributes
    ----------
    populations : tuple of tuple of FitResult
        Each generation's population, best first.
    archive : tuple of FitResult
        The best result of every distinct ansatz seen, best first.
    stats : RunStats
        Calls, tokens, failures by stage, time.
    proposer : str
        Name of the proposer(s) used.
    stop_reason : str
        Why the run ended.
    parsimony_rtol : float
        Relative tolerance of the parsimony rule used by :attr:`best`.
    """

    populations: tuple[tuple[FitResult, ...], ...]
    archive: tuple[FitResult, ...]
    stats: RunStats
    proposer: str
    stop_reason: str
    parsimony_rtol: float = PARSIMONY_RTOL

    def __getitem__(self, index: Any) -> Any:
        return self.populations[index]

    def __len__(self) -> int:
        return len(self.populations)

    def __iter__(self) -> Iterator[tuple[FitResult, ...]]:
        return iter(self.populations)

    @cached_property
    def best(self) -> FitResult:
        """The simplest result whose nchi2 is within ``parsimony_rtol`` of the lowest."""
        if not self.archive:
            raise NoValidAnsatzError("the run produced no valid ansatz")
        lowest = self.archive[0].nchi2
        near = [r for r in self.archive if _within(r.nchi2, lowest, self.parsimony_rtol)]
        return min(near, key=lambda r: (r.complexity, r.nchi2))

    @cached_property
    def pareto_front(self) -> tuple[FitResult, ...]:
        """Results not beaten in both complexity and nchi2, by increasing complexity."""
        front: list[FitResult] = []
        for r in sorted(self.archive, key=lambda r: (r.complexity, r.nchi2)):
            if not front or r.nchi2 < front[-1].nchi2:
                front.append(r)
        return tuple(front)

    def __repr__(self) -> str:
        best = self.best.ansatz if self.archive else None
        return (
            f"GeneticRun(generations={len(self.populations)}, archive={len(self.archive)}, "
            f"best={best!r}, stop_reason={self.stop_reason!r})"
        )


def select_parents(
    candidates: Sequence[FitResult],
    k: int,
    *,
    temperature: float,
    rng: np.random.Generator,
) -> tuple[FitResult, ...]:
    """Draw ``k`` distinct parents by a softmax over normalised scores.

    Scores are ``-log10(nchi2)`` (nchi2 spans orders of magnitude, so a linear scale
    would make everything but the worst look equal), rescaled to [0, 1] over the
    candidates, and divided by ``temperature``: low temperatures pick the best, high
    ones pick uniformly.

    Returns
    -------
    tuple of FitResult
        Best first.
    """
    if not candidates:
        return ()
    k = min(k, len(candidates))
    u = -np.log10(np.array([max(c.nchi2, 1e-300) for c in candidates]))
    span = float(u.max() - u.min())
    z = (u - u.min()) / span if span > 0 else np.zeros_like(u)
    logits = z / max(temperature, 1e-6)
    w = np.exp(logits - logits.max())
    idx = rng.choice(len(candidates), size=k, replace=False, p=w / w.sum())
    return tuple(sorted((candidates[i] for i in idx), key=lambda r: r.nchi2))


def make_proposer(
    client: Any,
    *,
    model: str,
    system_prompt: str | None = None,
    llm_temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
) -> Proposer:
    """The proposer for a client: the offline one for ``None``, else an LLM proposer."""
    if isinstance(client, Proposer) and not hasattr(client, "chat"):
        return client
    if client is None:
        from llmlex.offline import OfflineProposer

        return OfflineProposer(seed=seed)
    from llmlex.llm import LLMProposer

    options: dict[str, Any] = {"model": model, "system_prompt": system_prompt}
    if llm_temperature is not None:
        options["temperature"] = llm_temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    return LLMProposer(client, **options)


def _fit_batch(
    batch: ProposalBatch,
    x: np.ndarray,
    y: np.ndarray,
    *,
    allowed: tuple[str, ...] | None,
    seed: int,
    fit_options: Mapping[str, Any],
) -> tuple[list[FitResult], list[tuple[str, str]]]:
    """Parse and fit every proposal of a batch (runs in a worker thread)."""
    results: list[FitResult] = []
    failures: list[tuple[str, str]] = []
    seen: set[str] = set()
    for proposal in batch.proposals:
        try:
            ansatz: Ansatz = parse_ansatz(proposal.text, allowed_functions=allowed)
        except AnsatzError as err:
            failures.append(("parsing", f"{err} in {proposal.text[:80]!r}"))
            continue
        if ansatz.text in seen:
            continue
        seen.add(ansatz.text)
        initial = ansatz.map_initial(proposal.initial)
        result = fit_ansatz(ansatz, x, y, initial=initial, seed=seed, validate=False, **fit_options)
        if result.success:
            results.append(result)
        else:
            failures.append(("fitting", f"{result.message} for {ansatz.text[:80]!r}"))
    return results, failures


class _Search:
    """State of one run: archive, counters, executor, and the per-child coroutine."""

    def __init__(
        self,
        proposer: Proposer,
        x: np.ndarray,
        y: np.ndarray,
        *,
        image: str | None,
        hints: tuple[str, ...],
        allowed: tuple[str, ...] | None,
        max_concurrency: int,
        fit_options: Mapping[str, Any],
        parsimony_rtol: float,
        counter: _Counter,
        archive: dict[str, FitResult],
        progress: Any,
    ) -> None:
        self.proposer = proposer
        self.x, self.y = x, y
        self.image = image
        self.hints = hints
        self.allowed = allowed
        self.sem = asyncio.Semaphore(max_concurrency)
        self.fit_options = fit_options
        self.rtol = parsimony_rtol
        self.counter = counter
        self.archive = archive
        self.progress = progress
        # Fits run here, off the event loop; two workers match the machines we target
        # and leave the loop thread free to drive the network.
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="llmlex-fit"
        )

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def child(
        self, parents: tuple[FitResult, ...], generation: int, seed: int
    ) -> FitResult | None:
        request = ProposalRequest(
            x=self.x,
            y=self.y,
            image=self.image,
            parents=parents,
            generation=generation,
            hints=self.hints,
            allowed_functions=self.allowed,
            seed=seed,
        )
        async with self.sem:
            batch = await self.proposer.propose(request)
        self.counter.add_batch(batch)
        best: FitResult | None = None
        if batch.proposals:
            loop = asyncio.get_running_loop()
            results, failures = await loop.run_in_executor(
                self.pool,
                lambda: _fit_batch(
                    batch,
                    self.x,
                    self.y,
                    allowed=self.allowed,
                    seed=seed,
                    fit_options=self.fit_options,
                ),
            )
            self.counter.fits += len(results)
            for stage, message in failures:
                self.counter.fail(stage, message)
            for r in results:
                self._archive(r)
                best = r if best is None else _prefer(best, r, self.rtol)
        if self.progress is not None:
            self.progress.update(1)
            if self.archive:
                self.progress.set_postfix(best_nchi2=f"{self.best_nchi2():.3g}", refresh=False)
        return best

    def _archive(self, r: FitResult) -> None:
        key = r.compiled.canonical if r.compiled is not None else r.ansatz
        old = self.archive.get(key)
        if old is None or r.nchi2 < old.nchi2:
            self.archive[key] = r

    def best_nchi2(self) -> float:
        return min((r.nchi2 for r in self.archive.values()), default=math.inf)

    def ranked(self) -> list[FitResult]:
        return sorted(self.archive.values(), key=lambda r: (r.nchi2, len(r.ansatz)))


_COMPAT_OPTIONS = ("use_async", "for_kan", "demonstrate_parent_plotting", "plot_parents")


def _reject_unknown(unknown: Mapping[str, Any], known: Sequence[str], func: str) -> None:
    for name in unknown:
        if name in _COMPAT_OPTIONS:
            log.debug("%s: option %r is accepted for compatibility and ignored", func, name)
            continue
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise TypeError(f"{func}() got an unexpected keyword argument {name!r}{hint}")


def _seed_ints(seed: int | None, n: int) -> list[int]:
    ss = np.random.SeedSequence(seed)
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="child", leave=False)


async def arun_genetic(
    client: Any,
    base64_img: str | None,
    x: Any,
    y: Any,
    population_size: int = 5,
    num_of_generations: int = 3,
    temperature: float = 1.0,
    model: str = "openai/gpt-4o",
    exit_condition: float = 1e-10,
    elite: bool = True,
    *,
    proposer: Proposer | None = None,
    max_concurrency: int = 8,
    system_prompt: str | None = None,
    hints: Sequence[str] | str = (),
    allowed_functions: Sequence[str] | None = None,
    llm_temperature: float | None = None,
    max_tokens: int | None = None,
    num_parents: int = 2,
    hybrid: bool = False,
    parsimony_rtol: float = PARSIMONY_RTOL,
    fit_starts: int = 8,
    fit_timeout: float = 5.0,
    seed: int | None = None,
    progress: bool = True,
    callback: Callable[[int, tuple[FitResult, ...]], None] | None = None,
    time_budget: float | None = None,
    patience: int | None = None,
    **compat: Any,
) -> GeneticRun:
    """Asynchronous :func:`run_genetic`; await it inside a running event loop."""
    _reject_unknown(compat, _RUN_OPTIONS, "run_genetic")
    x, y = check_xy(x, y)
    if population_size < 1 or num_of_generations < 1:
        raise ValueError("population_size and num_of_generations must be at least 1")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if isinstance(hints, str):
        hints = (hints,)
    allowed = tuple(allowed_functions) if allowed_functions is not None else None
    counter = _Counter()
    archive: dict[str, FitResult] = {}
    populations: list[tuple[FitResult, ...]] = []
    names: list[str] = []
    fit_options = {"n_starts": fit_starts, "timeout": fit_timeout}

    stages: list[Proposer] = []
    if proposer is not None:
        stages.append(proposer)
    else:
        main = make_proposer(
            client,
            model=model,
            system_prompt=system_prompt,
            llm_temperature=llm_temperature,
            max_tokens=max_tokens,
            seed=seed,
        )
        if hybrid and client is not None:
            stages.append(make_proposer(None, model=model, seed=seed))
        stages.append(main)

    rng = np.random.default_rng(seed)
    stop_reason = "all generations done"
    deadline = None if time_budget is None else time.perf_counter() + time_budget
    stale = 0  # generations without a 1% improvement of the best nchi2
    bar = _progress_bar(population_size * num_of_generations * len(stages), progress, "llmlex")
    try:
        for stage_no, stage in enumerate(stages):
            names.append(stage.name)
            stale = 0
            is_llm_stage = stage_no > 0  # in hybrid mode the offline stage comes first
            search = _Search(
                stage,
                x,
                y,
                image=base64_img,
                hints=tuple(hints),
                allowed=allowed,
                max_concurrency=max_concurrency,
                fit_options=fit_options,
                parsimony_rtol=parsimony_rtol,
                counter=counter,
                archive=archive,
                progress=bar,
            )
            try:
                for _ in range(num_of_generations):
                    if deadline is not None and populations and time.perf_counter() > deadline:
                        stop_reason = f"time budget of {time_budget:g} s spent"
                        break
                    seeds = _seed_ints(int(rng.integers(2**63)), population_size)
                    ranked = search.ranked()[:population_size]
                    before = search.best_nchi2()
                    tasks = []
                    for k in range(population_size):
                        parents = (
                            select_parents(ranked, num_parents, temperature=temperature, rng=rng)
                            if ranked
                            else ()
                        )
                        tasks.append(search.child(parents, len(populations), seeds[k]))
                    children = await asyncio.gather(*tasks)
                    counter.generations += 1
                    pop = [c for c in children if c is not None]
                    if elite and ranked:
                        keys = {c.ansatz for c in pop}
                        pop.extend(r for r in ranked[:1] if r.ansatz not in keys)
                    pop.sort(key=lambda r: r.nchi2)
                    populations.append(tuple(pop))
                    if callback is not None:
                        callback(len(populations) - 1, populations[-1])
                    if search.best_nchi2() <= exit_condition:
                        stop_reason = f"exit_condition {exit_condition:g} reached"
                        break
                    stale = stale + 1 if search.best_nchi2() > 0.99 * before else 0
                    if patience is not None and stale >= patience:
                        stop_reason = f"no improvement in {patience} generation(s)"
                        break
            finally:
                search.close()
            if stop_reason.startswith("time budget"):
                break
            if search.best_nchi2() <= exit_condition:
                if not is_llm_stage and len(stages) > 1:
                    counter.saved = population_size * num_of_generations
                    stop_reason = (
                        f"exit_condition {exit_condition:g} reached offline; "
                        f"{counter.saved} LLM calls saved"
                    )
                break
    finally:
        if bar is not None:
            bar.close()

    stats = counter.snapshot()
    if not archive:
        raise _no_result_error(stats, counter.errors)
    ranked_all = sorted(archive.values(), key=lambda r: (r.nchi2, len(r.ansatz)))
    log.info(
        "run ended (%s): best nchi2 %.3g, %d calls, failures %s",
        stop_reason,
        ranked_all[0].nchi2,
        stats.calls,
        dict(stats.failures),
    )
    return GeneticRun(
        populations=tuple(populations),
        archive=tuple(ranked_all),
        stats=stats,
        proposer="+".join(names),
        stop_reason=stop_reason,
        parsimony_rtol=parsimony_rtol,
    )


def _no_result_error(stats: RunStats, errors: list[tuple[str, str]]) -> LLMError:
    summary = ", ".join(f"{k}: {v}" for k, v in stats.failures.items() if v) or "no proposals"
    last = errors[-1][1] if errors else "no proposal was returned"
    api = [m for s, m in errors if s == "api"]
    if (
        api
        and len(api) == len(errors)
        and all(m.startswith(("APIConnectionError", "APITimeoutError")) for m in api)
    ):
        return LLMConnectionError(
            f"every call failed to reach the server ({summary}); last error: {last}"
        )
    return NoValidAnsatzError(f"no valid ansatz was produced ({summary}); last error: {last}")


def run_genetic(
    client: Any,
    base64_img: str | None,
    x: Any,
    y: Any,
    population_size: int = 5,
    num_of_generations: int = 3,
    temperature: float = 1.0,
    model: str = "openai/gpt-4o",
    exit_condition: float = 1e-10,
    elite: bool = True,
    **options: Any,
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
    exit_condition : float
        Stop as soon as the best nchi2 is at or below this.
    elite : bool
        Carry the best result so far into every population.
    proposer : Proposer, optional
        Overrides the proposer chosen from ``client``.
    max_concurrency : int
        Most proposal calls in flight at once.
    system_prompt : str, optional
        Replaces the default system prompt.
    hints : str or sequence of str
        Prior knowledge for the proposer ("periodic", "decays to zero", "no exp").
    allowed_functions : sequence of str, optional
        The only functions an ansatz may use (others are rejected at parsing).
    llm_temperature : float, optional
        Sampling temperature of the language model.
    max_tokens : int, optional
        Reply length limit of the language model.
    num_parents : int
        Parents shown per child after the first generation.
    hybrid : bool
        With a client: run the offline proposer first and call the LLM only if it misses
        ``exit_condition`` (``stats.llm_calls_saved`` counts what that saved).
    parsimony_rtol : float
        Results within this relative nchi2 of the best compete on complexity.
    fit_starts, fit_timeout : int, float
        Optimiser starts and time budget of each fit.
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
    """
    workers = int(options.get("max_concurrency", 8)) + 2
    coro = arun_genetic(
        client,
        base64_img,
        x,
        y,
        population_size,
        num_of_generations,
        temperature,
        model,
        exit_condition,
        elite,
        **options,
    )
    return run_sync(coro, workers=workers)


_RUN_OPTIONS = (
    "proposer",
    "max_concurrency",
    "system_prompt",
    "hints",
    "allowed_functions",
    "llm_temperature",
    "max_tokens",
    "num_parents",
    "hybrid",
    "parsimony_rtol",
    "fit_starts",
    "fit_timeout",
    "seed",
    "progress",
    "callback",
    "time_budget",
    "patience",
)


def single_call(
    client: Any,
    base64_img: str | None,
    x: Any,
    y: Any,
    model: str = "openai/gpt-4o",
    *,
    n_calls: int = 1,
    **options: Any,
) -> FitResult:
    """Ask the proposer once (or ``n_calls`` times concurrently) and return the best fit.

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
    n_calls : int
        Independent proposals to ask for.
    **options
        Any keyword option of :func:`run_genetic` (``system_prompt``, ``hints``,
        ``allowed_functions``, ``llm_temperature``, ``seed``, ``progress``, ...).

    Returns
    -------
    FitResult
        Readable as ``result['ansatz']``, ``result['params']``, ``result['score']``.
    """
    options.setdefault("progress", False)
    run = run_genetic(
        client,
        base64_img,
        x,
        y,
        population_size=n_calls,
        num_of_generations=1,
        model=model,
        **options,
    )
    return run.best
