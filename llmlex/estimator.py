"""A scikit-learn estimator around llmlex: ``fit(X, y)``, ``predict(X)``, ``score``.

:class:`LLMLExRegressor` follows scikit-learn's conventions (``__init__`` only stores its
keyword arguments, ``fit`` validates and returns ``self``, fitted attributes end in ``_``),
so it works in pipelines, ``cross_val_score`` and ``GridSearchCV``.  A single input column
goes through the univariate genetic search (:func:`llmlex.run_genetic`); several columns
through a Kolmogorov-Arnold network (:class:`llmlex.KANLEX`), whose edges are regressed one
by one and assembled into one formula.

scikit-learn is an optional dependency (``pip install "llmlex[kan]"``, which also brings
torch and pykan for the multivariate path); importing this module without it raises
:class:`~llmlex.exceptions.MissingDependencyError`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmlex._dimensions import Reduction, reduce_dimensions, units_by_column
from llmlex._estimator_kan import KANOptions, points_needed, run_kan
from llmlex._noise import estimate_noise, estimate_noise_nd
from llmlex._progress import progress_bar
from llmlex._settings import DEFAULTS
from llmlex._validation import check_magnitude, check_sample_weight
from llmlex.ansatz import parse_ansatz
from llmlex.exceptions import MissingDependencyError
from llmlex.fit import FitResult
from llmlex.genetic import run_genetic

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as err:  # pragma: no cover - exercised only without scikit-learn
    raise MissingDependencyError(
        f"LLMLExRegressor needs scikit-learn ({err}); install it with "
        '`pip install "llmlex[kan]"` or `pip install scikit-learn`'
    ) from err

if TYPE_CHECKING:
    import sympy

    from llmlex._kan_results import KANSymbolicResult


__all__ = ["LLMLExRegressor", "ParetoPoint"]

log = logging.getLogger(__name__)

# Fewest samples accepted: the univariate search needs five points to say anything.
_MIN_SAMPLES = 5
# Below this many samples the KAN is trained and judged on all of them (a held-out split
# of a handful of points would be noise).
_MIN_SPLIT = 25


@dataclass(frozen=True)
class ParetoPoint:
    """One formula of a fit's complexity-accuracy trade-off.

    Attributes
    ----------
    complexity : int
        sympy node count.
    nchi2 : float
        Normalized chi-squared (on the fitting data for univariate searches, on the
        held-out part for multivariate candidates).
    equation : str
        The formula, with fitted values.
    origin : str
        The generator that proposed it: ``"genetic"`` (univariate search), or for
        several columns ``"sparse"``, ``"rational"``, ``"kan"`` (each possibly
        ``+snapped``) and the KAN pipeline's own stages (``raw``, ``sympy``, ...).
    description_length : float
        Its description length in nats on the training data, the criterion the formula
        is chosen by (``nan`` where it was not computed).
    """

    complexity: int
    nchi2: float
    equation: str
    origin: str = "genetic"
    description_length: float = math.nan


def _front(points: Sequence[ParetoPoint]) -> tuple[ParetoPoint, ...]:
    """Points not beaten in both complexity and nchi2, by increasing complexity."""
    front: list[ParetoPoint] = []
    for p in sorted(points, key=lambda p: (p.complexity, p.nchi2)):
        if math.isfinite(p.nchi2) and (not front or p.nchi2 < front[-1].nchi2):
            front.append(p)
    return tuple(front)


def _constant_result(value: float, message: str) -> FitResult:
    return FitResult(
        ansatz="params[0]",
        params=np.array([value]),
        nchi2=0.0,
        success=True,
        message=message,
        compiled=parse_ansatz("params[0]"),
    )


def _univariate_sympy(result: FitResult, name: str, *, display: bool = False) -> sympy.Expr:
    """The result's formula in the variable ``name``; ``display``: each constant to the
    digits its error justifies (:attr:`FitResult.display_expression`)."""
    import sympy

    from llmlex._symbolic import X, param

    if display:
        return result.display_expression.xreplace({X: sympy.Symbol(name, real=True)})
    a = result.compiled if result.compiled is not None else None
    if a is None:
        a = parse_ansatz(result.ansatz)
    # sympy.Float, not a Python float: a bare parameter must stay a sympy expression.
    subs = {param(k): sympy.Float(float(v)) for k, v in enumerate(result.params)}
    subs[X] = sympy.Symbol(name, real=True)
    return sympy.sympify(a.sympy.xreplace(subs))


class LLMLExRegressor(RegressorMixin, BaseEstimator):
    """Symbolic regression as a scikit-learn regressor.

    One input column: the univariate genetic search of :func:`llmlex.run_genetic`
    (language model with ``client``, offline proposer with ``client=None``).  Several
    columns (:mod:`llmlex._multivariate`): sparse regression over a library of terms,
    rational functions, and products of factors (powers, ``sin``, differences of
    columns, Boltzmann factors, ...) found on the log scale propose formulas in
    seconds; only when none
    explains the data to the noise is a small Kolmogorov-Arnold network trained, each
    edge regressed as a univariate problem, and the network assembled into one formula
    in ``x0, x1, ...`` (needs torch and pykan: ``pip install "llmlex[kan]"``).  Every
    candidate competes under one description-length criterion (constants and nodes cost;
    fit beyond the noise earns nothing); the winner's constants are snapped to simple
    values where the data agree.  A constant target gives a constant model.

    Parameters
    ----------
    client : openai.OpenAI, openai.AsyncOpenAI, ClientSpec or None
        Language-model client; ``None`` runs offline, with no network.  A
        :class:`~llmlex.ClientSpec` keeps the estimator picklable and clonable (and is
        what worker processes need).
    model : str
        Model name sent to the API.
    population_size, num_of_generations : int
        Children per generation and most generations of each genetic search (the whole
        univariate search, or each KAN edge that the polynomial forms do not settle).
    temperature : float
        Selection temperature of the genetic algorithm.
    exit_condition : float, optional
        Stop a univariate search at this nchi2; by default (None) once the data are
        explained to the noise (see :func:`llmlex.run_genetic`).
    hints : sequence of str
        Prior knowledge for the proposer ("periodic", "no exp").
    allowed_functions : sequence of str, optional
        The only functions a formula may use (univariate path).
    random_state : int, RandomState or None
        Seeds every random choice; an int makes ``fit`` reproducible (always with
        ``time_budget=None``; with a budget, when no limit binds).
    progress : bool
        Show progress bars: the univariate search's; for several columns the stages
        (sparse regression, KAN, choice), the KAN's training restarts, its structure
        tests, edges and assembly.
    time_budget : float or None
        Wall-time budget in seconds (default 60: a fit on a few hundred rows ends in
        about a minute on one core).  Univariate: of the search.  Several columns: the
        sparse generators stop starting refits at it; the KAN, if it runs, gets what is
        left: half to training, each edge search and simplification a share of the rest,
        and its assembly's refits stop at the end of it (at their best point so far).
        With a budget the steps are bounded by the clock (their shares of it) instead
        of by their work: a fit where no limit binds is reproducible, one where a limit
        binds (a KAN on a hard law) can end elsewhere on a busier machine.
        ``None``: every search, simplification, fit and refit is bounded by its work, not
        by the clock, and the network is trained with torch's deterministic algorithms:
        the same data and ``random_state`` give the same formula on a busy machine as on
        a quiet one, however long it takes.
    patience : int, optional
        Stop a search after this many generations without a 1% improvement.
    kan_hidden : sequence of int
        Hidden layer widths of the KAN (``()`` gives an additive model
        ``f0(x0) + f1(x1) + ...``; the default single layer of 2 also represents products).
    kan_grid, kan_k : int
        Spline grid intervals and order.
    kan_steps : int
        LBFGS steps per training restart (after a short Adam warm-up).
    kan_restarts : int
        Training restarts from different seeds; the best by held-out loss is kept.
    kan_edges : {"search", "polynomial"}
        How KAN edges are regressed: polynomial forms then the genetic search, or
        polynomial forms only (much faster).
    kan_simplify : bool
        Simplify the assembled KAN formula (sympy under a time limit, constant snapping);
        every simplification is kept only if the held-out fit stays as good.
    kan_prune : bool
        Prune the trained network (pykan's pruning of small edges and nodes, then half
        the steps again) and keep the pruned one unless its held-out loss is more than
        twice the unpruned network's.  Off by default: on eight Feynman equations of
        4-9 variables it did not improve the KAN's formulas (benchmarks/KAN.md).
    test_size : float
        Fraction of the samples held out to choose between KAN restarts and formulas.
    generators : sequence of {"sparse", "kan"}
        Where formulas for several columns come from.  ``"sparse"``: sparse regression
        over a library of terms (monomials, simple functions of each column and of pairs
        of columns, their products), rational functions ``P/Q``, square roots,
        reciprocals and quotients ``P/m`` (``m`` a monomial or a root) of such sums, and
        products ``c * prod(f_k(x)**a_k)`` of powers,
        trigonometric factors, differences and sums of columns and functions of
        monomials (``exp(-m*g*h/(k*T))``), in seconds.
        ``"kan"``: the KAN pipeline (training, per-edge regression, separability tests,
        assembly), run only when no sparse formula explains the data to the noise and
        there are at least two training points per spline coefficient of the network
        (else it would interpolate the noise; with ``"kan"`` alone it runs anyway).  All
        candidates compete under one description-length criterion (see
        :mod:`llmlex._multivariate`).
    units : sequence or mapping, optional
        The physical units of the input columns, for dimensional analysis: one entry per
        column, or a mapping from column name (``feature_names_in_``, else ``x0, x1,
        ...``) to units.  Each is text (``"kg*m/s**2"``, ``"m s^-2"``, ``"J/K"``, ``""``
        for a dimensionless column), a mapping ``{"m": 1, "s": -2}`` or the exponents
        over (m, kg, s, A, K, mol, cd).  With ``target_units``, the law is searched as
        ``y = P(x) * f(pi)``, ``P`` a product of powers of the columns with the target's
        units and ``pi`` the dimensionless groups (Buckingham's theorem; fewer variables,
        so a law of many columns becomes findable), and written back in the columns.
        The law must be dimensionally homogeneous in the columns given: a dimensional
        constant (``G``, ``c``, ``k_B``) must be a column.  Ignored without
        ``target_units``.
    target_units : str, mapping or sequence, optional
        The target's units (as each entry of ``units``).

    Attributes
    ----------
    equation_ : str
        The fitted formula for reading: sympy's notation, the columns' names when ``X``
        had them (``feature_names_in_``; else ``x0, x1, ...``), each constant written to
        the digits its error justifies (else to 6 significant digits).
    expression_ : sympy.Expr
        The formula to compute with: variables ``x0, x1, ...``, constants in full.
    params_ : ndarray
        The fitted constants of the formula.
    pareto_front_ : tuple of ParetoPoint
        Simplest-to-most-accurate trade-off of the formulas considered.
    result_ : FitResult or KANSymbolicResult
        The underlying llmlex result (use it with :mod:`llmlex.export` and
        :mod:`llmlex.plots`).
    method_ : {"genetic", "sparse", "kan", "units", "constant"}
        Which path produced the formula (``"sparse"``: sparse regression, linear or
        rational, for several columns; ``"units"``: the units alone fix the law up to a
        constant).
    stats_ : RunStats or None
        Calls, tokens and time of the univariate search (``None`` otherwise).
    n_features_in_ : int
        Number of input columns seen by ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` had them (e.g. a pandas DataFrame).
    dimensional_analysis_ : str or None
        With ``units`` and ``target_units``: the form searched, in the columns' names
        (``"y = q*Ef * f(pi0 = theta, pi1 = B*v/Ef)"``); else ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0.1, 5, 60)[:, None]
    >>> y = 2.5 * np.exp(-0.7 * X[:, 0])
    >>> reg = LLMLExRegressor(random_state=0).fit(X, y)  # doctest: +SKIP
    >>> reg.equation_  # doctest: +SKIP
    '2.5*exp(-0.7*x0)'
    """

    def __init__(
        self,
        client: Any = None,
        *,
        model: str = "openai/gpt-4o",
        population_size: int = 5,
        num_of_generations: int = 3,
        temperature: float = 1.0,
        exit_condition: float | None = None,
        hints: Sequence[str] = (),
        allowed_functions: Sequence[str] | None = None,
        random_state: Any = None,
        progress: bool = True,
        time_budget: float | None = 60.0,
        patience: int | None = None,
        kan_hidden: Sequence[int] = (2,),
        kan_grid: int = 5,
        kan_k: int = 3,
        kan_steps: int = 50,
        kan_restarts: int = 2,
        kan_edges: Literal["search", "polynomial"] = "search",
        kan_simplify: bool = True,
        kan_prune: bool = False,
        test_size: float = 0.2,
        generators: Sequence[str] = ("sparse", "kan"),
        units: Sequence[Any] | Mapping[str, Any] | None = None,
        target_units: Any = None,
    ) -> None:
        self.client = client
        self.model = model
        self.population_size = population_size
        self.num_of_generations = num_of_generations
        self.temperature = temperature
        self.exit_condition = exit_condition
        self.hints = hints
        self.allowed_functions = allowed_functions
        self.random_state = random_state
        self.progress = progress
        self.time_budget = time_budget
        self.patience = patience
        self.kan_hidden = kan_hidden
        self.kan_grid = kan_grid
        self.kan_k = kan_k
        self.kan_steps = kan_steps
        self.kan_restarts = kan_restarts
        self.kan_edges = kan_edges
        self.kan_simplify = kan_simplify
        self.kan_prune = kan_prune
        self.test_size = test_size
        self.generators = generators
        self.units = units
        self.target_units = target_units

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        executor: concurrent.futures.Executor | None = None,
    ) -> LLMLExRegressor:
        """Search for a formula ``y = f(X)``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Inputs; one column runs the univariate search, several the multivariate
            generators (sparse regression, then the KAN pipeline if needed).
        y : array_like of shape (n_samples,)
            Target.
        sample_weight : array_like of shape (n_samples,) or float, optional
            Non-negative weights, as inverse variances up to a common factor: every fit
            to the data minimises ``sum(w * (y - f)**2)``, error bars proportional to
            ``1/sqrt(w)``.  Only ratios of weights matter: equal weights are no weights
            (the fit is the unweighted one), and samples of weight 0 are left out.
            The error bars are ``s / sqrt(w)`` with ``s``, the noise of a sample of
            weight 1, estimated from the data (:func:`llmlex._noise.estimate_noise`, or
            :func:`~llmlex._noise.estimate_noise_nd` for several columns, with the
            weights), so that stop rules, description lengths and chi-squared per
            degree of freedom mean what they do without weights.  Univariate path: the
            parameters' covariance is scaled by the reduced chi-squared
            (``absolute_sigma=False``).  Several columns: the same error bars weight the
            sparse fits, the network's training, the constants' refits and the
            held-out scores (:meth:`llmlex.kan.KANLEX.set_dataset`); the result's
            ``chi2_train`` is ``sum(w * (y - f)**2) / s**2``.
        executor : concurrent.futures.Executor, optional
            KAN path: regress the network's edges there (a process pool, Dask's
            ``client.get_executor()``, :class:`llmlex.batch.RayExecutor`; see
            :func:`llmlex.kan.kan_to_symbolic`), and the one-variable regressions of the
            structure tests (with ``kan_simplify``); the training and assembly stay here.
            The equation is the one found without an executor (unless ``time_budget``
            ends a search sooner or later there).  A fit option rather than a
            parameter, so that :func:`sklearn.base.clone` (which copies parameters)
            never copies an executor.  For worker processes give the estimator a
            :class:`~llmlex.ClientSpec`, not an ``openai`` client.

        Returns
        -------
        LLMLExRegressor
            ``self``, fitted.

        Raises
        ------
        ValueError
            For unusable data (NaN/inf, fewer than 5 samples or 5 of nonzero weight,
            shape mismatch, negative weights; a ``DataError`` for magnitudes beyond
            1e300, or for several columns a target beyond 1e150) or options.
        MissingDependencyError
            With several columns, when torch or pykan is missing.
        """
        X, y = validate_data(
            self, X, y, y_numeric=True, dtype=np.float64, ensure_min_samples=_MIN_SAMPLES
        )
        w = check_sample_weight(sample_weight, y.size, min_positive=_MIN_SAMPLES)
        if w is not None:
            keep = w > 0
            X, y, w = X[keep], y[keep], w[keep]
            if np.all(w == w[0]):  # only ratios of weights matter: equal ones are none
                w = None
        if self.kan_edges not in ("search", "polynomial"):
            raise ValueError(f"kan_edges must be 'search' or 'polynomial', got {self.kan_edges!r}")
        unknown = set(self.generators) - {"sparse", "kan"}
        if unknown or not self.generators or isinstance(self.generators, str):
            raise ValueError(
                f"generators must be a non-empty sequence of 'sparse' and 'kan', "
                f"got {self.generators!r}"
            )
        if not 0.0 < self.test_size < 1.0:
            raise ValueError(f"test_size must be in (0, 1), got {self.test_size!r}")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        names = [f"x{k}" for k in range(X.shape[1])]
        reduction = self._reduction(X)
        given = getattr(self, "feature_names_in_", None)
        self.dimensional_analysis_ = (
            None
            if reduction is None
            else reduction.describe([str(c) for c in given] if given is not None else names)
        )

        if np.ptp(y) == 0.0:
            self._fit_constant(float(y[0]), "constant target")
        elif X.shape[1] == 1 and (reduction is None or reduction.trivial):
            if np.ptp(X[:, 0]) == 0.0:  # a constant input carries no function of x
                mean = float(np.average(y, weights=w))
                self._fit_constant(mean, "constant input: mean of the target")
            else:
                sigma = None if w is None else estimate_noise(X[:, 0], y, weights=w) / np.sqrt(w)
                self._fit_univariate(X[:, 0], y, seed, names[0], sigma)
        else:
            # The generators square y (sums of squares, y**2 as a target): 1e150 at most.
            check_magnitude(y, "y", smallest=1e-150, largest=1e150)
            for k in range(X.shape[1]):
                check_magnitude(X[:, k], f"X[:, {k}]")
            sigma = None if w is None else estimate_noise_nd(X, y, weights=w) / np.sqrt(w)
            self._fit_multivariate(X, y, seed, names, sigma, reduction=reduction, executor=executor)
        return self

    def _reduction(self, X: np.ndarray) -> Reduction | None:
        """The columns' dimensional analysis, when ``units`` and ``target_units`` are set."""
        if self.units is None or self.target_units is None:
            return None
        given = getattr(self, "feature_names_in_", None)
        keys = (
            [str(c) for c in given] if given is not None else [f"x{k}" for k in range(X.shape[1])]
        )
        units = units_by_column(self.units, keys)
        return reduce_dimensions(units, self.target_units, X)

    def _fit_constant(self, value: float, message: str) -> None:
        import sympy

        self.method_ = "constant"
        self.result_ = _constant_result(value, message)
        self.expression_ = sympy.Float(value)
        self.params_ = np.array([value])
        self.stats_ = None
        self._set_equation(nchi2_value=0.0)

    def _fit_univariate(
        self, x: np.ndarray, y: np.ndarray, seed: int, name: str, sigma: np.ndarray | None
    ) -> None:
        run = run_genetic(
            self.client,
            None,
            x,
            y,
            sigma=sigma,
            population_size=self.population_size,
            num_of_generations=self.num_of_generations,
            temperature=self.temperature,
            model=self.model,
            exit_condition=self.exit_condition,
            hints=tuple(self.hints),
            allowed_functions=self.allowed_functions,
            seed=seed,
            progress=self.progress,
            time_budget=self.time_budget,
            # no per-fit clock without a budget: the same data and seed, the same formula
            fit_timeout=None if self.time_budget is None else DEFAULTS.fit_timeout,
            patience=self.patience,
        )
        best = run.best
        self.method_ = "genetic"
        self.result_ = best
        self.expression_ = _univariate_sympy(best, name)
        self.params_ = np.array(best.params, dtype=float)
        self.stats_ = run.stats
        points = [
            ParetoPoint(
                r.complexity,
                r.nchi2,
                str(_univariate_sympy(r, name)),
                description_length=r.description_length,
            )
            for r in run.pareto_front
        ]
        self.pareto_front_ = _front(points)
        try:  # the digits each constant's error justifies
            readable = _univariate_sympy(best, name, display=True)
        except Exception:  # no sympy form in its work bound: the full one
            readable = self.expression_
        self.equation_ = self._readable(readable)

    def _fit_multivariate(
        self,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        names: list[str],
        sigma: np.ndarray | None,
        *,
        reduction: Reduction | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        import time

        import sympy

        from llmlex._kan_sympy import parameterise
        from llmlex._multivariate import (
            Problem,
            choose_formula,
            constant_errors,
            rounded_to_errors,
        )

        t0 = time.perf_counter()
        n = X.shape[0]
        if n >= _MIN_SPLIT:
            order = np.random.default_rng(seed).permutation(n)
            n_test = max(1, round(self.test_size * n))
            test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        else:
            train = test = np.arange(n)
        budget = self.time_budget
        options = self._kan_options()
        sig_train = None if sigma is None else sigma[train]
        sig_test = None if sigma is None else sigma[test]

        def kan(problem: Problem) -> KANSymbolicResult | None:
            n_train = problem.X_train.shape[0]
            needed = points_needed(options, problem.X_train.shape[1])
            if n_train < needed and "sparse" in self.generators:
                log.info(
                    "no KAN: %d training points for a network of %d spline coefficients "
                    "(%d points needed); the sparse-regression formula is kept",
                    n_train,
                    options.coefficients(problem.X_train.shape[1]),
                    needed,
                )
                return None
            if n_train < needed:
                log.warning(
                    "the KAN is trained on %d points for %d spline coefficients: expect it "
                    "to fit the noise",
                    n_train,
                    options.coefficients(problem.X_train.shape[1]),
                )
            left = None if budget is None else max(1.0, budget - (time.perf_counter() - t0))
            try:
                return self._run_kan(
                    problem.X_train,
                    problem.y_train,
                    problem.X_test,
                    problem.y_test,
                    seed,
                    list(problem.names),
                    problem.sigma_train,
                    problem.sigma_test,
                    budget=left,
                    executor=executor,
                )
            except MissingDependencyError as err:
                log.warning("no KAN (%s): the sparse-regression formula is kept", err)
                return None
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:  # pykan can fail inside training (an SVD, a solve)
                if "sparse" not in self.generators:
                    raise
                log.warning(
                    "the KAN failed (%s: %s): the sparse-regression formula is kept",
                    type(err).__name__,
                    err,
                )
                return None

        bar = progress_bar(3, bool(self.progress), "multivariate fit", unit="stage")
        started: list[str] = []

        def stage(name: str) -> None:
            # Called as a stage starts: the count is of the stages finished.
            if bar is not None:
                if started:
                    bar.update(1)
                started.append(name)
                bar.set_postfix_str(name)

        try:
            result = choose_formula(
                X[train],
                y[train],
                X[test],
                y[test],
                names,
                sigma_train=sig_train,
                sigma_test=sig_test,
                kan=kan if "kan" in self.generators else None,
                sparse="sparse" in self.generators,
                reduction=reduction,
                deadline=None if budget is None else t0 + budget,
                progress=stage,
            )
            if bar is not None:  # done, the KAN's stage included when it was not needed
                bar.update(bar.total - bar.n)
                bar.refresh()  # drawn even within tqdm's redraw interval
        finally:
            if bar is not None:
                bar.close()
        self.method_ = result.origin if result.origin in ("kan", "units") else "sparse"
        self.result_ = result
        self.expression_ = result.expression
        self.params_ = parameterise(result.expression)[2]
        self.stats_ = None
        points = [
            ParetoPoint(c.complexity, c.nchi2_test, c.text, c.origin, c.description_length)
            for c in result.candidates
            if c.accepted or not math.isnan(c.description_length)
        ]
        self.pareto_front_ = _front(points)
        variables = [sympy.Symbol(name, real=True) for name in names]
        used = sig_train if sig_train is not None else np.full(train.size, result.noise)
        errors = constant_errors(
            result.expression, variables, X[train], y[train], used, absolute_sigma=False
        )
        self.equation_ = self._readable(rounded_to_errors(result.expression, errors))
        log.info(
            "%s formula %s (held-out nchi2 %.3g)", result.origin, self.equation_, result.nchi2_test
        )

    def _run_kan(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        seed: int,
        names: list[str],
        sig_train: np.ndarray | None,
        sig_test: np.ndarray | None,
        *,
        budget: float | None,
        executor: concurrent.futures.Executor | None = None,
    ) -> KANSymbolicResult:
        """Train the KAN and regress it (:func:`llmlex._estimator_kan.run_kan`)."""
        return run_kan(
            self._kan_options(),
            X_train,
            y_train,
            X_test,
            y_test,
            seed,
            names,
            sig_train,
            sig_test,
            budget=budget,
            executor=executor,
        )

    def _kan_options(self) -> KANOptions:
        return KANOptions(
            client=self.client,
            model=self.model,
            hidden=tuple(int(h) for h in self.kan_hidden),
            grid=int(self.kan_grid),
            k=int(self.kan_k),
            steps=int(self.kan_steps),
            restarts=int(self.kan_restarts),
            search=self.kan_edges == "search",
            simplify=bool(self.kan_simplify),
            prune=bool(self.kan_prune),
            population=int(self.population_size),
            generations=int(self.num_of_generations),
            temperature=float(self.temperature),
            patience=self.patience,
            progress=bool(self.progress),
        )

    def _set_equation(self, *, nchi2_value: float) -> None:
        self.equation_ = self._readable(self.expression_)
        self.pareto_front_ = (ParetoPoint(1, nchi2_value, self.equation_),)

    def _readable(self, expr: Any) -> str:
        """``expr`` as text: floats to 6 significant digits (shorter ones stay as they
        are), ``x<k>`` named by ``feature_names_in_`` when ``X`` had column names."""
        import sympy

        short = {f: sympy.Float(f"{float(f):.6g}") for f in expr.atoms(sympy.Float)}
        expr = expr.xreplace(short)
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            expr = expr.xreplace(
                {sympy.Symbol(f"x{k}", real=True): sympy.Symbol(str(n), real=True)
                 for k, n in enumerate(names)}
            )  # fmt: skip
        return str(expr)

    # ------------------------------------------------------------------ predict

    def predict(self, X: Any) -> np.ndarray:
        """Evaluate the fitted formula.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Inputs with the columns seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predictions (NaN where the formula is undefined).
        """
        check_is_fitted(self, "result_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        n = X.shape[0]
        with np.errstate(all="ignore"):
            if isinstance(self.result_, FitResult):  # one column (or a constant)
                out = self.result_.predict(X[:, 0])
            else:
                out = self.result_.predict(X)
        return np.array(np.broadcast_to(np.asarray(out, dtype=float), (n,)))

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        # A FitResult holds its compiled ansatz (closures, not picklable); it is rebuilt
        # from the ansatz text on first use after loading.
        state = super().__getstate__()
        result = state.get("result_")
        if isinstance(result, FitResult) and result.compiled is not None:
            state["result_"] = replace(result, compiled=None)
        return state
