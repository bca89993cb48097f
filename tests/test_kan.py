"""Tests of llmlex.kan: edge extraction, exact assembly, safe simplification, KANLEX.

The networks are tiny (a handful of edges, grids of 3, a few hundred points, a few
training steps) so that the whole file runs in well under a minute.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import sympy

from llmlex import _kan_sympy as ks
from llmlex.exceptions import AnsatzError
from llmlex.fit import fit_ansatz, nchi2

pytestmark = pytest.mark.kan

torch = pytest.importorskip("torch")
kan = pytest.importorskip("kan")

from llmlex.kan import (  # noqa: E402 - after the importorskip guards
    KANLEX,
    AssemblyError,
    EdgeFit,
    EdgeResult,
    assemble_expressions,
    extract_edges,
    kan_to_symbolic,
    symbolic_from_edges,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # The machine is shared: keep torch from spawning a thread per core in every test.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _dataset(f, n_var=2, n=300, seed=0, lo=-1.0, hi=1.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(lo, hi, size=(n, n_var))
    Xt = rng.uniform(lo, hi, size=(n // 2, n_var))
    return X, f(X), Xt, f(Xt)


def _kan(width, **kw):
    kw.setdefault("grid", 3)
    kw.setdefault("k", 3)
    kw.setdefault("seed", 0)
    return kan.KAN(width=width, auto_save=False, **kw)


def _symbolic_multkan():
    """A MultKAN with every edge fixed symbolic, non-trivial affine maps and a mult node."""
    model = _kan([[2, 0], [1, 1], [1, 0]], symbolic_enabled=True, mult_arity=2)
    funs = {
        (0, 0, 0): ("sin", (1.3, 0.2, 0.7, -0.1)),
        (0, 1, 0): ("x^2", (0.9, 0.1, 1.1, 0.3)),
        (0, 0, 1): ("exp", (0.5, -0.2, 0.8, 0.05)),
        (0, 1, 1): ("x", (1.0, 0.0, 1.2, 0.4)),
        (0, 0, 2): ("cos", (0.7, 0.3, 1.5, 0.0)),
        (0, 1, 2): ("x^3", (0.6, 0.1, 0.9, 0.2)),
        (1, 0, 0): ("tanh", (0.8, 0.1, 2.0, -0.3)),
        (1, 1, 0): ("x", (1.0, 0.0, 0.7, 0.1)),
    }
    with torch.no_grad():
        for (layer, i, j), (name, affine) in funs.items():
            model.fix_symbolic(layer, i, j, name, fit_params_bool=False, verbose=False)
            model.symbolic_fun[layer].affine.data[j, i] = torch.tensor(affine)
        model.subnode_scale[0].data = torch.tensor([1.5, 0.8, -1.2])
        model.subnode_bias[0].data = torch.tensor([0.1, -0.2, 0.3])
        model.node_scale[0].data = torch.tensor([0.9, 1.3])
        model.node_bias[0].data = torch.tensor([-0.4, 0.2])
        model.subnode_scale[1].data = torch.tensor([1.1])
        model.subnode_bias[1].data = torch.tensor([0.05])
        model.node_scale[1].data = torch.tensor([2.0])
        model.node_bias[1].data = torch.tensor([-0.5])
    return model


def test_import_llmlex_does_not_import_torch_or_kan():
    code = (
        "import sys, llmlex, llmlex.fit, llmlex.genetic;"
        "print('torch' in sys.modules, 'kan' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_assembly_reproduces_symbolic_multkan_forward():
    model = _symbolic_multkan()
    X = np.random.default_rng(1).uniform(-1, 1, size=(200, 2))
    edges = kan_to_symbolic(model, None, x=X)
    assert {e.status for e in edges.values()} == {"symbolic"}
    assert len(edges) == 2 * 3 + 2 * 1  # (in x subnodes) per layer
    x0, x1 = sympy.symbols("x0 x1", real=True)
    (expr,) = assemble_expressions(model, edges, [x0, x1])
    with torch.no_grad():
        kan_out = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0]
    got = ks.evaluate(expr, [x0, x1], X)
    # torch runs in float32: agreement to its rounding, on a formula with a product node.
    np.testing.assert_allclose(got, kan_out, rtol=2e-5, atol=2e-5 * np.abs(kan_out).max())
    assert expr.has(sympy.tanh) and expr.has(sympy.exp)
    # Changing a node scale changes the network and the assembled formula alike.
    with torch.no_grad():
        model.node_scale[0].data[1] = 0.5
    (expr2,) = assemble_expressions(model, edges, [x0, x1])
    with torch.no_grad():
        kan_out2 = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0]
    assert not np.allclose(kan_out2, kan_out)
    np.testing.assert_allclose(ks.evaluate(expr2, [x0, x1], X), kan_out2, rtol=2e-5, atol=1e-4)


def test_symbolic_from_edges_reports_errors_and_recovers_symbolic_network():
    model = _symbolic_multkan()
    f = lambda X: (  # noqa: E731 - the network's own function as the data
        model(torch.tensor(X, dtype=torch.float32)).detach().numpy()[:, 0].astype(float)
    )
    X, y, Xt, yt = _dataset(f, n=300)
    edges = kan_to_symbolic(model, None, x=X)
    (res,) = symbolic_from_edges(model, edges, X, y, Xt, yt, simplify_timeout=0, snap_time=5)
    assert res.assembly_error < 1e-10
    assert res.structure_error < 1e-4
    assert res.kan_error < 1e-4  # symbolic edges: the formula *is* the network
    assert res.r2_test > 0.9999
    assert res.nchi2_test <= res.candidates[1].nchi2_test * 1.1 + 1e-12
    assert res.variables == ("x0", "x1")


def test_assembly_mismatch_raises():
    model = _symbolic_multkan()
    X = np.random.default_rng(2).uniform(-1, 1, size=(100, 2))
    edges = dict(kan_to_symbolic(model, None, x=X))
    e = edges[(0, 0, 0)]
    # Same pykan evaluator, but a formula that is not the edge's: assembly must notice.
    edges[(0, 0, 0)] = EdgeResult(
        0, 0, 0, status="symbolic", expression=e.expression + 0.5, evaluator=e.evaluator
    )
    y = np.zeros(100)
    with pytest.raises(AssemblyError, match="replica"):
        symbolic_from_edges(model, edges, X, y + 1, X, y + 1, simplify_timeout=0)


def test_edge_extraction_shapes_and_pruned_edges():
    X, _y, Xt, _yt = _dataset(lambda X: X[:, 0] + X[:, 1] ** 2, n=200)
    model = _kan([2, 2, 1])
    model(torch.tensor(Xt, dtype=torch.float32))  # last forward is NOT the training input
    model.remove_edge(0, 1, 0, log_history=False)
    raw = extract_edges(model, X)
    assert sorted(raw) == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 1, 0)]
    for status, xe, ye, _ in raw.values():
        assert xe.shape == ye.shape == (200,)
        assert status in ("fitted", "pruned")
    assert raw[(0, 1, 0)][0] == "pruned"
    np.testing.assert_allclose(raw[(0, 0, 0)][1], X[:, 0], rtol=1e-6)  # re-run on X


def _linear_regressor(task):
    from llmlex.fit import fit_ansatz

    fits = [
        fit_ansatz(t, task.x, task.y, seed=task.seed)
        for t in ("params[0]*x + params[1]", "params[0]*x**2 + params[1]*x + params[2]")
    ]
    return EdgeFit(min(fits, key=lambda r: r.nchi2), "test")


def test_kan_to_symbolic_marks_pruned_and_uses_injected_regressor():
    X, _y, _, _ = _dataset(lambda X: X[:, 0] + X[:, 1] ** 2, n=200)
    model = _kan([2, 2, 1])
    model.remove_edge(0, 1, 0, log_history=False)
    edges = kan_to_symbolic(model, None, x=X, regressor=_linear_regressor, max_points=50)
    assert edges[(0, 1, 0)].status == "pruned" and not edges[(0, 1, 0)].active
    fitted = edges.by_status("fitted")
    assert len(fitted) == 5 and all(e.source == "test" for e in fitted)
    assert edges.llm_calls == 0 and edges.llm_calls_saved == 0
    x0, x1 = sympy.symbols("x0 x1", real=True)
    (expr,) = assemble_expressions(model, edges, [x0, x1])
    # The pruned edge (input x1 into hidden node 0) is absent from that node's formula.
    hidden0 = edges[(0, 0, 0)].expression.xreplace({sympy.Symbol("x", real=True): x0})
    assert hidden0.free_symbols == {x0}
    assert expr.free_symbols == {x0, x1}


def test_kan_to_symbolic_is_deterministic():
    X, _, _, _ = _dataset(lambda X: X[:, 0] * X[:, 1], n=150)
    model = _kan([2, 1, 1])
    a = kan_to_symbolic(model, None, x=X, regressor=_linear_regressor, seed=3, use_async=True)
    b = kan_to_symbolic(model, None, x=X, regressor=_linear_regressor, seed=3, use_async=False)
    assert [e.fit.ansatz for e in a.values()] == [e.fit.ansatz for e in b.values()]
    for ea, eb in zip(a.values(), b.values(), strict=True):
        np.testing.assert_array_equal(ea.fit.params, eb.fit.params)


def test_reference_readme_snippet_runs_offline(tmp_path, monkeypatch):
    """The reference README's KAN snippet, with client=None, in a clean directory."""
    monkeypatch.chdir(tmp_path)
    client = None
    device = "cpu"
    model = kan.KAN(
        width=[2, 1, 1], grid=3, k=3, seed=0, device=device, symbolic_enabled=False, auto_save=False
    )
    f = lambda x: 2 * x[:, [0]] + x[:, [1]] ** 2  # noqa: E731 - as in the README
    dataset = kan.create_dataset(f, n_var=2, train_num=200, test_num=100, device=device)
    res = model.fit(dataset, opt="LBFGS", steps=5, log=1)
    sym_expr = kan_to_symbolic(
        model,
        client,
        gpt_model="openai/gpt-4o",
        exit_condition=max(min(res["train_loss"]).item(), 1e-3),
        use_async=True,
        population=1,
        generations=1,
        temperature=0.1,
        x=dataset["train_input"],
    )
    assert set(sym_expr) == {(0, 0, 0), (0, 1, 0), (1, 0, 0)}

    multivariate_kansr = KANLEX(client, [2, 1, 1], grid=3, k=3, seed=0)
    multivariate_kansr.create_dataset(f, n_var=2, train_num=200, test_num=100)
    report = multivariate_kansr.train_kan(steps=5, n_restarts=2, prune=True)
    assert len(report.runs) == 2
    assert report.best_test_loss == min(r.test_loss for r in report.runs) or report.pruned
    best_expressions, best_chi_squareds, results_dicts, results_all_dicts = (
        multivariate_kansr.get_symbolic(
            client=client,
            population=1,
            generations=1,
            temperature=0.1,
            gpt_model="openai/gpt-4o",
            verbose=1,
            use_async=True,
            plot_fit=True,
            plot_parents=True,
            demonstrate_parent_plotting=True,
            exit_condition=1e-3,
            simplify_timeout=5,
            snap_time=5,
        )
    )
    assert len(best_expressions) == len(best_chi_squareds) == len(results_dicts) == 1
    assert isinstance(best_expressions[0], sympy.Expr)
    assert np.isfinite(best_chi_squareds[0])
    assert results_dicts[0]["result"].expression == best_expressions[0]
    scores = [d["n_chi_squared"] for d in results_all_dicts[0]]
    assert scores == sorted(scores)
    # pykan's checkpoints (prune writes some, model.copy() writes copy_temp*) never land here.
    assert list(tmp_path.iterdir()) == []


