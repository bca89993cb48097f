"""Fuzzing of every path untrusted text takes: random text and random well-formed ansätze
through :func:`~llmlex.ansatz.parse_ansatz` (and the parsed ansatz's normal form, sympy
form, canonical key, complexity and values), the sympy JSON codec and the reply
extractor.

Three properties hold for every input:

- the only exceptions are llmlex's own (:class:`~llmlex.exceptions.LLMLExError`), and
  no sympy form is refused by the last-resort handler of unexpected sympy failures;
- no single call takes :data:`MAX_SECONDS` or more (wall time);
- nothing is written: the tests run in an empty working directory, with ``HOME`` and
  ``XDG_CACHE_HOME`` pointing into it, and it stays empty.

The budget: ``LLMLEX_FUZZ_EXAMPLES`` examples per test, twice as many for the ansatz test
(default :data:`DEFAULT_EXAMPLES`: 40-45 s for the file on two idle cores), derandomised
so that CI is deterministic; ``LLMLEX_FUZZ_SEED=<int>`` draws other examples.  Hunt bugs
with e.g.
``LLMLEX_FUZZ_EXAMPLES=20000 LLMLEX_FUZZ_SEED=7 pytest --timeout=0 tests/test_fuzz.py``
(pytest-timeout stops a test after 300 s otherwise).
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import sympy  # imported here, so that no call below pays for importing it
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import llmlex._symbolic  # noqa: F401  (imported up front for the same reason)
from llmlex._extract import extract_proposals
from llmlex._functions import ALIASES, FUNCTIONS
from llmlex._sympy_json import _HEADS, decode_expr, encode_expr
from llmlex.ansatz import Ansatz, ansatz_from_sympy, parse_ansatz
from llmlex.exceptions import LLMLExError

#: Longest a single call may take, in seconds.
MAX_SECONDS = 2.0
#: Examples per test when ``LLMLEX_FUZZ_EXAMPLES`` is not set (the ansatz test draws twice
#: as many).
DEFAULT_EXAMPLES = 1500

_EXAMPLES = int(os.environ.get("LLMLEX_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
_SEED = os.environ.get("LLMLEX_FUZZ_SEED")

FUZZ = settings(
    max_examples=_EXAMPLES,
    deadline=None,  # the time bound is asserted per call, not per example
    derandomize=_SEED is None,
    database=None,  # derandomised or seeded: replaying saved examples would only confuse
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
T = TypeVar("T")


def _fuzz(weight: int = 1) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The settings with ``weight`` times the examples, and the seed of ``LLMLEX_FUZZ_SEED``."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        test = settings(FUZZ, max_examples=weight * _EXAMPLES)(test)
        return seed(int(_SEED))(test) if _SEED is not None else test

    return decorate


# --------------------------------------------------------------------------------------
# the three properties
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def sandbox() -> Iterator[Path]:
    """An empty working and home directory for the whole module."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        mp.chdir(root)
        mp.setenv("HOME", str(root))
        mp.setenv("XDG_CACHE_HOME", str(root / ".cache"))
        yield root


def _run(what: str, fn: Callable[[], T]) -> T | LLMLExError:
    """``fn()`` or the llmlex error it raised; any other exception propagates (a bug)."""
    # A collection of the garbage of the whole test session is not the call's time.
    collecting = gc.isenabled()
    gc.disable()
    t0 = time.perf_counter()
    try:
        with np.errstate(all="ignore"):  # floating-point warnings are not failures
            out: T | LLMLExError = fn()
    except LLMLExError as err:
        out = err
    finally:
        elapsed = time.perf_counter() - t0
        if collecting:
            gc.enable()
    assert elapsed < MAX_SECONDS, f"{what} took {elapsed:.2f} s"
    return out


def _assert_no_files() -> None:
    left = sorted(str(p) for p in Path.cwd().rglob("*"))
    assert not left, f"files written: {left[:5]}"


# --------------------------------------------------------------------------------------
# the pipeline every input goes through
# --------------------------------------------------------------------------------------

_X = np.linspace(-3.0, 3.0, 7)
#: Parameter values by name (the name is what hypothesis shows of a failing example).
_PARAMS = {
    "spread": np.linspace(-1.5, 2.5, 100),
    "zeros": np.zeros(100),
    "huge": np.full(100, 1e300),
    "mixed": np.tile([0.5, -2.0, 3.0, -1e-300], 25),
}


