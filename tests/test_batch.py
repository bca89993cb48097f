"""run_many / arun_many: the same results on every executor, resume, budgets, failures.

The executors are real: a process pool, a Dask ``LocalCluster`` of two worker processes
(one of them killed mid-batch in one test), Ray when it is installed.  Every search is
tiny (two children, at most two generations, 30 points), so the file stays quick.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _batch_tasks import Count, InterruptAfter, KillOnce, where_is_llmlex
from fake_openai import FakeOpenAIServer

import llmlex
from llmlex.batch import BatchResult, batch_seeds
from llmlex.exceptions import BatchError, DataError

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = {"population_size": 2, "num_of_generations": 2}


def _datasets(n: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    x = np.linspace(0.2, 4.0, 30)
    shapes = [
        lambda x: 2.0 * np.exp(-0.7 * x),
        lambda x: 1.5 * np.sin(1.3 * x) + 0.5,
        lambda x: 0.8 * x**2 - x,
        lambda x: 3.0 / (1.0 + x),
    ]
    return {
        f"set-{i}": (x, shapes[i % 4](x) * (1 + i // 4) + 1e-3 * rng.standard_normal(x.size))
        for i in range(n)
    }


def _fingerprint(batch: BatchResult) -> list[tuple]:
    """What must not depend on the executor: every data set's formula, its parameters
    bit for bit, and the formulas of every generation."""
    out = []
    for item in batch:
        assert item.ok, item.error
        run = item.run
        out.append(
            (
                item.name,
                item.seed,
                run.best.ansatz,
                tuple(np.asarray(run.best.params).tolist()),
                tuple(tuple(r.ansatz for r in p) for p in run.populations),
            )
        )
    return out


@pytest.fixture(scope="module")
def serial() -> BatchResult:
    """The reference: every data set in this process, one after another."""
    return llmlex.run_many(_datasets(), executor="serial", progress=False, **OPTIONS)


@pytest.fixture(scope="module")
def worker_path() -> Iterator[None]:
    """Worker processes import the llmlex under test and the tests' helper modules."""
    old = os.environ.get("PYTHONPATH")
    parts = [str(ROOT), str(ROOT / "tests"), *([old] if old else [])]
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    try:
        yield
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


def _cluster(**options):
    distributed = pytest.importorskip("distributed")
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        **options,
    )


# -- the batch itself ---------------------------------------------------------------


def test_seeds_are_spawned_and_do_not_depend_on_the_batch_size():
    assert batch_seeds(0, 3) == batch_seeds(0, 5)[:3]
    assert len(set(batch_seeds(0, 50))) == 50
    assert batch_seeds(1, 2) != batch_seeds(0, 2)


def test_results_are_in_input_order_with_their_names(serial):
    assert [i.name for i in serial] == list(_datasets())
    assert [i.status for i in serial] == ["done"] * 4
    assert [i.seed for i in serial] == batch_seeds(0, 4)
    assert all(run is not None and run.best.nchi2 < 1e-2 for run in serial.runs)
    rows = serial.summary()
    assert [r["name"] for r in rows] == list(_datasets()) and rows[0]["formula"]


def test_a_process_pool_gives_the_sequential_results(serial):
    batch = llmlex.run_many(_datasets(), max_workers=2, progress=False, **OPTIONS)
    assert _fingerprint(batch) == _fingerprint(serial)


def test_a_dask_cluster_gives_the_sequential_results(serial, worker_path):
    distributed = pytest.importorskip("distributed")
    with _cluster() as cluster, distributed.Client(cluster) as client:
        # The workers import the llmlex under test, not another installed copy.
        paths = set(client.run(where_is_llmlex).values())
        assert paths == {where_is_llmlex()}
        batch = llmlex.run_many(
            _datasets(), executor=client.get_executor(), progress=False, **OPTIONS
        )
        ran_on = {ts for ts in client.run(os.getpid).values()}
    assert len(ran_on) == 2
    assert _fingerprint(batch) == _fingerprint(serial)


def test_a_killed_dask_worker_costs_a_retry_not_the_batch(serial, worker_path, tmp_path):
    distributed = pytest.importorskip("distributed")
    marker = tmp_path / "killed"
    with _cluster() as cluster, distributed.Client(cluster) as client:
        batch = llmlex.run_many(
            _datasets(),
            executor=client.get_executor(),
            checkpoint_dir=tmp_path / "ckpt",
            callback=KillOnce(marker),
            progress=False,
            **OPTIONS,
        )
    assert marker.exists()  # a worker did die, mid-search
    # Its data set was rescheduled on a live worker and resumed from its checkpoint.
    assert [i.status for i in batch] == ["done"] * 4
    assert _fingerprint(batch) == _fingerprint(serial)


