"""The edge checkpoint of :func:`llmlex.kan.kan_to_symbolic`, on :class:`CheckpointFile`.

Every regressed edge is written as soon as it is done (atomically, JSON, kind
``kan_edges_checkpoint``); a later call with the same network, data and options loads the
edges already recorded instead of regressing them again, so no LLM call is paid twice.
The fingerprint identifies the problem: a hash of the inputs, every edge's function at a
few points spread over its input range (compared to a relative tolerance: the same
network re-evaluated in another process may differ in the last float32 bit), and the
options that shape the results.  The layout is unchanged since the first version, so
older files still load.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llmlex._checkpoint import CheckpointFile, options_mismatch
from llmlex._fit_result import fit_result_from_dict, fit_result_to_dict
from llmlex._jsonio import data_fingerprint, decode_float, encode_float
from llmlex._kan_types import EdgeResult, EdgeTask, Key
from llmlex.exceptions import PersistError

__all__ = ["EDGES_CHECKPOINT_KIND", "EdgeCheckpoint", "edge_from_dict", "edge_to_dict"]

# One logger for the KAN door: callers tune "llmlex.kan" (the examples do).
log = logging.getLogger("llmlex.kan")

#: Document kind of the checkpoints written by ``kan_to_symbolic(..., checkpoint=path)``.
EDGES_CHECKPOINT_KIND = "kan_edges_checkpoint"

# A checkpoint stores, per edge, the edge function at a few points spread over its input
# range.  The same network evaluated again (in another process, say) may differ in the
# last bit of float32 arithmetic, so these are compared to a tolerance; a retrained or
# edited network differs by far more.
_CHECK_POINTS = 33
_CHECK_RTOL = 1e-4


def _key_text(key: Key) -> str:
    return ",".join(str(v) for v in key)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PersistError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def edge_to_dict(edge: EdgeResult) -> dict[str, Any]:
    """A regressed edge as JSON-able values (its expression is rebuilt from the fit).

    Parameters
    ----------
    edge : EdgeResult
        A ``fitted`` edge.

    Returns
    -------
    dict
        Key, status, fit, source, score, range, LLM calls, time and the simpler
        alternatives (the last, the fit itself, stored as ``None``).
    """
    if edge.fit is None:
        raise ValueError(f"edge {edge.key} has no fit to checkpoint")
    return {
        "key": list(edge.key),
        "status": edge.status,
        "fit": fit_result_to_dict(edge.fit),
        "source": edge.source,
        "nchi2": encode_float(edge.nchi2),
        "x_range": [encode_float(v) for v in edge.x_range],
        "llm_calls": int(edge.llm_calls),
        "llm_calls_saved": int(edge.llm_calls_saved),
        "time": encode_float(edge.time),
        # Simpler alternatives (the last is the fit itself), for the assembly's budgets.
        "alternatives": [
            [fit_result_to_dict(r), encode_float(err)] for r, err in edge.alternatives[:-1]
        ]
        + ([[None, encode_float(edge.alternatives[-1][1])]] if edge.alternatives else []),
    }


def edge_from_dict(data: Mapping[str, Any]) -> EdgeResult:
    """Inverse of :func:`edge_to_dict`.

    Parameters
    ----------
    data : Mapping
        One stored edge.

    Returns
    -------
    EdgeResult

    Raises
    ------
    PersistError
        If the entry is damaged.
    """
    try:
        raw_key = data["key"]
        if not isinstance(raw_key, list) or len(raw_key) != 3:
            raise PersistError(f"an edge key must be [layer, i, j], got {raw_key!r}")
        layer, i, j = (_count(v, "an edge key entry") for v in raw_key)
        if data["status"] != "fitted":
            raise PersistError(f"edge {raw_key}: status {data['status']!r} is not 'fitted'")
        fit = fit_result_from_dict(data["fit"])
        lo, hi = (decode_float(v) for v in data["x_range"])
        alternatives = tuple(
            (fit if d is None else fit_result_from_dict(d), decode_float(err))
            for d, err in data.get("alternatives", [])
        )
        return EdgeResult(
            layer,
            i,
            j,
            status="fitted",
            expression=fit.expression,
            fit=fit,
            source=str(data["source"]),
            nchi2=decode_float(data["nchi2"]),
            x_range=(lo, hi),
            llm_calls=_count(data["llm_calls"], "llm_calls"),
            llm_calls_saved=_count(data["llm_calls_saved"], "llm_calls_saved"),
            time=decode_float(data["time"]),
            alternatives=alternatives,
        )
    except KeyError as err:
        raise PersistError(f"a stored edge lacks the field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, PersistError):
            raise
        raise PersistError(f"a stored edge is malformed: {err}") from None


def _edge_sample(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """An edge's size and its function at up to ``_CHECK_POINTS`` points spread over x."""
    n = int(x.size)
    order = np.argsort(x, kind="stable")
    picks = np.unique(np.linspace(0, n - 1, min(n, _CHECK_POINTS)).round().astype(int))
    idx = order[picks] if n else picks
    return {
        "n": n,
        "x": [encode_float(v) for v in x[idx]],
        "y": [encode_float(v) for v in y[idx]],
    }


