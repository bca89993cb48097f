"""The reference library's module path ``llmlex.llmlex``, for code written for it.

``from llmlex.llmlex import single_call, run_genetic, async_single_call`` and
``import llmlex.llmlex`` work as they do there; the functions are llmlex's own
(:mod:`llmlex.genetic`), which keep the reference's signatures and return shapes.
``kan_to_symbolic`` is here too (its network comes from pykan: the ``llmlex[kan]``
extra).
"""

from __future__ import annotations

from llmlex.genetic import arun_genetic, async_single_call, run_genetic, single_call
from llmlex.images import generate_base64_image, generate_base64_image_with_parents
from llmlex.kan import kan_to_symbolic
from llmlex.llm import async_call_model, call_model, check_key_usage, get_prompt
from llmlex.response import APICallStats, extract_ansatz, fun_convert

__all__ = [
    "APICallStats",
    "arun_genetic",
    "async_call_model",
    "async_single_call",
    "call_model",
    "check_key_usage",
    "extract_ansatz",
    "fun_convert",
    "generate_base64_image",
    "generate_base64_image_with_parents",
    "get_prompt",
    "kan_to_symbolic",
    "run_genetic",
    "single_call",
]
