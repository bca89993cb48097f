"""Univariate symbolic-regression benchmark: llmlex offline vs gplearn vs pyoperon.

Runs every method on the same data with the same seeds and reports, per method and noise
level, the **form found** rate, SRBench's exact recovery, the median R2 on clean test
points and the median wall time, with a per-problem and a per-run table.

Problem sets (``--problems``, one or both):

* ``nguyen``: Nguyen-1..8.
* ``heldout``: the univariate rows of ``dso_benchmarks.csv`` that are not Nguyen (and
  not Nguyen's duplicates under other names): 26 problems nobody tuned the offline
  proposer on.
* ``dev``: 18 laws of the kind a scientist fits (decays, waves, Lorentzian, Kepler,
  logistic, Michaelis-Menten, Planck...), 100 uniform points each (``DEV_LAWS``): the
  tuning set.  llmlex's defaults are tuned on it, never on the two sets above, and its
  figures are not results.

Data (``--points``):

* ``N`` (default 100 with ``--noise`` or ``--units``): N training points drawn from each
  problem's ``train_spec`` (``U[lo, hi, n]``: N uniform draws in [lo, hi]; ``E[lo, hi, s]``:
  N evenly spaced points in [lo, hi]) with a generator seeded by (problem, seed), so
  every seed has its own sample; test points as the spec says (``test_spec``, or when it
  has none a fresh sample of ``train_spec`` with its own n), always clean.
* ``files`` (default without ``--noise``/``--units``, the earlier behaviour): Nguyen from
  the fixed 20-point files ``<shared>/benchmarks/nguyen/Nguyen-K[_test].csv``; held-out
  rows sampled by their specs with one fixed seed for every method seed.

An ``E[lo, hi, k]`` with ``k >= hi - lo`` means k points (``E[-1, 1, 20]``; the rows
R1a..R3a, ``E[-10, 10, 20]``, would otherwise get 2 points).

Noise (``--noise 0 0.001 0.01 0.1``, SRBench's levels): the training targets get
``level * RMS(y_train) * z`` with ``z`` standard normal from a generator seeded by
(problem, seed) alone -- independent of the method's seed, and the same ``z`` at every
level.  Test targets stay clean.

Exact recovery (SRBench): with test R2 > 0.5, the candidate's floats are rounded (|c| <
1e-4 to 0, others to 3 decimals, integral values become integers), then
``simplify(truth - cand)`` or ``simplify(cand / truth)`` must be a constant (20 s limit).

Form found: the candidate's numeric constants all become free parameters and are refitted
(``llmlex.fit.fit_ansatz``, starting from the candidate's values) to the clean training
data; the form is found if that refit is exact (nchi2 < 1e-9, with the score's absolute
floor 1e-4 scaled by RMS(y) so that it does not depend on the units of y) and the candidate
has at most one constant more than the truth written with a coefficient per term.

* Constants of an expression (the candidate's, and inside the truth's terms): every
  x-free subexpression in one of these places is one constant:

  - the x-free part of a sum (``x + 1``: 1; ``x - 1/3``: 1);
  - the x-free factor of a product (``2*pi*x``: one constant 2*pi; ``0.3*x*sin(x)``: 1)
    -- except an exact +-1, a sign (``x - y``, ``-sin(x)`` have none; a Float ``-1.0``
    or ``1.0`` is a fitted number and counts);
  - an exponent other than an integer or a multiple of 1/2 or 1/3 (``x**0.426``,
    ``x**pi``, ``x**(31/10)``) -- those are structure (``x**2``, ``1/x``, ``sqrt(x)``,
    ``x**(3/2)``, ``x**(1/3)``);
  - an x-free base of an x-dependent power (``2**x``);
  - a whole x-free expression.

  Integers count like floats (``2*x**2 + x`` has one constant, ``log(x + 1)`` one).
* The truth's count: ``together(truth)`` is split into numerator and denominator, each
  expanded; every additive term of the numerator gets one coefficient, every term of a
  denominator other than 1 one coefficient less (the overall scale is shared); plus the
  constants (as above) inside each term besides its leading factor.  Nguyen-1
  ``x**3 + x**2 + x``: 3; Nguyen-5 ``sin(x**2)*cos(x) - 1``: 2; Nguyen-7
  ``log(x + 1) + log(x**2 + 1)``: 2 + 2 = 4; Keijzer-1 ``0.3*x*sin(2*pi*x)``: 1 + 1 = 2;
  R1 ``(x + 1)**3/(x**2 - x + 1)``: 4 + 2 = 6; ``exp(2*x)``: 1 + 1 = 2.
* So ``1.0002*x**3 + 0.999*x**2 + x + 0.001`` (3 constants) finds Nguyen-1 (3 + 1 allowed);
  ``x + 0.0105*cos(29.4*x) - 0.0017`` does not find ``x`` (3 constants > 1 + 1, although
  its refit is exact); ``exp(2.0002*x) + 21.1*cos(27.1*x) + 6.7`` does not find
  ``exp(2*x)`` (4 > 2 + 1).  ``--selftest`` checks these and more.

Units (``--units``): the same runs with y multiplied by 1e-6 and 1e6 and x by 1e3 (the
truth becomes ``1e6*f(x)``, ``f(x/1e3)``, ...; the noise is the unit-scale noise scaled
alike), at ``--units-noise`` (0.01).  A (problem, seed) keeps the same form when its form
is found at unit scale and under every unit change, each against its scaled truth.

Every run is appended to a JSON-lines log (``--log``, default
``benchmarks/results/univariate-runs.jsonl``) keyed by problem, method, seed, noise,
units, data and the method's settings (llmlex's also by the content of ``llmlex/``): a run
found there is not run again, so an interrupted benchmark resumes where it stopped.

Run::

    python benchmarks/univariate.py                       # Nguyen-1..8 files, 3 seeds, all tools
    python benchmarks/univariate.py --noise 0 0.001 0.01 0.1 --problems nguyen heldout
    python benchmarks/univariate.py --units --problems nguyen heldout --seeds 0 1 2
    python benchmarks/univariate.py --selftest

Results are written to ``benchmarks/results/`` (git-ignored).  Runs one problem at a
time on one thread per tool; pin it to one core with ``taskset -c 1`` for comparable
timings.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import math
import signal
import statistics
import subprocess
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import sympy

REPO = Path(__file__).resolve().parents[1]
X = sympy.Symbol("x", real=True)
NOISE_LEVELS = (0.0, 0.001, 0.01, 0.1)
#: Seeds of the training samples (with --points N) and of the noise.
DATA_SEED, NOISE_SEED = 2026, 7919
#: Bump when the sampling changes: old log entries then no longer match.
DATA_VERSION = 2
#: A refit at or below this nchi2 is exact.
EXACT = 1e-9
#: Unit changes: name -> (factor of x, factor of y), exact.
UNITS: dict[str, tuple[sympy.Rational, sympy.Rational]] = {
    "1": (sympy.Integer(1), sympy.Integer(1)),
    "y*1e-6": (sympy.Integer(1), sympy.Rational(1, 10**6)),
    "y*1e6": (sympy.Integer(1), sympy.Integer(10**6)),
    "x*1e3": (sympy.Integer(1000), sympy.Integer(1)),
}


@dataclass(frozen=True)
class Spec:
    name: str
    truth: sympy.Expr
    train_spec: dict
    test_spec: dict | None
    family: str  # "nguyen", "heldout" or "dev"


@dataclass(frozen=True)
class Problem:
    name: str
    truth: sympy.Expr
    x: np.ndarray
    y: np.ndarray  # clean
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def nonnegative(self) -> bool:
        return bool(min(self.x.min(), self.x_test.min()) >= 0)


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


def _sample(spec: dict, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Points of a DSO spec; ``n`` overrides its number of points."""
    (kind, args), *_ = spec["all"].items()
    if kind == "U":
        lo, hi, m = args
        return rng.uniform(lo, hi, int(n or m))
    lo, hi, step = args  # even grid, both ends included as in the DSO code
    if n is not None:
        return np.linspace(lo, hi, n)
    if step >= hi - lo:  # E[-1, 1, 20] and E[-10, 10, 20] mean 20 points, not a step of 20
        return np.linspace(lo, hi, int(step))
    return np.arange(lo, hi + 0.5 * step, step)


