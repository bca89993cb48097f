"""KANLEX: train a KAN on data, then turn it into formulas (the reference library's class).

:meth:`KANLEX.train_kan` trains several seeds within a time budget and keeps the best by
held-out loss (optionally pruned); :meth:`KANLEX.get_symbolic` runs the separability test
on the trained network first, regresses the edges (:func:`llmlex._kan_edges.kan_to_symbolic`)
and assembles, simplifies and refits the formulas
(:func:`llmlex._kan_select.symbolic_from_edges`), returning what the reference library's
``get_symbolic`` returns.  Creating, training and running the network go through
:mod:`llmlex._kan_torch`.

Error bars of the targets (:meth:`KANLEX.set_dataset`'s ``sigma_train`` and
``sigma_test``) weight everything fitted to the data: the network's training loss, the
refits of the formula's constants, and the held-out score candidates are judged by.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex import _kan_torch as kt
from llmlex._kan_edges import check_reference_options, kan_to_symbolic, search_size
from llmlex._kan_results import KANSymbolicResult
from llmlex._kan_select import check_error_bars, separable_forms, symbolic_from_edges
from llmlex._kan_types import EdgeRegressor, KANEdges, TrainingReport, TrainingRun
from llmlex._kan_units import UnitsFrame, frame_for
from llmlex._kanlex_ref import ReferenceMethods
from llmlex._progress import progress_bar
from llmlex.exceptions import UnitsError
from llmlex.fit import nchi2

if TYPE_CHECKING:
    import os

    import sympy

__all__ = ["KANLEX", "TrainingReport", "TrainingRun"]

# One logger for the KAN door: callers tune "llmlex.kan" (the examples do).
log = logging.getLogger("llmlex.kan")


class KANLEX(ReferenceMethods):
    """Train a KAN on data and turn it into a formula with llmlex.

    Parameters
    ----------
    client : openai client or None
        LLM client; ``None`` runs everything offline.
    width : list
        The KAN's shape, e.g. ``[2, 1, 1]`` or with multiplication nodes
        ``[[2, 0], [1, 1], [1, 0]]`` (pykan's convention).
    grid, k : int
        Spline grid intervals and order.
    seed : int
        Base seed of the training restarts and of everything random afterwards.
    device : str
        torch device.
    model : kan.MultKAN, optional
        An already trained network (then ``width`` is taken from it).
    variable_names : sequence of str, optional
        Names of the inputs (default ``x0, x1, ...``).
    **kan_options
        Passed to ``kan.KAN`` (e.g. ``mult_arity``, ``symbolic_enabled``, ``base_fun``).

    Notes
    -----
    The data live in :attr:`dataset`, pykan's dictionary (``train_input``,
    ``train_label``, ``test_input``, ``test_label``).  Error bars of the targets, given
    to :meth:`set_dataset` (or put in a dictionary passed to :meth:`train_kan` under
    ``train_sigma`` and ``test_sigma``: 1-D float arrays), make every fit to the data a
    weighted one: the network is trained on ``mean(w * (f - y)**2)`` with ``w``
    proportional to ``1/sigma**2``, the formula's constants are refitted by minimising
    the chi-squared, candidates are judged by their held-out chi-squared per point, and
    each :class:`~llmlex.kan.KANSymbolicResult` reports ``chi2_train / dof_train``
    (about 1 when the formula fits to the error bars).  The edge regression itself
    (:func:`~llmlex.kan.kan_to_symbolic`) fits the network's own curves, not the data,
    and takes no error bars.

    Examples
    --------
    >>> kl = KANLEX(None, [2, 1, 1], grid=5, k=3, seed=0)  # doctest: +SKIP
    >>> kl.create_dataset(lambda x: torch.exp(torch.sin(torch.pi * x[:, [0]]) + x[:, [1]] ** 2),
    ...                   n_var=2)  # doctest: +SKIP
    >>> kl.train_kan(steps=50)  # doctest: +SKIP
    >>> exprs, scores, results, candidates = kl.get_symbolic(client=None)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any = None,
        width: Sequence[Any] | None = None,
        grid: int = 5,
        k: int = 3,
        seed: int = 0,
        *,
        device: str = "cpu",
        model: Any = None,
        variable_names: Sequence[str] | None = None,
        log_level: int | None = None,
        **kan_options: Any,
    ) -> None:
        if model is None and width is None:
            raise ValueError("give a KAN shape (width) or a trained model")
        if log_level is not None:
            # The reference sets its own logger's level; llmlex leaves logging to the
            # application ("llmlex.kan" is the logger to tune).
            log.debug("log_level=%r accepted for compatibility; set it on 'llmlex.kan'", log_level)
        self.client = client
        self.width = [list(w) if isinstance(w, (list, tuple)) else int(w) for w in width or []]
        self.grid = grid
        self.k = k
        self.seed = int(seed)
        self.device = device
        self.variable_names = list(variable_names) if variable_names is not None else None
        self.kan_options = {"symbolic_enabled": False, **kan_options}
        # pykan writes checkpoints (and model.copy() writes to the cwd): give it a private
        # directory that disappears with this object.
        self.ckpt_dir = tempfile.mkdtemp(prefix="llmlex-kan-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.ckpt_dir, ignore_errors=True)
        self.model = model
        #: The network before pruning (the reference's ``raw_model``).
        self.raw_model = model
        self.dataset: dict[str, Any] | None = None
        #: The function :meth:`create_dataset` sampled (None for :meth:`set_dataset`).
        self.f: Callable[[Any], Any] | None = None
        self.training: TrainingReport | None = None
        #: pykan's history of the chosen network's last ``fit`` (``train_loss``, ...).
        self.training_history: dict[str, Any] | None = None
        self.final_train_loss: float | None = None
        self.edges: KANEdges | None = None
        self.results: list[KANSymbolicResult] | None = None
        #: The dimensionless frame set by ``set_dataset(units=..., target_units=...)``.
        self.units_frame: UnitsFrame | None = None
        # The reference's views of the results, set by get_symbolic.
        self.symbolic_expressions: dict[Any, list[dict[str, Any]]] | None = None
        self.expression_tree: dict[str, Any] | None = None
        self.results_all_dicts: list[dict[str, Any]] | None = None

    def _new_model(self, seed: int) -> Any:
        return kt.new_model(
            self.width, self.grid, self.k, seed, self.device, self.ckpt_dir, self.kan_options
        )

    def create_dataset(
        self,
        f: Callable[[Any], Any],
        ranges: Sequence[float] | Sequence[Sequence[float]] = (-math.pi, math.pi),
        n_var: int = 1,
        train_num: int = 10000,
        test_num: int = 1000,
        seed: int | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Sample a dataset from ``f`` (a torch function of ``x[:, k]``) with pykan.

        The reference library's order and defaults: ``create_dataset(f, (-3, 3), 2)`` is
        ``ranges=(-3, 3), n_var=2`` (pykan's own function takes ``n_var`` second).

        Returns pykan's dictionary (``train_input``, ``train_label``, ``test_input``,
        ``test_label``) and keeps it (and ``f``) for :meth:`train_kan`.

        Raises
        ------
        TypeError
            If ``ranges`` is a number: pykan's order (``f, n_var, ...``) was meant.
        """
        if np.ndim(ranges) == 0:
            raise TypeError(
                f"create_dataset(f, ranges, n_var, ...): ranges must be (low, high) or one "
                f"pair per variable, got {ranges!r} -- pass n_var by keyword "
                "(pykan's create_dataset takes n_var second, this method ranges)"
            )
        self.f = f
        rng_list = [list(r) for r in ranges] if np.ndim(ranges) == 2 else list(ranges)
        self.dataset = kt.create_dataset(
            f,
            n_var=n_var,
            ranges=rng_list,
            train_num=train_num,
            test_num=test_num,
            device=self.device,
            seed=self.seed if seed is None else int(seed),
            **options,
        )
        return self.dataset

    def set_dataset(
        self,
        X_train: Any,
        y_train: Any,
        X_test: Any,
        y_test: Any,
        *,
        sigma_train: Any = None,
        sigma_test: Any = None,
        units: Sequence[Any] | Mapping[str, Any] | None = None,
        target_units: Any = None,
    ) -> dict[str, Any]:
        """Use numpy data (``X`` of shape ``(n, n_var)``) instead of :meth:`create_dataset`.

        Parameters
        ----------
        X_train, y_train, X_test, y_test : array_like
            Training and held-out inputs ``(n, n_var)`` and targets ``(n,)`` or
            ``(n, n_out)``: the network is trained on the first, candidate formulas are
            judged on the second.
        sigma_train, sigma_test : float or array_like, optional
            Error bars (standard deviations) of ``y_train`` and ``y_test``: a scalar or
            one per sample (shared by all outputs), positive and finite; both or
            neither.  With them the training loss, the refits and the held-out scores
            are weighted (see the class notes), and the results report the
            chi-squared per degree of freedom.  They are absolute: ``chi2_train /
            dof_train`` near 1 says the formula fits to the noise they describe.
        units, target_units : optional
            The columns' physical units (one entry per column, or a mapping from the
            ``variable_names`` to units; each as :class:`~llmlex.LLMLExRegressor`'s
            ``units``) and the target's.  With both, the law is sought as ``y = P(x) *
            f(pi)`` (Buckingham's theorem, :mod:`llmlex._dimensions`): the network's
            inputs become the dimensionless groups ``pi0, pi1, ...`` (its first width
            is set to their number) and its target ``y / P(x)``; :meth:`get_symbolic`
            returns formulas of the columns, scored on the columns' data.  The edges
            and the expression tree stay in the groups; :attr:`units_frame` holds the
            reduction (``units_frame.describe()``).  Set them before :meth:`train_kan`.

        Returns
        -------
        dict
            pykan's dataset dictionary (kept for :meth:`train_kan`); the error bars,
            when given, under ``train_sigma`` and ``test_sigma``.

        Raises
        ------
        DataError
            If the error bars are unusable: only one given, wrong length, zero,
            negative or not finite; or the units' prefactor is zero on the data.
        UnitsError
            If only one of ``units`` and ``target_units`` is given, or they cannot be
            read, or leave no dimensionless group.
        """
        n_train, n_test = kt.as_2d(y_train).shape[0], kt.as_2d(y_test).shape[0]
        sig_train, sig_test = check_error_bars(sigma_train, sigma_test, n_train, n_test)
        old = self.units_frame  # an earlier call with units replaced the columns' names
        columns = list(old.columns) if old is not None else self.variable_names
        frame = None
        if units is not None or target_units is not None:
            frame, data = self._dimensionless(
                units, target_units, columns, X_train, y_train, X_test, y_test, sig_train, sig_test
            )
            if frame is not None:
                X_train, y_train, X_test, y_test, sig_train, sig_test = data
        ds = kt.dataset_from_arrays(X_train, y_train, X_test, y_test, self.device)
        # Nothing above changed this object: a call that raises leaves it as it was.
        self.units_frame = frame
        if frame is not None:
            self.variable_names = list(frame.groups)
            self._set_inputs(len(frame.groups))
            log.info("dimensional analysis: %s", frame.describe())
        elif old is not None:  # a dataset set before with units: back to the columns
            self.variable_names = columns
            self._set_inputs(len(old.columns))
        if sig_train is not None:
            ds["train_sigma"], ds["test_sigma"] = sig_train, sig_test
        self.dataset = ds
        return self.dataset

    def _set_inputs(self, n: int) -> None:
        first = self.width[0]
        self.width[0] = [n, first[1]] if isinstance(first, list) else n

    def _dimensionless(
        self,
        units: Any,
        target_units: Any,
        columns: Sequence[str] | None,
        X_train: Any,
        y_train: Any,
        X_test: Any,
        y_test: Any,
        sig_train: np.ndarray | None,
        sig_test: np.ndarray | None,
    ) -> tuple[UnitsFrame | None, tuple[Any, ...]]:
        """The frame of the groups and the data in it (see :meth:`set_dataset`)."""
        if units is None or target_units is None:
            raise UnitsError("give both units= and target_units=")
        if self.model is not None:
            raise ValueError(
                "units= make the network's inputs the dimensionless groups: set the "
                "dataset before the network is trained (this KANLEX already has one)"
            )
        X, Xt = (np.asarray(kt.as_2d(a), dtype=float) for a in (X_train, X_test))
        Y, Yt = (np.asarray(kt.as_2d(a), dtype=float) for a in (y_train, y_test))
        columns = list(columns or [f"x{k}" for k in range(X.shape[1])])
        if len(columns) != X.shape[1]:
            raise ValueError(f"{len(columns)} variable_names for {X.shape[1]} columns")
        frame = frame_for(units, target_units, columns, X, Y, Xt, Yt)
        if frame is None:
            return None, ()
        red = frame.reduction
        f, ft = red.factor(X), red.factor(Xt)
        return frame, (
            red.inputs(X),
            Y / f[:, None],
            red.inputs(Xt),
            Yt / ft[:, None],
            None if sig_train is None else sig_train / np.abs(f),
            None if sig_test is None else sig_test / np.abs(ft),
        )

    def _error_bars(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The dataset's error bars ``(train, test)``, validated, or ``(None, None)``."""
        ds = self.dataset
        assert ds is not None
        return check_error_bars(
            ds.get("train_sigma"),
            ds.get("test_sigma"),
            kt.as_2d(ds["train_label"]).shape[0],
            kt.as_2d(ds["test_label"]).shape[0],
        )

    def _loss_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Training and test weights ``1/sigma**2``, each normalised to mean 1, or None."""
        sig_train, sig_test = self._error_bars()
        if sig_train is None or sig_test is None:
            return None
        out = []
        for sig in (sig_train, sig_test):
            w = (np.min(sig) / sig) ** 2  # in (0, 1]: no overflow for tiny error bars
            out.append(w / np.mean(w))
        return out[0], out[1]

    def train_kan(
        self,
        dataset: dict[str, Any] | None = None,
        opt: str = "LBFGS",
        steps: int = 100,
        prune: bool = False,
        node_th: float = 1e-2,
        edge_th: float = 3e-2,
        *,
        lamb: float = 0.0,
        n_restarts: int = 3,
        seeds: Sequence[int] | None = None,
        time_budget: float | None = None,
        warmup: int = 100,
        warmup_lr: float = 0.01,
        verbose: int = 0,
        progress: bool = True,
        **fit_options: Any,
    ) -> TrainingReport:
        """Train from several seeds within a time budget; keep the best by test loss.

        The reference library's positional order (``dataset, opt, steps, prune,
        node_th, edge_th``) and return value (the final training loss).  KAN training
        is seed-sensitive (some seeds stall far above the others), so
        restarts are cheap insurance.  A restart is not started when the budget would
        likely be exceeded (the first always runs, and the next ones until one has not
        failed: a restart that fails inside pykan is recorded and passed over).

        Parameters
        ----------
        dataset : dict, optional
            pykan-style dataset (default: the one from :meth:`create_dataset` or
            :meth:`set_dataset`); error bars under ``train_sigma`` and ``test_sigma``
            weight the loss.
        steps, opt, lamb : int, str, float
            Passed to ``model.fit``.
        prune : bool
            Prune the best network (``node_th``, ``edge_th``), retrain it for
            ``steps // 2`` steps, and keep it unless its test loss is more than twice worse.
        n_restarts : int
            Restarts (seeds ``seed, seed+1, ...``) unless ``seeds`` is given.
        time_budget : float, optional
            Wall-time budget in seconds for all restarts.
        warmup, warmup_lr : int, float
            Adam steps (and their learning rate) before an LBFGS run.  LBFGS from a
            random start often stalls (on ``exp(sin(pi*x0) + x1**2)`` with a [2, 1, 1]
            KAN, 8 of 8 seeds stalled at test RMSE ~0.57 after 30 steps); a short Adam
            warm-up got 3 of 3 below 0.05 in the same time.
        verbose : int
            0 silences pykan's output.
        progress : bool
            Show a progress bar of the restarts (with the best held-out RMSE so far).
        **fit_options
            Other ``model.fit`` options.

        Returns
        -------
        float
            The chosen network's final training loss (RMSE), as the reference returns;
            also in :attr:`final_train_loss`.  The restarts, the chosen seed and the
            held-out loss are in :attr:`training` (a :class:`TrainingReport`), pykan's
            history of the chosen network's training in :attr:`training_history`, the
            network before pruning in :attr:`raw_model`.

        Raises
        ------
        DataError
            If the dataset's error bars are unusable.
        """
        kt.import_kan()
        if dataset is not None:
            self.dataset = dataset
        if self.dataset is None:
            raise ValueError("no dataset: call create_dataset first or pass one")
        if not self.width:
            raise ValueError("this KANLEX was built from a model: nothing to train")
        ds = self.dataset
        weights = self._loss_weights()
        w_test = None if weights is None else weights[1]
        seed_list = list(seeds) if seeds is not None else [self.seed + r for r in range(n_restarts)]
        t0 = time.perf_counter()
        runs: list[TrainingRun] = []
        best_model, best_loss, best_seed = None, math.inf, seed_list[0]
        best_history: dict[str, Any] = {}
        stop = "all restarts run"
        bar = progress_bar(len(seed_list), progress, "KAN training", unit="restart")
        try:
            for s in seed_list:
                elapsed = time.perf_counter() - t0
                if best_model is not None and time_budget is not None:
                    mean = elapsed / len(runs)
                    if elapsed + mean > time_budget:
                        stop = "time budget"
                        break
                t = time.perf_counter()
                model = self._new_model(s)
                warm = {"warmup": warmup, "warmup_lr": warmup_lr, **fit_options}
                try:
                    train_loss, history = kt.train(
                        model, ds, s, steps, opt, lamb, verbose, warm, weights=weights
                    )
                except (KeyboardInterrupt, SystemExit, MemoryError):
                    raise
                except Exception as err:  # pykan's own failures (curve2coef) end one restart
                    failed = f"{type(err).__name__}: {err}"
                    log.warning("restart seed %d failed in pykan (%s)", s, failed)
                    runs.append(TrainingRun(s, math.inf, math.inf, time.perf_counter() - t, failed))
                    if bar is not None:
                        bar.update(1)
                    if len(runs) == len(seed_list) and best_model is None:
                        raise  # every restart failed: nothing to keep
                    continue
                test_loss = kt.holdout_loss(model, ds, w_test)
                runs.append(TrainingRun(s, train_loss, test_loss, time.perf_counter() - t))
                log.info(
                    "restart seed %d: train RMSE %.3g, test RMSE %.3g", s, train_loss, test_loss
                )
                if test_loss < best_loss or best_model is None:
                    best_model, best_loss, best_seed = model, test_loss, s
                    best_history = history
                if bar is not None:
                    bar.set_postfix_str(f"best test RMSE {best_loss:.3g}")
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        pruned = False
        self.raw_model = best_model
        if prune and best_model is not None:
            try:
                candidate = kt.prune(best_model, ds, node_th, edge_th, verbose)
                _, pruned_history = kt.train(
                    candidate,
                    ds,
                    best_seed,
                    max(1, steps // 2),
                    opt,
                    0.0,
                    verbose,
                    fit_options,
                    weights=weights,
                )
                pruned_loss = kt.holdout_loss(candidate, ds, w_test)
            except (KeyboardInterrupt, SystemExit, MemoryError):
                raise
            except Exception as err:  # pykan's failures: the unpruned network stands
                log.warning("pruning failed in pykan (%s: %s): not used", type(err).__name__, err)
                pruned_loss = math.inf
            if pruned_loss <= 2.0 * best_loss:
                best_model, best_loss, pruned = candidate, pruned_loss, True
                best_history = pruned_history
            else:
                log.info("pruned network kept worse test loss (%.3g): not used", pruned_loss)
        self.model = best_model
        self.training = TrainingReport(
            runs=tuple(runs),
            best_seed=best_seed,
            best_test_loss=best_loss,
            pruned=pruned,
            time=time.perf_counter() - t0,
            stop_reason=stop,
        )
        self.training_history = best_history
        losses = best_history.get("train_loss") or [math.nan]
        self.final_train_loss = float(losses[-1])
        return self.final_train_loss

    def _kan_level(self) -> float:
        """The network's own nchi2 on its training data, as the edges' exit condition.

        Edge formulas better than the network itself only fit its splines' wiggles.
        Clipped to [1e-10, 1e-3].
        """
        ds = self.dataset
        assert ds is not None and self.model is not None
        y = kt.as_2d(ds["train_label"])
        pred = kt.network_output(self.model, kt.as_2d(ds["train_input"]))
        level = max(nchi2(y[:, o], pred[:, o]) for o in range(y.shape[1]))
        return float(np.clip(level, 1e-10, 1e-3)) if math.isfinite(level) else 1e-3

    def _separable_first(
        self,
        seed: int | None,
        time_budget: float | None,
        executor: concurrent.futures.Executor | None = None,
    ) -> tuple[list[list[tuple[str, sympy.Expr]]], list[bool]]:
        """Separable candidates of each output, and whether one beats the network.

        "Beats" means: refitted on the training data, its held-out score (nchi2, or with
        error bars chi2 per point) is at most the network's own.  With an ``executor``
        the structure tests' one-variable regressions run there (the network stays here).
        """
        import sympy

        from llmlex._kan_sympy import fit_constants, holdout_score, parameterise, selection_score

        ds = self.dataset
        X, Xt = kt.as_2d(ds["train_input"]), kt.as_2d(ds["test_input"])
        Y, Yt = kt.as_2d(ds["train_label"]), kt.as_2d(ds["test_label"])
        names = self.variable_names or [f"x{k}" for k in range(X.shape[1])]
        variables = [sympy.Symbol(n, real=True) for n in names]
        kan_test = kt.network_output(self.model, Xt)
        sig, sig_t = self._error_bars()
        cands, beats = [], []
        for o in range(Y.shape[1]):
            found = separable_forms(
                self.model,
                X,
                variables,
                o,
                Y[:, o],
                seed=seed,
                time_budget=time_budget,
                executor=executor,
            )
            level = selection_score(Yt[:, o], kan_test[:, o], sig_t)
            ok = False
            for _, expr in found:
                template, syms, p0 = parameterise(expr)
                fit = fit_constants(template, variables, syms, p0, X, Y[:, o], sigma=sig)
                ok = ok or holdout_score(fit.expression, variables, Xt, Yt[:, o], sig_t) <= level
            cands.append(found)
            beats.append(ok)
        return cands, beats

    def get_symbolic(
        self,
        client: Any = None,
        population: int | None = None,
        generations: int | None = None,
        temperature: float = 0.1,
        gpt_model: str = "openai/gpt-4o",
        exit_condition: float | None = None,
        verbose: int = 1,
        use_async: bool = True,
        plot_fit: bool = False,
        plot_parents: bool = False,
        demonstrate_parent_plotting: bool = False,
        *,
        population_size: int | None = None,
        num_of_generations: int | None = None,
        tolerance: float = 0.1,
        simplify_timeout: float | None = 10.0,
        snap_time: float | None = 30.0,
        separable: bool = True,
        seed: int | None = None,
        regressor: EdgeRegressor | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = True,
        edge_time_budget: float | None = None,
        separable_time: float | None = 30.0,
        cache: Any = None,
        executor: concurrent.futures.Executor | None = None,
        time_budget: float | None = None,
        progress: bool = True,
        **reference_options: Any,
    ) -> tuple[list[str], list[float], list[dict[str, Any]], list[list[dict[str, Any]]]]:
        """Formulas of the trained KAN: edges, exact assembly, safe simplification, refit.

        Returns, as the reference library does, ``best_expressions`` (one formula per
        output, as numpy text in ``x0, x1, ...``, which a notebook turns into a function
        of ``x0, x1`` with ``np`` in scope, as it did there), ``best_chi_squareds``
        (their held-out nchi2),
        ``results_dicts`` (one dict per output with the reference's nine keys --
        ``raw_expression``, ``raw_n_chi_squared``, ``final_refitted_expression``,
        ``n_chi_squared_refitted``, ``final_LLM_expression``,
        ``n_chi_squared_LLM_final``, ``best_expression``, ``best_n_chi_squared``,
        ``best_fit_type`` -- and ``"result"``, the :class:`KANSymbolicResult` with the
        sympy formula) and ``all_results_sorted`` (per output, every candidate as a
        dict, best nchi2 first).  The results stay on ``self.results`` (sympy) and the
        edges on ``self.edges``; ``self.results_all_dicts`` (the third element),
        ``self.symbolic_expressions`` and ``self.expression_tree`` are the reference's
        views.  ``plot_*`` options are accepted for compatibility; no plots are drawn
        (see :meth:`plot_results`).

        With error bars in the dataset (:meth:`set_dataset`), the refits minimise the
        chi-squared, candidates are judged by their held-out chi-squared per point (each
        candidate's dict then also holds it as ``"reduced_chi2"``), and every result
        reports ``chi2_train``, ``dof_train`` and ``reduced_chi2``.

        ``population`` and ``generations`` (default 5 and 2) size each edge's genetic
        search; ``population_size`` and ``num_of_generations`` (the names of
        :func:`llmlex.run_genetic`) are keyword aliases, and giving both spellings of one
        setting is a ``TypeError``.

        ``exit_condition`` defaults to the network's own nchi2 on its training data
        (clipped to [1e-10, 1e-3]): an edge formula closer to the spline than the network
        is to the data fits the spline's wiggles, so the simplest formula at that level is
        taken.  ``tolerance``, ``simplify_timeout``, ``snap_time``, ``separable``: see
        :func:`symbolic_from_edges`; ``regressor``: see :func:`kan_to_symbolic`.

        With ``separable`` (the default) the network's separability test runs first: if a
        product or sum of one-variable formulas fits the held-out data better than the
        network itself, the edges are fitted by the library of simple forms only (no
        search, no LLM call) and the sweep of simpler edge assemblies is skipped.

        ``separable_time``: seconds the structure tests and their one-variable searches
        may take (per output).  ``simplify_timeout``, ``snap_time`` and ``separable_time``
        may each be ``None``: that step is then bounded by the work it does (Python calls,
        refits, generations) and not by the clock, so that the same data and seed give
        the same formula under any load.

        ``edge_time_budget``: seconds each edge's searches may take (``None``: no limit;
        a limit makes the result depend on the machine's speed).

        ``time_budget``: seconds the whole call may take.  The structure tests and the
        edges keep their own limits (above); the assembly's refits and snapping get what
        is left (at least a second) and stop there at their best point so far (see
        :func:`symbolic_from_edges`).  ``None`` (the default): bounded by work only.

        ``cache``: an on-disk reply cache for every LLM call (edges and simplification).

        ``progress``: show a progress bar of the stages (structure tests, edges,
        assembly) and one of the edges while they are regressed.

        ``executor``: regress the edges on this :class:`concurrent.futures.Executor` (a
        process pool, Dask's ``client.get_executor()``, :class:`llmlex.batch.RayExecutor`)
        instead of threads here (see :func:`kan_to_symbolic`), and the one-variable
        regressions of the structure tests too (each travels as the points of its slice
        of the network; see :func:`llmlex._separable.decompose`).  The network's
        training, the structure tests' evaluations of it and the assembly stay in this
        process; the formulas are those found without an executor.

        ``checkpoint`` (a JSON file) and ``resume``: see :func:`kan_to_symbolic`.  Every
        edge is recorded as soon as it is regressed; calling again after an interruption
        (a kernel restart, ``kill -9``) regresses only the edges not recorded, so no LLM
        call already made for an edge is paid for twice.
        """
        check_reference_options(reference_options, "get_symbolic")
        # The reference's names of two settings of the simplification.
        if "timeout_simplify" in reference_options:
            simplify_timeout = float(reference_options["timeout_simplify"])
        simplify_model = reference_options.get("simplification_gpt_model") or gpt_model
        population, generations = search_size(
            population, generations, population_size, num_of_generations, "get_symbolic", (5, 2)
        )
        del plot_fit, plot_parents, demonstrate_parent_plotting  # accepted, not drawn
        if self.model is None:
            raise ValueError("no trained model: call train_kan first")
        if self.dataset is None:
            raise ValueError("no dataset: call create_dataset or set_dataset first")
        sigma_train, sigma_test = self._error_bars()
        t_start = time.perf_counter()
        client = client if client is not None else self.client
        seed = self.seed if seed is None else seed
        ds = self.dataset
        if exit_condition is None:
            exit_condition = self._kan_level()
        bar = progress_bar(2 + bool(separable), progress, "KAN formula", unit="stage")

        def stage(name: str) -> None:
            if bar is not None:
                bar.set_postfix_str(name)
                bar.refresh()

        def done() -> None:
            if bar is not None:
                bar.update(1)

        try:
            sep = None
            search = True
            if separable:
                # The separability test needs only the network: run it first, and if its
                # formulas already fit the held-out data better than the network does,
                # the edges need no search (their formulas would only approximate it).
                stage("structure tests")
                sep, beats = self._separable_first(seed, separable_time, executor)
                search = not all(beats)
                if not search:
                    log.info("separable forms beat the network: edges fitted by the library only")
                done()
            stage("edges")
            self.edges = kan_to_symbolic(
                self.model,
                client,
                gpt_model=gpt_model,
                exit_condition=exit_condition,
                population=population,
                generations=generations,
                temperature=temperature,
                use_async=use_async,
                x=kt.as_2d(ds["train_input"]),
                y=kt.as_2d(ds["train_label"]),
                seed=seed,
                regressor=regressor,
                verbose=verbose,
                checkpoint=checkpoint,
                resume=resume,
                search=search,
                edge_time_budget=edge_time_budget,
                cache=cache,
                executor=executor,
                progress=progress,
            )
            done()
            stage("assembly")
            self.results = symbolic_from_edges(
                self.model,
                self.edges,
                ds["train_input"],
                ds["train_label"],
                ds["test_input"],
                ds["test_label"],
                variable_names=self.variable_names,
                client=client,
                gpt_model=simplify_model,
                tolerance=tolerance,
                simplify_timeout=simplify_timeout,
                snap_time=snap_time,
                separable=separable,
                separable_candidates=sep,
                seed=seed,
                cache=cache,
                sigma_train=sigma_train,
                sigma_test=sigma_test,
                time_budget=(
                    None
                    if time_budget is None
                    else max(1.0, time_budget - (time.perf_counter() - t_start))
                ),
            )
            if self.units_frame is not None:  # formulas of the groups -> of the columns
                self.results = [self.units_frame.lift(r) for r in self.results]
            done()
        finally:
            if bar is not None:
                bar.close()
        if verbose:
            for r in self.results:
                log.info("output %d: %s (held-out nchi2 %.3g)", r.output, r.text, r.nchi2_test)
                if sigma_train is not None:
                    log.info(
                        "output %d: chi2/dof %.3g on the training data", r.output, r.reduced_chi2
                    )
        return self._reference_views()
