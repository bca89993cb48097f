"""The reference library's views of KANLEX's results, and its remaining methods.

Code written for the reference library reads :meth:`KANLEX.get_symbolic`'s results as
numpy text (a notebook prefixes ``"lambda x0, x1: "`` and evaluates it itself), as
per-output dicts with its nine keys (``raw_expression``, ``best_expression``,
``best_fit_type``, ...), and as per-output lists of candidate dicts; it calls
``build_expression_tree``, ``optimise_expressions``, ``plot_results`` and
``run_complete_pipeline``.  This module
builds those views from llmlex's own results (:class:`~llmlex.kan.KANSymbolicResult`,
:class:`~llmlex.kan.KANEdges`) and holds those methods in :class:`ReferenceMethods`, a
base class of :class:`~llmlex.kan.KANLEX`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex import _kan_torch as kt
from llmlex._kan_results import Candidate, KANSymbolicResult
from llmlex._kan_select import symbolic_from_edges

if TYPE_CHECKING:
    from llmlex._kan_types import KANEdges

__all__ = [
    "ReferenceMethods",
    "all_results_dicts",
    "numpy_text",
    "reference_result_dict",
]

log = logging.getLogger("llmlex.kan")

#: The reference's fit type of each candidate origin of llmlex.
_FIT_TYPE = {"raw": "raw", "llm": "LLMsimplified"}


def numpy_text(text: str) -> str:
    """llmlex's formula text with ``np.`` for ``numpy.`` (the reference's spelling)."""
    return re.sub(r"\bnumpy\.", "np.", text)


def _fit_type(c: Candidate) -> str:
    return _FIT_TYPE.get(c.origin, "rawrefitted")


def _best(cands: Sequence[Candidate], kinds: set[str]) -> Candidate | None:
    found = [c for c in cands if _fit_type(c) in kinds and math.isfinite(c.nchi2_test)]
    return min(found, key=lambda c: c.nchi2_test, default=None)


def reference_result_dict(r: KANSymbolicResult) -> dict[str, Any]:
    """The reference's per-output dict (its nine keys) for one result.

    ``raw_*`` is the assembled formula with the network's constants, ``final_refitted_*``
    the best simplified and refitted one, ``final_LLM_*`` the best one a language model
    proposed (None without a client), ``best_*`` the formula llmlex chose (its held-out
    nchi2), and ``best_fit_type`` which of the three it is.
    """
    from llmlex._symbolic import sympy_to_text  # imports sympy

    raw = next((c for c in r.candidates if c.origin == "raw"), None)
    refit = _best(r.candidates, {"rawrefitted"})
    llm = _best(r.candidates, {"LLMsimplified"})
    chosen = next((c for c in r.candidates if c.text == r.text and c.origin != "final"), None)
    return {
        "raw_expression": numpy_text(sympy_to_text(r.raw_expression)),
        "raw_n_chi_squared": raw.nchi2_test if raw is not None else math.nan,
        "final_refitted_expression": None if refit is None else numpy_text(refit.text),
        "n_chi_squared_refitted": math.nan if refit is None else refit.nchi2_test,
        "final_LLM_expression": None if llm is None else numpy_text(llm.text),
        "n_chi_squared_LLM_final": math.nan if llm is None else llm.nchi2_test,
        "best_expression": numpy_text(r.text),
        "best_n_chi_squared": r.nchi2_test,
        "best_fit_type": "rawrefitted" if chosen is None else _fit_type(chosen),
    }


def all_results_dicts(r: KANSymbolicResult) -> list[dict[str, Any]]:
    """Every candidate of one output as the reference's dicts, best (lowest nchi2) first;
    llmlex's own keys (``origin``, ``complexity``, ``accepted``, ``reduced_chi2``) too."""
    rows = [
        {
            "expression": c.text,
            "expression_numpy": numpy_text(c.text),
            "n_chi_squared": c.nchi2_test,
            "fit_type": _fit_type(c),
            "output_index": r.output,
            "origin": c.origin,
            "complexity": c.complexity,
            "accepted": c.accepted,
            "reduced_chi2": c.reduced_chi2_test,
        }
        for c in r.candidates
    ]
    return sorted(rows, key=lambda d: d["n_chi_squared"])


def _edge_text(edge: Any) -> str:
    from llmlex._symbolic import sympy_to_text  # imports sympy

    return numpy_text(
        edge.fit.formula() if edge.fit is not None else sympy_to_text(edge.expression)
    )


