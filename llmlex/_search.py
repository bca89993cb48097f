"""One generation's machinery: parents, children, fits, the archive, fail-fast, counts.

:class:`Search` holds what a stage of the genetic search shares between its children
(the archive of fitted ansätze, the counters, the worker threads that fit) and runs one
child: a proposal request, its parse and fit off the event loop, and the bookkeeping.  A
candidate that fails anywhere is that candidate's failure, counted by stage.
:class:`FailFast` stops a run whose calls keep failing for the same systematic reason.
:class:`~llmlex._genetic_loop.GeneticLoop` drives the generations with these.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from llmlex._llmcall import Ledger, Usage
from llmlex._progress import progress_bar as make_bar
from llmlex._results import (
    STAGES,
    RunStats,
    prefer,
    selection_key,
)
from llmlex._settings import GeneticSettings
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import (
    AnsatzError,
    LLMConnectionError,
    LLMError,
    NoValidAnsatzError,
)
from llmlex.fit import FitResult, Provenance, fit_ansatz, given_result
from llmlex.offline import OfflineProposer
from llmlex.proposer import ProposalBatch, ProposalRequest, Proposer

__all__ = [
    "FailFast",
    "Search",
    "Stop",
    "Tally",
    "archive_key",
    "given_parents",
    "make_proposer",
    "progress_bar",
    "rank_key",
    "seed_ints",
    "select_parents",
]

log = logging.getLogger("llmlex._genetic_loop")

T = TypeVar("T")
#: Why the search stops, and whether the whole run (not only the stage) ends.
Stop = tuple[str, bool]


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
    fit_timeout: float | None = 5.0,
) -> Proposer:
    """The proposer for a client: the offline one for ``None``, else an LLM proposer.

    ``max_tokens`` is the reply-length cap of each call; ``cache`` a reply cache (or its
    directory) for the LLM proposer; ``fit_timeout`` the run's per-fit clock (``None``:
    none, and the offline proposer's ranking fits have none either).
    """
    if isinstance(client, Proposer) and not hasattr(client, "chat"):
        return client
    if client is None:
        return OfflineProposer(seed=seed, fit_timeout=None if fit_timeout is None else 2.0)
    # Deferred: llm draws its images with matplotlib, which offline runs never need.
    from llmlex.llm import LLMProposer

    options: dict[str, Any] = {"model": model, "system_prompt": system_prompt, "cache": cache}
    if llm_temperature is not None:
        options["temperature"] = llm_temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    return LLMProposer(client, **options)


def given_parents(
    function_list: Sequence[tuple[str, Sequence[float]]],
    to_search: Callable[[str], str],
    x: np.ndarray,
    y: np.ndarray,
    noise: float | None,
) -> tuple[FitResult, ...]:
    """``function_list`` (``[(ansatz, params), ...]`` in the user's units) as results on
    the search's data, with the given values (``to_search`` maps a text there).

    Raises
    ------
    ValueError
        For an ansatz that does not parse or does not match its values.
    """
    out = []
    for text, values in function_list:
        try:
            out.append(
                given_result(
                    to_search(text), values, x, y, noise=noise, message="given in function_list"
                )
            )
        except ValueError as err:  # AnsatzError included
            raise ValueError(f"function_list: {text[:80]!r}: {err}") from None
    return tuple(out)


def _fit_batch(
    batch: ProposalBatch,
    x: np.ndarray,
    y: np.ndarray,
    *,
    allowed: tuple[str, ...] | None,
    seed: int,
    fit_options: Mapping[str, Any],
    origin: Provenance | None = None,
) -> tuple[list[FitResult], list[tuple[str, str]], bool]:
    """Parse and fit every proposal of a batch (runs in a worker thread); each result
    carries ``origin``.

    Any exception raised for one proposal (a parser, numpy or scipy error, a function
    that rejects its arguments) is that proposal's failure, counted at the stage where it
    happened; only a ``BaseException`` that is not an ``Exception`` (Ctrl-C, a cancelled
    task) goes through.  Also returns whether any proposal parsed.
    """
    results: list[FitResult] = []
    failures: list[tuple[str, str]] = []
    seen: set[str] = set()
    parsed = False
    for proposal in batch.proposals:
        try:
            ansatz: Ansatz = parse_ansatz(proposal.text, allowed_functions=allowed)
        except AnsatzError as err:
            failures.append(("parsing", f"{err} in {proposal.text[:80]!r}"))
            continue
        except Exception as err:  # a parser bug costs this proposal, not the run
            failures.append(("parsing", f"{_describe(err)} in {proposal.text[:80]!r}"))
            continue
        parsed = True
        if ansatz.text in seen:
            continue
        seen.add(ansatz.text)
        try:
            initial = ansatz.map_initial(proposal.initial)
            result = fit_ansatz(
                ansatz, x, y, initial=initial, seed=seed, validate=False, **fit_options
            )
            if result.success:
                if origin is not None:
                    # Set on the new, unshared result rather than copied with
                    # dataclasses.replace, which would drop its cached properties.
                    object.__setattr__(result, "origin", origin)
                # Computed here, off the event loop and inside this guard: the archive
                # key and the parsimony rule read them (both go through sympy).
                archive_key(result)
                result.complexity  # noqa: B018
        except Exception as err:  # e.g. a TypeError from a function's arguments
            failures.append(("fitting", f"{_describe(err)} for {ansatz.text[:80]!r}"))
            continue
        if result.success:
            results.append(result)
        else:
            failures.append(("fitting", f"{result.message} for {ansatz.text[:80]!r}"))
    return results, failures, parsed


def _describe(err: Exception) -> str:
    """``"<ErrorClass>: message"``, one line, bounded."""
    text = " ".join(str(err).split())[:300]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


#: Calls in a row that could not reach the server (connection refused, unknown host)
#: after which a run stops: every further call would fail the same way.
UNREACHABLE_LIMIT = 3


class FailFast:
    """Stops a run whose calls keep failing for one systematic reason (no wasted calls).

    Two reasons are recognised here (a rejected key and an unknown model already raise
    at the first call): :data:`UNREACHABLE_LIMIT` calls in a row that could not reach the
    server, and -- while no reply of the run has held a parseable ansatz --
    ``max_unparseable`` replies in a row with none (a model that does not follow the
    format, a reply cut off by ``max_tokens``, an endpoint that answers with something
    else).  Once a reply parsed, unparseable ones are the model's usual noise and never
    stop the run.  Failures that say nothing about the next call (429, 5xx, timeouts)
    neither count nor reset.  Counts follow the order in which calls return.

    Parameters
    ----------
    max_unparseable : int or None
        Unparseable replies in a row that stop a run (None: never).
    endpoint : str
        The model and URL, for the messages.
    """

    def __init__(self, max_unparseable: int | None, endpoint: str) -> None:
        self.max_unparseable = max_unparseable
        self.endpoint = endpoint
        self.unreachable = 0
        self.unparseable = 0
        self.usable = False
        self.error: LLMError | None = None

    def observe(self, batch: ProposalBatch, parsed: bool, tally: Tally) -> LLMError | None:
        """Count one returned child; the error that ends the run, if it now should."""
        if self.error is not None:
            return self.error
        stage, message = batch.failure if batch.failure is not None else (None, "")
        if stage == "api":
            if message.startswith("APIConnectionError"):
                self.unreachable += 1
            elif not message.startswith("APITimeoutError"):
                self.unreachable = 0  # the server answered (429, 5xx, bad JSON)
        elif batch.calls or getattr(batch, "cache_hits", 0) or batch.proposals:
            self.unreachable = 0
            if parsed:
                self.usable, self.unparseable = True, 0
            elif not self.usable:
                self.unparseable += 1
        summary = _failure_summary(tally)
        if self.unreachable >= UNREACHABLE_LIMIT:
            self.error = LLMConnectionError(
                f"{self.unreachable} calls in a row could not reach {self.endpoint} "
                f"({summary}); last error: {message}. Check that the server is running "
                "and reachable from here, and that base_url is right (the API root, e.g. "
                "'https://openrouter.ai/api/v1' or 'http://localhost:11434/v1')."
            )
        elif self.max_unparseable is not None and self.unparseable >= self.max_unparseable:
            last = tally.errors[-1][1] if tally.errors else "no ansatz in the reply"
            self.error = NoValidAnsatzError(
                f"the first {self.unparseable} replies of {self.endpoint} held no "
                f"parseable ansatz ({summary}); last error: {last}. Check the model name "
                "(an instruction-following, vision-capable model), that llm_max_tokens "
                "leaves room for the answer, the system_prompt if you set one, and the "
                "API key and base_url (a proxy may answer with something else); "
                "max_unparseable=None disables this check."
            )
        return self.error


def _failure_summary(tally: Tally) -> str:
    return ", ".join(f"{k}: {v}" for k, v in tally.failures.items() if v) or "no failures"


def _endpoint(proposer: Proposer) -> str:
    """``model 'm' at <base_url>`` for an LLM proposer, else the proposer's name."""
    url = getattr(proposer, "base_url", None)
    model = getattr(proposer, "model", None)
    if url is None:
        return f"proposer {proposer.name!r}"
    return f"model {model!r} at {url}" if model is not None else str(url)


class Tally:
    """The counts behind :class:`RunStats`: the ledger's spending plus the search's own
    (only touched from the event loop thread)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.proposals = self.fits = self.saved = self.generations = 0
        self.failures = dict.fromkeys(STAGES, 0)
        self.errors: list[tuple[str, str]] = []
        self.t0 = time.perf_counter()
        self.time_before = 0.0  # wall time of the run before a resume

    def restore(self, stats: RunStats, errors: Sequence[tuple[str, str]]) -> None:
        """Continue the counts of a checkpointed run."""
        usage = Usage(stats.calls, stats.prompt_tokens, stats.completion_tokens, stats.cache_hits)
        self.ledger.restore(usage, stats.cost)
        self.proposals, self.fits = stats.proposals, stats.fits
        self.saved, self.generations = stats.llm_calls_saved, stats.generations
        self.failures = {k: int(stats.failures.get(k, 0)) for k in STAGES}
        self.errors = [(str(a), str(b)) for a, b in errors]
        self.time_before = stats.time

    def fail(self, stage: str, message: str) -> None:
        self.failures[stage] += 1
        self.errors.append((stage, message))
        log.debug("proposal lost at %s: %s", stage, message)

    def add_batch(self, batch: ProposalBatch) -> None:
        # A batch is the proposer's receipt: any proposer is counted the same way.
        cache_hits = int(getattr(batch, "cache_hits", 0))
        self.ledger.record(
            Usage(batch.calls, batch.prompt_tokens, batch.completion_tokens, cache_hits)
        )
        self.proposals += len(batch.proposals)
        if batch.failure is not None:
            self.fail(*batch.failure)

    def snapshot(self) -> RunStats:
        spent = self.ledger
        return RunStats(
            calls=spent.calls,
            prompt_tokens=spent.prompt_tokens,
            completion_tokens=spent.completion_tokens,
            proposals=self.proposals,
            fits=self.fits,
            failures=dict(self.failures),
            llm_calls_saved=self.saved,
            generations=self.generations,
            time=self.time_before + time.perf_counter() - self.t0,
            last_error=self.errors[-1][1] if self.errors else "",
            cache_hits=spent.cache_hits,
            cost=spent.cost,
        )


class Search:
    """One stage of a run: its proposer, the shared archive, and the per-child coroutine."""

    def __init__(
        self,
        proposer: Proposer,
        x: np.ndarray,
        y: np.ndarray,
        *,
        settings: GeneticSettings,
        image: str | None,
        tally: Tally,
        archive: dict[str, FitResult],
        progress: Any,
        paid: bool,
        fit_options: Mapping[str, Any],
        x_unit: float = 1.0,
    ) -> None:
        self.proposer = proposer
        self.x_unit = x_unit
        self.paid = paid  # False: this stage costs nothing (offline) and has no budget
        self.budget_hit: str | None = None
        self.x, self.y = x, y
        self.image = image
        self.hints = settings.prompt_hints
        self.allowed = settings.allowed_functions
        self.sem = asyncio.Semaphore(settings.max_concurrency)
        self.fit_options = fit_options
        self.rtol = settings.parsimony_rtol
        self.tally = tally
        self.archive = archive
        self.progress = progress
        self.failfast = FailFast(settings.max_unparseable, _endpoint(proposer))
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
            x_unit=self.x_unit,
        )
        ledger = self.tally.ledger
        async with self.sem:
            if self.failfast.error is not None:
                return None  # the run is ending: no further call
            if self.paid:
                # Reserved inside the semaphore, so that children queued behind it see
                # every call started before them.
                reason = ledger.reserve()
                if reason is not None:
                    self.budget_hit = reason
                    if self.progress is not None:
                        self.progress.update(1)
                    return None
            try:
                batch = await self.proposer.propose(request)
            finally:
                if self.paid:
                    ledger.release()
        self.tally.add_batch(batch)
        best, parsed = await self._fit(batch, seed, parents) if batch.proposals else (None, False)
        if self.progress is not None:
            self.progress.update(1)
            if self.archive:
                self.progress.set_postfix(best_nchi2=f"{self.best_nchi2():.3g}", refresh=False)
        if self.paid:
            stop = self.failfast.observe(batch, parsed, self.tally)
            if stop is not None:
                raise stop
        return best

    async def _fit(
        self, batch: ProposalBatch, seed: int, parents: tuple[FitResult, ...]
    ) -> tuple[FitResult | None, bool]:
        """Fit a batch off the event loop; archive every fit; the best, and if any parsed."""
        loop = asyncio.get_running_loop()
        origin = Provenance(
            proposer=self.proposer.name, response=batch.reply, prompt=batch.prompt, parents=parents
        )
        results, failures, parsed = await loop.run_in_executor(
            self.pool,
            lambda: _fit_batch(
                batch,
                self.x,
                self.y,
                allowed=self.allowed,
                seed=seed,
                fit_options=self.fit_options,
                origin=origin,
            ),
        )
        self.tally.fits += len(results)
        for stage, message in failures:
            self.tally.fail(stage, message)
        best: FitResult | None = None
        for r in results:
            self._archive(r)
            best = r if best is None else prefer(best, r, self.rtol)
        return best, parsed

    def _archive(self, r: FitResult) -> None:
        key = archive_key(r)
        old = self.archive.get(key)
        if old is None or r.nchi2 < old.nchi2:
            self.archive[key] = r

    def best_nchi2(self) -> float:
        return min((r.nchi2 for r in self.archive.values()), default=math.inf)

    def ranked(self) -> list[FitResult]:
        """The archive by the selection rule (parents and the elite come from its top)."""
        return sorted(self.archive.values(), key=lambda r: (*rank_key(r), len(r.ansatz)))


def rank_key(r: FitResult) -> tuple[float, int, float]:
    """The selection rule's sort key; results without a description length go last."""
    key = selection_key(r)
    return key if math.isfinite(key[0]) else (math.inf, 0, r.nchi2)


def archive_key(r: FitResult) -> str:
    return r.compiled.canonical if r.compiled is not None else r.ansatz


def seed_ints(seed: int | None, n: int) -> list[int]:
    ss = np.random.SeedSequence(seed)
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def progress_bar(total: int, enabled: bool, desc: str) -> Any:
    """The run's bar over its children (see :mod:`llmlex._progress`)."""
    return make_bar(total, enabled, desc, unit="child")


#: A reason to stop and whether it ends the whole run (True) or only the stage (False).
