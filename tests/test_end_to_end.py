"""single_call / run_genetic with the real openai client against a local HTTP server."""

from __future__ import annotations

import asyncio
import os
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
import openai
import pytest
from fake_openai import FakeOpenAIServer, FakeReply, closed_port_url

import llmlex
from llmlex.exceptions import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMModelNotFoundError,
    NoValidAnsatzError,
)
from llmlex.llm import LLMProposer

SINE = "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)\ninitial: [1.0, 3.0]"


def test_reference_readme_basic_usage_runs_unchanged_but_base_url(fake_openai, monkeypatch):
    """The Basic Usage snippet of the reference README, with only base_url changed."""
    fake_openai.reply_with(
        lambda body: (
            SINE
            if len(fake_openai.requests) % 2
            else "I think it is a sine wave:\n"
            "```python\nlambda x, *params: params[0] * np.sin(params[1] * x) + params[2]\n```"
        )
    )
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test")
    # --- snippet (reference-README.md, "Basic Usage") ---
    import matplotlib.pyplot as plt

    client = openai.OpenAI(
        base_url=fake_openai.base_url,
        api_key=os.getenv("OPENROUTER_API_KEY")
        if os.getenv("OPENROUTER_API_KEY")
        else "<<<<<<your_api_key>>>>>>>",
    )
    x = np.linspace(-1, 1, 50)
    y = np.sin(np.pi * x) + 0.1 * np.random.randn(50)
    fig, ax = plt.subplots()
    ax.scatter(x, y)
    base64_img = llmlex.images.generate_base64_image(fig, ax, x, y)
    result = llmlex.single_call(client, base64_img, x, y, model="openai/gpt-4o")
    print(f"Best function: {result['ansatz']}")
    print(f"Parameters: {result['params']}")
    print(f"Score: {result['score']}")
    populations = llmlex.run_genetic(
        client, base64_img, x, y, population_size=5, num_of_generations=3, model="openai/gpt-4o"
    )
    # --- end of snippet ---
    plt.close(fig)
    client.close()
    assert "np.sin" in result["ansatz"]
    assert result["score"] > -0.1
    assert len(populations) >= 1 and all(len(p) >= 1 for p in populations)
    assert populations.best.nchi2 < 0.1
    assert populations.stats.calls == len(fake_openai.requests) - 1  # one was single_call's
    assert fake_openai.requests[0]["model"] == "openai/gpt-4o"
    sent = fake_openai.requests[0]["messages"][-1]["content"]
    image = next(part for part in sent if part["type"] == "image_url")
    assert image["image_url"]["url"] == "data:image/png;base64," + base64_img


def test_later_generations_send_parents_with_scores(fake_openai):
    fake_openai.reply_with(SINE)
    client = fake_openai.client()
    x = np.linspace(-1, 1, 40)
    y = np.sin(2.5 * x) + 0.3 * x**2  # not exactly reachable: the run goes on
    run = llmlex.run_genetic(client, None, x, y, 2, 2, progress=False, seed=0)
    assert len(run) == 2
    later = fake_openai.requests[-1]["messages"][-1]["content"]
    text = " ".join(part.get("text", "") for part in later)
    best = run.populations[0][-1]
    assert best.ansatz in text
    assert f"{best.nchi2:.3g}"[:4] in text or "nchi2" in text


@pytest.mark.parametrize("use_async", [False, True])
def test_generation_of_eight_runs_its_calls_concurrently(fake_openai, use_async):
    # Wall-time figures live in benchmarks/concurrency.py; here: all 8 calls overlap.
    fake_openai.reply_with(SINE)
    # Long enough that every call is still in flight when the last one starts, even on a
    # loaded machine (0.3 s let one finish first under CI load).
    fake_openai.latency = 1.5
    client = fake_openai.async_client() if use_async else fake_openai.client()
    x = np.linspace(-1, 1, 40)
    run = llmlex.run_genetic(client, None, x, np.sin(3.0 * x), 8, 1, progress=False)
    assert run.stats.calls == 8
    assert fake_openai.max_in_flight == 8
    if use_async:
        asyncio.run(client.close())


def test_rate_limits_and_server_errors_cost_retries_not_the_run(fake_openai):
    fake_openai.enqueue(FakeReply(status=429), FakeReply(status=500), FakeReply(status=503))
    fake_openai.reply_with(SINE)
    client = fake_openai.client(max_retries=3)
    x = np.linspace(-1, 1, 40)
    result = llmlex.single_call(client, None, x, np.sin(3.0 * x))
    assert result.nchi2 < 1e-10
    assert fake_openai.calls >= 4  # three failures were retried by the client