#: The tuning set: laws of the kind a scientist fits, none of them a Nguyen or DSO row.
#: llmlex's defaults are tuned on these (``--problems dev``); the tables of record are
#: Nguyen and the held-out DSO rows, which nobody tuned on.
DEV_LAWS: tuple[tuple[str, str, float, float], ...] = (
    ("Dev-decay", "5*exp(-7*x/10)/2", 0.0, 5.0),
    ("Dev-wave", "3*sin(2*x + 1/2)", -3.0, 3.0),
    ("Dev-parabola", "13*x**2/10 - 2*x/5", -2.0, 2.0),
    ("Dev-lorentz", "1/(x**2 + 1)", -4.0, 4.0),
    ("Dev-kepler", "x**(3/2)", 0.1, 5.0),
    ("Dev-damped", "exp(-x)*cos(3*x)", 0.0, 4.0),
    ("Dev-logistic", "1/(1 + exp(2 - 2*x))", -3.0, 5.0),
    ("Dev-log", "log(x + 1)", 0.0, 10.0),
    ("Dev-michaelis", "3*x/(x + 2)", 0.0, 10.0),
    ("Dev-cubic", "2*x**3 - x", -1.5, 1.5),
    ("Dev-gauss", "exp(-x**2/2)", -3.0, 3.0),
    ("Dev-hyperbola", "sqrt(x**2 + 1)", -3.0, 3.0),
    ("Dev-gamma", "x*exp(-x)", 0.0, 6.0),
    ("Dev-tanh", "5*tanh(x/2)", -4.0, 4.0),
    ("Dev-planck", "x**3/(exp(x) - 1)", 0.05, 10.0),
    ("Dev-trend", "x + 3*cos(x)", -5.0, 5.0),
    ("Dev-inverse", "1/x**2", 1.0, 5.0),
    ("Dev-line", "4*x + 2", 0.0, 10.0),
)


