"""Univariate symbolic-regression benchmark: llmlex offline vs gplearn vs pyoperon.

Runs every method on the same data with the same seeds and writes a Markdown table:
per problem and method, exact symbolic recovery (SRBench's definition), R2 on the test
points, nchi2 on the training points, complexity (sympy node count) and wall time.

Problem sets (``--problems``):

* ``nguyen`` (default): Nguyen-1..8 with the fixed 20-point train and test files from
  ``<shared>/benchmarks/nguyen``.
* ``heldout``: the univariate rows of ``dso_benchmarks.csv`` that are not Nguyen (and
  not Nguyen's duplicates under other names), sampled by their ``train_spec`` /
  ``test_spec`` with a fixed seed.  Nobody tuned the offline proposer on these.

Exact recovery: with test R2 > 0.5, the candidate's floats are rounded (|c| < 1e-4 to 0,
others to 3 decimals, integral values become integers), then ``simplify(truth - cand)``
or ``simplify(cand / truth)`` must be a constant (each under a time limit).

Run::

    python benchmarks/univariate.py                       # Nguyen-1..8, 3 seeds, all tools
    python benchmarks/univariate.py --problems heldout --methods llmlex
    python benchmarks/univariate.py --seeds 0 1 2 --out benchmarks/results/nguyen.md

Results are written to ``benchmarks/results/`` (git-ignored).  Runs one problem at a
time on one thread per tool; pin it to one core with ``taskset -c 0`` for comparable
timings.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

REPO = Path(__file__).resolve().parents[1]
X = sympy.Symbol("x", real=True)


@dataclass(frozen=True)
class Problem:
    name: str
    truth: sympy.Expr
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class Outcome:
    expr: sympy.Expr | None
    nchi2: float
    time: float
    text: str


# --- problems ------------------------------------------------------------------------


def _parse_dso(expr: str) -> sympy.Expr:
    names = {
        "x1": X,
        "pow": lambda a, b: a**b,
        "div": lambda a, b: a / b,
        "sin": sympy.sin,
        "cos": sympy.cos,
        "exp": sympy.exp,
        "log": sympy.log,
        "sqrt": sympy.sqrt,
        "pi": sympy.pi,
    }
    return sympy.sympify(expr, locals=names)


def _load_dso(shared: Path) -> dict[str, dict[str, str]]:
    with open(shared / "benchmarks" / "dso_benchmarks.csv", newline="") as fh:
        return {row["name"]: row for row in csv.DictReader(fh)}


def _sample(spec: dict, rng: np.random.Generator) -> np.ndarray:
    (kind, args), *_ = spec["all"].items()
    if kind == "U":
        lo, hi, n = args
        return rng.uniform(lo, hi, int(n))
    lo, hi, step = args  # even grid, both ends included as in the DSO code
    if step > hi - lo:  # rows such as E[-1, 1, 20] mean 20 points, not a step of 20
        return np.linspace(lo, hi, int(step))
    return np.arange(lo, hi + 0.5 * step, step)


def nguyen_problems(shared: Path) -> list[Problem]:
    rows = _load_dso(shared)
    out = []
    for k in range(1, 9):
        name = f"Nguyen-{k}"
        train = np.loadtxt(shared / "benchmarks" / "nguyen" / f"{name}.csv", delimiter=",")
        test = np.loadtxt(shared / "benchmarks" / "nguyen" / f"{name}_test.csv", delimiter=",")
        truth = _parse_dso(rows[name]["expression"])
        out.append(Problem(name, truth, train[:, 0], train[:, 1], test[:, 0], test[:, 1]))
    return out


# Same expression and sampling as a Nguyen problem, or not a closed form.
_NOT_HELD_OUT = ("Nguyen", "Neat", "Const-Test-2")


def heldout_problems(shared: Path, seed: int = 12345) -> list[Problem]:
    out = []
    for name, row in _load_dso(shared).items():
        if row["variables"] != "1" or name.startswith(_NOT_HELD_OUT):
            continue
        try:
            truth = _parse_dso(row["expression"])
        except (sympy.SympifyError, TypeError):
            continue
        f = sympy.lambdify(X, truth, "numpy")
        rng = np.random.default_rng([seed, zlib_hash(name)])
        train_spec = json.loads(row["train_spec"])
        x = _sample(train_spec, rng)
        # No test spec: a fresh sample of the training range (same seeded generator).
        test_spec = json.loads(row["test_spec"]) if row["test_spec"] != "None" else train_spec
        xt = _sample(test_spec, rng)
        with np.errstate(all="ignore"):
            y, yt = np.broadcast_to(f(x), x.shape), np.broadcast_to(f(xt), xt.shape)
        ok, okt = np.isfinite(y), np.isfinite(yt)
        out.append(Problem(name, truth, x[ok], y[ok], xt[okt], yt[okt]))
    return out


def zlib_hash(s: str) -> int:
    import zlib

    return zlib.crc32(s.encode())


# --- methods -------------------------------------------------------------------------


def run_llmlex(p: Problem, seed: int, args: argparse.Namespace) -> Outcome:
    from llmlex.genetic import run_genetic

    t0 = time.perf_counter()
    run = run_genetic(
        None,
        None,
        p.x,
        p.y,
        population_size=args.population,
        num_of_generations=args.generations,
        exit_condition=args.exit_condition,
        seed=seed,
        progress=False,
        time_budget=args.time_limit,
    )
    dt = time.perf_counter() - t0
    best = run.best
    return Outcome(best.expression, best.nchi2, dt, best.formula())


def _gplearn_sympy(program: str) -> sympy.Expr:
    names = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        # gplearn's protected operators (closures of sqrt and log on |a|).
        "sqrt": lambda a: sympy.sqrt(sympy.Abs(a)),
        "log": lambda a: sympy.log(sympy.Abs(a)),
        "sin": sympy.sin,
        "cos": sympy.cos,
        "neg": lambda a: -a,
        "inv": lambda a: 1 / a,
        "X0": X,
    }
    return sympy.sympify(program, locals=names)


def run_gplearn(p: Problem, seed: int, args: argparse.Namespace) -> Outcome:
    from gplearn.genetic import SymbolicRegressor

    from llmlex.fit import nchi2

    est = SymbolicRegressor(
        population_size=args.gplearn_population,
        generations=args.gplearn_generations,
        function_set=("add", "sub", "mul", "div", "sin", "cos", "log", "sqrt"),
        parsimony_coefficient=0.001,
        random_state=seed,
        n_jobs=1,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(p.x[:, None], p.y)
    dt = time.perf_counter() - t0
    text = str(est._program)
    return Outcome(_gplearn_sympy(text), nchi2(p.y, est.predict(p.x[:, None])), dt, text)


def run_pyoperon(p: Problem, seed: int, args: argparse.Namespace) -> Outcome:
    from pyoperon.sklearn import SymbolicRegressor

    from llmlex.fit import nchi2

    est = SymbolicRegressor(
        allowed_symbols="add,sub,mul,div,sin,cos,exp,log,sqrt,constant,variable",
        n_threads=1,
        max_time=int(args.time_limit),
        random_state=seed,
    )
    t0 = time.perf_counter()
    est.fit(p.x[:, None], p.y)
    dt = time.perf_counter() - t0
    text = est.get_model_string(est.model_, 12)
    expr = sympy.sympify(text.replace("^", "**"), locals={"X1": X, "x1": X})
    return Outcome(expr, nchi2(p.y, est.predict(p.x[:, None])), dt, text)


METHODS: dict[str, Callable[[Problem, int, argparse.Namespace], Outcome]] = {
    "llmlex": run_llmlex,
    "gplearn": run_gplearn,
    "pyoperon": run_pyoperon,
}


# --- scoring -------------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def round_floats(expr: sympy.Expr) -> sympy.Expr:
    """SRBench's rounding: tiny floats to 0, others to 3 decimals (integers exact)."""
    reps = {}
    for a in sympy.preorder_traversal(expr):
        if isinstance(a, sympy.Float):
            v = float(a)
            if abs(v) < 1e-4:
                reps[a] = sympy.Integer(0)
            else:
                r = round(v, 3)
                reps[a] = sympy.Integer(int(r)) if r == int(r) else sympy.Float(r)
    return expr.xreplace(reps)


