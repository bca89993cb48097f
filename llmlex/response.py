"""Reading a model's reply, in the reference library's terms.

Code written for the reference library calls ``extract_ansatz(response)`` to find the
ansatz in a reply and ``fun_convert(ansatz)`` to turn it into a function of
``(x, *params)``, and counts calls in an ``APICallStats``.  Here the reply is read by
llmlex's extractor (:func:`llmlex.llm.extract_proposals`) and the function is compiled
by the safe ansatz language (:func:`llmlex.ansatz.parse_ansatz`): nothing in a reply is
ever evaluated as Python.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from llmlex._callstats import APICallStats
from llmlex._extract import extract_proposals
from llmlex.ansatz import parse_ansatz

__all__ = ["APICallStats", "extract_ansatz", "fun_convert"]

log = logging.getLogger(__name__)

_PARAM = re.compile(r"params\s*\[\s*(\d+)\s*\]")


def _text_of(response: Any) -> str:
    """The reply text of a string or a ``ChatCompletion``-like object."""
    if isinstance(response, str):
        return response
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        raise TypeError(
            "response must be a string or a chat completion "
            f"(with .choices[0].message.content), got {type(response).__name__}"
        ) from None
    return content or ""


def _count_params(text: str) -> int:
    found = [int(k) for k in _PARAM.findall(text)]
    return max(found) + 1 if found else 0


def extract_ansatz(response: Any) -> tuple[str, int]:
    """The first ansatz in a model's reply, and its number of parameters.

    Parameters
    ----------
    response : str or ChatCompletion
        The reply text, or the object ``call_model`` returns.

    Returns
    -------
    (str, int)
        The expression in ``x`` and ``params[i]`` (as the model wrote it, a
        ``lambda x, *params:`` header or ``curve_n =`` removed) and the largest parameter
        index plus one.

    Raises
    ------
    ValueError
        If the reply holds no expression with parameters.
    """
    log.debug("Extracting ansatz from model response")
    text = _text_of(response)
    for proposal in extract_proposals(text):
        n = _count_params(proposal.text)
        if n:
            return proposal.text, n
    log.debug("No parameters found in the response")
    raise ValueError(f"No parameters found in ansatz: {text[:200]!r}")


def fun_convert(ansatz: str | tuple[str, int]) -> tuple[Callable[..., np.ndarray], int, str]:
    """Compile an ansatz into a function ``f(x, *params)``.

    Parameters
    ----------
    ansatz : str or (str, int)
        The expression (a leading ``lambda x, *params:`` is dropped), or the pair
        :func:`extract_ansatz` returns.

    Returns
    -------
    (callable, int, str)
        ``f(x, *params)`` (``params`` indexed as in the text), the number of parameters,
        and the text as ``"lambda x,*params: <expression>"``.

    Raises
    ------
    ValueError
        If the text has no ``params[i]``, or is not an expression of the safe ansatz
        language (:class:`~llmlex.exceptions.AnsatzError`, a ``ValueError``).
    """
    text = ansatz[0] if isinstance(ansatz, tuple) else ansatz
    if not isinstance(text, str):
        raise TypeError(f"ansatz must be a string, got {type(text).__name__}")
    compiled = parse_ansatz(text)
    n = _count_params(text)
    if not n:
        raise ValueError(f"No parameters found in ansatz string: {text[:200]!r}")
    order = list(compiled.source_indices)

    def curve(x: Any, *params: float) -> np.ndarray:
        values = np.asarray(params, dtype=float).ravel()
        if values.size < n:
            raise TypeError(f"the ansatz takes {n} parameters, got {values.size}")
        return compiled(np.asarray(x, dtype=float), values[order])

    body = re.sub(r"^\s*lambda[^:]*:\s*", "", text)
    return curve, n, "lambda x,*params: " + body
