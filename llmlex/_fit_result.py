"""The result of a fit: :class:`FitResult`, what the fit saw and how it came to be.

A frozen record of one fitted ansatz -- parameters, scores, the chi-squared against the
noise, the covariance of the parameters, the description length -- that also reads as the
reference library's result dict (``result["ansatz"]``, ``result["params"]``,
``result["score"]``, ``result["Num_params"]``, and the provenance keys ``"response"``,
``"prompt"``, ``"function_list"``, ``"stats"``), and its JSON codec.  The fitting itself
is :mod:`llmlex.fit`, which re-exports everything here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmlex._formula import write_values
from llmlex._jsonio import decode_float, decode_float_matrix, encode_float
from llmlex._report import report_html
from llmlex._uncertainty import format_value
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import AnsatzError, AnsatzTooComplexError, PersistError

if TYPE_CHECKING:
    import sympy

__all__ = ["FitResult", "Provenance", "fit_result_from_dict", "fit_result_to_dict"]


_MAPPING_KEYS = (
    "ansatz",
    "params",
    "score",
    "nchi2",
    "n_params",
    "complexity",
    "success",
    "message",
    "nfev",
    "time",
    "noise",
    "chi2",
    "dof",
    "reduced_chi2",
    "param_errors",
    "covariance",
    "description_length",
    "Num_params",
    "response",
    "prompt",
    "function_list",
    "stats",
)
#: Reference-library names of fields: ``result["Num_params"]`` is ``result.n_params``.
_ALIASES = {"Num_params": "n_params"}


@dataclass(frozen=True)
class Provenance:
    """How a fitted ansatz came to be: who proposed it, asked what, having seen which parents.

    Attributes
    ----------
    proposer : str
        The proposer's name (``"offline"``, ``"llm:<model>"``); empty if unknown.
    response : str or None
        The reply text the ansatz was read from (None for the offline proposer).
    prompt : str or None
        The user prompt sent with the image (None for the offline proposer).
    parents : tuple of FitResult
        The parents the proposer was shown (empty in the first generation).
    stats : object or None
        The :class:`~llmlex.genetic.RunStats` of a :func:`~llmlex.genetic.single_call`
        (the reference's ``result["stats"]``); None inside a run.
    """

    proposer: str = ""
    response: str | None = field(default=None, repr=False)
    prompt: str | None = field(default=None, repr=False)
    parents: tuple[FitResult, ...] = field(default=(), repr=False)
    stats: Any = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class FitResult:
    """An ansatz with fitted parameters.

    Also readable as a mapping, as in the reference library: ``result['ansatz']``,
    ``result['params']``, ``result['score']``, ``result['Num_params']``, the provenance
    keys ``'response'``, ``'prompt'``, ``'function_list'`` (the parents shown, as
    ``[(ansatz, params), ...]``, None in the first generation) and ``'stats'``, and every
    other field name.

    Attributes
    ----------
    ansatz : str
        The ansatz in normal form (parameters ``params[0..n-1]``).
    params : ndarray
        Fitted parameter values (read-only).
    nchi2 : float
        Normalized chi-squared of the fit on the data it was fitted to; ``inf`` if the
        ansatz could not be evaluated to finite values.
    success : bool
        Whether a finite fit was found.
    message : str
        What the optimiser reported, or why the fit failed.
    nfev : int
        Evaluations of the ansatz spent over all starts.
    n_starts : int
        Optimiser starts tried.
    time : float
        Wall time of the fit in seconds.
    compiled : Ansatz or None
        The compiled ansatz, for :meth:`predict`.
    noise : float
        The noise standard deviation ``chi2`` is measured against: the RMS of the
        ``sigma`` given to :func:`fit_ansatz`, else the ``noise`` given, else the level
        :func:`~llmlex._noise.estimate_noise` read from the data.
    chi2 : float
        ``sum((y_i - yhat_i)**2 / sigma_i**2)`` with the given ``sigma``, else with
        ``noise`` for every point; ``inf`` for a failed fit.
    dof : int
        Degrees of freedom: data points minus parameters (0 for a result saved before
        this field existed).
    covariance : ndarray
        Covariance of the parameters (``n_params x n_params``, read-only):
        ``pinv(J^T J)`` of the Jacobian ``J`` of the weighted residuals at the optimum,
        times the reduced chi-squared of those residuals unless ``absolute_sigma`` was
        set (:func:`scipy.optimize.curve_fit`'s convention).  ``inf`` in the rows and
        columns of parameters the data do not determine; ``nan`` for a failed fit.
    description_length : float
        Code length of the data through this formula, in nats (lower is better):
        ``chi2 / 2`` plus the cost of the tree and of the parameters' precision
        (:func:`llmlex._criterion.description_length`).  ``inf`` for a failed fit.
    origin : Provenance or None
        Who proposed the ansatz and from what; None for a fit made directly (and for a
        result loaded from a file: provenance is not saved).
    """

    ansatz: str
    params: np.ndarray
    nchi2: float
    success: bool
    message: str
    nfev: int = 0
    n_starts: int = 0
    time: float = 0.0
    compiled: Ansatz | None = field(default=None, repr=False)
    noise: float = math.nan
    chi2: float = math.nan
    dof: int = 0
    covariance: np.ndarray | None = field(default=None, repr=False)
    description_length: float = math.nan
    origin: Provenance | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        p = np.array(self.params, dtype=float).ravel()
        p.setflags(write=False)
        object.__setattr__(self, "params", p)
        k = p.size
        if self.covariance is None:
            cov = np.full((k, k), np.nan)
        else:
            cov = np.array(self.covariance, dtype=float).reshape(k, k)
        cov.setflags(write=False)
        object.__setattr__(self, "covariance", cov)

    @property
    def score(self) -> float:
        """``-nchi2``: higher is better (the reference convention)."""
        return -self.nchi2

    @property
    def response(self) -> str | None:
        """The reply text the ansatz was read from, if a language model proposed it."""
        return None if self.origin is None else self.origin.response

    @property
    def prompt(self) -> str | None:
        """The prompt that was answered, if a language model proposed the ansatz."""
        return None if self.origin is None else self.origin.prompt

    @property
    def function_list(self) -> list[tuple[str, np.ndarray]] | None:
        """The parents shown to the proposer as ``[(ansatz, params), ...]`` (the
        reference's ``function_list``); None when it saw none."""
        if self.origin is None or not self.origin.parents:
            return None
        return [(p.ansatz, np.array(p.params)) for p in self.origin.parents]

    @property
    def stats(self) -> Any:
        """The call statistics of a :func:`~llmlex.genetic.single_call`; None otherwise."""
        return None if self.origin is None else self.origin.stats

    @property
    def n_params(self) -> int:
        """Number of fitted parameters."""
        return int(self.params.size)

    @property
    def reduced_chi2(self) -> float:
        """``chi2 / dof``: about 1 when the residuals are at the noise level.

        With no degrees of freedom left: ``inf`` if ``chi2 > 0``, else ``nan``.
        """
        if self.dof > 0:
            return self.chi2 / self.dof
        return math.inf if self.chi2 > 0 else math.nan

    @property
    def param_errors(self) -> np.ndarray:
        """Standard errors of the parameters, ``sqrt(diag(covariance))`` (read-only)."""
        with np.errstate(invalid="ignore"):
            err = np.sqrt(np.diagonal(self.covariance))
        err.setflags(write=False)
        return err

    @cached_property
    def complexity(self) -> int:
        """Node count of the sympy form of the ansatz (see :attr:`Ansatz.complexity`)."""
        return self._compiled().complexity

    @cached_property
    def expression(self) -> sympy.Expr:
        """The sympy expression in ``x`` with the fitted parameters substituted.

        Raises
        ------
        AnsatzTooComplexError
            If sympy cannot build it within its work bound
            (:data:`llmlex._symbolic.SYMPY_CALLS`).
        """
        import sympy

        from llmlex._symbolic import param, time_bound

        a = self._compiled()
        with time_bound(AnsatzTooComplexError, f"the expression of {self.ansatz[:60]!r}"):
            values = {param(k): sympy.Float(float(v)) for k, v in enumerate(self.params)}
            return sympy.sympify(a.sympy).xreplace(values)

    @cached_property
    def display_expression(self) -> sympy.Expr:
        """:attr:`expression` with each parameter written to the digits its error
        justifies (as :meth:`formula` does): for reports, not for computing.

        Raises
        ------
        AnsatzTooComplexError
            As :attr:`expression`.
        """
        import sympy

        from llmlex._symbolic import param, time_bound

        a = self._compiled()
        errors = self.param_errors
        with time_bound(AnsatzTooComplexError, f"the expression of {self.ansatz[:60]!r}"):
            values = {
                param(k): sympy.Float(format_value(float(v), float(e)))
                for k, (v, e) in enumerate(zip(self.params, errors, strict=True))
            }
            return sympy.sympify(a.sympy).xreplace(values)

    def _compiled(self) -> Ansatz:
        return self.compiled if self.compiled is not None else parse_ansatz(self.ansatz)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Evaluate the fitted ansatz at ``x``."""
        return self._compiled()(np.asarray(x, dtype=float), self.params)

    __call__ = predict

    def formula(self, precision: int | None = None) -> str:
        """The ansatz text with the fitted values written in place of ``params[i]``.

        Parameters
        ----------
        precision : int, optional
            Most significant digits of a value.  Each value is rounded to the digits its
            standard error justifies (two significant digits of the error, at least one
            digit: ``1.23456 +- 0.0123`` is written ``1.235``); a value without a finite
            error, or with an error below ``1e-9`` of it (an exact fit), is written with
            ``precision`` digits, 6 by default.

        Returns
        -------
        str
            Python text; a negative value is written with the sign folded in
            (``x - 0.5``, never ``x + -0.5``) or in parentheses (``x*(-2)``).
        """
        errors = self.param_errors
        values = [
            format_value(v, e, precision=precision)
            for v, e in zip(self.params, errors, strict=True)
        ]
        return write_values(self._compiled()._tree, values)  # depth is bounded by the parser

    def __getstate__(self) -> dict[str, Any]:
        # The compiled closures cannot be pickled; they are rebuilt from the text.
        state = dict(self.__dict__)
        state["compiled"] = None
        origin = state.get("origin")
        if origin is not None and origin.parents:
            # One level of ancestry: the parents' own provenance would drag in the run.
            shallow = tuple(dataclasses.replace(p, origin=None) for p in origin.parents)
            state["origin"] = dataclasses.replace(origin, parents=shallow)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _repr_html_(self) -> str:
        return report_html(self)

    # ------------------------------------------------------------ the Result protocol
    kind: ClassVar[str] = "fit_result"

    @property
    def variables(self) -> tuple[str, ...]:
        """``("x",)``: an ansatz is univariate."""
        return ("x",)

    def report_rows(self, precision: int = 6) -> list[tuple[str, str]]:
        """Rows of :func:`llmlex.export.report` after the formula.

        Parameters are written ``p0 = 1.234 ± 0.0052``: the value to the digits its
        standard error justifies (at most ``precision``), the error to two digits.
        """
        errors = self.param_errors
        params = ", ".join(
            f"p{k} = {format_value(v, e, precision=precision, show_error=True)}"
            for k, (v, e) in enumerate(zip(self.params, errors, strict=True))
        )
        rows = [
            ("ansatz", self.ansatz),
            ("parameters", params or "(none)"),
            ("nchi2", f"{self.nchi2:.{precision}g}"),
        ]
        if not math.isnan(self.chi2):  # absent from results saved before they existed
            rows += [
                ("chi2/dof", f"{self.chi2:.4g} / {self.dof} = {self.reduced_chi2:.4g}"),
                ("noise", f"{self.noise:.{precision}g}"),
            ]
        if not math.isnan(self.description_length):
            rows.append(("description length", f"{self.description_length:.4g} nats"))
        rows += [
            ("complexity", str(self.complexity)),
            ("fit", f"{self.message}; {self.nfev} evaluations, {self.time:.3g} s"),
        ]
        return rows

    def pareto_points(self) -> tuple[list[tuple[int, float, str]], tuple[int, float] | None]:
        """The one point of this fit."""
        return [(self.complexity, self.nchi2, self.ansatz)], (self.complexity, self.nchi2)

    def to_document(self) -> dict[str, Any]:
        """The body of its JSON document (see :mod:`llmlex.persist`)."""
        return {"result": fit_result_to_dict(self)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> FitResult:
        """Inverse of :meth:`to_document`; the ansatz is re-parsed, never evaluated."""
        if "result" not in doc:
            raise PersistError("the document lacks the field 'result'")
        return fit_result_from_dict(doc["result"])

    # Mapping-style access, for code written against the reference library.
    def __getitem__(self, key: str) -> Any:
        if key not in _MAPPING_KEYS:
            raise KeyError(key)
        return getattr(self, _ALIASES.get(key, key))

    def __contains__(self, key: object) -> bool:
        return key in _MAPPING_KEYS

    def keys(self) -> tuple[str, ...]:
        """Names readable with ``result[name]``."""
        return _MAPPING_KEYS

    def get(self, key: str, default: Any = None) -> Any:
        """``result[key]`` or ``default``."""
        return self[key] if key in _MAPPING_KEYS else default

    def __iter__(self) -> Iterator[str]:
        return iter(_MAPPING_KEYS)

    def __len__(self) -> int:
        return len(_MAPPING_KEYS)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (JSON-serialisable)."""
        return {
            "ansatz": self.ansatz,
            "params": [float(v) for v in self.params],
            "nchi2": self.nchi2,
            "score": self.score,
            "success": self.success,
            "message": self.message,
            "nfev": self.nfev,
            "n_starts": self.n_starts,
            "time": self.time,
            "noise": self.noise,
            "chi2": self.chi2,
            "dof": self.dof,
            "reduced_chi2": self.reduced_chi2,
            "param_errors": [float(v) for v in self.param_errors],
            "covariance": self.covariance.tolist(),
            "description_length": self.description_length,
        }


def fit_result_to_dict(result: FitResult) -> dict[str, Any]:
    """The fields of a :class:`FitResult` as JSON-able values (the compiled ansatz is not
    stored: it is rebuilt from the text)."""
    return {
        "ansatz": result.ansatz,
        "params": [encode_float(v) for v in result.params],
        "nchi2": encode_float(result.nchi2),
        "success": bool(result.success),
        "message": str(result.message),
        "nfev": int(result.nfev),
        "n_starts": int(result.n_starts),
        "time": encode_float(result.time),
        "noise": encode_float(result.noise),
        "chi2": encode_float(result.chi2),
        "dof": int(result.dof),
        "covariance": [[encode_float(v) for v in row] for row in result.covariance],
        "description_length": encode_float(result.description_length),
    }


def _count(value: Any, name: str) -> int:
    if type(value) is not int:  # bool is not a count
        raise PersistError(f"{name} must be an integer, got {type(value).__name__}")
    return value


def fit_result_from_dict(data: Mapping[str, Any]) -> FitResult:
    """Rebuild a :class:`FitResult`, re-parsing its ansatz in the safe language."""
    try:
        text = data["ansatz"]
        if not isinstance(text, str):
            raise PersistError(f"ansatz must be a string, got {type(text).__name__}")
        try:
            compiled = parse_ansatz(text)
        except AnsatzError as err:
            raise PersistError(f"stored ansatz {text[:80]!r} does not parse: {err}") from None
        params = [decode_float(v) for v in data["params"]]
        if len(params) != compiled.n_params:
            raise PersistError(
                f"ansatz {text[:80]!r} has {compiled.n_params} parameters but "
                f"{len(params)} values are stored"
            )
        return FitResult(
            ansatz=text,
            params=params,
            nchi2=decode_float(data["nchi2"]),
            success=bool(data["success"]),
            message=str(data.get("message", "")),
            nfev=int(data.get("nfev", 0)),
            n_starts=int(data.get("n_starts", 0)),
            time=decode_float(data.get("time", 0.0)),
            compiled=compiled,
            # Absent from results saved before these fields existed: unknown.
            noise=decode_float(data.get("noise", "nan")),
            chi2=decode_float(data.get("chi2", "nan")),
            dof=_count(data.get("dof", 0), "dof"),
            covariance=decode_float_matrix(data.get("covariance"), len(params), "covariance"),
            description_length=decode_float(data.get("description_length", "nan")),
        )
    except KeyError as err:
        raise PersistError(f"a stored result lacks the field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, PersistError):
            raise
        raise PersistError(f"a stored result is malformed: {err}") from None
