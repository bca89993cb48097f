"""Saving FitResults and GeneticRuns to JSON and loading them back identically."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from llmlex import FitResult, GeneticRun, fit_ansatz, parse_ansatz, run_genetic
from llmlex.persist import (
    SCHEMA,
    PersistError,
    from_json,
    load_result,
    save_result,
    to_json,
)
from llmlex.proposer import Proposal, ProposalBatch

X = np.linspace(-1, 1, 50)
Y = np.sin(np.pi * X) + 0.3 * X**2  # no scripted form is exact: every generation runs

FORMS = [
    "params[0]*x",
    "params[0]*x**3 + params[1]*x",
    "params[0]*np.sin(params[1]*x)",
    "params[0]*np.sin(params[1]*x) + params[2]*x**2 + params[3]",
    "params[0]*np.tanh(params[1]*x)",
]


class Scripted:
    name = "scripted"

    async def propose(self, request):
        await asyncio.sleep(0)
        rng = np.random.default_rng(request.seed)
        text = FORMS[int(rng.integers(len(FORMS)))]
        return ProposalBatch(
            proposals=(Proposal(text),), calls=1, prompt_tokens=100, completion_tokens=20
        )


def strict_loads(text: str):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def assert_same_result(a: FitResult, b: FitResult) -> None:
    assert a.ansatz == b.ansatz
    assert a.params.tobytes() == b.params.tobytes()  # bit-identical, nan included
    assert (a.nchi2 == b.nchi2) or (np.isnan(a.nchi2) and np.isnan(b.nchi2))
    assert (a.success, a.message, a.nfev, a.n_starts, a.time) == (
        b.success,
        b.message,
        b.nfev,
        b.n_starts,
        b.time,
    )
    assert a.complexity == b.complexity
    assert b.compiled is not None and b.compiled.text == a.ansatz


@pytest.fixture(scope="module")
def run() -> GeneticRun:
    return run_genetic(
        None,
        None,
        X,
        Y,
        4,
        3,
        proposer=Scripted(),
        seed=3,
        progress=False,
        exit_condition=0.0,
        prices={"x": (1.0, 2.0)},
    )


def test_fit_result_round_trip_is_bit_identical():
    r = fit_ansatz("params[0]*np.exp(params[1]*x) + params[2]", X, np.exp(-0.37 * X) / 3)
    back = from_json(to_json(r))
    assert isinstance(back, FitResult)
    assert_same_result(r, back)
    np.testing.assert_array_equal(back.predict(X), r.predict(X))
    assert not back.params.flags.writeable


def test_failed_fit_with_nan_params_and_inf_nchi2_round_trips_as_standard_json():
    failed = FitResult(
        ansatz=parse_ansatz("params[0] * np.log(-x**2 - params[1]**2)").text,
        params=[float("nan"), -0.0],
        nchi2=float("inf"),
        success=False,
        message="non-finite",
    )
    text = to_json(failed)
    strict_loads(text)  # no NaN/Infinity literals
    back = from_json(text)
    assert_same_result(failed, back)
    assert np.signbit(back.params[1])  # -0.0 survives


def test_run_round_trip(run, tmp_path):
    assert len(run) == 3
    text = to_json(run)
    strict_loads(text)
    back = from_json(text)
    assert isinstance(back, GeneticRun)
    assert len(back) == len(run)
    for pa, pb in zip(run.populations, back.populations, strict=True):
        assert len(pa) == len(pb)
        for a, b in zip(pa, pb, strict=True):
            assert_same_result(a, b)
    for a, b in zip(run.archive, back.archive, strict=True):
        assert_same_result(a, b)
    assert back.stats == run.stats
    assert (back.proposer, back.stop_reason, back.parsimony_rtol) == (
        run.proposer,
        run.stop_reason,
        run.parsimony_rtol,
    )
    assert back.best.ansatz == run.best.ansatz
    assert [r.ansatz for r in back.pareto_front] == [r.ansatz for r in run.pareto_front]
    # A result shared by populations and archive is stored once and shared again.
    top = run.archive[0]
    where = [(g, k) for g, pop in enumerate(run.populations) for k, r in enumerate(pop) if r is top]
    assert where
    g, k = where[0]
    assert back.populations[g][k] is back.archive[0]
    assert len(strict_loads(text)["results"]) < sum(map(len, run.populations)) + len(run.archive)


def test_save_and_load_files(run, tmp_path):
    path = run.save(tmp_path / "sub" / "run.json")
    assert path.exists()
    back = GeneticRun.load(path)
    assert back.stats == run.stats
    assert [r.ansatz for r in back.archive] == [r.ansatz for r in run.archive]
    doc = strict_loads(path.read_text())
    assert doc["kind"] == "genetic_run" and doc["schema"] == SCHEMA and "llmlex" in doc

    best = save_result(run.best, tmp_path / "best.json")
    assert_same_result(run.best, load_result(best))


def test_wrong_kind_is_a_clear_error(run, tmp_path):
    path = save_result(run.best, tmp_path / "best.json")
    with pytest.raises(PersistError, match="expected a document of kind 'genetic_run'"):
        GeneticRun.load(path)
    with pytest.raises(PersistError, match="kind 'fit_result'"):
        from_json(to_json(run), kind="fit_result")


def test_newer_schema_is_refused_with_upgrade_hint(run):
    doc = strict_loads(to_json(run))
    doc["schema"] = SCHEMA + 1
    doc["llmlex"] = "9.9.9"
    with pytest.raises(PersistError, match=r"schema 2, written by llmlex 9\.9\.9.*upgrade"):
        from_json(json.dumps(doc))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not a JSON document"),
        ('{"a": 1}', "not an llmlex document"),
        ("[1, 2]", "not an llmlex document"),
    ],
)
def test_not_a_document(text, match):
    with pytest.raises(PersistError, match=match):
        from_json(text)


def test_loading_never_evaluates_code(tmp_path):
    doc = strict_loads(to_json(fit_ansatz("params[0]*x", X, 2 * X)))
    marker = tmp_path / "pwned"
    doc["result"]["ansatz"] = f"__import__('os').system('touch {marker}')"
    doc["result"]["params"] = []
    with pytest.raises(PersistError, match="does not parse"):
        from_json(json.dumps(doc))
    assert not marker.exists()


def test_damaged_documents_give_persist_errors(run):
    doc = strict_loads(to_json(run))
    doc["results"][0]["params"].append(1.0)
    with pytest.raises(PersistError, match="parameters but"):
        from_json(json.dumps(doc))
    doc = strict_loads(to_json(run))
    doc["populations"][0][0] = 10_000
    with pytest.raises(PersistError, match="out of range"):
        from_json(json.dumps(doc))
    doc = strict_loads(to_json(run))
    del doc["stats"]["calls"]
    with pytest.raises(PersistError, match="'calls'"):
        from_json(json.dumps(doc))
    doc = strict_loads(to_json(run))
    doc["results"][0]["nchi2"] = "lots"
    with pytest.raises(PersistError, match="not a number"):
        from_json(json.dumps(doc))


def test_to_json_rejects_other_objects():
    with pytest.raises(TypeError, match="cannot save a dict"):
        to_json({"a": 1})