def test_a_killed_pool_process_fails_its_data_sets_and_a_rerun_resumes(serial, tmp_path):
    ckpt = tmp_path / "ckpt"
    batch = llmlex.run_many(
        _datasets(),
        max_workers=2,
        checkpoint_dir=ckpt,
        callback=KillOnce(tmp_path / "killed"),
        progress=False,
        **OPTIONS,
    )
    # A process pool cannot replace a dead process: the data sets it still held fail
    # (BrokenProcessPool), those finished before stand.
    failed = batch.failed
    assert failed and all("BrokenProcessPool" in i.error for i in failed)
    again = llmlex.run_many(_datasets(), max_workers=2, checkpoint_dir=ckpt, progress=False,
                            **OPTIONS)  # fmt: skip
    statuses = [i.status for i in again]
    assert set(statuses) <= {"loaded", "done"}
    assert statuses.count("done") == len(failed)
    assert _fingerprint(again) == _fingerprint(serial)


def test_ray_gives_the_sequential_results(serial, worker_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (llmlex[ray])")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}},
    )
    try:
        batch = llmlex.run_many(
            _datasets(), executor=llmlex.batch.RayExecutor(), progress=False, **OPTIONS
        )
    finally:
        ray.shutdown()
    assert _fingerprint(batch) == _fingerprint(serial)


# -- resume ---------------------------------------------------------------------------


def test_an_interrupted_batch_resumes_and_loads_what_was_finished(serial, tmp_path):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt) as info:
        # Two generations of the first data set, then Ctrl-C in the second's first one.
        llmlex.run_many(
            _datasets(),
            executor="serial",
            checkpoint_dir=ckpt,
            callback=InterruptAfter(3),
            progress=False,
            **OPTIONS,
        )
    so_far = info.value.partial_result
    assert [i.status for i in so_far] == ["done", "failed", "failed", "failed"]
    first = ckpt / "set-0.json"
    stamp = first.stat().st_mtime_ns
    assert (ckpt / "set-1.json").exists() and not (ckpt / "set-2.json").exists()

    count = Count()
    batch = llmlex.run_many(
        _datasets(),
        executor="serial",
        checkpoint_dir=ckpt,
        callback=count,
        progress=False,
        **OPTIONS,
    )
    assert [i.status for i in batch] == ["loaded", "done", "done", "done"]
    assert first.stat().st_mtime_ns == stamp  # loaded, not run again
    # Only what was left ran: the second data set's last generation and the others.
    left = sum(run.stats.generations for run in serial.runs[1:]) - 1
    assert count.seen == left
    assert _fingerprint(batch) == _fingerprint(serial)


def test_other_options_do_not_load_a_finished_result(tmp_path):
    data = dict(list(_datasets().items())[:1])
    llmlex.run_many(data, executor="serial", checkpoint_dir=tmp_path, progress=False, **OPTIONS)
    again = llmlex.run_many(
        data,
        executor="serial",
        checkpoint_dir=tmp_path,
        progress=False,
        population_size=2,
        num_of_generations=3,  # extends the run: resumed from its checkpoint, not loaded
    )
    assert again[0].status == "done"
    assert again[0].run.stats.generations >= 2


# -- failures, validation ---------------------------------------------------------------


def test_one_failed_data_set_does_not_lose_the_others(tmp_path):
    (tmp_path / "set-1.json").write_text("{not json", encoding="utf-8")
    batch = llmlex.run_many(
        _datasets(3),
        max_workers=2,
        checkpoint_dir=tmp_path,
        progress=False,
        **OPTIONS,
    )
    assert [i.status for i in batch] == ["done", "failed", "done"]
    assert batch[1].error.startswith("CheckpointError")
    assert batch.runs[1] is None and batch.failed == (batch[1],)
    with pytest.raises(BatchError, match="1 of 3 data sets failed: set-1") as info:
        batch.raise_for_failures()
    assert info.value.result is batch