class ReferenceMethods:
    """The reference library's methods of KANLEX beyond training and ``get_symbolic``."""

    # Set by KANLEX (declared here for the type checker).
    model: Any
    dataset: dict[str, Any] | None
    f: Callable[[Any], Any] | None
    edges: KANEdges | None
    results: list[KANSymbolicResult] | None
    variable_names: list[str] | None
    symbolic_expressions: dict[Any, list[dict[str, Any]]] | None
    expression_tree: dict[str, Any] | None
    results_all_dicts: list[dict[str, Any]] | None
    seed: int
    client: Any

    def _reference_views(
        self,
    ) -> tuple[list[str], list[float], list[dict[str, Any]], list[list[dict[str, Any]]]]:
        """Set the reference's attributes from ``self.results``; return its 4-tuple."""
        assert self.results is not None
        dicts = [{**reference_result_dict(r), "result": r} for r in self.results]
        self.results_all_dicts = dicts
        self.symbolic_expressions = self._edge_lists()
        self.build_expression_tree()
        return (
            [d["best_expression"] for d in dicts],
            [r.nchi2_test for r in self.results],
            dicts,
            [all_results_dicts(r) for r in self.results],
        )

    def _edge_lists(self) -> dict[Any, list[dict[str, Any]]]:
        """Per edge, its formulas best first as the reference's dicts (``ansatz``,
        ``params``, ``score``): the fit, then the simpler alternatives."""
        out: dict[Any, list[dict[str, Any]]] = {}
        for key, edge in (self.edges or {}).items():
            fits = [r for population in edge.populations for r in population]
            out[key] = sorted(
                (
                    {"ansatz": f.ansatz, "params": np.array(f.params), "score": f.score}
                    for f in fits
                ),
                key=lambda d: -d["score"],
            )
        return out

    def build_expression_tree(self, top_k: int = 3) -> dict[str, Any]:
        """The reference's expression tree of the regressed network.

        Returns
        -------
        dict
            ``edge_dict``: ``(l, i, j) ->`` the edge's formula (numpy text, constants
            written in); ``top_k_edge_dicts``: per edge its ``top_k`` best formulas;
            ``node_tree``: ``(l + 1, j) ->`` the sum of the formulas of the edges into
            node ``j`` of layer ``l + 1`` (their input written ``x_{l},{i}``; layer 0's
            ``x{i}``); ``full_expressions``: the formula of each output (sympy).

        Raises
        ------
        ValueError
            Before :meth:`get_symbolic` has regressed the edges.
        """
        if self.edges is None or self.symbolic_expressions is None:
            raise ValueError("no symbolic expressions: call get_symbolic first")
        edge_dict = {key: _edge_text(e) for key, e in self.edges.items() if e.active}
        top = {
            key: [f"{d['ansatz']}" for d in rows[:top_k]]
            for key, rows in self.symbolic_expressions.items()
        }
        node_tree: dict[tuple[int, int], str] = {}
        for (layer, i, j), text in sorted(edge_dict.items()):
            var = f"x{i}" if layer == 0 else f"x_{layer},{i}"
            term = "(" + re.sub(r"\bx\b", var, text) + ")"
            key = (layer + 1, j)
            node_tree[key] = f"{node_tree[key]} + {term}" if key in node_tree else term
        self.expression_tree = {
            "edge_dict": edge_dict,
            "top_k_edge_dicts": top,
            "node_tree": node_tree,
            "full_expressions": [r.expression for r in self.results or []],
        }
        return self.expression_tree

    def optimise_expressions(
        self,
        client: Any = None,
        simplification_gpt_model: str = "openai/gpt-4o",
        x_data: Any = None,
        y_data: Any = None,
        custom_system_prompt: str | None = None,
        prune_small_terms: bool = True,
        plot_all: bool = True,
        original_f: Any = None,
        num_answers_per_prompt: int = 3,
        timeout_simplify: float = 10.0,
        number_of_prompts: int = 3,
        print_top_n: int = 10,
    ) -> tuple[list[str], list[float], list[dict[str, Any]], list[list[dict[str, Any]]]]:
        """Assemble, simplify and refit the formulas again from the regressed edges.

        With ``x_data``/``y_data`` the constants are refitted on (and candidates judged
        by) those data -- three quarters to refit, a quarter held out -- else on the
        dataset.  ``client`` and ``simplification_gpt_model`` ask a language model for
        simpler forms; ``timeout_simplify`` bounds the simplification and the snapping
        of constants (seconds each); the other options are the reference's and are
        accepted (plots are not drawn).  Returns what :meth:`get_symbolic` returns.

        Raises
        ------
        ValueError
            Before :meth:`get_symbolic` (no regressed edges), or without data.
        """
        if self.edges is None or self.expression_tree is None:
            raise ValueError("no expression tree: call get_symbolic first")
        if x_data is not None and y_data is not None:
            X = np.asarray(x_data, dtype=float)
            X = X.reshape(-1, 1) if X.ndim == 1 else X
            y = np.asarray(y_data, dtype=float).reshape(X.shape[0], -1)
            cut = max(1, (3 * X.shape[0]) // 4)
            parts = (X[:cut], y[:cut], X[cut:], y[cut:])
        elif self.dataset is not None:
            ds = self.dataset
            parts = (ds["train_input"], ds["train_label"], ds["test_input"], ds["test_label"])
        else:
            raise ValueError("no data: pass x_data and y_data, or create a dataset first")
        self.results = symbolic_from_edges(
            self.model,
            self.edges,
            *parts,
            variable_names=self.variable_names,
            client=client if client is not None else self.client,
            gpt_model=simplification_gpt_model,
            simplify_timeout=float(timeout_simplify),
            snap_time=float(timeout_simplify),
            llm_candidates=int(num_answers_per_prompt),
            seed=self.seed,
        )
        return self._reference_views()

    def plot_results(
        self,
        ranges: Sequence[float] | None = None,
        result_dict: dict[str, Any] | None = None,
        dataset: dict[str, Any] | None = None,
        title: str = "KAN Symbolic Regression Results",
        plotmaxmin: Sequence[Sequence[float | None]] = ((None, None), (None, None)),
        plot_using_generate_f: bool = False,
        n_points_in_each_direction: int = 50,
        wireframe_fit: bool = True,
        plot_points: bool = True,
        expressions_to_plot: str = "best",
    ) -> tuple[Any, Any]:
        """Plot the formula of output 0 (or of ``result_dict``) against the data.

        One input: the data, the function the dataset was sampled from (if any), the
        best and the raw formula and the network, on one axes.  Two inputs: the best
        formula as a surface (a wireframe with ``wireframe_fit``) with the data points.
        ``plotmaxmin`` is ``[[x_min, x_max], [y_min, y_max]]`` (None: automatic).
        Drawn with pyplot, so a notebook shows it.

        Returns
        -------
        (Figure, Axes)

        Raises
        ------
        ValueError
            Before :meth:`get_symbolic`, or for more than two inputs.
        """
        import matplotlib.pyplot as plt
        import sympy

        from llmlex._kan_sympy import evaluate

        if self.results is None:
            raise ValueError("no results: call get_symbolic first")
        ds = dataset if dataset is not None else self.dataset
        # With units the network sees the groups, the results are of the columns.
        frame = getattr(self, "units_frame", None)
        if dataset is None and frame is not None:
            ds = {"train_input": frame.X_train, "train_label": frame.y_train}
        result = self.results[0] if result_dict is None else result_dict.get("result")
        if result is None:
            raise ValueError("result_dict holds no llmlex result (its 'result' key)")
        X = kt.as_2d(ds["train_input"]) if ds is not None else None
        n_var = len(result.variables)
        lo, hi = ranges if ranges is not None else (np.min(X), np.max(X))
        best = result.predict
        if n_var == 1:
            fig, ax = plt.subplots(figsize=(10, 6))
            grid = np.linspace(float(lo), float(hi), 400)
            if ds is not None and plot_points:
                ax.scatter(
                    X[:, 0], kt.as_2d(ds["train_label"])[:, 0], s=4, c="k", alpha=0.3, label="data"
                )
            ax.plot(grid, best(grid[:, None]), label=f"best: {numpy_text(result.text)[:60]}")
            syms = [sympy.Symbol(v, real=True) for v in result.variables]
            raw = evaluate(result.raw_expression, syms, grid[:, None])
            ax.plot(grid, raw, "--", label="raw formula")
            if self.model is not None and frame is None:
                net = kt.network_output(self.model, grid[:, None])[:, result.output]
                ax.plot(grid, net, ":", label="KAN")
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            ax.legend()
            ax.grid(True, alpha=0.3)
        elif n_var == 2:
            fig = plt.figure(figsize=(10, 7))
            ax = fig.add_subplot(projection="3d")
            g = np.linspace(float(lo), float(hi), int(n_points_in_each_direction))
            g0, g1 = np.meshgrid(g, g)
            z = best(np.column_stack([g0.ravel(), g1.ravel()])).reshape(g0.shape)
            if wireframe_fit:
                ax.plot_wireframe(g0, g1, z, color="tab:blue", alpha=0.5, label="best")
            else:
                ax.plot_surface(g0, g1, z, cmap="viridis", alpha=0.7)
            if ds is not None and plot_points:
                ax.scatter(X[:, 0], X[:, 1], kt.as_2d(ds["train_label"])[:, 0], s=3, c="k")
            ax.set_xlabel("x0")
            ax.set_ylabel("x1")
        else:
            raise ValueError(f"plot_results draws one or two inputs, not {n_var}")
        (x_min, x_max), (y_min, y_max) = plotmaxmin
        if x_min is not None:
            ax.set_xlim(left=x_min)
        if x_max is not None:
            ax.set_xlim(right=x_max)
        if y_min is not None:
            ax.set_ylim(bottom=y_min)
        if y_max is not None:
            ax.set_ylim(top=y_max)
        ax.set_title(title)
        return fig, ax

    def run_complete_pipeline(
        self,
        client: Any = None,
        f: Callable[[Any], Any] | None = None,
        ranges: Sequence[float] = (-math.pi, math.pi),
        train_steps: int = 50,
        generations: int = 3,
        gpt_model: str = "openai/gpt-4o",
        node_th: float = 0.2,
        edge_th: float = 0.2,
        custom_system_prompt_for_second_simplification: str | None = None,
        optimiser: str = "LBFGS",
        population: int = 10,
        temperature: float = 0.1,
        exit_condition: float | None = None,
        verbose: int = 0,
        use_async: bool = True,
        plot_fit: bool = True,
        plot_parents: bool = False,
        demonstrate_parent_plotting: bool = False,
        constant_on_failure: bool = False,
        simplification_gpt_model: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Sample ``f`` (one variable, a torch function), train, prune, regress.

        The reference's pipeline: :meth:`create_dataset` (10000 training points),
        :meth:`train_kan` (pruned with ``node_th``, ``edge_th``), :meth:`get_symbolic`
        (``options``: its llmlex keywords, e.g. ``simplify_timeout``, ``snap_time``,
        ``seed``; ``simplification_gpt_model`` is its model for the simplification).

        Returns
        -------
        dict
            ``trained_model``, ``pruned_model``, ``train_loss``, ``dataset``,
            ``results_all_dicts``, ``best_expressions``, ``best_n_chi_squareds``,
            ``all_results_sorted``.  As in the reference, an error in a stage does not
            raise: it is logged, the dict holds what was done and ``error`` says what
            failed.
        """
        out: dict[str, Any] = {
            key: None
            for key in (
                "trained_model",
                "pruned_model",
                "train_loss",
                "results_all_dicts",
                "dataset",
                "best_expressions",
                "best_n_chi_squareds",
                "all_results_sorted",
            )
        }
        try:
            if f is None:
                raise ValueError("run_complete_pipeline needs f, the function to sample")
            out["dataset"] = self.create_dataset(f, ranges=ranges, n_var=1)  # type: ignore[attr-defined]
            out["train_loss"] = self.train_kan(  # type: ignore[attr-defined]
                opt=optimiser, steps=train_steps, prune=True, node_th=node_th, edge_th=edge_th
            )
            out["trained_model"] = getattr(self, "raw_model", None)
            out["pruned_model"] = self.model
            best, scores, dicts, everything = self.get_symbolic(  # type: ignore[attr-defined]
                client,
                population,
                generations,
                temperature,
                gpt_model,
                exit_condition,
                verbose,
                use_async,
                simplification_gpt_model=simplification_gpt_model,
                **options,
            )
            out.update(
                results_all_dicts=dicts,
                best_expressions=best,
                best_n_chi_squareds=scores,
                all_results_sorted=everything,
            )
        except Exception as err:  # the reference returns what was done
            log.exception("run_complete_pipeline stopped: %s", err)
            out["error"] = f"{type(err).__name__}: {err}"
        return out
