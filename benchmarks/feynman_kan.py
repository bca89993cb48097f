"""Feynman equations with 2 or 3 variables through KANs, offline: llmlex vs pykan.

For each equation of ``../shared/benchmarks/FeynmanEquations.csv`` with 2 or 3 variables
(counted from the ``v*_name`` columns, as the file's README says), the variables are
sampled independently and uniformly in their ranges; one KAN is trained (several seeds
within a budget, best by test loss) and then turned into a formula twice, on the *same*
trained network:

- **llmlex**: :class:`llmlex.kan.KANLEX` ``get_symbolic`` with ``client=None`` (structure
  tests on the network as a surrogate; edges by a library of simple forms, then the offline
  proposer unless a structured formula already beats the network; exact assembly;
  simplification and constant snapping judged on held-out data; final refit);
- **pykan**: ``auto_symbolic`` (library below) then ``symbolic_formula``, as pykan's own
  workflow returns it, and the same formula with its constants refitted on the training
  data (``pykan+refit``), to separate structure from constants.

Reported per equation: exact recovery (SRBench: test R2 > 0.5, constants rounded to 3
decimals, ``truth - f`` or ``f / truth`` simplifies to a constant), R2 on held-out points,
wall time.  Also the reference paper's example ``exp(sin(pi*x0) + x1**2)`` on [-1, 1]^2.

Usage::

    python benchmarks/feynman_kan.py --limit 10 --time-budget 1800 --json out.json

The machine's cores are shared: torch runs on one thread here.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sympy
from sympy.parsing.sympy_parser import parse_expr

from llmlex import _kan_sympy as ks
from llmlex.kan import KANLEX

HERE = Path(__file__).resolve().parent
CSV = HERE.parent.parent / "shared" / "benchmarks" / "FeynmanEquations.csv"
PYKAN_LIB = ["x", "x^2", "x^3", "1/x", "1/x^2", "sqrt", "exp", "log", "sin", "cos", "tanh"]
_FUNCS = {
    "exp": sympy.exp,
    "sqrt": sympy.sqrt,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tanh": sympy.tanh,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "ln": sympy.log,
    "log": sympy.log,
    "pi": sympy.pi,
}


def load_equations(path: Path, n_vars: tuple[int, ...] = (2, 3)) -> list[dict]:
    """Equations with the given numbers of variables (counted from ``v*_name``), each with
    its row ``index`` in the table (its seed is ``--seed`` plus that index)."""
    out = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for index, row in enumerate(csv.DictReader(fh)):
            names = [
                (row[f"v{k}_name"].strip(), float(row[f"v{k}_low"]), float(row[f"v{k}_high"]))
                for k in range(1, 11)
                if (row.get(f"v{k}_name") or "").strip()
            ]
            if len(names) in n_vars:
                out.append(
                    {
                        "name": row["Filename"],
                        "formula": row["Formula"],
                        "output": row["Output"].strip(),
                        "vars": names,
                        "index": index,
                    }
                )
    return out


def truth_expr(eq: dict) -> tuple[sympy.Expr, list[sympy.Symbol]]:
    """The formula as sympy, in symbols x0.. (the benchmark file is trusted data)."""
    syms = [sympy.Symbol(f"x{k}", real=True) for k in range(len(eq["vars"]))]
    local = {**_FUNCS, **{v[0]: s for v, s in zip(eq["vars"], syms, strict=True)}}
    return parse_expr(eq["formula"], local_dict=local), syms


def round_floats(expr: sympy.Expr, digits: int = 3) -> sympy.Expr:
    """Constants rounded to ``digits`` decimals (SRBench's recovery check)."""
    return expr.xreplace({f: sympy.Float(round(float(f), digits)) for f in expr.atoms(sympy.Float)})


def exact_recovery(
    truth: sympy.Expr,
    cand: sympy.Expr,
    r2: float,
    timeout: float = 10.0,
    nonnegative: Sequence[str] = (),
    positive: Sequence[str] = (),
) -> bool:
    """SRBench: R2 > 0.5 and a constant difference or ratio after rounding constants.

    ``nonnegative``: names of the variables whose sampled range is >= 0; there
    ``sqrt(a*b)`` is ``sqrt(a)*sqrt(b)``, which sympy sees only with such symbols (the
    candidate's and the truth's symbols are matched by name).  ``positive``: those whose
    range is > 0 (``sqrt(1 - v**2/c**2)`` is ``sqrt(c**2 - v**2)/c`` only for ``c > 0``).
    """
    if not (r2 > 0.5) or cand is None:
        return False
    c = round_floats(cand)
    names, strict = set(nonnegative) | set(positive), set(positive)
    if names:
        subs = {
            s: sympy.Symbol(s.name, positive=True)
            if s.name in strict
            else sympy.Symbol(s.name, nonnegative=True)
            for s in (truth.free_symbols | c.free_symbols)
            if s.name in names
        }
        truth, c = truth.xreplace(subs), c.xreplace(subs)
    for trial in (truth - c, c / truth):
        out = ks.simplify_with_timeout(trial, timeout)
        if out is not None and not out.free_symbols and out.is_finite is not False:
            return True
    return False


#: nchi2 on clean data below which a refitted form counts as found (as univariate.py).
FORM_EXACT = 1e-9


def parametrize(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Symbol], list[float]]:
    """``expr`` with every constant replaced by a parameter: a coefficient or additive
    constant of a term, a non-structural exponent (integers and halves/thirds are
    structure), a number inside a function; as ``univariate.py``'s rule, in several
    variables."""
    values: list[float] = []
    params: list[sympy.Symbol] = []

    def new(c: sympy.Expr) -> sympy.Expr:
        values.append(float(c))  # TypeError for a complex constant
        params.append(sympy.Symbol(f"c{len(values) - 1}", real=True))
        return params[-1]

    def walk(e: sympy.Expr) -> sympy.Expr:
        if not e.free_symbols:
            return new(e)
        if e.is_Symbol:
            return e
        if e.is_Add or e.is_Mul:
            c, rest = e.as_independent(*e.free_symbols, as_Add=e.is_Add)
            parts = [walk(t) for t in (e.func.make_args(rest))]
            out = e.func(*parts)
            if e.is_Add:
                return out if c == 0 else out + new(c)
            if c is sympy.S.One:
                return out
            return -out if c is sympy.S.NegativeOne else new(c) * out
        if e.is_Pow:
            base, ex = e.args
            if not ex.free_symbols:
                # An exponent written as a float (x**1.0, x**-0.5) is structure if it is
                # a whole, half or third number.
                if ex.is_Float and abs(float(ex) * 6 - round(float(ex) * 6)) < 1e-9:
                    ex = sympy.Rational(round(float(ex) * 6), 6)
                structure = ex.is_Integer or (ex.is_Rational and ex.q in (2, 3))
                return walk(base) ** (ex if structure else new(ex))
            return (walk(base) if base.free_symbols else new(base)) ** walk(ex)
        return e.func(*[walk(a) for a in e.args])

    out = walk(sympy.sympify(expr))
    return out, params, values


