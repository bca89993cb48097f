"""Plots of the data (and of fitted curves) as base64 PNG, the form sent to a vision LLM.

Three entry points:

* :func:`generate_base64_image` -- the reference signature: the caller draws on its own
  ``fig, ax`` and gets the PNG back, with readable tick labels, at a fixed size.
* :func:`data_image` -- draws the data itself (used when the caller passes ``None``).
* :func:`fits_image` -- draws the data together with fitted curves (the parents shown to
  the LLM in later generations).

Only matplotlib's object-oriented API is used in the library paths (a
:class:`~matplotlib.figure.Figure` with an Agg canvas, never pyplot state), so the images
can be drawn from worker threads while an event loop runs LLM calls.  Images are small
(6 x 4 inches at 80 dpi, a few tens of kB): they travel to an API with every call.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, MaxNLocator

from llmlex._validation import check_xy

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from llmlex.fit import FitResult

__all__ = [
    "DPI",
    "FIGSIZE",
    "ReadableFormatter",
    "data_image",
    "figure_to_base64",
    "fits_image",
    "generate_base64_image",
]

log = logging.getLogger(__name__)

#: Size of every image, in inches (width, height).
FIGSIZE: tuple[float, float] = (6.0, 4.0)
#: Resolution of every image: 6 x 4 in at 80 dpi is 480 x 320 pixels.
DPI: int = 80
#: Points on the dense grid along which fitted curves are drawn.
CURVE_POINTS = 400

# matplotlib's font cache is per thread, but the rest of its state (rcParams, the mathtext
# parser, ...) is not documented as thread-safe; drawing is CPU-bound under the GIL anyway,
# so serialising it costs nothing and removes a class of heisenbugs.
_DRAW_LOCK = threading.Lock()


class ReadableFormatter(Formatter):
    """Tick labels with just enough digits to tell neighbouring ticks apart.

    The reference rounded tick labels to zero decimals, which turns a range such as
    ``[0.001, 0.002]`` into a column of zeros.  This formatter writes each label in full
    (no offset text that a vision model could overlook): fixed notation with the fewest
    decimals that represent every tick, or scientific notation for very large or very small
    magnitudes.
    """

    def __init__(self) -> None:
        self._fmt = "{:g}"

    def set_locs(self, locs: Sequence[float]) -> None:
        """Choose the format from the tick locations matplotlib is about to label."""
        super().set_locs(locs)
        self._fmt = _choose_format(np.asarray(locs, dtype=float))

    def __call__(self, x: float, pos: int | None = None) -> str:
        text = self._fmt.format(x)
        if float(text) == 0.0:
            return "0"  # also hides "-0.00" and "0.0e+00", rounding artefacts at zero
        if "e" in text:  # "4.0e+07" -> "4.0e7": shorter, equally unambiguous
            mant, exp = text.split("e")
            text = f"{mant}e{int(exp)}"
        return text


def _choose_format(locs: np.ndarray) -> str:
    """Fewest digits (fixed, else scientific) that render every tick distinctly."""
    locs = np.unique(locs[np.isfinite(locs)])
    if locs.size == 0:
        return "{:g}"
    scale = float(np.max(np.abs(locs)))
    step = float(np.min(np.diff(locs))) if locs.size > 1 else max(scale, 1.0)
    tol = step * 1e-3
    scientific = scale >= 1e5 or (0.0 < scale < 1e-3)
    kinds = ("e",) if scientific else ("f", "e")
    for kind in kinds:
        for digits in range(0, 13):
            fmt = "{:." + str(digits) + kind + "}"
            if all(abs(float(fmt.format(v)) - v) <= tol for v in locs):
                return fmt
    return "{:.6g}"


def _style_axes(ax: Axes) -> None:
    """Readable, un-rounded tick labels and a light grid."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=7))
        axis.set_major_formatter(ReadableFormatter())
    ax.tick_params(labelsize=9)
    ax.grid(True, alpha=0.3)
    if not ax.get_xlabel():
        ax.set_xlabel("x")
    if not ax.get_ylabel():
        ax.set_ylabel("y")


def _new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)  # attaches itself to fig: rendering without pyplot
    # Fixed margins rather than a layout engine: constrained layout doubles the drawing
    # time, and the margins below fit tick labels of up to ~8 characters at this size.
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.13, top=0.96)
    ax = fig.add_subplot()
    return fig, ax