def _samples_close(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two :func:`_edge_sample` records describe the same edge function."""
    if _count(old["n"], "an edge's size") != new["n"]:
        return False
    for name in ("x", "y"):
        a = np.array([decode_float(v) for v in old[name]])
        b = np.array([decode_float(v) for v in new[name]])
        if a.shape != b.shape:
            return False
        scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-12)
        if not np.all(np.abs(a - b) <= _CHECK_RTOL * scale):  # nan fails too
            return False
    return True


def _same_option(a: Any, b: Any) -> bool:
    """Options match exactly, except floats: KANLEX derives ``exit_condition`` from the
    network's own error, which may differ in the last bits when evaluated elsewhere."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=_CHECK_RTOL)
    return bool(a == b) and type(a) is type(b)


def _edges_mismatch(saved: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """Why a checkpoint's fingerprint differs from this call's, or None if it does not.

    Raises KeyError, TypeError or ValueError if the saved fingerprint is malformed.
    """
    if saved["data"]["inputs"] != now["data"]["inputs"]:
        return "different data: the inputs x differ"
    old_edges, new_edges = saved["data"]["edges"], now["data"]["edges"]
    if set(old_edges) != set(new_edges):
        was, then = sorted(old_edges), sorted(new_edges)
        return f"a different network: the edges regressed were {was}, now {then}"
    changed = [k for k in sorted(new_edges) if not _samples_close(old_edges[k], new_edges[k])]
    if changed:
        shown = ", ".join(f"({k})" for k in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        return f"a different network: the function of edge(s) {shown}{more} differs"
    # Checkpoints written before the ``search`` option existed always searched.
    return options_mismatch({"search": True, **saved["options"]}, now["options"], same=_same_option)


class EdgeCheckpoint:
    """The checkpoint file of one :func:`llmlex.kan.kan_to_symbolic` call.

    Loads the edges a previous session finished (after checking that the file belongs
    to this network, data and options) and records each new edge as soon as it is done.
    :meth:`record` is called from the worker threads: a lock serialises the writes, so
    the file always holds every edge finished so far.

    Parameters
    ----------
    path : str or path-like
        The JSON file.
    inputs : ndarray
        The inputs the edges were computed on (hashed into the fingerprint).
    tasks : sequence of EdgeTask
        The edges to regress (each sampled into the fingerprint).
    options : mapping
        The options that shape the results.
    resume : bool
        Load the file if it exists (False: start afresh and overwrite it).

    Raises
    ------
    CheckpointError
        If the file is damaged or belongs to another network, data or options.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        inputs: np.ndarray,
        tasks: Sequence[EdgeTask],
        options: Mapping[str, Any],
        *,
        resume: bool,
    ) -> None:
        fingerprint: dict[str, Any] = {
            "data": {
                "inputs": data_fingerprint(inputs),
                "edges": {_key_text(t.key): _edge_sample(t.x, t.y) for t in tasks},
            },
            "options": dict(options),
        }
        self.file = CheckpointFile(
            path, kind=EDGES_CHECKPOINT_KIND, what="KAN regression", fingerprint=fingerprint
        )
        self.path = self.file.path
        self.fingerprint = self.file.fingerprint
        self.total = len(tasks)
        self.done: dict[Key, EdgeResult] = {}
        self.prior_time = 0.0
        self.loaded = False
        self.writes = 0
        self.lock = threading.Lock()
        if resume and self.file.exists():
            self._load()

    def _load(self) -> None:
        doc = self.file.read()
        # Whatever a damaged file holds, anywhere (a value of the wrong type, nesting
        # that exhausts the stack), is a CheckpointError (decoding); another network's
        # file is one too, naming the difference (check).
        for name in ("data", "options"):
            if not isinstance(doc.get(name), dict):
                raise self.file.damaged(f"the field {name!r} is missing or not an object")
        if not isinstance(doc.get("edges"), list):
            raise self.file.damaged("the field 'edges' is missing or not a list")
        with self.file.decoding("its fingerprint is malformed"):
            why = _edges_mismatch(doc, self.fingerprint)
        self.file.check(why)
        done: dict[Key, EdgeResult] = {}
        with self.file.decoding():
            for entry in doc["edges"]:
                if not isinstance(entry, dict):
                    raise PersistError(f"a stored edge is not an object: {str(entry)[:80]}")
                edge = edge_from_dict(entry)
                if _key_text(edge.key) not in self.fingerprint["data"]["edges"]:
                    raise PersistError(f"edge {edge.key} is not among the network's edges")
                if edge.key in done:
                    raise PersistError(f"edge {edge.key} is stored twice")
                done[edge.key] = edge
            self.prior_time = decode_float(doc.get("time", 0.0))
        self.done.update(done)
        self.loaded = True
        log.info(
            "resuming from %s: %d of %d edge(s) already done, %d LLM call(s) already made",
            self.path,
            len(self.done),
            self.total,
            sum(e.llm_calls for e in self.done.values()),
        )

    def _write(self, elapsed: float) -> None:
        edges = [self.done[k] for k in sorted(self.done)]
        self.file.write(
            {
                "finished": len(self.done) == self.total,
                "n_edges": self.total,
                "llm_calls": sum(e.llm_calls for e in edges),
                "llm_calls_saved": sum(e.llm_calls_saved for e in edges),
                "time": encode_float(self.prior_time + elapsed),
                "edges": [edge_to_dict(e) for e in edges],
            }
        )
        self.writes += 1

    def record(self, edge: EdgeResult, elapsed: float) -> None:
        """Add a finished edge and rewrite the file (``elapsed``: this session's time)."""
        with self.lock:
            self.done[edge.key] = edge
            self._write(elapsed)

    def finish(self, elapsed: float) -> float:
        """Make sure the file exists; return the wall time over every session."""
        with self.lock:
            if self.writes == 0 and not self.loaded:
                self._write(elapsed)
        return self.prior_time + elapsed
