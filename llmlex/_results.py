"""Result types of the search, and the protocol every llmlex result follows.

:class:`Result` is what :mod:`llmlex.export`, :mod:`llmlex.plots` and
:mod:`llmlex.persist` read, so that none of them tells result types apart by their
attributes: :class:`~llmlex.fit.FitResult`, :class:`GeneticRun` (through its best result)
and :class:`~llmlex.kan.KANSymbolicResult` all follow it.  :class:`RunStats` counts a
search.  The JSON codecs of these types live here, beside the types they encode.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from llmlex._jsonio import (
    check_envelope,
    decode_float,
    decoding,
    dumps,
    encode_float,
    envelope,
    loads,
    read_text,
    write_atomic,
)
from llmlex._report import report_html, stats_rows
from llmlex.exceptions import NoValidAnsatzError, PersistError
from llmlex.fit import FitResult

if TYPE_CHECKING:
    import sympy

__all__ = [
    "CHECKPOINT_KIND",
    "EXACT_LEVEL",
    "PARSIMONY_RTOL",
    "STAGES",
    "GeneticRun",
    "Result",
    "RunStats",
    "choose",
    "decode_results",
    "encode_results",
    "prefer",
    "run_from_checkpoint",
    "selection_key",
    "stats_from_dict",
    "stats_to_dict",
    "within",
]

#: Stages at which a proposal can be lost (keys of :attr:`RunStats.failures`).
STAGES = ("api", "extraction", "parsing", "fitting")
#: Default relative tolerance of the parsimony rule (see :attr:`GeneticRun.best`).
PARSIMONY_RTOL = 0.05
#: Below this nchi2 two fits are both "exact" and only complexity decides between them.
EXACT_LEVEL = 1e-20
#: Document kind of the checkpoints written by ``run_genetic(..., checkpoint=path)``.
CHECKPOINT_KIND = "genetic_checkpoint"


@runtime_checkable
class Result(Protocol):
    """What every llmlex result offers.

    Attributes
    ----------
    kind : str
        Its document kind in :mod:`llmlex.persist` (``"fit_result"``, ...).
    variables : tuple of str
        Names of the formula's variables, in input-column order.
    expression : sympy.Expr
        The formula with its fitted constants.
    nchi2 : float
        The score it was chosen by (held-out for KAN results).
    complexity : int
        sympy node count of the formula.
    """

    kind: ClassVar[str]

    @property
    def variables(self) -> tuple[str, ...]: ...

    @property
    def expression(self) -> sympy.Expr: ...

    @property
    def nchi2(self) -> float: ...

    @property
    def complexity(self) -> int: ...

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Evaluate the formula (1-D ``x`` for univariate results, rows of ``X`` else)."""
        ...

    def report_rows(self, precision: int = 6) -> list[tuple[str, str]]:
        """``(label, value)`` rows of its report, after the formula row."""
        ...

    def pareto_points(self) -> tuple[list[tuple[int, float, str]], tuple[int, float] | None]:
        """(complexity, nchi2, label) of every formula considered, and the chosen one's."""
        ...

    def to_document(self) -> dict[str, Any]:
        """Its fields as JSON-able values (the body of its document)."""
        ...

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Any:
        """Inverse of :meth:`to_document`; raises :class:`PersistError` if damaged."""
        ...


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
    cache_hits : int
        Replies answered from the reply cache (they cost no call and no tokens).
    cost : float or None
        Money spent in USD, when ``prices`` for the model were given; else None.
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
    cache_hits: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


def prefer(a: FitResult, b: FitResult, rtol: float) -> FitResult:
    """The better of two results under the selection rule (see :func:`choose`)."""
    return choose((a, b), rtol)


def selection_key(r: FitResult) -> tuple[float, int, float]:
    """Sort key of the selection rule: description length, then complexity, then nchi2.

    Both rounded (to 1e-9 nats, to 12 digits): two spellings of one function differ in
    the last bits of their scores, and which comes first must not depend on rounding
    errors, which differ between processes (memory alignment changes how numpy and
    BLAS sum).
    """
    dl = r.description_length
    return (round(dl, 9) if math.isfinite(dl) else dl, r.complexity, float(f"{r.nchi2:.12g}"))


def choose(results: Sequence[FitResult], rtol: float) -> FitResult:
    """The result a run reports among ``results`` (non-empty).

    The one with the lowest description length (:mod:`llmlex._criterion`: the
    chi-squared under the noise level, plus the cost of every node and every constant
    the data determine).  Results without one (loaded from files written before it
    existed, or whose covariance could not be computed) are compared by the older
    parsimony rule: the simplest within ``rtol`` of the lowest nchi2.
    """
    scored = [r for r in results if math.isfinite(r.description_length)]
    if scored:
        return min(scored, key=selection_key)
    lowest = min(r.nchi2 for r in results)
    near = [r for r in results if within(r.nchi2, lowest, rtol)]
    return min(near, key=lambda r: (r.complexity, r.nchi2))