def is_recovered(
    truth: sympy.Expr, cand: sympy.Expr, seconds: int = 20, *, nonnegative: bool = False
) -> bool:
    """SRBench's check; ``nonnegative``: the problem's domain is x >= 0.

    On such a domain ``Abs(x)`` is ``x`` (gplearn's protected ``sqrt(|x|)`` is ``sqrt(x)``
    there), which sympy can only see with a positive symbol.
    """
    try:
        with time_limit(seconds):
            c, truth = round_floats(cand), round_floats(truth)
            if nonnegative:
                xp = sympy.Symbol("x", positive=True)
                c, truth = c.xreplace({X: xp}), truth.xreplace({X: xp})
            if not sympy.simplify(truth - c).free_symbols:
                return True
            ratio = sympy.simplify(c / truth)
            return bool(ratio != 0 and not ratio.free_symbols)
    except TimeoutError:
        return False
    except Exception:  # sympy failures count as not recovered
        return False


def r2_score(y: np.ndarray, yhat: np.ndarray) -> float:
    if not np.all(np.isfinite(yhat)):
        return -math.inf
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - yhat) ** 2)) / ss if ss > 0 else -math.inf


def evaluate(expr: sympy.Expr | None, x: np.ndarray) -> np.ndarray:
    if expr is None:
        return np.full_like(x, np.nan)
    f = sympy.lambdify(X, expr, modules=["numpy", "scipy"])
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape)


