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
import logging
import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from llmlex._batch import (
    BatchItem,
    BatchResult,
    Outcome,
    Plan,
    Task,
    arun_task,
    batch_seeds,
    run_task,
)
from llmlex._clientspec import ClientSpec, is_openai_client
from llmlex._progress import progress_bar
from llmlex.cache import ReplyCache
from llmlex.exceptions import MissingDependencyError

__all__ = [
    "BatchItem",
    "BatchResult",
    "RayExecutor",
    "arun_many",
    "batch_seeds",
    "run_many",
]

log = logging.getLogger(__name__)


def _check_client(client: Any, in_process: bool) -> None:
    if not in_process and is_openai_client(client):
        raise TypeError(
            f"an {type(client).__name__} client cannot be sent to worker processes: pass "
            "llmlex.ClientSpec(base_url=..., api_key_env=...) and each worker builds its "
            "own client from its own environment (executor='serial' or a thread pool "
            "accept the client itself)"
        )


def _progress(total: int, done: int, enabled: bool) -> Any:
    bar = progress_bar(total, enabled and total > 0, "llmlex batch", unit="data set")
    if bar is not None and done:
        bar.update(done)
    return bar


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
    plan = Plan(
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
                plan.record(task, run_task(task), time.perf_counter() - started)
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
    plan: Plan,
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
    futures: dict[concurrent.futures.Future[Outcome], Task] = {}
    started = time.perf_counter()
    try:
        for task in plan.pending:
            futures[pool.submit(run_task, task)] = task
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
    plan = Plan(
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

    async def one(task: Task) -> None:
        async with limit:
            started = time.perf_counter()
            if in_loop:
                outcome = await arun_task(task)
            else:
                assert executor is not None
                try:
                    outcome = await asyncio.wrap_future(executor.submit(run_task, task))
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
