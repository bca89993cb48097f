"""Benchmark of the fitter given the true functional form.

For each problem the ansatz has the right form with free parameters; a fit counts as
found when nchi2 < 1e-10 on noiseless data.  Each problem is fitted once per seed; the
table gives the share of seeds that found it and the median wall time of a fit.
llmlex's ``fit_ansatz`` is compared with the reference library's strategy:
``scipy.optimize.curve_fit`` from all-ones, retrying from a random start only when
``curve_fit`` raises.

Run:  python benchmarks/fitter.py [--repeat 5] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from llmlex.ansatz import parse_ansatz
from llmlex.fit import fit_ansatz, nchi2

X = np.linspace(0.1, 5.0, 100)

# (name, ansatz with the true form, truth, x)
PROBLEMS = [
    ("cos", "params[0]*np.cos(params[1]*x)", lambda x: 51.2288 * np.cos(1.18219 * x), X),
    ("exp(a+b/x)", "np.exp(params[0]+params[1]/x)", lambda x: np.exp(1.83169 - 3.35509 / x), X),
    ("x^-3 sin", "x**params[0]*np.sin(params[1]*x)", lambda x: x**-3 * np.sin(x), X),
    (
        "exp sum",
        "np.exp(params[0]*x)+params[1]*np.exp(params[2]*x)",
        lambda x: np.exp(-x) + 2 * np.exp(-3 * x),
        X,
    ),
    ("sqrt(6-x)", "np.sqrt(params[0]-x)", lambda x: np.sqrt(6 - x), X),
    ("log(7-x)", "params[0]*np.log(params[1]-x)", lambda x: 2 * np.log(7 - x), X),
    ("decay", "params[0]*np.exp(params[1]*x)", lambda x: 2.5 * np.exp(-0.7 * x), X),
    ("log shift", "params[0]*np.log(x+params[1])", lambda x: 3 * np.log(x + 0.5), X),
    ("power", "params[0]*x**params[1]", lambda x: 1.5 * x**2.3, X),
    ("cbrt shift", "params[0]*np.cbrt(x+params[1])", lambda x: 2 * np.cbrt(x - 1.3), X),
    (
        "sin phase",
        "params[0]*np.sin(params[1]*x+params[2])+params[3]",
        lambda x: 0.8 * np.sin(3.7 * x + 0.4) + 0.2,
        X,
    ),
    (
        "gaussian",
        "params[0]*np.exp(-(x-params[1])**2/params[2])",
        lambda x: 4 * np.exp(-((x - 2.2) ** 2) / (2 * 0.6**2)),
        X,
    ),
    (
        "sigmoid",
        "params[0]/(1+np.exp(-params[1]*(x-params[2])))",
        lambda x: 2 / (1 + np.exp(-3 * (x - 2.5))),
        X,
    ),
    ("tanh", "params[0]*np.tanh(params[1]*x+params[2])", lambda x: 1.3 * np.tanh(0.9 * x - 1), X),
    (
        "rational",
        "(params[0]*x+params[1])/(x**2+params[2])",
        lambda x: (2 * x + 1) / (x**2 + 0.5),
        X,
    ),
    (
        "damped cos",
        "params[0]*np.exp(params[1]*x)*np.cos(params[2]*x)",
        lambda x: 2 * np.exp(-0.3 * x) * np.cos(2 * x),
        np.linspace(0, 10, 120),
    ),
    ("power offset", "params[0]*(x+params[1])**params[2]", lambda x: 3 * (x + 0.2) ** -1.5, X),
    (
        "two sines",
        "np.sin(params[0]*x)+params[1]*np.sin(params[2]*x)",
        lambda x: np.sin(2 * x) + 0.5 * np.sin(5 * x),
        X,
    ),
    (
        "exp diff",
        "params[0]*np.exp(params[1]*x)+params[2]*np.exp(params[3]*x)",
        lambda x: 1.2 * np.exp(-0.5 * x) - 0.7 * np.exp(-2 * x),
        X,
    ),
    ("x exp", "params[0]*x*np.exp(params[1]*x)", lambda x: 2 * x * np.exp(-x / 1.5), X),
    (
        "arctan",
        "params[0]*np.arctan(params[1]*x+params[2])",
        lambda x: 2 * np.arctan(1.7 * x - 3),
        X,
    ),
    ("sqrt quad", "params[0]*np.sqrt(x**2+params[1])", lambda x: 1.1 * np.sqrt(x**2 + 2), X),
    ("inverse sq", "params[0]/(x+params[1])**2", lambda x: 1 / (x + 0.3) ** 2, X),
    ("sqrt cos", "x**params[0]*np.cos(params[1]*x)", lambda x: np.cos(2.3 * x) * np.sqrt(x), X),
    (
        "log-x sq",
        "params[0]*np.log(params[1]*x)**2",
        lambda x: 0.5 * np.log(x) ** 2,
        X,
    ),
]

# Nguyen-1..8 true forms with free constants (data from ../shared/benchmarks/nguyen).
NGUYEN = {
    1: "params[0]*x**3+params[1]*x**2+params[2]*x",
    2: "params[0]*x**4+params[1]*x**3+params[2]*x**2+params[3]*x",
    3: "params[0]*x**5+params[1]*x**4+params[2]*x**3+params[3]*x**2+params[4]*x",
    4: "params[0]*x**6+params[1]*x**5+params[2]*x**4+params[3]*x**3+params[4]*x**2+params[5]*x",
    5: "params[0]*np.sin(params[1]*x**2)*np.cos(params[2]*x)+params[3]",
    6: "np.sin(params[0]*x)+np.sin(params[1]*x+params[2]*x**2)",
    7: "np.log(x+params[0])+np.log(x**2+params[1])",
    8: "params[0]*x**params[1]",
}


def reference_fit(text: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """The reference library's strategy: curve_fit from ones, retry only on exceptions."""
    a = parse_ansatz(text)

    def f(xx, *p):
        return a(xx, np.asarray(p))

    p0 = np.ones(a.n_params)
    for _ in range(10):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                popt, _ = curve_fit(f, x, y, p0=p0, maxfev=10000)
            return nchi2(y, f(x, *popt))
        except (RuntimeError, ValueError):
            p0 = rng.normal(size=a.n_params)
    return float("nan")