def figure_to_base64(fig: Figure, *, dpi: int = DPI) -> str:
    """Render a figure to PNG and return it base64-encoded (no ``data:`` prefix).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, drawn with any canvas (a pyplot figure works too).
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    str
        ASCII base64 of the PNG bytes.
    """
    buf = io.BytesIO()
    # No bbox_inches="tight": the image size must stay fixed.
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def generate_base64_image(fig: Figure, ax: Axes, x: np.ndarray, y: np.ndarray) -> str:
    """Encode the caller's plot of the data as a base64 PNG (the reference signature).

    Typical use, as in the reference library::

        fig, ax = plt.subplots()
        ax.scatter(x, y)
        img = llmlex.images.generate_base64_image(fig, ax, x, y)

    The axes get readable tick labels (:class:`ReadableFormatter`), a grid and ``x``/``y``
    labels if they have none; if nothing has been drawn on ``ax`` yet, the data are
    scattered on it.  The PNG is rendered at :data:`FIGSIZE` and :data:`DPI` whatever
    the figure's own size, which is restored afterwards.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure holding ``ax``.
    ax : matplotlib.axes.Axes
        The axes the data are (or will be) drawn on.
    x, y : array_like
        The data.

    Returns
    -------
    str
        Base64 PNG, without a ``data:`` prefix.
    """
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if not (ax.collections or ax.lines or ax.patches or ax.images):
        ax.scatter(xa, ya, s=12, color="black")
    _style_axes(ax)
    size = tuple(fig.get_size_inches())
    fig.set_size_inches(*FIGSIZE)
    try:
        return figure_to_base64(fig)
    finally:
        fig.set_size_inches(*size)


def data_image(x: np.ndarray, y: np.ndarray) -> str:
    """Draw the data as a scatter plot and return it as base64 PNG.

    This is what llmlex sends when the caller passes ``None`` as the image.  Safe to call
    from worker threads (no pyplot).

    Parameters
    ----------
    x, y : array_like
        The data (validated with :func:`~llmlex._validation.check_xy`).

    Returns
    -------
    str
        Base64 PNG, without a ``data:`` prefix.
    """
    xa, ya = check_xy(x, y, allow_constant=True)
    with _DRAW_LOCK:
        fig, ax = _new_figure()
        ax.scatter(xa, ya, s=12, color="black", label="data")
        _style_axes(ax)
        return figure_to_base64(fig)


def _short_float(v: float) -> str:
    """``1.2e-3`` rather than ``1.2e-03``: legends stay short."""
    if not math.isfinite(v):
        return str(v)
    text = f"{v:.2g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


def fits_image(
    x: np.ndarray,
    y: np.ndarray,
    fits: Sequence[FitResult],
    *,
    labels: Sequence[str] | None = None,
) -> str:
    """Draw the data with fitted curves and return it as base64 PNG.

    The curves are evaluated on a dense grid over the data's x range.  The y limits are
    those of the data (with a margin), so a curve that runs off to huge values cannot
    squash the data into a line; values far outside are dropped rather than drawn.

    Parameters
    ----------
    x, y : array_like
        The data.
    fits : sequence of FitResult
        Fitted ansätze to draw, e.g. the parents of a child (best first).
    labels : sequence of str, optional
        Legend entries, one per fit; default ``"parent k (nchi2=...)"``.

    Returns
    -------
    str
        Base64 PNG, without a ``data:`` prefix.
    """
    xa, ya = check_xy(x, y, allow_constant=True)
    if labels is not None and len(labels) != len(fits):
        raise ValueError(f"got {len(labels)} labels for {len(fits)} fits")
    lo, hi = float(ya.min()), float(ya.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    ylim = (lo - 0.15 * span, hi + 0.15 * span)
    # Beyond this band a curve is off the plot anyway; NaN breaks the line instead of
    # asking Agg to draw segments to 1e300.
    band = (lo - 10.0 * span, hi + 10.0 * span)
    grid = np.linspace(float(xa.min()), float(xa.max()), CURVE_POINTS)
    with _DRAW_LOCK:
        fig, ax = _new_figure()
        ax.scatter(xa, ya, s=10, color="black", label="data", zorder=2)
        for k, fit in enumerate(fits):
            label = (
                labels[k]
                if labels is not None
                else (f"parent {k + 1} (nchi2={_short_float(float(fit.nchi2))})")
            )
            try:
                curve = np.asarray(fit.predict(grid), dtype=float)
            except (ValueError, TypeError, ArithmeticError) as err:
                log.debug("cannot draw %r: %s", fit.ansatz, err)
                continue
            with np.errstate(invalid="ignore"):
                curve = np.where(
                    np.isfinite(curve) & (curve >= band[0]) & (curve <= band[1]),
                    curve,
                    np.nan,
                )
            # Curves above the points: a good fit shows as a line through them.
            ax.plot(grid, curve, lw=1.5, alpha=0.8, label=label, zorder=3)
        ax.set_ylim(*ylim)
        _style_axes(ax)
        ax.legend(fontsize=8, loc="best", framealpha=0.8)
        return figure_to_base64(fig)
