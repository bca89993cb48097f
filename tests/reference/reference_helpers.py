"""Helpers of the reference-compatibility tests: models' reply styles, the KAN guard.

The reference library's prompt asks a model to complete ``curve_1 = lambda x, *params:``
and its system prompt asks for "ONLY the ansatz formula".  Models answer in a handful of
styles (bare expression, a code block with the lambda line, prose then the line, an
inline backtick expression, a refusal).  :data:`REPLY_STYLES` writes a form in each; the
``reference_server`` fixture (conftest.py) answers every chat request with a form in the
styles in turn (:class:`StyledReplies`), so that a test written as a notebook cell meets
all of them.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest

REPLY_STYLES: dict[str, Callable[[str], str]] = {
    "bare": lambda form: form,
    "code block": lambda form: f"```python\ncurve_1 = lambda x, *params: {form}\n```",
    "prose then lambda": lambda form: (
        "Looking at the plot, the curve rises smoothly and bends over.\n\n"
        f"curve_1 = lambda x, *params: {form}"
    ),
    "inline backticks": lambda form: f"The function `{form}` would fit the data well.",
}
REFUSAL = "I'm sorry, but I can't help with identifying this function."


def _installed(name: str) -> bool:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


HAVE_KAN = _installed("torch") and _installed("kan")


def needs_kan(test: Callable[..., Any]) -> Callable[..., Any]:
    """A KAN test (``-m kan``), skipped without torch or pykan."""
    skip = pytest.mark.skipif(not HAVE_KAN, reason="needs torch and pykan (llmlex[kan])")
    return pytest.mark.kan(skip(test))


class StyledReplies:
    """Answers every request with ``form`` written in the next style of REPLY_STYLES."""

    def __init__(self, form: str) -> None:
        self.form = form
        self._styles = itertools.cycle(REPLY_STYLES.values())
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        with self._lock:
            style = next(self._styles)
        return style(self.form)