def truth_constants(truth: sympy.Expr) -> int:
    """Constants of the truth written with a coefficient per term of its numerator and
    denominator (one of them shared), plus those inside the terms."""
    num, den = sympy.fraction(sympy.together(truth))
    count = 0
    for part, shared_scale in ((num, 0), (den, 1)):
        if part == 1:
            continue
        terms = sympy.Add.make_args(sympy.expand(part))
        count += len(terms) - shared_scale
        for t in terms:
            _, rest = t.as_independent(*t.free_symbols, as_Add=False)
            count += len(parametrize(rest)[2]) if rest.free_symbols else 0
    return count


def form_found(
    truth: sympy.Expr,
    cand: sympy.Expr | None,
    syms: list[sympy.Symbol],
    X: np.ndarray,
    y: np.ndarray,
) -> bool:
    """The univariate benchmark's **form found** rule: every constant of ``cand`` refitted
    on the clean ``(X, y)`` gives nchi2 < :data:`FORM_EXACT`, with at most one constant
    more than the truth."""
    if cand is None:
        return False
    try:
        template, params, values = parametrize(cand)
        if len(values) > truth_constants(truth) + 1:
            return False
        # Bounded by evaluations, not time: the verdict must not depend on the machine.
        fit = ks.fit_constants(template, syms, params, np.asarray(values), X, y)
        return bool(fit.nchi2 < FORM_EXACT)
    except Exception:  # complex constants, sympy failures, a form undefined on the data
        return False


