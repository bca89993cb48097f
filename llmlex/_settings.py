"""The options of a genetic run: one frozen dataclass that holds every default.

:class:`GeneticSettings` has one field per keyword option of
:func:`llmlex.genetic.run_genetic` (the signatures of ``run_genetic`` and
``arun_genetic`` take their defaults from it, and a test checks that the three agree).
Building it validates and normalises the options once; the search only reads it.
:data:`OPTIONS` -- the field names -- is what unknown keywords are checked against.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._llmcall import Budgets, check_prices
from llmlex._results import PARSIMONY_RTOL

if TYPE_CHECKING:
    import os

    from llmlex.cache import ReplyCache
    from llmlex.fit import FitResult
    from llmlex.proposer import Proposer

__all__ = [
    "COMPAT_OPTIONS",
    "DEFAULTS",
    "OPTIONS",
    "GeneticSettings",
    "check_imports",
    "check_keywords",
]

log = logging.getLogger(__name__)

#: Keywords of the reference library that are accepted and ignored: llmlex always runs
#: its calls concurrently (``use_async``), has one prompt for every data set
#: (``for_kan``), draws the parents whenever it shows them (``plot_parents``,
#: ``demonstrate_parent_plotting``), and never warns per unparseable reply -- they are
#: counted in ``run.stats.failures`` -- so there is nothing to disable
#: (``disable_parse_warnings``).
COMPAT_OPTIONS = (
    "use_async",
    "for_kan",
    "demonstrate_parent_plotting",
    "plot_parents",
    "disable_parse_warnings",
)

#: ``imports=`` lines llmlex accepts: numpy and scipy.special under any name.  They are
#: never executed -- the ansatz language already reads ``np.``, ``numpy.``, ``special.``,
#: ``scipy.special.`` and any alias of them -- only shown to the model.
_SAFE_IMPORT = re.compile(
    r"^(?:import\s+(?:numpy|scipy|scipy\.special)(?:\s+as\s+[A-Za-z_]\w*)?"
    r"|from\s+scipy\s+import\s+special(?:\s+as\s+[A-Za-z_]\w*)?"
    r"|from\s+(?:numpy|scipy\.special)\s+import\s+[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)$"
)


def check_imports(imports: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """The reference's ``imports=`` lines, checked: numpy and scipy.special only.

    Raises
    ------
    ValueError
        For any other line (``import os``, ``from math import *``, a statement), naming it
        and saying why: the reference executes these lines, llmlex never runs model
        output or caller strings as code.
    """
    if imports is None:
        return None
    lines = (imports,) if isinstance(imports, str) else tuple(imports)
    out = []
    for line in lines:
        if not isinstance(line, str):
            raise ValueError(f"imports must be strings, got {type(line).__name__}")
        text = " ".join(line.split())
        if not _SAFE_IMPORT.match(text):
            raise ValueError(
                f"imports: {line!r} is not accepted.  llmlex never executes import lines "
                "(the reference library does); it accepts imports of numpy and "
                "scipy.special, such as 'import numpy as np', 'from scipy import special' "
                "or 'import scipy.special as sp', whose functions the ansatz language "
                "already knows, and shows them to the model"
            )
        out.append(text)
    return tuple(out)


def _check_function_list(items: Any) -> tuple[tuple[str, tuple[float, ...]], ...] | None:
    """``[(ansatz, params), ...]`` as a tuple of (text, values); parsed later, with data."""
    if items is None:
        return None
    out = []
    for item in items:
        try:
            text, params = item
            values = tuple(float(v) for v in np.ravel(np.asarray(params, dtype=float)))
        except (TypeError, ValueError):
            raise ValueError(
                f"function_list entries must be (ansatz, params) pairs, got {item!r:.80}"
            ) from None
        if not isinstance(text, str):
            raise ValueError(f"function_list: an ansatz must be a string, got {text!r:.80}")
        out.append((text, values))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class GeneticSettings:
    """Every option of a genetic run, validated and normalised.

    Each field is the keyword of the same name of :func:`llmlex.genetic.run_genetic`,
    where its meaning is documented.  On construction ``hints`` becomes a tuple (a single
    string is one hint), ``allowed_functions`` a tuple, ``prices`` a read-only validated
    table, and ``seed=None`` becomes 0 when a ``cache`` is given (cached replies are keyed
    by the requests' seeds, which derive from it: a fixed default lets a re-run hit).

    Raises
    ------
    ValueError
        For a size, temperature, budget or price out of range.
    """

    population_size: int = 5
    num_of_generations: int = 3
    temperature: float = 1.0
    model: str = "openai/gpt-4o"
    exit_condition: float | None = None
    system_prompt: str | None = None
    elite: bool = True
    absolute_sigma: bool = False
    proposer: Proposer | None = None
    max_concurrency: int = 8
    hints: tuple[str, ...] = ()
    allowed_functions: tuple[str, ...] | None = None
    llm_temperature: float | None = None
    llm_max_tokens: int | None = None
    num_parents: int = 2
    hybrid: bool = False
    parsimony_rtol: float = PARSIMONY_RTOL
    fit_starts: int = 8
    fit_timeout: float | None = 5.0
    seed: int | None = None
    progress: bool = True
    callback: Callable[[int, tuple[FitResult, ...]], None] | None = None
    time_budget: float | None = None
    patience: int | None = None
    checkpoint: str | os.PathLike[str] | None = None
    resume: bool = True
    cache: ReplyCache | str | os.PathLike[str] | None = None
    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    prices: Mapping[str, tuple[float, float]] | None = None
    max_unparseable: int | None = 4
    polish: bool = True
    function_list: tuple[tuple[str, tuple[float, ...]], ...] | None = None
    imports: tuple[str, ...] | None = None
    constant_on_failure: bool = False

    def __post_init__(self) -> None:
        if self.population_size < 1 or self.num_of_generations < 1:
            raise ValueError("population_size and num_of_generations must be at least 1")
        limit = self.max_unparseable
        if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
            raise ValueError(f"max_unparseable must be a positive integer or None, got {limit!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self.budgets  # noqa: B018 - validates the three limits
        hints: Sequence[str] | str = self.hints
        allowed: Sequence[str] | None = self.allowed_functions
        normalised: dict[str, Any] = {
            "prices": None if self.prices is None else MappingProxyType(check_prices(self.prices)),
            "hints": (hints,) if isinstance(hints, str) else tuple(hints),
            "allowed_functions": None if allowed is None else tuple(allowed),
            "function_list": _check_function_list(self.function_list),
            "imports": check_imports(self.imports),
        }
        if self.cache is not None and self.seed is None:
            normalised["seed"] = 0
        for name, value in normalised.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def prompt_hints(self) -> tuple[str, ...]:
        """``hints``, plus the ``imports`` the model may use."""
        if not self.imports:
            return self.hints
        return (*self.hints, "You may use the functions of: " + "; ".join(self.imports))

    @property
    def budgets(self) -> Budgets:
        """The spending limits (``max_calls``, ``max_tokens``, ``max_cost``)."""
        return Budgets(max_calls=self.max_calls, max_tokens=self.max_tokens, max_cost=self.max_cost)

    def price_of(self, model: str) -> tuple[float, float] | None:
        """USD per million (prompt, completion) tokens of ``model``, if given."""
        return None if self.prices is None else self.prices.get(model)


#: Field names of :class:`GeneticSettings`: the keyword options of ``run_genetic``.
OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(GeneticSettings))

#: The defaults (read by the signatures of ``run_genetic`` and ``arun_genetic``).
DEFAULTS = GeneticSettings()


def check_keywords(extra: Mapping[str, Any], *, known: Collection[str], func: str) -> None:
    """Reject the keywords of ``extra`` that are neither ``known`` nor reference-compatible.

    Raises
    ------
    TypeError
        For the first unknown keyword, suggesting the nearest known one.
    """
    for name in extra:
        if name in known:
            continue
        if name in COMPAT_OPTIONS:
            log.debug("%s: option %r is accepted for compatibility and ignored", func, name)
            continue
        near = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise TypeError(f"{func}() got an unexpected keyword argument {name!r}{hint}")
