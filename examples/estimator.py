"""llmlex as a scikit-learn regressor: fit / predict / score, offline (no API key).

Run:  python examples/estimator.py
Needs scikit-learn, and for the 2-D part torch and pykan: pip install "llmlex[kan]".
"""

from __future__ import annotations

import numpy as np

from llmlex.estimator import LLMLExRegressor
from llmlex.export import report, to_latex

rng = np.random.default_rng(0)

# One column: the univariate genetic search (client=None runs the offline proposer).
X = np.linspace(0.2, 6.0, 80)[:, None]
y = 3.0 * np.exp(-0.5 * X[:, 0]) * np.sin(2.0 * X[:, 0])
reg = LLMLExRegressor(population_size=6, num_of_generations=3, random_state=1).fit(X, y)
print("1-D equation :", reg.equation_)
print("1-D R2       :", reg.score(X, y))
print("LaTeX        :", to_latex(reg, precision=3))
print(report(reg, x=X[:, 0], y=y))

# Two columns: a small KAN, each edge regressed, the network assembled into a formula.
X2 = rng.uniform(-1.0, 1.0, (200, 2))
y2 = 1.5 * X2[:, 0] + X2[:, 1] ** 2
kan = LLMLExRegressor(
    kan_hidden=(),  # additive model f0(x0) + f1(x1): enough here, and fast
    kan_steps=20,
    kan_restarts=1,
    kan_edges="polynomial",
    random_state=0,
).fit(X2, y2)
print("2-D equation :", kan.equation_)
print("2-D R2       :", kan.score(X2, y2))
print("prediction at (0.5, -0.5):", kan.predict([[0.5, -0.5]]))
