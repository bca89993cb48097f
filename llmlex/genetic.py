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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmlex._aio import run_sync
from llmlex._checkpoint import CheckpointFile, options_mismatch
from llmlex._jsonio import data_fingerprint, encode_float
from llmlex._results import (
    CHECKPOINT_KIND,
    PARSIMONY_RTOL,
    STAGES,
    GeneticRun,
    RunStats,
    decode_results,
    encode_results,
    prefer,
    stats_from_dict,
    stats_to_dict,
)
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


class _Counter:
    """Mutable tally behind :class:`RunStats` (only touched from the event loop thread)."""

    def __init__(self) -> None:
        self.calls = self.prompt_tokens = self.completion_tokens = 0
        self.proposals = self.fits = self.saved = self.generations = 0
        self.cache_hits = 0
        self.failures = dict.fromkeys(STAGES, 0)
        self.errors: list[tuple[str, str]] = []
        self.t0 = time.perf_counter()
        self.time_before = 0.0  # wall time of the run before a resume
        # USD per token (prompt, completion) of the current stage's model, if known.
        self.price: tuple[float, float] | None = None
        self.cost: float | None = None
        self.reserved = 0  # paid calls started and not yet counted

    def restore(self, stats: RunStats, errors: Sequence[tuple[str, str]]) -> None:
        """Continue the counts of a checkpointed run."""
        self.calls, self.prompt_tokens = stats.calls, stats.prompt_tokens
        self.completion_tokens, self.proposals = stats.completion_tokens, stats.proposals
        self.fits, self.saved = stats.fits, stats.llm_calls_saved
        self.generations = stats.generations
        self.cache_hits, self.cost = stats.cache_hits, stats.cost
        self.failures = {k: int(stats.failures.get(k, 0)) for k in STAGES}
        self.errors = [(str(a), str(b)) for a, b in errors]
        self.time_before = stats.time

    def fail(self, stage: str, message: str) -> None:
        self.failures[stage] += 1
        self.errors.append((stage, message))
        log.debug("proposal lost at %s: %s", stage, message)

    def add_batch(self, batch: ProposalBatch) -> None:
        self.calls += batch.calls
        self.prompt_tokens += batch.prompt_tokens
        self.completion_tokens += batch.completion_tokens
        self.proposals += len(batch.proposals)
        self.cache_hits += int(getattr(batch, "cache_hits", 0))
        if self.price is not None:
            spent = batch.prompt_tokens * self.price[0] + batch.completion_tokens * self.price[1]
            self.cost = (self.cost or 0.0) + spent
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
            time=self.time_before + time.perf_counter() - self.t0,
            last_error=self.errors[-1][1] if self.errors else "",
            cache_hits=self.cache_hits,
            cost=self.cost,
        )


@dataclass(frozen=True)
class _Budgets:
    """Spending limits of a run (None: unlimited)."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None

    def spent(self, counter: _Counter) -> str | None:
        """Why no new paid call may start, or None.

        Calls are counted with those already started (``reserved``), so concurrent
        children never exceed ``max_calls``; tokens and cost are only known when a call
        returns, so calls in flight may overshoot those two.
        """
        if self.max_calls is not None and counter.calls + counter.reserved >= self.max_calls:
            return f"max_calls budget of {self.max_calls} calls reached"
        if self.max_tokens is not None and (
            counter.prompt_tokens + counter.completion_tokens >= self.max_tokens
        ):
            return f"max_tokens budget of {self.max_tokens} tokens reached"
        if self.max_cost is not None and (counter.cost or 0.0) >= self.max_cost:
            return f"max_cost budget of {self.max_cost:g} USD reached"
        return None


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
    cache: Any = None,
) -> Proposer:
    """The proposer for a client: the offline one for ``None``, else an LLM proposer.

    ``max_tokens`` is the reply-length cap of each call; ``cache`` a reply cache (or its
    directory) for the LLM proposer.
    """
    if isinstance(client, Proposer) and not hasattr(client, "chat"):
        return client
    if client is None:
        from llmlex.offline import OfflineProposer

        return OfflineProposer(seed=seed)
    from llmlex.llm import LLMProposer

    options: dict[str, Any] = {"model": model, "system_prompt": system_prompt, "cache": cache}
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
        budgets: _Budgets | None = None,
    ) -> None:
        self.proposer = proposer
        self.budgets = budgets  # None: this stage costs nothing (offline)
        self.budget_hit: str | None = None
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
            if self.budgets is not None:
                # Checked and reserved inside the semaphore, so that children queued
                # behind it see every call started before them.
                reason = self.budgets.spent(self.counter)
                if reason is not None:
                    self.budget_hit = reason
                    if self.progress is not None:
                        self.progress.update(1)
                    return None
                self.counter.reserved += 1
            try:
                batch = await self.proposer.propose(request)
            finally:
                if self.budgets is not None:
                    self.counter.reserved -= 1
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
                best = r if best is None else prefer(best, r, self.rtol)
        if self.progress is not None:
            self.progress.update(1)
            if self.archive:
                self.progress.set_postfix(best_nchi2=f"{self.best_nchi2():.3g}", refresh=False)
        return best

    def _archive(self, r: FitResult) -> None:
        key = _archive_key(r)
        old = self.archive.get(key)
        if old is None or r.nchi2 < old.nchi2:
            self.archive[key] = r

    def best_nchi2(self) -> float:
        return min((r.nchi2 for r in self.archive.values()), default=math.inf)

    def ranked(self) -> list[FitResult]:
        return sorted(self.archive.values(), key=lambda r: (r.nchi2, len(r.ansatz)))


def _archive_key(r: FitResult) -> str:
    return r.compiled.canonical if r.compiled is not None else r.ansatz


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


def _check_prices(
    prices: Mapping[str, Sequence[float]] | None,
) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name, pair in (prices or {}).items():
        try:
            p_in, p_out = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(
                f"prices[{name!r}] must be (usd_per_1M_prompt_tokens, "
                f"usd_per_1M_completion_tokens), got {pair!r}"
            ) from None
        if not (p_in >= 0 and p_out >= 0 and math.isfinite(p_in + p_out)):
            raise ValueError(f"prices[{name!r}] must be finite and non-negative, got {pair!r}")
        out[str(name)] = (p_in, p_out)
    return out


def _checkpoint_body(
    *,
    populations: Sequence[tuple[FitResult, ...]],
    archive: Mapping[str, FitResult],
    counter: _Counter,
    rng: np.random.Generator,
    position: Mapping[str, int],
    proposer: str,
    stop_reason: str | None,
    parsimony_rtol: float,
) -> dict[str, Any]:
    """A run's state as checkpoint fields (the fingerprint is added by the file)."""
    # The archive is written in insertion order (ties in the ranking depend on it).
    body: dict[str, Any] = encode_results(populations, list(archive.values()))
    body.update(
        stats=stats_to_dict(counter.snapshot()),
        errors=[list(e) for e in counter.errors[-50:]],
        position=dict(position),
        rng=rng.bit_generator.state,
        proposer=proposer,
        finished=stop_reason is not None,
        stop_reason=stop_reason or f"interrupted after {len(populations)} generation(s)",
        parsimony_rtol=encode_float(parsimony_rtol),
    )
    return body


