"""Fitted values written into an ansatz (llmlex._formula) and FitResult.formula."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from llmlex._formula import write_values
from llmlex.ansatz import parse_ansatz
from llmlex.fit import FitResult, fit_ansatz


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("params[0]*x + params[1]", ["2", "-0.5"], "2 * x - 0.5"),
        ("x - params[0]", ["-0.5"], "x + 0.5"),
        ("x*params[0]", ["-2"], "x * (-2)"),
        ("x/params[0]", ["-2"], "x / (-2)"),
        ("x**params[0]", ["-2"], "x ** (-2)"),
        ("params[0]**x", ["-2"], "(-2) ** x"),
        ("-params[0]*x", ["-3"], "3 * x"),
        ("x - params[0]*x", ["-2"], "x + 2 * x"),
        ("x + -params[0]", ["-1"], "x + 1"),
        ("x - (params[0] + x)", ["-1"], "x - (-1 + x)"),
        (
            "np.exp(params[0]*x) + params[1]*np.sin(params[2]*x)",
            ["-1.5", "-2", "-3"],
            "np.exp(-1.5 * x) - 2 * np.sin(-3 * x)",
        ),
        ("np.where(x > params[0], x, params[1])", ["-1", "-2"], "np.where(x > -1, x, -2)"),
        ("params[0]*x + params[1]", ["nan", "-inf"], "nan * x - inf"),
        ("params[0]*x + params[1]", ["1e-05", "-1e+20"], "1e-05 * x - 1e+20"),
    ],
)
def test_signs_are_folded_into_the_operators(text, values, expected):
    assert write_values(parse_ansatz(text)._tree, values) == expected


@pytest.mark.parametrize("seed", range(30))
def test_random_signs_never_give_plus_minus_and_evaluate_to_the_same_values(seed):
    rng = np.random.default_rng(seed)
    text = (
        "params[0]*x + params[1] - params[2]*np.exp(params[3]*x) + x/params[4]"
        " - x**params[5] * params[6] - (-params[7])"
    )
    a = parse_ansatz(text)
    p = rng.choice([-1.0, 1.0], a.n_params) * rng.uniform(0.5, 2.0, a.n_params)
    out = write_values(a._tree, [repr(float(v)) for v in p])
    flat = out.replace(" ", "")
    assert "+-" not in flat and "--" not in flat and "-(-" not in flat
    x = np.linspace(0.5, 2.0, 7)
    got = eval(compile(ast.parse(out, mode="eval"), "<formula>", "eval"), {"np": np, "x": x})
    np.testing.assert_allclose(got, a(x, p), rtol=1e-12)


def test_the_tree_is_not_modified():
    a = parse_ansatz("params[0]*x + params[1]")
    before = ast.dump(a._tree)
    write_values(a._tree, ["1", "-2"])
    assert ast.dump(a._tree) == before


def test_formula_rounds_each_constant_to_its_error():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 50)
    y = 2 * x - 0.5 + rng.normal(0, 0.02, x.size)
    r = fit_ansatz("params[0]*x + params[1]", x, y)
    e0, e1 = r.param_errors
    assert 1e-3 < e0 < 0.1 and 1e-3 < e1 < 0.1
    text = r.formula()
    assert " - " in text and "+ -" not in text
    first, second = text.split(" * x - ")
    # Two significant digits of the error: the last digit written is at the error's
    # second digit.
    assert len(first.split(".")[1]) == 1 - int(np.floor(np.log10(e0)))
    assert len(second.split(".")[1]) == 1 - int(np.floor(np.log10(e1)))
    assert r.formula(precision=2).startswith(f"{r.params[0]:.2g}")


def test_an_exact_fit_keeps_the_default_digits():
    x = np.linspace(0.1, 3, 40)
    r = fit_ansatz("params[0]*np.exp(params[1]*x)", x, 1.5 * np.exp(-0.25 * x))
    assert r.formula() == "1.5 * np.exp(-0.25 * x)"
    assert r.formula(3) == "1.5 * np.exp(-0.25 * x)"


def test_formula_of_a_result_without_errors_uses_precision():
    r = FitResult(ansatz="params[0]*x + params[1]", params=[1 / 3, -2 / 3], nchi2=0.0,
                  success=True, message="")  # fmt: skip
    assert r.formula() == "0.333333 * x - 0.666667"
    assert r.formula(3) == "0.333 * x - 0.667"