def test_garbage_replies_cost_one_individual_each(fake_openai):
    fake_openai.enqueue(
        FakeReply(body="{not json"),
        FakeReply(content=""),
        "I am not sure what this is.",
        "ansatz: __import__('os').system('echo pwned')",
    )
    fake_openai.reply_with(SINE)
    client = fake_openai.client()
    x = np.linspace(-1, 1, 40)
    run = llmlex.run_genetic(client, None, x, np.sin(3.0 * x), 6, 1, progress=False, seed=0)
    failures = run.stats.failures
    assert failures["api"] >= 1
    # The hostile reply is dropped at extraction or at parsing, never evaluated.
    assert failures["extraction"] + failures["parsing"] >= 3
    assert run.best.nchi2 < 1e-10


def test_timeouts_are_api_failures_and_a_run_of_them_says_so(fake_openai):
    fake_openai.latency = 1.0
    client = fake_openai.client(timeout=0.2, max_retries=0)
    x = np.linspace(-1, 1, 40)
    with pytest.raises(LLMConnectionError, match=r"Timeout|timed out"):
        llmlex.run_genetic(client, None, x, np.sin(x), 2, 1, progress=False)


def test_unreachable_server_ends_with_connection_error():
    client = openai.OpenAI(base_url=closed_port_url(), api_key="k", max_retries=0, timeout=2)
    x = np.linspace(-1, 1, 40)
    with pytest.raises(LLMConnectionError, match="reach"):
        llmlex.run_genetic(client, None, x, np.sin(x), 3, 2, progress=False)
    client.close()


def test_bad_key_fails_fast_and_clearly(fake_openai):
    fake_openai.reply_with(FakeReply(status=401, message="Incorrect API key provided"))
    client = fake_openai.client(api_key="sk-secret-value")
    x = np.linspace(-1, 1, 40)
    with pytest.raises(LLMAuthenticationError) as info:
        llmlex.run_genetic(client, None, x, np.sin(x), 4, 3, progress=False)
    assert "sk-secret-value" not in str(info.value)
    assert fake_openai.calls <= 4


def test_unknown_model_fails_fast_and_names_it(fake_openai):
    fake_openai.reply_with(FakeReply(status=404, message="model not found"))
    client = fake_openai.client()
    x = np.linspace(-1, 1, 40)
    with pytest.raises(LLMModelNotFoundError, match="no/such-model"):
        llmlex.single_call(client, None, x, np.sin(x), model="no/such-model")


def test_every_reply_useless_raises_no_valid_ansatz(fake_openai):
    fake_openai.reply_with("I cannot determine a formula from this plot, sorry.")
    client = fake_openai.client()
    x = np.linspace(-1, 1, 40)
    with pytest.raises(NoValidAnsatzError, match="extraction"):
        llmlex.run_genetic(client, None, x, np.sin(x), 2, 2, progress=False)


def test_hints_and_allowed_functions_reach_the_prompt(fake_openai):
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*np.exp(params[1]*x)")
    client = fake_openai.client()
    x = np.linspace(-1, 1, 40)
    with pytest.raises(NoValidAnsatzError, match="parsing"):
        llmlex.run_genetic(
            client,
            None,
            x,
            np.sin(x),
            2,
            1,
            progress=False,
            hints="periodic, no exp",
            allowed_functions=["sin", "cos"],
            llm_temperature=0.2,
            system_prompt="You are terse.",
        )
    body = fake_openai.requests[0]
    text = " ".join(
        part.get("text", "") if isinstance(part, dict) else str(part)
        for m in body["messages"]
        for part in (m["content"] if isinstance(m["content"], list) else [m["content"]])
    )
    assert "periodic, no exp" in text
    assert "You are terse." in text
    assert "np.sin" in text or "sin" in text
    assert body["temperature"] == 0.2


def test_run_inside_running_event_loop_with_async_client(fake_openai):
    fake_openai.reply_with(SINE)

    async def cell():
        client = fake_openai.async_client()
        async with client:
            sync_result = llmlex.run_genetic(client, None, X, np.sin(3 * X), 2, 1, progress=False)
            async_result = await llmlex.arun_genetic(
                client, None, X, np.sin(3 * X), 2, 1, progress=False
            )
        return sync_result, async_result

    a, b = asyncio.run(cell())
    assert a.best.nchi2 < 1e-10 and b.best.nchi2 < 1e-10


X = np.linspace(-1, 1, 40)


def test_hybrid_mode_saves_llm_calls_on_easy_problems(fake_openai):
    fake_openai.reply_with(SINE)
    client = fake_openai.client()
    x = np.linspace(0.1, 4, 60)
    run = llmlex.run_genetic(
        client, None, x, 2.0 * x + 1.0, 4, 3, progress=False, hybrid=True, seed=0
    )
    assert run.best.nchi2 < 1e-10
    assert fake_openai.calls == 0
    assert run.stats.llm_calls_saved == 4 + 3 + 3  # the elite takes a place from gen 2