def nonnegative_names(eq: dict) -> list[str]:
    """Symbols ``x0..`` of the variables sampled in a range within x >= 0."""
    return [f"x{k}" for k, v in enumerate(eq["vars"]) if v[1] >= 0]


def positive_names(eq: dict) -> list[str]:
    """Symbols ``x0..`` of the variables sampled in a range within x > 0."""
    return [f"x{k}" for k, v in enumerate(eq["vars"]) if v[1] > 0]


def r2_score(y: np.ndarray, yhat: np.ndarray) -> float:
    if not np.all(np.isfinite(yhat)):
        return -math.inf
    return 1.0 - float(np.sum((y - yhat) ** 2)) / float(np.sum((y - y.mean()) ** 2))


def pykan_formula(model, X: np.ndarray, syms: list[sympy.Symbol], ckpt: str):
    """pykan's auto_symbolic + symbolic_formula on a copy of ``model`` (checkpoint in a tmp dir)."""
    import torch
    from kan import KAN

    model.saveckpt(f"{ckpt}/pk")  # pykan's model.copy() would write to the cwd
    m = KAN.loadckpt(f"{ckpt}/pk")
    m.auto_save = False
    m.ckpt_path = ckpt
    m.symbolic_enabled = True
    with torch.no_grad():
        m(torch.tensor(X, dtype=torch.float32))
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        m.auto_symbolic(lib=PYKAN_LIB, verbose=0)
        formula = m.symbolic_formula(var=syms)[0][0]
    return sympy.sympify(formula)


def sample(eq: dict, args: argparse.Namespace, seed: int) -> tuple:
    """The truth, its symbols, training and held-out samples (uniform in the variables'
    ranges, seeded), and the generator they were drawn from."""
    truth, syms = truth_expr(eq)
    rng = np.random.default_rng(seed)
    lo = np.array([v[1] for v in eq["vars"]])
    hi = np.array([v[2] for v in eq["vars"]])
    X = rng.uniform(lo, hi, size=(args.train, len(syms)))
    Xt = rng.uniform(lo, hi, size=(args.test, len(syms)))
    return truth, syms, X, ks.evaluate(truth, syms, X), Xt, ks.evaluate(truth, syms, Xt), rng


