"""Figures of results: data with fit and residuals, the Pareto front, 2-D surfaces.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no window pops up, nothing is shown): display it in a notebook by leaving it as
the cell's value, or save it with ``fig.savefig(...)``.  In a Jupyter kernel the first
figure also teaches IPython to show figures as PNG (pyplot's inline backend would, but
these figures never pass through pyplot), so a fresh kernel shows the plot, not
``<Figure size 640x520 with 2 Axes>``.
"""

from __future__ import annotations

import io
import math
import sys
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from llmlex.export import as_result, to_numpy

__all__ = ["plot_pareto", "plot_result", "plot_surface"]

# nchi2 of an exact fit is 0: drawn at this floor on a log axis.
_NCHI2_FLOOR = 1e-20


def _figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _displayable(fig: Figure) -> Figure:
    """``fig``, with IPython told (once) how to show a Figure if nothing has told it yet."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):  # not in a Jupyter kernel
        return fig
    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)  # %matplotlib inline (or we) registered one already
    except KeyError:
        png.for_type(Figure, _figure_png)
    return fig


def _as_columns(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[:, None] if a.ndim == 1 else a


def _predict(result: Any, X: np.ndarray) -> np.ndarray:
    """Predictions of ``result`` at the rows of ``X`` (one column for univariate fits)."""
    f = to_numpy(result)
    arg = X[:, 0] if len(f.variables) <= 1 and X.shape[1] == 1 else X
    return np.broadcast_to(f(arg), (X.shape[0],)).astype(float)


def plot_result(result: Any, x: Any, y: Any, *, ax: Axes | None = None) -> Figure:
    """Data, fitted formula and residuals.

    For one input column: the data and the formula on a fine grid over the data's range,
    with a residual panel underneath.  For several columns: predicted against observed
    (with the identity line), and residuals against predicted.

    Parameters
    ----------
    result : FitResult, KANSymbolicResult, GeneticRun or LLMLExRegressor
        The result.
    x : array_like, shape (n,) or (n, n_features)
        Inputs.
    y : array_like, shape (n,)
        Targets.
    ax : matplotlib Axes, optional
        Draw only the main panel into this axes (no residual panel) and return its figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = _as_columns(x)
    y = np.asarray(y, dtype=float).ravel()
    if X.shape[0] != y.size:
        raise ValueError(f"x has {X.shape[0]} rows but y has {y.size} values")
    yhat = _predict(result, X)
    if ax is None:
        fig = Figure(figsize=(6.4, 5.2), layout="constrained")
        main, resid = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    else:
        fig = ax.get_figure()
        main, resid = ax, None
    label = _label(result)
    if X.shape[1] == 1:
        x1 = X[:, 0]
        grid = np.linspace(float(x1.min()), float(x1.max()), 400)
        main.plot(x1, y, "o", ms=3, color="0.35", label="data")
        main.plot(grid, _predict(result, grid[:, None]), "-", color="C0", lw=2, label=label)
        main.set_ylabel("y")
        if resid is not None:
            resid.axhline(0.0, color="0.6", lw=1)
            resid.plot(x1, y - yhat, "o", ms=3, color="C3")
            resid.set_xlabel("x")
            resid.set_ylabel("residual")
        else:
            main.set_xlabel("x")
    else:
        finite = np.isfinite(yhat)
        lo = float(np.min(np.concatenate([y, yhat[finite]])))
        hi = float(np.max(np.concatenate([y, yhat[finite]])))
        main.plot([lo, hi], [lo, hi], "-", color="0.6", lw=1, label="identity")
        main.plot(y, yhat, "o", ms=3, color="C0", label=label)
        main.set_xlabel("observed y")
        main.set_ylabel("predicted y")
        if resid is not None:
            # Residuals against the observed values (the shared x axis).
            resid.axhline(0.0, color="0.6", lw=1)
            resid.plot(y, y - yhat, "o", ms=3, color="C3")
            resid.set_xlabel("observed y")
            resid.set_ylabel("residual")
            main.set_xlabel("")
    main.legend(loc="best", fontsize="small")
    return _displayable(fig)