@pytest.mark.timeout(30)
def test_a_dripping_reply_costs_one_individual_within_the_request_timeout(fake_openai):
    # One reply arrives a few bytes every 0.1 s for 10 s: the per-call timeout of 1 s is
    # a total deadline, so the call is an "api" failure after ~1 s and the run goes on.
    fake_openai.enqueue(FakeReply(drip=10.0))
    fake_openai.reply_with(SINE)
    client = fake_openai.client(timeout=3)
    x = np.linspace(-1, 1, 40)
    proposer = LLMProposer(client, request_timeout=1.0)
    t0 = time.perf_counter()
    run = llmlex.run_genetic(
        client, None, x, np.sin(3.0 * x), 2, 1, proposer=proposer, progress=False, seed=0
    )
    assert time.perf_counter() - t0 < 2.5
    assert run.stats.calls == 2 and run.stats.failures["api"] == 1
    assert run.best.nchi2 < 1e-10


def _counting_client(base_url: str, sent: list[str], **options) -> openai.OpenAI:
    """A real client that records every HTTP request it sends (also refused ones)."""
    hooks = {"request": [lambda request: sent.append(str(request.url))]}
    return openai.OpenAI(
        base_url=base_url,
        api_key="test-key",
        http_client=openai.DefaultHttpxClient(event_hooks=hooks),
        **options,
    )


X40 = np.linspace(-1, 1, 40)


@pytest.mark.timeout(60)
def test_an_unreachable_server_fails_fast_naming_its_url():
    # The CLI's 4 x 12 run used to try all 48 calls (27 s with retries) and not say where.
    with FakeOpenAIServer() as gone:
        url = gone.base_url
    sent: list[str] = []
    client = _counting_client(url, sent, max_retries=0, timeout=5)
    t0 = time.perf_counter()
    with pytest.raises(LLMConnectionError) as info:
        llmlex.run_genetic(client, None, X40, np.sin(3 * X40), 4, 12, progress=False)
    client.close()
    assert time.perf_counter() - t0 < 2.0
    assert len(sent) <= 4 + 2  # the first few, plus those already in flight
    msg = str(info.value)
    assert url.rstrip("/") in msg and "server is running" in msg and "base_url" in msg
    assert info.value.partial_run is None  # no generation finished


@pytest.mark.timeout(60)
def test_garbage_replies_stop_the_run_after_max_unparseable(fake_openai):
    fake_openai.reply_with("I cannot tell what this function is, sorry.")
    with pytest.raises(NoValidAnsatzError) as info:
        llmlex.run_genetic(
            fake_openai.client(), None, X40, np.sin(3 * X40), 4, 12,
            max_concurrency=1, max_unparseable=3, progress=False,
        )  # fmt: skip
    assert fake_openai.calls == 3
    msg = str(info.value)
    assert fake_openai.base_url in msg and "model name" in msg and "extraction: 3" in msg
    assert info.value.partial_run is None
    # The default, with a generation's calls in flight together: one generation, not 48.
    fake_openai.reset()
    with pytest.raises(NoValidAnsatzError, match="first 4 replies"):
        llmlex.run_genetic(fake_openai.client(), None, X40, np.sin(3 * X40), 4, 12, progress=False)
    assert fake_openai.calls == 4


def test_a_server_that_answers_well_runs_every_generation(fake_openai):
    # After one usable reply, unparseable ones are noise: five in a row stop nothing.
    replies = iter([SINE] + ["no idea"] * 5)
    fake_openai.reply_with(lambda body: next(replies, SINE))
    y = np.sin(2.5 * X40) + 0.3 * X40**2  # never exactly reached: every generation runs
    run = llmlex.run_genetic(
        fake_openai.client(), None, y=y, x=X40, population_size=2, num_of_generations=5,
        max_concurrency=1, progress=False, seed=0,
    )  # fmt: skip
    assert len(run) == 5 and fake_openai.calls == 2 + 1 * 4  # the elite's place from gen 2
    assert run.stats.failures["extraction"] == 5
    assert run.stop_reason == "all generations done"


@pytest.mark.timeout(60)
def test_a_server_gone_mid_run_fails_fast_with_the_run_so_far():
    server = FakeOpenAIServer().start()
    server.reply_with(SINE)
    sent: list[str] = []
    client = _counting_client(server.base_url, sent, max_retries=0, timeout=5)
    y = np.sin(2.5 * X40) + 0.3 * X40**2
    try:
        with pytest.raises(LLMConnectionError, match="could not reach") as info:
            llmlex.run_genetic(
                client, None, X40, y, 3, 10, max_concurrency=1, progress=False, seed=0,
                callback=lambda generation, population: server.stop(),
            )  # fmt: skip
    finally:
        server.stop()
        client.close()
    # One generation; the second's two children refused (it holds the elite alone); the
    # third's first refusal is the third in a row.
    assert len(sent) == 3 + 2 + 1
    partial = info.value.partial_run
    assert isinstance(partial, llmlex.GeneticRun) and len(partial) == 2
    assert partial.best.nchi2 < 1 and "could not reach" in partial.stop_reason
