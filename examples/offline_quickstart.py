"""Offline symbolic regression: no API key, no network.

Run:  python examples/offline_quickstart.py
"""

from __future__ import annotations

import numpy as np

import llmlex

rng = np.random.default_rng(0)
x = np.linspace(0.2, 6.0, 80)
y = 3.0 * np.exp(-0.5 * x) * np.sin(2.0 * x) + 0.02 * rng.standard_normal(x.size)

# client=None selects the embedded offline proposer; the search (fit, score, select,
# evolve) is the same one that runs around a language model.
run = llmlex.run_genetic(None, None, x, y, population_size=8, num_of_generations=4, seed=1)

best = run.best
print("formula   :", best.formula())
print("parameters:", best.params)
print("nchi2     :", best.nchi2, " complexity:", best.complexity)
print("stats     :", run.stats)
print("Pareto front (complexity, nchi2, ansatz):")
for r in run.pareto_front:
    print(f"  {r.complexity:3d}  {r.nchi2:10.3g}  {r.ansatz}")
