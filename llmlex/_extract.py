"""Finding candidate ansatz texts in a language model's reply (text only: nothing here is
ever evaluated).

:func:`extract_proposals` searches a chatty reply for labelled lines, lambdas, ``def``
bodies, assignments, backticks and code fences, trims trailing prose, and attaches the
initial values the model suggested.  The safe parsing itself is
:func:`llmlex.ansatz.parse_ansatz`; this module only uses it to decide where weak
evidence (a bare line, a backtick) really is an expression.  :mod:`llmlex.llm`
re-exports :func:`extract_proposals`.

Extraction is linear in the reply and bounded, whatever the reply holds: it reads at most
:data:`llmlex.cache.MAX_REPLY_CHARS` characters, squeezes long runs of whitespace first,
uses no pattern with adjacent or nested unbounded quantifiers over the same characters
(the cause of catastrophic backtracking: ``'ansatz' + ' ' * 1500`` once took seconds),
looks at most ``_MAX_MATCHES`` matches of each pattern, reads at most ``_SCAN_BUDGET``
characters as expressions and parses at most ``_PARSE_BUDGET`` distinct texts
(``_PARSE_CHARS`` characters).  A reply that hits a bound yields fewer candidates, never
a stall.
"""

from __future__ import annotations

import bisect
import itertools
import keyword
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from llmlex._functions import ALIASES, CONSTANTS, FUNCTIONS
from llmlex.ansatz import MAX_TEXT_LENGTH, parse_ansatz
from llmlex.cache import MAX_REPLY_CHARS
from llmlex.exceptions import AnsatzError
from llmlex.proposer import Proposal

__all__ = ["extract_proposals"]

_MAX_CANDIDATE_CHARS = 4000
#: Matches of one pattern looked at (a real reply has a handful; a hostile one may have
#: tens of thousands, each costing a scan of up to ``_MAX_CANDIDATE_CHARS``).
_MAX_MATCHES = 100
#: Distinct texts handed to the parser per reply, and their characters (a parse costs
#: about 1 µs per character, up to ``MAX_TEXT_LENGTH``, above which it is refused at once).
_PARSE_BUDGET = 1500
_PARSE_CHARS = 100_000
#: Characters read as expressions per reply (a real reply needs a few hundred).
_SCAN_BUDGET = 100_000
#: Lines looked at for a bare expression when nothing else matched.
_MAX_BARE_LINES = 2000
#: Lines looked at for unpacking before a ``return`` and for a value below its label.
_MAX_LINES = 64
_OPEN, _CLOSE = "([{", ")]}"

# Priorities: lower is more explicit.
_P_LABEL, _P_LAMBDA, _P_DEF, _P_ASSIGN, _P_TICK, _P_FENCE, _P_BARE = range(7)