def test_unknown_option_is_a_type_error():
    model = _kan([2, 1, 1])
    with pytest.raises(TypeError, match="plot_fit"):
        kan_to_symbolic(model, None, x=np.zeros((10, 2)), plot_fitt=True)


# ----------------------------------------------------------------------------- simplification


def _selection(expr, f, variables, n=400, seed=0):
    from llmlex._kan_select import Selection as _Selection

    rng = np.random.default_rng(seed)
    X = rng.uniform(0.5, 2.0, size=(n, len(variables)))
    Xt = rng.uniform(0.5, 2.0, size=(n, len(variables)))
    sel = _Selection(variables, X, f(X), Xt, f(Xt), tolerance=0.1)
    sel.start(expr)
    return sel


def test_simplification_never_accepts_a_worse_candidate():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    f = lambda X: np.exp(0.5 * X[:, 0]) * X[:, 1] + 0.3 * X[:, 0]  # noqa: E731
    raw = sympy.Float(1.02) * sympy.exp(sympy.Float(0.49) * x0) * x1 + sympy.Float(0.31) * x0
    sel = _selection(raw, f, [x0, x1])
    reference = sel.reference
    before = sel.best
    # Simpler but wrong: dropping the linear term cannot be refitted back to the data.
    assert not sel.consider("llm", sympy.Float(1.1) * sympy.exp(sympy.Float(0.5) * x0) * x1)
    assert sel.best == before
    assert sel.candidates[-1].accepted is False
    # Simpler and right (fewer constants after refitting): accepted.
    good = sympy.Float(1.0) * x1 * sympy.exp(x0 / 2) + sympy.Float(0.3) * x0
    sel.consider("llm", good)
    final = sel.finish()
    score = ks.holdout_nchi2(final, [x0, x1], sel.X_hold, sel.y_hold)
    assert score <= reference * 1.1 + 1e-12


