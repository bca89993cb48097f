"""A batch of data sets: a process pool here, a Dask cluster if you have one.

Runs offline (client=None): no API key, no network.  For an LLM, pass
``client=llmlex.ClientSpec(...)``: each worker builds its own client with the key from
its own environment.

Run:  python examples/batch.py                     # a local process pool
      python examples/batch.py tcp://HOST:8786     # a running Dask scheduler
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np

import llmlex


def light_curves(n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``n`` decaying oscillations with their own rates and frequencies, 1% noise."""
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 6.0, 80)
    out = {}
    for i in range(n):
        rate, freq = rng.uniform(0.2, 0.8), rng.uniform(1.0, 3.0)
        y = np.exp(-rate * t) * np.cos(freq * t)
        out[f"star-{i}"] = (t, y + 0.01 * rng.standard_normal(t.size))
    return out


def main() -> None:
    data = light_curves(4)
    executor, dask = None, None  # None: a process pool of one process per CPU
    if len(sys.argv) > 1:
        from distributed import Client  # pip install "llmlex[dask]"

        dask = Client(sys.argv[1])
        executor = dask.get_executor()
    checkpoints = tempfile.mkdtemp(prefix="llmlex-batch-")
    try:
        batch = llmlex.run_many(
            data,
            executor=executor,
            seed=0,  # data set i gets the i-th child of SeedSequence(0): any executor, same results
            checkpoint_dir=checkpoints,  # run it again: finished data sets are loaded
            population_size=4,
            num_of_generations=3,
        )
    finally:
        if dask is not None:
            dask.close()
    for row in batch.summary():
        print(f"{row['name']:8s} {row['status']:7s} nchi2 {row['nchi2']:.2g}  {row['formula']}")
    batch.raise_for_failures()


if __name__ == "__main__":  # required: the process pool starts fresh interpreters
    main()
