"""Result types of the KAN pipeline: :class:`KANSymbolicResult` and its :class:`Candidate`.

Pure sympy and numpy (no torch): a saved KAN result loads and predicts without the
``kan`` extra.  The JSON codec lives beside the types: expressions are stored as trees by
:mod:`llmlex._sympy_json` (a whitelist of node types), never as text to parse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmlex._jsonio import decode_float, encode_float, float_field, typed_field
from llmlex._report import report_html
from llmlex.exceptions import PersistError

if TYPE_CHECKING:
    import sympy

__all__ = [
    "Candidate",
    "KANSymbolicResult",
    "candidate_from_dict",
    "candidate_to_dict",
    "kan_result_from_dict",
    "kan_result_to_dict",
]


@dataclass(frozen=True)
class Candidate:
    """A formula considered during simplification.

    ``origin``: ``raw`` (assembled, KAN constants), ``raw-refit``, ``sympy``, ``llm``,
    ``snapped``, ``snapped-sympy``, ``final``; from the estimator's other generators
    (:mod:`llmlex._multivariate`) ``sparse``, ``rational``, ``separable``, ``kan``, each
    possibly ``+snapped``.  ``nchi2_test`` is its held-out nchi2 after refitting its
    constants on the training data; ``accepted`` whether it passed (for the estimator's
    candidates: whether it is the one chosen).  With error bars, ``reduced_chi2_test`` is
    its held-out chi-squared per point (the score it was judged by); ``nan`` without
    them, and in results saved before it existed.  ``description_length`` (nats, on the
    training data, :mod:`llmlex._criterion`) where it was computed, else ``nan``.
    """

    origin: str
    text: str
    nchi2_test: float
    complexity: int
    accepted: bool
    reduced_chi2_test: float = math.nan
    description_length: float = math.nan


@dataclass(frozen=True, eq=False)
class KANSymbolicResult:
    """The formula found for one output of a KAN.

    Attributes
    ----------
    output : int
        Output index.
    expression : sympy.Expr
        The final formula in the variables (constants refitted on the original data).
    text : str
        The formula as numpy text.
    raw_expression : sympy.Expr
        The assembled formula before simplification (KAN constants).
    variables : tuple of str
        Names of the variables, in input-column order.
    nchi2_train, nchi2_test : float
        Normalized chi-squared on the training and held-out data.
    r2_train, r2_test : float
        Coefficient of determination on the same.
    complexity, raw_complexity : int
        sympy node counts of the final and the raw formula.
    assembly_error : float
        Max error (relative to the output's scale) between the assembled formula and the
        numerical replica of the KAN built from the same edge functions (rounding only).
    structure_error : float
        The same between the replica with pykan's own splines and pykan's forward.
    kan_error : float
        The same between the raw formula and the KAN's output (quality of the edge fits).
    llm_calls, llm_calls_saved : int
        LLM calls of the edge regression and the simplification, and calls saved.
    timings : Mapping[str, float]
        Wall times of the stages in seconds.
    candidates : tuple of Candidate
        Every formula considered, in order.
    chi2_train, chi2_test : float
        With error bars (``sigma_train``/``sigma_test`` of
        :meth:`~llmlex.kan.KANLEX.set_dataset`): the chi-squared
        ``sum(((y - f) / sigma)**2)`` of the final formula on the training and held-out
        data; ``nan`` without them (and in results saved before these fields existed).
    dof_train, dof_test : int
        Degrees of freedom: training points minus the formula's fitted constants, and the
        held-out points (nothing was fitted to them); 0 in results saved before.
    origin : str
        Which generator the formula came from: ``"kan"`` (the network's assembly and
        its simplifications), or with :class:`~llmlex.LLMLExRegressor` also
        ``"sparse"``, ``"rational"`` (sparse regression over a term library) or
        ``"separable"``; a KAN-specific field (errors of the assembly) is ``nan`` when
        no network was used.
    description_length : float
        The formula's description length on the training data, in nats (the criterion
        the estimator chooses by); ``nan`` where it was not computed.
    noise : float
        The noise level the description length was computed with (estimated from the
        data when no error bars were given); ``nan`` where not computed.
    """

    output: int
    expression: sympy.Expr
    text: str
    raw_expression: sympy.Expr
    variables: tuple[str, ...]
    nchi2_train: float
    nchi2_test: float
    r2_train: float
    r2_test: float
    complexity: int
    raw_complexity: int
    assembly_error: float
    structure_error: float
    kan_error: float
    llm_calls: int
    llm_calls_saved: int
    timings: Mapping[str, float]
    candidates: tuple[Candidate, ...] = ()
    chi2_train: float = math.nan
    dof_train: int = 0
    chi2_test: float = math.nan
    dof_test: int = 0
    origin: str = "kan"
    description_length: float = math.nan
    noise: float = math.nan

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Evaluate the final formula at the rows of ``X``."""
        import sympy  # lazily, with the multivariate evaluator: sympy is slow to import

        from llmlex._kan_sympy import evaluate

        syms = [sympy.Symbol(n, real=True) for n in self.variables]
        return evaluate(self.expression, syms, np.asarray(X, dtype=float))

    # ------------------------------------------------------------ the Result protocol
    kind: ClassVar[str] = "kan_result"

    @property
    def nchi2(self) -> float:
        """The held-out nchi2 (the score the formula was chosen by, without error bars)."""
        return self.nchi2_test

    @property
    def reduced_chi2(self) -> float:
        """``chi2_train / dof_train``: about 1 when the formula fits to the error bars.

        ``nan`` without error bars; with no degrees of freedom left, ``inf`` if
        ``chi2_train > 0``.
        """
        return _reduced(self.chi2_train, self.dof_train)

    @property
    def reduced_chi2_test(self) -> float:
        """``chi2_test / dof_test``: the same on the held-out data."""
        return _reduced(self.chi2_test, self.dof_test)

    def report_rows(self, precision: int = 6) -> list[tuple[str, str]]:
        """Rows of :func:`llmlex.export.report` after the formula."""
        p = precision
        rows = [
            ("variables", ", ".join(self.variables)),
            ("nchi2 (train / test)", f"{self.nchi2_train:.{p}g} / {self.nchi2_test:.{p}g}"),
            ("R2 (train / test)", f"{self.r2_train:.{p}g} / {self.r2_test:.{p}g}"),
        ]
        for label, c2, dof, red in (
            ("chi2/dof (train)", self.chi2_train, self.dof_train, self.reduced_chi2),
            ("chi2/dof (test)", self.chi2_test, self.dof_test, self.reduced_chi2_test),
        ):
            if not math.isnan(c2):  # only with error bars
                rows.append((label, f"{c2:.4g} / {dof} = {red:.4g}"))
        if not math.isnan(self.description_length):
            rows.append(("description length", f"{self.description_length:.4g} nats"))
        if not math.isnan(self.noise):
            rows.append(("noise (sd)", f"{self.noise:.3g}"))
        rows += [
            ("origin", self.origin),
            ("complexity", f"{self.complexity} (raw {self.raw_complexity})"),
            ("LLM calls", f"{self.llm_calls} (saved {self.llm_calls_saved})"),
        ]
        total = self.timings.get("total") if self.timings else None
        if total is not None:
            rows.append(("time", f"{total:.3g} s (symbolic stage)"))
        return rows

    def pareto_points(self) -> tuple[list[tuple[int, float, str]], tuple[int, float] | None]:
        """Every candidate formula considered, and the chosen one's point."""
        pts = [(c.complexity, c.nchi2_test, c.text) for c in self.candidates]
        return pts, (self.complexity, self.nchi2_test)

    def to_document(self) -> dict[str, Any]:
        """The body of its JSON document (see :mod:`llmlex.persist`)."""
        return {"result": kan_result_to_dict(self)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> KANSymbolicResult:
        """Inverse of :meth:`to_document`; expressions rebuilt from a whitelist only."""
        if "result" not in doc:
            raise PersistError("the document lacks the field 'result'")
        return kan_result_from_dict(doc["result"])

    def _repr_html_(self) -> str:
        return report_html(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (the reference's results dictionary)."""
        return {
            "output": self.output,
            "expression": str(self.expression),
            "text": self.text,
            "raw_expression": str(self.raw_expression),
            "variables": list(self.variables),
            "nchi2_train": self.nchi2_train,
            "nchi2_test": self.nchi2_test,
            "n_chi_squared": self.nchi2_test,
            "score": -self.nchi2_test,
            "r2_train": self.r2_train,
            "r2_test": self.r2_test,
            "complexity": self.complexity,
            "raw_complexity": self.raw_complexity,
            "assembly_error": self.assembly_error,
            "structure_error": self.structure_error,
            "kan_error": self.kan_error,
            "llm_calls": self.llm_calls,
            "llm_calls_saved": self.llm_calls_saved,
            "timings": dict(self.timings),
            "chi2_train": self.chi2_train,
            "dof_train": self.dof_train,
            "reduced_chi2": self.reduced_chi2,
            "chi2_test": self.chi2_test,
            "dof_test": self.dof_test,
            "reduced_chi2_test": self.reduced_chi2_test,
            "origin": self.origin,
            "description_length": self.description_length,
            "noise": self.noise,
        }


def _reduced(chi2: float, dof: int) -> float:
    """``chi2 / dof``; with no degrees of freedom ``inf`` if ``chi2 > 0``, else ``nan``."""
    if dof > 0:
        return chi2 / dof
    return math.inf if chi2 > 0 else math.nan


def candidate_to_dict(candidate: Candidate) -> dict[str, Any]:
    """The fields of a :class:`~llmlex.kan.Candidate` as JSON-able values."""
    return {
        "origin": str(candidate.origin),
        "text": str(candidate.text),
        "nchi2_test": encode_float(candidate.nchi2_test),
        "complexity": int(candidate.complexity),
        "accepted": bool(candidate.accepted),
        "reduced_chi2_test": encode_float(candidate.reduced_chi2_test),
        "description_length": encode_float(candidate.description_length),
    }


def candidate_from_dict(data: Any) -> Candidate:
    """Inverse of :func:`candidate_to_dict`."""
    what = "a stored candidate"
    if not isinstance(data, dict):
        raise PersistError(f"{what} must be an object, got {type(data).__name__}")
    return Candidate(
        origin=typed_field(data, "origin", str, what),
        text=typed_field(data, "text", str, what),
        nchi2_test=float_field(data, "nchi2_test", what),
        complexity=typed_field(data, "complexity", int, what),
        accepted=typed_field(data, "accepted", bool, what),
        reduced_chi2_test=decode_float(data.get("reduced_chi2_test", "nan")),
        description_length=decode_float(data.get("description_length", "nan")),
    )


_KAN_FLOATS = (
    "nchi2_train",
    "nchi2_test",
    "r2_train",
    "r2_test",
    "assembly_error",
    "structure_error",
    "kan_error",
)
_KAN_INTS = ("output", "complexity", "raw_complexity", "llm_calls", "llm_calls_saved")
# Fields added later: absent from older documents, read with these defaults.
_KAN_OPTIONAL_FLOATS = ("chi2_train", "chi2_test", "description_length", "noise")
_KAN_OPTIONAL_INTS = ("dof_train", "dof_test")


def kan_result_to_dict(result: KANSymbolicResult) -> dict[str, Any]:
    """Every field of a :class:`~llmlex.kan.KANSymbolicResult` as JSON-able values.

    The two sympy expressions are stored as trees by :func:`llmlex._sympy_json.encode_expr`
    (checked to decode to an equal expression); scores keep ``nan``/``inf``.

    Raises
    ------
    PersistError
        If an expression holds a node that cannot be stored exactly.
    """
    from llmlex._sympy_json import encode_expr  # imports sympy

    return {
        "output": int(result.output),
        "expression": encode_expr(result.expression),
        "text": str(result.text),
        "raw_expression": encode_expr(result.raw_expression),
        "variables": [str(v) for v in result.variables],
        **{k: encode_float(getattr(result, k)) for k in _KAN_FLOATS},
        **{k: int(getattr(result, k)) for k in _KAN_INTS if k != "output"},
        **{k: encode_float(getattr(result, k)) for k in _KAN_OPTIONAL_FLOATS},
        **{k: int(getattr(result, k)) for k in _KAN_OPTIONAL_INTS},
        "timings": {str(k): encode_float(v) for k, v in result.timings.items()},
        "candidates": [candidate_to_dict(c) for c in result.candidates],
        "origin": str(result.origin),
    }


def kan_result_from_dict(data: Any) -> KANSymbolicResult:
    """Inverse of :func:`kan_result_to_dict`; expressions are rebuilt from the whitelist only.

    Raises
    ------
    PersistError
        If a field is missing or of the wrong type, or an expression tree is not one
        :func:`llmlex._sympy_json.decode_expr` accepts.
    """
    from llmlex._sympy_json import decode_expr  # imports sympy

    what = "the stored KAN result"
    if not isinstance(data, dict):
        raise PersistError(f"{what} must be an object, got {type(data).__name__}")
    variables = typed_field(data, "variables", list, what)
    if not all(isinstance(v, str) for v in variables):
        raise PersistError(f"the variables of {what} must be strings")
    timings = typed_field(data, "timings", dict, what)
    candidates = typed_field(data, "candidates", list, what)
    for key in ("expression", "raw_expression"):
        if key not in data:
            raise PersistError(f"{what} lacks the field {key!r}")
    return KANSymbolicResult(
        expression=decode_expr(data["expression"]),
        text=typed_field(data, "text", str, what),
        raw_expression=decode_expr(data["raw_expression"]),
        variables=tuple(variables),
        timings={str(k): decode_float(v) for k, v in timings.items()},
        candidates=tuple(candidate_from_dict(c) for c in candidates),
        **{k: typed_field(data, k, int, what) for k in _KAN_INTS},
        **{k: float_field(data, k, what) for k in _KAN_FLOATS},
        **{k: decode_float(data.get(k, "nan")) for k in _KAN_OPTIONAL_FLOATS},
        **{k: _optional_int(data, k, what) for k in _KAN_OPTIONAL_INTS},
        origin=typed_field(data, "origin", str, what) if "origin" in data else "kan",
    )


def _optional_int(data: Mapping[str, Any], key: str, what: str) -> int:
    """``data[key]`` as an int, 0 if absent (a document older than the field)."""
    return typed_field(data, key, int, what) if key in data else 0