def test_snapping_keeps_only_what_the_score_allows():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    f = lambda X: 1.37 * X[:, 0] + X[:, 1] ** 2  # noqa: E731
    rng = np.random.default_rng(0)
    X, Xt = rng.uniform(0.2, 2, (300, 2)), rng.uniform(0.2, 2, (300, 2))
    raw = sympy.Float(1.3702) * x0 + sympy.Float(0.9991) * x1 ** sympy.Float(2.0004)
    reference = ks.holdout_nchi2(raw, [x0, x1], Xt, f(Xt))
    out = ks.snap_constants(
        raw, [x0, x1], X, f(X), Xt, f(Xt), reference, rtol=0.1, atol=1e-12, deadline=1e18
    )
    # 1.37 is not simple enough to be within tolerance as an integer: it stays a Float;
    # the coefficient and exponent of x1 snap to 1 and 2.
    assert out.has(x1**2)
    floats = [float(a) for a in out.atoms(sympy.Float)]
    assert floats and abs(floats[0] - 1.37) < 1e-9
    assert nchi2(f(Xt), ks.evaluate(out, [x0, x1], Xt)) <= reference


def test_safe_evaluator_matches_sympy():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    exprs = [
        sympy.exp(sympy.sin(sympy.pi * x0) + x1**2),
        sympy.sqrt(x0**2 + x1**2) / (1 + sympy.Abs(x1)),
        sympy.log(2 + x0) * sympy.tanh(x1) - sympy.Rational(3, 7) * x0 ** sympy.Integer(-2),
        sympy.cbrt(x0) + x1 ** sympy.Float(1.5),
    ]
    X = np.array([[0.3, 0.7], [0.9, 0.2], [0.5, 1.4]])
    for e in exprs:
        want = [float(e.subs({x0: a, x1: b}).evalf()) for a, b in X]
        np.testing.assert_allclose(ks.evaluate(e, [x0, x1], X), want, rtol=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo hi')",
        "x0.__class__",
        "open('f')",
        "x0 ** x1",
        "lambda: 1",
        "[x0]",
        "np.sin(x0, out=x1)",
        "y",
    ],
)
def test_parse_expression_rejects_code(text):
    syms = {"x0": sympy.Symbol("x0", real=True), "x1": sympy.Symbol("x1", real=True)}
    with pytest.raises(AnsatzError):
        ks.parse_expression(text, syms)


