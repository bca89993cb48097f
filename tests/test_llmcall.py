"""The one place llmlex calls a model (LLMCall, Ledger), against the local HTTP server.

Every call runs the real ``openai`` client against ``tests/fake_openai.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time

import openai
import pytest
from fake_openai import FakeOpenAIServer, FakeReply, closed_port_url

from llmlex._llmcall import Budgets, Ledger, LLMCall, Usage, call_deadline, check_prices
from llmlex.exceptions import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMModelNotFoundError,
)

MESSAGES = [{"role": "user", "content": "Simplify x + x."}]
# The fake server reports 100 prompt and 20 completion tokens per call.
PER_CALL = Usage(calls=1, prompt_tokens=100, completion_tokens=20)


def test_max_calls_is_never_exceeded_by_concurrent_async_calls(fake_openai: FakeOpenAIServer):
    fake_openai.latency = 0.2
    fake_openai.reply_with("2*x")
    ledger = Ledger(Budgets(max_calls=3))

    async def main():
        async with fake_openai.async_client() as client:
            call = LLMCall(client, model="fake/m", ledger=ledger)
            return await asyncio.gather(*(call.achat(MESSAGES, seed=k) for k in range(8)))

    replies = asyncio.run(main())
    assert fake_openai.calls == 3 and fake_openai.max_in_flight <= 3
    answered = [r for r in replies if r.content is not None]
    refused = [r for r in replies if r.refused is not None]
    assert len(answered) == 3 and all(r.content == "2*x" for r in answered)
    assert len(refused) == 5
    assert all(r.refused == "max_calls budget of 3 calls reached" for r in refused)
    assert all(r.usage == Usage() for r in refused)  # nothing was sent
    assert ledger.usage == Usage(3, 300, 60) and ledger.reserved == 0


def test_max_calls_is_never_exceeded_by_plain_threads(fake_openai: FakeOpenAIServer):
    fake_openai.latency = 0.2
    fake_openai.reply_with("2*x")
    ledger = Ledger(Budgets(max_calls=3))
    call = LLMCall(fake_openai.client(), model="fake/m", ledger=ledger)
    texts: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        try:
            texts.append(call.complete_text(MESSAGES)[0])
        except LLMError as err:
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert fake_openai.calls == 3
    assert texts == ["2*x"] * 3
    assert len(errors) == 5 and all("max_calls budget of 3" in str(e) for e in errors)
    assert ledger.calls == 3 and ledger.reserved == 0


def test_token_and_cost_budgets_and_prices(fake_openai: FakeOpenAIServer):
    fake_openai.reply_with("2*x")
    ledger = Ledger(Budgets(max_tokens=250), price=(1.0, 2.0))
    call = LLMCall(fake_openai.client(), model="fake/m", ledger=ledger)
    for _ in range(3):
        call.complete_text(MESSAGES)
    with pytest.raises(LLMError, match="max_tokens budget of 250 tokens reached"):
        call.complete_text(MESSAGES)
    assert fake_openai.calls == 3 and ledger.usage.total_tokens == 360
    assert ledger.cost == pytest.approx(3 * (100 * 1.0 + 20 * 2.0) / 1e6)

    cost_capped = Ledger(Budgets(max_cost=2e-4), price=(1.0, 2.0))
    call = LLMCall(fake_openai.client(), model="fake/m", ledger=cost_capped)
    call.complete_text(MESSAGES)
    call.complete_text(MESSAGES)
    with pytest.raises(LLMError, match=r"max_cost budget of 0\.0002 USD reached"):
        call.complete_text(MESSAGES)
    assert Ledger().cost is None  # no price: the cost is unknown, not zero


def test_complete_text_returns_text_and_usage(fake_openai: FakeOpenAIServer):
    fake_openai.reply_with(FakeReply("x**2", prompt_tokens=7, completion_tokens=3))
    call = LLMCall(fake_openai.client(), model="fake/m")
    text, usage = call.complete_text(MESSAGES, max_tokens=50, temperature=0.2)
    assert text == "x**2" and usage == Usage(calls=1, prompt_tokens=7, completion_tokens=3)
    (body,) = fake_openai.requests
    assert body["model"] == "fake/m" and body["messages"] == MESSAGES
    assert body["max_tokens"] == 50 and body["temperature"] == 0.2


def test_complete_text_inside_a_running_event_loop(fake_openai: FakeOpenAIServer):
    fake_openai.reply_with("x")
    call = LLMCall(fake_openai.client(), model="fake/m", ledger=Ledger())

    async def notebook_cell():
        return call.complete_text(MESSAGES)

    assert asyncio.run(notebook_cell()) == ("x", PER_CALL)
    assert call.ledger is not None and call.ledger.calls == 1


def test_complete_text_with_an_async_client(fake_openai: FakeOpenAIServer):
    fake_openai.reply_with("x")
    client = fake_openai.async_client()
    call = LLMCall(client, model="fake/m")
    assert call.complete_text(MESSAGES) == ("x", PER_CALL)
    asyncio.run(client.close())


def test_cache_answers_repeats_without_a_call(fake_openai: FakeOpenAIServer, tmp_path):
    fake_openai.reply_with(lambda body: f"reply {len(fake_openai.requests)}")
    ledger = Ledger()
    call = LLMCall(fake_openai.client(), model="fake/m", cache=tmp_path / "c", ledger=ledger)
    first = call.complete_text(MESSAGES, seed=1)
    again = call.complete_text(MESSAGES, seed=1)
    other = call.complete_text(MESSAGES, seed=2)  # another seed: another request
    assert fake_openai.calls == 2
    assert first == ("reply 1", PER_CALL)
    assert again == ("reply 1", Usage(cache_hits=1))
    assert other[0] == "reply 2"
    assert ledger.usage == Usage(2, 200, 40, cache_hits=1)


def test_a_spent_budget_still_answers_from_the_cache(fake_openai: FakeOpenAIServer, tmp_path):
    fake_openai.reply_with("x")
    call = LLMCall(
        fake_openai.client(),
        model="fake/m",
        cache=tmp_path / "c",
        ledger=Ledger(Budgets(max_calls=1)),
    )
    call.complete_text(MESSAGES)
    assert call.complete_text(MESSAGES) == ("x", Usage(cache_hits=1))
    with pytest.raises(LLMError, match="max_calls"):
        call.complete_text(MESSAGES, seed=5)
    assert fake_openai.calls == 1


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_raises_without_the_key(fake_openai: FakeOpenAIServer, status):
    key = "sk-or-v1-supersecret0123456789"
    fake_openai.reply_with(FakeReply(status=status, message=f"Incorrect API key: {key}"))
    ledger = Ledger(Budgets(max_calls=5))
    call = LLMCall(fake_openai.client(api_key=key), model="fake/m", ledger=ledger)
    with pytest.raises(LLMAuthenticationError) as info:
        call.complete_text(MESSAGES)
    assert "supersecret" not in str(info.value) and info.value.__cause__ is None
    assert ledger.reserved == 0  # the reservation is released on the way out


def test_unknown_model_raises(fake_openai: FakeOpenAIServer):
    fake_openai.reply_with(FakeReply(status=404, message="no such model"))
    with pytest.raises(LLMModelNotFoundError, match="gpt-99"):
        LLMCall(fake_openai.client(), model="openai/gpt-99").complete_text(MESSAGES)


def test_transient_failures_are_replies_and_errors_when_synchronous(fake_openai):
    fake_openai.reply_with(FakeReply(status=500))
    ledger = Ledger()
    call = LLMCall(fake_openai.client(), model="fake/m", ledger=ledger)
    reply = asyncio.run(call.achat(MESSAGES))
    assert reply.content is None and reply.failure is not None
    assert reply.failure.startswith("InternalServerError:")
    assert reply.usage == Usage(calls=1)  # a failed call still counts as a call
    with pytest.raises(LLMError, match="InternalServerError"):
        call.complete_text(MESSAGES)
    assert ledger.calls == 2


def test_unreachable_server_is_a_connection_error():
    client = openai.OpenAI(base_url=closed_port_url(), api_key="k", max_retries=0, timeout=5)
    try:
        with pytest.raises(LLMConnectionError, match="APIConnectionError"):
            LLMCall(client, model="m").complete_text(MESSAGES)
    finally:
        client.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("use_async", [False, True])
def test_per_call_timeout_is_a_total_deadline_against_a_dripping_server(fake_openai, use_async):
    # httpx's timeout bounds each read: a body sent a few bytes at a time over 10 s never
    # trips a 3 s client timeout, so only a total deadline ends the call.
    fake_openai.reply_with(FakeReply(drip=10.0))
    client = fake_openai.async_client(timeout=3) if use_async else fake_openai.client(timeout=3)
    ledger = Ledger()
    call = LLMCall(client, model="fake/m", ledger=ledger)
    t0 = time.perf_counter()
    reply = asyncio.run(call.achat(MESSAGES, timeout=1.0))
    assert time.perf_counter() - t0 < 2.0
    assert reply.content is None
    assert reply.failure is not None and reply.failure.startswith("APITimeoutError:")
    assert "1 s" in reply.failure and fake_openai.base_url in reply.failure
    assert reply.usage == Usage(calls=1) and ledger.calls == 1 and ledger.reserved == 0
    if use_async:
        asyncio.run(client.close())


@pytest.mark.timeout(30)
def test_the_client_timeout_also_bounds_the_whole_call(fake_openai):
    fake_openai.reply_with(FakeReply(drip=10.0))
    client = fake_openai.client(timeout=0.5, max_retries=0)
    assert call_deadline(client) == pytest.approx(1.5)
    t0 = time.perf_counter()
    with pytest.raises(LLMConnectionError, match="APITimeoutError"):
        LLMCall(client, model="fake/m").complete_text(MESSAGES)
    assert time.perf_counter() - t0 < 2.5


@pytest.mark.timeout(30)
def test_an_abandoned_blocking_call_never_counts_as_a_reply(fake_openai, tmp_path):
    # The thread of a blocking client outlives the deadline and receives the whole reply
    # later: it must not reach the cache, the ledger or the caller.
    fake_openai.reply_with(FakeReply("late reply", drip=1.0))
    ledger = Ledger()
    call = LLMCall(fake_openai.client(), model="fake/m", cache=tmp_path / "c", ledger=ledger)
    reply = asyncio.run(call.achat(MESSAGES, timeout=0.3))
    assert reply.content is None and reply.failure is not None
    time.sleep(1.2)  # the server has finished sending by now
    assert len(call.cache) == 0
    assert ledger.usage == Usage(calls=1) and ledger.reserved == 0


def test_call_deadline():
    class Client:
        chat = None

        def __init__(self, timeout, max_retries=2):
            self.timeout, self.max_retries = timeout, max_retries

    assert call_deadline(Client(3.0), timeout=1.0) == 1.0
    assert call_deadline(Client(3.0)) == 3.0 * 3 + 10.0 * 2 + 1.0
    assert call_deadline(Client(openai.Timeout(60.0, connect=5.0), 0)) == 61.0
    assert call_deadline(Client(None)) is None
    assert call_deadline(openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")) == (
        600.0 * 3 + 10.0 * 2 + 1.0  # the openai default: 600 s per read, 2 retries
    )
    assert call_deadline(Client(openai.Timeout(None))) is None


def test_client_is_checked():
    with pytest.raises(TypeError, match=r"openai\.OpenAI"):
        LLMCall(None, model="m")
    with pytest.raises(TypeError, match="got str"):
        LLMCall("not a client", model="m")


def test_budgets_and_prices_validate():
    with pytest.raises(ValueError, match="max_calls"):
        Budgets(max_calls=-1)
    with pytest.raises(ValueError, match="max_cost"):
        Budgets(max_cost=-0.5)
    assert check_prices({"m": [1, 2]}) == {"m": (1.0, 2.0)}
    assert check_prices(None) == {}
    with pytest.raises(ValueError, match=r"prices\['m'\] must be"):
        check_prices({"m": (1.0,)})
