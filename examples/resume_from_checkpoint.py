"""Checkpoint a search, interrupt it, resume it, and save the result as JSON.

Runs offline (client=None): no API key, no network.  With a real client the same code
never repeats a paid call that the checkpoint recorded.

Run:  python examples/resume_from_checkpoint.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import llmlex
from llmlex.persist import load_result

rng = np.random.default_rng(0)
x = np.linspace(0.2, 6.0, 80)
y = 3.0 * np.exp(-0.5 * x) * np.sin(2.0 * x) + 0.05 * rng.standard_normal(x.size)

workdir = Path(tempfile.mkdtemp(prefix="llmlex-example-"))
checkpoint = workdir / "search.json"


# %% 1. A run that is interrupted after its second generation (think: a kernel restart).
class Interrupted(Exception):
    pass


def stop_after_second(generation: int, population: tuple) -> None:
    print(f"  generation {generation}: best nchi2 {population[-1].nchi2:.3g}")
    if generation == 1:
        raise Interrupted


options = dict(population_size=4, num_of_generations=4, seed=1, progress=False)
try:
    llmlex.run_genetic(
        None, None, x, y, checkpoint=checkpoint, callback=stop_after_second, **options
    )
except Interrupted:
    print("interrupted; the checkpoint holds the generations finished so far")

so_far = load_result(checkpoint)  # a checkpoint reads as the run so far
print("checkpoint:", so_far)

# %% 2. The same call again resumes: generations 0 and 1 are not redone.
run = llmlex.run_genetic(
    None,
    None,
    x,
    y,
    checkpoint=checkpoint,
    callback=lambda g, pop: print(f"  generation {g}: best nchi2 {pop[-1].nchi2:.3g}"),
    **options,
)
print("resumed run:", run)
assert [r.ansatz for r in run.populations[0]] == [r.ansatz for r in so_far.populations[0]]

# %% 3. Running it once more returns the finished run at once, with no work at all.
print("again     :", llmlex.run_genetic(None, None, x, y, checkpoint=checkpoint, **options))

# %% 4. Keep the result: JSON, loaded back identically (parameters bit for bit).
saved = run.save(workdir / "run.json")
back = llmlex.genetic.GeneticRun.load(saved)
assert back.best.params.tobytes() == run.best.params.tobytes()
print("best      :", back.best.formula(), f"(nchi2 {back.best.nchi2:.3g})")
print("files in", workdir, ":", sorted(p.name for p in workdir.iterdir()))
