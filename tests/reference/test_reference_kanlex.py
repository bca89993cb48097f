"""The reference library's KAN call patterns (its README's KAN section, kanLEx_example,
the Paper UniKAN/MultiKAN notebooks): llmlex's KANLEX and kan_to_symbolic, tiny networks,
the local server as the model."""

from __future__ import annotations

import inspect
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from reference_helpers import HAVE_KAN, StyledReplies, needs_kan

import llmlex
from llmlex.kan import kan_to_symbolic

if HAVE_KAN:
    import torch
    from kan import KAN, create_dataset


def test_kan_to_symbolic_binds_the_reference_positional_order():
    bound = inspect.signature(kan_to_symbolic).bind("model", "client", 10, 3, 0.2, "m", 1e-4, 1)
    assert bound.arguments == {
        "model": "model",
        "client": "client",
        "population": 10,
        "generations": 3,
        "temperature": 0.2,
        "gpt_model": "m",
        "exit_condition": 1e-4,
        "verbose": 1,
    }
    sig = inspect.signature(llmlex.kan.KANLEX.create_dataset).bind("self", "f", (-3, 3), 1)
    assert sig.arguments["ranges"] == (-3, 3) and sig.arguments["n_var"] == 1


def test_create_dataset_in_pykans_order_is_refused_with_a_reason():
    kl = llmlex.kan.KANLEX(None, [1, 2, 1])
    with pytest.raises(TypeError, match="pass n_var by keyword"):
        kl.create_dataset(lambda x: x, 2, (-1, 1))


@pytest.fixture
def kan_server(fake_openai):
    fake_openai.reply_with(StyledReplies("params[0] * np.sin(params[1] * x)"))
    return fake_openai


@needs_kan
def test_readme_kan_snippet(kan_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # pykan writes checkpoints where it runs
    torch.set_num_threads(1)
    client = kan_server.client()
    model = KAN(width=[2, 1, 1], grid=3, k=3, seed=0, auto_save=False)
    f = lambda x: torch.sin(x[:, [0]]) + x[:, [1]] ** 2  # noqa: E731
    dataset = create_dataset(f, n_var=2, train_num=200, test_num=100)
    res = model.fit(dataset, opt="LBFGS", steps=5, log=1)
    sym_expr = llmlex.kan_to_symbolic(
        model,
        client,
        gpt_model="openai/gpt-4o",
        exit_condition=min(res["train_loss"]).item(),
        use_async=True,
        population=2,
        generations=1,
        temperature=0.1,
        x=dataset["train_input"],
    )
    assert set(sym_expr) == {(0, 0, 0), (0, 1, 0), (1, 0, 0)}
    for populations in sym_expr.values():
        # As the reference's value: populations of results ascending by score.
        best = max((item for gen in populations for item in gen), key=lambda i: i["score"])
        assert {"ansatz", "params", "score"} <= set(best.keys())
        assert populations[-1][-1]["score"] == best["score"]


@needs_kan
def test_kanlex_notebook_cells(kan_server, tmp_path, monkeypatch):
    """kanLEx_example: build, create_dataset(f, ranges, n_var), train, get_symbolic, plot."""
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    client = kan_server.client()
    # A law the network holds in simple edges keeps the test short (the notebook's
    # sin(2x) on [1, 4, 1] takes minutes, most of it simplifying the formula).
    kansr = llmlex.kanlex.KANLEX(client=client, width=[1, 1, 1], grid=3, k=3, seed=42)
    target_function = lambda x: 0.5 * x**2 + 1  # noqa: E731
    dataset = kansr.create_dataset(target_function, (-3, 3), 1, train_num=300, test_num=100)
    assert dataset["train_input"].shape == (300, 1)
    assert float(dataset["train_input"].min()) >= -3 and float(dataset["train_input"].max()) <= 3
    loss = kansr.train_kan(
        dataset=dataset, opt="LBFGS", steps=20, prune=True, node_th=0.2, edge_th=0.2
    )
    assert isinstance(loss, float) and math.isfinite(loss)
    assert kansr.training_history["train_loss"][-1] == loss
    assert kansr.raw_model is not None and kansr.model is not None
    best_expressions, best_chi_squareds, results_dicts, results_all_dicts = kansr.get_symbolic(
        client=client,
        population=2,
        generations=1,
        temperature=0.1,
        gpt_model="openai/gpt-4o",
        verbose=1,
        use_async=True,
        plot_fit=True,
        plot_parents=True,
        demonstrate_parent_plotting=True,
        # llmlex's bounds on the simplification (seconds), to keep the test short
        simplify_timeout=2,
        snap_time=2,
    )
    x0 = np.linspace(-3, 3, 50)
    learned = eval("lambda x0: " + best_expressions[0], {"np": np})  # as the notebook does
    assert np.allclose(
        np.broadcast_to(learned(x0), x0.shape), results_dicts[0]["result"].predict(x0[:, None])
    )
    assert results_dicts[0]["best_n_chi_squared"] == best_chi_squareds[0]
    assert kansr.results_all_dicts[0] is results_dicts[0]
    assert results_all_dicts[0][0]["n_chi_squared"] == min(
        d["n_chi_squared"] for d in results_all_dicts[0]
    )
    fig, ax = kansr.plot_results(
        ranges=(-3, 3), result_dict=kansr.results_all_dicts[0], title="KAN symbolic regression"
    )
    assert ax.get_title() == "KAN symbolic regression" and len(ax.get_lines()) >= 3
    plt.close(fig)
    fig, ax = kansr.plot_results([-3, 3], results_dicts[0], plotmaxmin=[[-2, 2], [-1, 10]])
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1, 10)
    plt.close(fig)
    again = kansr.optimise_expressions(client, "openai/gpt-4o", plot_all=False, timeout_simplify=2)
    assert len(again) == 4 and isinstance(again[0][0], str)


@needs_kan
def test_run_complete_pipeline(kan_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    results = llmlex.kanlex.run_complete_pipeline(
        kan_server.client(),
        lambda x: 0.5 * x**2 + 1,
        ranges=(-3, 3),
        width=[1, 1, 1],
        grid=3,
        train_steps=20,
        generations=1,
        population=2,
        seed=42,
        gpt_model="openai/gpt-4o",
        simplify_timeout=2,
        snap_time=2,
    )
    assert "error" not in results, results.get("error")
    for key in (
        "trained_model",
        "pruned_model",
        "train_loss",
        "results_all_dicts",
        "dataset",
        "best_expressions",
        "best_n_chi_squareds",
        "all_results_sorted",
    ):
        assert results[key] is not None, key
    assert isinstance(results["best_expressions"][0], str)
    assert results["dataset"]["train_input"].shape[0] == 10000  # the reference's default
    # A stage that fails does not raise: what was done comes back, with the error.
    broken = llmlex.kanlex.KANLEX(None, [1, 2, 1], grid=3, k=3).run_complete_pipeline(f=None)
    assert broken["trained_model"] is None and "needs f" in broken["error"]
