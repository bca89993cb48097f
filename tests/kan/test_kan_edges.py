"""llmlex._kan_edges: the edge regressor, its alternatives, and kan_to_symbolic."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import numpy as np
import pytest
import sympy
from kan_helpers import dataset, edge_task, linear_regressor, needs_kan, small_kan

from llmlex._kan_edges import edge_alternatives, edge_weighted_error
from llmlex.kan import EDGE_LIBRARY, assemble_expressions, kan_to_symbolic, regress_edge


@needs_kan
def test_kan_to_symbolic_marks_pruned_and_uses_injected_regressor():
    X, _y, _, _ = dataset(lambda X: X[:, 0] + X[:, 1] ** 2, n=200)
    model = small_kan([2, 2, 1])
    model.remove_edge(0, 1, 0, log_history=False)
    edges = kan_to_symbolic(model, None, x=X, regressor=linear_regressor, max_points=50)
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


@needs_kan
def test_kan_to_symbolic_is_deterministic():
    X, _, _, _ = dataset(lambda X: X[:, 0] * X[:, 1], n=150)
    model = small_kan([2, 1, 1])
    a = kan_to_symbolic(model, None, x=X, regressor=linear_regressor, seed=3, use_async=True)
    b = kan_to_symbolic(model, None, x=X, regressor=linear_regressor, seed=3, use_async=False)
    assert [e.fit.ansatz for e in a.values()] == [e.fit.ansatz for e in b.values()]
    for ea, eb in zip(a.values(), b.values(), strict=True):
        np.testing.assert_array_equal(ea.fit.params, eb.fit.params)


@needs_kan
def test_edges_on_a_process_pool_are_the_edges_on_threads(tmp_path):
    X, _, _, _ = dataset(lambda X: np.exp(X[:, 0]) + X[:, 1] ** 2, n=150)
    model = small_kan([2, 1, 1])
    options = {"x": X, "seed": 3, "search": False, "max_points": 80}
    here = kan_to_symbolic(model, None, **options)
    ckpt = tmp_path / "edges.json"
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        there = kan_to_symbolic(model, None, executor=pool, checkpoint=ckpt, **options)
    assert list(there) == list(here)
    for a, b in zip(here.values(), there.values(), strict=True):
        assert (a.status, a.source) == (b.status, b.source)
        if a.fit is not None:
            assert a.fit.ansatz == b.fit.ansatz
            np.testing.assert_array_equal(a.fit.params, b.fit.params)
    # Each edge was checkpointed here as it came back: a second call loads them all.
    again = kan_to_symbolic(model, None, checkpoint=ckpt, executor=_Refusing(), **options)
    assert [e.expression for e in again.values()] == [e.expression for e in there.values()]


class _Refusing(concurrent.futures.Executor):
    def submit(self, fn, /, *args, **kwargs):
        raise AssertionError("an edge was submitted again")


@needs_kan
def test_an_openai_client_cannot_travel_to_an_executor():
    import openai

    model = small_kan([2, 1, 1])
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        pytest.raises(TypeError, match="ClientSpec"),
    ):
        kan_to_symbolic(model, client, x=np.zeros((10, 2)), executor=pool)


@needs_kan
def test_unknown_option_is_a_type_error():
    model = small_kan([2, 1, 1])
    with pytest.raises(TypeError, match="plot_fit"):
        kan_to_symbolic(model, None, x=np.zeros((10, 2)), plot_fitt=True)


def test_edge_alternatives_run_from_a_constant_to_the_chosen_fit():
    x = np.linspace(1.0, 3.0, 120)
    y = 2.0 * x**2 + 0.5
    # exit_condition unreachable: only the weights can stop the search; the output
    # hardly depends on this edge.
    task = edge_task(x, y, weights=np.full_like(x, 1e-3))
    fit = regress_edge(task)
    assert fit.source in ("library", "quadratic")  # no search: the library sufficed
    alts = edge_alternatives(task, fit.fit, fit.candidates)
    assert alts[0][0].ansatz == "params[0]"  # a constant first ...
    assert alts[-1][0] is fit.fit  # ... the chosen fit last
    errs = [e for _, e in alts]
    assert errs == sorted(errs, reverse=True)  # each simpler one less accurate
    assert [r.complexity for r, _ in alts] == sorted(r.complexity for r, _ in alts)
    # The weighted error is the first-order effect on the output: residual x weight.
    const = alts[0][0]
    expected = np.sqrt(np.mean((1e-3 * (const.predict(x) - y)) ** 2))
    assert edge_weighted_error(task, const) == pytest.approx(expected)


def test_edge_search_off_keeps_to_the_library():
    x = np.linspace(-1.0, 1.0, 150)
    y = np.sin(3.0 * x) * np.exp(x)  # no library form fits: a search would run
    searched = regress_edge(edge_task(x, y))
    assert searched.source == "offline"
    library_only = regress_edge(edge_task(x, y, search=False))
    assert library_only.source != "offline"
    assert len(library_only.candidates) == len(EDGE_LIBRARY)
    assert library_only.llm_calls == 0


@needs_kan
def test_kan_to_symbolic_passes_search_and_time_budget_to_the_tasks():
    X, _, _, _ = dataset(lambda X: X[:, 0] * X[:, 1], n=150)
    seen = []

    def record(task):
        seen.append((task.search, task.time_budget))
        return linear_regressor(task)

    kan_to_symbolic(
        small_kan([2, 1, 1]), None, x=X, regressor=record, search=False, edge_time_budget=2
    )
    assert seen and set(seen) == {(False, 2.0)}


def test_regress_edge_options_override_the_task():
    from llmlex._forms import POLYNOMIAL_LIBRARY

    x = np.linspace(-1.0, 1.0, 150)
    y = np.sin(3.0 * x) * np.exp(x)  # nothing in either library fits: a search would run
    task = edge_task(x, y)  # task.search is True
    fast = regress_edge(task, forms=POLYNOMIAL_LIBRARY, n_starts=2, search=False)
    assert fast.source in ("constant", "linear", "quadratic", "cubic")
    assert len(fast.candidates) == len(POLYNOMIAL_LIBRARY) and fast.llm_calls == 0
    # patience stops the offline search early; the search still runs.
    searched = regress_edge(edge_task(x, y, generations=3), forms=POLYNOMIAL_LIBRARY, patience=1)
    assert searched.source == "offline"


def test_both_spellings_of_a_setting_are_a_type_error():
    # Checked before the network is touched: no torch needed.
    with pytest.raises(TypeError, match="population= and population_size="):
        kan_to_symbolic(object(), None, population=3, population_size=3)
    with pytest.raises(TypeError, match="generations= and num_of_generations="):
        kan_to_symbolic(object(), None, generations=1, num_of_generations=1)


@needs_kan
def test_univariate_names_are_aliases_of_the_kan_settings(tmp_path):
    X, _, _, _ = dataset(lambda X: X[:, 0] * X[:, 1], n=150)
    model = small_kan([2, 1, 1])
    seen = []

    def record(task):
        seen.append((task.population, task.generations))
        return linear_regressor(task)

    kan_to_symbolic(model, None, x=X, regressor=record, population_size=7, num_of_generations=2)
    kan_to_symbolic(model, None, x=X, regressor=record, population=7, generations=2)
    kan_to_symbolic(model, None, x=X, regressor=record)
    n = len(seen) // 3
    assert set(seen[: 2 * n]) == {(7, 2)} and set(seen[2 * n :]) == {(10, 3)}
    # The checkpoint records the setting, not its spelling.
    path = tmp_path / "edges.json"
    kan_to_symbolic(model, None, x=X, regressor=record, checkpoint=path, population_size=7)
    seen.clear()
    kan_to_symbolic(model, None, x=X, regressor=record, checkpoint=path, population=7)
    assert seen == []


def test_an_edge_asks_the_llm_through_the_reply_cache(fake_openai, openai_client, tmp_path):
    # The edge's LLM stage goes through the one call module: a rerun with the same cache
    # replays the replies and pays no call.
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)\n")
    x = np.linspace(-1.0, 1.0, 60)
    y = np.sin(2.5 * x) + 0.01 * np.random.default_rng(0).normal(size=x.size)  # never exact
    task = edge_task(x, y, client=openai_client, cache=tmp_path)
    first = regress_edge(task)
    paid = fake_openai.calls
    assert paid >= 1 and first.llm_calls == paid
    again = regress_edge(task)
    assert fake_openai.calls == paid and again.llm_calls == 0
    assert again.fit.ansatz == first.fit.ansatz