# Same expression and sampling as a Nguyen problem, or not a closed form.
_NOT_HELD_OUT = ("Nguyen", "Neat", "Const-Test-2")


def problem_specs(shared: Path, families: list[str]) -> list[Spec]:
    rows = _load_dso(shared)
    out = []
    if "nguyen" in families:
        for k in range(1, 9):
            row = rows[f"Nguyen-{k}"]
            out.append(
                Spec(
                    row["name"],
                    _parse_dso(row["expression"]),
                    _spec(row["train_spec"]),
                    None,
                    "nguyen",
                )
            )
    if "dev" in families:
        for name, text, lo, hi in DEV_LAWS:
            truth = sympy.sympify(text, locals={"x": X})
            out.append(Spec(name, truth, {"all": {"U": [lo, hi, 100]}}, None, "dev"))
    if "heldout" in families:
        for name, row in rows.items():
            if row["variables"] != "1" or name.startswith(_NOT_HELD_OUT):
                continue
            try:
                truth = _parse_dso(row["expression"])
            except (sympy.SympifyError, TypeError):
                continue
            test = _spec(row["test_spec"]) if row["test_spec"] != "None" else None
            out.append(Spec(name, truth, _spec(row["train_spec"]), test, "heldout"))
    return out


def _spec(text: str) -> dict:
    return json.loads(text)


def _finite(truth: sympy.Expr, x: np.ndarray, xt: np.ndarray) -> tuple[np.ndarray, ...]:
    f = sympy.lambdify(X, truth, "numpy")
    with np.errstate(all="ignore"):
        y, yt = np.broadcast_to(f(x), x.shape), np.broadcast_to(f(xt), xt.shape)
    ok, okt = np.isfinite(y), np.isfinite(yt)
    return x[ok], np.array(y[ok], dtype=float), xt[okt], np.array(yt[okt], dtype=float)


def instance(spec: Spec, points: int | str, seed: int, shared: Path) -> Problem:
    """The clean data of one problem for one seed."""
    if points == "files":
        if spec.family == "nguyen":
            base = shared / "benchmarks" / "nguyen" / spec.name
            train = np.loadtxt(f"{base}.csv", delimiter=",")
            test = np.loadtxt(f"{base}_test.csv", delimiter=",")
            return Problem(spec.name, spec.truth, train[:, 0], train[:, 1], test[:, 0], test[:, 1])
        rng = np.random.default_rng([12345, zlib_hash(spec.name)])  # one sample for all seeds
        x = _sample(spec.train_spec, rng)
    else:
        rng = np.random.default_rng([DATA_SEED, zlib_hash(spec.name), seed])
        x = _sample(spec.train_spec, rng, int(points))
    # No test spec: a fresh sample of the training range (same seeded generator).
    xt = _sample(spec.test_spec or spec.train_spec, rng)
    return Problem(spec.name, spec.truth, *_finite(spec.truth, x, xt))


def rescale(p: Problem, unit: str) -> Problem:
    """The problem in other units: x -> sx*x, y -> sy*y, truth -> sy*f(x/sx)."""
    sx, sy = UNITS[unit]
    if sx == 1 and sy == 1:
        return p
    truth = sy * p.truth.xreplace({X: X / sx})
    fx, fy = float(sx), float(sy)
    return replace(
        p, truth=truth, x=p.x * fx, y=p.y * fy, x_test=p.x_test * fx, y_test=p.y_test * fy
    )


def noisy(y: np.ndarray, level: float, name: str, seed: int) -> np.ndarray:
    """``y + level * RMS(y) * z``, ``z`` from a generator of (problem, seed) only."""
    if level == 0:
        return y.copy()
    z = np.random.default_rng([NOISE_SEED, zlib_hash(name), seed]).standard_normal(y.shape)
    return y + level * float(np.sqrt(np.mean(y**2))) * z


def heldout_problems(shared: Path, seed: int = 12345) -> list[Problem]:
    """The held-out problems as sampled with ``--points files``."""
    return [instance(s, "files", seed, shared) for s in problem_specs(shared, ["heldout"])]


def zlib_hash(s: str) -> int:
    return zlib.crc32(s.encode())


# --- methods -------------------------------------------------------------------------


def run_llmlex(x: np.ndarray, y: np.ndarray, seed: int, cfg: dict) -> Outcome:
    from llmlex.genetic import run_genetic

    kwargs: dict[str, Any] = {}
    if cfg["exit_condition"] is not None:
        kwargs["exit_condition"] = cfg["exit_condition"]
    t0 = time.perf_counter()
    run = run_genetic(
        None,
        None,
        x,
        y,
        population_size=cfg["population"],
        num_of_generations=cfg["generations"],
        seed=seed,
        progress=False,
        time_budget=cfg["time_limit"],
        **kwargs,
    )
    dt = time.perf_counter() - t0
    best = run.best
    try:
        expr = best.expression
    except Exception:  # no sympy form within its time bound
        expr = None
    return Outcome(expr, best.nchi2, dt, best.formula())


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