def test_parse_expression_reads_llm_style_text():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    got = ks.parse_expression("np.exp(np.sin(np.pi*x0) + x1**2) - 0.5", {"x0": x0, "x1": x1})
    assert sympy.simplify(got - (sympy.exp(sympy.sin(sympy.pi * x0) + x1**2) - 0.5)) == 0


def test_simplify_with_timeout():
    x = sympy.Symbol("x0", real=True)
    assert ks.simplify_with_timeout(sympy.sin(x) ** 2 + sympy.cos(x) ** 2, 30) == 1
    assert ks.simplify_with_timeout(x, 0) is None


class _FakeChat:
    """Stands in for an OpenAI client: canned reply, records the prompt."""

    def __init__(self, reply: str) -> None:
        from types import SimpleNamespace

        self.prompts: list[str] = []
        message = SimpleNamespace(content=reply)
        response = SimpleNamespace(choices=[SimpleNamespace(message=message)])

        def create(**kw):
            self.prompts.append(kw["messages"][-1]["content"])
            return response

        self.chat = SimpleNamespace(completions=SimpleNamespace(create=create))


def test_llm_simplifications_are_parsed_not_evaluated_and_judged():
    model = _symbolic_multkan()
    f = lambda X: (  # noqa: E731
        model(torch.tensor(X, dtype=torch.float32)).detach().numpy()[:, 0].astype(float)
    )
    X, y, Xt, yt = _dataset(f, n=200)
    edges = kan_to_symbolic(model, None, x=X)
    client = _FakeChat(
        "1. __import__('os').system('echo pwned')\n"
        "2. x0 + x1\n"  # simpler but wrong: must be rejected by the score
        "3. np.sin(x0)**2 + np.cos(x0)**2\n"
    )
    (res,) = symbolic_from_edges(
        model, edges, X, y, Xt, yt, client=client, simplify_timeout=0, snap_time=2
    )
    assert len(client.prompts) == 1 and "x0" in client.prompts[0]
    llm = [c for c in res.candidates if c.origin == "llm"]
    assert len(llm) == 2  # the import line never became a candidate
    assert not any(c.accepted for c in llm)
    assert res.r2_test > 0.9999
    assert res.llm_calls == 1