def test_bad_input_is_refused_before_anything_runs():
    x = np.linspace(0, 1, 20)
    with pytest.raises(DataError):
        llmlex.run_many([(x, x), (x, x[:5])], executor="serial")
    with pytest.raises(TypeError, match="did you mean 'population_size'"):
        llmlex.run_many([(x, x)], executor="serial", population=3)
    with pytest.raises(TypeError, match="checkpoint_dir="):
        llmlex.run_many([(x, x)], executor="serial", checkpoint="a.json")
    with pytest.raises(TypeError, match="unexpected keyword argument 'sigma'"):
        llmlex.run_many([(x, x)], executor="serial", sigma=0.1)
    with pytest.raises(ValueError, match="2 values for 1 data sets"):
        llmlex.run_many([(x, x)], executor="serial", seeds=[1, 2])
    with pytest.raises(ValueError, match="fixed seed"):
        llmlex.run_many([(x, x)], executor="serial", seed=None, checkpoint_dir="unused")
    with pytest.raises(ValueError, match="distinct"):
        llmlex.run_many({"a/b": (x, x), "a_b": (x, x)}, executor="serial")
    with pytest.raises(TypeError, match="ClientSpec"):
        import openai

        client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
        llmlex.run_many([(x, x)], client=client)


def test_datasets_may_be_tuples_with_sigma_or_mappings():
    x = np.linspace(0.2, 4.0, 25)
    y = 2.0 * x + 1.0
    batch = llmlex.run_many(
        [(x, y, 0.01), {"x": x, "y": y, "sigma": np.full(x.size, 0.01)}],
        executor="serial",
        progress=False,
        population_size=2,
        num_of_generations=1,
    )
    assert [i.name for i in batch] == ["0000", "0001"]
    assert batch[0].run.best.chi2 == pytest.approx(batch[1].run.best.chi2)


def test_a_batch_result_pickles(serial):
    back = pickle.loads(pickle.dumps(serial))
    assert _fingerprint(back) == _fingerprint(serial)


# -- LLM-bound batches -----------------------------------------------------------------


def _spec(fake: FakeOpenAIServer) -> llmlex.ClientSpec:
    return llmlex.ClientSpec(
        base_url=fake.base_url, api_key_env="LLMLEX_BATCH_KEY", max_retries=0, timeout=10
    )


def test_a_batch_budget_is_split_into_shares(fake_openai: FakeOpenAIServer, monkeypatch):
    monkeypatch.setenv("LLMLEX_BATCH_KEY", "sk-batch-test-key")
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*x + params[1]")
    data = dict(list(_datasets().items())[:2])
    batch = llmlex.run_many(
        data,
        executor="serial",
        client=_spec(fake_openai),
        max_calls=5,
        exit_condition=0.0,  # never reached: each run spends its whole share
        population_size=2,
        num_of_generations=5,
        progress=False,
    )
    assert [run.stats.calls for run in batch.runs] == [3, 2]
    assert fake_openai.calls == 5


def test_arun_many_in_one_event_loop_matches_run_many(fake_openai: FakeOpenAIServer, monkeypatch):
    monkeypatch.setenv("LLMLEX_BATCH_KEY", "sk-batch-test-key")
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*np.exp(-params[1]*x)")
    fake_openai.latency = 0.2
    options = {"population_size": 2, "num_of_generations": 1, "progress": False}
    data = _datasets()
    together = asyncio.run(llmlex.arun_many(data, client=_spec(fake_openai), **options))
    # Four runs of two calls each were in flight together, in one loop.
    assert fake_openai.calls == 8 and fake_openai.max_in_flight > 2
    apart = llmlex.run_many(data, executor="serial", client=_spec(fake_openai), **options)
    assert _fingerprint(together) == _fingerprint(apart)


def test_arun_many_awaits_an_executor(serial):
    async def main() -> BatchResult:
        with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
            return await llmlex.arun_many(_datasets(), executor=pool, **OPTIONS)

    assert _fingerprint(asyncio.run(main())) == _fingerprint(serial)


def test_a_process_pool_calls_the_server_with_a_spec(fake_openai: FakeOpenAIServer, monkeypatch):
    monkeypatch.setenv("LLMLEX_BATCH_KEY", "sk-batch-test-key")
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*x")
    data = dict(list(_datasets().items())[:2])
    batch = llmlex.run_many(
        data,
        client=_spec(fake_openai),
        max_workers=2,
        population_size=2,
        num_of_generations=1,
        progress=False,
    )
    assert [i.status for i in batch] == ["done", "done"], [i.error for i in batch]
    assert fake_openai.calls == 4
    assert all(h.get("authorization") == "Bearer sk-batch-test-key" for h in fake_openai.headers)
    assert sys.modules["llmlex"].__file__ == where_is_llmlex()