def run_equation(eq: dict, args: argparse.Namespace, seed: int) -> dict:
    import torch

    truth, syms, X, y, Xt, yt, _ = sample(eq, args, seed)
    n = len(syms)
    row: dict = {"name": eq["name"], "formula": eq["formula"], "n_var": n}

    t0 = time.perf_counter()
    width = [[n, 0], [1, 1], [1, 0]] if eq.get("width") is None else eq["width"]
    kl = KANLEX(None, width, grid=args.grid, k=3, seed=seed, mult_arity=n)
    if args.units:  # the network learns f of the dimensionless groups
        from feynman_units import units_of

        given, out = units_of(eq["name"], [v[0] for v in eq["vars"]], eq["output"])
        kl.set_dataset(X, y, Xt, yt, units=given, target_units=out)
        first = kl.width[0]
        kl.kan_options["mult_arity"] = first[0] if isinstance(first, list) else first
        row["groups"] = None if kl.units_frame is None else kl.units_frame.describe()
    else:
        kl.set_dataset(X, y, Xt, yt)
    try:
        kl.train_kan(
            steps=args.steps,
            n_restarts=args.restarts,
            time_budget=args.train_budget,
            lamb=args.lamb,
            prune=args.prune,
            progress=False,
        )
    except Exception as err:  # pykan can fail inside training (curve2coef): a miss for both
        row["train_time"] = row["ours_total_time"] = time.perf_counter() - t0
        row["ours_time"] = 0.0
        row["ours_r2"] = -math.inf
        row["ours_expr"] = f"ERROR in training {type(err).__name__}: {err}"
        row["ours_exact"] = False
        if not args.no_pykan:
            row["pykan_expr"] = row["ours_expr"]
            row["pykan_r2"] = row["pykan_refit_r2"] = -math.inf
            row["pykan_time"] = 0.0
            row["pykan_exact"] = row["pykan_refit_exact"] = False
        return row
    rep = kl.training
    row["train_time"] = time.perf_counter() - t0
    row["kan_test_rmse"] = rep.best_test_loss
    row["restarts"] = len(rep.runs)

    t1 = time.perf_counter()
    try:
        _, _, results, _ = kl.get_symbolic(
            client=None,
            population=args.population,
            generations=args.generations,
            verbose=0,
            simplify_timeout=args.simplify_timeout,
            snap_time=args.snap_time,
            time_budget=args.symbolic_budget,
            progress=False,
        )
        res = results[0]["result"]
        ours = res.expression  # sympy (exprs[0] is the same formula as numpy text)
        row["ours_r2"] = res.r2_test
        row["ours_expr"] = str(ours)
        row["ours_assembly_error"] = res.assembly_error
        row["ours_kan_error"] = res.kan_error
        row["ours_edges_time"] = kl.edges.time if kl.edges is not None else math.nan
        row["ours_timings"] = dict(res.timings)
    except Exception as err:  # a benchmark records failures and goes on
        ours = None
        row["ours_r2"] = -math.inf
        row["ours_expr"] = f"ERROR {type(err).__name__}: {err}"
    row["ours_time"] = time.perf_counter() - t1
    row["ours_total_time"] = row["train_time"] + row["ours_time"]
    pos = nonnegative_names(eq)
    row["ours_exact"] = exact_recovery(
        truth, ours, row["ours_r2"], nonnegative=pos, positive=positive_names(eq)
    )

    if args.save_kans is not None and not row["ours_exact"]:
        save_miss(args.save_kans, eq, seed, (X, y, Xt, yt), row, model=kl.model)

    if not args.no_pykan:
        t2 = time.perf_counter()
        try:
            with tempfile.TemporaryDirectory(prefix="pykan-bench-") as tmp:
                pk = pykan_formula(kl.model, X, syms, tmp)
            row["pykan_expr"] = str(pk)
            row["pykan_r2"] = r2_score(yt, ks.evaluate(pk, syms, Xt))
            template, ps, p0 = ks.parameterise(pk)
            # Bounded: on networks of 6-9 inputs the formula has hundreds of constants
            # and an unbounded refit ran past 20 minutes (the best point so far is kept).
            budget = args.refit_budget
            deadline = None if budget is None else time.perf_counter() + budget
            pkr = ks.fit_constants(template, syms, ps, p0, X, y, deadline=deadline).expression
            row["pykan_refit_r2"] = r2_score(yt, ks.evaluate(pkr, syms, Xt))
            row["pykan_refit_expr"] = str(pkr)
        except Exception as err:
            pk = pkr = None
            row["pykan_expr"] = f"ERROR {type(err).__name__}: {err}"
            row["pykan_r2"] = row["pykan_refit_r2"] = -math.inf
        row["pykan_time"] = time.perf_counter() - t2
        row["pykan_exact"] = exact_recovery(
            truth, pk, row["pykan_r2"], nonnegative=pos, positive=positive_names(eq)
        )
        row["pykan_refit_exact"] = exact_recovery(
            truth, pkr, row["pykan_refit_r2"], nonnegative=pos, positive=positive_names(eq)
        )
    del torch
    return row