def run_gplearn(x: np.ndarray, y: np.ndarray, seed: int, cfg: dict) -> Outcome:
    from gplearn.genetic import SymbolicRegressor

    from llmlex.fit import nchi2

    est = SymbolicRegressor(
        population_size=cfg["population"],
        generations=cfg["generations"],
        function_set=("add", "sub", "mul", "div", "sin", "cos", "log", "sqrt"),
        parsimony_coefficient=0.001,
        random_state=seed,
        n_jobs=1,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x[:, None], y)
    dt = time.perf_counter() - t0
    text = str(est._program)
    return Outcome(_gplearn_sympy(text), nchi2(y, est.predict(x[:, None])), dt, text)


def run_pyoperon(x: np.ndarray, y: np.ndarray, seed: int, cfg: dict) -> Outcome:
    from pyoperon.sklearn import SymbolicRegressor

    from llmlex.fit import nchi2

    est = SymbolicRegressor(
        allowed_symbols="add,sub,mul,div,sin,cos,exp,log,sqrt,constant,variable",
        n_threads=1,
        max_time=int(cfg["max_time"]),
        random_state=seed,
    )
    t0 = time.perf_counter()
    est.fit(x[:, None], y)
    dt = time.perf_counter() - t0
    text = est.get_model_string(est.model_, 12)
    expr = sympy.sympify(text.replace("^", "**"), locals={"X1": X, "x1": X})
    return Outcome(expr, nchi2(y, est.predict(x[:, None])), dt, text)


METHODS: dict[str, Callable[[np.ndarray, np.ndarray, int, dict], Outcome]] = {
    "llmlex": run_llmlex,
    "gplearn": run_gplearn,
    "pyoperon": run_pyoperon,
}


def _llmlex_revision() -> str:
    """Content hash of ``llmlex/`` (committed tree plus any uncommitted diff)."""
    try:
        tree = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD:llmlex"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "-C", str(REPO), "diff", "HEAD", "--", "llmlex"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return tree[:10] + ("+" + hashlib.sha1(diff).hexdigest()[:8] if diff else "")


def method_config(m: str, args: argparse.Namespace, noise: float) -> dict:
    if m == "llmlex":
        exit_condition = args.exit_condition
        if exit_condition is None and noise == 0:
            exit_condition = 1e-16  # noise-free: exact forms reach ~1e-30
        return {
            "population": args.population,
            "generations": args.generations,
            "exit_condition": exit_condition,  # None: the library's default
            "time_limit": args.time_limit,
            "llmlex": args.revision,
        }
    if m == "gplearn":
        return {"population": args.gplearn_population, "generations": args.gplearn_generations}
    return {"max_time": args.pyoperon_time}


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


def parametrize(expr: sympy.Expr) -> tuple[sympy.Expr, list[float]]:
    """``expr`` with every constant (module docstring) replaced by ``p0, p1, ...``.

    Returns the parametrized expression and the constants' values.

    Raises
    ------
    TypeError
        If a constant is not a real number.
    """
    from llmlex._symbolic import param

    values: list[float] = []

    def new(c: sympy.Expr) -> sympy.Expr:
        values.append(float(c))  # TypeError for a complex constant
        return param(len(values) - 1)

    def walk(e: sympy.Expr) -> sympy.Expr:
        if not e.has(X):
            return new(e)
        if e == X:
            return e
        if e.is_Add:
            c, rest = e.as_independent(X, as_Add=True)
            out = sympy.Add(*[walk(t) for t in sympy.Add.make_args(rest)])
            return out if c == 0 else out + new(c)
        if e.is_Mul:
            c, rest = e.as_independent(X, as_Add=False)
            out = sympy.Mul(*[walk(f) for f in sympy.Mul.make_args(rest)])
            if c is sympy.S.One:
                return out
            if c is sympy.S.NegativeOne:
                return -out
            return new(c) * out
        if e.is_Pow:
            base, ex = e.args
            if not ex.has(X):
                structure = ex.is_Integer or (ex.is_Rational and ex.q in (2, 3))
                return walk(base) ** (ex if structure else new(ex))
            return (walk(base) if base.has(X) else new(base)) ** walk(ex)
        return e.func(*[walk(a) for a in e.args])

    return walk(sympy.sympify(expr)), values


def n_constants(expr: sympy.Expr) -> int:
    return len(parametrize(expr)[1])


def truth_constants(truth: sympy.Expr) -> int:
    """Constants of the truth written with a coefficient per term (module docstring)."""
    num, den = sympy.fraction(sympy.together(truth))
    count = 0
    for part, shared_scale in ((num, 0), (den, 1)):
        if part == 1:
            continue
        terms = sympy.Add.make_args(sympy.expand(part))
        count += len(terms) - shared_scale
        for t in terms:
            _, rest = t.as_independent(X, as_Add=False)
            count += n_constants(rest) if rest.has(X) else 0
    return count