# ----------------------------------------------------------------------------- checkpoints


class _Interrupt(Exception):
    pass


class _Counting:
    """An edge regressor that records the edges it is asked for and may fail on the nth.

    Each edge reports two (pretend) paid LLM calls, so that totals can be checked.
    """

    def __init__(self, fail_at=None):
        import threading

        self.keys = []
        self.fail_at = fail_at
        self._lock = threading.Lock()

    def __call__(self, task):
        with self._lock:
            self.keys.append(task.key)
            n = len(self.keys)
        if n == self.fail_at:
            raise _Interrupt(f"edge {task.key}")
        fit = _linear_regressor(task).fit
        const = fit_ansatz("params[0]", task.x, task.y, validate=False)
        return EdgeFit(fit, "test", llm_calls=2, llm_calls_saved=1, candidates=(const, fit))


def _edge_summary(edges):
    """Everything of a KANEdges that must survive a checkpoint (not the wall times)."""
    return [
        (
            k,
            e.status,
            e.source,
            e.fit.ansatz if e.fit is not None else None,
            e.fit.params.tobytes() if e.fit is not None else None,
            e.nchi2,
            e.x_range,
            e.llm_calls,
            e.llm_calls_saved,
            e.expression,
            [(r.ansatz, r.params.tobytes(), err) for r, err in e.alternatives],
        )
        for k, e in edges.items()
    ]


def _six_edges():
    X = np.random.default_rng(5).uniform(-1, 1, size=(150, 2))
    return _kan([2, 2, 1]), X  # six edges, all regressed


@pytest.mark.parametrize("use_async", [False, True])
def test_interrupted_kan_to_symbolic_resumes_without_redoing_edges(tmp_path, use_async):
    import json

    model, X = _six_edges()
    full = kan_to_symbolic(model, None, x=X, regressor=_Counting(), use_async=use_async)
    assert len(full.by_status("fitted")) == 6 and full.llm_calls == 12

    path = tmp_path / "edges.json"
    first = _Counting(fail_at=4)
    with pytest.raises(_Interrupt):
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

    second = _Counting()
    resumed = kan_to_symbolic(
        model, None, x=X, regressor=second, use_async=use_async, checkpoint=path
    )
    assert not set(second.keys) & recorded  # finished edges were loaded, not redone
    assert sorted(second.keys) == sorted(set(full) - recorded)
    assert _edge_summary(resumed) == _edge_summary(full)
    assert resumed.llm_calls == full.llm_calls == 12  # no paid call counted twice
    assert resumed.llm_calls_saved == full.llm_calls_saved == 6
    x0, x1 = sympy.symbols("x0 x1", real=True)
    assert assemble_expressions(model, resumed, [x0, x1]) == assemble_expressions(
        model, full, [x0, x1]
    )
    assert json.loads(path.read_text())["finished"] is True

    # A finished checkpoint gives the same edges back with no work, and is not rewritten.
    before = path.read_bytes()
    third = _Counting(fail_at=1)  # would raise if it were asked for anything
    again = kan_to_symbolic(model, None, x=X, regressor=third, checkpoint=path)
    assert third.keys == []
    assert _edge_summary(again) == _edge_summary(full)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["edges.json"]  # no temporary left