def save_miss(
    root: Path, eq: dict, seed: int, data: tuple, row: dict, model: object = None
) -> Path:
    """Keep a miss for study (``--save-kans``): its samples (``data.npz``: ``X``, ``y``,
    ``X_test``, ``y_test``, exactly as fitted), the row (``row.json``) and, on the KAN
    route, the trained network (pykan's ``saveckpt``: ``kan_config.yml``, ``kan_state``;
    reload with ``kan.MultKAN.loadckpt(str(path / "kan"))``, which takes float32 inputs)."""
    path = root / f"{eq['name']}-seed{seed}"
    path.mkdir(parents=True, exist_ok=True)
    X, y, Xt, yt = data
    np.savez_compressed(path / "data.npz", X=X, y=y, X_test=Xt, y_test=yt)
    (path / "row.json").write_text(json.dumps(row, indent=1, default=str))
    if model is not None:
        model.saveckpt(str(path / "kan"))
    return path


def run_estimator(eq: dict, args: argparse.Namespace, seed: int) -> dict:
    """The same data through :class:`llmlex.LLMLExRegressor` (``--estimator``): sparse
    regression, rational functions and products of factors, then the KAN when none explains the
    data, chosen by description length."""
    from llmlex import LLMLExRegressor

    truth, syms, X, y, Xt, yt, rng = sample(eq, args, seed)
    n = len(syms)
    if args.noise:
        y = y + args.noise * float(np.sqrt(np.mean(y * y))) * rng.standard_normal(y.size)
    row: dict = {"name": eq["name"], "formula": eq["formula"], "n_var": n}
    units: dict = {}
    if args.units:
        from feynman_units import units_of

        given, out = units_of(eq["name"], [v[0] for v in eq["vars"]], eq["output"])
        units = {"units": given, "target_units": out}
    t0 = time.perf_counter()
    try:
        est = LLMLExRegressor(
            random_state=seed,
            generators=tuple(args.generators),
            time_budget=args.fit_budget,
            progress=False,
            **units,
        ).fit(X, y)
        ours = est.expression_
        row["ours_r2"] = r2_score(yt, est.predict(Xt))
        row["ours_expr"] = str(ours)
        row["ours_method"] = est.method_
    except Exception as err:  # a benchmark records failures and goes on
        ours = None
        row["ours_r2"] = -math.inf
        row["ours_expr"] = f"ERROR {type(err).__name__}: {err}"
    row["ours_total_time"] = time.perf_counter() - t0
    row["ours_exact"] = exact_recovery(
        truth,
        ours,
        row["ours_r2"],
        nonnegative=nonnegative_names(eq),
        positive=positive_names(eq),
    )
    row["ours_form"] = form_found(truth, ours, syms, Xt, yt)
    if args.save_kans is not None and not row["ours_exact"]:
        save_miss(args.save_kans, eq, seed, (X, y, Xt, yt), row)
    for peer in args.peers:
        row.update(run_peer(peer, eq, truth, X, y, Xt, yt, seed))
    return row


