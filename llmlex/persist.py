"""Saving results to JSON and loading them back: no pickle, no code.

A :class:`~llmlex.fit.FitResult`, a whole :class:`~llmlex.genetic.GeneticRun`
(populations, archive, statistics, proposer, stop reason) or a KAN's multivariate
:class:`~llmlex.kan.KANSymbolicResult` is written as a plain JSON document::

    {"llmlex": "0.1.0", "schema": 1, "kind": "genetic_run", ...}

Loading never evaluates anything: each ansatz text is re-parsed with
:func:`~llmlex.ansatz.parse_ansatz` (the safe expression language) to rebuild the
compiled ansatz.  Floats are written with Python's shortest round-trip representation,
so fitted parameters come back bit-identical; non-finite values (a failed fit's ``nan``
parameters, an ``inf`` nchi2) are written as the strings ``"nan"``, ``"inf"``,
``"-inf"`` so the file stays standard JSON that any other tool can read.

A genetic run's file lists each distinct result once and refers to it by index from the
populations and the archive, so a result that appears in several generations is stored
once and is one object again after loading.

A :class:`~llmlex.kan.KANSymbolicResult`'s sympy expressions are stored as JSON trees
by :mod:`llmlex._sympy_json`: a whitelist of node types, Floats as their shortest
round-trip text, rebuilt node for node on loading without parsing or evaluating any
text.

The checkpoints written by ``run_genetic(..., checkpoint=path)`` use the same encoding
(kind ``"genetic_checkpoint"``); :func:`load_result` reads them as the run so far.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from llmlex.ansatz import parse_ansatz
from llmlex.exceptions import AnsatzError, LLMLExError
from llmlex.fit import FitResult

if TYPE_CHECKING:
    from llmlex.genetic import GeneticRun, RunStats
    from llmlex.kan import Candidate, KANSymbolicResult

    Saveable = FitResult | GeneticRun | KANSymbolicResult

__all__ = [
    "SCHEMA",
    "CheckpointError",
    "PersistError",
    "from_json",
    "load_result",
    "save_result",
    "to_json",
]

#: Version of the document layout.  A reader refuses documents with a newer schema.
SCHEMA = 1
KINDS = ("fit_result", "genetic_run", "genetic_checkpoint", "kan_result")


class PersistError(LLMLExError, ValueError):
    """A saved document is not one llmlex can load (wrong kind, newer schema, damaged)."""


def _version() -> str:
    import llmlex

    return str(llmlex.__version__)


# --------------------------------------------------------------------------------------
# floats
# --------------------------------------------------------------------------------------


def encode_float(value: float) -> float | str:
    """A float as JSON: itself if finite (shortest round-trip repr), else a string."""
    v = float(value)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def decode_float(value: Any) -> float:
    """Inverse of :func:`encode_float`."""
    if isinstance(value, str):
        if value not in ("nan", "inf", "-inf"):
            raise PersistError(f"not a number: {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PersistError(f"not a number: {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------
# FitResult
# --------------------------------------------------------------------------------------


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
    }


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
        )
    except KeyError as err:
        raise PersistError(f"a stored result lacks the field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, PersistError):
            raise
        raise PersistError(f"a stored result is malformed: {err}") from None


# --------------------------------------------------------------------------------------
# RunStats and GeneticRun
# --------------------------------------------------------------------------------------


def stats_to_dict(stats: RunStats) -> dict[str, Any]:
    """The fields of :class:`~llmlex.genetic.RunStats` as JSON-able values."""
    return {
        "calls": stats.calls,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "proposals": stats.proposals,
        "fits": stats.fits,
        "failures": dict(stats.failures),
        "llm_calls_saved": stats.llm_calls_saved,
        "generations": stats.generations,
        "time": encode_float(stats.time),
        "last_error": stats.last_error,
        "cache_hits": stats.cache_hits,
        "cost": None if stats.cost is None else encode_float(stats.cost),
    }


def stats_from_dict(data: Mapping[str, Any]) -> RunStats:
    """Inverse of :func:`stats_to_dict`."""
    from llmlex.genetic import RunStats

    try:
        cost = data.get("cost")
        return RunStats(
            calls=int(data["calls"]),
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            proposals=int(data["proposals"]),
            fits=int(data["fits"]),
            failures={str(k): int(v) for k, v in dict(data["failures"]).items()},
            llm_calls_saved=int(data.get("llm_calls_saved", 0)),
            generations=int(data.get("generations", 0)),
            time=decode_float(data.get("time", 0.0)),
            last_error=str(data.get("last_error", "")),
            cache_hits=int(data.get("cache_hits", 0)),
            cost=None if cost is None else decode_float(cost),
        )
    except KeyError as err:
        raise PersistError(f"the stored statistics lack the field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, PersistError):
            raise
        raise PersistError(f"the stored statistics are malformed: {err}") from None


class _Table:
    """Distinct results, by identity, in first-seen order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.index: dict[int, int] = {}
        self.keep: list[FitResult] = []  # keeps ids valid while encoding

    def ref(self, result: FitResult) -> int:
        k = self.index.get(id(result))
        if k is None:
            k = self.index[id(result)] = len(self.rows)
            self.rows.append(fit_result_to_dict(result))
            self.keep.append(result)
        return k


