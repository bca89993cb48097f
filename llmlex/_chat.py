"""The reference library's raw model calls, prompt and key queries.

Code written for the reference library builds its own prompt with ``get_prompt``, calls
the model with ``call_model`` / ``async_call_model`` (and reads the raw
``ChatCompletion``), and checks an OpenRouter key's remaining credit with
``check_key_limit`` before and after a run.  These functions keep those signatures and
return values.  The search itself never uses them: its calls go through
:class:`llmlex._llmcall.LLMCall` (reply cache, error mapping, budgets).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from llmlex._aio import run_sync
from llmlex._clientspec import ClientSpec
from llmlex._llmcall import is_async_client
from llmlex._prompts import DEFAULT_SYSTEM_PROMPT

__all__ = [
    "async_call_model",
    "call_model",
    "check_key_limit",
    "check_key_usage",
    "get_prompt",
]

log = logging.getLogger(__name__)

#: The reply-length cap of the reference's calls.
MAX_TOKENS = 4096
#: Seconds allowed for a key query.
KEY_TIMEOUT = 30.0


def get_prompt(
    function_list: Sequence[tuple[str, Any]] | None = None,
    imports: Sequence[str] | None = None,
) -> str:
    """The reference's user prompt: the import lines, one ``curve_n = lambda x, *params:
    <ansatz>`` line per entry of ``function_list``, then an open ``curve_N`` line for the
    model to complete.

    Parameters
    ----------
    function_list : sequence of (str, object), optional
        Earlier ansätze (only the text of each pair is used); default
        ``[("params[0]", 1)]``.
    imports : sequence of str, optional
        Lines written first; default ``["import numpy as np"]``.

    Returns
    -------
    str
        For the defaults: ``"import numpy as np\\ncurve_0 = lambda x, *params: params[0]
        \\ncurve_1 = lambda x, *params:"``.
    """
    functions = [("params[0]", 1)] if function_list is None else list(function_list)
    lines = ["import numpy as np"] if imports is None else list(imports)
    text = "".join(f"{line}\n" for line in lines)
    text += "".join(
        f"curve_{n} = lambda x, *params: {item[0]} \n" for n, item in enumerate(functions)
    )
    return text + f"curve_{len(functions)} = lambda x, *params:"


def _request(
    client: Any, model: str, image: str, prompt: str, system_prompt: str | None
) -> tuple[Any, Any, dict[str, Any]]:
    """The client (built from a spec), its ``create`` and the reference's request: the
    image first, then the text, at most :data:`MAX_TOKENS` tokens back."""
    client = client.build() if isinstance(client, ClientSpec) else client
    url = image if image.startswith("data:") else f"data:image/png;base64,{image}"
    system = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
    user = [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": prompt},
    ]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    kwargs = {"model": model, "messages": messages, "max_tokens": MAX_TOKENS}
    return client, client.chat.completions.create, kwargs


def call_model(
    client: Any, model: str, image: str, prompt: str, system_prompt: str | None = None
) -> Any:
    """One chat-completion call with a base64 image; the raw response.

    Parameters
    ----------
    client : openai.OpenAI, openai.AsyncOpenAI or ClientSpec
        The client (an async one is awaited on a private event loop; a spec is built).
    model : str
        The model name.
    image : str
        Base64 PNG (a ``data:`` URL is sent as it is).
    prompt : str
        The user text, e.g. from :func:`get_prompt`.
    system_prompt : str, optional
        Replaces llmlex's default system prompt.

    Returns
    -------
    openai.types.chat.ChatCompletion
        As the client returns it (``response.choices[0].message.content`` is the text).
        The client's errors (``openai.APIError`` and its subclasses) go through.
    """
    client, create, kwargs = _request(client, model, image, prompt, system_prompt)
    if is_async_client(client):
        return run_sync(create(**kwargs))
    return create(**kwargs)


async def async_call_model(
    client: Any, model: str, image: str, prompt: str, system_prompt: str | None = None
) -> Any:
    """:func:`call_model` as a coroutine (a blocking client runs in a worker thread)."""
    client, create, kwargs = _request(client, model, image, prompt, system_prompt)
    if is_async_client(client):
        return await create(**kwargs)
    return await asyncio.to_thread(create, **kwargs)


def _key_info(client: Any) -> tuple[int, Any]:
    """``GET {base_url}/auth/key`` (OpenRouter's key endpoint): status and JSON or text."""
    client = client.build() if isinstance(client, ClientSpec) else client
    url = f"{str(client.base_url).rstrip('/')}/auth/key"
    log.debug("Checking API key usage limit")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=KEY_TIMEOUT) as response:
            return 200, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        text = err.read().decode("utf-8", "replace")
        log.error("API key check failed (HTTP %d): %s", err.code, text[:200])
        return err.code, text


def check_key_limit(client: Any) -> Any:
    """The credit left on the client's key, from OpenRouter's ``/auth/key`` endpoint.

    Parameters
    ----------
    client : openai.OpenAI or openai.AsyncOpenAI
        A client whose ``base_url`` serves ``/auth/key`` (OpenRouter does; others
        answer with an error).

    Returns
    -------
    float, None or str
        ``data["limit_remaining"]`` of the reply (None for a key without a limit); on
        an HTTP error, the reply's text (logged as an error), as the reference does.
        Network errors (:class:`urllib.error.URLError`, timeouts) go through.
    """
    status, body = _key_info(client)
    if status != 200:
        return body
    remaining = body["data"]["limit_remaining"]
    log.info("API key check successful. Remaining limit: %s", remaining)
    return remaining


def check_key_usage(client: Any) -> Any:
    """The credit used by the client's key (``data["usage"]`` of ``/auth/key``); on an
    HTTP error the reply's text, as :func:`check_key_limit`."""
    status, body = _key_info(client)
    if status != 200:
        return body
    usage = body["data"]["usage"]
    log.info("API key check successful. Usage: %s", usage)
    return usage