def test_kan_checkpoint_of_other_data_is_an_error_and_left_untouched(tmp_path):
    from llmlex.persist import CheckpointError

    model, X = _six_edges()
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=_Counting(), checkpoint=path, seed=1)
    before = path.read_bytes()
    other = _Counting()
    with pytest.raises(CheckpointError, match=r"different data: the inputs.*resume=False"):
        kan_to_symbolic(model, None, x=X * 0.5, regressor=other, checkpoint=path, seed=1)
    with pytest.raises(CheckpointError, match="a different network: the edges regressed"):
        kan_to_symbolic(_kan([2, 1, 1]), None, x=X, regressor=other, checkpoint=path, seed=1)
    with pytest.raises(CheckpointError, match=r"function of edge\(s\) \(0,0,0\), \(0,0,1\)"):
        kan_to_symbolic(_kan([2, 2, 1], seed=1), None, x=X, regressor=other, checkpoint=path)
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
    fresh = _Counting()
    kan_to_symbolic(model, None, x=X * 0.5, regressor=fresh, checkpoint=path, resume=False)
    assert len(fresh.keys) == 6 and path.read_bytes() != before


def test_kan_checkpoint_tolerates_rounding_but_not_a_changed_network(tmp_path):
    from llmlex.persist import CheckpointError

    model, X = _six_edges()
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=_Counting(), checkpoint=path)
    before = path.read_bytes()
    # The same network re-evaluated elsewhere can differ in the last float32 bits
    # (measured: one ulp on one edge between two processes); that is the same network.
    with torch.no_grad():
        model.act_fun[0].coef.mul_(1 + 1e-6)
    same = _Counting()
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
def test_damaged_kan_checkpoint_is_an_error_not_overwritten(tmp_path, damage):
    from llmlex.persist import CheckpointError

    model, X = _six_edges()
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=_Counting(), checkpoint=path)
    damaged = damage(path.read_text())
    assert damaged != path.read_text()
    path.write_text(damaged)
    other = _Counting()
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
        model, X = _six_edges()
        full = kan_to_symbolic(model, None, x=X, regressor=_Counting())
        kill_9_when(proc, lambda: path.exists() and bool(json.loads(path.read_text())["edges"]), 60)
    doc = json.loads(path.read_text())  # whole, never half-written
    recorded = {tuple(e["key"]) for e in doc["edges"]}
    asked = [tuple(int(v) for v in line.split(",")) for line in sent.read_text().split()]
    assert 1 <= len(recorded) < 6 and doc["finished"] is False
    assert recorded <= set(asked)
    # What was paid for and not recorded is at most the edges in flight (2 at a time).
    assert len(asked) - len(recorded) <= 2
    assert doc["llm_calls"] == 2 * len(recorded)

    again = _Counting()
    resumed = kan_to_symbolic(model, None, x=X, regressor=again, checkpoint=path)
    assert not set(again.keys) & recorded  # nothing recorded is paid for again
    assert len(again.keys) == 6 - len(recorded)
    assert resumed.llm_calls == full.llm_calls == 12
    # Edges regressed here are bit-identical to the uninterrupted run.  Those from the
    # child were fitted to the same network evaluated in another process, where float32
    # results may differ in the last bit (seen on one edge in about one run in four):
    # same formulas, parameters equal to rounding.
    ours = [s for s in _edge_summary(resumed) if s[0] not in recorded]
    assert ours == [s for s in _edge_summary(full) if s[0] not in recorded]
    for key in recorded:
        a, b = resumed[key], full[key]
        assert (a.status, a.source, a.fit.ansatz) == (b.status, b.source, b.fit.ansatz)
        scale = np.max(np.abs(b.fit.params))
        np.testing.assert_allclose(a.fit.params, b.fit.params, rtol=1e-5, atol=1e-6 * scale)
        assert a.nchi2 == pytest.approx(b.nchi2, rel=1e-3, abs=1e-12)


# ----------------------------------------------------------------------------- simpler forms


