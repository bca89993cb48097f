"""Scaling of a batch of data sets: sequential vs process pool vs Dask (vs Ray).

CPU-bound case: ``--n`` offline searches (``llmlex.run_many``), one after another in this
process, then on a process pool, a Dask ``LocalCluster`` and Ray (if installed) with each
``--workers`` count; wall time, speedup over sequential and efficiency (speedup per
worker), and whether every data set's result (formula, parameters bit for bit, every
generation's formulas) is identical to the sequential one.  The Dask cluster and Ray are
started before the clock starts (their start-up is printed apart); the process pool
starts its processes inside the timed call, as ``run_many`` does.

LLM-bound case: ``--llm-n`` searches against the test suite's local OpenAI-compatible
server (tests/fake_openai.py) at a fixed ``--latency``, through a ``ClientSpec``: in
sequence, as one event loop (``arun_many``), on a process pool and on Dask.  Such a batch
is bound by the server's latency and the concurrency cap (``max_concurrency`` per run),
not by the workers: the table prints the calls and the most requests the server saw in
flight at once.

Run:  python benchmarks/scaling.py [--n 16] [--workers 1 2] [--llm-n 4] [--latency 0.5]
      (a smoke run: --n 4 --generations 1 --population 2 --llm-n 2)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_openai import FakeOpenAIServer

import llmlex
from llmlex.batch import BatchResult

SHAPES: list[Callable[[np.ndarray], np.ndarray]] = [
    lambda x: 2.0 * np.exp(-0.7 * x),
    lambda x: 1.5 * np.sin(1.3 * x) + 0.5,
    lambda x: 0.8 * x**2 - x,
    lambda x: 3.0 / (1.0 + x),
    lambda x: np.sqrt(x) * np.cos(x),
    lambda x: np.log(1.0 + 2.0 * x),
    lambda x: x * np.exp(-0.5 * x),
    lambda x: np.tanh(1.5 * x - 2.0),
]
KEY_ENV = "LLMLEX_SCALING_KEY"


def datasets(n: int, points: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``n`` noisy data sets, each of ``points`` points: the shapes scaled in turn."""
    rng = np.random.default_rng(0)
    x = np.linspace(0.2, 5.0, points)
    out = {}
    for i in range(n):
        clean = (1.0 + i // len(SHAPES)) * SHAPES[i % len(SHAPES)](x)
        out[f"set-{i:02d}"] = (x, clean + 1e-3 * rng.standard_normal(x.size))
    return out


def fingerprint(batch: BatchResult) -> list[Any]:
    out = []
    for item in batch:
        run = item.run
        if not item.ok or run is None:
            out.append((item.name, "failed", item.error))
            continue
        pops = tuple(tuple(r.ansatz for r in p) for p in run.populations)
        params = tuple(np.asarray(run.best.params).tolist())
        out.append((item.name, run.best.ansatz, params, pops))
    return out


def timed(call: Callable[[], BatchResult]) -> tuple[float, BatchResult]:
    t0 = time.perf_counter()
    batch = call()
    return time.perf_counter() - t0, batch


def row(mode: str, workers: Any, wall: float, base: float, same: Any, extra: str = "") -> str:
    speedup = base / wall
    eff = f"{speedup / workers:.2f}" if isinstance(workers, int) else "-"
    return f"| {mode} | {workers} | {wall:.1f} | {speedup:.2f}x | {eff} | {same} | {extra} |"


def cpu_bound(args: argparse.Namespace) -> None:
    data = datasets(args.n, args.points)
    options = {
        "population_size": args.population,
        "num_of_generations": args.generations,
        "progress": False,
    }
    print(f"\n## CPU-bound: {args.n} offline searches, {args.points} points each")
    print(f"population {args.population}, {args.generations} generation(s), seed 0\n")
    print("| mode | workers | wall s | speedup | efficiency | identical | note |")
    print("|---|---|---|---|---|---|---|")
    base, reference = timed(lambda: llmlex.run_many(data, executor="serial", **options))
    ref = fingerprint(reference)
    print(row("sequential", 1, base, base, "(reference)"))
    for w in args.workers:
        wall, batch = timed(lambda w=w: llmlex.run_many(data, max_workers=w, **options))
        print(row("process pool", w, wall, base, fingerprint(batch) == ref))
    try:
        import distributed
    except ImportError:
        print("| dask | - | - | - | - | - | not installed |")
    else:
        for w in args.workers:
            t0 = time.perf_counter()
            with (
                distributed.LocalCluster(
                    n_workers=w,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                start = time.perf_counter() - t0
                executor = client.get_executor()
                wall, batch = timed(lambda e=executor: llmlex.run_many(data, executor=e, **options))
            note = f"cluster start {start:.1f} s, not timed"
            print(row("dask LocalCluster", w, wall, base, fingerprint(batch) == ref, note))
    try:
        import ray
    except ImportError:
        print("| ray | - | - | - | - | - | not installed |")
    else:
        for w in args.workers:
            t0 = time.perf_counter()
            ray.init(
                num_cpus=w,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}},
            )
            start = time.perf_counter() - t0
            try:
                executor = llmlex.batch.RayExecutor()
                wall, batch = timed(lambda e=executor: llmlex.run_many(data, executor=e, **options))
            finally:
                ray.shutdown()
            note = f"ray start {start:.1f} s, not timed"
            print(row("ray", w, wall, base, fingerprint(batch) == ref, note))


def llm_bound(args: argparse.Namespace) -> None:
    data = datasets(args.llm_n, args.points)
    os.environ[KEY_ENV] = "sk-scaling-benchmark"
    options = {
        "population_size": args.population,
        "num_of_generations": args.generations,
        "progress": False,
        "exit_condition": 0.0,  # never reached: every generation makes its calls
        "polish": False,
    }
    print(f"\n## LLM-bound: {args.llm_n} searches against a local server at {args.latency} s")
    print(
        f"population {args.population}, {args.generations} generation(s): "
        f"{args.llm_n * args.population * args.generations} calls in all\n"
    )
    print("| mode | workers | wall s | speedup | efficiency | identical | calls, most in flight |")
    print("|---|---|---|---|---|---|---|")
    with FakeOpenAIServer(latency=args.latency) as server:
        server.reply_with("ansatz: lambda x, *params: params[0]*np.exp(-params[1]*x) + params[2]")
        spec = llmlex.ClientSpec(base_url=server.base_url, api_key_env=KEY_ENV, max_retries=0)

        def measured(call: Callable[[], BatchResult]) -> tuple[float, BatchResult, str]:
            server.reset()
            server.latency = args.latency
            wall, batch = timed(call)
            return wall, batch, f"{server.calls}, {server.max_in_flight}"

        base, reference, seen = measured(
            lambda: llmlex.run_many(data, executor="serial", client=spec, **options)
        )
        ref = fingerprint(reference)
        print(row("sequential", 1, base, base, "(reference)", seen))
        wall, batch, seen = measured(
            lambda: asyncio.run(llmlex.arun_many(data, client=spec, **options))
        )
        print(row("one event loop (arun_many)", "-", wall, base, fingerprint(batch) == ref, seen))
        w = max(args.workers)
        wall, batch, seen = measured(
            lambda: llmlex.run_many(data, client=spec, max_workers=w, **options)
        )
        print(row("process pool", w, wall, base, fingerprint(batch) == ref, seen))
        try:
            import distributed
        except ImportError:
            print("| dask | - | - | - | - | - | not installed |")
            return
        with (
            distributed.LocalCluster(
                n_workers=w,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            executor = client.get_executor()
            wall, batch, seen = measured(
                lambda: llmlex.run_many(data, executor=executor, client=spec, **options)
            )
        print(row("dask LocalCluster", w, wall, base, fingerprint(batch) == ref, seen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="data sets of the CPU-bound batch")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--points", type=int, default=60)
    parser.add_argument("--population", type=int, default=5)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--llm-n", type=int, default=4, help="data sets of the LLM-bound batch")
    parser.add_argument("--latency", type=float, default=0.5, help="server latency, seconds")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    args = parser.parse_args()
    # Worker processes (spawned, Dask's, Ray's) import the llmlex this script imported.
    root = str(Path(llmlex.__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [root, *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])]
    )
    print(f"llmlex {llmlex.__version__} from {root}; {os.cpu_count()} CPU(s)")
    if not args.skip_cpu:
        cpu_bound(args)
    if not args.skip_llm:
        llm_bound(args)


if __name__ == "__main__":
    main()
