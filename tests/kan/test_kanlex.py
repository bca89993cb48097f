"""llmlex._kanlex: KANLEX trains, prunes and answers get_symbolic like the reference."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from kan_helpers import kan, needs_kan

from llmlex.kan import KANLEX, kan_to_symbolic


@needs_kan
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
    loss = multivariate_kansr.train_kan(steps=5, n_restarts=2, prune=True)
    report = multivariate_kansr.training
    assert isinstance(loss, float) and loss == multivariate_kansr.final_train_loss
    assert loss == multivariate_kansr.training_history["train_loss"][-1]
    assert multivariate_kansr.raw_model is not None
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
    # As the reference: numpy text in x0, x1 that a notebook evaluates with np in scope.
    assert isinstance(best_expressions[0], str)
    learned = eval("lambda x0, x1: " + best_expressions[0], {"np": np})  # test's own text
    X = dataset["test_input"].numpy()
    result = results_dicts[0]["result"]
    assert isinstance(result.expression, sympy.Expr)
    assert np.allclose(learned(X[:, 0], X[:, 1]), result.predict(X))
    assert np.isfinite(best_chi_squareds[0])
    assert {
        "raw_expression",
        "raw_n_chi_squared",
        "final_refitted_expression",
        "n_chi_squared_refitted",
        "final_LLM_expression",
        "n_chi_squared_LLM_final",
        "best_expression",
        "best_n_chi_squared",
        "best_fit_type",
    } <= set(results_dicts[0])
    assert results_dicts[0]["best_expression"] == best_expressions[0]
    assert results_dicts[0]["best_fit_type"] in ("raw", "rawrefitted", "LLMsimplified")
    assert results_dicts[0]["final_LLM_expression"] is None  # offline: no LLM simplification
    assert multivariate_kansr.results_all_dicts is results_dicts
    scores = [d["n_chi_squared"] for d in results_all_dicts[0]]
    assert scores == sorted(scores)
    assert {"expression", "expression_numpy", "n_chi_squared", "fit_type", "output_index"} <= set(
        results_all_dicts[0][0]
    )
    tree = multivariate_kansr.build_expression_tree()
    assert set(tree) == {"edge_dict", "top_k_edge_dicts", "node_tree", "full_expressions"}
    assert tree["full_expressions"] == [result.expression]
    # pykan's checkpoints (prune writes some, model.copy() writes copy_temp*) never land here.
    assert list(tmp_path.iterdir()) == []


def test_get_symbolic_takes_the_univariate_names_as_aliases():
    kl = KANLEX(None, [2, 1, 1])  # no torch needed: the check comes first
    with pytest.raises(TypeError, match="population= and population_size="):
        kl.get_symbolic(None, 3, population_size=3)
    with pytest.raises(TypeError, match="generations= and num_of_generations="):
        kl.get_symbolic(None, generations=1, num_of_generations=1)
    with pytest.raises(TypeError, match="did you mean 'plot_fit'"):
        kl.get_symbolic(None, plot_fitt=True)
    with pytest.raises(ValueError, match="no trained model"):
        kl.get_symbolic(None, population_size=3, num_of_generations=1)


@needs_kan
@pytest.mark.parametrize("progress", [True, False])
def test_training_and_get_symbolic_show_progress_unless_told_not_to(capsys, progress):
    kl = KANLEX(None, [2, 1, 1], grid=3, k=3, seed=0)
    kl.create_dataset(lambda x: 2 * x[:, [0]] + x[:, [1]] ** 2, n_var=2, train_num=100)
    kl.train_kan(steps=3, n_restarts=2, warmup=3, progress=progress)
    kl.get_symbolic(
        None, population=1, generations=1, separable=False, verbose=0, progress=progress
    )
    err = capsys.readouterr().err
    for bar in ("KAN training", "KAN formula", "KAN edges"):
        assert (bar in err) is progress
    if progress:
        assert "2/2" in err and "best test RMSE" in err and "assembly" in err


@needs_kan
def test_a_restart_that_fails_inside_pykan_is_recorded_and_passed_over(monkeypatch):
    # pykan's grid update can raise (curve2coef's UnboundLocalError after MKL rejects a
    # least-squares problem: Feynman I.29.16 with seed 28); the other restarts stand.
    import llmlex._kanlex as kanlex

    real = kanlex.kt.train

    def failing_on_seed_0(model, ds, seed, *args, **kwargs):
        if seed == 0:
            raise UnboundLocalError("cannot access local variable 'coef'")
        return real(model, ds, seed, *args, **kwargs)

    monkeypatch.setattr(kanlex.kt, "train", failing_on_seed_0)
    kl = KANLEX(None, [2, 1, 1], grid=3, k=3, seed=0)
    kl.create_dataset(lambda x: 2 * x[:, [0]] + x[:, [1]] ** 2, n_var=2, train_num=100)
    kl.train_kan(steps=3, warmup=3, n_restarts=2, time_budget=1e-9, progress=False)
    first, second = kl.training.runs
    assert "UnboundLocalError" in first.error and first.test_loss == float("inf")
    assert second.error == "" and kl.training.best_seed == 1 and kl.model is not None
    with pytest.raises(UnboundLocalError):  # every restart failed: nothing to keep
        kl.train_kan(steps=3, warmup=3, seeds=[0], progress=False)


@needs_kan
def test_pruning_that_fails_inside_pykan_keeps_the_unpruned_network(monkeypatch, caplog):
    import llmlex._kanlex as kanlex

    def broken(*args, **kwargs):
        raise UnboundLocalError("cannot access local variable 'coef'")

    monkeypatch.setattr(kanlex.kt, "prune", broken)
    kl = KANLEX(None, [2, 1, 1], grid=3, k=3, seed=0)
    kl.create_dataset(lambda x: 2 * x[:, [0]] + x[:, [1]] ** 2, n_var=2, train_num=100)
    with caplog.at_level("WARNING", logger="llmlex.kan"):
        kl.train_kan(steps=3, warmup=3, n_restarts=1, prune=True, progress=False)
    assert not kl.training.pruned and kl.model is kl.raw_model is not None
    assert "pruning failed in pykan" in caplog.text


def _energy_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Mechanical energy m*v**2/2 + m*g*h of columns m [kg], v [m/s], g [m/s2], h [m]."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(1.0, 3.0, (n, 4))
    m, v, g, h = X.T
    return X, m * v**2 / 2 + m * g * h


ENERGY_UNITS = {"units": ["kg", "m/s", "m/s**2", "m"], "target_units": "J"}


@needs_kan
def test_units_train_the_network_on_the_groups_and_give_formulas_of_the_columns():
    X, y = _energy_data(200, 0)
    Xt, yt = _energy_data(100, 1)
    kl = KANLEX(None, [4, 1, 1], grid=3, k=3, seed=0, variable_names=["m", "v", "g", "h"])
    kl.set_dataset(X, y, Xt, yt, **ENERGY_UNITS)
    # One group (g*h/v**2 or its inverse): a network of one input.
    assert kl.width[0] == 1 and kl.variable_names == ["pi0"]
    assert kl.dataset["train_input"].shape == (200, 1)
    assert "f(pi0 = " in kl.units_frame.describe()
    kl.train_kan(steps=20, n_restarts=1, warmup=20, progress=False)
    exprs, _, results, _ = kl.get_symbolic(
        None, population=2, generations=1, verbose=0, progress=False
    )
    res = kl.results[0]
    assert res.variables == ("m", "v", "g", "h")
    assert {s.name for s in res.expression.free_symbols} <= {"m", "v", "g", "h"}
    assert res.r2_test > 0.999
    np.testing.assert_allclose(res.predict(Xt), yt, rtol=1e-3)
    # The scores are the columns' data's, not those of y / P.
    from llmlex.fit import nchi2

    assert res.nchi2_test == pytest.approx(nchi2(yt, res.predict(Xt)), rel=1e-9)
    assert "pi0" not in exprs[0] and "pi0" not in results[0]["raw_expression"]
    assert all("pi0" not in c.text for c in res.candidates)


def test_units_errors_name_the_problem():
    from llmlex.exceptions import UnitsError

    X, y = _energy_data(40, 0)
    kl = KANLEX(None, [4, 1, 1], variable_names=["m", "v", "g", "h"])
    with pytest.raises(UnitsError, match="both units= and target_units="):
        kl.set_dataset(X, y, X, y, units=ENERGY_UNITS["units"])
    with pytest.raises(UnitsError, match="one entry per column"):
        kl.set_dataset(X, y, X, y, units=["kg", "m/s"], target_units="J")
    with pytest.raises(ValueError, match="4 variable_names for 3 columns"):
        kl.set_dataset(X[:, :3], y, X[:, :3], y, **ENERGY_UNITS)
    potential = KANLEX(None, [3, 1, 1])  # m*g*h alone: nothing left for a network
    with pytest.raises(UnitsError, match="no dimensionless group"):
        potential.set_dataset(
            X[:, [0, 2, 3]], y, X[:, [0, 2, 3]], y, units=["kg", "m/s**2", "m"], target_units="J"
        )
    kl.model = object()  # a network already there
    with pytest.raises(ValueError, match="before the network is trained"):
        kl.set_dataset(X, y, X, y, **ENERGY_UNITS)


@needs_kan
def test_plot_results_with_units_draws_the_columns_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(1.0, 2.0, (120, 2))  # a length L and a distance d, both in metres
    y = X[:, 0] * np.sin(X[:, 1] / X[:, 0])  # L * f(d/L)
    kl = KANLEX(None, [2, 1, 1], grid=3, k=3, seed=0)
    kl.set_dataset(X[:80], y[:80], X[80:], y[80:], units=["m", "m"], target_units="m")
    assert kl.width[0] == 1
    kl.train_kan(steps=5, n_restarts=1, warmup=5, progress=False)
    kl.get_symbolic(
        None,
        population=1,
        generations=1,
        separable=False,
        verbose=0,
        progress=False,
        simplify_timeout=0,
        snap_time=0,
    )
    fig, ax = kl.plot_results()  # a surface over (x0, x1) with the data in the columns
    points = ax.collections[-1]._offsets3d
    np.testing.assert_allclose(points[0], X[:80, 0])
    np.testing.assert_allclose(points[2], y[:80])
    import matplotlib.pyplot as plt

    plt.close(fig)


@needs_kan
def test_a_failed_set_dataset_with_units_changes_nothing_and_without_units_restores_columns():
    X, y = _energy_data(40, 0)
    kl = KANLEX(None, [4, 1, 1], variable_names=["m", "v", "g", "h"])
    kl.set_dataset(X, y, X, y, **ENERGY_UNITS)
    dataset, frame = kl.dataset, kl.units_frame
    with pytest.raises(ValueError, match="one entry per column"):
        kl.set_dataset(X, y, X, y, units=["kg"], target_units="J")
    assert kl.dataset is dataset and kl.units_frame is frame
    assert kl.variable_names == ["pi0"] and kl.width[0] == 1
    kl.set_dataset(X, y, X, y)  # the columns again
    assert kl.units_frame is None and kl.variable_names == ["m", "v", "g", "h"]
    assert kl.width[0] == 4 and kl.dataset["train_input"].shape == (40, 4)
