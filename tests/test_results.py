"""The result protocol (llmlex._results.Result) that export, plots and persist dispatch on."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from llmlex import persist
from llmlex._kan_results import Candidate, KANSymbolicResult
from llmlex._report import report
from llmlex._results import GeneticRun, Result, RunStats
from llmlex.fit import FitResult, fit_ansatz

X = np.linspace(0.1, 2.0, 30)


def _fit() -> FitResult:
    return fit_ansatz("params[0]*np.exp(params[1]*x)", X, 2.0 * np.exp(-0.5 * X))


def _run() -> GeneticRun:
    r = _fit()
    return GeneticRun(
        populations=((r,),), archive=(r,), stats=RunStats(), proposer="t", stop_reason="s"
    )


def _kan() -> KANSymbolicResult:
    x0, x1 = sympy.symbols("x0 x1", real=True)
    expr = x0 * sympy.exp(-x1)
    return KANSymbolicResult(
        output=0,
        expression=expr,
        text="x0*np.exp(-x1)",
        raw_expression=expr,
        variables=("x0", "x1"),
        nchi2_train=0.0,
        nchi2_test=1e-30,
        r2_train=1.0,
        r2_test=1.0,
        complexity=6,
        raw_complexity=6,
        assembly_error=0.0,
        structure_error=0.0,
        kan_error=0.0,
        llm_calls=0,
        llm_calls_saved=0,
        timings={"total": 1.0},
        candidates=(Candidate("raw", "x0*exp(-x1)", 1e-30, 6, True),),
    )


@pytest.mark.parametrize("make", [_fit, _run, _kan], ids=["fit", "run", "kan"])
def test_every_result_type_follows_the_protocol(make):
    r = make()
    assert isinstance(r, Result)
    assert isinstance(r.expression, sympy.Expr)
    assert isinstance(r.complexity, int) and np.isfinite(r.nchi2)
    X2 = np.column_stack([X, X]) if len(r.variables) > 1 else X
    assert r.predict(X2).shape == (X.size,)
    pts, chosen = r.pareto_points()
    assert pts and chosen is not None
    text = report(r)
    assert text.splitlines()[0].startswith("formula")
    assert type(r).from_document(r.to_document()).expression == r.expression


def test_persist_dispatches_on_each_kind_and_nothing_else():
    assert set(persist.KINDS) == {"fit_result", "genetic_run", "kan_result", "genetic_checkpoint"}
    for make in (_fit, _run, _kan):
        r = make()
        back = persist.from_json(persist.to_json(r))
        assert type(back) is type(r)
    with pytest.raises(TypeError, match="cannot save a dict"):
        persist.to_json({"kind": "fit_result"})
