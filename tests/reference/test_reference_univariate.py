"""The reference library's univariate call patterns, as its README and notebooks write them.

Every test is a notebook cell of the reference (harveyThomas4692/llmlex: README, Examples/
simple_example, special_example, fit_functions, fit_functions_with_noise, open_llm,
raw_data_examples) run against llmlex and the local OpenAI-compatible server, which
answers in the reply styles models use.  The cells are written here from the call
patterns, not copied.
"""

from __future__ import annotations

import pickle

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from reference_helpers import REFUSAL, StyledReplies

import llmlex
from llmlex.exceptions import NoValidAnsatzError

#: The eight keys of the reference's result dict.
RESULT_KEYS = {
    "params",
    "score",
    "ansatz",
    "Num_params",
    "response",
    "prompt",
    "function_list",
    "stats",
}


def _image(x, y):
    fig, ax = plt.subplots()
    ax.scatter(x, y)
    try:
        return llmlex.images.generate_base64_image(fig, ax, x, y)
    finally:
        plt.close(fig)


def _evaluate_as_a_notebook_does(ansatz, x, params):
    # The reference's notebooks eval() the ansatz with x, params and np in scope; the text
    # llmlex returns must be such a bare numpy expression.  (The test evaluates llmlex's
    # normalised output with no builtins, as a check of that contract.)
    return eval(ansatz, {"__builtins__": {}}, {"np": np, "x": x, "params": params})


def test_readme_basic_usage(reference_server, decay):
    client = reference_server.client()
    x, y = decay
    base64_img = _image(x, y)
    result = llmlex.single_call(client, base64_img, x, y, model="openai/gpt-4o")
    assert set(result.keys()) >= RESULT_KEYS
    assert isinstance(result["params"], np.ndarray)
    assert isinstance(result["score"], float) and result["score"] <= 0
    assert result["score"] > -1e-8  # the server proposed the true form
    assert result["Num_params"] == len(result["params"])
    assert "exp" in result["ansatz"]
    assert isinstance(result["response"], str) and "params[0]" in result["response"]
    assert "x" in result["prompt"]
    assert result["function_list"] is None  # the first call sees no parents
    assert "API Call Statistics" in str(result["stats"])
    fitted = _evaluate_as_a_notebook_does(result["ansatz"], x, result["params"])
    assert np.allclose(fitted, y, rtol=1e-6)
    assert reference_server.requests[0]["model"] == "openai/gpt-4o"

    populations = llmlex.run_genetic(
        client, base64_img, x, y, population_size=5, num_of_generations=3, model="openai/gpt-4o"
    )
    assert 1 <= len(populations) <= 3
    assert all(1 <= len(p) <= 5 for p in populations)


def test_notebook_genetic_cell_positional_and_its_consumption(reference_server, decay):
    """simple_example / fit_functions: sizes positional, every reference keyword."""
    client = reference_server.client()
    x, y = decay
    y = y + np.random.default_rng(0).normal(0.0, 0.01, x.size)  # never fitted exactly
    base64_image = _image(x, y)
    population_size, num_of_generations = 4, 3
    res = llmlex.run_genetic(
        client,
        base64_image,
        x,
        y,
        population_size,
        num_of_generations,
        temperature=1.0,
        model="openai/gpt-4o",
        system_prompt=None,
        elite=True,
        use_async=True,
        exit_condition=1e-30,  # never met: every generation runs
        seed=0,
    )
    assert len(res) == num_of_generations
    # The elite takes one of the places: every population keeps its size.
    assert all(len(gen) <= population_size for gen in res)
    # Each population ascending by score: the last is the generation's best.
    for gen in res:
        scores = [ind["score"] for ind in gen]
        assert scores == sorted(scores)
    best = max((item for sublist in res for item in sublist), key=lambda item: item["score"])
    assert res[-1][-1]["score"] == max(ind["score"] for ind in res[-1])
    assert best["score"] >= res[-1][-1]["score"]
    assert best["ansatz"] and len(best["params"]) == best["Num_params"]
    assert best["score"] > -1e-2
    # Later generations saw parents: function_list lists them as (ansatz, params).
    shown = [ind["function_list"] for gen in res[1:] for ind in gen if ind["function_list"]]
    assert shown and all(isinstance(a, str) and isinstance(p, np.ndarray) for a, p in shown[0])
    assert all(ind["function_list"] is None for ind in res[0])
    finite = [[ind for ind in gen if np.isfinite(ind["score"])] for gen in res]
    assert sum(map(len, finite)) == sum(map(len, res))
    # The notebooks pickle their result lists.
    again = pickle.loads(pickle.dumps([res]))
    assert again[0][-1][-1]["ansatz"] == res[-1][-1]["ansatz"]
    # Positional system_prompt (the reference's order: ..., exit_condition, system_prompt, elite).
    reference_server.reset()
    llmlex.run_genetic(
        client, base64_image, x, y, 2, 1, 1.0, "openai/gpt-4o", 1e-5, "be brief", True, seed=0
    )
    assert reference_server.requests[0]["messages"][0]["content"] == "be brief"


