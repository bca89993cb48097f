"""The JSON document layer under every saved file: header, floats, atomic writes.

A document is a JSON object with a header (``{"llmlex": version, "schema": 1, "kind":
...}``) and the fields of its kind.  Floats are written with Python's shortest round-trip
representation (bit-identical on reading); non-finite values as the strings ``"nan"``,
``"inf"``, ``"-inf"`` so the file stays standard JSON.  Files are replaced atomically.

This module knows no result type: each type encodes its own body with these helpers
(:mod:`llmlex.fit`, :mod:`llmlex._results`, :mod:`llmlex._kan_results`), and
:mod:`llmlex.persist` dispatches on the ``kind``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmlex._version import __version__
from llmlex.exceptions import PersistError

__all__ = [
    "MALFORMED",
    "SCHEMA",
    "check_envelope",
    "data_fingerprint",
    "decode_float",
    "decode_float_matrix",
    "decoding",
    "dumps",
    "encode_float",
    "envelope",
    "float_field",
    "loads",
    "malformed_reason",
    "read_text",
    "typed_field",
    "write_atomic",
]

#: Version of the document layout.  A reader refuses documents with a newer schema.
SCHEMA = 1


def encode_float(value: float) -> float | str:
    """A float as JSON: itself if finite (shortest round-trip repr), else a string."""
    v = float(value)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def decode_float(value: Any) -> float:
    """Inverse of :func:`encode_float`; raises :class:`PersistError` for anything else."""
    if isinstance(value, str):
        if value not in ("nan", "inf", "-inf"):
            raise PersistError(f"not a number: {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PersistError(f"not a number: {value!r}")
    return float(value)


def decode_float_matrix(value: Any, k: int, what: str) -> np.ndarray | None:
    """A ``k x k`` matrix stored as a list of rows of :func:`encode_float` values; None
    stays None (a field absent from older documents)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != k:
        raise PersistError(f"{what} must be a list of {k} rows")
    if not all(isinstance(row, list) and len(row) == k for row in value):
        raise PersistError(f"{what} must be {k} x {k}")
    return np.array([[decode_float(v) for v in row] for row in value], dtype=float).reshape(k, k)


def typed_field(data: Mapping[str, Any], key: str, typ: type, what: str) -> Any:
    """``data[key]``, required to be of exactly ``typ`` (``bool`` is not an ``int`` here)."""
    if key not in data:
        raise PersistError(f"{what} lacks the field {key!r}")
    value = data[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise PersistError(
            f"the field {key!r} of {what} must be {typ.__name__}, got {type(value).__name__}"
        )
    return value


def float_field(data: Mapping[str, Any], key: str, what: str) -> float:
    """``data[key]`` decoded by :func:`decode_float`."""
    if key not in data:
        raise PersistError(f"{what} lacks the field {key!r}")
    return decode_float(data[key])


def envelope(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A document: version header plus the body's fields."""
    return {"llmlex": __version__, "schema": SCHEMA, "kind": kind, **body}


def check_envelope(doc: Any, kinds: Sequence[str]) -> str:
    """Validate a document's header against the accepted ``kinds``; return its kind."""
    if not isinstance(doc, dict) or "kind" not in doc or "schema" not in doc:
        raise PersistError("not an llmlex document (no 'kind'/'schema' header)")
    kind = doc["kind"]
    schema = doc["schema"]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise PersistError(f"invalid schema {schema!r} in an llmlex document")
    if schema > SCHEMA:
        raise PersistError(
            f"this document has schema {schema}, written by llmlex {doc.get('llmlex', '?')}; "
            f"llmlex {__version__} reads schema {SCHEMA} and older: upgrade llmlex to load it"
        )
    if kind not in kinds:
        raise PersistError(
            f"expected a document of kind {' or '.join(map(repr, kinds))}, got {kind!r}"
        )
    return str(kind)


def dumps(doc: Mapping[str, Any], *, indent: int | None = 1) -> str:
    """Standard JSON text of a document (no ``NaN``/``Infinity`` literals)."""
    return json.dumps(doc, indent=indent, allow_nan=False)


def loads(text: str | bytes) -> Any:
    """Parse JSON text; :class:`PersistError` if it is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise PersistError(f"not a JSON document: {err}") from None


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a saved document; :class:`PersistError` if it is not UTF-8.

    A missing or unreadable file raises the :class:`OSError` it is.
    """
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PersistError(
            f"{str(path)!r} is not an llmlex document: not UTF-8 text ({err.reason} at byte "
            f"{err.start})"
        ) from None


#: What decoding a damaged document can raise besides :class:`PersistError`: a field of
#: the wrong type or shape reaches code that expected another.
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError)


def malformed_reason(err: BaseException) -> str:
    """Why a document could not be decoded, from the exception its decoder raised."""
    if isinstance(err, RecursionError):
        return "it is nested too deeply"
    if isinstance(err, PersistError):
        return str(err)
    if isinstance(err, KeyError):
        return f"a field is missing ({err})"
    return f"it is malformed ({type(err).__name__}: {str(err)[:200]})"


@contextlib.contextmanager
def decoding(what: str) -> Iterator[None]:
    """Turn any failure of a document's decoder into one :class:`PersistError`.

    A damaged or hostile document may hold any JSON value anywhere, or be nested deep
    enough to exhaust the stack (deep under a caller's own frames, a tree a few hundred
    levels deep does); whatever the decoder trips on, the caller sees the one
    documented error, naming ``what`` was being read.
    """
    try:
        yield
    except PersistError:
        raise
    except (RecursionError, *MALFORMED) as err:
        raise PersistError(f"cannot load {what}: {malformed_reason(err)}") from None


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


def data_fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 over the shapes and float64 bytes of ``arrays``: tells data sets apart."""
    h = hashlib.sha256()
    for a in arrays:
        b = np.ascontiguousarray(a, dtype=float)
        h.update(str(b.shape).encode())
        h.update(b.tobytes())
    return h.hexdigest()
