"""What the search asks of whoever proposes ansätze: a language model or the offline proposer.

The genetic search (:mod:`llmlex.genetic`) is written against the :class:`Proposer`
protocol.  For each child of a generation it builds one :class:`ProposalRequest` -- the
data, the caller's image, and (after the first generation) the parents chosen by
selection with their fitted scores -- and awaits ``proposer.propose(request)``.  The
:class:`ProposalBatch` that comes back carries zero or more candidate :class:`Proposal`
texts plus the bookkeeping of the call (tokens, failure stage).  The search parses and
fits every candidate and keeps the best as the child.

A proposer reports recoverable trouble (HTTP 429/5xx after retries, a reply with no
usable expression) in ``ProposalBatch.failure`` and never raises for it.  It raises an
:class:`~llmlex.exceptions.LLMError` subclass only for faults that will recur on every
call (bad API key, unknown model), so that a doomed run stops at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from llmlex.fit import FitResult

__all__ = [
    "FailureStage",
    "Proposal",
    "ProposalBatch",
    "ProposalRequest",
    "Proposer",
]

#: Where a proposal was lost: the API call, finding an expression in the reply,
#: parsing it in the safe language, or fitting it.
FailureStage = Literal["api", "extraction", "parsing", "fitting"]


@dataclass(frozen=True)
class Proposal:
    """One candidate ansatz text, as proposed (not yet parsed).

    Attributes
    ----------
    text : str
        The expression in ``x`` and ``params[i]``.
    initial : tuple of float or None
        Initial parameter values the proposer suggested, indexed like the text's params.
    """

    text: str
    initial: tuple[float, ...] | None = None


@dataclass(frozen=True, eq=False)
class ProposalRequest:
    """Everything a proposer may look at to propose one child.

    Attributes
    ----------
    x, y : ndarray
        The data (validated, 1-D, finite).
    image : str or None
        Base64 PNG of the data supplied by the caller; None means "draw it yourself".
    parents : tuple of FitResult
        Parents chosen by selection, best first (empty in the first generation).
    generation : int
        0 for the first generation.
    hints : tuple of str
        Free-text prior knowledge ("periodic", "decays to zero", "no exp").
    allowed_functions : tuple of str or None
        If given, the only functions an ansatz may use.
    seed : int
        A seed private to this request (proposers must not share global randomness).
    x_unit : float
        The search works on ``x`` divided by this power of ten (see
        :mod:`llmlex._units`): a constant of order one in the caller's units (a
        frequency of 1 per unit of their ``x``) is ``x_unit`` times larger here.  A
        proposer may use it as a prior; 1.0 when the data are searched as given.
    """

    x: np.ndarray
    y: np.ndarray
    image: str | None = None
    parents: tuple[FitResult, ...] = ()
    generation: int = 0
    hints: tuple[str, ...] = ()
    allowed_functions: tuple[str, ...] | None = None
    seed: int = 0
    x_unit: float = 1.0


@dataclass(frozen=True)
class ProposalBatch:
    """What one proposal call produced.

    Attributes
    ----------
    proposals : tuple of Proposal
        Candidate texts, possibly empty.
    calls : int
        Paid API calls made (0 for the offline proposer).
    prompt_tokens, completion_tokens : int
        Token usage as reported by the server (``usage``), 0 if not reported.
    failure : tuple (stage, message) or None
        Why the call produced nothing usable, if it did not.
    reply : str or None
        The raw reply text, kept for inspection.
    prompt : str or None
        The user prompt that was sent (None for a proposer that sends none).
    """

    proposals: tuple[Proposal, ...] = ()
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failure: tuple[FailureStage, str] | None = None
    reply: str | None = field(default=None, repr=False)
    prompt: str | None = field(default=None, repr=False)


@runtime_checkable
class Proposer(Protocol):
    """Anything that proposes ansätze for a request (an LLM or the offline search)."""

    #: Short name recorded in results ("llm:<model>", "offline").
    name: str

    async def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Propose candidate ansätze for one child."""
        ...