def _through_everything(text: str, params: str) -> Ansatz | None:
    """Parse ``text`` and use everything the ansatz offers; the ansatz if it parsed."""
    a = _run("parse_ansatz", lambda: parse_ansatz(text))
    if isinstance(a, LLMLExError):
        return None
    assert isinstance(a, Ansatz)
    assert _run("str", lambda: str(a)) == a.text
    again = _run("parse_ansatz of the normal form", lambda: parse_ansatz(a.text))
    assert isinstance(again, Ansatz), f"normal form {a.text!r} rejected: {again}"
    assert again.text == a.text
    p = _PARAMS[params][: a.n_params]
    for x in (_X, np.float64(0.5)):
        y = _run("evaluation", lambda x=x: a(x, p))
        assert isinstance(y, np.ndarray) and y.shape == np.shape(x) and y.dtype == float
    assert isinstance(_run("canonical", lambda: a.canonical), str)
    assert isinstance(_run("complexity", lambda: a.complexity), int)
    expr = _run("sympy", lambda: a.sympy)
    if isinstance(expr, LLMLExError):
        # The last-resort handler of a sympy failure: a bug to fix, even if not a crash.
        assert "sympy raised" not in str(expr), f"{text!r}: {expr}"
        return a
    assert isinstance(expr, sympy.Expr)
    _run("str of the sympy form", lambda: str(expr))
    back = _run("ansatz_from_sympy", lambda: ansatz_from_sympy(expr))
    assert isinstance(back, Ansatz | LLMLExError)
    _json_round_trip(expr)
    return a


def _json_round_trip(expr: sympy.Basic) -> None:
    tree = _run("encode_expr", lambda: encode_expr(expr))
    if isinstance(tree, LLMLExError):
        return
    text = json.dumps(tree, allow_nan=False)  # strict JSON
    back = _run("decode_expr", lambda: decode_expr(json.loads(text), kind=None))
    assert back == expr, f"{expr} came back as {back}"


def _extract(reply: str) -> None:
    proposals = _run("extract_proposals", lambda: extract_proposals(reply))
    assert isinstance(proposals, list)
    for prop in proposals[:5]:
        assert isinstance(prop.text, str)
        _run("parse_ansatz of an extracted text", lambda t=prop.text: parse_ansatz(t))


# --------------------------------------------------------------------------------------
# strategies: random text
# --------------------------------------------------------------------------------------

_HUGE_NUMBERS = (
    "0",
    "-0.0",
    "1e308",
    "1.7976931348623157e308",
    "1e309",
    "1e-320",
    "5e-324",
    "1e300",
    "9" * 300,
    "9" * 500,
    str(10**400),
    "10**400",
    "2**1023",
    "0x10",
    "1_000",
    "0b1",
    "1j",
    ".5",
    "1.",
    "nan",
    "inf",
    "np.inf",
    "np.nan",
)
_TOKENS = (
    *_HUGE_NUMBERS,
    "x",
    "params[0]",
    "params[1]",
    "params[99]",
    "params[100]",
    "params[-1]",
    "p[2]",
    "params[",
    "]",
    "params",
    "np.sin(",
    "np.where(",
    "np.power(",
    "np.exp(",
    "np.arccos(",
    "scipy.special.gamma(",
    "scipy.special.jv(",
    "sqrt(",
    "ln(",
    "np.pi",
    "e",
    "math.",
    "np.",
    "**",
    "*",
    "+",
    "-",
    "/",
    "//",
    "%",
    "@",
    "(",
    ")",
    ",",
    " ",
    "\n",
    ">",
    "<=",
    "==",
    "!=",
    "&",
    "|",
    " and ",
    " or ",
    " not ",
    " if ",
    " else ",
    "lambda x, *params:",
    "lambda",
    ":",
    ";",
    "=",
    "'",
    '"',
    "`",
    "```",
    "```python\n",
    "#",
    "\\\n",
    "\x00",
    "ansatz:",
    "**Final answer:**",
    "y = ",
    "f(x) = ",
    "def f(x, a, b):\n    return ",
    "initial: [1, 2]",
    "p0 = (1e308, -1)",
    "<think>",
    "</think>",
    "__import__('os')",
    "open('f', 'w')",
    "x.real",
    "[x]",
    "{x: 1}",
)

