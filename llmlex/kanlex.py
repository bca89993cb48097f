"""The reference library's module path ``llmlex.kanlex``, for code written for it.

``from llmlex.kanlex import KANLEX, run_complete_pipeline`` works as it does there:
:class:`KANLEX` is llmlex's own (:mod:`llmlex.kan`), with the reference's methods,
positional orders and return shapes.  pykan's ``KAN`` and ``create_dataset`` are
reachable here too, as in the reference (importing them needs the ``llmlex[kan]``
extra; importing this module does not).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

from llmlex.kan import KANLEX, kan_to_symbolic

__all__ = ["KANLEX", "kan_to_symbolic", "run_complete_pipeline"]

#: pykan's names this module also offers, imported on first use.
_PYKAN_NAMES = ("KAN", "create_dataset")


def __getattr__(name: str) -> Any:
    if name in _PYKAN_NAMES:
        return getattr(importlib.import_module("kan"), name)
    raise AttributeError(f"module 'llmlex.kanlex' has no attribute {name!r}")


def run_complete_pipeline(
    client: Any,
    f: Callable[[Any], Any],
    ranges: Sequence[float] = (-math.pi, math.pi),
    width: Sequence[Any] = (1, 4, 1),
    grid: int = 7,
    k: int = 3,
    train_steps: int = 50,
    generations: int = 3,
    gpt_model: str = "openai/gpt-4o",
    device: str = "cpu",
    node_th: float = 0.2,
    edge_th: float = 0.2,
    custom_system_prompt_for_second_simplification: str | None = None,
    optimiser: str = "LBFGS",
    population: int = 10,
    temperature: float = 0.1,
    exit_condition: float | None = None,
    verbose: int = 0,
    use_async: bool = True,
    plot_fit: bool = True,
    plot_parents: bool = False,
    demonstrate_parent_plotting: bool = False,
    seed: int = 17,
    constant_on_failure: bool = False,
    simplification_gpt_model: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Build a :class:`KANLEX` and run :meth:`KANLEX.run_complete_pipeline` on ``f``.

    The reference library's function, with its arguments (``client=None`` runs offline);
    ``options`` go to :meth:`KANLEX.get_symbolic`.

    Returns
    -------
    dict
        What :meth:`KANLEX.run_complete_pipeline` returns, plus ``kanlex``, the object.
    """
    kl = KANLEX(client=client, width=list(width), grid=grid, k=k, seed=seed, device=device)
    out = kl.run_complete_pipeline(
        client=client,
        f=f,
        ranges=ranges,
        train_steps=train_steps,
        generations=generations,
        gpt_model=gpt_model,
        node_th=node_th,
        edge_th=edge_th,
        custom_system_prompt_for_second_simplification=custom_system_prompt_for_second_simplification,
        optimiser=optimiser,
        population=population,
        temperature=temperature,
        exit_condition=exit_condition,
        verbose=verbose,
        use_async=use_async,
        plot_fit=plot_fit,
        plot_parents=plot_parents,
        demonstrate_parent_plotting=demonstrate_parent_plotting,
        constant_on_failure=constant_on_failure,
        simplification_gpt_model=simplification_gpt_model,
        **options,
    )
    out["kanlex"] = kl
    return out
