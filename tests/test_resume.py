"""Checkpointing run_genetic after every generation and resuming after an interruption."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from _child import kill_9_when, reaped

from llmlex import GeneticRun, run_genetic
from llmlex.llm import LLMProposer
from llmlex.persist import CheckpointError, PersistError, load_result
from llmlex.proposer import Proposal, ProposalBatch

X = np.linspace(-1, 1, 50)
Y = np.sin(np.pi * X) + 0.3 * X**2  # no scripted form is exact: every generation runs

FORMS = [
    "params[0]*x",
    "params[0]*x**3 + params[1]*x",
    "params[0]*np.sin(params[1]*x)",
    "params[0]*np.sin(params[1]*x) + params[2]*x",
    "params[0]*np.tanh(params[1]*x)",
]


class Scripted:
    """Deterministic: the form depends only on the request's seed and its parents."""

    name = "scripted"

    def __init__(self):
        self.requests = []

    async def propose(self, request):
        self.requests.append(request)
        await asyncio.sleep(0)
        rng = np.random.default_rng(request.seed)
        text = FORMS[int(rng.integers(len(FORMS)))]
        return ProposalBatch(
            proposals=(Proposal(text),), calls=1, prompt_tokens=100, completion_tokens=20
        )


class Interrupt(Exception):
    pass


def go(proposer, path=None, generations=5, **kw):
    kw.setdefault("exit_condition", 0.0)
    return run_genetic(
        None,
        None,
        kw.pop("x", X),
        kw.pop("y", Y),
        kw.pop("population_size", 3),
        generations,
        proposer=proposer,
        seed=kw.pop("seed", 11),
        progress=False,
        checkpoint=path,
        **kw,
    )


def texts(run):
    return [[(r.ansatz, r.params.tobytes(), r.nchi2) for r in pop] for pop in run.populations]


def stop_at(generation):
    def callback(g, pop):
        if g == generation:
            raise Interrupt

    return callback


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    full = go(Scripted())
    path = tmp_path / "ckpt.json"
    first = Scripted()
    with pytest.raises(Interrupt):
        go(first, path, callback=stop_at(1))  # dies after generation 1 was checkpointed
    assert len(first.requests) == 2 * 3
    so_far = load_result(path)
    assert isinstance(so_far, GeneticRun)
    assert len(so_far) == 2 and "interrupted after 2" in so_far.stop_reason
    assert so_far.stats.calls == 6

    second = Scripted()
    resumed = go(second, path)
    assert len(second.requests) == 3 * 3  # only the three missing generations
    assert {r.generation for r in second.requests} == {2, 3, 4}
    assert texts(resumed) == texts(full)  # the random state was restored too
    assert resumed.stats.calls == full.stats.calls == 15
    assert resumed.stats.generations == 5
    assert resumed.best.ansatz == full.best.ansatz
    assert texts(resumed)[:2] == texts(so_far)


def test_finished_checkpoint_returns_the_run_without_calls(tmp_path):
    path = tmp_path / "ckpt.json"
    done = go(Scripted(), path)
    again = Scripted()
    rerun = go(again, path)
    assert again.requests == []
    assert texts(rerun) == texts(done)
    assert rerun.stats.calls == done.stats.calls
    assert rerun.stop_reason == done.stop_reason == "all generations done"
    assert load_result(path).stop_reason == "all generations done"


def test_more_generations_extend_a_finished_run(tmp_path):
    path = tmp_path / "ckpt.json"
    go(Scripted(), path, generations=2)
    more = Scripted()
    longer = go(more, path, generations=4)
    assert len(longer) == 4
    assert {r.generation for r in more.requests} == {2, 3}
    assert texts(longer) == texts(go(Scripted(), generations=4))


def test_callback_sees_only_new_generations_on_resume(tmp_path):
    path = tmp_path / "ckpt.json"
    with pytest.raises(Interrupt):
        go(Scripted(), path, callback=stop_at(2))
    seen = []
    go(Scripted(), path, callback=lambda g, pop: seen.append(g))
    assert seen == [3, 4]


