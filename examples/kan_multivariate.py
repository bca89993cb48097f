"""Multivariate symbolic regression through a KAN, with a checkpoint of the edge fits.

The reference paper's example: y = exp(sin(pi*x0) + x1**2) on [-1, 1]^2, learned by a
[2, 1, 1] Kolmogorov-Arnold network whose three edges are then regressed one by one and
assembled into one formula.  Runs offline (client=None): no API key, no network; needs
the KAN extra (``pip install "llmlex[kan]"``).

Every edge is written to the checkpoint as soon as it is regressed: after a kernel
restart (or a crash, or ``kill -9``) the same ``get_symbolic`` call on the same network
regresses only the edges not yet recorded, so with a language model no call already
paid for is made again.

Run:  python examples/kan_multivariate.py
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from kan import MultKAN

from llmlex import KANLEX

torch.set_num_threads(1)  # a tiny network: threads cost more than they bring
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("llmlex.kan").setLevel(logging.INFO)  # shows what a resume reuses

# %% 1. Data and network.
# With a language model, pass a client instead of None, for example
#   import os, openai
#   client = openai.OpenAI(base_url="https://openrouter.ai/api/v1",
#                          api_key=os.environ["OPENROUTER_API_KEY"])
# and gpt_model="openai/gpt-4o" to get_symbolic: the LLM is asked only for the edges that
# the library of simple forms and the offline proposer leave unexplained.
client = None


def f(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.sin(torch.pi * x[:, [0]]) + x[:, [1]] ** 2)


kl = KANLEX(client, [2, 1, 1], grid=5, k=3, seed=0, variable_names=["x0", "x1"])
kl.create_dataset(f, n_var=2, ranges=(-1.0, 1.0), train_num=300, test_num=300)

# %% 2. Train.  More restarts (n_restarts=3, the default) are cheap insurance against a
# seed that stalls; the best network by held-out loss is kept.
kl.train_kan(steps=20, warmup=50, n_restarts=1, time_budget=20)  # the final training loss
report = kl.training  # every restart, the seed kept, its held-out loss
print(f"trained in {report.time:.1f} s: held-out RMSE {report.best_test_loss:.2g}")

# %% 3. From network to formula, checkpointing every edge.  Keep the trained network
# too: a resume needs the same network (one retrained from scratch differs a little,
# and a checkpoint of another network is refused with a CheckpointError).
workdir = Path(tempfile.mkdtemp(prefix="llmlex-kan-example-"))
checkpoint = workdir / "edges.json"
assert kl.model is not None
kl.model.saveckpt(str(workdir / "kan"))

options = dict(population=3, generations=1, verbose=0, simplify_timeout=2, snap_time=2)
t0 = time.perf_counter()
exprs, nchi2s, results, candidates = kl.get_symbolic(client, checkpoint=checkpoint, **options)
result = results[0]["result"]
print("formula        :", exprs[0])
print(f"held-out nchi2 : {nchi2s[0]:.3g}   R2: {result.r2_test:.10f}")
print(f"LLM calls      : {result.llm_calls} (offline)   time: {time.perf_counter() - t0:.1f} s")
print("edge formulas  :")
assert kl.edges is not None
for key, edge in kl.edges.items():
    print(f"  {key}: {edge.fit.formula(4) if edge.fit else edge.status}  ({edge.source})")

# %% 4. After a kernel restart: the same network and data, the same call.  The edges are
# read back from the checkpoint, none is regressed again (no search, no LLM call).
restarted = KANLEX(client, model=MultKAN.loadckpt(str(workdir / "kan")), seed=0)
restarted.create_dataset(f, n_var=2, ranges=(-1.0, 1.0), train_num=300, test_num=300)
t0 = time.perf_counter()
again, _, _, _ = restarted.get_symbolic(client, checkpoint=checkpoint, **options)
print(f"after restart  : {again[0]}   ({time.perf_counter() - t0:.1f} s, simplification only)")
assert restarted.edges is not None
assert [e.fit.params.tobytes() for e in restarted.edges.values() if e.fit] == [
    e.fit.params.tobytes() for e in kl.edges.values() if e.fit
]

# %% 5. The formula is a plain sympy expression: evaluate it anywhere.
X = np.random.default_rng(1).uniform(-1, 1, size=(1000, 2))
truth = np.exp(np.sin(np.pi * X[:, 0]) + X[:, 1] ** 2)
print(f"max |formula - truth| at 1000 new points: {np.max(np.abs(result.predict(X) - truth)):.2g}")
print("files in", workdir, ":", sorted(p.name for p in workdir.iterdir()))
