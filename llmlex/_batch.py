"""The machinery of :mod:`llmlex.batch`: tasks, the plan of a batch, its results.

:class:`Plan` validates a batch once -- its data sets, seeds, budget shares and
checkpoint paths -- turns each data set into a picklable :class:`Task`, and loads the
results a finished earlier session left in ``checkpoint_dir``.  :func:`run_task` is what
a worker runs for one data set (module-level, so every executor sends it by name); its
failure comes back as a value, so that one data set's error is only that data set's.
:class:`BatchItem` and :class:`BatchResult` are what the caller gets back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llmlex._jsonio import data_fingerprint, read_text, write_atomic
from llmlex._settings import OPTIONS, check_keywords
from llmlex._validation import check_sigma, check_xy
from llmlex.cache import ReplyCache, as_cache
from llmlex.exceptions import BatchError, PersistError
from llmlex.genetic import GeneticRun, arun_genetic, run_genetic
from llmlex.persist import from_json, to_json

__all__ = [
    "BatchItem",
    "BatchResult",
    "Outcome",
    "Plan",
    "Task",
    "arun_task",
    "batch_seeds",
    "describe",
    "run_task",
]

log = logging.getLogger("llmlex.batch")

#: Options of run_genetic that run_many sets itself (per data set, or for the batch).
_OWN = ("seed", "checkpoint", "cache", "max_calls", "max_tokens", "max_cost", "progress")
#: The keyword options a batch passes on to every run_genetic.
_PASSED = tuple(n for n in OPTIONS if n not in _OWN)
#: Options that do not decide whether a finished result stands for a data set.
_NOT_KEYED = ("callback", "resume")
#: Format of the ``<name>.result.json`` files.
_RESULT_FORMAT = 1
Status = Literal["done", "loaded", "failed"]


@dataclass(frozen=True)
class BatchItem:
    """The outcome of one data set of a batch.

    Attributes
    ----------
    name : str
        The data set's name (its key in a mapping, else its index, zero-padded).
    seed : int
        The seed its search ran with.
    status : {"done", "loaded", "failed"}
        Searched in this session, loaded from a finished checkpoint, or failed.
    run : GeneticRun or None
        The run; for a failed data set, the run so far if the error carried one.
    error : str or None
        ``"<ErrorClass>: message"`` of a failed data set.
    time : float
        Seconds from submission to result in this session (0 for a loaded one).
    """

    name: str
    seed: int
    status: Status
    run: GeneticRun | None = None
    error: str | None = None
    time: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the data set has a finished run (searched now or loaded)."""
        return self.status != "failed"


@dataclass(frozen=True)
class BatchResult(Sequence[BatchItem]):
    """The outcomes of a batch, in the order of its data sets.

    A sequence of :class:`BatchItem`.  One data set failing does not lose the others:
    its item has ``status="failed"`` and the error; :meth:`raise_for_failures` turns
    failures into a :class:`~llmlex.exceptions.BatchError` for callers who want all or
    nothing.

    Attributes
    ----------
    items : tuple of BatchItem
        One per data set, in input order.
    time : float
        Wall time of the batch in seconds.
    """

    items: tuple[BatchItem, ...]
    time: float = 0.0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __iter__(self) -> Iterator[BatchItem]:
        return iter(self.items)

    @property
    def runs(self) -> tuple[GeneticRun | None, ...]:
        """Each data set's run, in input order (None where it failed with none)."""
        return tuple(item.run if item.ok else None for item in self.items)

    @property
    def failed(self) -> tuple[BatchItem, ...]:
        """The items of the data sets that failed."""
        return tuple(item for item in self.items if not item.ok)

    def raise_for_failures(self) -> BatchResult:
        """Return ``self`` if no data set failed, else raise :class:`BatchError`.

        Raises
        ------
        BatchError
            Naming the failed data sets; its ``result`` attribute is this batch.
        """
        if self.failed:
            names = ", ".join(f"{i.name} ({i.error})" for i in self.failed[:5])
            more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
            err = BatchError(f"{len(self.failed)} of {len(self)} data sets failed: {names}{more}")
            err.result = self  # type: ignore[attr-defined]
            raise err
        return self

    def summary(self) -> list[dict[str, Any]]:
        """One row per data set: name, status, formula, nchi2, chi2/dof, complexity,
        calls, generations, time, stop reason and error (for a table or a CSV)."""
        rows = []
        for item in self.items:
            run = item.run if item.ok else None
            best = run.best if run is not None else None
            rows.append(
                {
                    "name": item.name,
                    "status": item.status,
                    "formula": best.formula() if best is not None else "",
                    "nchi2": best.nchi2 if best is not None else math.nan,
                    "reduced_chi2": best.reduced_chi2 if best is not None else math.nan,
                    "complexity": best.complexity if best is not None else "",
                    "calls": run.stats.calls if run is not None else "",
                    "generations": run.stats.generations if run is not None else "",
                    "time": round(item.time, 3),
                    "stop_reason": run.stop_reason if run is not None else "",
                    "error": item.error or "",
                }
            )
        return rows