def test_checkpoint_of_other_data_is_an_error_and_left_untouched(tmp_path):
    path = tmp_path / "ckpt.json"
    go(Scripted(), path, generations=2)
    before = path.read_bytes()
    other = Scripted()
    with pytest.raises(CheckpointError, match=r"different data.*resume=False"):
        go(other, path, y=Y + 1.0)
    assert path.read_bytes() == before
    assert other.requests == []
    with pytest.raises(CheckpointError, match="population_size was 3, now 4"):
        go(Scripted(), path, population_size=4)
    with pytest.raises(CheckpointError, match="seed was 11, now 12"):
        go(Scripted(), path, seed=12)
    # resume=False starts afresh and overwrites it.
    fresh = go(Scripted(), path, generations=1, y=Y + 1.0, resume=False)
    assert len(fresh) == 1
    assert load_result(path).stats.calls == 3


def test_damaged_checkpoint_is_an_error_not_overwritten(tmp_path):
    path = tmp_path / "ckpt.json"
    path.write_text('{"llmlex": "0.1.0", "schema": 1, "kind": "genetic_chec')
    with pytest.raises(PersistError, match="resume=False"):
        go(Scripted(), path)
    assert path.read_text().endswith("genetic_chec")
    path.write_text(json.dumps({"llmlex": "0.1.0", "schema": 1, "kind": "genetic_run"}))
    with pytest.raises(PersistError, match="genetic_checkpoint"):
        go(Scripted(), path)


def test_checkpoint_is_written_atomically_each_generation(tmp_path):
    path = tmp_path / "ckpt.json"
    sizes = []

    def callback(g, pop):
        doc = json.loads(path.read_text())
        sizes.append(len(doc["populations"]))

    go(Scripted(), path, callback=callback, generations=3)
    assert sizes == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.json"]  # no temporary left


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import openai
    import llmlex
    from llmlex.llm import LLMProposer

    base_url, path = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=30)
    x = np.linspace(-1, 1, 40)
    y = np.sin(2.5 * x) + 0.3 * x**3
    llmlex.run_genetic(
        client, "QUJD", x, y, 3, 5, seed=5, progress=False, exit_condition=0.0,
        proposer=LLMProposer(client, model="fake/m", parent_plots=False),
        checkpoint=path,
    )
    """
)

REPLIES = [
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)\ninitial: [1.0, 2.5]",
    "ansatz: lambda x, *params: params[0]*x + params[1]*x**2",
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x) + params[2]*x**2",
]


def test_kill_9_loses_at_most_the_generation_in_flight(fake_openai, tmp_path):
    fake_openai.reply_with(lambda body: REPLIES[len(fake_openai.requests) % len(REPLIES)])
    fake_openai.latency = 0.15
    path = tmp_path / "ckpt.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, fake_openai.base_url, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with reaped(proc):
        kill_9_when(
            proc,
            lambda: path.exists() and len(json.loads(path.read_text())["populations"]) >= 1,
            30,
        )
    time.sleep(0.3)  # let requests already on the wire be recorded
    saved = load_result(path)
    assert 1 <= len(saved) < 5
    before = fake_openai.calls
    # Whatever was sent and not checkpointed is at most the generation in flight.
    assert saved.stats.calls <= before <= saved.stats.calls + 3

    client = fake_openai.client()
    x = np.linspace(-1, 1, 40)
    resumed = run_genetic(
        client,
        "QUJD",
        x,
        np.sin(2.5 * x) + 0.3 * x**3,
        3,
        5,
        seed=5,
        progress=False,
        exit_condition=0.0,
        proposer=LLMProposer(client, model="fake/m", parent_plots=False),
        checkpoint=path,
    )
    new = fake_openai.calls - before
    assert len(resumed) == 5
    assert new == 3 * (5 - len(saved))  # checkpointed generations were not asked again
    assert resumed.stats.calls == saved.stats.calls + new
    assert texts(resumed)[: len(saved)] == texts(saved)
    assert resumed.stats.generations == 5