def within(value: float, best: float, rtol: float) -> bool:
    return value <= max(best * (1.0 + rtol), EXACT_LEVEL)


@dataclass(frozen=True, eq=False)
class GeneticRun(Sequence[tuple[FitResult, ...]]):
    """The outcome of :func:`run_genetic`.

    Behaves as the sequence of populations the reference library returned: ``run[-1]``
    is the last generation, each a tuple of :class:`FitResult` in ascending score (worst
    first), so ``run[-1][-1]`` is the last generation's best by nchi2, as there.
    :attr:`best` is the run's answer (the lowest description length over every fit).

    Attributes
    ----------
    populations : tuple of tuple of FitResult
        Each generation's population in ascending score (its best last).
    archive : tuple of FitResult
        The best result of every distinct ansatz seen, best first.
    stats : RunStats
        Calls, tokens, failures by stage, time.
    proposer : str
        Name of the proposer(s) used.
    stop_reason : str
        Why the run ended.
    parsimony_rtol : float
        Relative tolerance of the parsimony rule :attr:`best` falls back to for results
        without a description length.
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
        """The result of the run: the lowest description length (see :func:`choose`)."""
        if not self.archive:
            raise NoValidAnsatzError("the run produced no valid ansatz")
        return choose(self.archive, self.parsimony_rtol)

    @cached_property
    def pareto_front(self) -> tuple[FitResult, ...]:
        """Results not beaten in both complexity and nchi2, by increasing complexity."""
        front: list[FitResult] = []
        for r in sorted(self.archive, key=lambda r: (r.complexity, r.nchi2)):
            if not front or r.nchi2 < front[-1].nchi2:
                front.append(r)
        return tuple(front)

    # ------------------------------------------------------------ the Result protocol
    kind: ClassVar[str] = "genetic_run"

    @property
    def variables(self) -> tuple[str, ...]:
        """``("x",)``: a run is univariate."""
        return ("x",)

    @property
    def expression(self) -> sympy.Expr:
        """The best result's formula (see :attr:`best`)."""
        return self.best.expression

    @property
    def display_expression(self) -> sympy.Expr:
        """The best result's formula, constants written to the digits their errors justify."""
        return self.best.display_expression

    @property
    def nchi2(self) -> float:
        """The best result's nchi2."""
        return self.best.nchi2

    @property
    def complexity(self) -> int:
        """The best result's complexity."""
        return self.best.complexity

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Evaluate the best result at ``x``."""
        return self.best.predict(x)

    def report_rows(self, precision: int = 6) -> list[tuple[str, str]]:
        """The best result's report rows, then the run's counts."""
        rows = self.best.report_rows(precision)
        rows += stats_rows(self.stats)
        rows.append(("generations", str(len(self))))
        rows.append(("proposer", self.proposer))
        rows.append(("stopped", self.stop_reason))
        return rows

    def pareto_points(self) -> tuple[list[tuple[int, float, str]], tuple[int, float] | None]:
        """(complexity, nchi2, ansatz) of every archived result, and the best's point."""
        pts = [(r.complexity, r.nchi2, r.ansatz) for r in self.archive]
        return pts, (self.best.complexity, self.best.nchi2)

    def to_document(self) -> dict[str, Any]:
        """The run as JSON-able fields (see :mod:`llmlex.persist`)."""
        return run_to_dict(self)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> GeneticRun:
        """Inverse of :meth:`to_document`; a checkpoint reads as the run so far."""
        if doc.get("kind") == CHECKPOINT_KIND:
            return run_from_checkpoint(doc)
        return run_from_dict(doc)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the run as JSON (see :mod:`llmlex.persist`); returns the path written."""
        write_atomic(path, dumps(envelope(self.kind, self.to_document())))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GeneticRun:
        """Load a run saved by :meth:`save` (or a ``run_genetic`` checkpoint).

        Raises
        ------
        PersistError
            If the file is not an llmlex run or is damaged (as
            :func:`llmlex.persist.load_result`).
        """
        doc = loads(read_text(path))
        found = check_envelope(doc, (cls.kind, CHECKPOINT_KIND))
        with decoding(f"the {found} document"):
            return cls.from_document(doc)

    def _repr_html_(self) -> str:
        return report_html(self)

    def __repr__(self) -> str:
        best = self.best.ansatz if self.archive else None
        return (
            f"GeneticRun(generations={len(self.populations)}, archive={len(self.archive)}, "
            f"best={best!r}, stop_reason={self.stop_reason!r})"
        )


def stats_to_dict(stats: RunStats) -> dict[str, Any]:
    """The fields of :class:`~llmlex.genetic.RunStats` as JSON-able values."""
    return {
        "calls": stats.calls,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "proposals": stats.proposals,
        "fits": stats.fits,
        "failures": dict(stats.failures),
        "llm_calls_saved": stats.llm_calls_saved,
        "generations": stats.generations,
        "time": encode_float(stats.time),
        "last_error": stats.last_error,
        "cache_hits": stats.cache_hits,
        "cost": None if stats.cost is None else encode_float(stats.cost),
    }


def stats_from_dict(data: Mapping[str, Any]) -> RunStats:
    """Inverse of :func:`stats_to_dict`."""
    if not isinstance(data, Mapping):
        raise PersistError(f"the stored statistics must be an object, got {type(data).__name__}")
    try:
        cost = data.get("cost")
        return RunStats(
            calls=int(data["calls"]),
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            proposals=int(data["proposals"]),
            fits=int(data["fits"]),
            failures={str(k): int(v) for k, v in dict(data["failures"]).items()},
            llm_calls_saved=int(data.get("llm_calls_saved", 0)),
            generations=int(data.get("generations", 0)),
            time=decode_float(data.get("time", 0.0)),
            last_error=str(data.get("last_error", "")),
            cache_hits=int(data.get("cache_hits", 0)),
            cost=None if cost is None else decode_float(cost),
        )
    except KeyError as err:
        raise PersistError(f"the stored statistics lack the field {err.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as err:
        if isinstance(err, PersistError):
            raise
        raise PersistError(f"the stored statistics are malformed: {err}") from None


class _Table:
    """Distinct results, by identity, in first-seen order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.index: dict[int, int] = {}
        self.keep: list[FitResult] = []  # keeps ids valid while encoding

    def ref(self, result: FitResult) -> int:
        k = self.index.get(id(result))
        if k is None:
            k = self.index[id(result)] = len(self.rows)
            self.rows.append(result.to_document()["result"])
            self.keep.append(result)
        return k