def _label(result: Any, limit: int = 60) -> str:
    from llmlex.export import to_sympy

    try:
        text = str(to_sympy(result))
    except (TypeError, ValueError):
        return "fit"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_pareto(run: Any) -> Figure:
    """Complexity against nchi2 (log scale) of the formulas considered; the front and the
    chosen formula highlighted, with its description length (the selection criterion).

    Parameters
    ----------
    run : GeneticRun, KANSymbolicResult or LLMLExRegressor
        A search result: every archived formula is drawn, the Pareto front as a step line,
        the chosen best as a star.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pts, chosen = as_result(run).pareto_points()
    finite = [(c, max(v, _NCHI2_FLOOR), t) for c, v, t in pts if math.isfinite(v)]
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    if finite:
        cs = np.array([p[0] for p in finite], dtype=float)
        vs = np.array([p[1] for p in finite])
        ax.plot(cs, vs, "o", color="0.65", ms=4, label="formulas")
        front: list[tuple[float, float]] = []
        for c, v in sorted(zip(cs, vs, strict=True), key=lambda p: (p[0], p[1])):
            if not front or v < front[-1][1]:
                front.append((c, v))
        fc, fv = zip(*front, strict=True)
        ax.step(fc, fv, where="post", color="C0", lw=1.5, label="Pareto front")
        ax.plot(fc, fv, "o", color="C0", ms=5)
    if chosen is not None and math.isfinite(chosen[1]):
        # The chosen formula is the lowest description length, not a point of the front
        # picked by eye: its value goes in the legend.
        result = as_result(run)
        dl = getattr(getattr(result, "best", result), "description_length", math.nan)
        label = "chosen" if math.isnan(dl) else f"chosen (description length {dl:.4g} nats)"
        ax.plot(
            [chosen[0]],
            [max(chosen[1], _NCHI2_FLOOR)],
            "*",
            color="C3",
            ms=16,
            label=label,
            zorder=5,
        )
    ax.set_yscale("log")
    ax.set_xlabel("complexity (sympy nodes)")
    ax.set_ylabel("nchi2")
    ax.legend(loc="best", fontsize="small")
    return _displayable(fig)


def plot_surface(
    result: Any,
    X: Any,
    y: Any,
    *,
    resolution: int = 120,
    residuals: bool = True,
) -> Figure:
    """Heat-map of a two-variable formula with the data on top, and a residual map.

    Parameters
    ----------
    result : KANSymbolicResult, LLMLExRegressor or a result in two variables
        The result.
    X : array_like, shape (n, 2)
        Inputs.
    y : array_like, shape (n,)
        Targets (the data points are coloured with the same scale as the formula).
    resolution : int
        Grid points per axis.
    residuals : bool
        Add a second panel with the residuals ``y - f(X)`` at the data points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_surface needs X of shape (n, 2), got {X.shape}")
    if X.shape[0] != y.size:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.size} values")
    g0 = np.linspace(float(X[:, 0].min()), float(X[:, 0].max()), resolution)
    g1 = np.linspace(float(X[:, 1].min()), float(X[:, 1].max()), resolution)
    G0, G1 = np.meshgrid(g0, g1)
    Z = _predict(result, np.column_stack([G0.ravel(), G1.ravel()])).reshape(G0.shape)
    finite = np.isfinite(Z)
    values = np.concatenate([y, Z[finite]])
    norm = Normalize(vmin=float(values.min()), vmax=float(values.max()))
    fig = Figure(figsize=(11.0 if residuals else 6.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2 if residuals else 1, squeeze=False)[0]
    ax = axes[0]
    mesh = ax.pcolormesh(G0, G1, np.ma.masked_invalid(Z), norm=norm, cmap="viridis", shading="auto")
    ax.scatter(X[:, 0], X[:, 1], c=y, norm=norm, cmap="viridis", edgecolors="white", s=18)
    fig.colorbar(mesh, ax=ax, label="y (formula; points: data)")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_title(_label(result), fontsize="small")
    if residuals:
        r = y - _predict(result, X)
        span = float(np.nanmax(np.abs(r))) if np.any(np.isfinite(r)) else 1.0
        span = span if span > 0 else 1.0
        rn = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
        sc = axes[1].scatter(X[:, 0], X[:, 1], c=r, norm=rn, cmap="coolwarm", s=22)
        fig.colorbar(sc, ax=axes[1], label="residual y - f(X)")
        axes[1].set_xlabel("x0")
        axes[1].set_ylabel("x1")
        axes[1].set_title("residuals", fontsize="small")
    return _displayable(fig)
