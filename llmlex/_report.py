"""Text and HTML reports of any result that follows the result protocol.

Reports sit *under* the result types (lmfit's ``printfuncs`` idea): a result's
``_repr_html_`` calls :func:`report_html` here, and this module reads only the protocol
(``expression``, ``predict``, ``report_rows``), so no import cycle forms between the
results and the ways to show them.  :mod:`llmlex.export` re-exports both functions.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from llmlex._score import nchi2, r2

__all__ = ["report", "report_html", "report_rows", "stats_rows"]


def stats_rows(stats: Any) -> list[tuple[str, str]]:
    """Rows for a search's :class:`~llmlex.genetic.RunStats`."""
    failures = ", ".join(f"{k} {v}" for k, v in stats.failures.items() if v) or "none"
    return [
        ("calls", str(stats.calls)),
        ("tokens", f"{stats.prompt_tokens} prompt + {stats.completion_tokens} completion"),
        ("failures", failures),
        ("time", f"{stats.time:.3g} s"),
    ]


def report_rows(result: Any, x: Any, y: Any, precision: int) -> list[tuple[str, str]]:
    """(label, value) rows shared by the text and HTML reports of a result."""
    # A result that knows its constants' errors writes them to the digits they justify.
    shown = getattr(result, "display_expression", None)
    rows = [("formula", str(result.expression if shown is None else shown))]
    rows += result.report_rows(precision)
    if x is not None and y is not None:
        y_arr = np.asarray(y, dtype=float).ravel()
        with np.errstate(all="ignore"):
            yhat = np.broadcast_to(result.predict(np.asarray(x, dtype=float)), y_arr.shape)
        rows.append(("nchi2 (given data)", f"{nchi2(y_arr, yhat):.{precision}g}"))
        rows.append(("R2 (given data)", f"{r2(y_arr, yhat):.{precision}g}"))
    return rows


def report(result: Any, *, x: Any = None, y: Any = None, precision: int = 6) -> str:
    """A plain-text report: formula, parameters, nchi2, R2, complexity, calls, tokens, time.

    Parameters
    ----------
    result : FitResult, KANSymbolicResult, GeneticRun or LLMLExRegressor
        The result (anything following :class:`llmlex._results.Result`).
    x, y : array_like, optional
        Data to score the formula on (adds nchi2 and R2 rows).
    precision : int
        Significant digits of the numbers.

    Returns
    -------
    str
        One ``label: value`` line per item.
    """
    rows = report_rows(result, x, y, precision)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}} : {v}" for k, v in rows)


def report_html(result: Any, *, x: Any = None, y: Any = None, precision: int = 6) -> str:
    """The report of :func:`report` as an HTML table (for notebooks' ``_repr_html_``)."""
    rows = report_rows(result, x, y, precision)
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
        for k, v in rows
    )
    return f"<table class='llmlex-report'>{body}</table>"
