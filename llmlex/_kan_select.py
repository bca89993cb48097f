"""From fitted edges to the formula of each output: assemble, verify, then simplify safely.

:func:`symbolic_from_edges` assembles the network's formula exactly
(:mod:`llmlex._kan_assembly`) and checks it against the network before anything else; it
then lets simpler candidates compete with it, each refitted on the original data and
kept only if its held-out nchi2 stays within a tolerance of the reference
(:class:`Selection`): formulas from the network's separability structure
(:func:`separable_forms`, the network used as a surrogate of the data), the
assembly with every edge at its simplest alternative within an error budget
(:func:`simpler_assemblies`), sympy simplification, an LLM's simpler forms
(:mod:`llmlex._kan_simplify`), and constants snapped to simple values.

numpy at import; sympy and the surrogate tests (:mod:`llmlex._separable`) are imported
where a formula is built.

With error bars (``sigma_train``, ``sigma_test``), every refit minimises the chi-squared
(weights ``1/sigma``) and every candidate is judged by its held-out chi-squared per point
instead of its nchi2 (:func:`llmlex._kan_sympy.selection_score`); the result reports the
chi-squared per degree of freedom of the final formula.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._kan_assembly import (
    ASSEMBLY_RTOL,
    STRUCTURE_RTOL,
    assemble_expressions,
    edge_postacts,
    rel_error,
    replica_forward,
)
from llmlex._kan_edges import seed_for
from llmlex._kan_results import Candidate, KANSymbolicResult
from llmlex._kan_simplify import llm_simplifications
from llmlex._kan_torch import as_2d, network_output, spline_postacts
from llmlex._kan_types import EdgeResult, Key
from llmlex._score import chi2
from llmlex._validation import check_sigma
from llmlex.exceptions import AssemblyError, DataError
from llmlex.fit import nchi2, r2

if TYPE_CHECKING:
    import sympy

__all__ = [
    "EDGE_ERROR_BUDGETS",
    "SURROGATE_MAX_ERROR",
    "Selection",
    "check_error_bars",
    "separable_forms",
    "simpler_assemblies",
    "symbolic_from_edges",
]

# One logger for the KAN door: callers tune "llmlex.kan" (the examples do).
log = logging.getLogger("llmlex.kan")

#: Error budgets swept when assembling simpler formulas: each edge takes its simplest
#: alternative whose effect on the output stays within this many times the network's own
#: RMS error (first-order: the edge's residual times the output's sensitivity to it).
EDGE_ERROR_BUDGETS: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)
#: Separability is tested on the network only where its relative RMS error is below this.
SURROGATE_MAX_ERROR = 0.05


def symbolic_from_edges(
    model: Any,
    edges: Mapping[Key, EdgeResult],
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    variable_names: Sequence[str] | None = None,
    client: Any = None,
    gpt_model: str = "openai/gpt-4o",
    tolerance: float = 0.1,
    simplify_timeout: float | None = 10.0,
    snap_time: float | None = 30.0,
    llm_candidates: int = 3,
    max_fit_points: int = 2000,
    seed: int | None = 0,
    separable: bool = True,
    separable_options: Mapping[str, Any] | None = None,
    separable_candidates: Sequence[Sequence[tuple[str, sympy.Expr]]] | None = None,
    cache: Any = None,
    sigma_train: Any = None,
    sigma_test: Any = None,
    time_budget: float | None = None,
) -> list[KANSymbolicResult]:
    """Assemble, verify, simplify and refit the formulas of a KAN whose edges are fitted.

    Parameters
    ----------
    model : kan.MultKAN
        The network the edges came from.
    edges : Mapping
        ``(layer, i, j) -> EdgeResult``, e.g. from :func:`kan_to_symbolic`.
    X_train, y_train, X_test, y_test : array_like
        The original data: constants are refitted on the training part, candidates judged
        on the held-out part.
    variable_names : sequence of str, optional
        Names of the input columns (default ``x0, x1, ...``).
    client : openai client or None
        With a client, the LLM is also asked for simpler equivalent forms.
    gpt_model : str
        Model for those requests.
    tolerance : float
        A candidate is accepted if its held-out nchi2 is at most ``(1 + tolerance)`` times
        the raw formula's (plus 1e-12).
    simplify_timeout : float or None
        Time limit of each sympy simplification, in seconds; ``None``: bounded by the
        work it does instead (:func:`~llmlex._kan_sympy.simplify_bounded`), so that the
        result does not depend on the machine's load.
    snap_time : float or None
        Time limit of the constant snapping, in seconds (it is also bounded by a number
        of refits); ``None``: by that number only.
    llm_candidates : int
        Simplified forms asked of the LLM.
    max_fit_points : int
        Most training points used in refits (a seeded subsample; scores use all).
    seed : int or None
        Seed of the subsample.
    separable : bool
        Also try formulas built from the network used as a surrogate: if the output is
        (to the network's accuracy) a product or a sum of functions of one variable each,
        each factor is regressed by the offline search on a slice of the network, and
        the product or sum competes with the other candidates on the data.
    separable_options : mapping, optional
        ``population``, ``generations``, ``time_budget`` of those univariate searches, and
        ``executor`` to run them on (see :func:`separable_forms`).
    separable_candidates : sequence, optional
        Those candidates already computed (one list of ``(origin, expression)`` per
        output, as the separability test gives them), used instead of recomputing.
        A separable formula that fits the held-out data better than the raw one becomes
        the reference later candidates are judged against (so nothing after it can undo
        its accuracy), and the sweep of simpler edge assemblies, which can only
        approximate the network, is skipped.
    cache : ReplyCache, str, path-like or None
        Reply cache of the LLM's simplification requests.
    sigma_train, sigma_test : float or array_like, optional
        Error bars of ``y_train`` and ``y_test`` (a scalar, or one per sample shared by
        all outputs), both or neither: refits then minimise the chi-squared, candidates
        are judged by their held-out chi-squared per point, and the results report
        ``chi2_train``/``dof_train`` and ``chi2_test``/``dof_test``.
    time_budget : float or None
        Seconds this call may take: past it every refit stops at the best point it has
        evaluated (never worse than its start) and no further candidate (simpler
        assembly, simplification, LLM request, snapping) is built, so the formula chosen
        is the best one judged by then.  ``None`` (the default): the refits are
        bounded by their numbers of evaluations only, and the result does not depend on
        the machine's load.

    Returns
    -------
    list of KANSymbolicResult
        One per output.

    Raises
    ------
    AssemblyError
        If the assembled formula does not reproduce the network.
    DataError
        If the error bars are unusable (see :func:`check_error_bars`).
    """
    import sympy

    from llmlex._kan_sympy import (
        evaluate,
        parameterise,
        simplify_with_timeout,
        snap_constants,
    )
    from llmlex._symbolic import node_count, sympy_to_text

    t_start = time.perf_counter()
    deadline = None if time_budget is None else t_start + time_budget

    def late() -> bool:
        """Past the time budget: no further candidate is built (refits stop anyway)."""
        return deadline is not None and time.perf_counter() > deadline

    separable_options = dict(separable_options or {})
    X_train, X_test = as_2d(X_train), as_2d(X_test)
    Y_train, Y_test = as_2d(y_train), as_2d(y_test)
    n_var = X_train.shape[1]
    names = list(variable_names) if variable_names is not None else [f"x{k}" for k in range(n_var)]
    if len(names) != n_var:
        raise ValueError(f"{len(names)} variable names for {n_var} input columns")
    sig_train, sig_test = check_error_bars(
        sigma_train, sigma_test, X_train.shape[0], X_test.shape[0]
    )
    variables = [sympy.Symbol(n, real=True) for n in names]

    t0 = time.perf_counter()
    exprs = assemble_expressions(model, edges, variables)
    replica = replica_forward(model, X_test, edge_postacts(model, edges))
    spline_replica = replica_forward(model, X_test, spline_postacts(model))
    kan_out = network_output(model, X_test)
    structure_error = rel_error(spline_replica, kan_out)
    if structure_error > STRUCTURE_RTOL:
        raise AssemblyError(
            f"replica of the KAN's forward pass is off by {structure_error:.3g} (relative): "
            "this pykan model computes something the assembly does not model"
        )
    t_assembly = time.perf_counter() - t0

    rng = np.random.default_rng(seed)
    fit_idx = np.arange(X_train.shape[0])
    if fit_idx.size > max_fit_points:
        fit_idx = np.sort(rng.choice(fit_idx.size, max_fit_points, replace=False))
    Xf = X_train[fit_idx]
    sig_fit = None if sig_train is None else sig_train[fit_idx]
    edge_calls = sum(e.llm_calls for e in edges.values())
    edge_saved = sum(e.llm_calls_saved for e in edges.values())

    results = []
    for o, raw in enumerate(exprs):
        t_out = time.perf_counter()
        assembled = evaluate(raw, variables, X_test)
        assembly_error = rel_error(assembled, replica[:, o])
        if assembly_error > ASSEMBLY_RTOL:
            raise AssemblyError(
                f"output {o}: assembled formula differs from the edge-wise replica by "
                f"{assembly_error:.3g} (relative); formula: {raw}"
            )
        kan_error = rel_error(assembled, kan_out[:, o])
        yf, yh = Y_train[fit_idx, o], Y_test[:, o]
        sel = Selection(
            variables,
            Xf,
            yf,
            X_test,
            yh,
            tolerance,
            sigma_fit=sig_fit,
            sigma_hold=sig_test,
            deadline=deadline,
        )
        sel.start(raw)
        t1 = time.perf_counter()
        if separable_candidates is not None:
            sep = list(separable_candidates[o])
        elif separable:
            sep = separable_forms(
                model, X_train, variables, o, Y_train[:, o], seed=seed, **separable_options
            )
        else:
            sep = []
        for origin, expr in sep:
            sel.consider(origin, expr)
        # A separable formula that beats the raw one is the new reference: nothing later
        # may undo its accuracy, and simpler edge assemblies (approximations of the
        # network) cannot reach it.
        if not sel.tighten():
            # Loosest budget (simplest formula) first: the first one the data accept wins.
            for budget, expr in reversed(simpler_assemblies(model, edges, variables, o)):
                if late():
                    break
                if expr == raw:  # no edge had a simpler alternative within this budget
                    continue
                if sel.consider(f"edges<={budget:g}", expr):
                    break
        if not late():
            sel.consider("sympy", simplify_with_timeout(sel.best, simplify_timeout))
        llm_calls = 0
        if client is not None and not late():
            texts, llm_calls = llm_simplifications(
                client, gpt_model, sel.best, names, llm_candidates, cache=cache
            )
            for cand in texts:
                sel.consider("llm", cand)
        t_simplify = time.perf_counter() - t1

        t2 = time.perf_counter()
        snapped = snap_constants(
            sel.best,
            variables,
            Xf,
            yf,
            X_test,
            yh,
            sel.reference,
            rtol=tolerance,
            atol=1e-12,
            deadline=_earliest(
                deadline, None if snap_time is None else time.perf_counter() + snap_time
            ),
            sigma_fit=sig_fit,
            sigma_hold=sig_test,
        )
        if sel.consider("snapped", snapped, refit=False, force=True) and not late():
            sel.consider("snapped-sympy", simplify_with_timeout(snapped, simplify_timeout))
        t_snap = time.perf_counter() - t2

        t3 = time.perf_counter()
        final = sel.finish()
        t_refit = time.perf_counter() - t3

        pred_train = evaluate(final, variables, X_train)
        pred_test = evaluate(final, variables, X_test)
        n_constants = len(parameterise(final)[1])
        chi2_train = chi2_test = math.nan  # without error bars there is no chi2
        if sig_train is not None and sig_test is not None:
            chi2_train = chi2(Y_train[:, o], pred_train, sig_train)
            chi2_test = chi2(yh, pred_test, sig_test)
        results.append(
            KANSymbolicResult(
                output=o,
                expression=final,
                text=sympy_to_text(final),
                raw_expression=raw,
                variables=tuple(names),
                nchi2_train=nchi2(Y_train[:, o], pred_train),
                nchi2_test=nchi2(yh, pred_test),
                r2_train=r2(Y_train[:, o], pred_train),
                r2_test=r2(yh, pred_test),
                complexity=node_count(final),
                raw_complexity=node_count(raw),
                assembly_error=assembly_error,
                structure_error=structure_error,
                kan_error=kan_error,
                llm_calls=edge_calls + llm_calls,
                llm_calls_saved=edge_saved,
                timings={
                    "assembly": t_assembly,
                    "simplify": t_simplify,
                    "snap": t_snap,
                    "refit": t_refit,
                    "output_total": time.perf_counter() - t_out,
                    "total": time.perf_counter() - t_start,
                },
                candidates=tuple(sel.candidates),
                chi2_train=chi2_train,
                dof_train=X_train.shape[0] - n_constants,
                chi2_test=chi2_test,
                dof_test=X_test.shape[0],
            )
        )
    return results


def _earliest(*deadlines: float | None) -> float | None:
    """The earliest of the deadlines given (``None`` where none is)."""
    given = [d for d in deadlines if d is not None]
    return min(given) if given else None


def check_error_bars(
    sigma_train: Any, sigma_test: Any, n_train: int, n_test: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Validate the error bars of the training and held-out targets, both or neither.

    Parameters
    ----------
    sigma_train, sigma_test : float, array_like or None
        A scalar or one standard deviation per sample (shared by all outputs).
    n_train, n_test : int
        Numbers of training and held-out samples.

    Returns
    -------
    tuple
        ``(sigma_train, sigma_test)`` as float arrays of ``n_train`` and ``n_test``
        values, or ``(None, None)``.

    Raises
    ------
    DataError
        If only one is given, or one is not positive and finite or has the wrong length
        (:func:`llmlex._validation.check_sigma`).
    """
    if sigma_train is None and sigma_test is None:
        return None, None
    if sigma_train is None or sigma_test is None:
        raise DataError(
            "give error bars for both the training and the held-out data (sigma_train and "
            "sigma_test), or for neither: one score cannot judge weighted and unweighted data"
        )
    try:
        train = check_sigma(sigma_train, n_train)
    except DataError as err:
        raise DataError(f"sigma_train: {err}") from None
    try:
        test = check_sigma(sigma_test, n_test)
    except DataError as err:
        raise DataError(f"sigma_test: {err}") from None
    return train, test


def simpler_assemblies(
    model: Any, edges: Mapping[Key, EdgeResult], variables: Sequence[sympy.Symbol], output: int
) -> list[tuple[float, sympy.Expr]]:
    """Formulas of ``output`` with each edge at its simplest alternative within a budget.

    For each budget of :data:`EDGE_ERROR_BUDGETS`, every fitted edge takes the simplest
    of its alternatives whose weighted error (its first-order effect on the output, in
    units of the network's own error) is within the budget: an edge the output hardly
    depends on becomes a constant, a nearly straight one a line.  Distinct formulas only,
    loosest budget last; the caller refits and judges each on the data.

    Parameters
    ----------
    model : kan.MultKAN
        The network.
    edges : Mapping
        ``(layer, i, j) -> EdgeResult`` with their alternatives.
    variables : sequence of sympy.Symbol
        Symbols of the input columns.
    output : int
        The output whose formulas are built.

    Returns
    -------
    list of (float, sympy.Expr)
        ``(budget, formula)`` pairs, tightest budget first.
    """
    out: list[tuple[float, sympy.Expr]] = []
    seen: set[sympy.Expr] = set()
    for budget in EDGE_ERROR_BUDGETS:
        chosen: dict[Key, EdgeResult] = {}
        for key, e in edges.items():
            pick = next((r for r, err in e.alternatives if err <= budget), None)
            if e.status == "fitted" and pick is not None and pick is not e.fit:
                e = replace(e, expression=pick.expression, fit=pick)
            chosen[key] = e
        expr = assemble_expressions(model, chosen, variables)[output]
        if expr not in seen:
            seen.add(expr)
            out.append((budget, expr))
    return out


def separable_forms(
    model: Any,
    X: np.ndarray,
    variables: Sequence[sympy.Symbol],
    output: int,
    y: np.ndarray,
    *,
    seed: int | None = 0,
    population: int = 6,
    generations: int = 4,
    time_budget: float = 30.0,
    n_pairs: int = 256,
    n_slice: int = 200,
    executor: concurrent.futures.Executor | None = None,
) -> list[tuple[str, sympy.Expr]]:
    """Formulas of an output from the network's separability structure (or none).

    The trained network is a smooth surrogate of the data (the idea of AI Feynman):
    :func:`llmlex._separable.decompose` tests it for products and sums of parts (also of
    ``1/f``, ``f**2``, ``1/f**2``), for parts that depend on two variables only through
    ``x_i*x_j``, ``x_i/x_j``, ``x_i + x_j`` or ``x_i - x_j``, and regresses each
    one-variable part on a slice of the network.  The caller refits the result on the data
    and judges it like any candidate.

    Parameters
    ----------
    model : kan.MultKAN
        The trained network.
    X : ndarray
        Training inputs, shape ``(n, n_var)``: where the network is probed.
    variables : sequence of sympy.Symbol
        Symbols of the input columns.
    output : int
        The output tested.
    y : ndarray
        The output's training targets (they set the network's own error level).
    seed : int or None
        Base seed (the search's seed derives from it and the output).
    population, generations, time_budget : int, int, float
        Settings of the one-variable searches.
    n_pairs, n_slice : int
        Point pairs per separability test, points per slice.
    executor : concurrent.futures.Executor, optional
        Run the one-variable regressions there (see :func:`llmlex._separable.decompose`):
        the network stays here, each regression travels as the points and values of its
        slice; the formulas are those found without an executor.

    Returns
    -------
    list of (str, sympy.Expr)
        ``(origin, formula)`` candidates; empty if the network shows no such structure.
    """
    from llmlex._separable import decompose

    def f(Z: np.ndarray) -> np.ndarray:
        return network_output(model, Z)[:, output]

    return decompose(
        f,
        X,
        y,
        variables,
        seed=seed_for(seed, 7, output),
        population=population,
        generations=generations,
        time_budget=time_budget,
        n_pairs=n_pairs,
        n_slice=n_slice,
        max_error=SURROGATE_MAX_ERROR,
        executor=executor,
    )


class Selection:
    """Candidate formulas of one output, judged on held-out data against the raw one.

    :meth:`start` with the raw formula sets the reference score; :meth:`consider` refits
    and scores each candidate, adopting it if it is within ``tolerance`` of the reference
    and simpler; :meth:`tighten` makes a better score the new reference; :meth:`finish`
    refits the chosen formula.  Every candidate is recorded in :attr:`candidates`.

    Parameters
    ----------
    variables : sequence of sympy.Symbol
        Symbols of the input columns.
    X_fit, y_fit : ndarray
        Data the constants are refitted on.
    X_hold, y_hold : ndarray
        Held-out data the candidates are scored on (nchi2).
    tolerance : float
        A candidate is acceptable if its score is at most ``(1 + tolerance)`` times the
        reference (plus 1e-12).
    sigma_fit, sigma_hold : ndarray, optional
        Error bars of ``y_fit`` and ``y_hold`` (validated, both or neither): refits then
        minimise the chi-squared and the score is the held-out chi-squared per point
        (:func:`llmlex._kan_sympy.selection_score`).
    deadline : float, optional
        :func:`time.perf_counter` value past which refits stop at their best point so far
        (``None``: bounded by evaluations only).
    """

    def __init__(
        self,
        variables: Sequence[sympy.Symbol],
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        X_hold: np.ndarray,
        y_hold: np.ndarray,
        tolerance: float,
        *,
        sigma_fit: np.ndarray | None = None,
        sigma_hold: np.ndarray | None = None,
        deadline: float | None = None,
    ) -> None:
        self.variables = list(variables)
        self.deadline = deadline
        self.X_fit, self.y_fit, self.X_hold, self.y_hold = X_fit, y_fit, X_hold, y_hold
        self.sigma_fit, self.sigma_hold = sigma_fit, sigma_hold
        self.tolerance = tolerance
        self.candidates: list[Candidate] = []
        self.reference = math.inf
        self.best: Any = None
        self.best_score = math.inf
        self._accepted: list[tuple[sympy.Expr, float]] = []

    def refit(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with its Float constants refitted on the training data."""
        from llmlex._kan_sympy import fit_constants, parameterise

        template, syms, p0 = parameterise(expr)
        fitted = fit_constants(
            template,
            self.variables,
            syms,
            p0,
            self.X_fit,
            self.y_fit,
            sigma=self.sigma_fit,
            # Bounded by evaluations (fit_constants' default); by the clock only under a
            # caller's time budget.
            deadline=self.deadline,
        )
        return fitted.expression

    def score(self, expr: sympy.Expr) -> float:
        """Held-out score of ``expr``: nchi2, or with error bars chi2 per point."""
        from llmlex._kan_sympy import holdout_score

        return holdout_score(expr, self.variables, self.X_hold, self.y_hold, self.sigma_hold)

    def _record(self, origin: str, expr: sympy.Expr, score: float, ok: bool) -> None:
        from llmlex._kan_sympy import holdout_nchi2
        from llmlex._symbolic import node_count, sympy_to_text

        text, size = sympy_to_text(expr), node_count(expr)
        if self.sigma_hold is None:
            self.candidates.append(Candidate(origin, text, score, size, ok))
        else:  # judged by chi2 per point; the nchi2 is recorded as well
            held = holdout_nchi2(expr, self.variables, self.X_hold, self.y_hold)
            self.candidates.append(Candidate(origin, text, held, size, ok, score))

    def start(self, raw: sympy.Expr) -> None:
        """Score the raw formula as it is and refitted; the better is the reference."""
        raw_score = self.score(raw)
        self._record("raw", raw, raw_score, True)
        refitted = self.refit(raw)
        refit_score = self.score(refitted)
        self._record("raw-refit", refitted, refit_score, True)
        if refit_score <= raw_score:
            self.best, self.best_score = refitted, refit_score
        else:
            self.best, self.best_score = raw, raw_score
        self.reference = self.best_score
        self._accepted.append((self.best, self.best_score))

    def consider(
        self, origin: str, expr: sympy.Expr | None, *, refit: bool = True, force: bool = False
    ) -> bool:
        """Refit and score a candidate; adopt it if within tolerance and simpler.

        ``force`` adopts an acceptable candidate even if it is not simpler (snapped
        constants: same size, simpler values).  Returns whether it was acceptable.
        """
        from llmlex._kan_sympy import within
        from llmlex._symbolic import node_count

        if expr is None:
            return False
        try:
            fitted = self.refit(expr) if refit else expr
            score = self.score(fitted)
        except (ValueError, TypeError) as err:  # not evaluable by the safe evaluator
            log.info("candidate %s rejected: %s", origin, err)
            return False
        ok = within(score, self.reference, self.tolerance, 1e-12)
        self._record(origin, fitted, score, ok)
        if ok:
            self._accepted.append((fitted, score))
        simpler = (node_count(fitted), score) < (node_count(self.best), self.best_score)
        if ok and (simpler or force):
            self.best, self.best_score = fitted, score
        return ok

    def tighten(self) -> bool:
        """Make the best score accepted so far the reference, if it beats the current one.

        The best formula becomes the simplest accepted one within tolerance of the new
        reference.  Returns whether the reference changed.
        """
        from llmlex._kan_sympy import within
        from llmlex._symbolic import node_count

        lowest = min(score for _, score in self._accepted)
        if not lowest < self.reference:
            return False
        self.reference = lowest
        near = [
            (node_count(e), score, e)
            for e, score in self._accepted
            if within(score, lowest, self.tolerance, 1e-12)
        ]
        _, self.best_score, self.best = min(near, key=lambda t: (t[0], t[1]))
        return True

    def finish(self) -> sympy.Expr:
        """Final refit of the chosen formula's constants (kept only if it scores no worse)."""
        final = self.refit(self.best)
        score = self.score(final)
        if score > self.best_score:
            final, score = self.best, self.best_score
        self._record("final", final, score, True)
        return final