def run(problems, repeat: int) -> list[tuple[str, float, float, float, float]]:
    rows = []
    rng = np.random.default_rng(0)
    for name, text, truth, x in problems:
        y = truth(x)
        ours, theirs, t_ours, t_theirs = [], [], [], []
        for r in range(repeat):
            t0 = time.perf_counter()
            res = fit_ansatz(text, x, y, seed=r)
            t_ours.append(time.perf_counter() - t0)
            ours.append(res.nchi2)
            t0 = time.perf_counter()
            theirs.append(reference_fit(text, x, y, rng))
            t_theirs.append(time.perf_counter() - t0)
        rows.append(
            (
                name,
                sum(v < 1e-10 for v in ours) / repeat,
                statistics.median(t_ours),
                sum(v < 1e-10 for v in theirs) / repeat,
                statistics.median(t_theirs),
            )
        )
    return rows


def load_nguyen(shared: Path):
    out = []
    for k, text in NGUYEN.items():
        data = np.loadtxt(shared / "benchmarks" / "nguyen" / f"Nguyen-{k}.csv", delimiter=",")
        xk, yk = data[:, 0], data[:, 1]
        out.append((f"Nguyen-{k}", text, _lookup(xk, yk), xk))
    return out


def _lookup(xk: np.ndarray, yk: np.ndarray):
    return lambda x: yk if x is xk else np.interp(x, xk, yk)


def table(title: str, rows) -> str:
    lines = [
        f"### {title}",
        "",
        "| problem | llmlex found | llmlex median ms | reference found | reference median ms |",
        "|---|---|---|---|---|",
    ]
    for name, a, ta, b, tb in rows:
        lines.append(f"| {name} | {a:.0%} | {ta * 1e3:.2f} | {b:.0%} | {tb * 1e3:.2f} |")
    ok_a = sum(r[1] for r in rows)
    ok_b = sum(r[3] for r in rows)
    med_a = statistics.median(r[2] for r in rows) * 1e3
    med_b = statistics.median(r[4] for r in rows) * 1e3
    lines.append(
        f"| **found (nchi2<1e-10), problems x seeds** | **{ok_a:.4g}/{len(rows)}** | "
        f"**{med_a:.2f}** | **{ok_b:.4g}/{len(rows)}** | **{med_b:.2f}** |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fits per problem (seeds)")
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    args = parser.parse_args()
    print(table("True forms (linspace grids)", run(PROBLEMS, args.repeat)))
    print()
    if (args.shared / "benchmarks" / "nguyen").is_dir():
        print(
            table(
                "Nguyen-1..8 true forms (20-point train files)",
                run(load_nguyen(args.shared), args.repeat),
            )
        )
    else:
        print(f"(no Nguyen data at {args.shared}/benchmarks/nguyen)")


if __name__ == "__main__":
    main()