def encode_results(
    populations: Sequence[Sequence[FitResult]], archive: Sequence[FitResult]
) -> dict[str, Any]:
    """Populations and archive as a results table plus index lists."""
    table = _Table()
    pops = [[table.ref(r) for r in pop] for pop in populations]
    arch = [table.ref(r) for r in archive]
    return {"results": table.rows, "populations": pops, "archive": arch}


def decode_results(
    data: Mapping[str, Any],
) -> tuple[tuple[tuple[FitResult, ...], ...], tuple[FitResult, ...]]:
    """Inverse of :func:`encode_results`."""
    try:
        results = [fit_result_from_dict(r) for r in data["results"]]

        def pick(k: Any) -> FitResult:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(results):
                raise PersistError(f"result index {k!r} out of range")
            return results[k]

        pops = tuple(tuple(pick(k) for k in pop) for pop in data["populations"])
        arch = tuple(pick(k) for k in data["archive"])
    except KeyError as err:
        raise PersistError(f"the stored run lacks the field {err.args[0]!r}") from None
    except TypeError as err:
        raise PersistError(f"the stored run is malformed: {err}") from None
    return pops, arch


def run_to_dict(run: GeneticRun) -> dict[str, Any]:
    """The fields of a :class:`~llmlex.genetic.GeneticRun` as JSON-able values."""
    out = encode_results(run.populations, run.archive)
    out.update(
        stats=stats_to_dict(run.stats),
        proposer=run.proposer,
        stop_reason=run.stop_reason,
        parsimony_rtol=encode_float(run.parsimony_rtol),
    )
    return out


def run_from_dict(data: Mapping[str, Any]) -> GeneticRun:
    """Inverse of :func:`run_to_dict`."""
    from llmlex.genetic import GeneticRun

    pops, arch = decode_results(data)
    try:
        return GeneticRun(
            populations=pops,
            archive=arch,
            stats=stats_from_dict(data["stats"]),
            proposer=str(data["proposer"]),
            stop_reason=str(data["stop_reason"]),
            parsimony_rtol=decode_float(data["parsimony_rtol"]),
        )
    except KeyError as err:
        raise PersistError(f"the stored run lacks the field {err.args[0]!r}") from None


# --------------------------------------------------------------------------------------
# KANSymbolicResult
# --------------------------------------------------------------------------------------


