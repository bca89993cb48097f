"""Tests of llmlex.images: PNG output, fixed size, readable ticks, curves over data."""

from __future__ import annotations

import base64
import struct
import threading

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.axis import XAxis
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from llmlex import images
from llmlex.fit import FitResult, fit_ansatz

matplotlib.use("Agg")  # tests never open windows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_SIZE = (
    round(images.FIGSIZE[0] * images.DPI),
    round(images.FIGSIZE[1] * images.DPI),
)


def png_size(b64: str) -> tuple[int, int]:
    raw = base64.b64decode(b64, validate=True)
    assert raw[:8] == PNG_SIGNATURE
    assert raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


def tick_labels(lo: float, hi: float) -> list[str]:
    """Labels the formatter writes for matplotlib's ticks over [lo, hi]."""
    fig = Figure()
    ax = fig.add_subplot()
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=7))
    ax.yaxis.set_major_formatter(images.ReadableFormatter())
    locs = [v for v in ax.yaxis.get_majorticklocs() if lo <= v <= hi]
    return ax.yaxis.get_major_formatter().format_ticks(locs)


def test_generate_base64_image_reference_usage() -> None:
    import matplotlib.pyplot as plt

    x = np.linspace(-1, 1, 50)
    y = np.sin(np.pi * x)
    fig, ax = plt.subplots(figsize=(10, 3))
    try:
        ax.scatter(x, y)
        img = images.generate_base64_image(fig, ax, x, y)
        assert not img.startswith("data:")
        assert png_size(img) == EXPECTED_SIZE
        # The caller's figure keeps its own size.
        assert tuple(fig.get_size_inches()) == (10.0, 3.0)
    finally:
        plt.close(fig)


def test_generate_base64_image_draws_data_on_empty_axes() -> None:
    x = np.linspace(0, 1, 20)
    fig = Figure()
    ax = fig.add_subplot()
    images.generate_base64_image(fig, ax, x, x**2)
    assert len(ax.collections) == 1  # the scatter it drew
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"


def test_small_range_ticks_are_readable() -> None:
    labels = tick_labels(0.001, 0.002)
    assert len(labels) >= 3
    assert len(set(labels)) == len(labels), labels  # the reference printed all "0"
    assert all(float(s) != 0.0 for s in labels)
    assert all(0.001 <= float(s) <= 0.002 for s in labels)


def test_large_and_offset_ranges_keep_full_values() -> None:
    # A range far from zero: no offset text, every label carries the full value.
    labels = tick_labels(-4.00012e7, -3.99988e7)
    values = [float(s) for s in labels]
    assert len(set(labels)) == len(labels)
    assert all(-4.00012e7 <= v <= -3.99988e7 for v in values)


def test_zero_is_written_plainly() -> None:
    fmt = images.ReadableFormatter()
    fmt.set_axis(XAxis(Figure().add_subplot()))
    assert fmt.format_ticks([-1.0, -0.5, 0.0, 0.5, 1.0])[2] == "0"
    assert fmt.format_ticks([-2e-7, -1e-7, 0.0, 1e-7])[2] == "0"


@settings(max_examples=60, deadline=None)
@given(
    centre=st.floats(-1e8, 1e8, allow_nan=False),
    log_span=st.floats(-6, 8),
)
def test_tick_labels_distinct_and_faithful(centre: float, log_span: float) -> None:
    span = 10.0**log_span
    if abs(centre) / span > 1e6:  # beyond float64 tick resolution: not a plotting range
        return
    lo, hi = centre - span / 2, centre + span / 2
    labels = tick_labels(lo, hi)
    assert len(set(labels)) == len(labels), labels
    locs = np.array([float(s) for s in labels])
    if locs.size > 1:
        step = np.min(np.diff(locs))
        assert step > 0
        assert np.all(locs >= lo - step) and np.all(locs <= hi + step)


def test_data_image_is_small_png_of_fixed_size() -> None:
    x = np.linspace(0.1, 5, 200)
    img = images.data_image(x, np.exp(-x))
    assert png_size(img) == EXPECTED_SIZE
    assert len(img) < 120_000  # small enough to send with every call


def test_data_image_accepts_constant_y_and_rejects_nan() -> None:
    x = np.linspace(0, 1, 10)
    assert png_size(images.data_image(x, np.ones(10))) == EXPECTED_SIZE
    with pytest.raises(ValueError, match="NaN"):
        images.data_image(x, np.where(x > 0.5, np.nan, x))


def test_fits_image_with_wild_and_failed_fits() -> None:
    x = np.linspace(0.1, 5, 100)
    y = 51.2 * np.cos(1.18 * x)
    good = fit_ansatz("params[0]*np.cos(params[1]*x)", x, y)
    blowup = FitResult("np.exp(params[0]*x)", np.array([300.0]), float("inf"), False, "x")
    pole = FitResult("params[0]/(x - params[1])", np.array([1.0, 2.5]), 3.0, True, "ok")
    failed = FitResult("params[0]*x", np.array([np.nan]), float("inf"), False, "failed")
    img = images.fits_image(x, y, [good, blowup, pole, failed])
    assert png_size(img) == EXPECTED_SIZE
    assert img != images.data_image(x, y)  # curves and a legend were drawn


def test_fits_image_labels_must_match() -> None:
    x = np.linspace(0, 1, 10)
    fit = fit_ansatz("params[0]*x", x, 2 * x)
    with pytest.raises(ValueError, match="labels"):
        images.fits_image(x, 2 * x, [fit], labels=["a", "b"])
    assert png_size(images.fits_image(x, 2 * x, [fit], labels=["mine"])) == EXPECTED_SIZE


def test_short_float_legend_numbers() -> None:
    assert images._short_float(1.234e-5) == "1.2e-5"
    assert images._short_float(0.5) == "0.5"
    assert images._short_float(float("inf")) == "inf"


def test_images_drawn_in_threads_match_serial() -> None:
    x = np.linspace(0, 3, 60)
    y = np.sin(x)
    serial = images.data_image(x, y)
    out: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        img = images.data_image(x, y)
        with lock:
            out.append(img)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [serial] * 4
