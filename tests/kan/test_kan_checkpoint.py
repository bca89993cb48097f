"""llmlex._kan_checkpoint: every edge recorded at once, resumed, refused when foreign."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy
from kan_helpers import (
    Counting,
    Interrupt,
    dataset,
    edge_summary,
    linear_regressor,
    needs_kan,
    six_edges,
    small_kan,
    torch,
)

from llmlex.kan import assemble_expressions, kan_to_symbolic


@pytest.mark.parametrize("use_async", [False, True])
@needs_kan
def test_interrupted_kan_to_symbolic_resumes_without_redoing_edges(tmp_path, use_async):
    import json

    model, X = six_edges()
    full = kan_to_symbolic(model, None, x=X, regressor=Counting(), use_async=use_async)
    assert len(full.by_status("fitted")) == 6 and full.llm_calls == 12

    path = tmp_path / "edges.json"
    first = Counting(fail_at=4)
    with pytest.raises(Interrupt):
        kan_to_symbolic(
            model,
            None,
            x=X,
            regressor=first,
            use_async=use_async,
            max_concurrency=2,
            checkpoint=path,
        )
    failed = first.keys[3]
    doc = json.loads(path.read_text())
    assert doc["kind"] == "kan_edges_checkpoint" and doc["finished"] is False
    recorded = {tuple(e["key"]) for e in doc["edges"]}
    assert recorded == set(first.keys) - {failed}
    assert len(recorded) >= 3  # sequential: exactly 3; threads: in-flight edges finish too
    if not use_async:
        assert len(first.keys) == 4  # no edge started after the failure

    second = Counting()
    resumed = kan_to_symbolic(
        model, None, x=X, regressor=second, use_async=use_async, checkpoint=path
    )
    assert not set(second.keys) & recorded  # finished edges were loaded, not redone
    assert sorted(second.keys) == sorted(set(full) - recorded)
    assert edge_summary(resumed) == edge_summary(full)
    assert resumed.llm_calls == full.llm_calls == 12  # no paid call counted twice
    assert resumed.llm_calls_saved == full.llm_calls_saved == 6
    x0, x1 = sympy.symbols("x0 x1", real=True)
    assert assemble_expressions(model, resumed, [x0, x1]) == assemble_expressions(
        model, full, [x0, x1]
    )
    assert json.loads(path.read_text())["finished"] is True

    # A finished checkpoint gives the same edges back with no work, and is not rewritten.
    before = path.read_bytes()
    third = Counting(fail_at=1)  # would raise if it were asked for anything
    again = kan_to_symbolic(model, None, x=X, regressor=third, checkpoint=path)
    assert third.keys == []
    assert edge_summary(again) == edge_summary(full)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["edges.json"]  # no temporary left


@needs_kan
def test_kan_checkpoint_of_other_data_is_an_error_and_left_untouched(tmp_path):
    from llmlex.persist import CheckpointError

    model, X = six_edges()
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=Counting(), checkpoint=path, seed=1)
    before = path.read_bytes()
    other = Counting()
    with pytest.raises(CheckpointError, match=r"different data: the inputs.*resume=False"):
        kan_to_symbolic(model, None, x=X * 0.5, regressor=other, checkpoint=path, seed=1)
    with pytest.raises(CheckpointError, match="a different network: the edges regressed"):
        kan_to_symbolic(small_kan([2, 1, 1]), None, x=X, regressor=other, checkpoint=path, seed=1)
    with pytest.raises(CheckpointError, match=r"function of edge\(s\) \(0,0,0\), \(0,0,1\)"):
        kan_to_symbolic(small_kan([2, 2, 1], seed=1), None, x=X, regressor=other, checkpoint=path)
    with pytest.raises(CheckpointError, match="seed was 1, now 2"):
        kan_to_symbolic(model, None, x=X, regressor=other, checkpoint=path, seed=2)
    with pytest.raises(CheckpointError, match="population was 10, now 3"):
        kan_to_symbolic(model, None, x=X, regressor=other, checkpoint=path, seed=1, population=3)
    with pytest.raises(CheckpointError, match=r"exit_condition was 1e-06, now 0\.001"):
        kan_to_symbolic(
            model, None, x=X, regressor=other, checkpoint=path, seed=1, exit_condition=1e-3
        )
    assert other.keys == []
    assert path.read_bytes() == before
    # resume=False starts afresh and overwrites it.
    fresh = Counting()
    kan_to_symbolic(model, None, x=X * 0.5, regressor=fresh, checkpoint=path, resume=False)
    assert len(fresh.keys) == 6 and path.read_bytes() != before


@needs_kan
def test_kan_checkpoint_tolerates_rounding_but_not_a_changed_network(tmp_path):
    from llmlex.persist import CheckpointError

    model, X = six_edges()
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=Counting(), checkpoint=path)
    before = path.read_bytes()
    # The same network re-evaluated elsewhere can differ in the last float32 bits
    # (measured: one ulp on one edge between two processes); that is the same network.
    with torch.no_grad():
        model.act_fun[0].coef.mul_(1 + 1e-6)
    same = Counting()
    kan_to_symbolic(model, None, x=X, regressor=same, checkpoint=path)
    # KANLEX derives exit_condition from the network's error: rounding there too.
    kan_to_symbolic(model, None, x=X, regressor=same, checkpoint=path, exit_condition=1.000001e-6)
    assert same.keys == [] and path.read_bytes() == before
    # Trained a little further: a different network, whose edges must be regressed again.
    with torch.no_grad():
        model.act_fun[1].coef.mul_(1.01)
    with pytest.raises(CheckpointError, match=r"function of edge\(s\) \(1,0,0\), \(1,1,0\) "):
        kan_to_symbolic(model, None, x=X, regressor=same, checkpoint=path)
    assert same.keys == [] and path.read_bytes() == before


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut short (not JSON)
        lambda text: text.replace('"kan_edges_checkpoint"', '"genetic_checkpoint"'),
        lambda text: text.replace('"ansatz": "params[0]', '"ansatz": "__import__(0)*params[0]'),
        lambda text: text.replace('"params": [', '"params": [1.0, ', 1),
        lambda text: text.replace('"edges": [', '"edges": [{"key": [9, 9, 9]}, ', 1),
        lambda text: text.replace('"options"', '"opts"'),
        lambda text: text.replace('"n": 150', '"n": "150"', 1),
    ],
    ids=[
        "truncated",
        "other-kind",
        "bad-ansatz",
        "bad-params",
        "bad-edge",
        "no-options",
        "bad-fingerprint",
    ],
)
@needs_kan
def test_damaged_kan_checkpoint_is_an_error_not_overwritten(tmp_path, damage):
    from llmlex.persist import CheckpointError

    model, X = six_edges()
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=Counting(), checkpoint=path)
    damaged = damage(path.read_text())
    assert damaged != path.read_text()
    path.write_text(damaged)
    other = Counting()
    with pytest.raises(CheckpointError, match=r"cannot resume from .*resume=False"):
        kan_to_symbolic(model, None, x=X, regressor=other, checkpoint=path)
    assert other.keys == []
    assert path.read_text() == damaged


KILL_CHILD = """
import sys, time
import numpy as np
import torch
import kan
from llmlex.kan import EdgeFit, kan_to_symbolic
from llmlex.fit import fit_ansatz

