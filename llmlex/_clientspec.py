"""A picklable description of an OpenAI-compatible client, built where the calls are made.

An ``openai.OpenAI`` client holds locks, a connection pool and the API key: it cannot be
sent to another process (a process pool, a Dask or Ray worker), and should not be.
:class:`ClientSpec` says *how* to build one -- endpoint, the name of the environment
variable that holds the key, timeout, retries -- and is accepted wherever a client is
(:func:`llmlex.run_genetic`, :func:`llmlex.run_many`, :func:`llmlex.kan_to_symbolic`,
:class:`llmlex.LLMLExRegressor`).  The client is built on first use, in the process that
calls, from *that* process's environment: the key never travels in a pickle.

``openai`` is imported only when a client is built.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from typing import Any

from llmlex.exceptions import LLMAuthenticationError

__all__ = ["OPENROUTER_URL", "ClientSpec", "is_openai_client"]

#: OpenRouter's API root (:meth:`ClientSpec.openrouter`).
OPENROUTER_URL = "https://openrouter.ai/api/v1"
#: Where the openai client sends requests when neither ``base_url`` nor
#: ``OPENAI_BASE_URL`` says otherwise.
_OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class ClientSpec:
    """How to build an OpenAI-compatible client, without the key.

    Parameters
    ----------
    base_url : str, optional
        The API root (``"https://openrouter.ai/api/v1"``, ``"http://localhost:11434/v1"``).
        None: the ``OPENAI_BASE_URL`` environment variable of the process that builds
        the client, else OpenAI's.
    api_key_env : str or None
        The environment variable holding the API key, read when the client is built (on
        a worker: in the worker's environment).  None for a local server that needs no
        key (the client then sends ``"not-needed"``).
    timeout : float or None
        Seconds per attempt of each call (the openai client's ``timeout``); None: the
        client's default.
    max_retries : int
        The openai client's retries per call (429, 5xx, connection errors).
    asynchronous : bool
        Build an ``openai.AsyncOpenAI`` instead of an ``openai.OpenAI``.  The blocking
        client (the default) is the safe choice for objects reused across event loops;
        llmlex runs its calls in a thread pool, concurrently either way.

    Examples
    --------
    >>> spec = ClientSpec(base_url="http://localhost:11434/v1", api_key_env=None)
    >>> spec
    ClientSpec(base_url='http://localhost:11434/v1', api_key_env=None, timeout=60.0, max_retries=2, asynchronous=False)
    >>> client = spec.build()  # doctest: +SKIP
    """  # noqa: E501

    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    timeout: float | None = 60.0
    max_retries: int = 2
    asynchronous: bool = False

    def __post_init__(self) -> None:
        if self.base_url is not None and not isinstance(self.base_url, str):
            raise TypeError(f"base_url must be a string or None, got {self.base_url!r}")
        env = self.api_key_env
        if env is not None and (not isinstance(env, str) or not env.strip()):
            raise ValueError(f"api_key_env must name an environment variable, got {env!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, (int, float))
            and math.isfinite(self.timeout)
            and self.timeout > 0
        ):
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {retries!r}")

    @classmethod
    def openrouter(cls, **options: Any) -> ClientSpec:
        """OpenRouter, its key in ``OPENROUTER_API_KEY`` (``options``: the other fields)."""
        options.setdefault("api_key_env", "OPENROUTER_API_KEY")
        return cls(base_url=OPENROUTER_URL, **options)

    @property
    def url(self) -> str:
        """The endpoint as the client built here would spell it (with a trailing slash).

        Reads ``OPENAI_BASE_URL`` of this process when ``base_url`` is None.
        """
        url = self.base_url or os.environ.get("OPENAI_BASE_URL") or _OPENAI_URL
        return url if url.endswith("/") else url + "/"

    def api_key(self) -> str:
        """The key from this process's environment (``"not-needed"`` without a variable).

        Raises
        ------
        LLMAuthenticationError
            If the variable is not set here (the message names the machine: on a
            cluster, each worker needs it in its own environment).
        """
        if self.api_key_env is None:
            return "not-needed"
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LLMAuthenticationError(
                f"the environment variable {self.api_key_env} (the API key of {self.url}) "
                f"is not set in this process on {socket.gethostname()}: a ClientSpec "
                "takes the key from the environment of the process that makes the calls "
                "(on a Dask or Ray worker, the worker's own environment)"
            )
        return key

    def build(self) -> Any:
        """A new ``openai.OpenAI`` (or ``AsyncOpenAI``) client, with the key from here.

        Returns
        -------
        openai.OpenAI or openai.AsyncOpenAI

        Raises
        ------
        LLMAuthenticationError
            If ``api_key_env`` is not set in this process's environment.
        """
        import openai

        cls = openai.AsyncOpenAI if self.asynchronous else openai.OpenAI
        options: dict[str, Any] = {"max_retries": self.max_retries}
        if self.timeout is not None:
            options["timeout"] = float(self.timeout)
        return cls(base_url=self.url, api_key=self.api_key(), **options)


def is_openai_client(client: Any) -> bool:
    """Whether ``client`` is an ``openai`` client object (which cannot be pickled)."""
    module = type(client).__module__ or ""
    return module == "openai" or module.startswith("openai.")