def refit(expr: sympy.Expr, x: np.ndarray, y: np.ndarray) -> float:
    """nchi2 on (x, y) after refitting every constant of ``expr``, from its values.

    The score's absolute floor (``eps``, 1e-4) is scaled by RMS(y), so that exactness does
    not depend on the units of y (with y ~ 1e-6 the fixed floor would call a 0.1% misfit
    exact).
    """
    from llmlex.ansatz import ansatz_from_sympy
    from llmlex.fit import EPS, fit_ansatz
    from llmlex.fit import nchi2 as _nchi2

    eps = EPS * float(np.sqrt(np.mean(y**2)))

    def nchi2(y: np.ndarray, yhat: np.ndarray) -> float:
        return _nchi2(y, yhat, eps=eps)

    form, values = parametrize(expr)
    ansatz = ansatz_from_sympy(form)
    start = np.asarray(values, dtype=float)
    init = ansatz.map_initial(values)
    with np.errstate(all="ignore"):
        yhat = ansatz(x, init if init is not None else start[list(ansatz.source_indices)])
    before = nchi2(y, yhat) if np.all(np.isfinite(yhat)) else math.inf
    if ansatz.n_params == 0 or before < EXACT:
        return before
    fit = fit_ansatz(ansatz, x, y, initial=init, seed=0, timeout=10.0, eps=eps)
    return min(before, fit.nchi2)


@dataclass(frozen=True)
class Form:
    found: bool
    n_cand: int | None  # constants of the candidate (None: no expression)
    n_truth: int  # constants of the truth with a coefficient per term
    refit_nchi2: float | None  # None: not refitted (too many constants or no expression)


def form_found(truth: sympy.Expr, cand: sympy.Expr | None, x: np.ndarray, y: np.ndarray) -> Form:
    """The form-found metric: refit exact on the clean (x, y) and at most one extra constant."""
    n_truth = truth_constants(truth)
    if cand is None:
        return Form(False, None, n_truth, None)
    try:
        n_cand = n_constants(cand)
    except (TypeError, ValueError):
        return Form(False, None, n_truth, None)
    if n_cand > n_truth + 1:
        return Form(False, n_cand, n_truth, None)
    try:
        with time_limit(30):
            chi = refit(cand, x, y)
    except Exception:  # unprintable as an ansatz, complex constants, sympy failures, timeout
        chi = math.inf
    return Form(bool(chi < EXACT), n_cand, n_truth, chi)


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


def score(p: Problem, o: Outcome, *, exact: bool = True) -> dict:
    """Metrics of one run on the clean data of ``p`` (in its units)."""
    r2 = r2_score(p.y_test, evaluate(o.expr, p.x_test))
    rec = None
    if exact:
        rec = bool(
            o.expr is not None
            and r2 > 0.5
            and is_recovered(p.truth, o.expr, nonnegative=p.nonnegative)
        )
    cx = sum(1 for _ in sympy.preorder_traversal(o.expr)) if o.expr is not None else 0
    return {
        "text": o.text,
        "expr": None if o.expr is None else str(o.expr),
        "nchi2": o.nchi2,
        "r2": r2,
        "exact": rec,
        **form_fields(p, o.expr),
        "complexity": cx,
        "time": o.time,
    }


def form_fields(p: Problem, expr: sympy.Expr | None) -> dict:
    form = form_found(p.truth, expr, p.x, p.y)
    return {
        "form": form.found,
        "n_const": form.n_cand,
        "n_truth": form.n_truth,
        "refit_nchi2": form.refit_nchi2,
    }


# --- self-test -----------------------------------------------------------------------


