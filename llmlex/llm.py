"""Vision-LLM proposals over any OpenAI-compatible endpoint.

This module has three layers, each usable and testable on its own:

* **Prompts** -- plain functions returning text: :func:`build_first_prompt` (the plot
  only), :func:`build_generation_prompt` (the parents' ansätze *with* their nchi2 scores
  and fitted parameters), :func:`build_messages` (the chat messages with the image).
* **Reply parsing** -- :func:`extract_proposals` finds candidate ansatz texts in a chatty
  reply (never evaluating anything; it lives in :mod:`llmlex._extract`); the safe parsing
  itself is :func:`llmlex.ansatz.parse_ansatz`.
* **The proposer** -- :class:`LLMProposer` implements :class:`llmlex.proposer.Proposer`
  with an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client.  Its calls go through
  :class:`llmlex._llmcall.LLMCall`, the one place llmlex talks to a model (reply cache,
  error mapping, budgets and counts).

Retries and timeouts are the openai client's own: configure them on the client, e.g.
``openai.OpenAI(base_url=..., api_key=..., max_retries=3, timeout=60)``.  llmlex does not
wrap a second retry loop around them, but it does make each call's timeout a total
deadline (the client's applies to each read, which a slowly dripping server never
trips).  A call that still fails after the client's retries costs one individual of the
search, not the run (see :class:`LLMProposer`).

For code written for the reference library: :func:`get_prompt`, :func:`call_model`,
:func:`async_call_model` (the raw response), :func:`check_key_limit` and
:func:`check_key_usage` (an OpenRouter key's credit), with its signatures
(:mod:`llmlex._chat`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._chat import (
    async_call_model,
    call_model,
    check_key_limit,
    check_key_usage,
    get_prompt,
)
from llmlex._clientspec import is_openai_client
from llmlex._extract import extract_proposals
from llmlex._llmcall import LLMCall, check_client, unpicklable_client_error
from llmlex._prompts import (
    DEFAULT_SYSTEM_PROMPT,
    build_first_prompt,
    build_generation_prompt,
    build_messages,
    normalise_functions,
)
from llmlex.images import data_image, fits_image
from llmlex.proposer import ProposalBatch, ProposalRequest

if TYPE_CHECKING:
    import os

    from llmlex.cache import ReplyCache

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "MAX_PROPOSALS_PER_REPLY",
    "CachedProposalBatch",
    "LLMProposer",
    "async_call_model",
    "build_first_prompt",
    "build_generation_prompt",
    "build_messages",
    "call_model",
    "check_key_limit",
    "check_key_usage",
    "extract_proposals",
    "get_prompt",
    "normalise_functions",
]

log = logging.getLogger(__name__)

#: Candidates kept from one reply (a reply listing twenty alternatives costs twenty fits).
MAX_PROPOSALS_PER_REPLY = 6

# --------------------------------------------------------------------------------------
# The proposer
# --------------------------------------------------------------------------------------


class _LRU(OrderedDict):
    """A tiny bounded cache of rendered images (drawing costs ~0.1 s)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class LLMProposer:
    """Proposes ansätze by asking a vision LLM through an OpenAI-compatible client.

    Each :meth:`propose` makes one chat-completion call.  In the first generation the
    prompt shows the data (the caller's image, or one drawn with
    :func:`~llmlex.images.data_image`); later, it shows the parents' curves over the data
    (:func:`~llmlex.images.fits_image`) and lists their ansätze with nchi2 and fitted
    parameters.  Images are drawn in a worker thread, so the event loop keeps running
    other calls.

    Failures: a rejected key (401/403) raises :class:`~llmlex.exceptions.LLMAuthenticationError`
    and an unknown model (404) :class:`~llmlex.exceptions.LLMModelNotFoundError`: these
    would recur on every call.  Anything transient that survives the client's own retries
    (429, 5xx, timeouts, connection errors, malformed JSON) is returned as
    ``ProposalBatch(failure=("api", "<ErrorClass>: message"), calls=1)``.  A reply with
    no recognisable expression gives ``failure=("extraction", ...)``.  Candidates that do
    not parse in the ansatz language are still returned (not pre-filtered): the search
    parses them and counts the ``"parsing"`` failures itself.

    Parameters
    ----------
    client : openai.OpenAI, openai.AsyncOpenAI or ClientSpec
        Any OpenAI-compatible client (OpenRouter, OpenAI, Ollama, vLLM, llama.cpp...).
        Configure retries and timeouts on it (``max_retries=``, ``timeout=``).  A
        :class:`~llmlex.ClientSpec` is built into a client on the first call, where the
        call is made: a proposer made with one pickles (to a process pool, a Dask or Ray
        worker) without any key.
    model : str
        Model name as the endpoint knows it.
    system_prompt : str, optional
        Replaces :data:`DEFAULT_SYSTEM_PROMPT` (an empty string sends none).
    temperature : float, optional
        LLM sampling temperature (not the selection temperature of the genetic search);
        None leaves the server's default.
    max_tokens : int or None
        Cap on the reply length; None sends no cap.
    allowed_functions : sequence of str, optional
        The only functions an ansatz may use (listed in the prompt).  A request's own
        ``allowed_functions`` takes precedence.
    hints : sequence of str
        Prior knowledge written into every prompt; merged with a request's hints.
    request_timeout : float, optional
        Per-call timeout in seconds, overriding the client's, and a total deadline: the
        call (the client's retries included) is abandoned after this long even if the
        server is still sending, and counts as an ``"api"`` failure that cost one call.
        Without it, each call may take the client's ``timeout`` per attempt (the
        client's timeout alone bounds each read, not the whole reply).
    extra_body : dict, optional
        Extra JSON fields for the endpoint (e.g. OpenRouter's ``{"provider": ...}``).
    parent_plots : bool
        Draw the parents' curves over the data in later generations (default).  Each
        drawing costs ~0.1 s of CPU, serialised by the GIL, so a generation of ``n``
        children spends about ``n * 0.1`` s drawing before its last call is sent; False
        sends the data image instead and lists the parents in the text only.
    cache : ReplyCache, str, path-like or None
        An on-disk cache of replies (:class:`~llmlex.cache.ReplyCache`, or its
        directory).  A request whose content -- endpoint, model, messages, image,
        sampling options and the request's seed -- was answered before is answered from
        the cache with no HTTP call: the batch reports ``calls=0`` and no tokens, and
        ``cache_hits=1`` (see :class:`CachedProposalBatch`).  Failed calls are not cached.
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str = "openai/gpt-4o",
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = 1024,
        allowed_functions: Sequence[str] | None = None,
        hints: Sequence[str] = (),
        request_timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
        parent_plots: bool = True,
        cache: ReplyCache | str | os.PathLike[str] | None = None,
    ) -> None:
        check_client(client)
        if temperature is not None and not (0.0 <= float(temperature) <= 2.0):
            raise ValueError(f"temperature must be in [0, 2], got {temperature!r}")
        if max_tokens is not None and int(max_tokens) < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens!r}")
        self.client = client
        self.model = str(model)
        self.name = f"llm:{self.model}"
        self.system_prompt = system_prompt
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.allowed_functions = normalise_functions(allowed_functions)
        self.hints = _as_hints(hints)
        self.request_timeout = request_timeout
        self.extra_body = dict(extra_body) if extra_body else None
        self.parent_plots = bool(parent_plots)
        # Everything the API sees goes through the call module (cache, errors, counts).
        self.call = LLMCall(client, model=self.model, cache=cache)
        self.cache = self.call.cache
        self._images = _LRU(32)
        self._images_lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"LLMProposer(model={self.model!r}, base_url={self.call.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Locks and drawn images stay behind; the call carries a ClientSpec, never a
        # built client (LLMCall refuses to pickle an openai client: it holds the key).
        state = self.__dict__.copy()
        for name in ("_images", "_images_lock", "_key_locks"):
            del state[name]
        if self.call.spec is None and is_openai_client(self.client):
            raise unpicklable_client_error(self.client)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._images = _LRU(32)
        self._images_lock = threading.Lock()
        self._key_locks = {}

    @property
    def base_url(self) -> str:
        """The client's endpoint (named in error messages)."""
        return self.call.base_url

    # -- images ----------------------------------------------------------------------

    async def _image_for(self, request: ProposalRequest) -> tuple[str, str]:
        """The image to send and a stable key of its content.

        The key of a drawn image digests what was drawn (data, parents' ansätze and
        parameters) rather than the PNG bytes, so the reply cache does not depend on
        matplotlib rendering the same bytes on another machine or version.
        """
        if request.parents and self.parent_plots:
            key = "fits:" + _digest(
                request.x,
                request.y,
                *(np.asarray(p.params, dtype=float) for p in request.parents),
                text="|".join(f"{p.ansatz}:{p.nchi2!r}" for p in request.parents),
            )
            draw: Callable[[], str] = functools.partial(
                fits_image, request.x, request.y, request.parents
            )
        elif request.image is not None:
            return request.image, "image:" + hashlib.sha256(request.image.encode()).hexdigest()
        else:
            key = "data:" + _digest(request.x, request.y)
            draw = functools.partial(data_image, request.x, request.y)
        with self._images_lock:
            hit = self._images.get(key)
        if hit is not None:
            return hit, key
        return await asyncio.to_thread(self._render, key, draw), key  # CPU work off the loop

    def _render(self, key: str, draw: Callable[[], str]) -> str:
        """Draw once per key even when a whole generation asks at the same moment."""
        with self._images_lock:
            hit = self._images.get(key)
            if hit is not None:
                return hit
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._images_lock:
                hit = self._images.get(key)
            if hit is None:
                hit = draw()
                with self._images_lock:
                    self._images.put(key, hit)
                    self._key_locks.pop(key, None)
        return hit

    # -- the call --------------------------------------------------------------------

    def prompt_for(self, request: ProposalRequest) -> str:
        """The user prompt text this proposer sends for ``request``."""
        allowed = (
            normalise_functions(request.allowed_functions)
            if request.allowed_functions is not None
            else self.allowed_functions
        )
        hints = _merge_hints(self.hints, request.hints)
        if request.parents:
            return build_generation_prompt(
                request.x, request.y, request.parents, allowed_functions=allowed, hints=hints
            )
        return build_first_prompt(request.x, request.y, allowed_functions=allowed, hints=hints)

    async def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Ask the model for one child ansatz (see the class docstring for failures)."""
        text = self.prompt_for(request)
        image, image_key = await self._image_for(request)
        messages = build_messages(text, image, system_prompt=self.system_prompt)
        # The cache sees a key of what was drawn, not the PNG bytes (see _image_for).
        cache_messages = (
            build_messages(text, image_key, system_prompt=self.system_prompt)
            if self.cache is not None
            else None
        )
        log.debug("asking %s (generation %d)", self.model, request.generation)
        reply = await self.call.achat(
            messages,
            cache_messages=cache_messages,
            seed=request.seed,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            timeout=self.request_timeout,
            extra_body=self.extra_body,
        )
        spent = reply.usage
        if reply.content is None:
            return ProposalBatch(
                calls=spent.calls,
                prompt_tokens=spent.prompt_tokens,
                completion_tokens=spent.completion_tokens,
                failure=("api", reply.failure or reply.refused or "no reply"),
                prompt=text,
            )
        # Reading a long reply is CPU work: off the event loop, so that the other calls
        # in flight keep being served while it runs (it is also bounded, see _extract).
        batch = await asyncio.to_thread(
            self._batch_from_reply,
            reply.content,
            reply.finish_reason,
            calls=spent.calls,
            prompt_tokens=spent.prompt_tokens,
            completion_tokens=spent.completion_tokens,
            cache_hits=spent.cache_hits,
        )
        return dataclasses.replace(batch, prompt=text)

    def _batch_from_reply(
        self,
        content: str,
        finish: Any,
        *,
        calls: int,
        prompt_tokens: int,
        completion_tokens: int,
        cache_hits: int = 0,
    ) -> ProposalBatch:
        def fail(stage: Any, msg: str) -> ProposalBatch:
            log.info("LLM reply unusable (%s): %s", stage, msg)
            return CachedProposalBatch(
                calls=calls,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                failure=(stage, msg),
                reply=content,
                cache_hits=cache_hits,
            )

        if not content.strip():
            return fail("extraction", f"empty reply (finish_reason={finish})")
        proposals = extract_proposals(content)[:MAX_PROPOSALS_PER_REPLY]
        if not proposals:
            why = "no ansatz found in the reply"
            if finish == "length":
                why += " (cut off by max_tokens)"
            return fail("extraction", why)
        return CachedProposalBatch(
            proposals=tuple(proposals),
            calls=calls,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            reply=content,
            cache_hits=cache_hits,
        )


@dataclass(frozen=True)
class CachedProposalBatch(ProposalBatch):
    """A :class:`~llmlex.proposer.ProposalBatch` that also says whether it came from the
    reply cache (``cache_hits`` is 1 for a cached reply, which costs ``calls=0``)."""

    cache_hits: int = 0


def _as_hints(hints: Sequence[str] | str | None) -> tuple[str, ...]:
    if not hints:
        return ()
    if isinstance(hints, str):
        hints = [hints]
    return tuple(str(h).strip() for h in hints if str(h).strip())


def _merge_hints(*groups: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        for h in _as_hints(group):
            if h not in out:
                out.append(h)
    return tuple(out)


def _digest(*arrays: np.ndarray, text: str = "") -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        b = np.ascontiguousarray(a, dtype=float)
        h.update(str(b.shape).encode())
        h.update(b.tobytes())
    h.update(text.encode())
    return h.hexdigest()
