"""KAN tests: torch keeps to one thread (the machine is shared), when torch is there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kan_helpers import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # torch would otherwise spawn a thread per core in every test.
    if torch is None:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
