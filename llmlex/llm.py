"""Vision-LLM proposals over any OpenAI-compatible endpoint.

This module has three layers, each usable and testable on its own:

* **Prompts** -- plain functions returning text: :func:`build_first_prompt` (the plot
  only), :func:`build_generation_prompt` (the parents' ansätze *with* their nchi2 scores
  and fitted parameters), :func:`build_messages` (the chat messages with the image).
* **Reply parsing** -- :func:`extract_proposals` finds candidate ansatz texts in a chatty
  reply (never evaluating anything); the safe parsing itself is
  :func:`llmlex.ansatz.parse_ansatz`.
* **The proposer** -- :class:`LLMProposer` implements :class:`llmlex.proposer.Proposer`
  with an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client.

Retries and timeouts are the openai client's own: configure them on the client, e.g.
``openai.OpenAI(base_url=..., api_key=..., max_retries=3, timeout=60)``.  llmlex does not
wrap a second retry loop around them.  A call that still fails after the client's retries
costs one individual of the search, not the run (see :class:`LLMProposer`).
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import hashlib
import inspect
import json
import keyword
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._functions import ALIASES, CONSTANTS, FUNCTIONS, lookup
from llmlex.ansatz import parse_ansatz
from llmlex.cache import ReplyCache, as_cache, request_key
from llmlex.exceptions import AnsatzError, LLMAuthenticationError, LLMModelNotFoundError
from llmlex.images import data_image, fits_image
from llmlex.proposer import Proposal, ProposalBatch, ProposalRequest

if TYPE_CHECKING:
    import os

    from llmlex.fit import FitResult

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "MAX_PROPOSALS_PER_REPLY",
    "CachedProposalBatch",
    "LLMProposer",
    "build_first_prompt",
    "build_generation_prompt",
    "build_messages",
    "extract_proposals",
    "normalise_functions",
]

log = logging.getLogger(__name__)

#: Candidates kept from one reply (a reply listing twenty alternatives costs twenty fits).
MAX_PROPOSALS_PER_REPLY = 6

# --------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Reply parsing (text only: nothing here is ever evaluated)
# --------------------------------------------------------------------------------------

_MAX_CANDIDATE_CHARS = 4000
_MAX_REPLY_CHARS = 200_000
_OPEN, _CLOSE = "([{", ")]}"

# Priorities: lower is more explicit.
_P_LABEL, _P_LAMBDA, _P_DEF, _P_ASSIGN, _P_TICK, _P_FENCE, _P_BARE = range(7)

_LABEL = re.compile(
    r"(?i)\b(?:final\s+|proposed\s+|new\s+|improved\s+)?"
    r"(?:ansatz|ansätze|answer|expression|formula|equation)"
    r"\**[ \t]*(?:#?\d+|\([^()\n]{0,40}\))?[ \t]*\**[ \t]*[:=](?!=)"
)
_ASSIGN_LINE = re.compile(
    r"(?m)^[ \t>*\-]*(?:y|f|g|y_?pred|y_?hat|y_?fit|model)"
    r"(?:[ \t]*\([ \t]*x[ \t]*(?:,[^()\n]*)?\))?[ \t]*=(?!=)[ \t]*"
)
_ASSIGN_INLINE = re.compile(r"\b[fy][ \t]*\([ \t]*x[ \t]*\)[ \t]*=(?!=)[ \t]*")
_LAMBDA = re.compile(r"\blambda\b([^:\n]{0,200}):")
_DEF = re.compile(r"\bdef[ \t]+\w+[ \t]*\(([^()]{0,300})\)[ \t]*(?:->[^:\n]*)?:")
_RETURN = re.compile(r"\breturn\b[ \t]*")
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.S)
_TICK = re.compile(r"(?<!`)`([^`\n]{1,600})`(?!`)")
_INITIAL = re.compile(
    r"(?i)\b(?:initial(?:[ _-]?(?:values?|params|parameters|guess(?:es)?))?|p0|params0|"
    r"initial_params|params|parameters|guess(?:es)?|starting[ _]values)"
    r"[ \t]*[:=](?!=)[ \t]*`?[ \t]*(?:np\.array\([ \t]*)?[\[(]([^\[\]()\n]{0,600})[\])]"
)
_ASSIGN_HEAD = re.compile(
    r"^\s*(?:y|f|g|y_?pred|y_?hat|y_?fit|model)(?:\s*\(\s*x\s*(?:,[^()]*)?\))?\s*=(?!=)\s*"
)
_PROSE_SPLIT = re.compile(r"[\s.,;:]+\(?([A-Za-z][A-Za-z']+)\b")
_CODE_WORDS = (
    set(FUNCTIONS)
    | set(ALIASES)
    | set(CONSTANTS)
    | {"np", "numpy", "scipy", "special", "sp", "sps", "math", "params", "x", "p", "lambda"}
)


@dataclass
class _Candidate:
    priority: int
    position: int
    text: str


def _take_expression(text: str, start: int) -> str:
    """Read an expression from ``start`` up to where it visibly ends.

    Stops at a newline outside brackets (unless the line ends with an operator or a
    backslash), at an unmatched closing bracket, at a backtick or ``$``, and at ``;``.
    ``#`` comments are skipped.  ``=`` does *not* end it: ``x >= 1`` stays whole.
    """
    depth = 0
    out: list[str] = []
    i, n = start, min(len(text), start + _MAX_CANDIDATE_CHARS)
    while i < n:
        c = text[i]
        if c in "`$":
            break
        if c == "#":
            j = text.find("\n", i)
            if j < 0:
                break
            i = j
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            if depth == 0:
                break
            depth -= 1
        elif c == "\n" and depth == 0:
            so_far = "".join(out).rstrip()
            if so_far.endswith("\\"):
                out = [so_far[:-1], " "]
                i += 1
                continue
            if so_far and so_far[-1] in "+-*/(,":
                out.append(" ")
                i += 1
                continue
            break
        elif c == ";" and depth == 0:
            break
        out.append(c)
        i += 1
    return "".join(out).strip()


def _value_after(text: str, pos: int) -> tuple[str, int]:
    """The expression following a label or ``=`` at ``pos``: same line, or the next."""
    i = pos
    line_end = text.find("\n", i)
    line_end = len(text) if line_end < 0 else line_end
    rest = text[i:line_end]
    stripped = rest.strip().strip("*").strip()
    if not stripped or set(stripped) <= {"`"} or re.fullmatch(r"```[\w+-]*", stripped):
        # The value sits on the following line(s), possibly inside a code fence.
        i = line_end + 1
        while i < len(text):
            nl = text.find("\n", i)
            nl = len(text) if nl < 0 else nl
            line = text[i:nl].strip()
            if line and not re.fullmatch(r"```[\w+-]*", line):
                break
            i = nl + 1
        if i >= len(text):
            return "", i
    # Skip markdown decoration and an opening backtick run.
    while i < len(text) and text[i] in " \t*":
        i += 1
    if text.startswith("```", i):
        i += 3
        while i < len(text) and (text[i].isalnum() or text[i] in "+-"):
            i += 1
    elif i < len(text) and text[i] == "`":
        i += 1
    return _take_expression(text, i), i


def _split_args(header: str) -> list[str]:
    return [a.strip() for a in header.split(",") if a.strip()]


def _rename(body: str, mapping: dict[str, str]) -> str:
    """Replace whole-word names (not attributes such as ``np.e``) by their mapping."""
    if not mapping:
        return body
    names = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")\b(?!\s*=[^=])")
    return pattern.sub(lambda m: mapping[m.group(1)], body)


def _apply_signature(args: list[str], body: str, assignments: dict[str, str] | None = None):
    """Rewrite a lambda/def body so that its parameters read ``x`` and ``params[i]``."""
    mapping: dict[str, str] = dict(assignments or {})
    if args:
        first = args[0].split(":")[0].split("=")[0].strip()
        if first.isidentifier() and first != "x" and not first.startswith("*"):
            mapping[first] = "x"
    k = 0
    for raw in args[1:]:
        name = raw.split(":")[0].split("=")[0].strip()
        starred = name.startswith("*")
        name = name.lstrip("*").strip()
        if not name.isidentifier() or keyword.iskeyword(name):
            continue
        if starred or re.search(rf"(?<![\w.]){re.escape(name)}\s*\[", body):
            if name != "params":
                mapping[name] = "params"
        else:
            mapping[name] = f"params[{k}]"
            k += 1
    return _rename(body, mapping)


def _clean(text: str) -> str:
    text = " ".join(text.split())  # multi-line expressions become one line
    text = re.sub(r"^(?:\*\*|__)|(?:\*\*|__)$", "", text).strip()
    text = _ASSIGN_HEAD.sub("", text, count=1)
    return text.strip().strip("`").strip().rstrip(".,;:").strip()


def _parses(text: str) -> bool:
    try:
        parse_ansatz(text)
    except AnsatzError:
        return False
    return True


# Words that continue an expression: cutting before them would change its meaning
# ("a if c else b" must not become "a").
_NO_CUT_WORDS = {"if", "else", "and", "or", "not", "lambda"}


def _is_prose_cut(text: str, m: re.Match[str]) -> bool:
    """Whether the expression may end where the word matched by ``m`` starts."""
    word = m.group(1)
    if m.start() == 0 or not any(c.isspace() for c in m.group(0)):
        return False  # "np.sin" and "x.attr" are not sentence boundaries
    if word in _NO_CUT_WORDS:
        return False
    after = text[m.end() :].lstrip()
    # A whitelisted name used as code ("where(", "params[", "np.") continues the expression.
    return not (word in _CODE_WORDS and after[:1] in ("(", "[", "."))


def _trim_prose(text: str) -> str:
    """Drop trailing prose ("..., where params[0] is the amplitude.") from an expression.

    Cuts only where a plain word that is not part of the ansatz language starts, trying
    the longest prefix first, and keeps a cut only if the rest parses as an ansatz.  If
    nothing parses, the cleaned text is returned unchanged, so that the parser can say
    what is wrong with it.
    """
    text = _clean(text)
    if not text or _parses(text):
        return text
    cuts = [m.start() for m in _PROSE_SPLIT.finditer(text) if _is_prose_cut(text, m)]
    for cut in reversed(cuts[-200:]):
        prefix = text[:cut].rstrip().rstrip(".,;:").rstrip()
        if prefix and _parses(prefix):
            return prefix
    return text


def _normalise_value(value: str) -> str:
    """Turn a labelled value into a bare expression (lambdas unwrapped, heads dropped)."""
    value = _clean(value)
    m = re.match(r"lambda\b([^:]{0,200}):\s*", value)
    if m:
        return _apply_signature(_split_args(m.group(1)), value[m.end() :])
    return value


def _def_candidates(text: str) -> list[_Candidate]:
    out = []
    defs = list(_DEF.finditer(text))
    for k, d in enumerate(defs):
        end = defs[k + 1].start() if k + 1 < len(defs) else len(text)
        block = text[d.end() : end]
        r = _RETURN.search(block)
        if r is None:
            continue
        body = _take_expression(block, r.end())
        # Unpacking such as "a, b, c = params" or "a = params[0]" in the function body.
        assignments: dict[str, str] = {}
        head = block[: r.start()]
        for line in head.splitlines():
            line = line.split("#")[0]
            m = re.match(r"\s*([\w\s,]+?)\s*=\s*(\w+)\s*$", line)
            if m and m.group(2) in ("params", "p", "args", "theta"):
                for i, name in enumerate(_split_args(m.group(1))):
                    if name.isidentifier():
                        assignments[name] = f"params[{i}]"
                continue
            m = re.match(r"\s*(\w+)\s*=\s*(\w+)\s*\[\s*(\d+)\s*\]\s*$", line)
            if m:
                assignments[m.group(1)] = f"params[{m.group(3)}]"
        args = _split_args(d.group(1))
        out.append(_Candidate(_P_DEF, d.start(), _apply_signature(args, body, assignments)))
    return out


def _parse_numbers(raw: str) -> tuple[float, ...] | None:
    items = [s.strip() for s in raw.split(",")]
    if items and items[-1] == "":
        items.pop()  # trailing comma
    if not items or len(items) > 100:
        return None
    values = []
    for item in items:
        item = item.strip("`*").strip()
        try:
            v = float(item)
        except ValueError:
            return None
        if not math.isfinite(v):
            return None
        values.append(v)
    return tuple(values)


def extract_proposals(reply: str) -> list[Proposal]:
    """Find the candidate ansatz texts in a language model's reply.

    The reply is only searched, never evaluated.  Recognised forms, most explicit first:

    1. a labelled line, ``ansatz: ...`` (also ``Final answer:``, ``**Ansatz 2:**``,
       ``Expression =``), its value inline, in backticks or on the next line/code fence;
    2. ``lambda x, *params: expr`` anywhere (also ``lambda x, a, b: ...``, whose named
       parameters become ``params[0]``, ``params[1]``);
    3. ``def f(x, params): ... return expr`` (unpacking ``a, b = params`` is followed);
    4. ``y = expr``, ``f(x) = expr`` (``=`` inside the expression, as in ``x >= 1``, is kept);
    5. an inline ```expr``` or a code fence holding a bare expression;
    6. if nothing else matched, a line that is by itself a valid ansatz.

    Trailing prose and punctuation are trimmed.  Drafts inside a ``<think>`` block are
    used only if nothing follows the block.  Forms 5 and 6 are weak evidence and are
    kept only if :func:`~llmlex.ansatz.parse_ansatz` accepts them; forms 1--4 are returned
    as found even if they do not parse, so that the caller can count parsing failures.
    Initial values written as ``initial: [..]`` (also ``params = [..]``, ``p0 = (..)``)
    are attached to the candidate they follow.

    Parameters
    ----------
    reply : str
        The reply text.

    Returns
    -------
    list of Proposal
        Distinct candidates, most explicit first (then in order of appearance).
    """
    if not reply or not reply.strip():
        return []
    text = reply[:_MAX_REPLY_CHARS].replace("\r\n", "\n")
    if "</think>" in text:
        # Reasoning models put drafts in a <think> block: prefer what follows it.
        final = extract_proposals(text.rsplit("</think>", 1)[1])
        if final:
            return final
        text = re.sub(r"</?think>", "\n", text)
    cands: list[_Candidate] = []

    for m in _LABEL.finditer(text):
        value, _ = _value_after(text, m.end())
        if value and not value.startswith(("def ", "import ", "from ")):
            cands.append(_Candidate(_P_LABEL, m.start(), _normalise_value(value)))
    for m in _LAMBDA.finditer(text):
        body = _take_expression(text, m.end())
        if body:
            cands.append(
                _Candidate(_P_LAMBDA, m.start(), _apply_signature(_split_args(m.group(1)), body))
            )
    cands.extend(_def_candidates(text))
    for pattern in (_ASSIGN_LINE, _ASSIGN_INLINE):
        for m in pattern.finditer(text):
            value, _ = _value_after(text, m.end())
            if value:
                cands.append(_Candidate(_P_ASSIGN, m.start(), _normalise_value(value)))
    for m in _TICK.finditer(text):
        value = _clean(m.group(1))
        if _looks_like_expr(value) and _parses(value):
            cands.append(_Candidate(_P_TICK, m.start(), value))
    for m in _FENCE.finditer(text):
        body = "\n".join(
            line.split("#")[0].strip() for line in m.group(1).splitlines() if line.strip()
        )
        joined = _clean(" ".join(body.split("\n")))
        if _looks_like_expr(joined) and _parses(joined):
            cands.append(_Candidate(_P_FENCE, m.start(), joined))
    if not cands:
        pos = 0
        for line in text.split("\n"):
            value = _clean(line)
            if _looks_like_expr(value) and _parses(value):
                cands.append(_Candidate(_P_BARE, pos, value))
            pos += len(line) + 1

    # Trim prose, drop empties, then de-duplicate keeping the most explicit occurrence.
    anchors: list[tuple[int, str]] = []
    best: dict[str, _Candidate] = {}
    for c in cands:
        t = _trim_prose(_normalise_value(c.text))
        if not t or not _looks_like_expr(t):
            continue
        anchors.append((c.position, t))
        old = best.get(t)
        if old is None or (c.priority, c.position) < (old.priority, old.position):
            best[t] = _Candidate(c.priority, c.position, t)

    # Initial values belong to the nearest candidate written before them.
    anchors.sort()
    initial: dict[str, tuple[float, ...]] = {}
    for m in _INITIAL.finditer(text):
        values = _parse_numbers(m.group(1))
        if values is None:
            continue
        owner = None
        for pos, t in anchors:
            if pos < m.start():
                owner = t
            else:
                break
        if owner is None and len(best) == 1:
            owner = next(iter(best))
        if owner is not None and owner not in initial:
            initial[owner] = values

    ordered = sorted(best.values(), key=lambda c: (c.priority, c.position))
    return [Proposal(c.text, initial.get(c.text)) for c in ordered]


def _looks_like_expr(text: str) -> bool:
    """Cheap filter: mentions x or a parameter, and is not a sentence."""
    if not text or len(text) > _MAX_CANDIDATE_CHARS:
        return False
    if not re.search(r"(?<![\w.])(?:x|params|p)\b", text):
        return False
    # Three plain words in a row are prose, not an expression.
    return not re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}", text)


# --------------------------------------------------------------------------------------
# The proposer
# --------------------------------------------------------------------------------------

_SYNC_EXECUTOR: ThreadPoolExecutor | None = None
_SYNC_EXECUTOR_LOCK = threading.Lock()
# Blocking calls of synchronous clients run here rather than in asyncio's default pool,
# whose size (min(32, cpu + 4): 6 on two cores) would silently cap the concurrency of a
# generation.  The threads mostly wait on sockets.
_SYNC_WORKERS = 64


def _sync_executor() -> ThreadPoolExecutor:
    global _SYNC_EXECUTOR
    with _SYNC_EXECUTOR_LOCK:
        if _SYNC_EXECUTOR is None:
            _SYNC_EXECUTOR = ThreadPoolExecutor(
                max_workers=_SYNC_WORKERS, thread_name_prefix="llmlex-llm"
            )
        return _SYNC_EXECUTOR


def _is_async_client(client: Any) -> bool:
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


class _LRU(OrderedDict):
    """A tiny bounded cache of rendered images (drawing costs ~0.1 s)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class LLMProposer:
    """Proposes ansätze by asking a vision LLM through an OpenAI-compatible client.

    Each :meth:`propose` makes one chat-completion call.  In the first generation the
    prompt shows the data (the caller's image, or one drawn with
    :func:`~llmlex.images.data_image`); later, it shows the parents' curves over the data
    (:func:`~llmlex.images.fits_image`) and lists their ansätze with nchi2 and fitted
    parameters.  Images are drawn in a worker thread, so the event loop keeps running
    other calls.

    Failures: a rejected key (401/403) raises :class:`~llmlex.exceptions.LLMAuthenticationError`
    and an unknown model (404) :class:`~llmlex.exceptions.LLMModelNotFoundError`: these
    would recur on every call.  Anything transient that survives the client's own retries
    (429, 5xx, timeouts, connection errors, malformed JSON) is returned as
    ``ProposalBatch(failure=("api", "<ErrorClass>: message"), calls=1)``.  A reply with
    no recognisable expression gives ``failure=("extraction", ...)``.  Candidates that do
    not parse in the ansatz language are still returned (not pre-filtered): the search
    parses them and counts the ``"parsing"`` failures itself.

    Parameters
    ----------
    client : openai.OpenAI or openai.AsyncOpenAI
        Any OpenAI-compatible client (OpenRouter, OpenAI, Ollama, vLLM, llama.cpp...).
        Configure retries and timeouts on it (``max_retries=``, ``timeout=``).
    model : str
        Model name as the endpoint knows it.
    system_prompt : str, optional
        Replaces :data:`DEFAULT_SYSTEM_PROMPT` (an empty string sends none).
    temperature : float, optional
        LLM sampling temperature (not the selection temperature of the genetic search);
        None leaves the server's default.
    max_tokens : int or None
        Cap on the reply length; None sends no cap.
    allowed_functions : sequence of str, optional
        The only functions an ansatz may use (listed in the prompt).  A request's own
        ``allowed_functions`` takes precedence.
    hints : sequence of str
        Prior knowledge written into every prompt; merged with a request's hints.
    request_timeout : float, optional
        Per-call timeout in seconds, overriding the client's.
    extra_body : dict, optional
        Extra JSON fields for the endpoint (e.g. OpenRouter's ``{"provider": ...}``).
    parent_plots : bool
        Draw the parents' curves over the data in later generations (default).  Each
        drawing costs ~0.1 s of CPU, serialised by the GIL, so a generation of ``n``
        children spends about ``n * 0.1`` s drawing before its last call is sent; False
        sends the data image instead and lists the parents in the text only.
    cache : ReplyCache, str, path-like or None
        An on-disk cache of replies (:class:`~llmlex.cache.ReplyCache`, or its
        directory).  A request whose content -- endpoint, model, messages, image,
        sampling options and the request's seed -- was answered before is answered from
        the cache with no HTTP call: the batch reports ``calls=0`` and no tokens, and
        ``cache_hits=1`` (see :class:`CachedProposalBatch`).  Failed calls are not cached.
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str = "openai/gpt-4o",
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = 1024,
        allowed_functions: Sequence[str] | None = None,
        hints: Sequence[str] = (),
        request_timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
        parent_plots: bool = True,
        cache: ReplyCache | str | os.PathLike[str] | None = None,
    ) -> None:
        if client is None or not hasattr(client, "chat"):
            raise TypeError(
                "client must be an openai.OpenAI or openai.AsyncOpenAI instance, "
                f"got {type(client).__name__}"
            )
        if temperature is not None and not (0.0 <= float(temperature) <= 2.0):
            raise ValueError(f"temperature must be in [0, 2], got {temperature!r}")
        if max_tokens is not None and int(max_tokens) < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens!r}")
        self.client = client
        self.model = str(model)
        self.name = f"llm:{self.model}"
        self.system_prompt = system_prompt
        self.temperature = None if temperature is None else float(temperature)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.allowed_functions = normalise_functions(allowed_functions)
        self.hints = _as_hints(hints)
        self.request_timeout = request_timeout
        self.extra_body = dict(extra_body) if extra_body else None
        self.parent_plots = bool(parent_plots)
        self.cache = as_cache(cache)
        self._async = _is_async_client(client)
        self._images = _LRU(32)
        self._images_lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"LLMProposer(model={self.model!r}, base_url={self._base_url()!r})"

    def _base_url(self) -> str:
        return str(getattr(self.client, "base_url", "<unknown base_url>"))

    def _redact(self, text: str) -> str:
        key = getattr(self.client, "api_key", None)
        if isinstance(key, str) and len(key) >= 4:
            text = text.replace(key, "***")
        return _KEYLIKE.sub("***", text)

    # -- images ----------------------------------------------------------------------

    async def _image_for(self, request: ProposalRequest) -> tuple[str, str]:
        """The image to send and a stable key of its content.

        The key of a drawn image digests what was drawn (data, parents' ansätze and
        parameters) rather than the PNG bytes, so the reply cache does not depend on
        matplotlib rendering the same bytes on another machine or version.
        """
        if request.parents and self.parent_plots:
            key = "fits:" + _digest(
                request.x,
                request.y,
                *(np.asarray(p.params, dtype=float) for p in request.parents),
                text="|".join(f"{p.ansatz}:{p.nchi2!r}" for p in request.parents),
            )
            draw: Callable[[], str] = functools.partial(
                fits_image, request.x, request.y, request.parents
            )
        elif request.image is not None:
            return request.image, "image:" + hashlib.sha256(request.image.encode()).hexdigest()
        else:
            key = "data:" + _digest(request.x, request.y)
            draw = functools.partial(data_image, request.x, request.y)
        with self._images_lock:
            hit = self._images.get(key)
        if hit is not None:
            return hit, key
        return await asyncio.to_thread(self._render, key, draw), key  # CPU work off the loop

    def _render(self, key: str, draw: Callable[[], str]) -> str:
        """Draw once per key even when a whole generation asks at the same moment."""
        with self._images_lock:
            hit = self._images.get(key)
            if hit is not None:
                return hit
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._images_lock:
                hit = self._images.get(key)
            if hit is None:
                hit = draw()
                with self._images_lock:
                    self._images.put(key, hit)
                    self._key_locks.pop(key, None)
        return hit

    # -- the call --------------------------------------------------------------------

    def prompt_for(self, request: ProposalRequest) -> str:
        """The user prompt text this proposer sends for ``request``."""
        allowed = (
            normalise_functions(request.allowed_functions)
            if request.allowed_functions is not None
            else self.allowed_functions
        )
        hints = _merge_hints(self.hints, request.hints)
        if request.parents:
            return build_generation_prompt(
                request.x, request.y, request.parents, allowed_functions=allowed, hints=hints
            )
        return build_first_prompt(request.x, request.y, allowed_functions=allowed, hints=hints)

    async def _create(self, **kwargs: Any) -> Any:
        create = self.client.chat.completions.create
        if self._async:
            return await create(**kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_sync_executor(), functools.partial(create, **kwargs))

    def _cache_key(self, kwargs: dict[str, Any], image_key: str, request: ProposalRequest) -> str:
        messages = build_messages(
            self.prompt_for(request), image_key, system_prompt=self.system_prompt
        )
        return request_key(
            {
                "base_url": self._base_url(),
                "model": self.model,
                "messages": messages,
                "temperature": kwargs.get("temperature"),
                "max_tokens": kwargs.get("max_tokens"),
                "extra_body": kwargs.get("extra_body"),
                # Identical prompts (all of generation 0) must map to distinct replies.
                "seed": int(request.seed),
            }
        )

    async def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Ask the model for one child ansatz (see the class docstring for failures)."""
        import openai

        text = self.prompt_for(request)
        image, image_key = await self._image_for(request)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": build_messages(text, image, system_prompt=self.system_prompt),
        }
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.request_timeout is not None:
            kwargs["timeout"] = self.request_timeout
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        cache_key = None
        if self.cache is not None:
            cache_key = self._cache_key(kwargs, image_key, request)
            hit = await asyncio.to_thread(self.cache.get, cache_key)
            if hit is not None:
                log.debug("reply for generation %d from the cache", request.generation)
                return self._batch_from_reply(
                    str(hit.get("content") or ""),
                    hit.get("finish_reason"),
                    calls=0,
                    prompt_tokens=0,
                    completion_tokens=0,
                    cache_hits=1,
                )
        log.debug(
            "calling %s at %s (generation %d)", self.model, self._base_url(), request.generation
        )
        try:
            completion = await self._create(**kwargs)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            # Raised without chaining: the server's message may echo the key.
            raise LLMAuthenticationError(
                f"the API key was rejected by {self._base_url()} (HTTP {err.status_code}): "
                f"{self._redact(_message(err))}. Check the key for this endpoint (e.g. the "
                "OPENROUTER_API_KEY / OPENAI_API_KEY environment variable)."
            ) from None
        except openai.NotFoundError as err:
            raise LLMModelNotFoundError(
                f"model {self.model!r} not found at {self._base_url()} (HTTP 404): "
                f"{self._redact(_message(err))}. Check the model name as this endpoint "
                "spells it (OpenRouter: 'openai/gpt-4o', OpenAI: 'gpt-4o') and that "
                "base_url ends with the API root (e.g. '/v1')."
            ) from None
        except (openai.OpenAIError, json.JSONDecodeError) as err:
            # 429/5xx after the client's retries, timeouts, refused connections, bad JSON.
            msg = f"{type(err).__name__}: {self._redact(_message(err))}"
            log.info("LLM call failed: %s", msg)
            return ProposalBatch(calls=1, failure=("api", msg[:500]))
        batch = self._batch_from(completion)
        if self.cache is not None and cache_key is not None and batch.reply is not None:
            # Only replies the model actually gave are kept (also those without an
            # ansatz, so that a re-run replays them); transport failures are not.
            entry = {
                "content": batch.reply or "",
                "finish_reason": _finish_reason(completion),
                "model": self.model,
                "prompt_tokens": batch.prompt_tokens,
                "completion_tokens": batch.completion_tokens,
            }
            await asyncio.to_thread(self.cache.put, cache_key, entry)
        return batch

    def _batch_from(self, completion: Any) -> ProposalBatch:
        usage = getattr(completion, "usage", None)
        prompt_tokens = _int(getattr(usage, "prompt_tokens", 0))
        completion_tokens = _int(getattr(usage, "completion_tokens", 0))
        choices = getattr(completion, "choices", None)
        if isinstance(completion, str) or not choices:
            body = completion if isinstance(completion, str) else repr(completion)
            msg = f"MalformedResponse: no choices in the response: {body[:200]}"
            log.info("LLM reply unusable (api): %s", msg)
            return ProposalBatch(
                calls=1,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                failure=("api", msg),
            )
        choice = choices[0]
        message = getattr(choice, "message", None)
        return self._batch_from_reply(
            _content_text(getattr(message, "content", None)),
            getattr(choice, "finish_reason", None),
            calls=1,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def _batch_from_reply(
        self,
        content: str,
        finish: Any,
        *,
        calls: int,
        prompt_tokens: int,
        completion_tokens: int,
        cache_hits: int = 0,
    ) -> ProposalBatch:
        def fail(stage: Any, msg: str) -> ProposalBatch:
            log.info("LLM reply unusable (%s): %s", stage, msg)
            return CachedProposalBatch(
                calls=calls,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                failure=(stage, msg),
                reply=content,
                cache_hits=cache_hits,
            )

        if not content.strip():
            return fail("extraction", f"empty reply (finish_reason={finish})")
        proposals = extract_proposals(content)[:MAX_PROPOSALS_PER_REPLY]
        if not proposals:
            why = "no ansatz found in the reply"
            if finish == "length":
                why += " (cut off by max_tokens)"
            return fail("extraction", why)
        return CachedProposalBatch(
            proposals=tuple(proposals),
            calls=calls,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            reply=content,
            cache_hits=cache_hits,
        )


@dataclass(frozen=True)
class CachedProposalBatch(ProposalBatch):
    """A :class:`~llmlex.proposer.ProposalBatch` that also says whether it came from the
    reply cache (``cache_hits`` is 1 for a cached reply, which costs ``calls=0``)."""

    cache_hits: int = 0


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


def _as_hints(hints: Sequence[str] | str | None) -> tuple[str, ...]:
    if not hints:
        return ()
    if isinstance(hints, str):
        hints = [hints]
    return tuple(str(h).strip() for h in hints if str(h).strip())


def _merge_hints(*groups: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        for h in _as_hints(group):
            if h not in out:
                out.append(h)
    return tuple(out)


def _digest(*arrays: np.ndarray, text: str = "") -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        b = np.ascontiguousarray(a, dtype=float)
        h.update(str(b.shape).encode())
        h.update(b.tobytes())
    h.update(text.encode())
    return h.hexdigest()