def batch_seeds(seed: int | None, n: int) -> list[int]:
    """The seeds of a batch's ``n`` data sets: children of ``SeedSequence(seed)``.

    Data set ``i`` gets the same seed whatever ``n`` is (the ``i``-th spawned child), so
    adding data sets to a batch changes nothing for those already in it.

    Parameters
    ----------
    seed : int or None
        The batch's seed; None draws fresh entropy (not reproducible).
    n : int
        Number of data sets.

    Returns
    -------
    list of int
        ``n`` seeds in ``[0, 2**32)``.
    """
    children = np.random.SeedSequence(seed).spawn(n)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]


@dataclass(frozen=True)
class Task:
    """What travels to a worker for one data set (picklable)."""

    index: int
    name: str
    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray | float | None
    seed: int
    client: Any
    checkpoint: str | None
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What comes back from a worker: the run, or the error (and the run so far)."""

    run: GeneticRun | None
    error: str | None


def run_task(task: Task) -> Outcome:
    """One data set's search, in a worker; its failure is its own, returned as a value.

    Module-level so that every executor (process pool, Dask, Ray) pickles it by name.
    """
    try:
        run = run_genetic(
            task.client,
            None,
            task.x,
            task.y,
            sigma=task.sigma,
            seed=task.seed,
            checkpoint=task.checkpoint,
            progress=False,
            **task.options,
        )
    except Exception as exc:
        log.warning("data set %s failed: %s: %s", task.name, type(exc).__name__, exc)
        return Outcome(getattr(exc, "partial_run", None), describe(exc))
    return Outcome(run, None)


def describe(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:500]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# -- the data sets ----------------------------------------------------------------------


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _as_datasets(
    datasets: Sequence[Any] | Mapping[str, Any],
) -> list[tuple[str, np.ndarray, np.ndarray, Any]]:
    """``(name, x, y, sigma)`` per data set, validated (names unique and file-safe)."""
    if isinstance(datasets, Mapping):
        named = [(str(k), v) for k, v in datasets.items()]
    else:
        items = list(datasets)
        width = max(4, len(str(max(len(items) - 1, 0))))
        named = [(f"{i:0{width}d}", v) for i, v in enumerate(items)]
    out = []
    for name, item in named:
        if isinstance(item, Mapping):
            unknown = set(item) - {"x", "y", "sigma"}
            if unknown:
                raise TypeError(f"data set {name!r}: unknown keys {sorted(unknown)}")
            x, y, sigma = item["x"], item["y"], item.get("sigma")
        elif isinstance(item, tuple | list) and len(item) in (2, 3):
            x, y, sigma = item[0], item[1], item[2] if len(item) == 3 else None
        else:
            raise TypeError(
                f"data set {name!r} must be (x, y), (x, y, sigma) or a mapping with "
                f"'x', 'y' and optionally 'sigma', got {type(item).__name__}"
            )
        xs, ys = check_xy(x, y)
        errors = None if sigma is None else check_sigma(sigma, xs.size)
        out.append((name, xs, ys, errors))
    safe = [_SAFE_NAME.sub("_", name) for name, *_ in out]
    if len(set(safe)) != len(safe):
        raise ValueError("data set names must be distinct (as file names)")
    return [(s, *rest) for s, (_, *rest) in zip(safe, out, strict=True)]


def _shares(total: float | None, n: int, *, integer: bool) -> list[Any]:
    """A batch budget as ``n`` fixed per-data-set shares (None: no budget)."""
    if total is None:
        return [None] * n
    if integer:
        base, extra = divmod(int(total), n)
        return [base + (1 if i < extra else 0) for i in range(n)]
    return [float(total) / n] * n


def _key(task: Task) -> str:
    """What a finished result must have been computed from to be loaded for ``task``."""
    arrays = [task.x, task.y] if task.sigma is None else [task.x, task.y, np.asarray(task.sigma)]
    described = {
        "data": data_fingerprint(*arrays),
        "seed": task.seed,
        "client": "offline" if task.client is None else repr(task.client),
        # A callback watches a run and cannot change it; resume says whether to load.
        "options": {k: repr(v) for k, v in sorted(task.options.items()) if k not in _NOT_KEYED},
    }
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _load_finished(path: Path, key: str) -> GeneticRun | None:
    """The finished run stored at ``path`` for this task, or None (absent, other, damaged)."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(read_text(path))
        if doc.get("format") != _RESULT_FORMAT or doc.get("key") != key:
            return None
        run = from_json(json.dumps(doc["run"]), kind="genetic_run")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, PersistError) as err:
        log.warning("ignoring the result file %s: %s", path, err)
        return None
    return run if isinstance(run, GeneticRun) else None