def run_peer(
    peer: str,
    eq: dict,
    truth: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    Xt: np.ndarray,
    yt: np.ndarray,
    seed: int,
) -> dict:
    """gplearn or pyoperon (as ``benchmarks/multivariate.py`` runs them) on the same
    samples, scored as llmlex is: ``<peer>_r2``, ``_exact``, ``_expr``, ``_time``."""
    from multivariate import METHODS

    out: dict = {}
    try:
        got = METHODS[peer](X, y, seed, argparse.Namespace(time_budget=None))
        r2 = r2_score(yt, ks.evaluate(got.expr, symbols_of(X.shape[1]), Xt))
        out |= {f"{peer}_r2": r2, f"{peer}_expr": str(got.expr), f"{peer}_time": got.time}
        out[f"{peer}_exact"] = exact_recovery(
            truth, got.expr, r2, nonnegative=nonnegative_names(eq), positive=positive_names(eq)
        )
        out[f"{peer}_form"] = form_found(truth, got.expr, symbols_of(X.shape[1]), Xt, yt)
    except Exception as err:  # a benchmark records failures and goes on
        out |= {f"{peer}_r2": -math.inf, f"{peer}_expr": f"ERROR {err}", f"{peer}_time": math.nan}
        out[f"{peer}_exact"] = False
        out[f"{peer}_form"] = False
    return out


def symbols_of(d: int) -> list[sympy.Symbol]:
    return [sympy.Symbol(f"x{k}", real=True) for k in range(d)]


def paper_example(args: argparse.Namespace) -> dict:
    eq = {
        "name": "paper exp(sin(pi*x0)+x1**2)",
        "formula": "exp(sin(pi*a)+b**2)",
        "vars": [("a", -1.0, 1.0), ("b", -1.0, 1.0)],
        "width": [2, 1, 1],
    }
    return run_equation(eq, args, seed=args.seed)


def summarise(rows: list[dict], with_pykan: bool, peers: Sequence[str] = ()) -> str:
    lines = []
    hdr = f"{'equation':<14} {'n':>1} {'ours':>5} {'R2':>10} {'time':>6}"
    if with_pykan:
        hdr += f" {'pykan':>5} {'R2':>10} {'refit':>5} {'R2':>10} {'time':>6}"
    lines.append(hdr)
    for r in rows:
        line = (
            f"{r['name'][:14]:<14} {r['n_var']:>1} {'yes' if r['ours_exact'] else 'no':>5} "
            f"{r['ours_r2']:>10.6f} {r['ours_total_time']:>6.0f}"
        )
        if with_pykan:
            line += (
                f" {'yes' if r['pykan_exact'] else 'no':>5} {r['pykan_r2']:>10.6f}"
                f" {'yes' if r['pykan_refit_exact'] else 'no':>5} {r['pykan_refit_r2']:>10.6f}"
                f" {r['pykan_time']:>6.0f}"
            )
        lines.append(line)
    n = len(rows)
    if n:
        lines.append("")
        form = (
            f"form found {sum(r['ours_form'] for r in rows)}/{n}, "
            if all("ours_form" in r for r in rows)
            else ""
        )
        lines.append(
            f"llmlex: exact {sum(r['ours_exact'] for r in rows)}/{n}, {form}"
            f"R2>0.999 {sum(r['ours_r2'] > 0.999 for r in rows)}/{n}, "
            f"median time {statistics.median(r['ours_total_time'] for r in rows):.0f} s "
            f"(training included)"
        )
        for peer in peers:
            lines.append(
                f"{peer}: exact {sum(r[f'{peer}_exact'] for r in rows)}/{n}, "
                f"form found {sum(r[f'{peer}_form'] for r in rows)}/{n}, "
                f"R2>0.999 {sum(r[f'{peer}_r2'] > 0.999 for r in rows)}/{n}, median time "
                f"{statistics.median(r[f'{peer}_time'] for r in rows):.0f} s"
            )
        if with_pykan:
            lines.append(
                f"pykan auto_symbolic: exact {sum(r['pykan_exact'] for r in rows)}/{n}, "
                f"R2>0.999 {sum(r['pykan_r2'] > 0.999 for r in rows)}/{n}; with refit: exact "
                f"{sum(r['pykan_refit_exact'] for r in rows)}/{n}, R2>0.999 "
                f"{sum(r['pykan_refit_r2'] > 0.999 for r in rows)}/{n}; median time "
                f"{statistics.median(r['pykan_time'] for r in rows):.0f} s (training excluded)"
            )
        lines += ["", by_variables(rows, with_pykan)]
    return "\n".join(lines)


