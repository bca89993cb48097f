"""Asking a language model for simpler forms of an assembled KAN formula.

One request per output: the formula (8 significant digits) and its variables go out, and
each line of the reply is parsed by the whitelist parser
(:func:`llmlex._kan_sympy.parse_expression`), never evaluated.  The parsed forms are only
candidates: :class:`llmlex._kan_select.Selection` refits and judges each on held-out
data.  The request goes through :class:`llmlex._llmcall.LLMCall`, the one place llmlex
calls a model (its reply cache, error mapping and usage counts).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmlex._llmcall import LLMCall
from llmlex.exceptions import AnsatzError, LLMError

if TYPE_CHECKING:
    import sympy

__all__ = ["SIMPLIFY_PROMPT", "llm_simplifications"]

# One logger for the KAN door: callers tune "llmlex.kan" (the examples do).
log = logging.getLogger("llmlex.kan")

#: The request, formatted with the variable ``names``, the ``formula`` and ``n``.
SIMPLIFY_PROMPT = (
    "Here is a formula fitted to data, with variables {names}:\n\n{formula}\n\n"
    "Write {n} simpler but mathematically equivalent (or nearly equivalent, up to small "
    "constant changes) forms of it, one per line, each a single Python/numpy expression "
    "in the variables {names} using numbers, + - * / **, and np.sin, np.cos, np.exp, "
    "np.log, np.sqrt, np.tanh, np.arctan, np.abs, np.pi. Recognise known forms (e.g. a "
    "Taylor series of exp or sin) and fold constants. No explanations, no code fences."
)


def _ask(client: Any, model: str, prompt: str, cache: Any = None) -> tuple[str, int]:
    """One chat completion through :class:`LLMCall`: the reply text and the calls paid.

    Raises :class:`~llmlex.exceptions.LLMError` (or a subclass) when the call fails.
    """
    call = LLMCall(client, model=model, cache=cache)
    text, usage = call.complete_text([{"role": "user", "content": prompt}])
    return text, usage.calls


def llm_simplifications(
    client: Any,
    gpt_model: str,
    expr: sympy.Expr,
    names: Sequence[str],
    n: int,
    *,
    cache: Any = None,
) -> tuple[list[sympy.Expr], int]:
    """Ask the LLM for simpler forms; parse each reply line by the whitelist, never eval.

    Parameters
    ----------
    client : openai client
        Synchronous or asynchronous OpenAI-compatible client.
    gpt_model : str
        Model name.
    expr : sympy.Expr
        The formula to simplify.
    names : sequence of str
        Names of its variables (the symbols are real).
    n : int
        Forms asked for (at most ``2 * n`` are returned).
    cache : ReplyCache, str, path-like or None
        Reply cache (a repeated request is answered from it, with no call).

    Returns
    -------
    tuple
        The parsed forms and the number of paid requests (1, or 0 from the cache).  A
        failed request costs only this optional step: no forms.
    """
    import sympy

    from llmlex._kan_sympy import parse_expression
    from llmlex._symbolic import sympy_to_text

    formula = sympy_to_text(sympy.N(expr, 8))
    prompt = SIMPLIFY_PROMPT.format(names=", ".join(names), formula=formula, n=n)
    try:
        content, calls = _ask(client, gpt_model, prompt, cache)
    except LLMError as err:  # any API failure costs only this optional step
        log.warning("LLM simplification request failed: %s", err)
        return [], 1
    symbols = {nm: sympy.Symbol(nm, real=True) for nm in names}
    out = []
    for line in content.splitlines():
        line = re.sub(r"^\s*(?:[-*]|\d+[.)])\s*", "", line).strip().strip("`").strip()
        if not line:
            continue
        if "=" in line and "==" not in line:
            line = line.split("=", 1)[1].strip()
        try:
            out.append(parse_expression(line, symbols))
        except AnsatzError as err:
            log.debug("LLM simplification %r rejected: %s", line[:80], err)
    return out[: max(n, 1) * 2], calls
