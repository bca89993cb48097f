"""The options of a run: one frozen GeneticSettings behind run_genetic's visible keywords."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re

import numpy as np
import pytest

from llmlex import genetic
from llmlex._settings import COMPAT_OPTIONS, DEFAULTS, OPTIONS, GeneticSettings
from llmlex.genetic import arun_genetic, run_genetic, single_call
from llmlex.proposer import Proposal, ProposalBatch

X = np.linspace(-1, 1, 30)
Y = 2.0 * X + 1.0
DATA_ARGS = ("client", "base64_img", "x", "y", "sigma")


class Line:
    """Always proposes the exact form: every run stops after one generation."""

    name = "line"

    async def propose(self, request):
        return ProposalBatch(proposals=(Proposal("params[0]*x + params[1]"),), calls=1)


def documented_parameters(func) -> list[str]:
    """Names in the numpydoc Parameters section (``x, y : ...`` gives two)."""
    doc = inspect.getdoc(func) or ""
    section = doc.split("Parameters\n----------\n", 1)[1]
    section = re.split(r"\n(?:Returns|Raises|See Also)\n-+\n", section)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line and not line.startswith(" "):
            head = line.split(" : ")[0]
            names += [n.strip() for n in head.split(",")]
    return names


def keyword_parameters(func) -> dict[str, inspect.Parameter]:
    params = inspect.signature(func).parameters
    return {
        n: p
        for n, p in params.items()
        if n not in DATA_ARGS and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def test_every_documented_keyword_is_a_settings_field_and_vice_versa():
    documented = [n for n in documented_parameters(run_genetic) if n not in DATA_ARGS]
    assert documented[-1] == "**compat"
    assert sorted(documented[:-1]) == sorted(OPTIONS)


@pytest.mark.parametrize("func", [run_genetic, arun_genetic])
def test_signatures_are_the_settings_fields_with_their_defaults(func):
    params = keyword_parameters(func)
    assert list(params) == list(OPTIONS)
    for name, p in params.items():
        assert p.default == getattr(DEFAULTS, name), name
        assert p.annotation != inspect.Parameter.empty, name
    # The reference library's positional order, then keyword-only options.
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [
        "population_size",
        "num_of_generations",
        "temperature",
        "model",
        "exit_condition",
        "system_prompt",
        "elite",
    ]
    assert inspect.signature(func).parameters["compat"].kind is inspect.Parameter.VAR_KEYWORD


def test_known_options_are_derived_from_the_fields():
    assert tuple(f.name for f in dataclasses.fields(GeneticSettings)) == OPTIONS
    # single_call names these in its signature (the reference's positional order).
    named = set(inspect.signature(single_call).parameters)
    assert {"model", "system_prompt", "function_list", "imports"} <= named
    assert set(genetic._SINGLE_CALL_OPTIONS) == {"sigma", *OPTIONS} - {
        "population_size",
        "num_of_generations",
        "model",
        "system_prompt",
        "function_list",
        "imports",
    }


@pytest.mark.parametrize(
    ("typo", "nearest"),
    [("max_concurency", "max_concurrency"), ("checkpoints", "checkpoint"), ("seeed", "seed")],
)
def test_unknown_keyword_is_a_type_error_naming_the_nearest(typo, nearest):
    with pytest.raises(TypeError, match=rf"run_genetic\(\).*{typo!r}; did you mean {nearest!r}"):
        run_genetic(None, None, X, Y, 2, 1, proposer=Line(), progress=False, **{typo: 1})
    with pytest.raises(TypeError, match=rf"did you mean {nearest!r}"):
        asyncio.run(arun_genetic(None, None, X, Y, 2, 1, proposer=Line(), **{typo: 1}))
    with pytest.raises(TypeError, match=rf"single_call\(\).*did you mean {nearest!r}"):
        single_call(None, None, X, Y, proposer=Line(), **{typo: 1})


def test_unknown_keyword_far_from_everything_has_no_suggestion():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'zzz'$"):
        run_genetic(None, None, X, Y, 2, 1, proposer=Line(), zzz=1)


def test_single_call_sets_population_and_generations_itself():
    with pytest.raises(TypeError, match="single_call"):
        single_call(None, None, X, Y, proposer=Line(), population_size=3)


@pytest.mark.parametrize("name", COMPAT_OPTIONS)
def test_reference_keywords_are_accepted_and_ignored(name):
    run = run_genetic(None, None, X, Y, 2, 1, proposer=Line(), progress=False, **{name: True})
    assert run.best.nchi2 < 1e-10
    assert single_call(None, None, X, Y, proposer=Line(), **{name: True}).nchi2 < 1e-10


def test_settings_are_frozen_and_normalised():
    s = GeneticSettings(hints="periodic", allowed_functions=["sin", "exp"], cache="somewhere")
    assert s.hints == ("periodic",)
    assert s.allowed_functions == ("sin", "exp")
    assert s.seed == 0  # a cache keys replies by seed: None would never hit again
    assert GeneticSettings(cache="somewhere", seed=3).seed == 3
    assert GeneticSettings().seed is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 1  # type: ignore[misc]
    priced = GeneticSettings(prices={"m": [1, 2.5]})
    assert priced.price_of("m") == (1.0, 2.5) and priced.price_of("other") is None
    with pytest.raises(TypeError):
        priced.prices["m"] = (0.0, 0.0)  # type: ignore[index]
    assert priced.budgets.max_calls is None


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"population_size": 0}, "at least 1"),
        ({"num_of_generations": 0}, "at least 1"),
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"max_calls": 1.5}, "max_calls must be a non-negative integer"),
        ({"max_tokens": True}, "max_tokens must be a non-negative integer"),
        ({"max_cost": float("nan")}, "max_cost must be non-negative"),
        ({"prices": {"m": (1.0, float("inf"))}}, "finite and non-negative"),
    ],
)
def test_settings_validate_on_construction(options, match):
    with pytest.raises(ValueError, match=match):
        GeneticSettings(**options)


def test_settings_keywords_only():
    with pytest.raises(TypeError):
        GeneticSettings(5)  # type: ignore[misc]
