"""The genetic search itself: selection, one generation, the stop rule, checkpoints.

:class:`GeneticLoop` runs one search from a validated
:class:`~llmlex._settings.GeneticSettings`: it builds the stages (the offline proposer
first in hybrid mode, then the proposer of the client), resumes from a checkpoint if one
exists, runs generations until :meth:`GeneticLoop._stop_reason` -- the one stop rule,
consulted before and after every generation -- gives a reason, and returns the
:class:`~llmlex._results.GeneticRun`.  Calls, tokens, cache hits and money are counted by
a :class:`~llmlex._llmcall.Ledger`, which also holds the budgets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from llmlex._checkpoint import CheckpointFile, options_mismatch
from llmlex._jsonio import data_fingerprint, encode_float
from llmlex._llmcall import CONNECTION_ERRORS, Ledger, Usage
from llmlex._results import (
    CHECKPOINT_KIND,
    STAGES,
    GeneticRun,
    RunStats,
    decode_results,
    encode_results,
    prefer,
    stats_from_dict,
    stats_to_dict,
)
from llmlex._settings import GeneticSettings
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import (
    AnsatzError,
    LLMConnectionError,
    LLMError,
    NoValidAnsatzError,
    PersistError,
)
from llmlex.fit import FitResult, fit_ansatz
from llmlex.offline import OfflineProposer
from llmlex.proposer import ProposalBatch, ProposalRequest, Proposer

__all__ = ["GeneticLoop", "make_proposer", "select_parents"]

log = logging.getLogger(__name__)

T = TypeVar("T")


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
        return OfflineProposer(seed=seed)
    # Deferred: llm draws its images with matplotlib, which offline runs never need.
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
) -> tuple[list[FitResult], list[tuple[str, str]], bool]:
    """Parse and fit every proposal of a batch (runs in a worker thread).

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
                # Computed here, off the event loop and inside this guard: the archive
                # key and the parsimony rule read them (both go through sympy).
                _archive_key(result)
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


class _FailFast:
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

    def observe(self, batch: ProposalBatch, parsed: bool, tally: _Tally) -> LLMError | None:
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


def _failure_summary(tally: _Tally) -> str:
    return ", ".join(f"{k}: {v}" for k, v in tally.failures.items() if v) or "no failures"


def _endpoint(proposer: Proposer) -> str:
    """``model 'm' at <base_url>`` for an LLM proposer, else the proposer's name."""
    url = getattr(proposer, "base_url", None)
    model = getattr(proposer, "model", None)
    if url is None:
        return f"proposer {proposer.name!r}"
    return f"model {model!r} at {url}" if model is not None else str(url)


class _Tally:
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


class _Search:
    """One stage of a run: its proposer, the shared archive, and the per-child coroutine."""

    def __init__(
        self,
        proposer: Proposer,
        x: np.ndarray,
        y: np.ndarray,
        *,
        settings: GeneticSettings,
        image: str | None,
        tally: _Tally,
        archive: dict[str, FitResult],
        progress: Any,
        paid: bool,
    ) -> None:
        self.proposer = proposer
        self.paid = paid  # False: this stage costs nothing (offline) and has no budget
        self.budget_hit: str | None = None
        self.x, self.y = x, y
        self.image = image
        self.hints = settings.hints
        self.allowed = settings.allowed_functions
        self.sem = asyncio.Semaphore(settings.max_concurrency)
        self.fit_options = {"n_starts": settings.fit_starts, "timeout": settings.fit_timeout}
        self.rtol = settings.parsimony_rtol
        self.tally = tally
        self.archive = archive
        self.progress = progress
        self.failfast = _FailFast(settings.max_unparseable, _endpoint(proposer))
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
        best, parsed = await self._fit(batch, seed) if batch.proposals else (None, False)
        if self.progress is not None:
            self.progress.update(1)
            if self.archive:
                self.progress.set_postfix(best_nchi2=f"{self.best_nchi2():.3g}", refresh=False)
        if self.paid:
            stop = self.failfast.observe(batch, parsed, self.tally)
            if stop is not None:
                raise stop
        return best

    async def _fit(self, batch: ProposalBatch, seed: int) -> tuple[FitResult | None, bool]:
        """Fit a batch off the event loop; archive every fit; the best, and if any parsed."""
        loop = asyncio.get_running_loop()
        results, failures, parsed = await loop.run_in_executor(
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
        self.tally.fits += len(results)
        for stage, message in failures:
            self.tally.fail(stage, message)
        best: FitResult | None = None
        for r in results:
            self._archive(r)
            best = r if best is None else prefer(best, r, self.rtol)
        return best, parsed

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


def _seed_ints(seed: int | None, n: int) -> list[int]:
    ss = np.random.SeedSequence(seed)
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="child", leave=False)


