"""Two- and three-variable laws: llmlex's estimator vs pysindy's STLSQ, gplearn, pyoperon.

Problem sets (``--sets``):

- ``dso``: Nguyen-9..12 and Keijzer-10..15 of ``../shared/benchmarks/dso_benchmarks.csv``,
  sampled as their ``train_spec`` says (``U[lo, hi, n]`` per variable), clean test
  points from a fresh sample of the same box (``E`` grids where the spec gives one).
- ``livermore``: the 50 Livermore2-Vars2/Vars3 rows (``U[-10, 10, 1000]``); rows where
  the truth is undefined (a square root or log of a negative number) are dropped, and
  the problem is skipped when fewer than 100 remain.
- ``ode``: laws of textbook ODEs (a right-hand side as a function of the state),
  sampled the way experiments sample them: 400 points along four trajectories from
  ``scipy.integrate.solve_ivp`` (non-uniform, correlated), test points along four
  other trajectories.

Noise (``--noise``): Gaussian of that fraction of RMS(y) on the training targets, clean
test targets.  Reported per method: exact recovery (SRBench: test R2 > 0.5, constants
rounded to 3 decimals, ``truth - f`` or ``f / truth`` simplifies to a constant), R2 on
the clean test points, complexity (sympy nodes) against the truth's, wall time.

Results are appended to a JSON-lines log (``--log``) keyed by problem, method, noise
and seed, so an interrupted run resumes.  Usage::

    python benchmarks/multivariate.py --sets ode dso --noise 0 0.01
    python benchmarks/multivariate.py --methods llmlex sindy --sets livermore --limit 10

llmlex runs with the estimator's default ``time_budget`` (60 s) unless ``--time-budget``
says otherwise (``none``: no clock).  The machine's cores are shared: every method runs
on one thread.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import sympy

from llmlex import LLMLExRegressor
from llmlex import _kan_sympy as ks

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "benchmarks"


@dataclass(frozen=True)
class Problem:
    name: str
    truth: sympy.Expr
    X: np.ndarray
    y: np.ndarray  # clean
    X_test: np.ndarray
    y_test: np.ndarray


def symbols(d: int) -> list[sympy.Symbol]:
    return [sympy.Symbol(f"x{k}", real=True) for k in range(d)]


def _evaluate(expr: sympy.Expr, X: np.ndarray) -> np.ndarray:
    f = sympy.lambdify(symbols(X.shape[1]), expr, "numpy")
    with np.errstate(all="ignore"):
        out = np.asarray(f(*X.T), dtype=float)
    return np.broadcast_to(out, (X.shape[0],)).copy()


# ------------------------------------------------------------------------- problems


def _parse_dso(text: str, d: int) -> sympy.Expr:
    xs = symbols(d)
    names = {f"x{k + 1}": xs[k] for k in range(d)}
    names |= {
        "pow": lambda a, b: a**b,
        "div": lambda a, b: a / b,
        "sin": sympy.sin,
        "cos": sympy.cos,
        "exp": sympy.exp,
        "log": sympy.log,
        "sqrt": sympy.sqrt,
        "pi": sympy.pi,
    }
    return sympy.sympify(text, locals=names)


def _box(spec: dict, d: int, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    kind, (lo, hi, m) = next(iter(spec["all"].items()))
    if kind == "U":
        return rng.uniform(lo, hi, (int(n or m), d))
    grid = np.arange(lo, hi + 1e-12, m)
    if d == 1:
        return grid[:, None]
    mesh = np.meshgrid(*([grid] * d), indexing="ij")
    pts = np.stack([g.ravel() for g in mesh], axis=1)
    if n is not None and pts.shape[0] > n:  # a grid too large to score quickly: a subset
        pts = pts[rng.choice(pts.shape[0], n, replace=False)]
    return pts


def dso_problems(names: set[str] | None, seed: int) -> list[Problem]:
    wanted = {f"Nguyen-{k}" for k in (9, 10, 11, 12)} | {f"Keijzer-{k}" for k in range(10, 16)}
    livermore = {f"Livermore2-Vars{d}-{k}" for d in (2, 3) for k in range(1, 26)}
    out = []
    with open(SHARED / "dso_benchmarks.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["name"] not in (names or wanted):
                continue
            d = int(row["variables"])
            truth = _parse_dso(row["expression"], d)
            rng = np.random.default_rng([seed, zlib_hash(row["name"])])
            X = _box(json.loads(row["train_spec"]), d, rng)
            test_spec = row["test_spec"]
            if test_spec and test_spec != "None":
                Xt = _box(json.loads(test_spec), d, rng, n=2000)
            else:
                Xt = _box(json.loads(row["train_spec"]), d, rng, n=1000)
            y, yt = _evaluate(truth, X), _evaluate(truth, Xt)
            keep, keep_t = np.isfinite(y), np.isfinite(yt)
            if row["name"] in livermore and (keep.sum() < 100 or keep_t.sum() < 100):
                continue
            out.append(Problem(row["name"], truth, X[keep], y[keep], Xt[keep_t], yt[keep_t]))
    return out


def livermore_names() -> set[str]:
    return {f"Livermore2-Vars{d}-{k}" for d in (2, 3) for k in range(1, 26)}


#: Textbook ODEs: (name, right-hand side of the whole system, the component regressed,
#: the law of that component in the state symbols, initial-state box, time span).
def _odes() -> list[tuple[str, Callable, int, Callable, list[tuple[float, float]], float]]:
    x0, x1, x2 = symbols(3)
    return [
        (
            "lotka-volterra-prey",
            lambda t, s: [1.1 * s[0] - 0.4 * s[0] * s[1], 0.1 * s[0] * s[1] - 0.4 * s[1]],
            0,
            lambda: sympy.Rational(11, 10) * x0 - sympy.Rational(2, 5) * x0 * x1,
            [(2, 12), (1, 6)],
            30.0,
        ),
        (
            "van-der-pol",
            lambda t, s: [s[1], 1.5 * (1 - s[0] ** 2) * s[1] - s[0]],
            1,
            lambda: sympy.Rational(3, 2) * (1 - x0**2) * x1 - x0,
            [(-3, 3), (-3, 3)],
            20.0,
        ),
        (
            "damped-pendulum",
            lambda t, s: [s[1], -4.905 * np.sin(s[0]) - 0.2 * s[1]],
            1,
            lambda: -sympy.Float(4.905) * sympy.sin(x0) - sympy.Rational(1, 5) * x1,
            [(-2.5, 2.5), (-1, 1)],
            20.0,
        ),
        (
            "duffing",
            lambda t, s: [s[1], -0.3 * s[1] + s[0] - s[0] ** 3],
            1,
            lambda: -sympy.Rational(3, 10) * x1 + x0 - x0**3,
            [(-2, 2), (-1, 1)],
            25.0,
        ),
        (
            "brusselator",
            lambda t, s: [1 - 4 * s[0] + s[0] ** 2 * s[1], 3 * s[0] - s[0] ** 2 * s[1]],
            0,
            lambda: 1 - 4 * x0 + x0**2 * x1,
            [(0.2, 3), (0.5, 4)],
            20.0,
        ),
        (
            "sir-infected",
            lambda t, s: [-0.3 * s[0] * s[1], 0.3 * s[0] * s[1] - 0.1 * s[1]],
            1,
            lambda: sympy.Rational(3, 10) * x0 * x1 - sympy.Rational(1, 10) * x1,
            [(0.5, 1), (0.01, 0.1)],
            100.0,
        ),
        (
            "fitzhugh-nagumo",
            lambda t, s: [s[0] - s[0] ** 3 / 3 - s[1] + 0.5, 0.08 * (s[0] + 0.7 - 0.8 * s[1])],
            0,
            lambda: x0 - x0**3 / 3 - x1 + sympy.Rational(1, 2),
            [(-2, 2), (-1, 1.5)],
            60.0,
        ),
        (
            "selkov-glycolysis",
            lambda t, s: [
                -s[0] + 0.08 * s[1] + s[0] ** 2 * s[1],
                0.6 - 0.08 * s[1] - s[0] ** 2 * s[1],
            ],
            0,
            lambda: -x0 + sympy.Rational(2, 25) * x1 + x0**2 * x1,
            [(0.1, 2), (0.1, 2)],
            30.0,
        ),
        (
            "enzyme-kinetics",
            lambda t, s: [-2 * s[0] * s[1] / (0.5 + s[0]), -0.05 * s[1] + 0.02],
            0,
            lambda: -2 * x0 * x1 / (sympy.Rational(1, 2) + x0),
            [(0.5, 5), (0.2, 1)],
            10.0,
        ),
        (
            "lorenz-y",
            lambda t, s: [
                10 * (s[1] - s[0]),
                s[0] * (28 - s[2]) - s[1],
                s[0] * s[1] - 8 / 3 * s[2],
            ],
            1,
            lambda: x0 * (28 - x2) - x1,
            [(-10, 10), (-10, 10), (10, 30)],
            5.0,
        ),
        (
            "lorenz-z",
            lambda t, s: [
                10 * (s[1] - s[0]),
                s[0] * (28 - s[2]) - s[1],
                s[0] * s[1] - 8 / 3 * s[2],
            ],
            2,
            lambda: x0 * x1 - sympy.Rational(8, 3) * x2,
            [(-10, 10), (-10, 10), (10, 30)],
            5.0,
        ),
        (
            "rigid-body",
            lambda t, s: [s[1] * s[2], -s[0] * s[2], -0.51 * s[0] * s[1]],
            2,
            lambda: -sympy.Float(0.51) * x0 * x1,
            [(-1, 1), (-1, 1), (-1, 1)],
            12.0,
        ),
    ]


def _trajectories(rhs, box, span, rng, n_traj: int, n: int) -> np.ndarray:
    from scipy.integrate import solve_ivp

    per = n // n_traj
    states = []
    for _ in range(n_traj):
        s0 = [rng.uniform(lo, hi) for lo, hi in box]
        # Samples at random times: experiments rarely sample on a grid.
        t = np.sort(rng.uniform(0, span, per))
        sol = solve_ivp(rhs, (0, span), s0, t_eval=t, rtol=1e-10, atol=1e-12, method="LSODA")
        states.append(sol.y.T)
    return np.concatenate(states)


def ode_problems(seed: int) -> list[Problem]:
    out = []
    for name, rhs, comp, law, box, span in _odes():
        rng = np.random.default_rng([seed, zlib_hash(name)])
        X = _trajectories(rhs, box, span, rng, 4, 400)
        Xt = _trajectories(rhs, box, span, rng, 4, 400)
        truth = law()
        d = len(box)
        X, Xt = X[:, :d], Xt[:, :d]
        y = np.array([rhs(0, s)[comp] for s in X])
        yt = np.array([rhs(0, s)[comp] for s in Xt])
        out.append(Problem(name, truth, X, y, Xt, yt))
    return out


def zlib_hash(s: str) -> int:
    import zlib

    return zlib.crc32(s.encode())


# ------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Outcome:
    expr: sympy.Expr | None
    time: float
    text: str


def run_llmlex(X: np.ndarray, y: np.ndarray, seed: int, args: argparse.Namespace) -> Outcome:
    est = LLMLExRegressor(random_state=seed, time_budget=args.time_budget, progress=False)
    t0 = time.perf_counter()
    est.fit(X, y)
    return Outcome(est.expression_, time.perf_counter() - t0, f"[{est.method_}] {est.equation_}")


def run_sindy(X: np.ndarray, y: np.ndarray, seed: int, args: argparse.Namespace) -> Outcome:
    """A plain sparse regression, as a user would write it with pysindy: STLSQ over a
    degree-3 polynomial plus one-frequency Fourier library, one threshold."""
    import pysindy as ps

    lib = ps.PolynomialLibrary(degree=3) + ps.FourierLibrary(n_frequencies=1)
    t0 = time.perf_counter()
    theta = lib.fit(X).transform(X)
    opt = ps.STLSQ(threshold=0.05, alpha=1e-5, normalize_columns=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt.fit(np.asarray(theta), y[:, None])
    coef = np.asarray(opt.coef_).ravel()
    names = lib.get_feature_names([f"x{k}" for k in range(X.shape[1])])
    xs = symbols(X.shape[1])
    local = {f"x{k}": xs[k] for k in range(X.shape[1])} | {"sin": sympy.sin, "cos": sympy.cos}
    terms = []
    for c, name in zip(coef, names, strict=True):
        if c != 0:
            term = sympy.sympify(name.replace(" ", "*").replace("^", "**"), locals=local)
            terms.append(sympy.Float(float(c)) * term)
    expr = sympy.Add(*terms)
    return Outcome(expr, time.perf_counter() - t0, str(expr))


def run_gplearn(X: np.ndarray, y: np.ndarray, seed: int, args: argparse.Namespace) -> Outcome:
    from gplearn.genetic import SymbolicRegressor

    est = SymbolicRegressor(
        population_size=1000,
        generations=20,
        function_set=("add", "sub", "mul", "div", "sin", "cos", "log", "sqrt"),
        parsimony_coefficient=0.001,
        random_state=seed,
        n_jobs=1,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    dt = time.perf_counter() - t0
    text = str(est._program)
    xs = symbols(X.shape[1])
    names = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "sqrt": lambda a: sympy.sqrt(sympy.Abs(a)),
        "log": lambda a: sympy.log(sympy.Abs(a)),
        "sin": sympy.sin,
        "cos": sympy.cos,
        "neg": lambda a: -a,
        "inv": lambda a: 1 / a,
    } | {f"X{k}": xs[k] for k in range(X.shape[1])}
    return Outcome(sympy.sympify(text, locals=names), dt, text)


def run_pyoperon(X: np.ndarray, y: np.ndarray, seed: int, args: argparse.Namespace) -> Outcome:
    from pyoperon.sklearn import SymbolicRegressor

    est = SymbolicRegressor(
        allowed_symbols="add,sub,mul,div,sin,cos,exp,log,sqrt,constant,variable",
        n_threads=1,
        max_time=30,
        random_state=seed,
    )
    t0 = time.perf_counter()
    est.fit(X, y)
    dt = time.perf_counter() - t0
    text = est.get_model_string(est.model_, 12)
    xs = symbols(X.shape[1])
    local = {f"X{k + 1}": xs[k] for k in range(X.shape[1])}
    return Outcome(sympy.sympify(text.replace("^", "**"), locals=local), dt, text)


METHODS = {
    "llmlex": run_llmlex,
    "sindy": run_sindy,
    "gplearn": run_gplearn,
    "pyoperon": run_pyoperon,
}


# ------------------------------------------------------------------------- scoring


def round_floats(expr: sympy.Expr) -> sympy.Expr:
    """SRBench's rounding: tiny floats to 0, others to 3 decimals (integers exact)."""
    reps = {}
    for a in expr.atoms(sympy.Float):
        v = float(a)
        r = round(v, 3)
        reps[a] = (
            sympy.Integer(0)
            if abs(v) < 1e-4
            else (sympy.Integer(int(r)) if r == int(r) else sympy.Float(r))
        )
    return expr.xreplace(reps)


