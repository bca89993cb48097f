"""llmlex: symbolic regression with vision-capable language models (LLM-LEx).

Hand it data, get back a formula that fits, with its fitted parameters and score::

    import numpy as np
    import llmlex

    x = np.linspace(0.1, 5, 100)
    y = 2.5 * np.exp(-0.7 * x)
    run = llmlex.run_genetic(None, None, x, y)       # None: offline, no API key needed
    run.best.ansatz, run.best.params, run.best.nchi2

Pass an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client (any OpenAI-compatible
``base_url``: OpenRouter, OpenAI, Ollama, vLLM, llama.cpp) to have a vision model look at
the plot and propose the ansätze.  Multivariate data goes through Kolmogorov-Arnold
networks: ``llmlex.KANLEX`` and ``llmlex.kan_to_symbolic`` (extra ``llmlex[kan]``).

Modules: :mod:`llmlex.images` (plots), :mod:`llmlex.llm` (prompts and calls),
:mod:`llmlex.fit` (score and fitting), :mod:`llmlex.genetic` (the search),
:mod:`llmlex.batch` (many data sets on a process pool, Dask or Ray),
:mod:`llmlex.kan` (KANs), :mod:`llmlex.ansatz` (the safe expression language),
:mod:`llmlex.persist` (saving results), :mod:`llmlex.export` and :mod:`llmlex.plots`,
:mod:`llmlex.exceptions` (every error).  They are doors to private modules arranged in
layers whose imports point down; the README's "Architecture" section draws them.

Code written for the reference library (harveyThomas4692/llmlex) runs too: its module
paths :mod:`llmlex.llmlex`, :mod:`llmlex.kanlex` and :mod:`llmlex.response`, and its
top-level names (``async_single_call``, ``get_prompt``, ``call_model``, ...), are here,
outside ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import Any

from llmlex._clientspec import ClientSpec
from llmlex._version import __version__
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import LLMLExError
from llmlex.fit import FitResult, fit_ansatz, nchi2, score
from llmlex.genetic import GeneticRun, RunStats, arun_genetic, run_genetic, single_call

__all__ = [
    "KANLEX",
    "Ansatz",
    "ClientSpec",
    "FitResult",
    "GeneticRun",
    "LLMLExError",
    "LLMLExRegressor",
    "ReplyCache",
    "RunStats",
    "__version__",
    "arun_genetic",
    "arun_many",
    "fit_ansatz",
    "kan_to_symbolic",
    "load_result",
    "nchi2",
    "parse_ansatz",
    "plot_pareto",
    "plot_result",
    "report",
    "run_genetic",
    "run_many",
    "save_result",
    "score",
    "single_call",
]

# Submodules and names imported on first use: matplotlib, openai, torch and pykan are
# slow (or optional) imports that `import llmlex` must not pay for.
_LAZY_MODULES = {
    "ansatz",
    "batch",
    "cache",
    "estimator",
    "exceptions",
    "export",
    "fit",
    "genetic",
    "images",
    "kan",
    "kanlex",
    "llm",
    "llmlex",
    "offline",
    "persist",
    "plots",
    "response",
}
_LAZY_NAMES = {
    # The reference library's top-level names (its __init__ re-exports its llmlex.py).
    "APICallStats": "llmlex.response",
    "async_call_model": "llmlex.llm",
    "async_single_call": "llmlex.genetic",
    "call_model": "llmlex.llm",
    "check_key_usage": "llmlex.llm",
    "extract_ansatz": "llmlex.response",
    "fun_convert": "llmlex.response",
    "generate_base64_image": "llmlex.images",
    "generate_base64_image_with_parents": "llmlex.images",
    "get_n_chi_squared": "llmlex.fit",
    "get_prompt": "llmlex.llm",
    # llmlex's own.
    "KANLEX": "llmlex.kan",
    "LLMLExRegressor": "llmlex.estimator",
    "ReplyCache": "llmlex.cache",
    "arun_many": "llmlex.batch",
    "kan_to_symbolic": "llmlex.kan",
    "load_result": "llmlex.persist",
    "plot_pareto": "llmlex.plots",
    "plot_result": "llmlex.plots",
    "report": "llmlex.export",
    "run_many": "llmlex.batch",
    "save_result": "llmlex.persist",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"llmlex.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'llmlex' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_MODULES | set(_LAZY_NAMES))