def selftest() -> int:
    """Hand cases of the metric; returns the number of failures."""
    x = np.random.default_rng(0).uniform(-1, 1, 100)
    xp = np.random.default_rng(0).uniform(0, 4, 100)
    s = sympy.sympify
    n1 = X**3 + X**2 + X

    def found(truth: sympy.Expr, cand: str, xs: np.ndarray = x) -> bool:
        f = sympy.lambdify(X, truth, "numpy")
        return form_found(truth, s(cand, locals={"x": X}), xs, np.asarray(f(xs), float)).found

    checks: list[tuple[str, bool]] = [
        ("N1 by itself", found(n1, "x**3 + x**2 + x")),
        (
            "N1 by 1.0002*x**3 + 0.999*x**2 + x + 0.001",
            found(n1, "1.0002*x**3 + 0.999*x**2 + x + 0.001"),
        ),
        ("N1 not by x**3 + x + 0.5", not found(n1, "x**3 + x + 0.5")),
        (
            "x not by x + 0.0105*cos(29.4*x) - 0.0017",
            not found(X, "x + 0.0105*cos(29.4*x) - 0.0017"),
        ),
        (
            "... although its refit is exact",
            refit(s("x + 0.0105*cos(29.4*x) - 0.0017", locals={"x": X}), x, x) < EXACT,
        ),
        (
            "exp(2x) not by exp(2.0002*x) + 21.1*cos(27.1*x) + 6.7",
            not found(sympy.exp(2 * X), "exp(2.0002*x) + 21.1*cos(27.1*x) + 6.7"),
        ),
        ("exp(2x) by 0.97*exp(2.1*x) + 0.2", found(sympy.exp(2 * X), "0.97*exp(2.1*x) + 0.2")),
        (
            "N5 by cos(x)*sin(x**2) - 1",
            found(s("sin(x**2)*cos(x) - 1", locals={"x": X}), "cos(x)*sin(x**2) - 1"),
        ),
        (
            "N5 not by a polynomial-cosine fit",
            not found(
                s("sin(x**2)*cos(x) - 1", locals={"x": X}),
                "-11.2008*x**2 - 45.1658*cos(0.734832*x) + 265/6",
            ),
        ),
        ("N8 by gplearn's sqrt(Abs(x)) on [0, 4]", found(sympy.sqrt(X), "sqrt(Abs(x))", xp)),
        ("N8 by 1.01*x**0.49", found(sympy.sqrt(X), "1.01*x**0.49", xp)),
        (
            "x*1e3 truth of N1 by its scaled form",
            found(n1.xreplace({X: X / 1000}), "1e-9*x**3 + 1e-6*x**2 + 0.001*x", 1000 * x),
        ),
        ("y*1e6 truth of N1", found(10**6 * n1, "1e6*x**3 + 1e6*x**2 + 1e6*x")),
        ("y*1e-6 truth of N1", found(n1 / 10**6, "1e-6*x**3 + 1e-6*x**2 + 1e-6*x")),
        (
            "y*1e-6 truth of N1 not by 1e-6*(x**3 + x**2 + sin(x)) (fixed eps: nchi2 1e-11)",
            not found(n1 / 10**6, "1e-6*x**3 + 1e-6*x**2 + 1e-6*sin(x)"),
        ),
    ]
    counts = {
        "x**3 + x**2 + x": (n1, 3, True),
        "sin(x**2)*cos(x) - 1": (s("sin(x**2)*cos(x) - 1", locals={"x": X}), 2, True),
        "log(x + 1) + log(x**2 + 1)": (s("log(x + 1) + log(x**2 + 1)", locals={"x": X}), 4, True),
        "0.3*x*sin(2*pi*x)": (s("0.3*x*sin(2*pi*x)", locals={"x": X}), 2, True),
        "(x + 1)**3/(x**2 - x + 1)": (s("(x + 1)**3/(x**2 - x + 1)", locals={"x": X}), 6, True),
        "-sin(-x**3 + x + pi/6)": (s("-sin(-x**3 + x + pi/6)", locals={"x": X}), 2, True),
        "x**0.426": (s("x**0.426", locals={"x": X}), 2, True),
        "x*(x + 1)/2": (s("x*(x + 1)/2", locals={"x": X}), 2, True),
        "x**2 - x (candidate)": (X**2 - X, 0, False),
        "2*x**2 - x/3 (candidate)": (2 * X**2 - X / 3, 2, False),
        "sin(1.5*x) + 1 (candidate)": (sympy.sin(1.5 * X) + 1, 2, False),
        "-1.0*exp(-x) (candidate)": (-1.0 * sympy.exp(-X), 1, False),
        "2**x*sqrt(x) (candidate)": (2**X * sympy.sqrt(X), 1, False),
        "x**(31/10) + x**(2/3) (candidate)": (
            X ** sympy.Rational(31, 10) + X ** sympy.Rational(2, 3),
            1,
            False,
        ),
    }
    for label, (e, want, is_truth) in counts.items():
        got = truth_constants(e) if is_truth else n_constants(e)
        checks.append(
            (f"{'truth' if is_truth else 'count'} {label}: {want} (got {got})", got == want)
        )
    failures = 0
    for label, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {label}")
        failures += not ok
    print(f"{len(checks) - failures} / {len(checks)} passed")
    return failures


# --- log and tables ------------------------------------------------------------------


def run_key(name: str, m: str, seed: int, noise: float, unit: str, points: Any, cfg: dict) -> str:
    return json.dumps(
        {
            "problem": name,
            "method": m,
            "seed": seed,
            "noise": noise,
            "unit": unit,
            "points": points,
            "data": DATA_VERSION,
            "cfg": cfg,
        },
        sort_keys=True,
    )


def load_log(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError, KeyError):
                rec = json.loads(line)
                done[rec["key"]] = rec
    return done


def _median(vals: list[float]) -> float:
    return statistics.median(vals) if vals else math.nan


def _fmt(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.1f}"


def _frac(flags: list[bool | None]) -> str:
    flags = [f for f in flags if f is not None]
    return f"{sum(flags)} / {len(flags)}" if flags else "-"


def _short(text: str, n: int = 70) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= n else text[: n - 3] + "..."


