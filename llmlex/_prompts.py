"""The prompts llmlex sends: the first generation's, a later generation's, the messages.

Plain functions returning text (and the chat message list), used by
:class:`llmlex.llm.LLMProposer` and by the reference library's raw calls
(:mod:`llmlex._chat`); :mod:`llmlex.llm` re-exports them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._functions import CONSTANTS, FUNCTIONS, lookup

if TYPE_CHECKING:
    from llmlex.fit import FitResult

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "build_first_prompt",
    "build_generation_prompt",
    "build_messages",
    "normalise_functions",
]

#: System prompt used when none is given.
DEFAULT_SYSTEM_PROMPT = (
    "You are an expert physicist and applied mathematician doing symbolic regression. "
    "You look at plots of data and propose closed-form functions (ansätze) with free "
    "parameters that could have generated them. The parameters are fitted to the data "
    "afterwards by least squares, so only the functional form matters, not the exact "
    "values. Read the plot carefully: symmetry, periodicity, zeros, asymptotes, "
    "singularities, growth and decay rates, the behaviour near the edges. Prefer the "
    "simplest form that captures every visible feature. Be concise."
)

_NCHI2_EXPLANATION = (
    "Fit quality is the normalized chi-squared nchi2 (lower is better): about 1 means the "
    "errors are as large as the spread of the data, 1e-2 a visibly imperfect fit, below "
    "1e-6 essentially exact."
)


def normalise_functions(names: Iterable[str] | None) -> tuple[str, ...] | None:
    """Validate function names and map them to the bare whitelisted names.

    ``"np.sin"``, ``"sin"`` and ``"scipy.special.erf"`` are accepted; aliases such as
    ``"ln"`` map to their canonical name.

    Parameters
    ----------
    names : iterable of str or None
        Function names; None means "no restriction" and is returned unchanged.

    Returns
    -------
    tuple of str or None
        Bare names, de-duplicated, in the given order.

    Raises
    ------
    ValueError
        If a name is not a whitelisted function (the message suggests the nearest).
    """
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for raw in names:
        name = str(raw).strip()
        for prefix in ("numpy.", "np.", "scipy.special.", "special.", "math."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        fn = lookup(name)
        if fn is None:
            near = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"unknown function {raw!r} in allowed_functions{hint}")
        if fn.name not in out:
            out.append(fn.name)
    return tuple(out)


def _function_list(allowed: Sequence[str] | None) -> str:
    names = sorted(FUNCTIONS) if allowed is None else list(allowed)
    # "where" is described separately (aliases such as "absolute" are not listed).
    np_names = [n for n in names if FUNCTIONS[n].module == "np" and n != "where"]
    sp_names = [n for n in names if FUNCTIONS[n].module != "np"]
    parts = []
    if np_names:
        parts.append("numpy (write np.<name>): " + ", ".join(np_names))
    if sp_names:
        parts.append("scipy.special (write scipy.special.<name>): " + ", ".join(sp_names))
    if not parts:
        parts.append("none: use arithmetic and powers only")
    head = "Use ONLY these functions" if allowed is not None else "Available functions"
    return head + " -- " + "; ".join(parts) + "."


def _format_block(allowed: Sequence[str] | None, hints: Sequence[str]) -> str:
    lines = []
    if hints:
        lines.append("Prior knowledge about the data (respect it):")
        lines.extend(f"- {h.strip()}" for h in hints if h.strip())
        lines.append("")
    constants = ", ".join(f"np.{c}" for c in CONSTANTS)
    lines += [
        "Write the ansatz as a Python expression in the variable `x` (a numpy array) with "
        "free parameters `params[0]`, `params[1]`, ... . Use `np.where(condition, a, b)` "
        f"for piecewise forms; constants {constants} are available. No other Python: no "
        "imports, assignments, loops, attribute access or strings.",
        _function_list(allowed),
        "",
        "End your reply with exactly these two lines:",
        "ansatz: lambda x, *params: <expression>",
        "initial: [<guess for params[0]>, <guess for params[1]>, ...]",
    ]
    return "\n".join(lines)


def _data_summary(x: np.ndarray, y: np.ndarray) -> str:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    return (
        f"The plot shows {x.size} data points with x from {x.min():.6g} to {x.max():.6g} "
        f"and y from {y.min():.6g} to {y.max():.6g}."
    )


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def build_first_prompt(
    x: np.ndarray,
    y: np.ndarray,
    *,
    allowed_functions: Sequence[str] | None = None,
    hints: Sequence[str] = (),
) -> str:
    """User prompt of the first generation: the plot of the data, asking for one ansatz.

    Parameters
    ----------
    x, y : ndarray
        The data (only their size and ranges are written into the text).
    allowed_functions : sequence of str, optional
        If given, the only functions the ansatz may use (listed in the prompt).
    hints : sequence of str
        Free-text prior knowledge ("periodic", "decays to zero", "no exp").

    Returns
    -------
    str
        The prompt text (the image travels separately, see :func:`build_messages`).
    """
    return "\n".join(
        [
            "The image is a plot of data y(x). Propose one ansatz that describes it well.",
            _data_summary(x, y),
            "",
            _format_block(allowed_functions, hints),
        ]
    )


def build_generation_prompt(
    x: np.ndarray,
    y: np.ndarray,
    parents: Sequence[FitResult],
    *,
    allowed_functions: Sequence[str] | None = None,
    hints: Sequence[str] = (),
) -> str:
    """User prompt of a later generation: the parents with their scores and parameters.

    Parameters
    ----------
    x, y : ndarray
        The data.
    parents : sequence of FitResult
        The parents chosen by selection, best first.  Each is listed with its ansatz, its
        nchi2 and its fitted parameters; the image shows their curves over the data.
    allowed_functions, hints
        As in :func:`build_first_prompt`.

    Returns
    -------
    str
        The prompt text.
    """
    lines = [
        "The image is a plot of data y(x) (black dots) with the fitted curves of earlier "
        "ansätze (coloured lines, labelled parent 1, 2, ...).",
        _data_summary(x, y),
        _NCHI2_EXPLANATION,
        "",
    ]
    for k, p in enumerate(parents, start=1):
        value = float(p.nchi2)
        score = f"{value:.3g}" if math.isfinite(value) else "inf (could not be fitted)"
        params = ", ".join(_fmt(float(v)) for v in p.params)
        lines += [
            f"Parent {k}: nchi2 = {score}",
            f"  ansatz: lambda x, *params: {p.ansatz}",
            f"  fitted params: [{params}]",
        ]
    lines += [
        "",
        "Propose ONE new ansatz that should fit the data better than all of the parents. "
        "You may improve one of them, combine ideas from several, or simplify one if a "
        "simpler form could fit as well. Look at where the curves miss the data. Do not "
        "repeat a parent unchanged.",
        "",
        _format_block(allowed_functions, hints),
    ]
    return "\n".join(lines)


def build_messages(
    text: str, image: str | None, *, system_prompt: str | None = None
) -> list[dict[str, Any]]:
    """Chat messages for one call: the system prompt, then the text and the image.

    Parameters
    ----------
    text : str
        The user prompt.
    image : str or None
        Base64 PNG (with or without a ``data:`` prefix); None sends text only.
    system_prompt : str, optional
        Replaces :data:`DEFAULT_SYSTEM_PROMPT`; an empty string sends no system message.

    Returns
    -------
    list of dict
        Messages in the OpenAI chat format, the image as an ``image_url`` content part.
    """
    system = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image:
        url = image if image.startswith("data:") else f"data:image/png;base64,{image}"
        content.append({"type": "image_url", "image_url": {"url": url}})
    messages.append({"role": "user", "content": content})
    return messages