def by_variables(rows: Sequence[dict], with_pykan: bool) -> str:
    """A markdown table of the rows by their number of variables (KAN.md's)."""
    head = "| variables | equations | llmlex exact | llmlex R2 > 0.999 | llmlex median s |"
    if with_pykan:
        head += " pykan exact | pykan R2 > 0.999 | pykan+refit exact | pykan+refit R2 > 0.999 |"
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    groups = sorted({r["n_var"] for r in rows})
    for n_var in [*groups, None]:
        sel = [r for r in rows if n_var is None or r["n_var"] == n_var]
        if n_var is None and len(groups) < 2:
            break
        n = len(sel)
        line = (
            f"| {'all' if n_var is None else n_var} | {n} | {sum(r['ours_exact'] for r in sel)} "
            f"| {sum(r['ours_r2'] > 0.999 for r in sel)} "
            f"| {statistics.median(r['ours_total_time'] for r in sel):.0f} |"
        )
        if with_pykan:
            line += (
                f" {sum(r['pykan_exact'] for r in sel)} | {sum(r['pykan_r2'] > 0.999 for r in sel)}"
                f" | {sum(r['pykan_refit_exact'] for r in sel)}"
                f" | {sum(r['pykan_refit_r2'] > 0.999 for r in sel)} |"
            )
        lines.append(line)
    return "\n".join(lines)


def recheck(paths: Sequence[Path]) -> list[dict]:
    """Rows of earlier runs with exact recovery recomputed by the current check.

    The formulas are read back from the rows (the benchmark's own output, trusted);
    ``pykan_refit_exact`` only where the row stored ``pykan_refit_expr``.
    """
    by_name = {e["name"]: e for e in load_equations(CSV)}
    rows = []
    for path in paths:
        rows.extend(json.loads(Path(path).read_text()))
    for r in rows:
        eq = by_name.get(r["name"])
        if eq is None:  # the paper's example: [-1, 1]^2, nothing to change
            continue
        truth, syms = truth_expr(eq)
        local = {**_FUNCS, "atan": sympy.atan, **{s.name: s for s in syms}}
        pos = nonnegative_names(eq)
        for key, r2_key, expr_key in (
            ("ours_exact", "ours_r2", "ours_expr"),
            ("pykan_exact", "pykan_r2", "pykan_expr"),
            ("pykan_refit_exact", "pykan_refit_r2", "pykan_refit_expr"),
        ):
            text = r.get(expr_key)
            if text is None or text.startswith("ERROR"):
                continue
            cand = parse_expr(text, local_dict=local)
            was = r.get(key)
            r[key] = exact_recovery(
                truth, cand, r[r2_key], nonnegative=pos, positive=positive_names(eq)
            )
            if was != r[key]:
                print(f"{r['name']}: {key} {was} -> {r[key]}", flush=True)
    return rows