def _store_finished(path: Path, key: str, run: GeneticRun) -> None:
    doc = {"format": _RESULT_FORMAT, "key": key, "run": json.loads(to_json(run))}
    write_atomic(path, json.dumps(doc) + "\n")


# -- the batch --------------------------------------------------------------------------


class Plan:
    """A validated batch: its tasks, and what is already finished."""

    def __init__(
        self,
        datasets: Sequence[Any] | Mapping[str, Any],
        *,
        client: Any,
        seed: int | None,
        seeds: Sequence[int] | None,
        checkpoint_dir: str | os.PathLike[str] | None,
        cache: ReplyCache | str | os.PathLike[str] | None,
        budgets: tuple[int | None, int | None, float | None],
        run_options: Mapping[str, Any],
    ) -> None:
        if "checkpoint" in run_options:
            raise TypeError("run_many() takes checkpoint_dir= (one file per data set there)")
        check_keywords(run_options, known=_PASSED, func="run_many")
        data = _as_datasets(datasets)
        n = len(data)
        if seeds is not None:
            seeds = [int(s) for s in seeds]
            if len(seeds) != n:
                raise ValueError(f"seeds has {len(seeds)} values for {n} data sets")
        elif seed is None and checkpoint_dir is not None:
            raise ValueError("checkpoint_dir needs a fixed seed (a resumed batch must match)")
        else:
            seeds = batch_seeds(seed, n)
        self.dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        cache = as_cache(cache)
        shares = [
            _shares(budgets[0], n, integer=True),
            _shares(budgets[1], n, integer=True),
            _shares(budgets[2], n, integer=False),
        ]
        self.tasks: list[Task] = []
        for i, (name, x, y, sigma) in enumerate(data):
            options = dict(run_options)
            options.update(
                cache=cache, max_calls=shares[0][i], max_tokens=shares[1][i], max_cost=shares[2][i]
            )
            checkpoint = None if self.dir is None else str(self.dir / f"{name}.json")
            self.tasks.append(Task(i, name, x, y, sigma, seeds[i], client, checkpoint, options))
        self.keys = [_key(t) for t in self.tasks]
        self.items: list[BatchItem | None] = [None] * n
        load = self.dir is not None and run_options.get("resume", True)
        for i, task in enumerate(self.tasks):
            run = _load_finished(self._result_path(i), self.keys[i]) if load else None
            if run is not None:
                self.items[i] = BatchItem(task.name, task.seed, "loaded", run)
        self.pending = [t for t in self.tasks if self.items[t.index] is None]

    def _result_path(self, i: int) -> Path:
        assert self.dir is not None
        return self.dir / f"{self.tasks[i].name}.result.json"

    def record(self, task: Task, outcome: Outcome, elapsed: float) -> BatchItem:
        if outcome.error is None and outcome.run is not None:
            item = BatchItem(task.name, task.seed, "done", outcome.run, None, elapsed)
            if self.dir is not None:
                try:
                    _store_finished(self._result_path(task.index), self.keys[task.index], item.run)
                except (OSError, TypeError, ValueError) as err:  # the run itself stands
                    log.warning("could not store the result of %s: %s", task.name, err)
        else:
            error = outcome.error or "no run returned"
            item = BatchItem(task.name, task.seed, "failed", outcome.run, error, elapsed)
        self.items[task.index] = item
        return item

    def fail(self, task: Task, exc: BaseException, elapsed: float) -> BatchItem:
        """A task the executor lost (a broken pool, a worker killed too often)."""
        return self.record(task, Outcome(None, describe(exc)), elapsed)

    def result(self, t0: float) -> BatchResult:
        items = tuple(
            item if item is not None else BatchItem(t.name, t.seed, "failed", error="not run")
            for t, item in zip(self.tasks, self.items, strict=True)
        )
        return BatchResult(items, time.perf_counter() - t0)


async def arun_task(task: Task) -> Outcome:
    try:
        run = await arun_genetic(
            task.client,
            None,
            task.x,
            task.y,
            sigma=task.sigma,
            seed=task.seed,
            checkpoint=task.checkpoint,
            progress=False,
            **task.options,
        )
    except Exception as exc:
        log.warning("data set %s failed: %s", task.name, describe(exc))
        return Outcome(getattr(exc, "partial_run", None), describe(exc))
    return Outcome(run, None)
