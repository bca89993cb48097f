"""Tests of llmlex.llm: prompts, reply extraction, and LLMProposer against a real HTTP server.

Every LLM path runs the real ``openai`` client against ``tests/fake_openai.py``.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path

import numpy as np
import openai
import pytest
from fake_openai import FakeOpenAIServer, FakeReply, closed_port_url
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlex import llm
from llmlex.ansatz import parse_ansatz
from llmlex.exceptions import AnsatzError, LLMAuthenticationError, LLMModelNotFoundError
from llmlex.fit import FitResult, fit_ansatz
from llmlex.images import data_image
from llmlex.llm import (
    DEFAULT_SYSTEM_PROMPT,
    LLMProposer,
    build_first_prompt,
    build_generation_prompt,
    build_messages,
    extract_proposals,
    normalise_functions,
)
from llmlex.proposer import ProposalRequest, Proposer

X = np.linspace(0.1, 5.0, 60)
Y = 2.0 * np.sin(1.3 * X) + 0.5
SIN_REPLY = (
    "The data oscillate with constant amplitude around an offset.\n\n"
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x) + params[2]\n"
    "initial: [2, 1.3, 0.5]"
)


def normal(text: str) -> str:
    return parse_ansatz(text).text


def first(reply: str) -> str:
    props = extract_proposals(reply)
    assert props, f"nothing extracted from {reply!r}"
    return normal(props[0].text)


def only_line(text: str) -> str:
    """The prompt line that restricts the functions."""
    (line,) = [ln for ln in text.splitlines() if "Use ONLY these functions" in ln]
    return line


def user_text(body: dict) -> str:
    (user,) = [m for m in body["messages"] if m["role"] == "user"]
    return "\n".join(p["text"] for p in user["content"] if p["type"] == "text")


def sent_image(body: dict) -> bytes:
    (user,) = [m for m in body["messages"] if m["role"] == "user"]
    (part,) = [p for p in user["content"] if p["type"] == "image_url"]
    url = part["image_url"]["url"]
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    raw = base64.b64decode(url[len(prefix) :], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return raw


def parents():
    a = fit_ansatz("params[0]*x + params[1]", X, Y)
    b = fit_ansatz("params[0]*np.sin(x)", X, Y)
    return (b, a) if b.nchi2 < a.nchi2 else (a, b)


def propose(proposer: LLMProposer, request: ProposalRequest):
    return asyncio.run(proposer.propose(request))


# --------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------


def test_first_prompt_has_format_hints_and_functions() -> None:
    text = build_first_prompt(
        X, Y, allowed_functions=normalise_functions(["np.sin", "cos", "erf"]), hints=["periodic"]
    )
    assert "ansatz: lambda x, *params:" in text
    assert "initial: [" in text
    assert "- periodic" in text
    assert "Use ONLY these functions" in text
    assert "sin, cos" in text and "scipy.special" in text and "erf" in text
    assert "exp" not in only_line(text)  # not offered when restricted
    assert f"{X.size} data points" in text


def test_default_prompt_lists_every_whitelisted_function() -> None:
    text = build_first_prompt(X, Y)
    for name in ("sin", "exp", "log", "sqrt", "erf", "gamma", "jv"):
        assert name in text
    assert "Prior knowledge" not in text


def test_generation_prompt_shows_scores_and_params() -> None:
    ps = parents()
    text = build_generation_prompt(X, Y, ps, hints=("no exp",))
    for k, p in enumerate(ps, start=1):
        assert f"Parent {k}: nchi2 = {p.nchi2:.3g}" in text
        assert p.ansatz in text
        assert f"{p.params[0]:.4g}" in text
    assert "- no exp" in text
    assert text.index("Parent 1") < text.index("Parent 2")


def test_generation_prompt_marks_unfittable_parent() -> None:
    bad = FitResult("np.log(params[0] - x)", np.array([np.nan]), float("inf"), False, "no")
    text = build_generation_prompt(X, Y, [bad])
    assert "Parent 1: nchi2 = inf (could not be fitted)" in text
    assert "fitted params: [nan]" in text


def test_normalise_functions() -> None:
    assert normalise_functions(None) is None
    assert normalise_functions(["np.sin", "ln", "scipy.special.erf", "sin"]) == (
        "sin",
        "log",
        "erf",
    )
    with pytest.raises(ValueError, match="did you mean 'sinh'"):
        normalise_functions(["sinhh"])


def test_build_messages() -> None:
    msgs = build_messages("hello", "QUJD")
    assert msgs[0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    url = msgs[1]["content"][1]["image_url"]["url"]
    assert url == "data:image/png;base64,QUJD"
    assert build_messages("hi", "data:image/png;base64,QUJD")[1]["content"][1]["image_url"][
        "url"
    ] == ("data:image/png;base64,QUJD")
    assert build_messages("hi", None, system_prompt="")[0]["role"] == "user"
    assert build_messages("hi", None, system_prompt="be brief")[0]["content"] == "be brief"


# --------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------

EXTRACTION_CASES = [
    (SIN_REPLY, "params[0]*np.sin(params[1]*x) + params[2]", (2.0, 1.3, 0.5)),
    (
        "Looking at the plot, this is a damped oscillation.\n\n```python\n"
        "lambda x, *params: params[0] * np.exp(-params[1] * x) * np.cos(params[2] * x)\n```\n"
        "Hope this helps!",
        "params[0]*np.exp(-params[1]*x)*np.cos(params[2]*x)",
        None,
    ),
    (
        "Final answer:\n```python\nimport numpy as np\n\ndef f(x, params):\n"
        "    a, b, c = params  # unpack\n    return (a * np.exp(-b * x)\n"
        "            + c)\n```",
        "params[0]*np.exp(-params[1]*x) + params[2]",
        None,
    ),
    (
        "y = np.where(x >= 1, params[0]*x, params[1]) where the kink sits at one.",
        "np.where(x >= 1, params[0]*x, params[1])",
        None,
    ),
    ("The model f(x) = params[0]*x**2 + params[1] fits well.", "params[0]*x**2 + params[1]", None),
    ("**Ansatz:** `params[0]*np.log(x) + params[1]`.", "params[0]*np.log(x) + params[1]", None),
    ("Ansatz: `params[0]*np.tanh(params[1]*x)`", "params[0]*np.tanh(params[1]*x)", None),
    ("lambda x, a, b, c: a*np.exp(b*x)+c", "params[0]*np.exp(params[1]*x)+params[2]", None),
    ("f = lambda x, *p: p[0]*x**p[1]\ninitial: [2, 0.5]", "params[0]*x**params[1]", (2.0, 0.5)),
    (
        "ansatz: lambda x, *params: params[0]*x. This is linear; for small x it is exact.",
        "params[0]*x",
        None,
    ),
    (
        "Ansatz: params[0] * np.sin(params[1] * x + params[2]), with params[0] the amplitude.",
        "params[0]*np.sin(params[1]*x + params[2])",
        None,
    ),
    (
        "def model(x, params):\n    amp = params[0]\n    k = params[1]\n"
        "    return amp * np.cos(k * x)\n\nparams = [50.0, 1.2]",
        "params[0]*np.cos(params[1]*x)",
        (50.0, 1.2),
    ),
    ("params[0]*np.sqrt(params[1] - x)", "params[0]*np.sqrt(params[1] - x)", None),
    (
        "ansatz = lambda x, *params: np.where((x >= params[0]) & (x <= 3), x, 0) "
        "+ params[1]\np0 = (1.5, 0.1)",
        "np.where((x >= params[0]) & (x <= 3), x, 0) + params[1]",
        (1.5, 0.1),
    ),
]


@pytest.mark.parametrize(("reply", "expected", "initial"), EXTRACTION_CASES)
def test_extract_proposals(reply: str, expected: str, initial: tuple | None) -> None:
    props = extract_proposals(reply)
    assert props
    assert normal(props[0].text) == normal(expected)
    assert props[0].initial == initial


def test_comparison_is_not_truncated_at_equals() -> None:
    (prop,) = extract_proposals("y = np.where(x >= 1, params[0], params[1]*x)")
    a = parse_ansatz(prop.text)
    out = a(np.array([0.5, 1.0, 2.0]), [7.0, 3.0])
    assert out.tolist() == [1.5, 7.0, 7.0]  # x == 1 takes the ">=" branch


def test_several_candidates_most_explicit_first() -> None:
    reply = (
        "One option is `params[0]*x**2`.\n"
        "Ansatz 1: params[0]*x\ninitial: [1]\n"
        "Ansatz 2: params[0]*x + params[1]*x**2\ninitial: [1, 2]\n"
    )
    props = extract_proposals(reply)
    texts = [normal(p.text) for p in props]
    assert texts[:2] == [normal("params[0]*x"), normal("params[0]*x + params[1]*x**2")]
    assert normal("params[0]*x**2") in texts[2:]  # inline backticks: weaker evidence
    assert props[0].initial == (1.0,) and props[1].initial == (1.0, 2.0)


def test_reasoning_drafts_yield_to_the_final_answer() -> None:
    reply = "<think>ansatz: params[0]*x maybe?</think>\nansatz: params[0]*np.cos(x)"
    assert [normal(p.text) for p in extract_proposals(reply)] == [normal("params[0]*np.cos(x)")]
    assert first("<think>ansatz: params[0]*x</think>\nI give up.") == normal("params[0]*x")


def test_no_expression_means_no_proposal() -> None:
    assert extract_proposals("") == []
    assert extract_proposals("I am not sure what this function is, sorry.") == []
    assert extract_proposals("The answer is 42") == []


def test_unparseable_labelled_candidates_are_returned_raw() -> None:
    props = extract_proposals("ansatz: params[0]*foo(x)")
    assert [p.text for p in props] == ["params[0]*foo(x)"]
    with pytest.raises(AnsatzError):
        parse_ansatz(props[0].text)


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "params[0]*x + __import__('os').system('touch {marker}')",
    "eval(\"__import__('os').system('touch {marker}')\")",
    'exec(\'open("{marker}", "w")\')',
    "open('{marker}', 'w').write('x')",
    "x.__class__",
    "x.__class__.__mro__[1].__subclasses__()",
    "np.__dict__['sys']",
    "params.__len__()",
    "getattr(np, 'sin')(x)",
    "__builtins__",
    "(lambda: x)()",
    "np.sin(x) * (lambda q: q)(params[0])",
    "[x for _ in range(10)]",
    "sum(x**k for k in range(9))",
    "{k: x for k in range(3)}",
    "9**9**9",
    "params[0]*x**9**9",
    "x**(10**100)",
    "1" + "0" * 400 + "*x",
    "x*" + "1" * 5000,
    "+".join(["x"] * 10_000),
    "np.sin(x, out=x)",
    "'string' * params[0]",
    "x if params[0] else params[1]",
    "x @ x",
    "np.lib.stride_tricks.as_strided(x)",
    "globals()",
    "params[10**6]*x",
    "x[::-1]",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_replies_rejected_without_side_effects(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = template.replace("{marker}", str(marker))
    replies = [
        f"ansatz: {payload}",
        f"Here you go:\n```python\nlambda x, *params: {payload}\n```",
        f"y = {payload}",
        payload,
    ]
    t0 = time.perf_counter()
    for reply in replies:
        for prop in extract_proposals(reply):
            try:
                a = parse_ansatz(prop.text)
            except AnsatzError:
                continue
            # Anything accepted is a plain expression: no trace of the payload's machinery.
            assert "__" not in a.text and "import" not in a.text and "lambda" not in a.text
            a(np.linspace(0.1, 1, 5), np.ones(a.n_params))
    assert time.perf_counter() - t0 < 5.0
    assert not marker.exists()


def test_hostile_payload_is_not_sanitised_into_an_expression(tmp_path: Path) -> None:
    # Cutting the reply before the payload would silently change the proposal.
    reply = "ansatz: params[0]*x + __import__('os').system('true')"
    (prop,) = extract_proposals(reply)
    with pytest.raises(AnsatzError):
        parse_ansatz(prop.text)


EXPRESSIONS = [
    "params[0]*np.sin(params[1]*x) + params[2]",
    "params[0]*np.exp(-params[1]*x)",
    "np.where(x >= params[0], params[1]*x, params[2])",
    "params[0]*x**params[1]",
    "np.sqrt(params[0] - x)",
    "params[0]/(1 + np.exp(-params[1]*(x - params[2])))",
    "scipy.special.erf(params[0]*x) + params[1]",
    "params[0]*np.log(x) + params[1]*x**2",
]
WORDS = ["This", "The", "Note", "Here", "It", "Fits", "Because", "Given", "Such"]
prose_line = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.!?'-",
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    expr=st.sampled_from(EXPRESSIONS),
    before=st.lists(prose_line, max_size=4),
    after=st.lists(prose_line, max_size=4),
    tail_word=st.sampled_from(["", *WORDS]),
    tail=prose_line,
    wrap=st.sampled_from(["label", "lambda", "fence", "tick", "assign", "bold"]),
)
def test_extraction_survives_random_prose(expr, before, after, tail_word, tail, wrap) -> None:
    line = {
        "label": f"ansatz: lambda x, *params: {expr}",
        "lambda": f"lambda x, *params: {expr}",
        "fence": f"```python\nlambda x, *params: {expr}\n```",
        "tick": f"Ansatz: `{expr}`",
        "assign": f"y = {expr}",
        "bold": f"**Final answer:** {expr}",
    }[wrap]
    if tail_word and wrap != "fence":
        line += f". {tail_word} {tail}"
    reply = "\n".join([*before, line, *after])
    assert first(reply) == normal(expr)


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# Replies that made the old patterns backtrack (adjacent or nested unbounded quantifiers
# over the same characters) or made the extractor rescan the reply once per match.
ADVERSARIAL = {
    "label + blanks": "ansatz" + " " * 150_000,
    "initial + blanks": "initial:" + " " * 150_000,
    "fence + blanks": "```" + " " * 150_000,
    "fence + tabs": "```" + " \t" * 60_000 + "x",
    "def + blank line": "def f(x):\n" + " " * 100_000 + "\nreturn x",
    "labels on one line": _repeat("ansatz:(", 200_000),
    "assignments": _repeat("f(x)=", 200_000),
    "continued lines": _repeat("y = x +\n", 200_000),
    "inline code": "".join(f"`x+{i}` " for i in range(20_000)),
    "bare lines": "".join(f"x+{i}\n" for i in range(20_000)),
    "lambdas": _repeat("lambda x:(", 200_000),
    "one long word": "x " + "a" * 200_000,
    "dots": "ansatz: x" + "." * 200_000,
    "separators": "ansatz: x" + " ," * 60_000 + "word",
    "initial values": "initial: [" + "1," * 60_000,
    "prose lines": _repeat("ansatz: x and then the word is\n", 200_000),
    "def arguments": "def f(x, " + "a," * 50_000 + "):\n return a",
    "bold markers": "ansatz:" + "*" * 200_000 + "x",
    "think blocks": _repeat("<think>ansatz: x</think>", 200_000),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_extraction_is_linear_and_bounded_on_adversarial_replies(name: str) -> None:
    reply = ADVERSARIAL[name]
    assert 50_000 <= len(reply) <= 210_000
    extract_proposals("ansatz: params[0]*x")  # warm up (imports, compiled patterns)
    t0 = time.perf_counter()
    props = extract_proposals(reply)
    assert time.perf_counter() - t0 < 0.5, name
    assert all(isinstance(p.text, str) and len(p.text) <= 4000 for p in props)


def test_extraction_still_finds_the_answer_after_a_hostile_preamble() -> None:
    reply = "ansatz" + " " * 5000 + "\n" + "`x" * 2000 + "\nansatz: params[0]*np.exp(x)"
    t0 = time.perf_counter()
    assert first(reply) == normal("params[0]*np.exp(x)")
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.timeout(60)
def test_a_hostile_reply_does_not_stall_a_run_past_its_time_budget(fake_openai) -> None:
    # 1500 blanks after a label took ~7 s of backtracking on the event loop per reply,
    # so a 2.6 KB reply held a run with time_budget=5 for minutes.
    from llmlex import run_genetic

    fake_openai.reply_with("ansatz" + " " * 1500 + "\nansatz: params[0]*np.sin(params[1]*x)")
    t0 = time.perf_counter()
    run = run_genetic(
        fake_openai.client(),
        None,
        X,
        Y,
        population_size=2,
        num_of_generations=1000,
        time_budget=1.0,
        progress=False,
        seed=0,
    )
    assert time.perf_counter() - t0 < 4.0
    assert "time budget" in run.stop_reason


# --------------------------------------------------------------------------------------
# LLMProposer against the fake server
# --------------------------------------------------------------------------------------


def test_proposer_satisfies_protocol(openai_client: openai.OpenAI) -> None:
    p = LLMProposer(openai_client, model="some/model")
    assert isinstance(p, Proposer)
    assert p.name == "llm:some/model"


def test_constructor_validates() -> None:
    with pytest.raises(TypeError):
        LLMProposer(None)
    c = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
    try:
        with pytest.raises(ValueError):
            LLMProposer(c, temperature=5.0)
        with pytest.raises(ValueError, match="unknown function"):
            LLMProposer(c, allowed_functions=["sine"])
    finally:
        c.close()


def test_sync_client_first_generation(fake_openai: FakeOpenAIServer, monkeypatch) -> None:
    fake_openai.reply_with(FakeReply(SIN_REPLY, prompt_tokens=321, completion_tokens=45))
    drawn_in: list[int] = []

    def spy(x, y):
        drawn_in.append(threading.get_ident())
        return data_image(x, y)

    monkeypatch.setattr(llm, "data_image", spy)
    p = LLMProposer(fake_openai.client(), model="vision/model", max_tokens=300)
    batch = propose(p, ProposalRequest(x=X, y=Y, hints=("periodic",)))
    assert batch.failure is None
    assert batch.calls == 1
    assert (batch.prompt_tokens, batch.completion_tokens) == (321, 45)
    assert normal(batch.proposals[0].text) == normal("params[0]*np.sin(params[1]*x)+params[2]")
    assert batch.proposals[0].initial == (2.0, 1.3, 0.5)
    assert batch.reply == SIN_REPLY
    (body,) = fake_openai.requests
    assert body["model"] == "vision/model"
    assert body["max_tokens"] == 300
    assert "temperature" not in body  # left to the server unless set
    assert body["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert "- periodic" in user_text(body)
    sent_image(body)
    assert drawn_in and drawn_in[0] != threading.get_ident()  # drawn off the event loop


def test_async_client_and_options(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.reply_with(SIN_REPLY)
    img = data_image(X, Y)

    async def main():
        async with fake_openai.async_client() as client:
            p = LLMProposer(
                client,
                model="m",
                temperature=0.7,
                system_prompt="You are terse.",
                hints=("decays to zero",),
                allowed_functions=["exp", "sin"],
                extra_body={"provider": {"sort": "price"}},
            )
            req = ProposalRequest(x=X, y=Y, image=img, hints=("no exp",))
            return await p.propose(req)

    batch = asyncio.run(main())
    assert batch.failure is None and batch.proposals
    (body,) = fake_openai.requests
    assert body["temperature"] == 0.7
    assert body["provider"] == {"sort": "price"}
    assert body["messages"][0]["content"] == "You are terse."
    text = user_text(body)
    assert "- decays to zero" in text and "- no exp" in text  # merged
    assert "sin" in only_line(text)
    assert base64.b64encode(sent_image(body)).decode() == img  # the caller's image, as is


def test_request_allowed_functions_take_precedence(fake_openai: FakeOpenAIServer) -> None:
    p = LLMProposer(fake_openai.client(), allowed_functions=["exp"])
    propose(p, ProposalRequest(x=X, y=Y, image="QUJD", allowed_functions=("cos", "tanh")))
    only = only_line(user_text(fake_openai.requests[0]))
    assert "cos, tanh" in only and "exp" not in only


def test_later_generation_sends_parents_scores_and_their_plot(
    fake_openai: FakeOpenAIServer,
) -> None:
    ps = parents()
    p = LLMProposer(fake_openai.client())
    img = data_image(X, Y)
    batch = propose(p, ProposalRequest(x=X, y=Y, image=img, parents=ps, generation=1))
    assert batch.failure is None
    body = fake_openai.requests[0]
    text = user_text(body)
    for p_ in ps:
        assert f"nchi2 = {p_.nchi2:.3g}" in text
        assert p_.ansatz in text
    # The parents' curves are drawn over the data: not the plain data image.
    assert base64.b64encode(sent_image(body)).decode() != img

    no_plots = LLMProposer(fake_openai.client(), parent_plots=False)
    propose(no_plots, ProposalRequest(x=X, y=Y, image=img, parents=ps, generation=1))
    assert base64.b64encode(sent_image(fake_openai.requests[1])).decode() == img


def test_images_are_drawn_once_per_data(fake_openai: FakeOpenAIServer, monkeypatch) -> None:
    calls = []

    def counting(x, y):
        calls.append(1)
        return data_image(x, y)

    monkeypatch.setattr(llm, "data_image", counting)
    p = LLMProposer(fake_openai.client())

    async def main():
        return await asyncio.gather(*(p.propose(ProposalRequest(x=X, y=Y)) for _ in range(4)))

    batches = asyncio.run(main())
    assert all(b.failure is None for b in batches)
    assert len(calls) == 1


def test_rate_limit_is_retried_by_the_client(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(FakeReply(status=429, headers={"retry-after": "0.01"}))
    fake_openai.reply_with(SIN_REPLY)
    p = LLMProposer(fake_openai.client(max_retries=2))
    t0 = time.perf_counter()
    batch = propose(p, ProposalRequest(x=X, y=Y, image="QUJD"))
    assert batch.failure is None and batch.proposals
    assert fake_openai.calls == 2
    assert time.perf_counter() - t0 < 3.0


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (FakeReply(status=429), "RateLimitError"),
        (FakeReply(status=500), "InternalServerError"),
        (FakeReply(status=503), "InternalServerError"),
        (FakeReply(body="{not json"), "JSONDecodeError"),
        (FakeReply(body='{"id": "x", "object": "chat.completion"}'), "MalformedResponse"),
        (FakeReply(body="<html>oops</html>", content_type="text/html"), "MalformedResponse"),
    ],
)
def test_transient_faults_cost_one_call(fake_openai, reply, error) -> None:
    fake_openai.reply_with(reply)
    p = LLMProposer(fake_openai.client(max_retries=1))
    batch = propose(p, ProposalRequest(x=X, y=Y, image="QUJD"))
    assert batch.proposals == ()
    assert batch.calls == 1
    assert batch.failure is not None
    stage, msg = batch.failure
    assert stage == "api"
    assert msg.startswith(error + ":"), msg


def test_timeout_is_an_api_failure(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.latency = 3.0
    p = LLMProposer(fake_openai.client(timeout=0.3))
    t0 = time.perf_counter()
    batch = propose(p, ProposalRequest(x=X, y=Y, image="QUJD"))
    assert time.perf_counter() - t0 < 2.5
    assert batch.failure is not None
    assert batch.failure[0] == "api" and batch.failure[1].startswith("APITimeoutError:")


def test_request_timeout_overrides_client(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.latency = 3.0
    p = LLMProposer(fake_openai.client(timeout=30), request_timeout=0.3)
    batch = propose(p, ProposalRequest(x=X, y=Y, image="QUJD"))
    assert batch.failure is not None and batch.failure[1].startswith("APITimeoutError:")


def test_connection_refused_is_an_api_failure() -> None:
    client = openai.OpenAI(base_url=closed_port_url(), api_key="k", max_retries=0, timeout=5)
    try:
        batch = propose(LLMProposer(client), ProposalRequest(x=X, y=Y, image="QUJD"))
    finally:
        client.close()
    assert batch.failure is not None
    assert batch.failure[0] == "api" and batch.failure[1].startswith("APIConnectionError:")


@pytest.mark.parametrize("content", ["", None, "   \n"])
def test_empty_content_is_an_extraction_failure(fake_openai, content) -> None:
    fake_openai.reply_with(FakeReply(content=content, completion_tokens=0))
    batch = propose(LLMProposer(fake_openai.client()), ProposalRequest(x=X, y=Y, image="QUJD"))
    assert batch.failure is not None and batch.failure[0] == "extraction"
    assert batch.prompt_tokens == 100  # the call was still paid for


def test_chatty_reply_without_expression(fake_openai: FakeOpenAIServer) -> None:
    chat = "This looks like some kind of wave. Hard to say more without seeing more data."
    fake_openai.reply_with(FakeReply(chat, finish_reason="length"))
    batch = propose(LLMProposer(fake_openai.client()), ProposalRequest(x=X, y=Y, image="QUJD"))
    assert batch.failure is not None
    assert batch.failure[0] == "extraction" and "max_tokens" in batch.failure[1]
    assert batch.reply == chat


def test_unparseable_proposals_are_returned_for_the_search_to_count(fake_openai) -> None:
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*mystery(x)")
    batch = propose(LLMProposer(fake_openai.client()), ProposalRequest(x=X, y=Y, image="QUJD"))
    assert batch.failure is None
    assert [p.text for p in batch.proposals] == ["params[0]*mystery(x)"]


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_raises(fake_openai: FakeOpenAIServer, status: int) -> None:
    key = "sk-or-v1-supersecret0123456789"
    fake_openai.reply_with(FakeReply(status=status, message=f"Incorrect API key provided: {key}"))
    p = LLMProposer(fake_openai.client(api_key=key))
    with pytest.raises(LLMAuthenticationError) as info:
        propose(p, ProposalRequest(x=X, y=Y, image="QUJD"))
    msg = str(info.value)
    assert "rejected" in msg and fake_openai.base_url in msg
    assert key not in msg and "supersecret" not in msg
    assert info.value.__cause__ is None  # the server's echo of the key is not chained


def test_unknown_model_raises(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.reply_with(FakeReply(status=404, message="The model does not exist"))
    p = LLMProposer(fake_openai.client(), model="openai/gpt-99")
    with pytest.raises(LLMModelNotFoundError, match="openai/gpt-99") as info:
        propose(p, ProposalRequest(x=X, y=Y, image="QUJD"))
    assert fake_openai.base_url in str(info.value)


def test_sync_client_calls_run_concurrently(fake_openai: FakeOpenAIServer) -> None:
    # Each call is held 1.5 s so that all eight overlap even on a loaded machine (0.3 s
    # saw 7 of 8 in flight while other test suites ran beside it).
    fake_openai.latency = 1.5
    fake_openai.reply_with(SIN_REPLY)
    p = LLMProposer(fake_openai.client())
    img = data_image(X, Y)

    async def main():
        reqs = [ProposalRequest(x=X, y=Y, image=img, seed=k) for k in range(8)]
        return await asyncio.gather(*(p.propose(r) for r in reqs))

    batches = asyncio.run(main())
    assert all(b.failure is None for b in batches)
    # All eight overlap on the server: not capped by asyncio's default thread pool.
    assert fake_openai.max_in_flight == 8


def test_fake_server_models_endpoint(fake_openai: FakeOpenAIServer) -> None:
    models = fake_openai.client().models.list()
    assert [m.id for m in models.data] == [fake_openai.model]
    assert fake_openai.base_url.endswith("/v1")
