"""Linear candidates of the offline proposer: polynomials and rational functions.

Both come from one linear least-squares solve each -- a polynomial's coefficients, or a
rational function's through Levy's linearisation ``y*Q = P`` -- and are handed to the
proposer as templates (text pieces and floats, each float a parameter started at its
value; see :mod:`llmlex.offline`).  Each is offered twice: with every coefficient free, and
with coefficients fixed, one at a time and refitting the rest, at 0 or a short number
(an integer times a power of ten: the search's data are in units of a power of ten)
within two standard errors (:func:`snap_sequentially`).  On noisy data the second is
what a physicist would write (``x**3 + x**2 + x``), where the first, with its constants
free, would lose to a shorter fit of the noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "Template",
    "Token",
    "digits",
    "linear_templates",
    "rational_templates",
    "short_number",
    "snap_sequentially",
]

# A template is a sequence of text pieces and floats; each float becomes a new parameter
# whose starting value it is.  Rendering numbers them in order of appearance.
Token = str | float
Template = tuple[Token, ...]

#: Polynomial degrees tried.
POLY_DEGREES = range(1, 7)


def linear_templates(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> list[Template]:
    """Full polynomials of degree 1..6 at their weighted least-squares fit (weights
    ``w``), each also snapped within its errors, then :func:`rational_templates`."""
    out: list[Template] = []
    for d in POLY_DEGREES:
        if x.size <= d + 1:
            break
        a = np.vander(x, d + 1) * w[:, None]  # highest degree first, as polyfit
        with np.errstate(all="ignore"):
            coeffs, *_ = np.linalg.lstsq(a, y * w, rcond=None)
        out.append(_poly_template(coeffs))
        for simplest in (False, True):
            values, texts = snap_sequentially(a, y * w, simplest_first=simplest)
            if any(t is not None for t in texts) and any(t != "0" for t in texts):
                tpl = tuple(_join(_terms(values, texts)))
                if tpl not in out:
                    out.append(tpl)
    return out + rational_templates(x, y, w)


def snap_sequentially(
    a: np.ndarray, b: np.ndarray, *, simplest_first: bool = False
) -> tuple[np.ndarray, list[str | None]]:
    """Least squares ``a @ c = b`` with coefficients fixed at simple values one at a time.

    Each round fits the free coefficients (the fixed ones moved to the right-hand side),
    and fixes the one closest, in standard errors, to zero or a short number
    (:func:`short_number`) within two of its errors (``simplest_first``: only zero and
    one-digit values, the fewest digits first, then the closest); then refits the rest.
    One at a time because the coefficients are correlated: each within two errors of a
    simple value need not be so all together (the degree-6 fit of ``x**6 + ... + x`` at
    1% noise has its ``x**6`` coefficient at 1.2 until the others are fixed at 1).

    Returns
    -------
    values : ndarray
        The coefficients (fixed ones at their simple values).
    texts : list of str or None
        Per coefficient, the text of its simple value (``"0"``: the term is dropped), or
        None where it stays free.
    """
    n = a.shape[1]
    values = np.zeros(n)
    texts: list[str | None] = [None] * n
    while True:
        free = [k for k in range(n) if texts[k] is None]
        if not free:
            return values, texts
        fixed = [k for k in range(n) if texts[k] is not None]
        rhs = b - a[:, fixed] @ values[fixed]
        af = a[:, free]
        with np.errstate(all="ignore"):
            c, *_ = np.linalg.lstsq(af, rhs, rcond=None)
            r = af @ c - rhs
            dof = max(b.size - len(free), 1)
            err = np.sqrt(np.abs(np.diag(np.linalg.pinv(af.T @ af))) * float(r @ r) / dof)
        values[free] = c
        best: tuple[float, int, float, str] | None = None
        for k, v, e in zip(free, c, err, strict=True):
            if not (math.isfinite(v) and math.isfinite(e)):
                continue
            tol = max(2.0 * float(e), 1e-9 * max(1.0, abs(v)))
            options = [(abs(v), 0.0, "0")] if abs(v) <= tol else []
            short = short_number(float(v), tol)
            if short is not None:
                text, simple = short
                options.append((abs(v - simple), float(simple), text))
            for dist, simple, text in options:
                if simplest_first and digits(text) > 1:
                    continue  # only zero and one-digit numbers in this mode
                z = dist / max(float(e), 1e-300)
                rank = (digits(text), z) if simplest_first else (0, z)
                if best is None or rank < best[0]:
                    best = (rank, k, simple, text)
        if best is None:
            return values, texts
        _, k, simple, text = best
        values[k], texts[k] = simple, text


def digits(text: str) -> int:
    """Significant digits of a number written by :func:`short_number` (0 for ``"0"``)."""
    return len(text.partition("/")[0].lstrip("-").rstrip("0"))


def _terms(
    coeffs: Sequence[float], texts: Sequence[str | None], lowest: int = 0
) -> list[list[Token]]:
    """The terms ``c*x**k`` of a polynomial (coefficients highest degree first, the last of
    degree ``lowest``): a coefficient with a text is written as that number (``"0"``:
    the term is dropped), the others stay free, started at their values."""
    d = len(coeffs) - 1 + lowest
    out: list[list[Token]] = []
    for k, (c, text) in enumerate(zip(coeffs, texts, strict=True)):
        power = d - k
        mono = f"x**{power}" if power > 1 else ("x" if power == 1 else "")
        if text == "0":
            continue
        if text is not None:
            out.append([f"{text}*{mono}" if mono else text])
        else:
            out.append([float(c), f"*{mono}"] if mono else [float(c)])
    return out


def short_number(c: float, tol: float) -> tuple[str, float] | None:
    """``n * 10**k`` (``0 < |n| <= 100``, ``|k| <= 2``, the fewest digits first) within
    ``tol`` of ``c``, as its text and its value, or None.

    Not integers alone: the search sees the data divided by powers of ten
    (:mod:`llmlex._units`), so the caller's integer 3 may be 0.3 here.
    """
    if not tol >= 0:  # nan: nothing snaps
        return None
    for k in (2, 1, 0, -1, -2):
        n = round(c / 10.0**k)
        if 0 < abs(n) <= 100 and abs(n * 10.0**k - c) <= tol:
            text = str(n * 10**k) if k >= 0 else f"{n}/{10**-k}"
            return text, n * 10**k if k >= 0 else n / 10**-k
    return None


def _join(parts: list[list[Token]]) -> list[Token]:
    toks: list[Token] = []
    for i, t in enumerate(parts):
        toks += ([" + "] if i else []) + t
    return toks


def _poly_template(coeffs: Sequence[float]) -> Template:
    """``c_d*x**d + ... + c_1*x + c_0`` with the given starts (highest degree first)."""
    return tuple(_join(_terms(coeffs, [None] * len(coeffs))))


#: Rational functions P/Q tried: near the diagonal of the Pade table (deg Q from 1 to
#: 4, deg P from deg Q - 1 to deg Q + 2, at most 6), the best RATIONALS_KEPT by the fit
#: of their linearised start.
RATIONAL_DEGREES = tuple((m, n) for n in range(1, 5) for m in range(n - 1, n + 3) if m <= 6)
RATIONALS_KEPT = 3


def rational_templates(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> list[Template]:
    """Rational functions ``P(x)/(1 + x*R(x))`` started at the linearised least squares
    ``y*Q = P`` (Levy's method), the best few by their fit, each also with its
    coefficients snapped to simple values within their errors."""
    scored: list[tuple[float, int, int, np.ndarray, np.ndarray]] = []
    for m, n in RATIONAL_DEGREES:
        k = m + 1 + n
        if x.size <= k + 1:
            continue
        cols = [x**i for i in range(m + 1)] + [-y * x**j for j in range(1, n + 1)]
        a = np.column_stack(cols) * w[:, None]
        with np.errstate(all="ignore"):
            coef, *_ = np.linalg.lstsq(a, y * w, rcond=None)
            q = 1.0 + sum(coef[m + j] * x**j for j in range(1, n + 1))
            fit = sum(coef[i] * x**i for i in range(m + 1)) / q
            # A pole among the data is not a start: the fit cannot cross it.
            if not np.all(np.isfinite(fit)) or np.any(q * q[0] <= 0):
                continue
            r = (fit - y) * w
        scored.append((float(r @ r), m, n, coef, a))
    # Exact to rounding ties with exact: the fewer coefficients first.
    floor = 1e-20 * float(np.sum((y * w) ** 2))
    scored.sort(key=lambda t: (max(t[0], floor), t[1] + t[2]))
    out: list[Template] = []
    for _, m, _n, coef, a in scored[:RATIONALS_KEPT]:
        num, den = coef[: m + 1][::-1], coef[m + 1 :][::-1]
        full = _rational_template(num, den, [None] * num.size, [None] * den.size)
        out.append(full)
        values, texts = snap_sequentially(a, y * w)
        snapped = _rational_template(
            values[: m + 1][::-1], values[m + 1 :][::-1], texts[: m + 1][::-1], texts[m + 1 :][::-1]
        )
        if snapped != full:
            out.append(snapped)
    return out


def _rational_template(
    num: Sequence[float],
    den: Sequence[float],
    num_texts: Sequence[str | None],
    den_texts: Sequence[str | None],
) -> Template:
    """``(P)/(1 + ...)`` (coefficients highest degree first; the denominator's constant
    is 1), each coefficient written as :func:`_terms` says."""
    top = _terms(num, num_texts) or [["0"]]
    bottom = [["1"], *_terms(den, den_texts, lowest=1)]
    return ("(", *_join(top), ")/(", *_join(bottom), ")")
