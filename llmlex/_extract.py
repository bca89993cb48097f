"""Finding candidate ansatz texts in a language model's reply (text only: nothing here is
ever evaluated).

:func:`extract_proposals` searches a chatty reply for labelled lines, lambdas, ``def``
bodies, assignments, backticks and code fences, trims trailing prose, and attaches the
initial values the model suggested.  The safe parsing itself is
:func:`llmlex.ansatz.parse_ansatz`; this module only uses it to decide where weak
evidence (a bare line, a backtick) really is an expression.  :mod:`llmlex.llm`
re-exports :func:`extract_proposals`.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass

from llmlex._functions import ALIASES, CONSTANTS, FUNCTIONS
from llmlex.ansatz import parse_ansatz
from llmlex.exceptions import AnsatzError
from llmlex.proposer import Proposal

__all__ = ["extract_proposals"]

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


def _apply_signature(args: list[str], body: str, assignments: dict[str, str] | None = None) -> str:
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
