"""Batches of data sets: one :func:`~llmlex.run_genetic` per data set, on any executor.

:func:`run_many` (and :func:`arun_many`) runs a genetic search on each of many data sets
-- a survey of light curves, every channel of an experiment, a benchmark of problems --
through a :class:`concurrent.futures.Executor`: a process pool by default, Dask's
``client.get_executor()`` for a cluster, :class:`RayExecutor` for Ray.  llmlex schedules
nothing itself: the executor places the tasks, retries those of a worker that died, and
spreads them over machines.

What makes a batch the same whatever runs it:

* **Seeds.**  Data set ``i`` is searched with the ``i``-th child of
  ``numpy.random.SeedSequence(seed)``: its result depends on its data, its seed and the
  options, never on the executor, the number of workers or the order of completion.
* **Checkpoints.**  With ``checkpoint_dir``, data set ``name`` has its own run checkpoint
  ``<checkpoint_dir>/<name>.json`` (written by the worker after every generation) and,
  once finished, its result ``<name>.result.json`` (written by the caller).  Running the
  same batch again loads the finished data sets without submitting them, and resumes the
  others from their last generation.
* **Budgets.**  ``max_calls``, ``max_tokens`` and ``max_cost`` are for the whole batch,
  split into fixed shares, one per data set (see :func:`run_many`): a counter shared
  between processes would make each run's result depend on which ran first.

What travels to a worker is one picklable task per data set: the data, the seed, the
options, the reply cache (its directory), and the client as a
:class:`~llmlex.ClientSpec` -- never an ``openai`` client, never a key: each worker
builds its own client from its own environment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llmlex._clientspec import ClientSpec, is_openai_client
from llmlex._jsonio import data_fingerprint, read_text, write_atomic
from llmlex._settings import OPTIONS, check_keywords
from llmlex._validation import check_sigma, check_xy
from llmlex.cache import ReplyCache, as_cache
from llmlex.exceptions import BatchError, MissingDependencyError, PersistError
from llmlex.genetic import GeneticRun, arun_genetic, run_genetic
from llmlex.persist import from_json, to_json

__all__ = [
    "BatchItem",
    "BatchResult",
    "RayExecutor",
    "arun_many",
    "batch_seeds",
    "run_many",
]

log = logging.getLogger(__name__)

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
class _Task:
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
class _Outcome:
    """What comes back from a worker: the run, or the error (and the run so far)."""

    run: GeneticRun | None
    error: str | None


def _run_task(task: _Task) -> _Outcome:
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
        return _Outcome(getattr(exc, "partial_run", None), _describe(exc))
    return _Outcome(run, None)


def _describe(exc: BaseException) -> str:
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


def _key(task: _Task) -> str:
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


class _Plan:
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
        self.tasks: list[_Task] = []
        for i, (name, x, y, sigma) in enumerate(data):
            options = dict(run_options)
            options.update(
                cache=cache, max_calls=shares[0][i], max_tokens=shares[1][i], max_cost=shares[2][i]
            )
            checkpoint = None if self.dir is None else str(self.dir / f"{name}.json")
            self.tasks.append(_Task(i, name, x, y, sigma, seeds[i], client, checkpoint, options))
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

    def record(self, task: _Task, outcome: _Outcome, elapsed: float) -> BatchItem:
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

    def fail(self, task: _Task, exc: BaseException, elapsed: float) -> BatchItem:
        """A task the executor lost (a broken pool, a worker killed too often)."""
        return self.record(task, _Outcome(None, _describe(exc)), elapsed)

    def result(self, t0: float) -> BatchResult:
        items = tuple(
            item if item is not None else BatchItem(t.name, t.seed, "failed", error="not run")
            for t, item in zip(self.tasks, self.items, strict=True)
        )
        return BatchResult(items, time.perf_counter() - t0)


def _check_client(client: Any, in_process: bool) -> None:
    if not in_process and is_openai_client(client):
        raise TypeError(
            f"an {type(client).__name__} client cannot be sent to worker processes: pass "
            "llmlex.ClientSpec(base_url=..., api_key_env=...) and each worker builds its "
            "own client from its own environment (executor='serial' or a thread pool "
            "accept the client itself)"
        )


def _progress(total: int, done: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="llmlex batch", unit="data set", leave=False)


def run_many(
    datasets: Sequence[Any] | Mapping[str, Any],
    *,
    executor: concurrent.futures.Executor | Literal["processes", "serial"] | None = None,
    max_workers: int | None = None,
    client: ClientSpec | Any = None,
    seed: int | None = 0,
    seeds: Sequence[int] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    cache: ReplyCache | str | os.PathLike[str] | None = None,
    max_calls: int | None = None,
    max_tokens: int | None = None,
    max_cost: float | None = None,
    progress: bool = True,
    **run_options: Any,
) -> BatchResult:
    """Run :func:`~llmlex.run_genetic` on every data set of a batch, on an executor.

    Parameters
    ----------
    datasets : sequence or mapping
        Each data set as ``(x, y)``, ``(x, y, sigma)`` or ``{"x": ..., "y": ...,
        "sigma": ...}``; in a mapping ``{name: data set}`` the keys name them (file-safe
        characters are kept, others become ``_``), else they are named by index
        (``"0000"``, ``"0001"``, ...).
    executor : Executor, "processes", "serial" or None
        Where the searches run.  None or ``"processes"``: a new
        :class:`~concurrent.futures.ProcessPoolExecutor` of ``max_workers`` fresh
        ("spawn") processes, shut down at the end: each imports llmlex anew and reads the
        environment as it is when the batch starts (a script using it needs the
        ``if __name__ == "__main__":`` guard of :mod:`multiprocessing`).  ``"serial"``:
        one after another in this process.  Any :class:`concurrent.futures.Executor`
        otherwise, left running: Dask's ``distributed.Client(...).get_executor()``,
        :class:`RayExecutor`, a :class:`~concurrent.futures.ThreadPoolExecutor`
        (offline searches are bound by the GIL there: about one core in all).
    max_workers : int, optional
        Processes of the default pool (default: the number of CPUs, at most the number
        of data sets to run).
    client : ClientSpec, openai client or None
        None searches offline.  For worker processes pass a :class:`~llmlex.ClientSpec`:
        each worker builds its own client, with the key from its own environment (an
        ``openai`` client is accepted only by ``"serial"`` and thread pools).
    seed : int or None
        The batch's seed: data set ``i`` gets the ``i``-th child of
        ``numpy.random.SeedSequence(seed)`` (:func:`batch_seeds`), so a batch gives the
        same results on any executor.  None draws fresh entropy (not with
        ``checkpoint_dir``).
    seeds : sequence of int, optional
        One seed per data set, instead of those derived from ``seed``.
    checkpoint_dir : str or path-like, optional
        A directory for each data set's run checkpoint (``<name>.json``, written by the
        worker after every generation) and finished result (``<name>.result.json``,
        written here).  Running the batch again loads the finished data sets without
        submitting them (their status is ``"loaded"``) and resumes the others from their
        last generation (see ``checkpoint=`` of :func:`~llmlex.run_genetic`).  A
        result is loaded only if its data, seed, client description and options are
        those of this batch; otherwise the data set runs (and resumes from its
        checkpoint if the options allow).  Workers on other machines need the
        directory on a shared file system.
    cache : ReplyCache, str, path-like or None
        One reply cache for the whole batch: every worker opens the same directory
        (safe with many writers: one file per reply, written atomically).  Workers on
        other machines need it on a shared file system.
    max_calls, max_tokens, max_cost : optional
        Budgets of the whole batch, split into fixed shares, one per data set
        (``max_calls // n``, the remainder to the first ones; ``max_cost / n``), each
        enforced by its run as ``run_genetic`` enforces its own.  The batch therefore
        never exceeds ``max_calls`` (tokens and cost: by at most one generation's calls
        per data set), whatever the executor.  A share a data set leaves unspent is not
        passed on to others: that would make each result depend on the order in which
        the executor ran them.
    progress : bool
        A progress bar over the data sets (the runs' own bars are off).
    **run_options
        Any other keyword option of :func:`~llmlex.run_genetic` (``population_size``,
        ``num_of_generations``, ``model``, ``hints``, ``patience``, ...), the same for
        every data set.  They travel to the workers, so they must pickle.

    Returns
    -------
    BatchResult
        One :class:`BatchItem` per data set, in input order; ``.runs`` are the
        :class:`~llmlex.genetic.GeneticRun` objects.  A data set that failed (bad data
        found by its search, a rejected key, a lost worker) has ``status="failed"`` and
        its error; the others are unaffected.  ``.raise_for_failures()`` raises
        :class:`~llmlex.exceptions.BatchError` if any failed.

    Raises
    ------
    DataError
        For a data set that is not usable (before anything is submitted).
    TypeError
        For an unknown option, or an ``openai`` client with a process executor.
    KeyboardInterrupt
        Re-raised after the pending data sets were cancelled, with the batch so far as
        its ``partial_result``; checkpoints keep each run's last generation.

    Notes
    -----
    A default process pool whose worker dies (killed, out of memory) is broken for
    every data set still in it: those are reported failed, and running the batch
    again with the same ``checkpoint_dir`` resumes them.  Dask instead reschedules the
    tasks of a dead worker on the others (``distributed.scheduler.allowed-failures``
    times), and Ray retries them (:class:`RayExecutor`'s ``max_retries``).
    """
    t0 = time.perf_counter()
    plan = _Plan(
        datasets,
        client=client,
        seed=seed,
        seeds=seeds,
        checkpoint_dir=checkpoint_dir,
        cache=cache,
        budgets=(max_calls, max_tokens, max_cost),
        run_options=run_options,
    )
    serial = executor == "serial"
    in_process = serial or isinstance(executor, concurrent.futures.ThreadPoolExecutor)
    _check_client(client, in_process)
    bar = _progress(len(plan.tasks), len(plan.tasks) - len(plan.pending), progress)
    try:
        if serial:
            for task in plan.pending:
                started = time.perf_counter()
                plan.record(task, _run_task(task), time.perf_counter() - started)
                if bar is not None:
                    bar.update(1)
        elif plan.pending:
            _run_on(executor, max_workers, plan, bar)
    except (KeyboardInterrupt, SystemExit) as exc:
        exc.partial_result = plan.result(t0)  # type: ignore[attr-defined]
        raise
    finally:
        if bar is not None:
            bar.close()
    return plan.result(t0)


def _run_on(
    executor: concurrent.futures.Executor | str | None,
    max_workers: int | None,
    plan: _Plan,
    bar: Any,
) -> None:
    own = executor is None or executor == "processes"
    if own:
        workers = max_workers or os.cpu_count() or 1
        pool: concurrent.futures.Executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(plan.pending))), mp_context=_context()
        )
    elif isinstance(executor, concurrent.futures.Executor):
        pool = executor
    else:
        raise TypeError(
            "executor must be a concurrent.futures.Executor, 'processes', 'serial' or None, "
            f"got {executor!r}"
        )
    futures: dict[concurrent.futures.Future[_Outcome], _Task] = {}
    started = time.perf_counter()
    try:
        for task in plan.pending:
            futures[pool.submit(_run_task, task)] = task
        for future in concurrent.futures.as_completed(futures):
            task = futures[future]
            elapsed = time.perf_counter() - started
            try:
                plan.record(task, future.result(), elapsed)
            except concurrent.futures.CancelledError as exc:
                plan.fail(task, exc, elapsed)
            except Exception as exc:  # the executor lost the task (a dead worker)
                log.warning("data set %s was lost by the executor: %s", task.name, exc)
                plan.fail(task, exc, elapsed)
            if bar is not None:
                bar.update(1)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


def _context() -> multiprocessing.context.BaseContext:
    """Fresh ("spawn") worker processes.  Forked ones would inherit the state of this
    process's threads (thread pools without their threads, held locks); the children of
    a fork server would inherit the environment of the moment it started, not the
    current one (a key set since would not reach them)."""
    return multiprocessing.get_context("spawn")


async def arun_many(
    datasets: Sequence[Any] | Mapping[str, Any],
    *,
    executor: concurrent.futures.Executor | None = None,
    max_workers: int | None = None,
    client: ClientSpec | Any = None,
    seed: int | None = 0,
    seeds: Sequence[int] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    cache: ReplyCache | str | os.PathLike[str] | None = None,
    max_calls: int | None = None,
    max_tokens: int | None = None,
    max_cost: float | None = None,
    progress: bool = False,
    **run_options: Any,
) -> BatchResult:
    """Asynchronous :func:`run_many`; await it inside a running event loop.

    Takes the options of :func:`run_many`, with one difference: with no ``executor``
    every search runs in *this* event loop (:func:`~llmlex.arun_genetic`), at most
    ``max_workers`` at a time (default: all).  That suits LLM-bound batches, whose
    runs mostly wait on the server: their calls share the loop and the blocking-call
    thread pool, and each run keeps its own ``max_concurrency``.  Offline searches are
    CPU-bound and share one core there: give them an executor (awaited without blocking
    the loop).

    Returns
    -------
    BatchResult
        As :func:`run_many`.
    """
    t0 = time.perf_counter()
    plan = _Plan(
        datasets,
        client=client,
        seed=seed,
        seeds=seeds,
        checkpoint_dir=checkpoint_dir,
        cache=cache,
        budgets=(max_calls, max_tokens, max_cost),
        run_options=run_options,
    )
    in_loop = executor is None
    _check_client(client, in_loop or isinstance(executor, concurrent.futures.ThreadPoolExecutor))
    limit = asyncio.Semaphore(max_workers or max(1, len(plan.pending)))
    bar = _progress(len(plan.tasks), len(plan.tasks) - len(plan.pending), progress)

    async def one(task: _Task) -> None:
        async with limit:
            started = time.perf_counter()
            if in_loop:
                outcome = await _arun_task(task)
            else:
                assert executor is not None
                try:
                    outcome = await asyncio.wrap_future(executor.submit(_run_task, task))
                except Exception as exc:  # the executor lost the task
                    plan.fail(task, exc, time.perf_counter() - started)
                    return
            plan.record(task, outcome, time.perf_counter() - started)
            if bar is not None:
                bar.update(1)

    try:
        await asyncio.gather(*(one(t) for t in plan.pending))
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        exc.partial_result = plan.result(t0)  # type: ignore[attr-defined]
        raise
    finally:
        if bar is not None:
            bar.close()
    return plan.result(t0)


async def _arun_task(task: _Task) -> _Outcome:
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
        log.warning("data set %s failed: %s", task.name, _describe(exc))
        return _Outcome(getattr(exc, "partial_run", None), _describe(exc))
    return _Outcome(run, None)


class RayExecutor(concurrent.futures.Executor):
    """A :class:`concurrent.futures.Executor` on Ray: each call one Ray task.

    Ray's own ``concurrent.futures`` bridge (``ObjectRef.future()``) does the work;
    this adapter only gives :func:`run_many` the ``submit`` it expects.  Start Ray first
    (``ray.init()`` locally, ``ray.init(address="auto")`` on a cluster node).

    Parameters
    ----------
    num_cpus : float
        CPUs Ray reserves for each task (1: one search per core).
    max_retries : int
        Times Ray re-runs a task whose worker process died.
    **options
        Other options of ``ray.remote`` (``memory=``, ``runtime_env=``, ...).

    Raises
    ------
    MissingDependencyError
        If Ray is not installed (``pip install "llmlex[ray]"``).
    """

    def __init__(self, *, num_cpus: float = 1, max_retries: int = 3, **options: Any) -> None:
        try:
            import ray
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise MissingDependencyError(
                'RayExecutor needs Ray: pip install "llmlex[ray]"'
            ) from err
        self._ray = ray
        self._options = {"num_cpus": num_cpus, "max_retries": max_retries, **options}
        self._remote: dict[Any, Any] = {}

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args, **kwargs)`` as a Ray task; a future of its result."""
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(**self._options)(fn)
        return remote.remote(*args, **kwargs).future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to release: Ray itself stays up (``ray.shutdown()`` ends it)."""
