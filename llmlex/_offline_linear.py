"""Linear candidates of the offline proposer: polynomials and rational functions.

Both come from one linear least-squares solve each -- a polynomial's coefficients, or a
rational function's through Levy's linearisation ``y*Q = P`` -- and are handed to the
proposer as templates (text pieces and floats, each float a parameter started at its
value; see :mod:`llmlex.offline`).  Each is offered twice: with every coefficient free, and
with the coefficients that are within two standard errors of 0 dropped and of a small
integer written as that integer.  On noisy data the second is what a physicist would
write (``x**3 + x**2 + x``), where the first, with its constants free, would lose to a
shorter fit of the noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["Template", "Token", "linear_templates", "rational_templates"]

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
        coeffs, cov = np.polyfit(x, y, d, w=w, cov="unscaled")
        out.append(_poly_template(coeffs))
        resid = (np.polyval(coeffs, x) - y) * w
        with np.errstate(invalid="ignore"):
            err = np.sqrt(np.diag(cov) * float(resid @ resid) / (x.size - d - 1))
        snapped = _snapped_poly_template(coeffs, err)
        if snapped is not None:
            out.append(snapped)
    return out + rational_templates(x, y, w)


def _terms(
    coeffs: Sequence[float], errors: Sequence[float], lowest: int = 0
) -> tuple[list[list[Token]], bool]:
    """The terms ``c*x**k`` of a polynomial (coefficients highest degree first, the last of
    degree ``lowest``), and whether any snapped: a coefficient within two errors of 0 is
    dropped, one within two errors of a small integer is written as that integer, the rest
    stay free.  A nan error snaps nothing."""
    d = len(coeffs) - 1 + lowest
    out: list[list[Token]] = []
    snapped = False
    for k, (c, e) in enumerate(zip(coeffs, errors, strict=True)):
        power = d - k
        mono = f"x**{power}" if power > 1 else ("x" if power == 1 else "")
        # Two errors, at least rounding where the data are exact.
        tol = max(2.0 * float(e), 1e-9 * max(1.0, abs(c))) if math.isfinite(e) else math.nan
        simple = _short_number(float(c), tol)
        if abs(c) <= tol:
            snapped = True
        elif simple is not None:
            snapped = True
            out.append([f"{simple}*{mono}" if mono else simple])
        else:
            out.append([float(c), f"*{mono}"] if mono else [float(c)])
    return out, snapped


def _short_number(c: float, tol: float) -> str | None:
    """The text of ``n * 10**k`` (``0 < |n| <= 100``, ``|k| <= 2``, the fewest digits
    first) within ``tol`` of ``c``, or None.

    Not integers alone: the search sees the data divided by powers of ten
    (:mod:`llmlex._units`), so the caller's integer 3 may be 0.3 here.
    """
    if not tol >= 0:  # nan: nothing snaps
        return None
    for k in (2, 1, 0, -1, -2):
        n = round(c / 10.0**k)
        if 0 < abs(n) <= 100 and abs(n * 10.0**k - c) <= tol:
            return str(n * 10**k) if k >= 0 else f"{n}/{10**-k}"
    return None


def _join(parts: list[list[Token]]) -> list[Token]:
    toks: list[Token] = []
    for i, t in enumerate(parts):
        toks += ([" + "] if i else []) + t
    return toks


def _poly_template(coeffs: Sequence[float]) -> Template:
    """``c_d*x**d + ... + c_1*x + c_0`` with the given starts (highest degree first)."""
    return tuple(_join(_terms(coeffs, [math.nan] * len(coeffs))[0]))


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
            lin = a @ coef - y * w
            cov = np.linalg.pinv(a.T @ a) * float(lin @ lin) / (x.size - k)
            err = np.sqrt(np.abs(np.diag(cov)))
        scored.append((float(r @ r), m, n, coef, err))
    # Exact to rounding ties with exact: the fewer coefficients first.
    floor = 1e-20 * float(np.sum((y * w) ** 2))
    scored.sort(key=lambda t: (max(t[0], floor), t[1] + t[2]))
    out: list[Template] = []
    for _, m, _n, coef, err in scored[:RATIONALS_KEPT]:
        num, den = coef[: m + 1][::-1], coef[m + 1 :][::-1]
        num_err, den_err = err[: m + 1][::-1], err[m + 1 :][::-1]
        nan = np.full_like
        full = _rational_template(num, den, nan(num, np.nan), nan(den, np.nan))
        out.append(full)
        snapped = _rational_template(num, den, num_err, den_err)
        if snapped != full:
            out.append(snapped)
    return out


def _rational_template(
    num: np.ndarray, den: np.ndarray, num_err: np.ndarray, den_err: np.ndarray
) -> Template:
    """``(P)/(1 + ...)`` (coefficients highest degree first; the denominator's constant
    is 1), snapped as :func:`_terms` says."""
    top = _terms(num, num_err)[0] or [["0"]]
    bottom = [["1"], *_terms(den, den_err, lowest=1)[0]]
    return ("(", *_join(top), ")/(", *_join(bottom), ")")


def _snapped_poly_template(coeffs: Sequence[float], errors: Sequence[float]) -> Template | None:
    """The polynomial snapped as :func:`_terms` says; None if nothing snaps.

    On noisy data ``x**3 + x**2 + x`` is then a candidate of its own, where its free
    form, three fitted coefficients, would lose to a shorter fit of the noise.
    """
    terms, snapped = _terms(coeffs, errors)
    return tuple(_join(terms)) if snapped and terms else None
