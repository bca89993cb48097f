"""Shared fixtures.

``fake_openai``: a running :class:`tests.fake_openai.FakeOpenAIServer` on 127.0.0.1
(``.base_url`` ends in ``/v1``), stopped at teardown.  Script it with ``.reply_with(...)``,
``.enqueue(...)``, ``.latency``; inspect ``.requests``, ``.max_in_flight``, ``.calls``.
``openai_client`` / ``make_client``: ``openai.OpenAI`` clients pointed at it, with no
retries and a short timeout so that faults are fast.  Async clients:
``fake_openai.async_client()`` (close them in the loop that used them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # tests/ helpers import as top-level modules

from fake_openai import FakeOpenAIServer

# Property tests draw the same examples on every run (a red CI must mean a change broke
# something, not an unlucky draw); LLMLEX_HYPOTHESIS=random explores new ones.
settings.register_profile("llmlex", derandomize=True)
settings.register_profile("random", derandomize=False)
settings.load_profile("random" if os.environ.get("LLMLEX_HYPOTHESIS") == "random" else "llmlex")


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A fresh fake OpenAI-compatible server for one test."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_client(fake_openai: FakeOpenAIServer) -> Callable[..., openai.OpenAI]:
    """Factory ``make_client(max_retries=0, timeout=10.0, api_key="test-key")``."""
    return fake_openai.client


@pytest.fixture
def openai_client(fake_openai: FakeOpenAIServer) -> openai.OpenAI:
    """A synchronous client for ``fake_openai`` (no retries, 10 s timeout)."""
    return fake_openai.client()
