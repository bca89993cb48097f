"""The one place llmlex calls a language model: client, model, reply cache, budgets, counts.

* :class:`LLMCall` makes one chat-completion call through an ``openai.OpenAI`` or
  ``openai.AsyncOpenAI`` client (any OpenAI-compatible endpoint): it answers from the
  reply cache when it can, maps the errors that would recur on every call to
  :mod:`llmlex.exceptions`, and returns anything transient as a failed :class:`Reply`.
  :meth:`LLMCall.achat` is the asynchronous entry the proposer awaits;
  :meth:`LLMCall.complete_text` a synchronous one for plain threads and notebooks.
* :class:`Ledger` counts what was spent (calls, tokens, cache hits, money at the given
  prices) and enforces :class:`Budgets`.  A paid call *reserves* its place before it
  starts, so concurrent callers never exceed ``max_calls``; tokens and cost are known only
  when a call returns, so calls already in flight may overshoot those two.

Retries, backoff and timeouts are the openai client's own (configure ``max_retries=`` and
``timeout=`` on it); nothing here wraps a second retry loop around them.  The client's
timeout bounds each *read* of the response, so a server that sends a byte now and then
never trips it: every call therefore also has a total deadline (:func:`call_deadline`),
past which it is abandoned and returned as a failed :class:`Reply` (``APITimeoutError``).
``openai`` is imported only when a call is made.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llmlex._aio import run_sync
from llmlex._clientspec import ClientSpec, is_openai_client
from llmlex.cache import ReplyCache, as_cache, request_key
from llmlex.exceptions import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMModelNotFoundError,
)

__all__ = [
    "Budgets",
    "LLMCall",
    "Ledger",
    "Reply",
    "Usage",
    "call_deadline",
    "check_client",
    "check_prices",
    "is_async_client",
    "unpicklable_client_error",
]

log = logging.getLogger(__name__)

#: Error classes that mean "the server could not be reached" (not "it answered badly").
CONNECTION_ERRORS = ("APIConnectionError", "APITimeoutError")

#: Seconds allowed for the client's wait between two attempts (its backoff is at most
#: 8 s; a server's ``retry-after`` may ask for more, and is then cut short).
_RETRY_WAIT = 10.0


def call_deadline(client: Any, timeout: float | None = None) -> float | None:
    """The total time one call may take, in seconds (None: unbounded).

    ``timeout`` (a per-call timeout such as ``LLMProposer(request_timeout=)``) is the
    deadline itself, retries included.  Without it, the client's own ``timeout`` is
    allowed for each of its ``1 + max_retries`` attempts, plus a pause between them and
    a second of slack.

    Parameters
    ----------
    client : openai.OpenAI or openai.AsyncOpenAI
        The client (its ``timeout`` and ``max_retries`` attributes are read).
    timeout : float, optional
        A per-call timeout in seconds.

    Returns
    -------
    float or None
        Seconds, or None when neither gives a finite bound.
    """
    if timeout is not None:
        return float(timeout) if float(timeout) > 0 else None
    per_attempt = _seconds(getattr(client, "timeout", None))
    if per_attempt is None:
        return None
    retries = getattr(client, "max_retries", 0)
    retries = retries if isinstance(retries, int) and retries >= 0 else 0
    # One second of slack, so that the client's own timeout error (more specific) is the
    # one reported whenever it fires.
    return per_attempt * (retries + 1) + _RETRY_WAIT * retries + 1.0


def _seconds(timeout: Any) -> float | None:
    """A client timeout (a number or an ``httpx.Timeout``) as the longest of its parts."""
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout) if math.isfinite(timeout) and timeout > 0 else None
    parts = [getattr(timeout, name, None) for name in ("connect", "read", "write", "pool")]
    values = [float(v) for v in parts if isinstance(v, (int, float)) and math.isfinite(v)]
    # A part left unset (None) means "no limit" for that phase: no finite total.
    if not values or any(v is None for v in parts):
        return None
    return max(values)


@dataclass(frozen=True)
class Usage:
    """What one call (or a sum of calls) spent.

    Attributes
    ----------
    calls : int
        Paid API calls (0 for a reply from the cache).
    prompt_tokens, completion_tokens : int
        As reported by the server (``usage``), 0 if not reported.
    cache_hits : int
        Replies answered from the cache.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0

    @property
    def total_tokens(self) -> int:
        """``prompt_tokens + completion_tokens``."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Reply:
    """The outcome of one :meth:`LLMCall.achat`.

    Attributes
    ----------
    content : str or None
        The reply text; None when there is no reply (the call failed or was refused).
    finish_reason : str or None
        ``choices[0].finish_reason`` (``"length"``: cut off by ``max_tokens``).
    usage : Usage
        What the call spent.
    failure : str or None
        ``"<ErrorClass>: message"`` when the call failed after the client's retries
        (429, 5xx, timeouts, refused connections, malformed responses).
    refused : str or None
        The spent budget that kept the call from starting (no request was sent).
    """

    content: str | None
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    failure: str | None = None
    refused: str | None = None


@dataclass(frozen=True)
class Budgets:
    """Spending limits (None: unlimited).

    Attributes
    ----------
    max_calls : int or None
        Paid API calls.
    max_tokens : int or None
        Prompt plus completion tokens.
    max_cost : float or None
        US dollars, at the prices given to the :class:`Ledger`.
    """

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None

    def __post_init__(self) -> None:
        for name, limit in (("max_calls", self.max_calls), ("max_tokens", self.max_tokens)):
            if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {limit!r}")
        if self.max_cost is not None and not (self.max_cost >= 0):
            raise ValueError(f"max_cost must be non-negative, got {self.max_cost!r}")


def check_prices(
    prices: Mapping[str, Sequence[float]] | None,
) -> dict[str, tuple[float, float]]:
    """Validate ``{model: (usd_per_1M_prompt_tokens, usd_per_1M_completion_tokens)}``.

    Raises
    ------
    ValueError
        For a pair that is not two finite, non-negative numbers.
    """
    out: dict[str, tuple[float, float]] = {}
    for name, pair in (prices or {}).items():
        try:
            p_in, p_out = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(
                f"prices[{name!r}] must be (usd_per_1M_prompt_tokens, "
                f"usd_per_1M_completion_tokens), got {pair!r}"
            ) from None
        if not (p_in >= 0 and p_out >= 0 and math.isfinite(p_in + p_out)):
            raise ValueError(f"prices[{name!r}] must be finite and non-negative, got {pair!r}")
        out[str(name)] = (p_in, p_out)
    return out


class Ledger:
    """Counts of what was spent, and the budgets they are held to.

    Safe to share between threads and between the coroutines of one event loop: every
    check-and-reserve happens under one lock.

    Parameters
    ----------
    budgets : Budgets, optional
        Limits; none by default.
    price : tuple of float, optional
        USD per million (prompt, completion) tokens of the model being called; with a
        price, :attr:`cost` counts money from 0.

    Attributes
    ----------
    calls, prompt_tokens, completion_tokens, cache_hits : int
        Totals so far.
    cost : float or None
        USD spent so far; None while no price was known.
    reserved : int
        Paid calls started and not yet recorded.
    """

    def __init__(
        self, budgets: Budgets | None = None, *, price: tuple[float, float] | None = None
    ) -> None:
        self.budgets = budgets if budgets is not None else Budgets()
        self.calls = self.prompt_tokens = self.completion_tokens = self.cache_hits = 0
        self.cost: float | None = None
        self.reserved = 0
        self._price: tuple[float, float] | None = None  # USD per token
        self._lock = threading.Lock()
        self.set_price(price)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]  # locks do not pickle; a new one is made on loading
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Ledger(calls={self.calls}, tokens={self.prompt_tokens + self.completion_tokens}, "
            f"cache_hits={self.cache_hits}, cost={self.cost!r})"
        )

    @property
    def usage(self) -> Usage:
        """The totals as a :class:`Usage`."""
        return Usage(self.calls, self.prompt_tokens, self.completion_tokens, self.cache_hits)

    def set_price(self, per_million: tuple[float, float] | None) -> None:
        """Price the calls recorded from now on (None: their cost is unknown)."""
        with self._lock:
            self._price = None
            if per_million is not None:
                self._price = (per_million[0] / 1e6, per_million[1] / 1e6)
                if self.cost is None:
                    self.cost = 0.0

    def restore(self, usage: Usage, cost: float | None) -> None:
        """Continue from earlier totals (a resumed run)."""
        with self._lock:
            self.calls, self.prompt_tokens = usage.calls, usage.prompt_tokens
            self.completion_tokens, self.cache_hits = usage.completion_tokens, usage.cache_hits
            self.cost = cost

    def spent(self) -> str | None:
        """Which budget forbids a new paid call, or None."""
        with self._lock:
            return self._spent()

    def _spent(self) -> str | None:
        b = self.budgets
        if b.max_calls is not None and self.calls + self.reserved >= b.max_calls:
            return f"max_calls budget of {b.max_calls} calls reached"
        if b.max_tokens is not None and self.prompt_tokens + self.completion_tokens >= b.max_tokens:
            return f"max_tokens budget of {b.max_tokens} tokens reached"
        if b.max_cost is not None and (self.cost or 0.0) >= b.max_cost:
            return f"max_cost budget of {b.max_cost:g} USD reached"
        return None

    def reserve(self) -> str | None:
        """Reserve one paid call, or say which budget forbids it.

        Returns
        -------
        str or None
            None if the call may start (then call :meth:`release` once it returned, and
            :meth:`record` what it spent); else the reason it may not.
        """
        with self._lock:
            reason = self._spent()
            if reason is None:
                self.reserved += 1
            return reason

    def release(self) -> None:
        """End a reservation made by :meth:`reserve`."""
        with self._lock:
            self.reserved -= 1

    def record(self, usage: Usage) -> None:
        """Add what a call (or a proposer's batch of calls) spent."""
        with self._lock:
            self.calls += usage.calls
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.cache_hits += usage.cache_hits
            if self._price is not None:
                spent = usage.prompt_tokens * self._price[0]
                spent += usage.completion_tokens * self._price[1]
                self.cost = (self.cost or 0.0) + spent


def check_client(client: Any) -> None:
    """Raise :class:`TypeError` unless ``client`` looks like an OpenAI client or is a
    :class:`~llmlex.ClientSpec`."""
    if isinstance(client, ClientSpec):
        return
    if client is None or not hasattr(client, "chat"):
        raise TypeError(
            "client must be an openai.OpenAI or openai.AsyncOpenAI instance or a "
            f"llmlex.ClientSpec, got {type(client).__name__}"
        )


def unpicklable_client_error(client: Any) -> TypeError:
    """The error for an ``openai`` client that was to be sent to another process."""
    return TypeError(
        f"an {type(client).__name__} client cannot be sent to another process (it holds "
        "locks, connections and the API key): pass llmlex.ClientSpec(base_url=..., "
        "api_key_env=...) instead, and each process builds its own client from its own "
        "environment"
    )


class LLMCall:
    """Chat-completion calls to one model through one client.

    Parameters
    ----------
    client : openai.OpenAI, openai.AsyncOpenAI or ClientSpec
        Any OpenAI-compatible client; its retries and timeouts apply.  A
        :class:`~llmlex.ClientSpec` is built into a client on the first call, in the
        process that calls (so a pickled ``LLMCall`` carries the description, never a
        client or a key).
    model : str
        Model name as the endpoint knows it.
    cache : ReplyCache, str, path-like or None
        Replies already given for the same request are answered from here, with no call.
    ledger : Ledger, optional
        If given, every call reserves a place in its budgets before it starts and records
        what it spent; a call the budgets forbid is refused (``Reply.refused``).  Without
        one, the caller does its own accounting from :attr:`Reply.usage`.

    Raises
    ------
    TypeError
        If ``client`` has no ``chat`` attribute.
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        cache: ReplyCache | str | os.PathLike[str] | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        check_client(client)
        self.spec = client if isinstance(client, ClientSpec) else None
        self._client = None if self.spec is not None else client
        self.model = str(model)
        self.cache = as_cache(cache)
        self.ledger = ledger
        self._build_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LLMCall(model={self.model!r}, base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_build_lock"]
        if self.spec is not None:
            state["_client"] = None  # rebuilt from the spec where it is used
        elif is_openai_client(self._client):
            raise unpicklable_client_error(self._client)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The client (built from the :class:`~llmlex.ClientSpec` on first use)."""
        if self._client is None:
            assert self.spec is not None
            with self._build_lock:
                if self._client is None:
                    self._client = self.spec.build()
        return self._client

    @property
    def _async(self) -> bool:
        if self.spec is not None:
            return self.spec.asynchronous
        return is_async_client(self._client)

    @property
    def base_url(self) -> str:
        """The client's endpoint (for messages and cache keys)."""
        if self._client is None and self.spec is not None:
            return self.spec.url  # as the client will spell it, without building it
        return str(getattr(self._client, "base_url", "<unknown base_url>"))

    def redact(self, text: str) -> str:
        """``text`` with the client's API key and anything key-like masked."""
        key = getattr(self._client, "api_key", None)
        if isinstance(key, str) and len(key) >= 4:
            text = text.replace(key, "***")
        return _KEYLIKE.sub("***", text)

    def cache_key(
        self, messages: list[dict[str, Any]], *, seed: int, options: Mapping[str, Any]
    ) -> str:
        """The reply-cache key of a request (see :mod:`llmlex.cache`)."""
        return request_key(
            {
                "base_url": self.base_url,
                "model": self.model,
                "messages": messages,
                "temperature": options.get("temperature"),
                "max_tokens": options.get("max_tokens"),
                "extra_body": options.get("extra_body"),
                # Identical prompts (all of a first generation) must map to distinct replies.
                "seed": int(seed),
            }
        )

    async def achat(
        self,
        messages: list[dict[str, Any]],
        *,
        cache_messages: list[dict[str, Any]] | None = None,
        seed: int = 0,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Reply:
        """Make one call (or answer it from the cache).

        Parameters
        ----------
        messages : list of dict
            Chat messages in the OpenAI format.
        cache_messages : list of dict, optional
            The messages as the cache key should see them (e.g. with a drawn image
            replaced by a stable key of what was drawn); default ``messages``.
        seed : int
            Tells apart cached replies to identical messages.
        max_tokens, temperature : optional
            Sampling options sent to the endpoint (None: the server's default).
        timeout : float, optional
            Per-call timeout in seconds, overriding the client's: the call, retries
            included, is abandoned after this long even if the server keeps sending
            (see :func:`call_deadline`), and is then a failed reply that cost one call.
        extra_body : mapping, optional
            Extra JSON fields for the endpoint.

        Returns
        -------
        Reply
            The text, or why there is none.

        Raises
        ------
        LLMAuthenticationError
            The endpoint rejected the key (401/403).
        LLMModelNotFoundError
            The endpoint does not serve the model (404).
        """
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        optional = {"max_tokens": max_tokens, "temperature": temperature, "timeout": timeout}
        kwargs.update((k, v) for k, v in optional.items() if v is not None)
        if extra_body:
            kwargs["extra_body"] = dict(extra_body)
        if self.cache is None:
            return (await self._paid_call(kwargs))[0]
        shown = messages if cache_messages is None else cache_messages
        key = self.cache_key(shown, seed=seed, options=kwargs)
        hit = await asyncio.to_thread(self.cache.get, key)
        if hit is not None:
            log.debug("reply of %s from the cache", self.model)
            usage = Usage(cache_hits=1)
            if self.ledger is not None:
                self.ledger.record(usage)
            return Reply(str(hit.get("content") or ""), hit.get("finish_reason"), usage)
        reply, completion = await self._paid_call(kwargs)
        if reply.content is not None:
            # Only replies the model actually gave are kept (also those without an
            # ansatz, so that a re-run replays them); transport failures are not.
            entry = {
                "content": reply.content,
                "finish_reason": _finish_reason(completion),
                "model": self.model,
                "prompt_tokens": reply.usage.prompt_tokens,
                "completion_tokens": reply.usage.completion_tokens,
            }
            await asyncio.to_thread(self.cache.put, key, entry)
        return reply

    def complete_text(self, messages: list[dict[str, Any]], **options: Any) -> tuple[str, Usage]:
        """Synchronous :meth:`achat` returning the reply text and what it spent.

        Usable from plain threads and inside a running event loop (a Jupyter cell): the
        call then runs on a fresh loop in a worker thread.  ``options`` are those of
        :meth:`achat`.

        Returns
        -------
        tuple (str, Usage)
            The reply text (possibly empty) and its usage.

        Raises
        ------
        LLMAuthenticationError, LLMModelNotFoundError
            As :meth:`achat`.
        LLMConnectionError
            The server could not be reached or timed out (after the client's retries).
        LLMError
            Any other failed call, or a spent budget of the :class:`Ledger`.
        """
        reply = run_sync(self.achat(messages, **options))
        if reply.content is not None:
            return reply.content, reply.usage
        if reply.refused is not None:
            raise LLMError(f"no call made: {reply.refused}")
        failure = reply.failure or "no reply"
        if failure.startswith(CONNECTION_ERRORS):
            raise LLMConnectionError(failure)
        raise LLMError(failure)

    async def _paid_call(self, kwargs: dict[str, Any]) -> tuple[Reply, Any]:
        """One request within the ledger's budgets (if any), recorded in it."""
        if self.ledger is None:
            return await self._call(kwargs)
        reason = self.ledger.reserve()
        if reason is not None:
            return Reply(None, refused=reason), None
        try:
            reply, completion = await self._call(kwargs)
        finally:
            self.ledger.release()
        self.ledger.record(reply.usage)
        return reply, completion

    async def _call(self, kwargs: dict[str, Any]) -> tuple[Reply, Any]:
        """One request, its errors mapped (the completion is returned for the cache)."""
        import openai

        log.debug("calling %s at %s", self.model, self.base_url)
        deadline = call_deadline(self.client, kwargs.get("timeout"))
        try:
            if deadline is None:
                completion = await self._create(kwargs)
            else:
                # The client's timeout is per read: a server dripping its reply would
                # hold the call for ever.  An async call is cancelled (its connection
                # closed); a blocking one is abandoned in its thread, its late result
                # never read.
                completion = await asyncio.wait_for(self._create(kwargs), deadline)
        except asyncio.TimeoutError:
            msg = (
                f"APITimeoutError: no complete reply from {self.base_url} within "
                f"{deadline:g} s (the per-call deadline)"
            )
            log.info("LLM call failed: %s", msg)
            return Reply(None, usage=Usage(calls=1), failure=msg), None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            # Raised without chaining: the server's message may echo the key.
            raise LLMAuthenticationError(
                f"the API key was rejected by {self.base_url} (HTTP {err.status_code}): "
                f"{self.redact(_message(err))}. Check the key for this endpoint (e.g. the "
                "OPENROUTER_API_KEY / OPENAI_API_KEY environment variable)."
            ) from None
        except openai.NotFoundError as err:
            raise LLMModelNotFoundError(
                f"model {self.model!r} not found at {self.base_url} (HTTP 404): "
                f"{self.redact(_message(err))}. Check the model name as this endpoint "
                "spells it (OpenRouter: 'openai/gpt-4o', OpenAI: 'gpt-4o') and that "
                "base_url ends with the API root (e.g. '/v1')."
            ) from None
        except (openai.OpenAIError, json.JSONDecodeError) as err:
            # 429/5xx after the client's retries, timeouts, refused connections, bad JSON.
            msg = f"{type(err).__name__}: {self.redact(_message(err))}"
            if isinstance(err, openai.APIConnectionError):
                msg += f" (calling {self.base_url})"  # which server could not be reached
            log.info("LLM call failed: %s", msg)
            return Reply(None, usage=Usage(calls=1), failure=msg[:500]), None
        return _reply_from(completion), completion

    async def _create(self, kwargs: dict[str, Any]) -> Any:
        create = self.client.chat.completions.create
        if self._async:
            return await create(**kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_sync_executor(), functools.partial(create, **kwargs))


def _reply_from(completion: Any) -> Reply:
    usage = getattr(completion, "usage", None)
    spent = Usage(
        calls=1,
        prompt_tokens=_int(getattr(usage, "prompt_tokens", 0)),
        completion_tokens=_int(getattr(usage, "completion_tokens", 0)),
    )
    choices = getattr(completion, "choices", None)
    if isinstance(completion, str) or not choices:
        body = completion if isinstance(completion, str) else repr(completion)
        msg = f"MalformedResponse: no choices in the response: {body[:200]}"
        log.info("LLM reply unusable (api): %s", msg)
        return Reply(None, usage=spent, failure=msg)
    choice = choices[0]
    message = getattr(choice, "message", None)
    return Reply(
        _content_text(getattr(message, "content", None)),
        getattr(choice, "finish_reason", None),
        spent,
    )


_SYNC_EXECUTOR: ThreadPoolExecutor | None = None
_SYNC_EXECUTOR_PID = 0
_SYNC_EXECUTOR_LOCK = threading.Lock()
# Blocking calls of synchronous clients run here rather than in asyncio's default pool,
# whose size (min(32, cpu + 4): 6 on two cores) would silently cap the concurrency of a
# generation.  The threads mostly wait on sockets.
_SYNC_WORKERS = 64


def _sync_executor() -> ThreadPoolExecutor:
    global _SYNC_EXECUTOR, _SYNC_EXECUTOR_PID
    with _SYNC_EXECUTOR_LOCK:
        # A process forked from one that had the pool (a fork-based process pool) has
        # the pool object without its threads: work queued there would never run.
        if _SYNC_EXECUTOR is None or os.getpid() != _SYNC_EXECUTOR_PID:
            _SYNC_EXECUTOR_PID = os.getpid()
            _SYNC_EXECUTOR = ThreadPoolExecutor(
                max_workers=_SYNC_WORKERS, thread_name_prefix="llmlex-llm"
            )
        return _SYNC_EXECUTOR


def is_async_client(client: Any) -> bool:
    try:
        import openai

        if isinstance(client, openai.AsyncOpenAI):
            return True
        if isinstance(client, openai.OpenAI):
            return False
    except ImportError:  # pragma: no cover - openai is a dependency
        pass
    create = client.chat.completions.create
    return inspect.iscoroutinefunction(inspect.unwrap(create))


_KEYLIKE = re.compile(r"\b(?:sk|pk|key|or)-[A-Za-z0-9_\-]{6,}")


def _finish_reason(completion: Any) -> str | None:
    choices = getattr(completion, "choices", None) or [None]
    reason = getattr(choices[0], "finish_reason", None)
    return None if reason is None else str(reason)


def _message(err: BaseException) -> str:
    msg = getattr(err, "message", None) or str(err) or type(err).__name__
    return " ".join(str(msg).split())[:400]


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _content_text(content: Any) -> str:
    """Message content as text (some servers send a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text", "")))
            else:
                parts.append(str(getattr(part, "text", "") or ""))
        return "\n".join(parts)
    return str(content)
