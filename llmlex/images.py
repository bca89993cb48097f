"""Plots of the data (and of fitted curves) as base64 PNG, the form sent to a vision LLM.

Three entry points:

* :func:`generate_base64_image` -- the reference signature: the caller draws on its own
  ``fig, ax`` and gets the PNG back, with readable tick labels, at a fixed size.
* :func:`data_image` -- draws the data itself (used when the caller passes ``None``).
* :func:`fits_image` -- draws the data together with fitted curves (the parents shown to
  the LLM in later generations).

And, for code written for the reference library, :func:`encode_image` (a PNG file as
base64), :func:`generate_base64_image_with_parents` (the data with parents given as
``(ansatz, params)`` pairs, compiled by the safe ansatz language) and
:func:`plot_3d_function` (a surface with test points).

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
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, MaxNLocator

from llmlex._validation import check_xy
from llmlex.fit import FitResult, given_result

if TYPE_CHECKING:
    from matplotlib.axes import Axes


__all__ = [
    "DPI",
    "FIGSIZE",
    "ReadableFormatter",
    "data_image",
    "encode_image",
    "figure_to_base64",
    "fits_image",
    "generate_base64_image",
    "generate_base64_image_with_parents",
    "plot_3d_function",
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


def encode_image(image_path: str | os.PathLike[str]) -> str:
    """The bytes of an image file as base64 text (e.g. a PNG saved with ``plt.savefig``).

    Raises
    ------
    FileNotFoundError
        If there is no such file (also logged as an error, as the reference does).
    """
    path = Path(image_path)
    if not path.is_file():
        log.error("Image file not found: %s", path)
        raise FileNotFoundError(f"Image file not found: {path}")
    return base64.b64encode(path.read_bytes()).decode("ascii")


def generate_base64_image_with_parents(
    x: np.ndarray,
    y: np.ndarray,
    parent_functions: Sequence[tuple[str, Any]],
    fig: Figure | None = None,
    ax: Axes | None = None,
    actually_plot: bool = False,
    title_override: str | None = None,
) -> str:
    """The data with the curves of ``parent_functions`` over them, as base64 PNG.

    Parameters
    ----------
    x, y : array_like
        The data.
    parent_functions : sequence of (str, array_like)
        ``[(ansatz, params), ...]``, as the reference's ``function_list``; each ansatz is
        compiled by the safe ansatz language (:func:`~llmlex.ansatz.parse_ansatz`).
    fig, ax : optional
        With ``actually_plot``, the image is shown on ``ax`` (else on new axes of
        ``fig``, else of a new figure).
    actually_plot : bool
        Also show the image (for a notebook); the figure is ``ax.figure``.
    title_override : str, optional
        Title of the shown image.

    Returns
    -------
    str
        Base64 PNG, as :func:`fits_image` draws it.

    Raises
    ------
    AnsatzError
        If an ansatz does not parse.
    """
    xa, ya = check_xy(x, y, allow_constant=True)
    image = fits_image(xa, ya, [given_result(t, v, xa, ya) for t, v in parent_functions])
    if actually_plot:
        import matplotlib.image as mpimg

        if ax is None:
            fig = fig if fig is not None else Figure(figsize=FIGSIZE)
            ax = fig.add_subplot()
        ax.imshow(mpimg.imread(io.BytesIO(base64.b64decode(image)), format="png"))
        ax.set_axis_off()
        ax.set_title(title_override or "data with the parents' curves")
    return image


def plot_3d_function(
    x0_range: Any,
    x1_range: Any,
    z_values: Any,
    test_data: tuple[Any, Any, Any] | None,
    title: str,
    cmap: str = "viridis",
    ax: Any = None,
) -> tuple[Any, Any]:
    """A surface ``z(x0, x1)`` on a grid, with test points over it.

    Parameters
    ----------
    x0_range, x1_range : array_like
        The grid's coordinates (1-D, meshed here; or 2-D meshes).
    z_values : array_like
        Values on the mesh, shape ``(len(x1_range), len(x0_range))``.
    test_data : (x0, x1, y) or None
        Points to scatter over the surface.
    title : str
        The axes' title.
    cmap : str
        Colour map of the surface.
    ax : mpl_toolkits.mplot3d.Axes3D, optional
        3-D axes to draw on (e.g. ``fig.add_subplot(projection="3d")``); default new
        axes of a new figure (``ax.figure``).

    Returns
    -------
    (surface, ax)
        The ``Poly3DCollection`` and the axes.
    """
    x0 = np.asarray(x0_range, dtype=float)
    x1 = np.asarray(x1_range, dtype=float)
    if x0.ndim == 1 and x1.ndim == 1:
        x0, x1 = np.meshgrid(x0, x1)
    z = np.asarray(z_values, dtype=float)
    if ax is None:
        ax = Figure(figsize=(7.0, 5.5)).add_subplot(projection="3d")
    surf = ax.plot_surface(x0, x1, z, cmap=cmap, alpha=0.8)
    if test_data is not None:
        tx, ty, tz = (np.ravel(np.asarray(v, dtype=float)) for v in test_data)
        ax.scatter(tx, ty, tz, color="red", s=8, label="test data")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_zlabel("y")
    ax.set_title(title)
    return surf, ax