token_text = st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=200), token_text)


# --------------------------------------------------------------------------------------
# strategies: well-formed ansätze from the function table
# --------------------------------------------------------------------------------------

_PREFIXES = ("np.", "numpy.", "math.", "scipy.special.", "special.", "sps.", "")
_BY_ALIAS: dict[str, list[str]] = {}
for _alias, _name in ALIASES.items():
    _BY_ALIAS.setdefault(_name, []).append(_alias)
#: (how the function is written without prefix, argument count); a few with a wrong count.
_CALLS: list[tuple[str, int]] = [
    (spelling, n)
    for name, fn in sorted(FUNCTIONS.items())
    for spelling in (name, *_BY_ALIAS.get(name, ()))
    for n in fn.arity
]
_CALLS += [("sin", 2), ("where", 2), ("arctan2", 1)]

_numbers = st.one_of(
    st.integers(-10, 10).map(str),
    st.sampled_from(["0.5", "2", "3", "-1", "0", "0.0", "100", "101", "0.001", "1e-300"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(_HUGE_NUMBERS),
    st.integers(-(10**300), 10**300).map(str),
)
_leaves = st.one_of(
    st.just("x"),
    st.just("x"),
    st.integers(0, 4).map(lambda i: f"params[{i}]"),
    st.integers(0, 4).map(lambda i: f"params[{i}]"),
    st.sampled_from(["params[99]", "p[1]", "params[100]", "params[-1]", "params[x]"]),
    st.sampled_from(["np.pi", "pi", "math.e", "e", "np.euler_gamma", "numpy.pi"]),
    _numbers,
)
_BINOPS = ("+", "-", "*", "/", "**", "**", "%", "//")
_CMPOPS = ("<", "<=", ">", ">=", "==", "!=")


def _conditions(expr: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Conditions of ``np.where``: comparisons, their logic, and plain expressions."""
    compare = st.tuples(expr, st.sampled_from(_CMPOPS), expr).map(" ".join)
    chained = st.tuples(expr, st.sampled_from(_CMPOPS), expr, st.sampled_from(_CMPOPS), expr).map(
        " ".join
    )
    simple = st.one_of(compare, chained, expr)
    logic = st.tuples(
        simple, st.sampled_from(["&", "|", "and", "or", "+", "-", "*", "**"]), simple
    ).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})")
    # Inside a condition, arithmetic and the power functions may take conditions too.
    unary = st.tuples(
        st.sampled_from(["-", "+", "np.sqrt", "np.square", "np.reciprocal", "np.exp2", "np.cbrt"]),
        simple,
    ).map(lambda t: f"{t[0]}({t[1]})")
    power = st.tuples(simple, simple).map(lambda t: f"np.power({t[0]}, {t[1]})")
    invalid = st.tuples(st.sampled_from(["not ", "~", "np.sin"]), simple).map(
        lambda t: f"{t[0]}({t[1]})"
    )
    return st.one_of(simple, simple, logic, unary, power, invalid)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.tuples(st.sampled_from(["-", "+"]), children).map(lambda t: f"{t[0]}({t[1]})")
    binary = st.tuples(children, st.sampled_from(_BINOPS), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    calls = st.tuples(
        st.sampled_from(_PREFIXES),
        st.sampled_from(_CALLS),
        st.lists(children, min_size=3, max_size=3),
    ).map(lambda t: f"{t[0]}{t[1][0]}({', '.join(t[2][: t[1][1]])})")
    where = st.tuples(st.sampled_from(("np.", "")), _conditions(children), children, children).map(
        lambda t: f"{t[0]}where({t[1]}, {t[2]}, {t[3]})"
    )
    return st.one_of(unary, binary, calls, calls, where)


ansatz_text = st.recursive(_leaves, _extend, max_leaves=12)
#: Deep nesting around the bounds (MAX_DEPTH 40) of the checker and the sympy codec.
deep_text = st.tuples(
    st.sampled_from(["np.sin", "np.exp", "-", "np.where(x > 0, 1, ", "np.sqrt", "abs"]),
    st.integers(1, 70),
    ansatz_text,
).map(lambda t: f"{t[0]}(" * t[1] + t[2] + ")" * t[1])

_params = st.sampled_from(sorted(_PARAMS))


# --------------------------------------------------------------------------------------
# strategies: replies and JSON
# --------------------------------------------------------------------------------------

_WRAPPERS = (
    "{}",
    "ansatz: {}",
    "**Final answer:** {}, where params[0] is the amplitude.",
    "```python\n{}\n```",
    "```\nlambda x, *params: {}\n```",
    "Try `{}` first.",
    "lambda x, *params: {}",
    "def f(x, a, b, c):\n    a, b = params\n    return {}\n",
    "y = {}\ninitial: [1.0, 2.0, 1e308]",
    '{{"ansatz": "{}", "initial": [1, 2]}}',
    "<think>ansatz: {}</think>\n",
    "<think>\nscratch\n</think>\nExpression = {}\np0 = (1, 2)",
    "Ansatz 1: {}\nAnsatz 2: {}",
)


@st.composite
def replies(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(any_text, ansatz_text), min_size=1, max_size=4))
    template = draw(st.sampled_from(_WRAPPERS))
    filled = template.replace("{}", "\x00").replace("{{", "{").replace("}}", "}")
    out = []
    for k, chunk in enumerate(filled.split("\x00")):
        out.append(chunk)
        out.append(parts[k % len(parts)])
    return draw(any_text) + "\n" + "".join(out[:-1]) + "\n" + draw(any_text)


#: Leaves of the codec's trees, valid and not.
_json_leaf_nodes = st.one_of(
    st.sampled_from(["x", "p0", "", "a" * 201]).map(lambda s: {"Symbol": s}),
    st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(["1" * 1001, "-0", "1.5", "x", " 1"]),
    ).map(lambda s: {"Integer": s}),
    st.lists(st.sampled_from(["1", "3", "0", "-2", "4", "1" * 1001]), max_size=3).map(
        lambda v: {"Rational": v}
    ),
    st.one_of(
        st.floats().map(repr), st.sampled_from(["1e400", "nan", "inf", "0x1p3", "1" * 50])
    ).map(lambda s: {"Float": s}),
    st.sampled_from(["pi", "E", "I", "oo", "-oo", "zoo", "nan", "true", "false", "Pi"]).map(
        lambda s: {"Constant": s}
    ),
)
#: Trees of the codec's nodes (whitelisted heads with children of any kind and number).
_json_nodes = st.recursive(
    _json_leaf_nodes,
    lambda kids: st.tuples(st.sampled_from(sorted(_HEADS)), st.lists(kids, max_size=3)).map(
        lambda t: {t[0]: t[1]}
    ),
    max_leaves=20,
)
_json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(sorted(_HEADS)), st.text(max_size=8)), kids),
    ),
    max_leaves=25,
)
json_trees = st.one_of(_json_nodes, _json_nodes, _json_junk)


# --------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------


@_fuzz()
@given(text=any_text, params=_params)
def test_random_text_raises_only_llmlex_errors(text: str, params: str) -> None:
    _through_everything(text, params)
    _extract(text)
    _assert_no_files()


@_fuzz(weight=2)  # the richest: sympy, evaluation, the codec and the way back
@given(text=st.one_of(ansatz_text, ansatz_text, deep_text), params=_params)
def test_random_ansatz_raises_only_llmlex_errors(text: str, params: str) -> None:
    _through_everything(text, params)
    _assert_no_files()


@_fuzz()
@given(reply=replies())
def test_random_reply_raises_only_llmlex_errors(reply: str) -> None:
    _extract(reply)
    _assert_no_files()


@_fuzz()
@given(data=json_trees)
def test_random_json_raises_only_llmlex_errors(data: Any) -> None:
    for kind in ("expr", None):
        out = _run("decode_expr", lambda kind=kind: decode_expr(data, kind=kind))
        if isinstance(out, LLMLExError):
            continue
        assert isinstance(out, sympy.Basic)
        _run("str of a decoded expression", lambda out=out: str(out))
        _json_round_trip(out)
    _assert_no_files()