_LABEL = re.compile(
    r"(?i)\b(?:final\s+|proposed\s+|new\s+|improved\s+)?"
    r"(?:ansatz|ansätze|answer|expression|formula|equation)"
    # Bold markers may close after a number or a blank, never straight after the opening
    # ones: two adjacent runs of "*" would backtrack quadratically on a run of stars.
    r"\**[ \t]*(?:(?:#?\d+|\([^()\n]{0,40}\))[ \t]*)?(?:(?<=[ \t\d)])\*+[ \t]*)?[:=](?!=)"
)
_ASSIGN_LINE = re.compile(
    r"(?m)^[ \t>*\-]*(?:y|f|g|y_?pred|y_?hat|y_?fit|model)"
    r"[ \t]*(?:\([ \t]*x[ \t]*(?:,[^()\n]*)?\)[ \t]*)?=(?!=)[ \t]*"
)
_ASSIGN_INLINE = re.compile(r"\b[fy][ \t]*\([ \t]*x[ \t]*\)[ \t]*=(?!=)[ \t]*")
_LAMBDA = re.compile(r"\blambda\b([^:\n]{0,120}):")
_DEF = re.compile(r"\bdef[ \t]+\w+[ \t]*\(([^()]{0,300})\)[ \t]*(?:->[^:\n]*)?:")
_RETURN = re.compile(r"\breturn\b[ \t]*")
_FENCE = re.compile(r"```[ \t]*(?:[\w+-]+[ \t]*)?\n(.*?)(?:```|\Z)", re.S)
_TICK = re.compile(r"(?<!`)`([^`\n]{1,600})`(?!`)")
_INITIAL = re.compile(
    r"(?i)\b(?:initial(?:[ _-]?(?:values?|params|parameters|guess(?:es)?))?|p0|params0|"
    r"initial_params|params|parameters|guess(?:es)?|starting[ _]values)"
    r"[ \t]*[:=](?!=)[ \t]*(?:`[ \t]*)?(?:np\.array\([ \t]*)?[\[(]([^\[\]()\n]{0,600})[\])]"
)
_ASSIGN_HEAD = re.compile(
    r"^\s*(?:y|f|g|y_?pred|y_?hat|y_?fit|model)\s*(?:\(\s*x\s*(?:,[^()]*)?\)\s*)?=(?!=)\s*"
)
_PROSE_SPLIT = re.compile(r"(?<![\s.,;:])[\s.,;:]+\(?([A-Za-z][A-Za-z']+)\b")
_THREE_WORDS = re.compile(r"(?<![A-Za-z])[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}")
_MENTIONS_X = re.compile(r"(?<![\w.])(?:x|params|p)\b")
_SUBSCRIPTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\[")
_EMPHASIS = re.compile(r"^(?:\*\*|__)|(?:\*\*|__)$")
_FENCE_MARK = re.compile(r"```[\w+-]*")
# Runs of whitespace squeezed before anything else: no pattern then sees a long run.
_LONG_BLANK = re.compile(r"[^\S\n]{8,}")
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
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


class _Work:
    """The work one reply may cost: parses (memoised) and characters read as expressions.

    Once a budget is spent every new text counts as unparseable and no further
    expression is read, so that a reply full of near-expressions costs a bounded time
    (such a reply is hostile or broken anyway).  The most explicit forms are read first.
    """

    def __init__(self) -> None:
        self.seen: dict[str, bool] = {}
        self.budget = _PARSE_BUDGET
        self.chars = _PARSE_CHARS
        self.scan = _SCAN_BUDGET

    def parses(self, text: str) -> bool:
        """Whether ``text`` parses as an ansatz (False once the budget is spent)."""
        known = self.seen.get(text)
        if known is not None:
            return known
        if self.budget <= 0 or self.chars <= 0:
            return False
        self.budget -= 1
        self.chars -= min(len(text), MAX_TEXT_LENGTH)
        try:
            parse_ansatz(text)
        except AnsatzError:
            ok = False
        else:
            ok = True
        self.seen[text] = ok
        return ok


def _first(matches: Iterator[re.Match[str]]) -> Iterator[re.Match[str]]:
    """The first ``_MAX_MATCHES`` matches of a pattern."""
    return itertools.islice(matches, _MAX_MATCHES)


def _squeeze(text: str) -> str:
    """``text`` with runs of 8+ blanks made one space and runs of blank lines one.

    Neither changes what is extracted (candidates are whitespace-normalised, and a
    value is looked for past any number of blank lines), but no pattern then meets a
    long run of whitespace.
    """
    text = text.replace("\r\n", "\n")
    return _BLANK_LINES.sub("\n\n", _LONG_BLANK.sub(" ", text))


def _take_expression(text: str, start: int, work: _Work) -> str:
    """Read an expression from ``start`` up to where it visibly ends.

    Stops at a newline outside brackets (unless the line ends with an operator or a
    backslash), at an unmatched closing bracket, at a backtick or ``$``, and at ``;``.
    ``#`` comments are skipped.  ``=`` does *not* end it: ``x >= 1`` stays whole.
    """
    depth = 0
    out: list[str] = []  # one character per item, so that trailing ones can be popped
    # The last two non-blank characters read: a line ending in an operator continues,
    # and is checked without re-joining everything read so far (quadratic on long runs).
    last = prev = ""
    i, n = start, min(len(text), start + min(_MAX_CANDIDATE_CHARS, work.scan))
    while i < n:
        c = text[i]
        if c in "`$":
            break
        if c == "#":
            j = text.find("\n", i, n)
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
            if last == "\\":
                while out and out[-1].isspace():
                    out.pop()
                out[-1] = " "  # the backslash
                last, prev = prev, ""
                i += 1
                continue
            if last and last in "+-*/(,":
                out.append(" ")
                i += 1
                continue
            break
        elif c == ";" and depth == 0:
            break
        out.append(c)
        if not c.isspace():
            last, prev = c, last
        i += 1
    work.scan -= i - start
    return "".join(out).strip()


def _value_after(text: str, pos: int, work: _Work) -> tuple[str, int]:
    """The expression following a label or ``=`` at ``pos``: same line, or the next."""
    # Every scan is bounded by a window: a long line holding many labels must not cost
    # a scan to its end per label.
    i = pos
    window = _MAX_CANDIDATE_CHARS
    line_end = text.find("\n", i, i + window)
    line_end = min(len(text), i + window) if line_end < 0 else line_end
    stripped = text[i:line_end].strip().strip("*").strip()
    if not stripped or set(stripped) <= {"`"} or _FENCE_MARK.fullmatch(stripped):
        # The value sits on the following line(s), possibly inside a code fence.
        i = line_end + 1
        for _ in range(_MAX_LINES):
            if i >= len(text):
                break
            nl = text.find("\n", i, i + window)
            nl = min(len(text), i + window) if nl < 0 else nl
            line = text[i:nl].strip()
            if line and not _FENCE_MARK.fullmatch(line):
                break
            i = nl + 1
        else:
            return "", i
        if i >= len(text):
            return "", i
    # Skip markdown decoration and an opening backtick run.
    end = min(len(text), i + window)
    while i < end and text[i] in " \t*":
        i += 1
    if text.startswith("```", i):
        i += 3
        while i < end and (text[i].isalnum() or text[i] in "+-"):
            i += 1
    elif i < len(text) and text[i] == "`":
        i += 1
    return _take_expression(text, i, work), i


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
    # Names used as ``name[...]`` (one pass, not one search per argument).
    subscripted = set(_SUBSCRIPTED.findall(body))
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
        if starred or name in subscripted:
            if name != "params":
                mapping[name] = "params"
        else:
            mapping[name] = f"params[{k}]"
            k += 1
    return _rename(body, mapping)


def _clean(text: str) -> str:
    text = " ".join(text.split())  # multi-line expressions become one line
    text = _EMPHASIS.sub("", text).strip()
    text = _ASSIGN_HEAD.sub("", text, count=1)
    return text.strip().strip("`").strip().rstrip(".,;:").strip()


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
    # A few characters suffice (the text is whitespace-normalised); slicing to the end
    # for every word would be quadratic in the text.
    after = text[m.end() : m.end() + 8].lstrip()
    # A whitelisted name used as code ("where(", "params[", "np.") continues the expression.
    return not (word in _CODE_WORDS and after[:1] in ("(", "[", "."))


def _trim_prose(text: str, work: _Work) -> str:
    """Drop trailing prose ("..., where params[0] is the amplitude.") from an expression.

    Cuts only where a plain word that is not part of the ansatz language starts, trying
    the longest prefix first, and keeps a cut only if the rest parses as an ansatz.  If
    nothing parses, the cleaned text is returned unchanged, so that the parser can say
    what is wrong with it.
    """
    text = _clean(text)
    if not text or work.parses(text):
        return text
    cuts = [m.start() for m in _PROSE_SPLIT.finditer(text) if _is_prose_cut(text, m)]
    for cut in reversed(cuts[-200:]):
        prefix = text[:cut].rstrip().rstrip(".,;:").rstrip()
        if prefix and work.parses(prefix):
            return prefix
    return text


def _normalise_value(value: str) -> str:
    """Turn a labelled value into a bare expression (lambdas unwrapped, heads dropped)."""
    value = _clean(value)
    m = re.match(r"lambda\b([^:]{0,200}):\s*", value)
    if m:
        return _apply_signature(_split_args(m.group(1)), value[m.end() :])
    return value


_UNPACK_NAMES = re.compile(r"[\w\s,]+")
_ITEM_ASSIGN = re.compile(r"(\w+)\s*=\s*(\w+)\s*\[\s*(\d+)\s*\]")


def _def_candidates(text: str, work: _Work) -> list[_Candidate]:
    out = []
    defs = list(itertools.islice(_DEF.finditer(text), _MAX_MATCHES + 1))
    for k, d in enumerate(defs[:_MAX_MATCHES]):
        end = defs[k + 1].start() if k + 1 < len(defs) else len(text)
        block = text[d.end() : end]
        r = _RETURN.search(block)
        if r is None:
            continue
        body = _take_expression(block, r.end(), work)
        # Unpacking such as "a, b, c = params" or "a = params[0]" in the function body.
        assignments: dict[str, str] = {}
        head = block[: r.start()]
        for line in head.splitlines()[-_MAX_LINES:]:
            # Split at the first "=" instead of one regex with adjacent "\s*" around a
            # lazy group of spaces (cubic on a line of blanks).
            names, eq, value = line.split("#")[0].strip().partition("=")
            value = value.strip()
            if eq and value in ("params", "p", "args", "theta"):
                if _UNPACK_NAMES.fullmatch(names):
                    for i, name in enumerate(_split_args(names)):
                        if name.isidentifier():
                            assignments[name] = f"params[{i}]"
                    continue
            m = _ITEM_ASSIGN.fullmatch(line.split("#")[0].strip())
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
    return _extract(reply[:MAX_REPLY_CHARS], _Work())


def _extract(reply: str, work: _Work) -> list[Proposal]:
    text = _squeeze(reply)
    if "</think>" in text:
        # Reasoning models put drafts in a <think> block: prefer what follows it.
        final = _extract(text.rsplit("</think>", 1)[1], work)
        if final:
            return final
        text = re.sub(r"</?think>", "\n", text)

    # Trim prose, drop empties, then de-duplicate keeping the most explicit occurrence.
    anchors: list[tuple[int, str]] = []
    best: dict[str, _Candidate] = {}
    trimmed: dict[str, str] = {}

    def keep(cands: list[_Candidate]) -> None:
        for c in cands:
            t = trimmed.get(c.text)
            if t is None:
                t = trimmed[c.text] = _trim_prose(_normalise_value(c.text), work)
            if not t or not _looks_like_expr(t):
                continue
            anchors.append((c.position, t))
            old = best.get(t)
            if old is None or (c.priority, c.position) < (old.priority, old.position):
                best[t] = _Candidate(c.priority, c.position, t)

    # The explicit forms first, so that they are trimmed before weak evidence can spend
    # the parse budget.
    explicit = _explicit_candidates(text, work)
    keep(explicit)
    weak = _weak_candidates(text, work)
    keep(weak)
    if not explicit and not weak:
        keep(_bare_candidates(text, work))

    # Initial values belong to the nearest candidate written before them.
    anchors.sort()
    positions = [pos for pos, _ in anchors]
    initial: dict[str, tuple[float, ...]] = {}
    for m in _first(_INITIAL.finditer(text)):
        values = _parse_numbers(m.group(1))
        if values is None:
            continue
        k = bisect.bisect_left(positions, m.start())
        owner = anchors[k - 1][1] if k > 0 else None
        if owner is None and len(best) == 1:
            owner = next(iter(best))
        if owner is not None and owner not in initial:
            initial[owner] = values

    ordered = sorted(best.values(), key=lambda c: (c.priority, c.position))
    return [Proposal(c.text, initial.get(c.text)) for c in ordered]


def _explicit_candidates(text: str, work: _Work) -> list[_Candidate]:
    """Labelled values, lambdas, ``def`` bodies and assignments (kept even if unparseable)."""
    cands: list[_Candidate] = []
    for m in _first(_LABEL.finditer(text)):
        value, _ = _value_after(text, m.end(), work)
        if value and not value.startswith(("def ", "import ", "from ")):
            cands.append(_Candidate(_P_LABEL, m.start(), _normalise_value(value)))
    for m in _first(_LAMBDA.finditer(text)):
        body = _take_expression(text, m.end(), work)
        if body:
            cands.append(
                _Candidate(_P_LAMBDA, m.start(), _apply_signature(_split_args(m.group(1)), body))
            )
    cands.extend(_def_candidates(text, work))
    for pattern in (_ASSIGN_LINE, _ASSIGN_INLINE):
        for m in _first(pattern.finditer(text)):
            value, _ = _value_after(text, m.end(), work)
            if value:
                cands.append(_Candidate(_P_ASSIGN, m.start(), _normalise_value(value)))
    return cands


def _weak_candidates(text: str, work: _Work) -> list[_Candidate]:
    """Inline backticks and code fences holding an expression that parses."""
    cands: list[_Candidate] = []
    for m in _first(_TICK.finditer(text)):
        value = _clean(m.group(1))
        if _looks_like_expr(value) and work.parses(value):
            cands.append(_Candidate(_P_TICK, m.start(), value))
    for m in _first(_FENCE.finditer(text)):
        if m.end(1) - m.start(1) > 4 * _MAX_CANDIDATE_CHARS:
            continue  # a long program, not one expression
        body = "\n".join(
            line.split("#")[0].strip() for line in m.group(1).splitlines() if line.strip()
        )
        joined = _clean(" ".join(body.split("\n")))
        if _looks_like_expr(joined) and work.parses(joined):
            cands.append(_Candidate(_P_FENCE, m.start(), joined))
    return cands


def _bare_candidates(text: str, work: _Work) -> list[_Candidate]:
    """Lines that are by themselves a valid ansatz (the last resort)."""
    cands: list[_Candidate] = []
    pos = 0
    looked = 0
    for line in text.split("\n"):
        if looked >= _MAX_BARE_LINES:
            break
        if line.strip() and len(line) <= _MAX_CANDIDATE_CHARS:
            looked += 1
            value = _clean(line)
            if _looks_like_expr(value) and work.parses(value):
                cands.append(_Candidate(_P_BARE, pos, value))
                if len(cands) >= _MAX_MATCHES:
                    break
        pos += len(line) + 1
    return cands


def _looks_like_expr(text: str) -> bool:
    """Cheap filter: mentions x or a parameter, and is not a sentence."""
    if not text or len(text) > _MAX_CANDIDATE_CHARS:
        return False
    if not _MENTIONS_X.search(text):
        return False
    # Three plain words in a row are prose, not an expression.
    return not _THREE_WORDS.search(text)
