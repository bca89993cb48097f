"""Fixtures of the reference-compatibility tests: the local server answering as models do
(see :mod:`reference_helpers`), and the reference README's data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from reference_helpers import StyledReplies


@pytest.fixture
def reference_server(fake_openai: Any) -> Iterator[Any]:
    """The local server answering ``params[0] * np.exp(-params[1] * x)`` in every style
    (``fake_openai.reply_with(StyledReplies(form))`` changes the form)."""
    fake_openai.reply_with(StyledReplies("params[0] * np.exp(-params[1] * x)"))
    yield fake_openai


@pytest.fixture
def decay() -> tuple[np.ndarray, np.ndarray]:
    """Data of the reference's README: ``2.5 * exp(-0.7 x)`` on 50 points."""
    x = np.linspace(0.0, 5.0, 50)
    return x, 2.5 * np.exp(-0.7 * x)