def _fixed_multkan(funs):
    """A [[2,0],[1,1],[1,0]] MultKAN whose edges are fixed symbolic: ``{key: (name, affine)}``.

    Edges not named are fixed to zero.
    """
    model = _kan([[2, 0], [1, 1], [1, 0]], symbolic_enabled=True, mult_arity=2)
    keys = [(0, i, j) for i in range(2) for j in range(3)] + [(1, 0, 0), (1, 1, 0)]
    with torch.no_grad():
        for layer, i, j in keys:
            name, affine = funs.get((layer, i, j), ("0", (1.0, 0.0, 1.0, 0.0)))
            model.fix_symbolic(layer, i, j, name, fit_params_bool=False, verbose=False)
            model.symbolic_fun[layer].affine.data[j, i] = torch.tensor(affine)
    return model


def test_separable_candidates_find_product_and_sum_forms():
    from llmlex._kan_select import separable_forms as _separable_candidates

    x0, x1 = sympy.symbols("x0 x1", real=True)
    X = np.random.default_rng(3).uniform(1.0, 3.0, size=(400, 2))
    # (x0 + 1) * x1**2 through the multiplication node, and sin(x0) + 1/x1 through the sum.
    product = _fixed_multkan(
        {
            (0, 0, 1): ("x", (1.0, 1.0, 1.0, 0.0)),
            (0, 1, 2): ("x^2", (1.0, 0.0, 1.0, 0.0)),
            (1, 1, 0): ("x", (1.0, 0.0, 1.0, 0.0)),
        }
    )
    total = _fixed_multkan(
        {
            (0, 0, 0): ("sin", (1.0, 0.0, 1.0, 0.0)),
            (0, 1, 0): ("1/x", (1.0, 0.0, 1.0, 0.0)),
            (1, 0, 0): ("x", (1.0, 0.0, 1.0, 0.0)),
        }
    )
    for model, kind, truth in (
        (product, "separable: f = g(x0) * g(x1)", (x0 + 1) * x1**2),
        (total, "separable: f = g(x0) + g(x1)", sympy.sin(x0) + 1 / x1),
    ):
        with torch.no_grad():
            y = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0].astype(float)
        np.testing.assert_allclose(y, ks.evaluate(truth, [x0, x1], X), rtol=1e-5)
        cands = _separable_candidates(model, X, [x0, x1], 0, y, seed=0)
        assert cands and {origin for origin, _ in cands} == {kind}, cands
        # The first variant reproduces the network from slices alone (float32 accuracy).
        got = ks.evaluate(cands[0][1], [x0, x1], X)
        np.testing.assert_allclose(got, y, rtol=1e-3, atol=1e-3 * np.abs(y).max())
        # and one has the truth's structure: a refit of its constants makes it exact.
        exact = ks.evaluate(truth, [x0, x1], X)
        best = math.inf
        for _, expr in cands:
            template, syms, p0 = ks.parameterise(expr)
            best = min(best, ks.fit_constants(template, [x0, x1], syms, p0, X, exact).nchi2)
        assert best < 1e-12


def test_separable_candidates_none_for_a_network_that_is_neither():
    from llmlex._kan_select import separable_forms as _separable_candidates

    model = _symbolic_multkan()  # tanh of a sum plus a product of mixed subnodes
    x0, x1 = sympy.symbols("x0 x1", real=True)
    X = np.random.default_rng(4).uniform(-1, 1, size=(300, 2))
    with torch.no_grad():
        y = model(torch.tensor(X, dtype=torch.float32)).numpy()[:, 0].astype(float)
    assert _separable_candidates(model, X, [x0, x1], 0, y, seed=0) == []


def test_edge_alternatives_run_from_a_constant_to_the_chosen_fit():
    from llmlex._kan_edges import edge_alternatives as _alternatives
    from llmlex._kan_edges import edge_weighted_error, regress_edge

    x = np.linspace(1.0, 3.0, 120)
    y = 2.0 * x**2 + 0.5
    # exit_condition unreachable: only the weights can stop the search; the output
    # hardly depends on this edge.
    task = _edge_task(x, y, weights=np.full_like(x, 1e-3))
    fit = regress_edge(task)
    assert fit.source in ("library", "quadratic")  # no search: the library sufficed
    alts = _alternatives(task, fit.fit, fit.candidates)
    assert alts[0][0].ansatz == "params[0]"  # a constant first ...
    assert alts[-1][0] is fit.fit  # ... the chosen fit last
    errs = [e for _, e in alts]
    assert errs == sorted(errs, reverse=True)  # each simpler one less accurate
    assert [r.complexity for r, _ in alts] == sorted(r.complexity for r, _ in alts)
    # The weighted error is the first-order effect on the output: residual x weight.
    const = alts[0][0]
    expected = np.sqrt(np.mean((1e-3 * (const.predict(x) - y)) ** 2))
    assert edge_weighted_error(task, const) == pytest.approx(expected)