def _seconds(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--limit", type=int, default=None, help="most equations to run")
    p.add_argument("--offset", type=int, default=0, help="skip this many equations first")
    p.add_argument("--only", nargs="*", default=None, help="equation names to run")
    p.add_argument(
        "--shard",
        default=None,
        help="K/N: run every N-th equation starting at the K-th (0-based), to split a run "
        "over processes",
    )
    p.add_argument(
        "--time-budget", type=float, default=None, help="total seconds; no new equation after"
    )
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--grid", type=int, default=5)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--train-budget", type=float, default=60.0)
    p.add_argument("--lamb", type=float, default=0.0, help="pykan sparsity penalty in training")
    p.add_argument("--prune", action="store_true", help="prune the trained KAN (and retrain)")
    p.add_argument("--population", type=int, default=5)
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--simplify-timeout", type=float, default=5.0)
    p.add_argument("--snap-time", type=float, default=20.0)
    p.add_argument(
        "--symbolic-budget",
        type=float,
        default=None,
        help="KAN route: get_symbolic's time_budget (s); the assembly's refits stop there",
    )
    p.add_argument(
        "--refit-budget",
        type=_seconds,
        default=120.0,
        help="seconds for the refit of pykan's constants (pykan+refit); 'none' for no limit",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--estimator",
        action="store_true",
        help="fit LLMLExRegressor instead (sparse, rational, products, then the KAN)",
    )
    p.add_argument("--generators", nargs="+", default=["sparse", "kan"], help="with --estimator")
    p.add_argument("--fit-budget", type=float, default=None, help="with --estimator: time_budget")
    p.add_argument("--noise", type=float, default=0.0, help="with --estimator: fraction of RMS(y)")
    p.add_argument(
        "--units",
        action="store_true",
        help="give the columns' SI units (benchmarks/feynman_units.py): to the estimator, "
        "or to KANLEX.set_dataset (the KAN route, with --no-pykan)",
    )
    p.add_argument(
        "--peers",
        nargs="*",
        default=[],
        choices=["gplearn", "pyoperon"],
        help="with --estimator: also these regressors on the same samples",
    )
    p.add_argument(
        "--n-vars", type=int, nargs="+", default=[2, 3], help="numbers of variables to run"
    )
    p.add_argument("--no-pykan", action="store_true", help="skip pykan's auto_symbolic")
    p.add_argument("--no-paper", action="store_true", help="skip the paper's example")
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    p.add_argument(
        "--save-kans",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each miss in DIR/<equation>-seed<seed>/: its samples, its row and (KAN "
        "route) the trained network",
    )
    p.add_argument(
        "--recheck",
        type=Path,
        nargs="+",
        default=None,
        help="JSON files of earlier runs: recompute exact recovery with the current check, "
        "print the summary (and write the rows to --json); no training",
    )
    args = p.parse_args(argv)
    if args.peers and not args.estimator:
        p.error("--peers runs beside --estimator")
    if args.units and not (args.estimator or args.no_pykan):
        p.error("--units: with --estimator, or the KAN route with --no-pykan")
    if args.recheck:
        rows = recheck(args.recheck)
        every = {e["name"] for e in load_equations(CSV, tuple(range(1, 10)))}
        feyn = [r for r in rows if r["name"] in every]
        print(summarise(feyn, all("pykan_exact" in r for r in feyn)))
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
        return 0

    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    eqs = load_equations(CSV, tuple(args.n_vars))
    if args.only:
        eqs = [e for e in eqs if e["name"] in set(args.only)]
    if args.shard:
        k, n = (int(v) for v in args.shard.split("/"))
        eqs = eqs[k::n]
    eqs = eqs[args.offset :]
    if args.limit is not None:
        eqs = eqs[: args.limit]
    t0 = time.perf_counter()
    rows = []
    if not args.no_paper:
        row = paper_example(args)
        print(json.dumps(row, default=str), flush=True)
        print(
            f"paper example: exact={row['ours_exact']} R2={row['ours_r2']:.8f} "
            f"expr={row['ours_expr']} time={row['ours_total_time']:.0f}s",
            flush=True,
        )
    for k, eq in enumerate(eqs):
        if args.time_budget is not None and time.perf_counter() - t0 > args.time_budget:
            print(f"time budget spent: {len(eqs) - k} equations not run", flush=True)
            break
        runner = run_estimator if args.estimator else run_equation
        # The equation's row in the table, not its position in this run: the same
        # equation gets the same samples whatever --only, --shard or --offset select.
        row = runner(eq, args, seed=args.seed + eq["index"])
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
    if args.json is not None:  # before the summary: a summary's failure loses nothing
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(summarise(rows, not (args.no_pykan or args.estimator), args.peers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
