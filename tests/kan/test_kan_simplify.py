"""llmlex._kan_simplify: the LLM's simpler forms are parsed, never evaluated, and judged."""

from __future__ import annotations

import asyncio

import sympy
from fake_openai import FakeReply
from kan_helpers import dataset, needs_kan, symbolic_multkan, torch

from llmlex._kan_simplify import llm_simplifications
from llmlex.kan import kan_to_symbolic, symbolic_from_edges


def _prompts(server) -> list[str]:
    return [r["messages"][-1]["content"] for r in server.requests]


@needs_kan
def test_llm_simplifications_are_parsed_not_evaluated_and_judged(fake_openai, openai_client):
    model = symbolic_multkan()
    f = lambda X: (  # noqa: E731
        model(torch.tensor(X, dtype=torch.float32)).detach().numpy()[:, 0].astype(float)
    )
    X, y, Xt, yt = dataset(f, n=200)
    edges = kan_to_symbolic(model, None, x=X)
    fake_openai.reply_with(
        "1. __import__('os').system('echo pwned')\n"
        "2. x0 + x1\n"  # simpler but wrong: must be rejected by the score
        "3. np.sin(x0)**2 + np.cos(x0)**2\n"
    )
    (res,) = symbolic_from_edges(
        model, edges, X, y, Xt, yt, client=openai_client, simplify_timeout=0, snap_time=2
    )
    prompts = _prompts(fake_openai)
    assert len(prompts) == 1 and "x0" in prompts[0]
    llm = [c for c in res.candidates if c.origin == "llm"]
    assert len(llm) == 2  # the import line never became a candidate
    assert not any(c.accepted for c in llm)
    assert res.r2_test > 0.9999
    assert res.llm_calls == 1


def test_reply_lines_are_parsed_by_the_whitelist(fake_openai, openai_client):
    x0, x1 = sympy.symbols("x0 x1", real=True)
    fake_openai.reply_with(
        "1. __import__('os').system('echo pwned')\n- y = x0*x1 + 1\n```\n3) np.exp(x0) / x1\n"
    )
    expr = x0 * x1 + sympy.Float(1.0)
    forms, calls = llm_simplifications(openai_client, "m", expr, ["x0", "x1"], 3)
    prompts = _prompts(fake_openai)
    assert calls == 1 and len(prompts) == 1
    assert "x0*x1" in prompts[0] and "x0, x1" in prompts[0]
    assert forms == [x0 * x1 + 1, sympy.exp(x0) / x1]


def test_a_repeated_request_is_answered_by_the_reply_cache(fake_openai, openai_client, tmp_path):
    x0 = sympy.Symbol("x0", real=True)
    fake_openai.reply_with("2*x0")
    first = llm_simplifications(openai_client, "m", x0 + x0, ["x0"], 1, cache=tmp_path)
    again = llm_simplifications(openai_client, "m", x0 + x0, ["x0"], 1, cache=tmp_path)
    assert first == ([2 * x0], 1) and again == ([2 * x0], 0)
    assert fake_openai.calls == 1


def test_an_async_client_is_awaited(fake_openai):
    x0 = sympy.Symbol("x0", real=True)
    fake_openai.reply_with("2*x0")
    client = fake_openai.async_client()
    try:
        forms, _ = llm_simplifications(client, "m", x0 + x0, ["x0"], 1)
    finally:
        asyncio.run(client.close())
    assert forms == [2 * x0]


def test_a_failed_request_costs_only_this_step(fake_openai, openai_client):
    x0 = sympy.Symbol("x0", real=True)
    fake_openai.reply_with(FakeReply(status=500, message="server on fire"))
    assert llm_simplifications(openai_client, "m", x0, ["x0"], 2) == ([], 1)