def _edge_task(x, y, **kw):
    from llmlex.kan import EdgeTask

    opts = dict(
        key=(0, 0, 0),
        x=x,
        y=y,
        client=None,
        gpt_model="m",
        exit_condition=1e-20,  # unreachable: the library never stops the search itself
        population=2,
        generations=1,
        temperature=0.1,
        seed=0,
    )
    opts.update(kw)
    return EdgeTask(**opts)


def test_edge_search_off_keeps_to_the_library():
    from llmlex.kan import EDGE_LIBRARY, regress_edge

    x = np.linspace(-1.0, 1.0, 150)
    y = np.sin(3.0 * x) * np.exp(x)  # no library form fits: a search would run
    searched = regress_edge(_edge_task(x, y))
    assert searched.source == "offline"
    library_only = regress_edge(_edge_task(x, y, search=False))
    assert library_only.source != "offline"
    assert len(library_only.candidates) == len(EDGE_LIBRARY)
    assert library_only.llm_calls == 0


def test_kan_to_symbolic_passes_search_and_time_budget_to_the_tasks():
    X, _, _, _ = _dataset(lambda X: X[:, 0] * X[:, 1], n=150)
    seen = []

    def record(task):
        seen.append((task.search, task.time_budget))
        return _linear_regressor(task)

    kan_to_symbolic(_kan([2, 1, 1]), None, x=X, regressor=record, search=False, edge_time_budget=2)
    assert seen and set(seen) == {(False, 2.0)}


def test_kan_checkpoint_records_the_search_option(tmp_path):
    from llmlex.persist import CheckpointError

    X, _, _, _ = _dataset(lambda X: X[:, 0] * X[:, 1], n=150)
    model = _kan([2, 1, 1])
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=_linear_regressor, checkpoint=path, search=False)
    with pytest.raises(CheckpointError, match="search was False, now True"):
        kan_to_symbolic(model, None, x=X, regressor=_linear_regressor, checkpoint=path)


def test_a_better_structured_formula_becomes_the_reference():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    f = lambda X: X[:, 0] * X[:, 1] ** 2  # noqa: E731
    # A raw formula that only approximates the data (like a network's assembly): no
    # refit of its constants makes x1**2 out of a line and an exponential.
    raw = x0 * (sympy.Float(0.1) + sympy.Float(0.5) * x1 + sympy.Float(0.3) * sympy.exp(x1))
    sel = _selection(raw, f, [x0, x1])
    loose = sel.reference
    assert sel.consider("again", raw)  # as good as itself
    exact = sympy.Float(1.01) * x0 * x1**2
    assert sel.consider("separable", exact)
    assert sel.tighten()
    assert sel.reference < 1e-6 * loose
    assert not sel.consider("again", raw)  # no longer acceptable
    assert ks.holdout_nchi2(sel.finish(), [x0, x1], sel.X_hold, sel.y_hold) < 1e-20
    assert not sel.tighten()  # nothing better since


def test_constant_refit_stops_at_its_deadline_keeping_the_best_point():
    import time

    x0 = sympy.Symbol("x0", real=True)
    X = np.linspace(0.1, 2.0, 400)[:, None]
    y = 2.0 * np.exp(0.5 * X[:, 0])
    template, syms, p0 = ks.parameterise(sympy.Float(1.5) * sympy.exp(sympy.Float(0.3) * x0))
    start = ks.holdout_nchi2(template.subs(dict(zip(syms, p0, strict=True))), [x0], X, y)
    past = ks.fit_constants(template, [x0], syms, p0, X, y, deadline=time.perf_counter() - 1)
    assert past.nchi2 == pytest.approx(start)  # stopped at once: the start point
    free = ks.fit_constants(template, [x0], syms, p0, X, y)
    assert free.nchi2 < 1e-20