# --- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--problems", default="nguyen", choices=["nguyen", "heldout"])
    ap.add_argument("--only", nargs="*", default=None, help="problem names to run")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--generations", type=int, default=12)
    ap.add_argument("--exit-condition", type=float, default=1e-16)
    ap.add_argument(
        "--time-limit", type=float, default=60.0, help="seconds per run (llmlex, pyoperon)"
    )
    ap.add_argument("--gplearn-population", type=int, default=2000)
    ap.add_argument("--gplearn-generations", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    problems = (
        nguyen_problems(args.shared) if args.problems == "nguyen" else heldout_problems(args.shared)
    )
    if args.only:
        problems = [p for p in problems if p.name in args.only]
    methods = []
    for m in args.methods:
        try:
            __import__({"llmlex": "llmlex", "gplearn": "gplearn", "pyoperon": "pyoperon"}[m])
        except ImportError:
            print(f"# {m} is not installed: skipped", file=sys.stderr)
            continue
        methods.append(m)

    rows = []
    summary: dict[str, list[tuple[bool, float]]] = {m: [] for m in methods}
    for p in problems:
        for m in methods:
            for s in args.seeds:
                o = METHODS[m](p, s, args)
                rec = False
                r2 = r2_score(p.y_test, evaluate(o.expr, p.x_test))
                if o.expr is not None and r2 > 0.5:
                    domain = np.concatenate([p.x, p.x_test])
                    rec = is_recovered(p.truth, o.expr, nonnegative=bool(np.min(domain) >= 0))
                cx = sum(1 for _ in sympy.preorder_traversal(o.expr)) if o.expr is not None else 0
                summary[m].append((rec, o.time))
                rows.append((p.name, m, s, rec, r2, o.nchi2, cx, o.time, o.text))
                print(
                    f"{p.name:14s} {m:9s} seed={s} rec={int(rec)} R2={r2:.6f} "
                    f"nchi2={o.nchi2:.3g} cx={cx} t={o.time:.1f}s  {o.text[:90]}",
                    file=sys.stderr,
                    flush=True,
                )

    lines = [
        f"Problems: {args.problems}; seeds {args.seeds}; llmlex offline "
        f"population={args.population} generations={args.generations} "
        f"exit_condition={args.exit_condition:g}",
        "",
        "| problem | method | seed | recovered | test R2 | nchi2 | complexity | time (s) | model |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m, s, rec, r2, nc, cx, t, text in rows:
        short = text.replace("|", "\\|")
        short = short if len(short) <= 70 else short[:67] + "..."
        lines.append(
            f"| {name} | {m} | {s} | {'yes' if rec else 'no'} | {r2:.6f} | {nc:.3g} | {cx} "
            f"| {t:.2f} | `{short}` |"
        )
    lines += ["", "| method | recovered runs | median time (s) |", "|---|---|---|"]
    for m, res in summary.items():
        if res:
            n_rec = sum(r for r, _ in res)
            med = statistics.median(t for _, t in res)
            lines.append(f"| {m} | {n_rec} / {len(res)} | {med:.2f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    out = args.out or REPO / "benchmarks" / "results" / f"univariate-{args.problems}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(f"# written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
