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

import os
from collections.abc import Sequence
from pathlib import Path

from llmlex._fit_result import fit_result_from_dict, fit_result_to_dict
from llmlex._jsonio import (
    SCHEMA,
    check_envelope,
    decode_float,
    decoding,
    dumps,
    encode_float,
    envelope,
    loads,
    read_text,
    write_atomic,
)
from llmlex._kan_results import (
    Candidate,
    KANSymbolicResult,
    candidate_from_dict,
    candidate_to_dict,
    kan_result_from_dict,
    kan_result_to_dict,
)
from llmlex._results import (
    CHECKPOINT_KIND,
    GeneticRun,
    decode_results,
    encode_results,
    run_from_dict,
    run_to_dict,
    stats_from_dict,
    stats_to_dict,
)
from llmlex.exceptions import CheckpointError, PersistError
from llmlex.fit import FitResult

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

#: The saveable result types by document kind: the one table this module dispatches on.
_TYPES: dict[str, type] = {cls.kind: cls for cls in (FitResult, GeneticRun, KANSymbolicResult)}
#: Every document kind :func:`from_json` reads (a run's checkpoint reads as the run so far).
KINDS = (*_TYPES, CHECKPOINT_KIND)
# Helpers of the document layer and codecs of the types, importable from here as before.
_REEXPORTS = (
    Candidate,
    candidate_from_dict,
    candidate_to_dict,
    check_envelope,
    decode_float,
    decode_results,
    encode_float,
    encode_results,
    fit_result_from_dict,
    fit_result_to_dict,
    kan_result_from_dict,
    kan_result_to_dict,
    run_from_dict,
    run_to_dict,
    stats_from_dict,
    stats_to_dict,
    write_atomic,
)


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
    # Dispatch on the type's own ``kind`` (an isinstance check against the Result
    # protocol would evaluate its properties, e.g. build sympy expressions).
    if _TYPES.get(str(getattr(type(obj), "kind", ""))) is not type(obj):
        raise TypeError(
            f"cannot save a {type(obj).__name__}; expected FitResult, GeneticRun or "
            "KANSymbolicResult"
        )
    return dumps(envelope(obj.kind, obj.to_document()), indent=indent)


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
        schema, or damaged: any value of the wrong type or shape, or nesting too deep to
        decode (the message says what is wrong).  No other exception escapes for a
        damaged document.
    """
    doc = loads(text)
    allowed: Sequence[str] = KINDS
    if kind is not None:
        if kind not in _WANTED:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _WANTED))}, got {kind!r}")
        allowed = _WANTED[kind]
    found = check_envelope(doc, allowed)
    cls = GeneticRun if found == CHECKPOINT_KIND else _TYPES[found]
    with decoding(f"the {found} document"):
        return cls.from_document(doc)


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
        See :func:`from_json`; also for a file that is not UTF-8 text.
    OSError
        If the file cannot be read (``FileNotFoundError``, ...).
    """
    return from_json(read_text(path), kind=kind)
