"""Exceptions raised by llmlex.

The hierarchy (every class also derives from the built-in that the error really is)::

    LLMLExError                          base of everything llmlex raises on purpose
    ├── DataError(ValueError)            bad x / y handed in by the caller
    ├── UnitsError(ValueError)           units that cannot be read, or no law of them
    ├── AnsatzError(ValueError)          an ansatz text that is not in the safe language
    │   └── AnsatzTooComplexError        ...or exceeds the size / nesting / exponent bounds
    ├── PersistError(ValueError)         a saved document llmlex cannot load
    │   └── CheckpointError              a checkpoint that belongs to another run, or damaged
    ├── AssemblyError(RuntimeError)      a KAN's assembled formula does not reproduce it
    ├── UsageError(ValueError)           a bad command line or input file (``llmlex`` CLI)
    ├── BatchError(RuntimeError)         data sets of a batch failed (``run_many``)
    ├── LLMError(RuntimeError)           the language model could not be used
    │   ├── LLMAuthenticationError       bad or missing API key (401 / 403)
    │   ├── LLMConnectionError           server unreachable or timing out
    │   ├── LLMModelNotFoundError        the endpoint does not serve the model (404)
    │   └── NoValidAnsatzError           every call failed or no reply gave a usable ansatz
    └── MissingDependencyError(ImportError)  an optional extra (e.g. ``llmlex[kan]``) is absent

A failed fit or a bad LLM reply during a search is *not* an exception: it is recorded
in the run's :class:`~llmlex.genetic.RunStats` and the search goes on.  Exceptions are
reserved for bad input and for runs that cannot produce anything at all.

Every class is defined here and nowhere else; the older import paths
(``llmlex.persist.PersistError``, ``llmlex.persist.CheckpointError``,
``llmlex.kan.AssemblyError``, ``llmlex.cli.UsageError``) are re-exports of these.
"""

from __future__ import annotations

__all__ = [
    "AnsatzError",
    "AnsatzTooComplexError",
    "AssemblyError",
    "BatchError",
    "CheckpointError",
    "DataError",
    "LLMAuthenticationError",
    "LLMConnectionError",
    "LLMError",
    "LLMLExError",
    "LLMModelNotFoundError",
    "MissingDependencyError",
    "NoValidAnsatzError",
    "PersistError",
    "UnitsError",
    "UsageError",
]


class LLMLExError(Exception):
    """Base class of all exceptions raised deliberately by llmlex."""


class DataError(LLMLExError, ValueError):
    """The data handed in is unusable (NaN/inf, length mismatch, too few points, ...)."""


class UnitsError(LLMLExError, ValueError):
    """Physical units that cannot be read, or no product of the inputs' units has the
    target's (see :func:`llmlex.LLMLExRegressor`'s ``units``)."""


class AnsatzError(LLMLExError, ValueError):
    """An ansatz text is not a valid expression of the safe ansatz language."""


class AnsatzTooComplexError(AnsatzError):
    """An ansatz exceeds the bounds on size, nesting depth or exponent growth."""


class PersistError(LLMLExError, ValueError):
    """A saved document is not one llmlex can load (wrong kind, newer schema, damaged)."""


class CheckpointError(PersistError):
    """A checkpoint file belongs to another run (other data or options), or is damaged."""


class AssemblyError(LLMLExError, RuntimeError):
    """The assembled formula does not reproduce the network it was built from."""


class UsageError(LLMLExError, ValueError):
    """A problem with the command line or the input file, reported in one line."""


class BatchError(LLMLExError, RuntimeError):
    """Data sets of a batch failed (:meth:`llmlex.batch.BatchResult.raise_for_failures`);
    ``result`` is the whole batch, the finished data sets included."""


class LLMError(LLMLExError, RuntimeError):
    """The language model could not be used to produce ansätze."""


class LLMAuthenticationError(LLMError):
    """The endpoint rejected the API key (HTTP 401/403)."""


class LLMConnectionError(LLMError):
    """The endpoint could not be reached or kept timing out."""


class LLMModelNotFoundError(LLMError):
    """The endpoint does not serve the requested model (HTTP 404)."""


class NoValidAnsatzError(LLMError):
    """Every proposal failed: no usable, fittable ansatz was produced."""


class MissingDependencyError(LLMLExError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