#: A reason to stop and whether it ends the whole run (True) or only the stage (False).
Stop = tuple[str, bool]


class GeneticLoop:
    """One genetic search, from its settings to its :class:`GeneticRun`.

    Parameters
    ----------
    client : openai client, Proposer or None
        As in :func:`llmlex.genetic.run_genetic`.
    image : str or None
        Base64 PNG of the data, or None.
    x, y : ndarray
        Validated data.
    settings : GeneticSettings
        The run's options.

    Raises
    ------
    ValueError
        ``max_cost`` without a price for a paid stage's model.
    CheckpointError
        A checkpoint of another run (other data or options), or a damaged one.
    """

    def __init__(
        self,
        client: Any,
        image: str | None,
        x: np.ndarray,
        y: np.ndarray,
        settings: GeneticSettings,
    ) -> None:
        self.settings = s = settings
        self.image = image
        self.x, self.y = x, y
        self.ledger = Ledger(s.budgets)
        self.tally = _Tally(self.ledger)
        self.stages = self._make_stages(client)
        # Budgets bind paid stages only: the offline proposer costs nothing.
        self.paid = [stage.name != "offline" for stage in self.stages]
        self.stage_prices = self._stage_prices()
        self.archive: dict[str, FitResult] = {}
        self.populations: list[tuple[FitResult, ...]] = []
        self.rng = np.random.default_rng(s.seed)
        # Where the run stands (what a checkpoint records as its position).
        self.stage_no = self.gen = self.stale = 0
        self.deadline: float | None = None
        self.ckpt = self._open_checkpoint()

    # -- setup -----------------------------------------------------------------------

    def _make_stages(self, client: Any) -> list[Proposer]:
        s = self.settings
        if s.proposer is not None:
            return [s.proposer]
        main = make_proposer(
            client,
            model=s.model,
            system_prompt=s.system_prompt,
            llm_temperature=s.llm_temperature,
            max_tokens=s.llm_max_tokens,
            seed=s.seed,
            cache=s.cache,
        )
        if s.hybrid and client is not None:
            return [make_proposer(None, model=s.model, seed=s.seed), main]
        return [main]

    def _stage_prices(self) -> list[tuple[float, float] | None]:
        s = self.settings
        out: list[tuple[float, float] | None] = []
        for stage, is_paid in zip(self.stages, self.paid, strict=True):
            stage_model = str(getattr(stage, "model", s.model))
            price = s.price_of(stage_model) if is_paid else None
            if is_paid and s.max_cost is not None and price is None:
                raise ValueError(
                    f"max_cost needs the price of model {stage_model!r}: pass "
                    f"prices={{{stage_model!r}: (usd_per_1M_prompt_tokens, "
                    "usd_per_1M_completion_tokens)}"
                )
            out.append(price)
        return out

    def _open_checkpoint(self) -> CheckpointFile | None:
        """The checkpoint file, after resuming from it if it holds this run."""
        s = self.settings
        if s.checkpoint is None:
            return None
        fingerprint: dict[str, Any] = {
            "data": data_fingerprint(self.x, self.y),
            "options": {
                "population_size": int(s.population_size),
                "temperature": float(s.temperature),
                "model": str(s.model),
                "elite": bool(s.elite),
                "num_parents": int(s.num_parents),
                "hybrid": bool(s.hybrid),
                "parsimony_rtol": float(s.parsimony_rtol),
                "fit_starts": int(s.fit_starts),
                "seed": s.seed,
                "hints": list(s.hints),
                "allowed_functions": None
                if s.allowed_functions is None
                else list(s.allowed_functions),
                "system_prompt": s.system_prompt,
                "llm_temperature": s.llm_temperature,
                "llm_max_tokens": s.llm_max_tokens,
                "proposer": "+".join(stage.name for stage in self.stages),
                "image": None
                if self.image is None
                else hashlib.sha256(self.image.encode()).hexdigest(),
            },
        }
        ckpt = CheckpointFile(
            s.checkpoint, kind=CHECKPOINT_KIND, what="run", fingerprint=fingerprint
        )
        if s.resume and ckpt.exists():
            doc = ckpt.read()
            # Any value of a damaged file, anywhere, is a CheckpointError (decoding);
            # another run's file is one too, naming the difference (check).
            with ckpt.decoding("its fingerprint is malformed"):
                why = _mismatch(doc, fingerprint)
            ckpt.check(why)
            with ckpt.decoding():
                self._restore(doc)
            log.info(
                "resuming from %s: %d generation(s), %d calls already made",
                ckpt.path,
                len(self.populations),
                self.ledger.calls,
            )
        return ckpt

    def _restore(self, doc: Mapping[str, Any]) -> None:
        """Take up the state a checkpoint document recorded."""
        saved_pops, saved_archive = decode_results(doc)
        position = doc["position"]
        stage, gen, stale = (position[k] for k in ("stage", "generation", "stale"))
        for name, value, top in (("stage", stage, len(self.stages) - 1), ("generation", gen, None)):
            if not _count(value) or (top is not None and value > top):
                raise PersistError(f"the recorded {name} {value!r} is out of range")
        if not _count(stale):
            raise PersistError(f"the recorded count of stale generations {stale!r} is invalid")
        self.populations = list(saved_pops)
        for r in saved_archive:
            self.archive[_archive_key(r)] = r
        self.tally.restore(stats_from_dict(doc["stats"]), doc.get("errors", []))
        self.rng.bit_generator.state = doc["rng"]
        self.stage_no, self.gen, self.stale = stage, gen, stale

    # -- the run ---------------------------------------------------------------------

    async def run(self) -> GeneticRun:
        """Run (or finish) the search and return its result.

        Any exception that ends the run early (``KeyboardInterrupt``, a cancellation, a
        fatal :class:`~llmlex.exceptions.LLMError`, a callback's error) leaves with the
        run so far as its ``partial_run`` attribute (see :meth:`partial`; None if
        nothing was fitted), unless it carries one already.

        Raises
        ------
        LLMConnectionError, NoValidAnsatzError
            When no proposal of the whole run gave a fitted ansatz (``partial_run`` is
            None).
        """
        s = self.settings
        stop_reason = "all generations done"
        halt = False  # a time or money budget ends the whole run, not only the stage
        self.deadline = None if s.time_budget is None else time.perf_counter() + s.time_budget
        per_stage = s.population_size * s.num_of_generations
        bar = _progress_bar(per_stage * len(self.stages), s.progress, "llmlex")
        if bar is not None and self.populations:
            bar.update(s.population_size * len(self.populations))
        start_stage = self.stage_no
        try:
            for stage_no in range(start_stage, len(self.stages)):
                if stage_no != start_stage:
                    self.stage_no, self.gen, self.stale = stage_no, 0, 0
                self.ledger.set_price(self.stage_prices[stage_no])
                search = _Search(
                    self.stages[stage_no],
                    self.x,
                    self.y,
                    settings=s,
                    image=self.image,
                    tally=self.tally,
                    archive=self.archive,
                    progress=bar,
                    paid=self.paid[stage_no],
                )
                try:
                    stop = await self._run_stage(search)
                finally:
                    search.close()
                if stop is not None:
                    stop_reason, halt = stop
                if halt:
                    break
                if search.best_nchi2() <= s.exit_condition:
                    # In hybrid mode the offline stage comes first: reaching the exit
                    # condition there saves every LLM call.
                    if stage_no == 0 and len(self.stages) > 1:
                        self.tally.saved = per_stage
                        stop_reason = (
                            f"exit_condition {s.exit_condition:g} reached offline; "
                            f"{self.tally.saved} LLM calls saved"
                        )
                    break
        except (KeyboardInterrupt, asyncio.CancelledError) as exc:
            # Ctrl-C in a callback, or the task cancelled (asyncio.run turns Ctrl-C into
            # a cancellation): the run so far goes with the exception.
            self.attach_partial(exc, self.interrupted(type(exc).__name__))
            raise
        except BaseException as exc:
            # A fatal error (a rejected key, a callback's own error): what was fitted
            # before it is not lost either.
            self.attach_partial(exc, self._failed(exc))
            raise
        finally:
            if bar is not None:
                bar.close()
        return self._finish(stop_reason)

    def interrupted(self, what: str) -> str:
        """The stop reason of a run interrupted by ``what`` (e.g. ``"KeyboardInterrupt"``)."""
        return f"interrupted by {what} after {len(self.populations)} generation(s)"

    def _failed(self, exc: BaseException) -> str:
        message = " ".join(str(exc).split())[:300]
        done = f"stopped by {type(exc).__name__} after {len(self.populations)} generation(s)"
        return f"{done}: {message}" if message else done

    def partial(self, stop_reason: str) -> GeneticRun | None:
        """The run so far: completed generations and every fit archived, or None if none.

        The checkpoint is not rewritten: it keeps the state after the last completed
        generation, which a resume continues from exactly.
        """
        if not self.archive:
            return None
        return self._result(self.tally.snapshot(), stop_reason)

    def attach_partial(self, exc: BaseException, stop_reason: str) -> None:
        """Set ``exc.partial_run`` to the run so far, unless it carries one already."""
        if getattr(exc, "partial_run", None) is not None:
            return
        try:
            exc.partial_run = self.partial(stop_reason)  # type: ignore[attr-defined]
        except Exception:  # never let the rescue hide the error being raised
            log.debug("could not build the partial run", exc_info=True)

    async def _run_stage(self, search: _Search) -> Stop | None:
        """Generations of one stage until the stop rule gives a reason or none remain."""
        after = False
        while True:
            stop = self._stop_reason(search, after=after)
            if stop is not None or self.gen >= self.settings.num_of_generations:
                return stop
            try:
                await self._generation(search)
            except LLMError as err:
                if err is search.failfast.error:
                    # What the finished generations found goes with the error.
                    err.partial_run = self._partial_run(str(err))  # type: ignore[attr-defined]
                raise
            after = True

    def _stop_reason(self, search: _Search, *, after: bool) -> Stop | None:
        """The one stop rule, consulted before each generation and after it.

        ``after`` says whether a generation has just run.  The exit condition and
        patience end the stage; a budget a child ran into, the time budget and a spent
        budget end the run.  The last two are only asked when another generation could
        start, so that neither a finished stage nor a resumed finished run is relabelled.
        """
        s = self.settings
        more = self.gen < s.num_of_generations
        if not (more or after):
            return None
        if self.populations and search.best_nchi2() <= s.exit_condition:
            return f"exit_condition {s.exit_condition:g} reached", False
        if self.gen > 0 and s.patience is not None and self.stale >= s.patience:
            return f"no improvement in {s.patience} generation(s)", False
        if search.budget_hit is not None:
            return search.budget_hit, True
        if not more:
            return None
        if self.deadline is not None and self.populations and time.perf_counter() > self.deadline:
            return f"time budget of {s.time_budget:g} s spent", True
        spent = self.ledger.spent() if search.paid else None
        return None if spent is None else (spent, True)

    def _partial_run(self, stop_reason: str) -> GeneticRun | None:
        """The run so far, if a generation finished and something was fitted, else None."""
        if not self.populations or not self.archive:
            return None
        ranked = sorted(list(self.archive.values()), key=lambda r: (r.nchi2, len(r.ansatz)))
        return GeneticRun(
            populations=tuple(self.populations),
            archive=tuple(ranked),
            stats=self.tally.snapshot(),
            proposer=self._proposer_name(),
            stop_reason=stop_reason,
            parsimony_rtol=self.settings.parsimony_rtol,
        )

    async def _generation(self, search: _Search) -> None:
        """Propose, fit and select one generation, then checkpoint it."""
        s = self.settings
        seeds = _seed_ints(int(self.rng.integers(2**63)), s.population_size)
        ranked = search.ranked()[: s.population_size]
        before = search.best_nchi2()
        tasks = []
        for k in range(s.population_size):
            parents = (
                select_parents(ranked, s.num_parents, temperature=s.temperature, rng=self.rng)
                if ranked
                else ()
            )
            tasks.append(functools.partial(search.child, parents, len(self.populations), seeds[k]))
        children = await self._gather(tasks)
        self.tally.generations += 1
        self.gen += 1
        pop = [c for c in children if c is not None]
        if s.elite and ranked:
            keys = {c.ansatz for c in pop}
            pop.extend(r for r in ranked[:1] if r.ansatz not in keys)
        pop.sort(key=lambda r: r.nchi2)
        self.populations.append(tuple(pop))
        self.stale = self.stale + 1 if search.best_nchi2() > 0.99 * before else 0
        # Written before the callback, so that a callback that raises (or a kill) loses
        # nothing already paid for.
        self._save(None)
        if s.callback is not None:
            s.callback(len(self.populations) - 1, self.populations[-1])

    async def _gather(self, children: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run one generation's children concurrently; if one fails, cancel the others.

        The cancellation matters inside a caller's event loop (``arun_genetic``): the
        children of a run that has ended must not go on calling the LLM.  Each child's
        coroutine is made inside its task, so that a task cancelled before it started
        leaves no coroutine that was never awaited.
        """

        async def carried(child: Callable[[], Awaitable[T]]) -> T:
            try:
                return await child()
            except (KeyboardInterrupt, SystemExit) as exc:
                # asyncio lets these escape the event loop straight from the task that
                # raised them, past the run's own frames: the run so far goes with them
                # from here.
                self.attach_partial(exc, self.interrupted(type(exc).__name__))
                raise

        tasks = [asyncio.ensure_future(carried(c)) for c in children]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise

    def _proposer_name(self) -> str:
        return "+".join(stage.name for stage in self.stages[: self.stage_no + 1])

    def _save(self, stop_reason: str | None) -> None:
        if self.ckpt is None:
            return
        # The archive is written in insertion order (ties in the ranking depend on it).
        body: dict[str, Any] = encode_results(self.populations, list(self.archive.values()))
        body.update(
            stats=stats_to_dict(self.tally.snapshot()),
            errors=[list(e) for e in self.tally.errors[-50:]],
            position={"stage": self.stage_no, "generation": self.gen, "stale": self.stale},
            rng=self.rng.bit_generator.state,
            proposer=self._proposer_name(),
            finished=stop_reason is not None,
            stop_reason=stop_reason or f"interrupted after {len(self.populations)} generation(s)",
            parsimony_rtol=encode_float(self.settings.parsimony_rtol),
        )
        self.ckpt.write(body)

    def _finish(self, stop_reason: str) -> GeneticRun:
        stats = self.tally.snapshot()
        if not self.archive:
            err = _no_result_error(stats, self.tally.errors)
            err.partial_run = None  # type: ignore[attr-defined]  # nothing was fitted
            raise err
        self._save(stop_reason)
        run = self._result(stats, stop_reason)
        log.info(
            "run ended (%s): best nchi2 %.3g, %d calls, failures %s",
            stop_reason,
            run.archive[0].nchi2,
            stats.calls,
            dict(stats.failures),
        )
        return run

    def _result(self, stats: RunStats, stop_reason: str) -> GeneticRun:
        # list() copies the archive in one step: a run interrupted from another thread
        # may still be adding to it.
        ranked = sorted(list(self.archive.values()), key=lambda r: (r.nchi2, len(r.ansatz)))
        return GeneticRun(
            populations=tuple(self.populations),
            archive=tuple(ranked),
            stats=stats,
            proposer=self._proposer_name(),
            stop_reason=stop_reason,
            parsimony_rtol=self.settings.parsimony_rtol,
        )


def _count(value: Any) -> bool:
    """Whether a decoded JSON value is a count (an int >= 0, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _mismatch(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    if saved.get("data") != now["data"]:
        return "different data (x, y)"
    return options_mismatch(saved.get("options") or {}, now["options"])


def _no_result_error(stats: RunStats, errors: list[tuple[str, str]]) -> LLMError:
    summary = ", ".join(f"{k}: {v}" for k, v in stats.failures.items() if v) or "no proposals"
    last = errors[-1][1] if errors else "no proposal was returned"
    api = [m for s, m in errors if s == "api"]
    if api and len(api) == len(errors) and all(m.startswith(CONNECTION_ERRORS) for m in api):
        return LLMConnectionError(
            f"every call failed to reach the server ({summary}); last error: {last}"
        )
    return NoValidAnsatzError(f"no valid ansatz was produced ({summary}); last error: {last}")