def _mismatch(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    if saved.get("data") != now["data"]:
        return "different data (x, y)"
    return options_mismatch(saved.get("options") or {}, now["options"])


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
    llm_max_tokens: int | None = None,
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
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = True,
    cache: Any = None,
    max_calls: int | None = None,
    max_tokens: int | None = None,
    max_cost: float | None = None,
    prices: Mapping[str, Sequence[float]] | None = None,
    **compat: Any,
) -> GeneticRun:
    """Asynchronous :func:`run_genetic`; await it inside a running event loop.

    Takes the same arguments and returns the same :class:`GeneticRun`.
    """
    _reject_unknown(compat, _RUN_OPTIONS, "run_genetic")
    x, y = check_xy(x, y)
    if population_size < 1 or num_of_generations < 1:
        raise ValueError("population_size and num_of_generations must be at least 1")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    for name, limit in (("max_calls", max_calls), ("max_tokens", max_tokens)):
        if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {limit!r}")
    if max_cost is not None and not (max_cost >= 0):
        raise ValueError(f"max_cost must be non-negative, got {max_cost!r}")
    price_table = _check_prices(prices)
    if isinstance(hints, str):
        hints = (hints,)
    allowed = tuple(allowed_functions) if allowed_functions is not None else None
    if cache is not None and seed is None:
        # Cached replies are keyed by each request's seed, and those derive from `seed`:
        # a fixed default is what lets a re-run of the same cell hit the cache.
        seed = 0
    counter = _Counter()
    archive: dict[str, FitResult] = {}
    populations: list[tuple[FitResult, ...]] = []
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
            max_tokens=llm_max_tokens,
            seed=seed,
            cache=cache,
        )
        if hybrid and client is not None:
            stages.append(make_proposer(None, model=model, seed=seed))
        stages.append(main)
    # Budgets bind paid stages only: the offline proposer costs nothing.
    paid = [s.name != "offline" for s in stages]
    budgets = _Budgets(max_calls=max_calls, max_tokens=max_tokens, max_cost=max_cost)
    stage_prices: list[tuple[float, float] | None] = []
    for stage, is_paid in zip(stages, paid, strict=True):
        stage_model = str(getattr(stage, "model", model))
        price = price_table.get(stage_model) if is_paid else None
        if is_paid and max_cost is not None and price is None:
            raise ValueError(
                f"max_cost needs the price of model {stage_model!r}: pass "
                f"prices={{{stage_model!r}: (usd_per_1M_prompt_tokens, "
                "usd_per_1M_completion_tokens)}"
            )
        stage_prices.append(None if price is None else (price[0] / 1e6, price[1] / 1e6))

    rng = np.random.default_rng(seed)
    start_stage, start_gen, stale = 0, 0, 0
    ckpt: CheckpointFile | None = None
    if checkpoint is not None:
        fingerprint: dict[str, Any] = {
            "data": data_fingerprint(x, y),
            "options": {
                "population_size": int(population_size),
                "temperature": float(temperature),
                "model": str(model),
                "elite": bool(elite),
                "num_parents": int(num_parents),
                "hybrid": bool(hybrid),
                "parsimony_rtol": float(parsimony_rtol),
                "fit_starts": int(fit_starts),
                "seed": seed,
                "hints": list(hints),
                "allowed_functions": None if allowed is None else list(allowed),
                "system_prompt": system_prompt,
                "llm_temperature": llm_temperature,
                "llm_max_tokens": llm_max_tokens,
                "proposer": "+".join(s.name for s in stages),
                "image": None
                if base64_img is None
                else hashlib.sha256(base64_img.encode()).hexdigest(),
            },
        }
        ckpt = CheckpointFile(checkpoint, kind=CHECKPOINT_KIND, what="run", fingerprint=fingerprint)
        if resume and ckpt.exists():
            doc = ckpt.read()
            ckpt.check(_mismatch(doc, fingerprint))
            saved_pops, saved_archive = decode_results(doc)
            populations = list(saved_pops)
            for r in saved_archive:
                archive[_archive_key(r)] = r
            counter.restore(stats_from_dict(doc["stats"]), doc.get("errors", []))
            rng.bit_generator.state = doc["rng"]
            start_stage = int(doc["position"]["stage"])
            start_gen = int(doc["position"]["generation"])
            stale = int(doc["position"]["stale"])
            log.info(
                "resuming from %s: %d generation(s), %d calls already made",
                ckpt.path,
                len(populations),
                counter.calls,
            )

    def save(stage_no: int, gen: int, stop_reason: str | None) -> None:
        if ckpt is None:
            return
        body = _checkpoint_body(
            populations=populations,
            archive=archive,
            counter=counter,
            rng=rng,
            position={"stage": stage_no, "generation": gen, "stale": stale},
            proposer="+".join(s.name for s in stages[: stage_no + 1]),
            stop_reason=stop_reason,
            parsimony_rtol=parsimony_rtol,
        )
        ckpt.write(body)

    stop_reason = "all generations done"
    halt = False  # a time or money budget ends the whole run, not only the stage
    deadline = None if time_budget is None else time.perf_counter() + time_budget
    bar = _progress_bar(population_size * num_of_generations * len(stages), progress, "llmlex")
    if bar is not None and populations:
        bar.update(population_size * len(populations))
    stage_no = start_stage
    gen = start_gen
    try:
        for stage_no in range(start_stage, len(stages)):
            stage = stages[stage_no]
            gen = start_gen if stage_no == start_stage else 0
            if stage_no != start_stage:
                stale = 0
            is_llm_stage = stage_no > 0  # in hybrid mode the offline stage comes first
            counter.price = stage_prices[stage_no]
            if counter.price is not None and counter.cost is None:
                counter.cost = 0.0
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
                budgets=budgets if paid[stage_no] else None,
            )
            try:
                while gen < num_of_generations:
                    # Checked before a generation too, so that resuming a finished run
                    # makes no call.
                    if populations and search.best_nchi2() <= exit_condition:
                        stop_reason = f"exit_condition {exit_condition:g} reached"
                        break
                    if gen > 0 and patience is not None and stale >= patience:
                        stop_reason = f"no improvement in {patience} generation(s)"
                        break
                    if deadline is not None and populations and time.perf_counter() > deadline:
                        stop_reason = f"time budget of {time_budget:g} s spent"
                        halt = True
                        break
                    spent = budgets.spent(counter) if paid[stage_no] else None
                    if spent is not None:
                        stop_reason, halt = spent, True
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
                    gen += 1
                    pop = [c for c in children if c is not None]
                    if elite and ranked:
                        keys = {c.ansatz for c in pop}
                        pop.extend(r for r in ranked[:1] if r.ansatz not in keys)
                    pop.sort(key=lambda r: r.nchi2)
                    populations.append(tuple(pop))
                    stale = stale + 1 if search.best_nchi2() > 0.99 * before else 0
                    # Written before the callback, so that a callback that raises (or a
                    # kill) loses nothing already paid for.
                    save(stage_no, gen, None)
                    if callback is not None:
                        callback(len(populations) - 1, populations[-1])
                    if search.best_nchi2() <= exit_condition:
                        stop_reason = f"exit_condition {exit_condition:g} reached"
                        break
                    if patience is not None and stale >= patience:
                        stop_reason = f"no improvement in {patience} generation(s)"
                        break
                    if search.budget_hit is not None:
                        stop_reason, halt = search.budget_hit, True
                        break
            finally:
                search.close()
            if halt:
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
    save(stage_no, gen, stop_reason)
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
        proposer="+".join(s.name for s in stages[: stage_no + 1]),
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
    llm_max_tokens : int, optional
        Reply length limit of each language-model call (the API's ``max_tokens``).
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
    "llm_max_tokens",
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
    "checkpoint",
    "resume",
    "cache",
    "max_calls",
    "max_tokens",
    "max_cost",
    "prices",
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