def test_special_functions_with_imports(fake_openai):
    """special_example: scipy.special under the reference's import lines."""
    fake_openai.reply_with(StyledReplies("params[0] * special.erf(params[1] * x)"))
    client = fake_openai.client()
    x = np.linspace(-2, 2, 60)
    y = 1.5 * __import__("scipy").special.erf(0.8 * x)
    my_imports = ["import numpy as np", "from scipy import special"]
    sys_prompt = "You are a symbolic regression expert. Use scipy.special where it helps."
    r = llmlex.single_call(
        client,
        _image(x, y),
        x,
        y,
        model="openai/gpt-4o",
        function_list=None,
        system_prompt=sys_prompt,
        imports=my_imports,
    )
    assert "erf" in r["ansatz"] and r["score"] > -1e-8
    assert "from scipy import special" in r["prompt"]
    res = llmlex.run_genetic(
        client, None, x, y, 3, 2, system_prompt=sys_prompt, imports=my_imports, seed=0
    )
    assert max((i for g in res for i in g), key=lambda i: i["score"])["score"] > -1e-8


def test_imports_that_would_run_code_are_refused(reference_server, decay):
    x, y = decay
    with pytest.raises(ValueError, match="never executes import lines"):
        llmlex.run_genetic(reference_server.client(), None, x, y, 2, 1, imports=["import os"])
    with pytest.raises(ValueError, match="never executes"):
        llmlex.single_call(None, None, x, y, imports=["from scipy.special import *"])


def test_function_list_shows_parents_to_the_model(reference_server, decay):
    client = reference_server.client()
    x, y = decay
    parents = [
        ("params[0] * np.exp(-params[1] * x)", [2.0, 0.5]),
        ("params[0] * x", np.array([1.0])),
    ]
    r = llmlex.single_call(client, None, x, y, "openai/gpt-4o", parents)
    assert [a for a, _ in r["function_list"]] == [
        "params[0] * np.exp(-params[1] * x)",
        "params[0] * x",
    ]
    assert np.allclose(r["function_list"][0][1], [2.0, 0.5])
    # The model is shown them (in the units the search works in: here x / 0.1).
    text = reference_server.requests[-1]["messages"][-1]["content"][0]["text"]
    assert "params[0] * np.exp(-params[1] *" in text and "[2, 0.5]" in text
    with pytest.raises(ValueError, match="function_list"):
        llmlex.single_call(client, None, x, y, function_list=[("params[0] * np.exp(", [1.0])])


def test_max_retries_and_stats(fake_openai, decay):
    """A refusal, then an answer: max_retries retries; stats counts both attempts."""
    x, y = decay
    fake_openai.enqueue(REFUSAL)
    fake_openai.reply_with("params[0] * np.exp(-params[1] * x)")
    client = fake_openai.client()
    stats = llmlex.response.APICallStats()
    r = llmlex.single_call(client, None, x, y, max_retries=2, stats=stats)
    assert r["score"] > -1e-8
    assert r["stats"] is None  # as the reference: the caller's object holds the counts
    assert stats.success_count >= 1 and stats.total_failures() >= 1
    assert fake_openai.calls == 2
    fake_openai.reset()
    fake_openai.reply_with(REFUSAL)
    with pytest.raises(NoValidAnsatzError):
        llmlex.single_call(client, None, x, y, max_retries=1)
    assert fake_openai.calls == 2  # max_retries + 1 attempts


def test_constant_on_failure_returns_the_constant(fake_openai, decay):
    x, y = decay
    fake_openai.reply_with(REFUSAL)
    res = llmlex.run_genetic(
        fake_openai.client(), None, x, y, 2, 1, constant_on_failure=True, max_unparseable=None
    )
    best = max((i for g in res for i in g), key=lambda i: i["score"])
    assert best["ansatz"] == "params[0]"
    assert np.isclose(best["params"][0], np.mean(y), rtol=0.2)
    assert "constant_on_failure" in res.stop_reason


def test_reference_keywords_without_effect_are_accepted(reference_server, decay):
    x, y = decay
    res = llmlex.run_genetic(
        reference_server.client(),
        None,
        x,
        y,
        2,
        1,
        use_async=False,
        for_kan=False,
        plot_parents=True,
        demonstrate_parent_plotting=False,
        disable_parse_warnings=True,
    )
    assert len(res) == 1


def test_async_single_call(reference_server, decay):
    import asyncio

    x, y = decay

    async def main():
        client = reference_server.async_client()
        try:
            return await llmlex.llmlex.async_single_call(client, _image(x, y), x, y)
        finally:
            await client.close()

    r = asyncio.run(main())
    assert {"ansatz", "params", "score", "Num_params"} <= set(r.keys())
    assert r["score"] > -1e-8


def test_open_llm_style_ollama_client(reference_server, decay):
    """open_llm notebooks: a local server's client, a model name of its own."""
    import openai

    client = openai.OpenAI(base_url=reference_server.base_url, api_key="ollama")
    x, y = decay
    res = llmlex.run_genetic(client, _image(x, y), x, y, 3, 2, model="llama3.2-vision", seed=0)
    assert reference_server.requests[0]["model"] == "llama3.2-vision"
    assert max((i for g in res for i in g), key=lambda i: i["score"])["score"] > -1e-8