torch.set_num_threads(1)
path, sent = sys.argv[1], sys.argv[2]
X = np.random.default_rng(5).uniform(-1, 1, size=(150, 2))
model = kan.KAN(width=[2, 2, 1], grid=3, k=3, seed=0, auto_save=False)

def slow(task):
    with open(sent, "a") as fh:  # the paid call is on the wire
        fh.write("%d,%d,%d\\n" % task.key)
    time.sleep(0.4)
    fits = [
        fit_ansatz(t, task.x, task.y, seed=task.seed)
        for t in ("params[0]*x + params[1]", "params[0]*x**2 + params[1]*x + params[2]")
    ]
    return EdgeFit(min(fits, key=lambda r: r.nchi2), "test", llm_calls=2, llm_calls_saved=1)

kan_to_symbolic(model, None, x=X, regressor=slow, checkpoint=path, max_concurrency=2)
"""


@pytest.mark.slow  # the child imports torch and pykan: 3-6 s before its first edge
@needs_kan
def test_kill_9_during_kan_to_symbolic_loses_at_most_the_edges_in_flight(tmp_path):
    import json
    import os
    from pathlib import Path

    from _child import kill_9_when, reaped

    import llmlex

    path, sent = tmp_path / "edges.json", tmp_path / "sent.txt"
    env = dict(os.environ)
    root = str(Path(llmlex.__file__).resolve().parents[1])  # the llmlex under test
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, str(path), str(sent)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with reaped(proc):
        # The uninterrupted result, computed while the child imports torch and pykan.
        model, X = six_edges()
        full = kan_to_symbolic(model, None, x=X, regressor=Counting())
        kill_9_when(proc, lambda: path.exists() and bool(json.loads(path.read_text())["edges"]), 60)
    doc = json.loads(path.read_text())  # whole, never half-written
    recorded = {tuple(e["key"]) for e in doc["edges"]}
    asked = [tuple(int(v) for v in line.split(",")) for line in sent.read_text().split()]
    assert 1 <= len(recorded) < 6 and doc["finished"] is False
    assert recorded <= set(asked)
    # What was paid for and not recorded is at most the edges in flight (2 at a time).
    assert len(asked) - len(recorded) <= 2
    assert doc["llm_calls"] == 2 * len(recorded)

    again = Counting()
    resumed = kan_to_symbolic(model, None, x=X, regressor=again, checkpoint=path)
    assert not set(again.keys) & recorded  # nothing recorded is paid for again
    assert len(again.keys) == 6 - len(recorded)
    assert resumed.llm_calls == full.llm_calls == 12
    # Edges regressed here are bit-identical to the uninterrupted run.  Those from the
    # child were fitted to the same network evaluated in another process, where float32
    # results may differ in the last bit (seen on one edge in about one run in four):
    # same formulas, parameters equal to rounding.
    ours = [s for s in edge_summary(resumed) if s[0] not in recorded]
    assert ours == [s for s in edge_summary(full) if s[0] not in recorded]
    for key in recorded:
        a, b = resumed[key], full[key]
        assert (a.status, a.source, a.fit.ansatz) == (b.status, b.source, b.fit.ansatz)
        scale = np.max(np.abs(b.fit.params))
        np.testing.assert_allclose(a.fit.params, b.fit.params, rtol=1e-5, atol=1e-6 * scale)
        assert a.nchi2 == pytest.approx(b.nchi2, rel=1e-3, abs=1e-12)


@needs_kan
def test_kan_checkpoint_records_the_search_option(tmp_path):
    from llmlex.persist import CheckpointError

    X, _, _, _ = dataset(lambda X: X[:, 0] * X[:, 1], n=150)
    model = small_kan([2, 1, 1])
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=linear_regressor, checkpoint=path, search=False)
    with pytest.raises(CheckpointError, match="search was False, now True"):
        kan_to_symbolic(model, None, x=X, regressor=linear_regressor, checkpoint=path)


@needs_kan
def test_a_checkpoint_written_before_the_split_still_loads(tmp_path):
    """data/edges_checkpoint_v1.json: written by llmlex.kan before its split into modules.

    Same network and inputs as :func:`six_edges`, edges by :class:`Counting`'s fits, in
    another process (so float32 results may differ in the last bit: compared loosely).
    """
    import shutil
    from pathlib import Path

    model, X = six_edges()
    path = tmp_path / "edges.json"
    shutil.copy(Path(__file__).parent / "data" / "edges_checkpoint_v1.json", path)
    before = path.read_bytes()
    nothing = Counting(fail_at=1)  # would raise if it were asked for any edge
    loaded = kan_to_symbolic(model, None, x=X, regressor=nothing, checkpoint=path)
    assert nothing.keys == [] and path.read_bytes() == before
    fresh = kan_to_symbolic(model, None, x=X, regressor=Counting())
    assert loaded.llm_calls == fresh.llm_calls == 12
    for key, e in fresh.items():
        got = loaded[key]
        assert (got.status, got.source, got.fit.ansatz) == (e.status, e.source, e.fit.ansatz)
        scale = np.max(np.abs(e.fit.params))
        np.testing.assert_allclose(got.fit.params, e.fit.params, rtol=1e-5, atol=1e-6 * scale)
        assert [r.ansatz for r, _ in got.alternatives] == [r.ansatz for r, _ in e.alternatives]


HOSTILE = {
    "nested-list": "[" * 400 + "]" * 400,
    "nested-object": '{"a":' * 400 + "1" + "}" * 400,
    "string": '"x"',
    "boolean": "true",
    "null": "null",
    "object": '{"n": [1], "key": 1}',
}
EDGE_FIELDS = [
    ("data",),
    ("options",),
    ("edges",),
    ("time",),
    ("data", "inputs"),
    ("data", "edges"),
    ("options", "seed"),
    ("edges", 0),
    ("edges", 0, "key"),
    ("edges", 0, "fit"),
    ("edges", 0, "x_range"),
    ("edges", 0, "alternatives"),
    ("edges", 0, "fit", "params"),
]


@pytest.mark.parametrize("field", EDGE_FIELDS, ids=str)
@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@needs_kan
def test_any_value_in_any_field_of_a_kan_checkpoint_is_a_checkpoint_error(tmp_path, field, value):
    import json

    from llmlex.persist import CheckpointError

    model, X = six_edges()
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=Counting(), checkpoint=path)
    doc = json.loads(path.read_text())
    target = doc
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = "@@"
    damaged = json.dumps(doc).replace('"@@"', value, 1)
    path.write_text(damaged)
    other = Counting()
    with pytest.raises(CheckpointError, match="resume=False"):
        kan_to_symbolic(model, None, x=X, regressor=other, checkpoint=path)
    assert other.keys == []
    assert path.read_text() == damaged


def test_kan_checkpoint_too_deep_for_the_callers_stack_is_a_checkpoint_error(tmp_path):
    """Deep in a caller's frames, an edge formula nested as deep as the language allows
    exhausts the stack while the checkpoint is decoded: still a CheckpointError."""
    import traceback

    from _stack import boundary_errors

    from llmlex._kan_checkpoint import EdgeCheckpoint
    from llmlex.fit import fit_ansatz
    from llmlex.kan import EdgeResult, EdgeTask
    from llmlex.persist import CheckpointError

    deep = "params[0]*x"
    for _ in range(39):  # the deepest nesting parse_ansatz accepts
        deep = f"np.sin({deep})"
    x = np.linspace(0, 1, 20)
    task = EdgeTask((0, 0, 0), x, np.sin(x), None, "m", 1e-6, 3, 2, 1.0, 0)
    options = {"seed": 0, "search": True}
    store = EdgeCheckpoint(tmp_path / "edges.json", x[:, None], [task], options, resume=False)
    fit = fit_ansatz(deep, x, np.sin(x))
    edge = EdgeResult(
        *task.key,
        status="fitted",
        expression=fit.expression,
        fit=fit,
        source="test",
        nchi2=fit.nchi2,
        x_range=(0.0, 1.0),
        llm_calls=1,
        alternatives=((fit, 0.0),),
    )
    store.record(edge, 0.1)

    def load():
        return EdgeCheckpoint(tmp_path / "edges.json", x[:, None], [task], options, resume=True)

    assert load().done[(0, 0, 0)].fit.ansatz == fit.ansatz
    errors = boundary_errors(load)
    assert errors
    for err in errors:
        frames = {f.name for f in traceback.extract_tb(err.__traceback__)}
        assert isinstance(err, CheckpointError) or "_load" not in frames, err
    assert any(isinstance(err, CheckpointError) for err in errors)