def exact(truth: sympy.Expr, cand: sympy.Expr | None, r2: float) -> bool:
    if cand is None or not r2 > 0.5:
        return False
    c = round_floats(cand)
    t = round_floats(truth)
    for trial in (t - c, c / t):
        out = ks.simplify_with_timeout(trial, 10.0)
        if out is not None and not out.free_symbols and out.is_finite is not False:
            return True
    return False


def r2_score(y: np.ndarray, yhat: np.ndarray) -> float:
    if not np.all(np.isfinite(yhat)):
        return -math.inf
    return 1.0 - float(np.sum((y - yhat) ** 2)) / float(np.sum((y - y.mean()) ** 2))


def run_one(p: Problem, method: str, noise: float, seed: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng([seed, zlib_hash(p.name), int(noise * 1e6)])
    y = p.y.copy()
    if noise:  # (noise 0 leaves y as it is: 0 * an overflowing RMS would be nan)
        y = y + noise * float(np.sqrt(np.mean(p.y**2))) * rng.normal(size=p.y.size)
    scale = args.x_scale
    try:
        out = METHODS[method](p.X * scale, y, seed, args)
    except Exception as err:  # a peer's crash is a miss, with its reason
        return {"error": f"{type(err).__name__}: {str(err)[:200]}", "exact": False, "r2": -math.inf}
    if scale != 1.0 and out.expr is not None:
        # Fitted on the columns in other units (x * scale): written back in the units of
        # the truth, x -> scale * x, and judged there like any other formula.
        xs = symbols(p.X.shape[1])
        back = {v: sympy.nsimplify(scale) * v for v in xs}  # exact: no rounding added
        out = Outcome(out.expr.xreplace(back), out.time, out.text)
    try:
        r2 = (
            r2_score(p.y_test, _evaluate(out.expr, p.X_test)) if out.expr is not None else -math.inf
        )
    except Exception as err:  # e.g. a peer's formula that sympy folded to zoo
        return {
            "error": f"not evaluable: {type(err).__name__}: {str(err)[:200]}",
            "exact": False,
            "r2": -math.inf,
            "time": out.time,
            "formula": out.text[:400],
        }
    return {
        "exact": exact(p.truth, out.expr, r2),
        "r2": r2,
        "complexity": _nodes(out.expr),
        "truth_complexity": _nodes(p.truth),
        "time": out.time,
        "formula": out.text[:400],
    }


def _nodes(expr: sympy.Expr | None) -> int:
    return 0 if expr is None else sum(1 for _ in sympy.preorder_traversal(expr))


def summarise(rows: list[dict], methods: list[str], noises: list[float]) -> str:
    lines = [
        "| set | noise | method | exact | R2 > 0.999 | median R2 "
        "| complexity <= 2x truth (of R2 > 0.999) | median time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted({r["set"] for r in rows}):
        for noise in noises:
            for m in methods:
                rs = [r for r in rows if r["set"] == s and r["method"] == m and r["noise"] == noise]
                if not rs:
                    continue
                good = [r for r in rs if r["r2"] > 0.999]
                short = [r for r in good if r["complexity"] <= 2 * r["truth_complexity"]]
                r2 = statistics.median(r["r2"] for r in rs)
                t = statistics.median(r.get("time", math.nan) for r in rs)
                lines.append(
                    f"| {s} | {noise:g} | {m} | {sum(r['exact'] for r in rs)}/{len(rs)} | "
                    f"{len(good)}/{len(rs)} | {r2:.4f} | {len(short)}/{len(good)} | {t:.1f} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sets", nargs="+", default=["ode", "dso"], choices=["ode", "dso", "livermore"]
    )
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.01])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--limit", type=int, default=None, help="first N problems of each set")
    ap.add_argument("--only", nargs="*", default=None, help="problem names")
    ap.add_argument(
        "--time-budget",
        type=lambda t: None if t.lower() == "none" else float(t),
        default=LLMLExRegressor().time_budget,
        help="llmlex's time_budget (default: the estimator's; 'none': no clock)",
    )
    ap.add_argument(
        "--x-scale",
        type=float,
        default=1.0,
        help="give the methods every column times this (other units); the formulas are "
        "written back in the truth's units before they are judged",
    )
    ap.add_argument("--log", type=Path, default=HERE / "results" / "multivariate-runs.jsonl")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict] = {}
    if args.log.exists():
        for line in args.log.read_text().splitlines():
            rec = json.loads(line)
            done[rec["key"]] = rec
    rows = []
    for seed in args.seeds:
        problems: list[tuple[str, Problem]] = []
        if "ode" in args.sets:
            problems += [("ode", p) for p in ode_problems(seed)[: args.limit]]
        if "dso" in args.sets:
            problems += [("dso", p) for p in dso_problems(None, seed)[: args.limit]]
        if "livermore" in args.sets:
            problems += [
                ("livermore", p) for p in dso_problems(livermore_names(), seed)[: args.limit]
            ]
        for set_name, p in problems:
            if args.only and p.name not in args.only:
                continue
            for noise in args.noise:
                for m in args.methods:
                    cfg = args.time_budget if m == "llmlex" else None
                    key = f"{p.name}|{m}|{noise:g}|{seed}|{cfg}"
                    if args.x_scale != 1.0:
                        key += f"|x*{args.x_scale:g}"
                    if key not in done:
                        rec = run_one(p, m, noise, seed, args)
                        rec |= {
                            "key": key,
                            "set": set_name,
                            "problem": p.name,
                            "method": m,
                            "noise": noise,
                            "seed": seed,
                        }
                        with args.log.open("a") as fh:
                            fh.write(json.dumps(rec) + "\n")
                        done[key] = rec
                        print(
                            f"{p.name:24s} {m:8s} noise={noise:<5g} exact={rec['exact']!s:5s} "
                            f"R2={rec['r2']:.5f} t={rec.get('time', math.nan):.1f}s "
                            f"{rec.get('formula', rec.get('error', ''))[:90]}",
                            flush=True,
                        )
                    rows.append(done[key])
    print()
    print(summarise(rows, args.methods, args.noise))
    return 0


if __name__ == "__main__":
    sys.exit(main())
