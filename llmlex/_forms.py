"""The one library of simple one-variable forms, fitted before any search.

Every place that tries cheap closed forms on a one-variable problem reads this module:
the KAN edges (:func:`llmlex._kan_edges.regress_edge`), the one-variable slices of a
surrogate (:mod:`llmlex._separable`) and the scikit-learn estimator's fast edge mode
(:mod:`llmlex.estimator`).  A form is ``(source, ansatz)``: the label reported as the
edge's ``source`` and the ansatz text in ``x`` and ``params[k]`` (the language of
:mod:`llmlex.ansatz`).  Each row is written once and the libraries are selections of rows.
"""

from __future__ import annotations

__all__ = [
    "EDGE_LIBRARY",
    "POLYNOMIAL_LIBRARY",
    "SLICE_LIBRARY",
    "Form",
]

#: ``(source, ansatz)``: the label an edge reports and the ansatz text.
Form = tuple[str, str]

_CONSTANT: Form = ("constant", "params[0]")
_LINEAR: Form = ("linear", "params[0]*x + params[1]")
_QUADRATIC: Form = ("quadratic", "params[0]*x**2 + params[1]*x + params[2]")
_CUBIC: Form = ("cubic", "params[0]*x**3 + params[1]*x**2 + params[2]*x + params[3]")

#: Simple edge forms fitted before any search (pykan's ``auto_symbolic`` library, with
#: outer scale and offset; inner affine maps only where a shift or frequency is natural).
#: The order matters: it breaks ties between equally simple fits.
EDGE_LIBRARY: tuple[Form, ...] = (
    _CONSTANT,
    _LINEAR,
    ("library", "params[0]*x**2 + params[1]"),
    ("library", "params[0]*x**3 + params[1]"),
    ("library", "params[0]/x + params[1]"),
    ("library", "params[0]/x**2 + params[1]"),
    ("library", "params[0]*np.sqrt(x) + params[1]"),
    ("library", "params[0]*np.log(x) + params[1]"),
    ("library", "params[0]*np.exp(params[1]*x) + params[2]"),
    ("library", "params[0]*x**params[1] + params[2]"),
    _QUADRATIC,
    ("library", "params[0]/(x + params[1]) + params[2]"),
    ("library", "params[0]*np.sqrt(x + params[1]) + params[2]"),
    ("library", "params[0]*np.log(x + params[1]) + params[2]"),
    ("library", "params[0]*np.sin(params[1]*x + params[2]) + params[3]"),
    ("library", "params[0]*np.tanh(params[1]*x + params[2]) + params[3]"),
)

#: The same forms as ansatz texts only, for the one-variable slices of a surrogate.
SLICE_LIBRARY: tuple[str, ...] = tuple(text for _, text in EDGE_LIBRARY)

#: Polynomials up to the cubic: the estimator's fast edge mode (``kan_edges="polynomial"``),
#: enough for smooth edges.
POLYNOMIAL_LIBRARY: tuple[Form, ...] = (_CONSTANT, _LINEAR, _QUADRATIC, _CUBIC)
