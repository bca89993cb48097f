"""ClientSpec: a picklable client description, built where the calls are made.

Also the pickling of what travels to a worker with it: proposers, the reply cache, the
ledger and compiled ansätze.  The LLM paths run against ``tests/fake_openai.py``.
"""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import openai
import pytest
from fake_openai import FakeOpenAIServer

import llmlex
from llmlex._clientspec import ClientSpec
from llmlex._llmcall import Ledger, LLMCall, Usage
from llmlex.ansatz import parse_ansatz
from llmlex.cache import ReplyCache
from llmlex.exceptions import LLMAuthenticationError
from llmlex.llm import LLMProposer
from llmlex.offline import OfflineProposer
from llmlex.proposer import ProposalRequest

SECRET = "sk-test-0123456789abcdef-do-not-travel"


def _xy() -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0.1, 5, 30)
    return x, 2.0 * x + 1.0


def test_the_spec_is_exported_and_validated():
    assert llmlex.ClientSpec is ClientSpec
    with pytest.raises(ValueError, match="max_retries"):
        ClientSpec(max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        ClientSpec(timeout=0)
    with pytest.raises(ValueError, match="api_key_env"):
        ClientSpec(api_key_env=" ")
    assert ClientSpec.openrouter().api_key_env == "OPENROUTER_API_KEY"


def test_no_key_travels_in_a_pickle(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLEX_TEST_KEY", SECRET)
    spec = ClientSpec(base_url="http://127.0.0.1:9/v1", api_key_env="LLMLEX_TEST_KEY")
    proposer = LLMProposer(spec, model="m", cache=tmp_path / "cache")
    proposer.call.client  # noqa: B018 - built here, with the key
    assert proposer.call.client.api_key == SECRET
    for obj in (spec, proposer, proposer.call):
        blob = pickle.dumps(obj)
        assert SECRET.encode() not in blob
        assert b"LLMLEX_TEST_KEY" in blob  # the variable's name travels, not its value
    back = pickle.loads(pickle.dumps(proposer))
    assert back.call.spec == spec and back.call._client is None
    assert back.cache.path == tmp_path / "cache"


def test_an_openai_client_refuses_to_pickle_with_a_pointer_to_the_spec():
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key=SECRET)
    for obj in (LLMProposer(client, model="m"), LLMCall(client, model="m")):
        with pytest.raises(TypeError, match="ClientSpec"):
            pickle.dumps(obj)


def test_a_missing_key_is_named_with_the_machine(monkeypatch):
    monkeypatch.delenv("LLMLEX_TEST_KEY", raising=False)
    spec = ClientSpec(base_url="http://127.0.0.1:9/v1", api_key_env="LLMLEX_TEST_KEY")
    with pytest.raises(LLMAuthenticationError, match=r"LLMLEX_TEST_KEY.*not set"):
        spec.build()
    assert ClientSpec(api_key_env=None).api_key() == "not-needed"


def test_the_spec_spells_the_endpoint_as_the_client_does(monkeypatch):
    # The reply cache keys on the endpoint: a spec and a client for the same server must
    # share entries, so the spec must spell base_url as the built client does.
    monkeypatch.setenv("LLMLEX_TEST_KEY", SECRET)
    for url in ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/"):
        spec = ClientSpec(base_url=url, api_key_env="LLMLEX_TEST_KEY")
        unbuilt = LLMCall(spec, model="m").base_url
        assert unbuilt == str(spec.build().base_url)
        assert unbuilt == LLMCall(openai.OpenAI(base_url=url, api_key="k"), model="m").base_url


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_run_with_a_spec_calls_the_server_with_the_key_from_the_environment(
    fake_openai: FakeOpenAIServer, monkeypatch, asynchronous
):
    monkeypatch.setenv("LLMLEX_TEST_KEY", SECRET)
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*x + params[1]")
    spec = ClientSpec(
        base_url=fake_openai.base_url,
        api_key_env="LLMLEX_TEST_KEY",
        max_retries=0,
        timeout=10,
        asynchronous=asynchronous,
    )
    x, y = _xy()
    run = llmlex.run_genetic(
        spec, None, x, y, population_size=2, num_of_generations=1, progress=False, seed=0
    )
    assert run.stats.calls == 2 and fake_openai.calls == 2
    assert all(h.get("authorization") == f"Bearer {SECRET}" for h in fake_openai.headers)
    assert run.best.predict(x) == pytest.approx(y)


def test_a_pickled_proposer_builds_its_own_client_and_proposes(
    fake_openai: FakeOpenAIServer, monkeypatch
):
    monkeypatch.setenv("LLMLEX_TEST_KEY", SECRET)
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*x")
    spec = ClientSpec(base_url=fake_openai.base_url, api_key_env="LLMLEX_TEST_KEY", max_retries=0)
    proposer = pickle.loads(pickle.dumps(LLMProposer(spec, model="fake/vision-model")))
    x, y = _xy()
    batch = asyncio.run(proposer.propose(ProposalRequest(x=x, y=y)))
    assert batch.failure is None and batch.calls == 1
    assert [p.text for p in batch.proposals] == ["params[0]*x"]


def test_the_offline_proposer_proposes_the_same_after_pickling():
    x, y = _xy()
    request = ProposalRequest(x=x, y=y, seed=5)
    proposer = OfflineProposer(seed=2)
    first = proposer.propose_sync(request)  # fills its caches
    again = pickle.loads(pickle.dumps(proposer)).propose_sync(request)
    assert again == first


def test_cache_ledger_and_ansatz_pickle(tmp_path):
    cache = ReplyCache(tmp_path)
    key = "ab" * 32
    cache.put(key, {"content": "x"})
    back = pickle.loads(pickle.dumps(cache))
    assert back.get(key) == {"content": "x"} and back.hits == 1
    ledger = Ledger()
    ledger.record(Usage(calls=2))
    assert pickle.loads(pickle.dumps(ledger)).calls == 2
    a = parse_ansatz("params[2]*np.sin(params[0]*x)")
    b = pickle.loads(pickle.dumps(a))
    assert b == a and b.source_indices == a.source_indices
    assert b(np.array([1.0]), [2.0, 3.0]) == pytest.approx(a(np.array([1.0]), [2.0, 3.0]))


def test_sklearn_clone_keeps_a_spec():
    sklearn = pytest.importorskip("sklearn")
    from llmlex.estimator import LLMLExRegressor

    spec = ClientSpec(base_url="http://127.0.0.1:9/v1", api_key_env="LLMLEX_TEST_KEY")
    reg = LLMLExRegressor(client=spec, population_size=2)
    twin = sklearn.clone(reg)
    assert twin.client == spec and twin.population_size == 2
    assert pickle.loads(pickle.dumps(twin)).client == spec