def _field(data: Mapping[str, Any], key: str, typ: type, what: str) -> Any:
    """``data[key]``, required to be of exactly ``typ`` (``bool`` is not an ``int`` here)."""
    if key not in data:
        raise PersistError(f"{what} lacks the field {key!r}")
    value = data[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise PersistError(
            f"the field {key!r} of {what} must be {typ.__name__}, got {type(value).__name__}"
        )
    return value


def _float_field(data: Mapping[str, Any], key: str, what: str) -> float:
    """``data[key]`` decoded by :func:`decode_float`."""
    if key not in data:
        raise PersistError(f"{what} lacks the field {key!r}")
    return decode_float(data[key])


def candidate_to_dict(candidate: Candidate) -> dict[str, Any]:
    """The fields of a :class:`~llmlex.kan.Candidate` as JSON-able values."""
    return {
        "origin": str(candidate.origin),
        "text": str(candidate.text),
        "nchi2_test": encode_float(candidate.nchi2_test),
        "complexity": int(candidate.complexity),
        "accepted": bool(candidate.accepted),
    }


def candidate_from_dict(data: Any) -> Candidate:
    """Inverse of :func:`candidate_to_dict`."""
    from llmlex.kan import Candidate

    what = "a stored candidate"
    if not isinstance(data, dict):
        raise PersistError(f"{what} must be an object, got {type(data).__name__}")
    return Candidate(
        origin=_field(data, "origin", str, what),
        text=_field(data, "text", str, what),
        nchi2_test=_float_field(data, "nchi2_test", what),
        complexity=_field(data, "complexity", int, what),
        accepted=_field(data, "accepted", bool, what),
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


def kan_result_to_dict(result: KANSymbolicResult) -> dict[str, Any]:
    """Every field of a :class:`~llmlex.kan.KANSymbolicResult` as JSON-able values.

    The two sympy expressions are stored as trees by :func:`llmlex._sympy_json.encode_expr`
    (checked to decode to an equal expression); scores keep ``nan``/``inf``.

    Raises
    ------
    PersistError
        If an expression holds a node that cannot be stored exactly.
    """
    from llmlex._sympy_json import encode_expr

    return {
        "output": int(result.output),
        "expression": encode_expr(result.expression),
        "text": str(result.text),
        "raw_expression": encode_expr(result.raw_expression),
        "variables": [str(v) for v in result.variables],
        **{k: encode_float(getattr(result, k)) for k in _KAN_FLOATS},
        **{k: int(getattr(result, k)) for k in _KAN_INTS if k != "output"},
        "timings": {str(k): encode_float(v) for k, v in result.timings.items()},
        "candidates": [candidate_to_dict(c) for c in result.candidates],
    }


def kan_result_from_dict(data: Any) -> KANSymbolicResult:
    """Inverse of :func:`kan_result_to_dict`; expressions are rebuilt from the whitelist only.

    Raises
    ------
    PersistError
        If a field is missing or of the wrong type, or an expression tree is not one
        :func:`llmlex._sympy_json.decode_expr` accepts.
    """
    from llmlex._sympy_json import decode_expr
    from llmlex.kan import KANSymbolicResult

    what = "the stored KAN result"
    if not isinstance(data, dict):
        raise PersistError(f"{what} must be an object, got {type(data).__name__}")
    variables = _field(data, "variables", list, what)
    if not all(isinstance(v, str) for v in variables):
        raise PersistError(f"the variables of {what} must be strings")
    timings = _field(data, "timings", dict, what)
    candidates = _field(data, "candidates", list, what)
    for key in ("expression", "raw_expression"):
        if key not in data:
            raise PersistError(f"{what} lacks the field {key!r}")
    return KANSymbolicResult(
        expression=decode_expr(data["expression"]),
        text=_field(data, "text", str, what),
        raw_expression=decode_expr(data["raw_expression"]),
        variables=tuple(variables),
        timings={str(k): decode_float(v) for k, v in timings.items()},
        candidates=tuple(candidate_from_dict(c) for c in candidates),
        **{k: _field(data, k, int, what) for k in _KAN_INTS},
        **{k: _float_field(data, k, what) for k in _KAN_FLOATS},
    )


# --------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------


def envelope(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A document: version header plus the body's fields."""
    return {"llmlex": _version(), "schema": SCHEMA, "kind": kind, **body}


def check_envelope(doc: Any, kinds: Sequence[str] = KINDS) -> str:
    """Validate a document's header and return its kind."""
    if not isinstance(doc, dict) or "kind" not in doc or "schema" not in doc:
        raise PersistError("not an llmlex document (no 'kind'/'schema' header)")
    kind = doc["kind"]
    schema = doc["schema"]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise PersistError(f"invalid schema {schema!r} in an llmlex document")
    if schema > SCHEMA:
        raise PersistError(
            f"this document has schema {schema}, written by llmlex {doc.get('llmlex', '?')}; "
            f"llmlex {_version()} reads schema {SCHEMA} and older: upgrade llmlex to load it"
        )
    if kind not in kinds:
        raise PersistError(
            f"expected a document of kind {' or '.join(map(repr, kinds))}, got {kind!r}"
        )
    return str(kind)


def _is_kan_result(obj: object) -> TypeGuard[KANSymbolicResult]:
    # Without llmlex.kan imported no KANSymbolicResult can exist: saving other objects
    # does not import it.
    kan = sys.modules.get("llmlex.kan")
    return kan is not None and isinstance(obj, kan.KANSymbolicResult)


def to_json(obj: Saveable, *, indent: int | None = 1) -> str:
    """Serialise a result or a run to JSON text.

    Parameters
    ----------
    obj : FitResult, GeneticRun or KANSymbolicResult
        What to save.
    indent : int or None
        Indentation of the JSON text (None for one line).

    Returns
    -------
    str
        Standard JSON (no ``NaN``/``Infinity`` literals).

    Raises
    ------
    TypeError
        For any other object.
    PersistError
        If a :class:`~llmlex.kan.KANSymbolicResult`'s expression holds a sympy node
        outside the stored whitelist (the message names it).
    """
    from llmlex.genetic import GeneticRun

    if isinstance(obj, FitResult):
        doc = envelope("fit_result", {"result": fit_result_to_dict(obj)})
    elif isinstance(obj, GeneticRun):
        doc = envelope("genetic_run", run_to_dict(obj))
    elif _is_kan_result(obj):
        doc = envelope("kan_result", {"result": kan_result_to_dict(obj)})
    else:
        raise TypeError(
            f"cannot save a {type(obj).__name__}; expected FitResult, GeneticRun or "
            "KANSymbolicResult"
        )
    return json.dumps(doc, indent=indent, allow_nan=False)


#: ``kind`` argument of :func:`from_json` -> document kinds it accepts.
_WANTED = {
    "fit_result": ("fit_result",),
    "genetic_run": ("genetic_run", "genetic_checkpoint"),
    "kan_result": ("kan_result",),
}


def from_json(text: str | bytes, *, kind: str | None = None) -> Saveable:
    """Load what :func:`to_json` wrote (or a ``run_genetic`` checkpoint, as a run).

    Parameters
    ----------
    text : str or bytes
        The JSON document.
    kind : {"fit_result", "genetic_run", "kan_result"}, optional
        Require this kind (a checkpoint counts as ``"genetic_run"``).

    Returns
    -------
    FitResult, GeneticRun or KANSymbolicResult

    Raises
    ------
    PersistError
        If the text is not JSON, not an llmlex document, of another kind, of a newer
        schema, or damaged (the message says what is wrong).
    """
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise PersistError(f"not a JSON document: {err}") from None
    allowed: Sequence[str] = KINDS
    if kind is not None:
        if kind not in _WANTED:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _WANTED))}, got {kind!r}")
        allowed = _WANTED[kind]
    found = check_envelope(doc, allowed)
    if found in ("fit_result", "kan_result"):
        if "result" not in doc:
            raise PersistError("the document lacks the field 'result'")
        if found == "kan_result":
            return kan_result_from_dict(doc["result"])
        return fit_result_from_dict(doc["result"])
    if found == "genetic_checkpoint":
        from llmlex.genetic import _run_from_checkpoint

        return _run_from_checkpoint(doc)
    return run_from_dict(doc)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never a part.

    The text goes to a temporary file in the same directory, is flushed to disk, and
    replaces ``path`` with :func:`os.replace` (atomic on POSIX and Windows).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_result(obj: Saveable, path: str | os.PathLike[str]) -> Path:
    """Save a result or a run as JSON (atomically).

    Parameters
    ----------
    obj : FitResult, GeneticRun or KANSymbolicResult
        What to save.
    path : str or path-like
        The file to write (parent directories are created).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError, PersistError
        See :func:`to_json` (nothing is written then).
    """
    write_atomic(path, to_json(obj))
    return Path(path)


def load_result(path: str | os.PathLike[str], *, kind: str | None = None) -> Saveable:
    """Load a result saved by :func:`save_result` (or a ``run_genetic`` checkpoint).

    Parameters
    ----------
    path : str or path-like
        The JSON file.
    kind : {"fit_result", "genetic_run", "kan_result"}, optional
        Require this kind.

    Returns
    -------
    FitResult, GeneticRun or KANSymbolicResult

    Raises
    ------
    PersistError
        See :func:`from_json`.
    """
    return from_json(Path(path).read_text(encoding="utf-8"), kind=kind)


class CheckpointError(PersistError):
    """A checkpoint file belongs to another run (other data or options)."""
