"""Checkpointing run_genetic after every generation and resuming after an interruption."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from _child import kill_9_when, reaped
from fake_openai import FakeReply

from llmlex import GeneticRun, arun_genetic, run_genetic
from llmlex.exceptions import LLMAuthenticationError, NoValidAnsatzError
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
    # Full populations (no elite taking a place) keep the call counts below simple.
    kw.setdefault("elite", False)
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
        checkpoint=path, elite=False,
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
        elite=False,  # as the child: full populations keep the count below simple
    )
    new = fake_openai.calls - before
    assert len(resumed) == 5
    assert new == 3 * (5 - len(saved))  # checkpointed generations were not asked again
    assert resumed.stats.calls == saved.stats.calls + new
    assert texts(resumed)[: len(saved)] == texts(saved)
    assert resumed.stats.generations == 5


# -- an interrupted or failed run keeps what it found (exc.partial_run) -------------------


class InterruptingAt(Scripted):
    """Scripted, but raises ``exc`` on the first request of generation ``generation``."""

    def __init__(self, generation, exc):
        super().__init__()
        self.generation, self.exc = generation, exc

    async def propose(self, request):
        if request.generation >= self.generation:
            raise self.exc
        return await super().propose(request)


def assert_partial(exc, generations, reason):
    partial = exc.partial_run
    assert isinstance(partial, GeneticRun)
    assert len(partial) == generations
    assert partial.stats.generations == generations
    assert reason in partial.stop_reason
    assert partial.best.nchi2 == min(r.nchi2 for pop in partial for r in pop)
    return partial


def test_keyboard_interrupt_in_callback_carries_the_run_so_far(tmp_path):
    path = tmp_path / "ckpt.json"

    def callback(g, pop):
        if g == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        go(Scripted(), path, callback=callback)
    partial = assert_partial(
        info.value, 2, "interrupted by KeyboardInterrupt after 2 generation(s)"
    )
    assert texts(partial) == texts(go(Scripted(), generations=2))
    # The checkpoint holds the same two generations: a resume goes on from there.
    assert texts(load_result(path)) == texts(partial)


@pytest.mark.parametrize("entry", ["sync", "async", "notebook"])
def test_keyboard_interrupt_in_a_proposer_carries_the_run_so_far(entry):
    proposer = InterruptingAt(2, KeyboardInterrupt())
    kw = {"proposer": proposer, "seed": 11, "progress": False, "exit_condition": 0.0}
    with pytest.raises(KeyboardInterrupt) as info:
        if entry == "sync":
            run_genetic(None, None, X, Y, 3, 5, **kw)
        elif entry == "async":
            asyncio.run(arun_genetic(None, None, X, Y, 3, 5, **kw))
        else:

            async def notebook_cell():  # run_genetic inside a running loop: a worker thread
                return run_genetic(None, None, X, Y, 3, 5, **kw)

            asyncio.run(notebook_cell())
    assert_partial(info.value, 2, "interrupted by KeyboardInterrupt after 2 generation(s)")


def test_fatal_llm_error_mid_run_carries_the_run_so_far(fake_openai):
    # Two generations answered, then the key is revoked: 401 from then on.
    def reply(body):
        if len(fake_openai.requests) > 6:
            return FakeReply(status=401, message="Incorrect API key provided")
        return REPLIES[len(fake_openai.requests) % 2]  # neither is exact: no early stop

    fake_openai.reply_with(reply)
    client = fake_openai.client()
    proposer = LLMProposer(client, model="fake/m", parent_plots=False)
    with pytest.raises(LLMAuthenticationError) as info:
        go(proposer, generations=5)
    partial = assert_partial(info.value, 2, "stopped by LLMAuthenticationError after 2")
    assert partial.stats.calls == 6
    assert fake_openai.calls <= 6 + 3  # at most one generation's calls were refused


def test_error_before_any_fit_has_no_partial_run(fake_openai):
    fake_openai.reply_with(FakeReply(status=401))
    proposer = LLMProposer(fake_openai.client(), model="fake/m", parent_plots=False)
    with pytest.raises(LLMAuthenticationError) as info:
        go(proposer)
    assert info.value.partial_run is None

    class Unparseable(Scripted):
        async def propose(self, request):
            return ProposalBatch(proposals=(Proposal("import os"),), calls=1)

    with pytest.raises(NoValidAnsatzError) as info:
        go(Unparseable(), generations=2)
    assert info.value.partial_run is None


def test_ctrl_c_while_a_notebook_cell_waits_stops_the_run_and_keeps_it():
    """Ctrl-C in Jupyter raises KeyboardInterrupt in the thread waiting for the run."""
    main = threading.main_thread().ident
    seen = []

    def callback(g, pop):
        seen.append(g)
        if g == 1:
            signal.pthread_kill(main, signal.SIGINT)  # as the kernel's interrupt does

    proposer = Scripted()

    async def cell():
        kw = {"proposer": proposer, "seed": 11, "exit_condition": 0.0, "callback": callback}
        return run_genetic(None, None, X, Y, 3, 60, progress=False, **kw)

    # A loop without asyncio.run's own SIGINT handler, as in a notebook kernel.
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            loop.run_until_complete(cell())
    finally:
        loop.close()
    partial = info.value.partial_run
    assert isinstance(partial, GeneticRun)
    assert "interrupted by KeyboardInterrupt" in partial.stop_reason
    assert 2 <= len(partial) < 60
    asked = len(proposer.requests)
    time.sleep(0.2)
    assert len(proposer.requests) == asked  # the run stopped; nothing goes on unseen
    assert len(seen) == len(partial) < 60


# -- a damaged or hostile checkpoint is a CheckpointError, whatever it holds --------------

HOSTILE = {
    "nested-list": json.loads("[" * 400 + "]" * 400),
    "nested-object": json.loads('{"a":' * 400 + "1" + "}" * 400),
    "string": "x" * 1000,
    "number": -1,
    "null": None,
    "object": {"stage": "0", "state": [1]},
}
CHECKPOINT_FIELDS = [
    "data",
    "options",
    "results",
    "populations",
    "archive",
    "stats",
    "errors",
    "position",
    "rng",
    ("position", "stage"),
    ("position", "generation"),
    ("rng", "state"),
    ("options", "hints"),
]


@pytest.fixture(scope="module")
def checkpoint_text(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.json"
    with pytest.raises(Interrupt):
        go(Scripted(), path, callback=stop_at(1))
    return path.read_text()


@pytest.mark.parametrize("field", CHECKPOINT_FIELDS, ids=str)
@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_any_value_in_any_field_of_a_checkpoint_is_a_checkpoint_error(
    tmp_path, checkpoint_text, field, value
):
    doc = json.loads(checkpoint_text)
    *outer, last = field if isinstance(field, tuple) else (field,)
    target = doc
    for key in outer:
        target = target[key]
    target[last] = value
    path = tmp_path / "ckpt.json"
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    proposer = Scripted()
    with pytest.raises(CheckpointError, match="resume=False"):
        go(proposer, path)
    assert proposer.requests == []
    assert path.read_bytes() == before


def test_checkpoint_too_deep_for_the_callers_stack_is_a_checkpoint_error(tmp_path):
    """Deep in a caller's frames, a stored formula nested as deep as the language allows
    exhausts the stack while the checkpoint is decoded: still a CheckpointError."""
    import traceback

    from _stack import boundary_errors

    deep = "params[0]*x"
    for _ in range(39):  # the deepest nesting parse_ansatz accepts
        deep = f"np.sin({deep})"

    class Deep(Scripted):
        async def propose(self, request):
            return ProposalBatch(proposals=(Proposal(deep),), calls=1)

    path = tmp_path / "ckpt.json"
    go(Deep(), path, generations=1, y=np.sin(X))
    errors = boundary_errors(lambda: go(Deep(), path, generations=1, y=np.sin(X)))
    assert errors
    for err in errors:
        frames = {f.name for f in traceback.extract_tb(err.__traceback__)}
        # What fails while the checkpoint is read must be a CheckpointError; a stack
        # exhausted later, by the search itself, is not this test's business.
        assert isinstance(err, CheckpointError) or "_open_checkpoint" not in frames, err
    assert any(isinstance(err, CheckpointError) for err in errors)
