"""Budgets of calls, tokens and money, against the local OpenAI-compatible server."""

from __future__ import annotations

import math

import numpy as np
import pytest

import llmlex

X = np.linspace(-1, 1, 40)
Y = np.sin(2.5 * X) + 0.3 * X**3  # never exact for the replies below: runs go on
REPLIES = [
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)\ninitial: [1.0, 2.5]",
    "ansatz: lambda x, *params: params[0]*x + params[1]*x**2",
    "ansatz: lambda x, *params: params[0]*np.tanh(params[1]*x)",
]
# The fake server reports usage of 100 prompt and 20 completion tokens per call.
TOKENS_PER_CALL = 120


@pytest.fixture
def server(fake_openai):
    fake_openai.reply_with(lambda body: REPLIES[len(fake_openai.requests) % len(REPLIES)])
    return fake_openai


def run(server, population_size, generations, **kw):
    kw.setdefault("exit_condition", 0.0)
    # Full populations (no elite taking a place) keep the call counts below simple.
    kw.setdefault("elite", False)
    return llmlex.run_genetic(
        server.client(),
        "QUJD",
        X,
        Y,
        population_size,
        generations,
        model="fake/m",
        progress=False,
        seed=0,
        **kw,
    )


def test_max_calls_is_never_exceeded_even_with_concurrency(server):
    server.latency = 0.05
    result = run(server, 4, 10, max_calls=10, max_concurrency=8)
    assert server.calls == 10
    assert result.stats.calls == 10
    assert result.stop_reason == "max_calls budget of 10 calls reached"
    assert len(result) == 3  # 4 + 4 + 2 calls; the third generation is partial
    assert result.best.nchi2 < math.inf


def test_max_calls_smaller_than_one_generation(server):
    server.latency = 0.1
    result = run(server, 8, 3, max_calls=3, max_concurrency=8)
    assert server.calls == 3 and server.max_in_flight <= 3
    assert len(result) == 1 and "max_calls" in result.stop_reason


def test_max_tokens_stops_once_spent(server):
    result = run(server, 2, 20, max_tokens=500, max_concurrency=2)
    total = result.stats.total_tokens
    assert total == TOKENS_PER_CALL * server.calls
    # No call starts once the budget is spent; the calls of one generation may overshoot.
    assert 500 <= total < 500 + 2 * TOKENS_PER_CALL
    assert result.stop_reason == "max_tokens budget of 500 tokens reached"


def test_max_cost_with_prices(server):
    prices = {"fake/m": (1.0, 2.0)}  # USD per million prompt / completion tokens
    per_call = (100 * 1.0 + 20 * 2.0) / 1e6
    result = run(server, 2, 20, max_cost=5 * per_call, prices=prices, max_concurrency=1)
    assert server.calls == 5
    assert result.stats.cost == pytest.approx(5 * per_call)
    assert result.stop_reason == "max_cost budget of 0.0007 USD reached"


def test_cost_is_reported_with_prices_and_none_without(server):
    priced = run(server, 2, 2, prices={"fake/m": (2.5, 10.0)})
    assert priced.stats.cost == pytest.approx(server.calls * (100 * 2.5 + 20 * 10.0) / 1e6)
    assert priced.stop_reason == "all generations done"
    unpriced = run(server, 2, 1)
    assert unpriced.stats.cost is None


def test_max_cost_without_a_price_is_a_clear_error_before_any_call(server):
    with pytest.raises(ValueError, match=r"max_cost needs the price of model 'fake/m'"):
        run(server, 2, 2, max_cost=1.0, prices={"other/model": (1.0, 1.0)})
    assert server.calls == 0


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"max_calls": -1}, "max_calls must be a non-negative integer"),
        ({"max_tokens": 2.5}, "max_tokens must be a non-negative integer"),
        ({"max_cost": -1.0}, "max_cost must be non-negative"),
        ({"prices": {"fake/m": (1.0,)}}, r"prices\['fake/m'\] must be"),
        ({"prices": {"fake/m": (1.0, -2.0)}}, "finite and non-negative"),
    ],
)
def test_bad_budgets_are_rejected(server, option, match):
    with pytest.raises(ValueError, match=match):
        run(server, 2, 2, **option)
    assert server.calls == 0


def test_budgets_bind_llm_calls_only_not_the_offline_proposer():
    # max_calls=0 forbids every paid call; the offline proposer is free.
    x = np.linspace(0.1, 4, 60)
    result = llmlex.run_genetic(None, None, x, 2.0 * x + 1.0, 2, 1, progress=False, max_calls=0)
    assert result.best.nchi2 < 1e-10
    assert result.stats.calls == 0


def test_budget_with_checkpoint_resumes_with_a_larger_budget(server, tmp_path):
    path = tmp_path / "ckpt.json"
    first = run(server, 2, 4, max_calls=4, checkpoint=path)
    assert server.calls == 4 and len(first) == 2 and "max_calls" in first.stop_reason
    # Same budget: nothing more is spent.
    same = run(server, 2, 4, max_calls=4, checkpoint=path)
    assert server.calls == 4 and len(same) == 2
    # A larger budget continues the run; the budget counts the calls made before.
    more = run(server, 2, 4, max_calls=6, checkpoint=path)
    assert server.calls == 6 and more.stats.calls == 6 and len(more) == 3