def encode_results(
    populations: Sequence[Sequence[FitResult]], archive: Sequence[FitResult]
) -> dict[str, Any]:
    """Populations and archive as a results table plus index lists."""
    table = _Table()
    pops = [[table.ref(r) for r in pop] for pop in populations]
    arch = [table.ref(r) for r in archive]
    return {"results": table.rows, "populations": pops, "archive": arch}


def decode_results(
    data: Mapping[str, Any],
) -> tuple[tuple[tuple[FitResult, ...], ...], tuple[FitResult, ...]]:
    """Inverse of :func:`encode_results`."""
    try:
        results = [FitResult.from_document({"result": r}) for r in data["results"]]

        def pick(k: Any) -> FitResult:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(results):
                raise PersistError(f"result index {k!r} out of range")
            return results[k]

        pops = tuple(tuple(pick(k) for k in pop) for pop in data["populations"])
        arch = tuple(pick(k) for k in data["archive"])
    except KeyError as err:
        raise PersistError(f"the stored run lacks the field {err.args[0]!r}") from None
    except TypeError as err:
        raise PersistError(f"the stored run is malformed: {err}") from None
    return pops, arch


def run_to_dict(run: GeneticRun) -> dict[str, Any]:
    """The fields of a :class:`~llmlex.genetic.GeneticRun` as JSON-able values."""
    out = encode_results(run.populations, run.archive)
    out.update(
        stats=stats_to_dict(run.stats),
        proposer=run.proposer,
        stop_reason=run.stop_reason,
        parsimony_rtol=encode_float(run.parsimony_rtol),
    )
    return out


def run_from_dict(data: Mapping[str, Any]) -> GeneticRun:
    """Inverse of :func:`run_to_dict`."""
    pops, arch = decode_results(data)
    try:
        return GeneticRun(
            populations=pops,
            archive=arch,
            stats=stats_from_dict(data["stats"]),
            proposer=str(data["proposer"]),
            stop_reason=str(data["stop_reason"]),
            parsimony_rtol=decode_float(data["parsimony_rtol"]),
        )
    except KeyError as err:
        raise PersistError(f"the stored run lacks the field {err.args[0]!r}") from None


def run_from_checkpoint(doc: Mapping[str, Any]) -> GeneticRun:
    """The run so far, from a checkpoint document (see :mod:`llmlex.persist`).

    A search on rescaled data also records its results in the data's units (``user``):
    those are the run a reader sees.
    """
    populations, archive = decode_results(doc.get("user", doc))
    try:
        return GeneticRun(
            populations=populations,
            archive=tuple(sorted(archive, key=lambda r: (r.nchi2, len(r.ansatz)))),
            stats=stats_from_dict(doc["stats"]),
            proposer=str(doc["proposer"]),
            stop_reason=str(doc["stop_reason"]),
            parsimony_rtol=decode_float(doc["parsimony_rtol"]),
        )
    except KeyError as err:
        raise PersistError(f"the checkpoint lacks the field {err.args[0]!r}") from None
