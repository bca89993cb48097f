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
import dataclasses
import functools
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from llmlex._checkpoint import CheckpointFile, options_mismatch
from llmlex._jsonio import data_fingerprint, encode_float
from llmlex._llmcall import CONNECTION_ERRORS, Ledger
from llmlex._noise import estimate_noise
from llmlex._polish import polish
from llmlex._results import (
    CHECKPOINT_KIND,
    GeneticRun,
    RunStats,
    choose,
    decode_results,
    encode_results,
    stats_from_dict,
    stats_to_dict,
)
from llmlex._search import (
    Search,
    Stop,
    Tally,
    archive_key,
    given_parents,
    make_proposer,
    progress_bar,
    rank_key,
    seed_ints,
    select_parents,
)
from llmlex._settings import GeneticSettings
from llmlex._units import choose_scaling
from llmlex.exceptions import (
    LLMConnectionError,
    LLMError,
    NoValidAnsatzError,
    PersistError,
)
from llmlex.fit import FitResult, fit_ansatz
from llmlex.proposer import Proposer

__all__ = ["GeneticLoop", "make_proposer", "select_parents"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How many of the best results the polish starts from (and goes on from each round).
POLISH_TOP = 5
#: Most rounds of the polish (each fits the neighbours of the last round's best).
POLISH_ROUNDS = 8
#: Results within this many nats of the shortest (at most POLISH_BAND_SIZE of them) get
#: their constants snapped before the rounds; each free constant widens a result's band
#: by POLISH_NATS_PER_CONSTANT, about what one well-determined constant costs (snapped
#: to a simple number it costs next to nothing: the true form with four fitted
#: constants can sit 26 nats behind a shorter fit of the noise, and lead once snapped).
POLISH_BAND_NATS = 25.0
POLISH_NATS_PER_CONSTANT = 5.0
POLISH_BAND_SIZE = 40
#: The default stop waits this many generations after the reported result last got
#: shorter by more than SETTLE_NATS: on noisy data many forms explain the data to the
#: noise, and the first found is seldom the shortest.
SETTLE_GENERATIONS = 1
SETTLE_NATS = 1.0
#: Fewest degrees of freedom of a fit that may revise the noise level (_revise_noise).
MIN_REVISION_DOF = 8


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
    sigma : ndarray, float or None
        Validated error bars of ``y``, or None (the noise level is then estimated).

    The search itself works on the data scaled by powers of ten (see
    :mod:`llmlex._units`); the results it returns, hands to ``callback`` and records in
    the checkpoint for readers are in the units of ``x`` and ``y``.

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
        sigma: np.ndarray | float | None = None,
    ) -> None:
        self.settings = s = settings
        self.image = image
        self.x, self.y = x, y
        self.scaling = choose_scaling(x, y)
        # What the search sees: values of order one (see llmlex._units).
        self.xs, self.ys = self.scaling.data(x, y)
        self.user_sigma = sigma
        self.sigma = self.scaling.sigma(sigma)
        # Without error bars, the noise level is estimated once, on what the search sees.
        self.noise = estimate_noise(self.xs, self.ys) if sigma is None else None
        #: The estimate from the data alone (``noise`` may be revised down: _revise_noise).
        self.noise_estimate = self.noise
        #: Options of every fit of the run (the search's and the polish's).
        self.fit_options: dict[str, Any] = {
            "n_starts": s.fit_starts,
            "timeout": s.fit_timeout,
            "sigma": self.sigma,
            "absolute_sigma": s.absolute_sigma,
            "noise": self.noise,
        }
        self._user: dict[int, tuple[FitResult, FitResult]] = {}
        self.ledger = Ledger(s.budgets)
        self.tally = Tally(self.ledger)
        self.stages = self._make_stages(client)
        # Budgets bind paid stages only: the offline proposer costs nothing.
        self.paid = [stage.name != "offline" for stage in self.stages]
        self.stage_prices = self._stage_prices()
        self.archive: dict[str, FitResult] = {}
        # What the final polish found (kept apart: a finished run extended later goes on
        # from the search's own archive, exactly as if it had not stopped).
        self.polished: dict[str, FitResult] = {}
        self.populations: list[tuple[FitResult, ...]] = []
        self.rng = np.random.default_rng(s.seed)
        # Where the run stands (what a checkpoint records as its position).
        self.stage_no = self.gen = self.stale = 0
        # Generations since the result the run would report last got shorter (see _reached).
        self.settled = 0
        self.chosen_dl = math.inf
        self.deadline: float | None = None
        #: The parents every child of the first generation is shown (``function_list``).
        self.given_parents = given_parents(
            s.function_list or (), self.scaling.search_text, self.xs, self.ys, self.noise
        )
        # In the user's units they are what the caller gave (not a mapping of the above).
        as_given = given_parents(s.function_list or (), str, self.x, self.y, None)
        for searched, given in zip(self.given_parents, as_given, strict=True):
            self._user[id(searched)] = (searched, given)
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
            fit_timeout=s.fit_timeout,
        )
        if s.hybrid and client is not None:
            offline = make_proposer(None, model=s.model, seed=s.seed, fit_timeout=s.fit_timeout)
            return [offline, main]
        return [main]

    def _constant(self) -> FitResult:
        """The fitted constant, in the archive (``constant_on_failure``)."""
        r = fit_ansatz("params[0]", self.xs, self.ys, seed=0, validate=False, **self.fit_options)
        self.archive[archive_key(r)] = r
        return r

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
            "data": data_fingerprint(self.x, self.y)
            if self.sigma is None
            else data_fingerprint(self.x, self.y, self.sigma),
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
        # Files of earlier versions hold their populations best first.
        self.populations = [_ascending(p) for p in saved_pops]
        for r in saved_archive:
            self.archive[archive_key(r)] = r
        self.tally.restore(stats_from_dict(doc["stats"]), doc.get("errors", []))
        self.rng.bit_generator.state = doc["rng"]
        self.stage_no, self.gen, self.stale = stage, gen, stale
        settled = position.get("settled", 0)  # absent from files of earlier versions
        if not _count(settled):
            raise PersistError(f"the recorded count of settled generations {settled!r} is invalid")
        self.settled = settled
        self._revise_noise()
        if self.archive:
            chosen = choose(self._final_archive(), self.settings.parsimony_rtol)
            self.chosen_dl = chosen.description_length

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
        # Children per stage: with the elite, one place fewer after the first generation.
        per_stage = s.population_size * s.num_of_generations
        if s.elite and s.population_size > 1:
            per_stage -= max(s.num_of_generations - 1, 0)
        bar = progress_bar(per_stage * len(self.stages), s.progress, "llmlex")
        if bar is not None and self.populations:
            bar.update(s.population_size * len(self.populations))
        start_stage = self.stage_no
        try:
            for stage_no in range(start_stage, len(self.stages)):
                if stage_no != start_stage:
                    self.stage_no, self.gen, self.stale = stage_no, 0, 0
                    self.settled = 0
                self.ledger.set_price(self.stage_prices[stage_no])
                search = Search(
                    self.stages[stage_no],
                    self.xs,
                    self.ys,
                    settings=s,
                    image=self.image,
                    tally=self.tally,
                    archive=self.archive,
                    progress=bar,
                    paid=self.paid[stage_no],
                    fit_options=self.fit_options,
                    x_unit=self.scaling.x,
                )
                try:
                    stop = await self._run_stage(search)
                finally:
                    search.close()
                if stop is not None:
                    stop_reason, halt = stop
                if halt:
                    break
                reached = self._reached(search)
                if reached is not None:
                    # In hybrid mode the offline stage comes first: reaching the exit
                    # condition there saves every LLM call.
                    if stage_no == 0 and len(self.stages) > 1:
                        self.tally.saved = per_stage
                        stop_reason = f"{reached} offline; {self.tally.saved} LLM calls saved"
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
        if self.archive and s.polish:
            try:
                await asyncio.to_thread(self._polish)
            except Exception:  # the search's own results stand without the polish
                log.warning("the final polish failed; results are unpolished", exc_info=True)
        return self._finish(stop_reason)

    def _polish(self) -> None:
        """Fit simpler neighbours of the best results into ``polished`` (see _polish).

        In the user's units: a coefficient that is a simple number there (an integer) is
        one only up to the scale factor in the search's.
        """
        archive = self._final_archive()
        # The closest fits and the best by the selection rule: the first hold terms the
        # data may not need, the second constants that may be simple numbers.
        by_fit = sorted(archive, key=lambda r: (r.nchi2, len(r.ansatz)))
        by_rule = sorted(archive, key=lambda r: (*rank_key(r), len(r.ansatz)))
        top = list({id(r): r for r in by_fit[:POLISH_TOP] + by_rule[:POLISH_TOP]}.values())
        known = {archive_key(r): r for r in archive}
        # A neighbour starts from the values it inherits, near its optimum: two starts.
        options = {**self.fit_options, "n_starts": min(2, self.settings.fit_starts)}
        options.update(
            sigma=self.user_sigma, noise=None if self.noise is None else self.noise * self.scaling.y
        )
        best = min((rank_key(r) for r in archive), default=None)
        # Bounded by work (rounds, neighbours), not by the clock, so that a result does
        # not depend on the machine's load; only a run's own time budget stops it early.
        deadline = None if self.deadline is None else max(self.deadline, time.perf_counter() + 1.0)
        neighbours_of = functools.partial(
            polish,
            x=self.x,
            y=self.y,
            known=known,
            key=archive_key,
            fit_options=options,
            seed=self.settings.seed or 0,
            deadline=deadline,
        )
        # First every constant of each result near the best snapped at once: on noisy
        # data the true form (x**3 + x**2 + x) may sit a few nats behind a shorter fit of
        # the noise with its constants free, out of the rounds' reach below.
        dls = [r.description_length for r in archive if math.isfinite(r.description_length)]
        if dls:
            cut = min(dls) + POLISH_BAND_NATS

            def snapped(r: FitResult) -> float:  # what the DL could become, at best
                return r.description_length - POLISH_NATS_PER_CONSTANT * r.n_params

            band = sorted(
                (r for r in archive if snapped(r) <= cut),
                key=lambda r: (snapped(r), r.ansatz),
            )[:POLISH_BAND_SIZE]
            for r in neighbours_of(band, kinds=("snap_all", "numbers", "rational")):
                key = archive_key(r)
                if key not in known:
                    self.polished[key] = known[key] = r
                    top.append(r)
            top = sorted(top, key=lambda r: (*rank_key(r), len(r.ansatz)))[: 2 * POLISH_TOP]
        # A neighbour of a neighbour (two noise terms dropped, then a constant snapped):
        # go on while a round finds something better by the selection rule.
        for _ in range(POLISH_ROUNDS):
            found = neighbours_of(top)
            top = []
            for r in found:
                key = archive_key(r)
                old = known.get(key)
                # Same function, simpler spelling (the sympy one): kept if no worse.
                if old is None or r.nchi2 <= old.nchi2 * (1 + 1e-9) + 1e-300:
                    self.polished[key] = known[key] = r
                    top.append(r)
            top = sorted(top, key=lambda r: (*rank_key(r), len(r.ansatz)))[:POLISH_TOP]
            if not top or (best is not None and rank_key(top[0]) >= best):
                break
            best = rank_key(top[0])

    def _revise_noise(self) -> bool:
        """Lower the estimated noise level to what the closest fit leaves, when that is
        far below it; rescore the archive.  True if the level changed.

        The estimate reads structure the sampling does not resolve as noise (sin(x**2)
        on a coarse grid: 0.7 where the data are exact).  A formula whose residuals are
        far below it shows that it is too high: its chi-squared is more than three
        standard deviations below its expectation, and below half of it (a fit to noise
        with nonlinear constants earns more than its count of parameters, not that).
        The level is then that formula's residual scale, so the formula has chi2 = dof.
        A function of the archive alone, so a resumed run revises as the first did.
        """
        if self.noise_estimate is None or not self.archive:
            return False
        base = self.noise_estimate
        best = math.inf
        for r in self.archive.values():
            if r.success and r.dof >= MIN_REVISION_DOF and math.isfinite(r.chi2):
                ratio = r.chi2 * (r.noise / base) ** 2 / r.dof
                if ratio < min(0.5, 1.0 - 3.0 * math.sqrt(2.0 / r.dof)):
                    best = min(best, ratio)
        floor = 1e-12 * float(np.sqrt(np.mean(self.ys**2)))
        level = base if not math.isfinite(best) else max(base * math.sqrt(best), floor)
        # Small changes are not worth refitting the archive for.
        if abs(level - self.noise) <= 0.3 * self.noise:
            return False
        log.info("noise level revised from %.3g to %.3g (scaled units)", self.noise, level)
        self.noise = level
        self.fit_options["noise"] = level
        options = {**self.fit_options, "n_starts": 1}
        for key, r in list(self.archive.items()):
            if r.compiled is None or not r.success:
                continue
            again = fit_ansatz(
                r.compiled, self.xs, self.ys, initial=r.params, seed=0, validate=False, **options
            )
            if again.success:
                # The same optimum (the refit starts there), rescored at the new level;
                # set on the new, unshared result (replace would drop its cached values).
                object.__setattr__(again, "origin", r.origin)
            self.archive[key] = again if again.success else r
        swap = {id(r): self.archive.get(archive_key(r), r) for p in self.populations for r in p}
        self.populations = [tuple(swap[id(r)] for r in p) for p in self.populations]
        return True

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

    async def _run_stage(self, search: Search) -> Stop | None:
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
                    run = self.partial(str(err)) if self.populations else None
                    err.partial_run = run  # type: ignore[attr-defined]
                raise
            after = True

    def _stop_reason(self, search: Search, *, after: bool) -> Stop | None:
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
        if self.populations:
            reached = self._reached(search)
            if reached is not None:
                return reached, False
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

    def _reached(self, search: Search) -> str | None:
        """Why the search has found what it can, or None.

        With ``exit_condition`` set: the best nchi2 is at or below it.  By default: the
        result the run would report explains the data to the noise, its chi-squared no
        more than two standard deviations above its expectation (``chi2 <= dof +
        2*sqrt(2*dof)``) -- any further improvement would be fitting the noise -- and its
        description length not shortened by a nat in the last ``SETTLE_GENERATIONS``
        generations (a shorter form may still turn up).
        """
        s = self.settings
        if s.exit_condition is not None:
            if search.best_nchi2() <= s.exit_condition:
                return f"exit_condition {s.exit_condition:g} reached"
            return None
        if not self.archive:
            return None
        chosen = choose(self._final_archive(), s.parsimony_rtol)
        dof = chosen.dof
        if self.settled < SETTLE_GENERATIONS:
            return None
        if dof > 0 and chosen.chi2 <= dof + 2.0 * math.sqrt(2.0 * dof):
            return f"data explained to the noise (chi2/dof {chosen.reduced_chi2:.3g})"
        return None

    async def _generation(self, search: Search) -> None:
        """Propose, fit and select one generation, then checkpoint it."""
        s = self.settings
        seeds = seed_ints(int(self.rng.integers(2**63)), s.population_size)
        ranked = search.ranked()[: s.population_size]
        first = self.given_parents if not self.populations else ()
        before = search.best_nchi2()
        # As the reference library: the elite takes one place of the population (from the
        # second generation on), so a population keeps its size.
        elite = ranked[:1] if s.elite and s.population_size > 1 else []
        tasks = []
        for k in range(s.population_size - len(elite)):
            parents = (
                select_parents(ranked, s.num_parents, temperature=s.temperature, rng=self.rng)
                if ranked
                else first
            )
            tasks.append(functools.partial(search.child, parents, len(self.populations), seeds[k]))
        children = await self._gather(tasks)
        self.tally.generations += 1
        self.gen += 1
        pop = [c for c in children if c is not None]
        if elite:
            keys = {c.ansatz for c in pop}
            pop.extend(r for r in elite if r.ansatz not in keys)
        self.populations.append(_ascending(pop))
        self.stale = self.stale + 1 if search.best_nchi2() > 0.99 * before else 0
        if self._revise_noise():
            # Every description length moved with the noise: a new scale, not a gain.
            self.chosen_dl = math.inf
        dl = (
            choose(self._final_archive(), s.parsimony_rtol).description_length
            if self.archive
            else math.inf
        )
        # A gain under a nat is a respelling or a constant's last digits, not a new form.
        if dl < self.chosen_dl - SETTLE_NATS:
            self.chosen_dl, self.settled = dl, 0
        else:
            self.settled += 1
        # Written before the callback, so that a callback that raises (or a kill) loses
        # nothing already paid for.
        self._save(None)
        if s.callback is not None:
            s.callback(len(self.populations) - 1, _ascending(self.user_units(self.populations[-1])))

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

    def _final_archive(self) -> list[FitResult]:
        """The run's results in the user's units: the search's archive and the polish's
        results (which win on shared keys)."""
        archive = self.user_units(self.archive.values())
        if not self.polished:
            return list(archive)
        return list({**{archive_key(r): r for r in archive}, **self.polished}.values())

    def user_units(self, results: Iterable[FitResult]) -> tuple[FitResult, ...]:
        """``results`` of the search in the units of the data (each mapped once)."""
        if self.scaling.identity:
            return tuple(results)
        out = []
        for r in results:
            # Keyed by identity; the result itself is kept so that its id stays its own.
            hit = self._user.get(id(r))
            if hit is None or hit[0] is not r:
                hit = self._user[id(r)] = (r, self._to_user(r))
            out.append(hit[1])
        return tuple(out)

    def _to_user(self, r: FitResult) -> FitResult:
        mapped = self.scaling.to_user(r, self.x, self.y)
        origin = mapped.origin
        if origin is None or not origin.parents:
            return mapped
        # The parents it was shown, in the user's units too (each mapped once).
        parents = self.user_units(origin.parents)
        return dataclasses.replace(mapped, origin=dataclasses.replace(origin, parents=parents))

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
            position={
                "stage": self.stage_no,
                "generation": self.gen,
                "stale": self.stale,
                "settled": self.settled,
            },
            rng=self.rng.bit_generator.state,
            proposer=self._proposer_name(),
            finished=stop_reason is not None,
            stop_reason=stop_reason or f"interrupted after {len(self.populations)} generation(s)",
            parsimony_rtol=encode_float(self.settings.parsimony_rtol),
        )
        if not self.scaling.identity or self.polished:
            # Resuming needs the search's own results; a reader of the file (GeneticRun.load)
            # needs the run's: polished, in the user's units (which take the data).
            pops = [_ascending(self.user_units(p)) for p in self.populations]
            body["user"] = encode_results(pops, self._final_archive())
        self.ckpt.write(body)

    def _finish(self, stop_reason: str) -> GeneticRun:
        stats = self.tally.snapshot()
        if not self.archive and self.settings.constant_on_failure:
            log.warning(
                "no valid ansatz (%s); returning the fitted constant (constant_on_failure)",
                _no_result_error(stats, self.tally.errors),
            )
            self.populations.append((self._constant(),))
            stop_reason += "; no valid ansatz: the fitted constant (constant_on_failure)"
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
        archive = self._final_archive()
        ranked = sorted(archive, key=lambda r: (r.nchi2, len(r.ansatz)))
        return GeneticRun(
            # Sorted again: nchi2 is recomputed in the user's units (its last digits move).
            populations=tuple(_ascending(self.user_units(p)) for p in self.populations),
            archive=tuple(ranked),
            stats=stats,
            proposer=self._proposer_name(),
            stop_reason=stop_reason,
            parsimony_rtol=self.settings.parsimony_rtol,
        )


def _ascending(population: Iterable[FitResult]) -> tuple[FitResult, ...]:
    """A population in the reference library's order: ascending score, so that
    ``population[-1]`` is its best by nchi2 (ties keep their order)."""
    return tuple(sorted(population, key=lambda r: r.score))


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
