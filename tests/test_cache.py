"""The on-disk reply cache: hits and misses through the real client, concurrency, damage."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import openai
import pytest
from fake_openai import closed_port_url

import llmlex
from llmlex.cache import MAX_ENTRY_BYTES, MAX_REPLY_CHARS, ReplyCache, as_cache, request_key
from llmlex.llm import LLMProposer, extract_proposals
from llmlex.proposer import ProposalRequest

X = np.linspace(-1, 1, 40)
Y = np.sin(2.5 * X) + 0.3 * X**3
REPLIES = [
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)\ninitial: [1.0, 2.5]",
    "ansatz: lambda x, *params: params[0]*x + params[1]*x**2",
    "ansatz: lambda x, *params: params[0]*np.tanh(params[1]*x)",
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x) + params[2]*x",
    "Sorry, I see no pattern.",
]


@pytest.fixture
def server(fake_openai):
    # Every request gets the next reply in turn, so identical prompts get different replies.
    fake_openai.reply_with(lambda body: REPLIES[len(fake_openai.requests) % len(REPLIES)])
    return fake_openai


def run(client, cache, **kw):
    return llmlex.run_genetic(
        client,
        None,
        X,
        Y,
        kw.pop("population_size", 4),
        kw.pop("generations", 2),
        model="fake/m",
        progress=False,
        exit_condition=0.0,
        cache=cache,
        elite=kw.pop("elite", False),  # full populations: simple call counts
        **kw,
    )


def texts(run):
    return [[(r.ansatz, r.params.tobytes()) for r in pop] for pop in run.populations]


def test_rerun_makes_no_request_and_gives_the_same_result(server, tmp_path):
    first = run(server.client(), tmp_path / "cache")  # seed=None: a notebook cell
    made = server.calls
    assert made == first.stats.calls == 8 and first.stats.cache_hits == 0
    # Generation 0 sent one prompt four times; each got its own reply and its own entry.
    assert len(ReplyCache(tmp_path / "cache")) == 8
    prompts = {json.dumps(r["messages"]) for r in server.requests[:4]}
    assert len(prompts) == 1

    again = run(server.client(), tmp_path / "cache")
    assert server.calls == made  # not one HTTP request
    assert texts(again) == texts(first)
    assert again.stats.calls == 0 and again.stats.total_tokens == 0
    assert again.stats.cache_hits == 8
    assert again.stats.failures == first.stats.failures  # a useless reply replays as such
    assert again.best.ansatz == first.best.ansatz


def test_cached_run_needs_no_server(server, tmp_path):
    first = run(server.client(), tmp_path / "c", seed=4)
    dead = openai.OpenAI(base_url=closed_port_url(), api_key="k", max_retries=0, timeout=2)
    with pytest.raises(llmlex.exceptions.LLMConnectionError):
        run(dead, tmp_path / "c", seed=4)  # another base_url: a different request
    proposer = LLMProposer(server.client(), model="fake/m", cache=tmp_path / "c")
    server.stop()  # the endpoint is gone; the same requests still hit
    again = run(None, None, seed=4, proposer=proposer)
    assert texts(again) == texts(first) and again.stats.cache_hits == first.stats.calls
    dead.close()


def test_key_covers_sampling_options_and_seed(server, tmp_path):
    run(server.client(), tmp_path / "c", seed=1, generations=1)
    made = server.calls
    run(server.client(), tmp_path / "c", seed=1, generations=1, llm_temperature=0.3)
    assert server.calls == 2 * made  # another temperature: all misses
    run(server.client(), tmp_path / "c", seed=2, generations=1)
    assert server.calls == 3 * made  # other request seeds: misses
    run(server.client(), tmp_path / "c", seed=1, generations=1, llm_max_tokens=64)
    assert server.calls == 4 * made


def test_damaged_entry_is_a_miss_and_is_replaced(server, tmp_path, caplog):
    cache = ReplyCache(tmp_path / "c")
    # One generation: a refetched reply may differ, which would change later prompts.
    first = run(server.client(), cache, seed=3, generations=1)
    made = server.calls
    assert made == 4
    files = sorted((tmp_path / "c").glob("??/*.json"))
    files[0].write_bytes(files[0].read_bytes()[:17])  # truncated
    files[1].write_bytes(b"\x00\xff garbage")
    with caplog.at_level(logging.WARNING, logger="llmlex.cache"):
        again = run(server.client(), ReplyCache(tmp_path / "c"), seed=3, generations=1)
    assert server.calls == made + 2
    assert again.stats.calls == 2 and again.stats.cache_hits == first.stats.calls - 2
    assert "cache entry" in caplog.text
    for f in files[:2]:
        assert json.loads(f.read_text())["key"] == f.stem  # replaced by whole entries


def test_failed_calls_are_not_cached(fake_openai, tmp_path):
    from fake_openai import FakeReply

    fake_openai.reply_with(FakeReply(status=500))
    p = LLMProposer(fake_openai.client(), cache=tmp_path / "c")
    batch = asyncio.run(p.propose(ProposalRequest(x=X, y=Y, image="QUJD", seed=1)))
    assert batch.failure[0] == "api"
    assert len(p.cache) == 0


def test_reply_cache_basics(tmp_path, caplog):
    cache = ReplyCache(tmp_path / "c")
    assert len(cache) == 0 and cache.get(request_key({"a": 1})) is None
    key = request_key({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1})
    cache.put(key, {"content": "ansatz: params[0]*x"})
    assert key in cache and len(cache) == 1
    assert cache.get(key) == {"content": "ansatz: params[0]*x"}
    assert (cache.hits, cache.misses) == (1, 1)
    # An entry whose stored key differs (a file copied to a wrong name) is a miss.
    other = request_key({"other": True})
    (tmp_path / "c" / other[:2]).mkdir(exist_ok=True)
    (tmp_path / "c" / other[:2] / f"{other}.json").write_text(
        (tmp_path / "c" / key[:2] / f"{key}.json").read_text()
    )
    with caplog.at_level(logging.WARNING, logger="llmlex.cache"):
        assert cache.get(other) is None
    assert "damaged" in caplog.text
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="hex digests"):
        cache.get("../../etc/passwd")
    assert as_cache(None) is None and as_cache(cache) is cache
    assert isinstance(as_cache(str(tmp_path)), ReplyCache)
    with pytest.raises(TypeError, match="cache must be"):
        as_cache(3)


KEY = request_key({"model": "m", "messages": [], "seed": 7})


def _orphan(root, name: str, age: float = 0.0):
    """A temporary file as a writer killed between mkstemp and os.replace leaves it."""
    sub = root / KEY[:2]
    sub.mkdir(parents=True, exist_ok=True)
    tmp = sub / name
    tmp.write_bytes(b"x" * 1000)
    if age:
        t = time.time() - age
        os.utime(tmp, (t, t))
    return tmp


def test_clear_removes_orphaned_temporary_files(tmp_path):
    cache = ReplyCache(tmp_path / "c")
    cache.put(KEY, {"content": "ansatz: params[0]*x"})
    orphan = _orphan(tmp_path / "c", f".{KEY[:16]}.k9abcd.tmp")
    cache.clear()
    assert not orphan.exists() and len(cache) == 0
    assert list((tmp_path / "c").rglob("*.tmp")) == []


def test_opening_a_cache_removes_stale_temporary_files_only(tmp_path):
    stale = _orphan(tmp_path / "c", f".{KEY[:16]}.old.tmp", age=2 * 3600)
    fresh = _orphan(tmp_path / "c", f".{KEY[:16]}.new.tmp")  # a writer may be at work
    ReplyCache(tmp_path / "c")
    assert not stale.exists() and fresh.exists()


def test_a_writer_killed_mid_write_leaves_nothing_clear_misses(tmp_path):
    # A real kill -9 between the temporary file and its rename.
    code = textwrap.dedent(
        f"""
        import os, tempfile
        import llmlex.cache as cache
        def killed(src, dst):
            os.kill(os.getpid(), 9)
        cache.os.replace = killed
        cache.ReplyCache({str(tmp_path / "c")!r}).put({KEY!r}, {{"content": "x" * 100000}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -9
    assert len(list((tmp_path / "c").rglob("*.tmp"))) == 1
    cache = ReplyCache(tmp_path / "c")
    assert cache.get(KEY) is None
    cache.clear()
    assert list((tmp_path / "c").rglob("*")) == [tmp_path / "c" / KEY[:2]]


def test_long_replies_are_stored_bounded(tmp_path):
    cache = ReplyCache(tmp_path / "c")
    reply = "ansatz: params[0]*x\n" + "blah " * 2_000_000  # 10 MB
    cache.put(KEY, {"content": reply, "finish_reason": "length"})
    (file,) = (tmp_path / "c").glob("??/*.json")
    assert file.stat().st_size <= MAX_ENTRY_BYTES
    entry = cache.get(KEY)
    assert entry["content"] == reply[:MAX_REPLY_CHARS] and entry["truncated"] is True
    assert entry["finish_reason"] == "length"
    # What is replayed extracts exactly what the whole reply did.
    assert extract_proposals(entry["content"]) == extract_proposals(reply)
    # Short replies are stored whole, unflagged.
    cache.put(KEY, {"content": "ansatz: params[0]*x"})
    assert cache.get(KEY) == {"content": "ansatz: params[0]*x"}
    # An entry that would still be huge is not stored at all.
    other = request_key({"other": 1})
    cache.put(other, {"content": "short", "extra": "y" * (MAX_ENTRY_BYTES + 1)})
    assert cache.get(other) is None and other not in cache


def test_a_huge_reply_through_the_proposer_is_cached_bounded(fake_openai, tmp_path):
    fake_openai.reply_with("ansatz: params[0]*x\n" + "z" * 1_000_000)
    p = LLMProposer(fake_openai.client(), cache=tmp_path / "c")
    first = asyncio.run(p.propose(ProposalRequest(x=X, y=Y, image="QUJD", seed=1)))
    again = asyncio.run(p.propose(ProposalRequest(x=X, y=Y, image="QUJD", seed=1)))
    assert fake_openai.calls == 1 and again.cache_hits == 1
    assert again.proposals == first.proposals
    (file,) = (tmp_path / "c").glob("??/*.json")
    assert file.stat().st_size <= MAX_ENTRY_BYTES


@pytest.mark.parametrize(
    "body",
    [
        b'{"format": 1, "key": "K", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"format": 1, "key": "K", "value": {"content": "\xff\xfe not UTF-8"}}',
        b"\xff" * 1000,
        b"[" * 1_000_000,
        b" " * (MAX_ENTRY_BYTES + 1),
    ],
    ids=["nested", "latin1", "binary", "unclosed", "oversized"],
)
def test_get_never_raises_for_what_is_in_the_file(tmp_path, body, caplog):
    cache = ReplyCache(tmp_path / "c")
    (tmp_path / "c" / KEY[:2]).mkdir(parents=True)
    (tmp_path / "c" / KEY[:2] / f"{KEY}.json").write_bytes(body.replace(b"K", KEY.encode()))
    with caplog.at_level(logging.WARNING, logger="llmlex.cache"):
        assert cache.get(KEY) is None
    assert cache.misses == 1 and "cache entry" in caplog.text


def test_request_key_hashes_images_and_ignores_dict_order():
    url = "data:image/png;base64," + "A" * 10_000
    msg = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    k1 = request_key({"model": "m", "messages": msg, "seed": 0})
    k2 = request_key({"seed": 0, "messages": msg, "model": "m"})
    assert k1 == k2 and len(k1) == 64
    msg2 = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url + "B"}}]}]
    assert request_key({"model": "m", "messages": msg2, "seed": 0}) != k1
    assert request_key({"model": "m", "messages": msg, "seed": 1}) != k1


WRITER = textwrap.dedent(
    """
    import sys
    from llmlex.cache import ReplyCache, request_key

    path, who = sys.argv[1], sys.argv[2]
    cache = ReplyCache(path)
    for i in range(300):
        shared = i % 3 == 0  # both processes write these keys, with their own values
        key = request_key({"i": i} if shared else {"i": i, "who": who})
        cache.put(key, {"content": f"{who}:{i}", "pad": "x" * 2000})
        got = cache.get(key)
        assert got is not None and got["content"].endswith(f":{i}"), (i, got)
    print(cache.misses)
    """
)


def test_two_processes_write_concurrently_without_errors_or_losses(tmp_path):
    path = tmp_path / "c"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), who],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "0"  # every read after a write found a whole entry
    cache = ReplyCache(path)
    assert len(cache) == 100 + 2 * 200
    for i in range(300):
        for who in ("a", "b"):
            key = request_key({"i": i} if i % 3 == 0 else {"i": i, "who": who})
            value = cache.get(key)
            assert value is not None and value["content"] in (f"a:{i}", f"b:{i}")
    assert not list(path.glob("??/*.tmp"))  # no temporary file left behind