def noise_tables(recs: list[dict], methods: list[str], levels: list[float], labels: dict) -> str:
    lines = []
    for level in levels:
        at = [r for r in recs if r["noise"] == level]
        lines += [
            f"### noise {level:g}",
            "",
            "| method | form found | exact recovery | median test R2 | median time (s) "
            "| median CPU (s) |",
            "|---|---|---|---|---|---|",
        ]
        for m in methods:
            rs = [r for r in at if r["method"] == m]
            if rs:
                lines.append(
                    f"| {labels[m]} | {_frac([r['form'] for r in rs])} "
                    f"| {_frac([r['exact'] for r in rs])} "
                    f"| {_median([r['r2'] for r in rs]):.4f} "
                    f"| {_median([r['time'] for r in rs]):.1f} "
                    f"| {_fmt(_median([r['cpu'] for r in rs if 'cpu' in r]))} |"
                )
        lines.append("")
    # Per problem: form found / exact per method and level.
    names = list(dict.fromkeys(r["problem"] for r in recs))
    head = "| problem | truth constants | " + " | ".join(
        f"{m} {lv:g}" for m in methods for lv in levels
    )
    lines += [
        "### per problem: runs with the form found, runs with exact recovery "
        f"(of {len(set(r['seed'] for r in recs))} seeds)",
        "",
        head + " |",
        "|---|---|" + "---|" * (len(methods) * len(levels)),
    ]
    for name in names:
        cells = []
        n_truth = next(r["n_truth"] for r in recs if r["problem"] == name)
        for m in methods:
            for lv in levels:
                rs = [
                    r
                    for r in recs
                    if r["problem"] == name and r["method"] == m and r["noise"] == lv
                ]
                form = sum(r["form"] for r in rs)
                exact = sum(bool(r["exact"]) for r in rs)
                cells.append(f"{form}, {exact}" if rs else "-")
        lines.append(f"| {name} | {n_truth} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def run_table(recs: list[dict]) -> str:
    lines = [
        "### every run",
        "",
        "| problem | method | noise | unit | seed | form | consts | exact | test R2 | refit nchi2 "
        "| time (s) | model |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        refit_chi = "-" if r["refit_nchi2"] is None else f"{r['refit_nchi2']:.2g}"
        exact = "-" if r["exact"] is None else ("yes" if r["exact"] else "no")
        lines.append(
            f"| {r['problem']} | {r['method']} | {r['noise']:g} | {r['unit']} | {r['seed']} "
            f"| {'yes' if r['form'] else 'no'} | {r['n_const']}/{r['n_truth']} | {exact} "
            f"| {r['r2']:.6f} | {refit_chi} | {r['time']:.1f} | `{_short(r['text'])}` |"
        )
    return "\n".join(lines) + "\n"


def units_tables(recs: list[dict], methods: list[str], seeds: list[int]) -> str:
    changes = [u for u in UNITS if u != "1"]
    lines = []
    for m in methods:
        rs = [r for r in recs if r["method"] == m]
        by = {(r["problem"], r["seed"], r["unit"]): r for r in rs}
        names = list(dict.fromkeys(r["problem"] for r in rs))
        lines += [
            f"### units, {m}: form found at unit scale and under each change",
            "",
            "| problem | seed | 1 | " + " | ".join(changes) + " | same form |",
            "|---|---|---|" + "---|" * len(changes) + "---|",
        ]
        same = base = total = 0
        per_change = dict.fromkeys(changes, 0)
        for name in names:
            for s in seeds:
                cells = [by.get((name, s, u)) for u in UNITS]
                if any(c is None for c in cells):
                    continue
                flags = [c["form"] for c in cells]
                total += 1
                base += flags[0]
                ok = all(flags)
                same += ok
                for u, c in zip(changes, cells[1:], strict=True):
                    per_change[u] += c["form"]
                lines.append(
                    f"| {name} | {s} | "
                    + " | ".join("yes" if f else "no" for f in flags)
                    + f" | {'yes' if ok else 'no'} |"
                )
        lines += [
            "",
            f"{m}: same form under every unit change: {same} / {total} "
            f"(form found at unit scale: {base} / {total}; "
            + ", ".join(f"under {u}: {k} / {total}" for u, k in per_change.items())
            + ")",
            "",
        ]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument(
        "--problems", nargs="+", default=["nguyen"], choices=["nguyen", "heldout", "dev"]
    )
    ap.add_argument("--only", nargs="*", default=None, help="problem names to run")
    ap.add_argument(
        "--methods",
        nargs="*",
        default=None,
        choices=list(METHODS),
        help="default: all three (llmlex only with --units)",
    )
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--noise",
        nargs="*",
        type=float,
        default=None,
        help="noise levels, fractions of RMS(y_train) (SRBench: 0 0.001 0.01 0.1)",
    )
    ap.add_argument(
        "--points",
        default=None,
        help="training points per problem and seed, or 'files' (default: 100 with --noise "
        "or --units, else files)",
    )
    ap.add_argument("--units", action="store_true", help="the unit-change table instead")
    ap.add_argument("--units-noise", type=float, default=0.01)
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--generations", type=int, default=12)
    ap.add_argument(
        "--exit-condition",
        type=float,
        default=None,
        help="llmlex's exit_condition (default 1e-16 without noise, the library's with noise)",
    )
    ap.add_argument("--time-limit", type=float, default=60.0, help="llmlex's time_budget (s)")
    ap.add_argument("--gplearn-population", type=int, default=1000)
    ap.add_argument("--gplearn-generations", type=int, default=10)
    ap.add_argument("--pyoperon-time", type=float, default=10.0, help="pyoperon's max_time (s)")
    ap.add_argument(
        "--log", type=Path, default=REPO / "benchmarks" / "results" / "univariate-runs.jsonl"
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--selftest", action="store_true", help="check the form-found metric")
    ap.add_argument(
        "--rescore-form",
        action="store_true",
        help="recompute form found of logged runs from their stored formulas (new metric rules)",
    )
    args = ap.parse_args(argv)
    if args.selftest:
        return 1 if selftest() else 0

    noise_mode = args.noise is not None or args.units
    levels = [args.units_noise] if args.units else (args.noise or [0.0])
    points: int | str = args.points or (100 if noise_mode else "files")
    if points != "files":
        points = int(points)
    units = list(UNITS) if args.units else ["1"]
    args.revision = _llmlex_revision()

    wanted = (
        args.methods if args.methods is not None else (["llmlex"] if args.units else list(METHODS))
    )
    methods = []
    for m in wanted:
        try:
            __import__(m)
        except ImportError:
            print(f"# {m} is not installed: skipped", file=sys.stderr)
            continue
        methods.append(m)

    specs = problem_specs(args.shared, args.problems)
    if args.only:
        specs = [s for s in specs if s.name in args.only]
    args.log.parent.mkdir(parents=True, exist_ok=True)
    done = load_log(args.log)
    recs: list[dict] = []
    with open(args.log, "a") as log:
        for level in levels:
            for spec in specs:
                for seed in args.seeds:
                    base = instance(spec, points, seed, args.shared)
                    for unit in units:
                        p = rescale(base, unit)
                        y_train = noisy(p.y, level, p.name, seed)
                        for m in methods:
                            cfg = method_config(m, args, level)
                            key = run_key(p.name, m, seed, level, unit, points, cfg)
                            if key in done:
                                rec = done[key]
                                if args.rescore_form:
                                    expr = rec["expr"]
                                    expr = (
                                        None
                                        if expr is None
                                        else sympy.sympify(expr, locals={"x": X})
                                    )
                                    rec = {**rec, **form_fields(p, expr)}
                                    log.write(json.dumps(rec) + "\n")
                                    log.flush()
                                recs.append(rec)
                                continue
                            c0 = time.process_time()
                            o = METHODS[m](p.x, y_train, seed, cfg)
                            cpu = time.process_time() - c0
                            t0 = time.perf_counter()
                            metrics = score(p, o, exact=unit == "1")
                            rec = {
                                "key": key,
                                "problem": p.name,
                                "method": m,
                                "seed": seed,
                                "noise": level,
                                "unit": unit,
                                **metrics,
                                "cpu": cpu,
                                "score_time": time.perf_counter() - t0,
                            }
                            log.write(json.dumps(rec) + "\n")
                            log.flush()
                            done[key] = rec
                            recs.append(rec)
                            print(
                                f"{p.name:14s} {m:9s} noise={level:g} unit={unit} seed={seed} "
                                f"form={int(rec['form'])} exact={rec['exact']} "
                                f"R2={rec['r2']:.6f} consts={rec['n_const']}/{rec['n_truth']} "
                                f"t={rec['time']:.1f}s  {_short(o.text, 90)}",
                                file=sys.stderr,
                                flush=True,
                            )

    exit_text = (
        "1e-16 at noise 0, the library default with noise"
        if args.exit_condition is None
        else f"{args.exit_condition:g}"
    )
    labels = {
        "llmlex": f"llmlex (offline, population {args.population}, {args.generations} "
        f"generations, time_budget {args.time_limit:g} s)",
        "gplearn": f"gplearn (population {args.gplearn_population}, "
        f"{args.gplearn_generations} generations)",
        "pyoperon": f"pyoperon (max_time {args.pyoperon_time:g} s)",
    }
    header = [
        f"Problems: {' '.join(args.problems)} ({len(specs)}); seeds {args.seeds}; training points "
        f"{points}; noise levels {levels}; units {units}; llmlex {args.revision}, "
        f"exit_condition {exit_text}",
        "",
    ]
    if args.units:
        body = units_tables(recs, methods, args.seeds)
    else:
        body = noise_tables(recs, methods, levels, labels)
    table = "\n".join(header) + body + "\n" + run_table(recs)
    print("\n".join(header) + body)
    stem = "-".join(args.problems) + f"-{points}" + ("-units" if args.units else "")
    out = args.out or REPO / "benchmarks" / "results" / f"univariate-{stem}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(f"# written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
