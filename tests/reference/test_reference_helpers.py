"""The reference library's helper functions and module paths, as its notebooks and tests
call them: prompts and raw calls, key credit, fitting a caller's function, images,
reading replies.  Against llmlex and the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import importlib
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from reference_helpers import REFUSAL, REPLY_STYLES

import llmlex
from llmlex.exceptions import AnsatzError

X = np.linspace(0.0, 5.0, 50)
Y = 2.0 * X**2 + 3.0 * X + 1.0


# ------------------------------------------------------------------ module paths


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("llmlex.llmlex", ["single_call", "run_genetic", "async_single_call", "kan_to_symbolic"]),
        ("llmlex.llm", ["get_prompt", "call_model", "async_call_model", "check_key_limit"]),
        (
            "llmlex.fit",
            ["fit_curve", "get_n_chi_squared", "get_n_chi_squared_from_predictions"],
        ),
        ("llmlex.images", ["encode_image", "generate_base64_image", "plot_3d_function"]),
        ("llmlex.response", ["extract_ansatz", "fun_convert", "APICallStats"]),
        ("llmlex.kanlex", ["KANLEX", "run_complete_pipeline"]),
        ("llmlex", ["single_call", "run_genetic", "kan_to_symbolic", "async_single_call"]),
        ("llmlex", ["get_prompt", "call_model", "generate_base64_image", "APICallStats"]),
    ],
)
def test_the_reference_import_paths(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert callable(getattr(mod, name)), f"{module}.{name}"


def test_submodules_are_attributes_of_the_package():
    for name in ("images", "llm", "fit", "response", "llmlex"):
        assert getattr(llmlex, name).__name__ == f"llmlex.{name}"


# ------------------------------------------------------------------ prompts and calls


def test_get_prompt_is_the_reference_text():
    assert llmlex.llm.get_prompt() == (
        "import numpy as np\ncurve_0 = lambda x, *params: params[0] \ncurve_1 = lambda x, *params:"
    )
    text = llmlex.llm.get_prompt(
        [("params[0]*x", np.ones(1)), ("params[0]*np.sin(x)", [1.0])],
        imports=["import numpy as np", "from scipy import special"],
    )
    assert text == (
        "import numpy as np\nfrom scipy import special\n"
        "curve_0 = lambda x, *params: params[0]*x \n"
        "curve_1 = lambda x, *params: params[0]*np.sin(x) \n"
        "curve_2 = lambda x, *params:"
    )


def test_call_model_sends_the_reference_messages_and_returns_the_completion(fake_openai):
    fake_openai.reply_with(REPLY_STYLES["code block"]("params[0]*x**2 + params[1]"))
    client = fake_openai.client()
    image = llmlex.images.data_image(X, Y)
    prompt = llmlex.llm.get_prompt()
    response = llmlex.llm.call_model(client, "openai/gpt-4o", image, prompt, system_prompt="sys")
    assert "params[0]*x**2" in response.choices[0].message.content
    body = fake_openai.requests[-1]
    assert body["model"] == "openai/gpt-4o" and body["max_tokens"] == 4096
    system, user = body["messages"]
    assert system == {"role": "system", "content": "sys"}
    assert user["content"][0] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{image}"},
    }
    assert user["content"][1] == {"type": "text", "text": prompt}
    # The reply read the reference's way.
    ansatz, n = llmlex.response.extract_ansatz(response)
    assert (ansatz, n) == ("params[0]*x**2 + params[1]", 2)


def test_async_call_model_with_both_kinds_of_client(fake_openai):
    fake_openai.reply_with("params[0]*x")
    image = llmlex.images.data_image(X, Y)

    async def main():
        aclient = fake_openai.async_client()
        try:
            a = await llmlex.llm.async_call_model(aclient, "m", image, "p")
        finally:
            await aclient.close()
        b = await llmlex.llm.async_call_model(fake_openai.client(), "m", image, "p")
        return a, b

    a, b = asyncio.run(main())
    assert a.choices[0].message.content == b.choices[0].message.content == "params[0]*x"


def test_check_key_limit_before_and_after_as_the_notebooks_do(fake_openai):
    fake_openai.api_key = "test-key"
    client = fake_openai.client(api_key="test-key")
    start = llmlex.llm.check_key_limit(client)
    assert start == pytest.approx(10.0)
    fake_openai.reply_with("params[0] * np.exp(-params[1] * x)")
    llmlex.single_call(client, None, X, 2.5 * np.exp(-0.7 * X))
    spent = start - llmlex.llm.check_key_limit(client)
    assert spent == pytest.approx(fake_openai.cost_per_call * fake_openai.calls)
    assert llmlex.llm.check_key_usage(client) == pytest.approx(spent)
    fake_openai.credit = None
    assert llmlex.llm.check_key_limit(client) is None  # a key without a limit


def test_check_key_limit_returns_the_error_text_on_a_rejected_key(fake_openai, caplog):
    fake_openai.api_key = "right-key"
    client = fake_openai.client(api_key="wrong-key")
    with caplog.at_level(logging.ERROR, logger="llmlex"):
        answer = llmlex.llm.check_key_limit(client)
    assert isinstance(answer, str) and "No auth credentials" in answer
    assert any("API key check failed (HTTP 401)" in r.getMessage() for r in caplog.records)
    assert "wrong-key" not in caplog.text  # the key is never logged


# ------------------------------------------------------------------ fitting


def test_fit_curve_as_the_reference_tests_call_it():
    params, n_chi2 = llmlex.fit.fit_curve(X, Y, lambda x, a, b, c: a * x**2 + b * x + c, 3)
    assert np.allclose(params, [2.0, 3.0, 1.0]) and n_chi2 < 1e-6
    params, n_chi2 = llmlex.fit.fit_curve(X, Y, lambda x, *p: p[0] * x + p[1], 2)
    assert n_chi2 > 1e-3  # the wrong model
    noisy = Y + np.random.default_rng(0).normal(0.0, 0.5, X.size)
    params, n_chi2 = llmlex.fit.fit_curve(X, noisy, lambda x, *p: p[0] * x**2 + p[1] * x + p[2], 3)
    r2 = 1 - np.sum((noisy - (params[0] * X**2 + params[1] * X + params[2])) ** 2) / np.sum(
        (noisy - noisy.mean()) ** 2
    )
    assert n_chi2 < 0.5 and r2 > 0.95
    # A fit that fails is (ones, inf), never an exception.
    params, n_chi2 = llmlex.fit.fit_curve(X, Y, lambda x, *p: np.log(-1.0 - p[0] * x * x), 3)
    assert len(params) == 3 and n_chi2 == np.inf
    # The lambda text llmlex's single_call would pass, compiled safely.
    params, _ = llmlex.fit.fit_curve(
        X, Y, None, 3, curve_str="lambda x,*params: params[0]*x**2 + params[1]*x + params[2]"
    )
    assert np.allclose(params, [2.0, 3.0, 1.0])
    # The reference tests' JAX entry point (fitted with scipy here), from the text alone.
    text = "params[0]*np.exp(-params[1]*x)"
    params, n_chi2 = llmlex.fit.fit_curve_with_guess_jax(
        X, 2.5 * np.exp(-0.7 * X), None, [1.0, 1.0], numpy_curve_str=text
    )
    assert np.isfinite(n_chi2) and len(params) == 2 and np.allclose(params, [2.5, 0.7])
    params, _ = llmlex.fit.fit_curve_with_guess_jax(
        X, Y, None, [1.0, 1.0, 1.0], numpy_curve_str="lambda x, a, b, c: a*x**2 + b*x + c"
    )
    assert np.allclose(params, [2.0, 3.0, 1.0])


def test_get_n_chi_squared_and_from_predictions():
    f = lambda x, *p: p[0] * x**2 + p[1] * x + p[2]  # noqa: E731
    assert llmlex.fit.get_n_chi_squared(X, Y, f, [2.0, 3.0, 1.0]) == 0.0
    assert llmlex.fit.get_n_chi_squared_from_predictions(X, Y, Y) == 0.0
    offset = llmlex.fit.get_n_chi_squared_from_predictions(X, Y, Y + 1.0)
    assert offset == pytest.approx(llmlex.nchi2(Y, Y + 1.0)) and offset > 0
    # Two columns: curve(x0, x1, *params).
    X2 = np.column_stack([X, X**2])
    g = lambda a, b, *p: p[0] * a + p[1] * b  # noqa: E731
    assert llmlex.fit.get_n_chi_squared(X2, 3 * X + 2 * X**2, g, [3.0, 2.0]) == 0.0
    assert llmlex.fit.get_n_chi_squared(X, Y, lambda x, *p: 1 / 0, [1.0]) == np.inf


# ------------------------------------------------------------------ images


def test_encode_image_of_a_saved_plot(tmp_path):
    fig, ax = plt.subplots()
    ax.plot(X, Y)
    path = tmp_path / "plot.png"
    fig.savefig(path)
    plt.close(fig)
    text = llmlex.images.encode_image(str(path))
    assert text.startswith("iVBORw0KGgo")  # base64 of the PNG signature
    with pytest.raises(FileNotFoundError, match="Image file not found"):
        llmlex.images.encode_image(str(tmp_path / "missing.png"))


def test_generate_base64_image_in_the_notebook_pattern():
    fig, ax = plt.subplots()
    plt.xticks([X.min(), X.max()], [f"{X.min():2.0f}", f"{X.max():2.0f}"])
    img = llmlex.images.generate_base64_image(fig, ax, X, Y)
    plt.close(fig)
    assert isinstance(img, str) and img.startswith("iVBORw0KGgo")


def test_image_with_parents_and_3d_plot():
    img = llmlex.images.generate_base64_image_with_parents(
        X, Y, [("params[0]*x**2", [2.0]), ("params[0]*x + params[1]", np.array([10.0, -5.0]))]
    )
    assert img.startswith("iVBORw0KGgo")
    with pytest.raises(AnsatzError):
        llmlex.images.generate_base64_image_with_parents(X, Y, [("__import__('os')", [1.0])])
    fig = plt.figure()
    ax3 = fig.add_subplot(projection="3d")
    g = np.linspace(-1, 1, 10)
    Z = np.add.outer(g, g)
    _surface, ax = llmlex.images.plot_3d_function(g, g, Z, (g, g, 2 * g), "title", "viridis", ax3)
    assert ax is ax3 and ax.get_title() == "title"
    plt.close(fig)


# ------------------------------------------------------------------ reading replies


@pytest.mark.parametrize("style", sorted(REPLY_STYLES))
def test_extract_ansatz_in_every_reply_style(style):
    reply = REPLY_STYLES[style]("params[0] * np.sin(x) + params[1] * np.cos(x)")
    assert llmlex.response.extract_ansatz(reply) == (
        "params[0] * np.sin(x) + params[1] * np.cos(x)",
        2,
    )


def test_extract_ansatz_without_a_function_is_a_value_error():
    with pytest.raises(ValueError, match="No parameters found"):
        llmlex.response.extract_ansatz("This is a response with no function")
    with pytest.raises(ValueError, match="No parameters found"):
        llmlex.response.extract_ansatz(REFUSAL)


def test_fun_convert_compiles_without_eval():
    curve, n, text = llmlex.response.fun_convert(("params[0]*x**2 + params[2]", 3))
    assert n == 3 and text == "lambda x,*params: params[0]*x**2 + params[2]"
    assert np.allclose(curve(X, 2.0, 99.0, 1.0), 2 * X**2 + 1)
    curve, n, _ = llmlex.response.fun_convert("params[0] * np.exp(-params[1] * x)")
    assert np.allclose(curve(X, 2.5, 0.7), 2.5 * np.exp(-0.7 * X))
    with pytest.raises(ValueError, match="No parameters"):
        llmlex.response.fun_convert("np.sin(x)")
    with pytest.raises(ValueError):  # an AnsatzError: never run
        llmlex.response.fun_convert("params[0] * __import__('os').getpid()")


def test_api_call_stats_report():
    stats = llmlex.response.APICallStats()
    stats.stage_success("api_call")
    stats.stage_failure("ansatz_extraction", ValueError("No parameters found"), "no_parameters")
    stats.add_success()
    text = str(stats)
    assert text.startswith("API Call Statistics:")
    assert "Successful calls (end-to-end): 1" in text and "no parameters: 1" in text
    assert stats.get_stage_stats("api_call")["success_rate"] == 100.0
    assert stats.get_stage_stats("nope") is None
