"""Multivariate symbolic regression through Kolmogorov-Arnold networks (pykan).

A trained KAN is a sum-and-compose network of univariate edge functions.  This module

1. regresses every active edge as a univariate problem (:func:`kan_to_symbolic`), cheap
   first: a constant, a line, then the offline proposer, and the language model only for
   edges that still miss ``exit_condition``;
2. assembles the network's formula exactly with sympy -- node and subnode scales and
   biases, multiplication nodes, edges fixed symbolic in pykan -- and checks, before
   anything else, that the formula reproduces a numerical replica of the network built
   from the same edge functions, and that the replica with pykan's own splines reproduces
   the network's output (:func:`assemble_expressions`, :func:`symbolic_from_edges`);
3. simplifies without ever making the fit worse: formulas built from the network's
   structure (products, sums, invariant combinations: :mod:`llmlex._separable`, with the
   network as a surrogate of the data), sympy under a time limit, then (with a client) an
   LLM asked for equivalent simpler forms, parsed by a whitelist; each candidate is
   refitted on the original data and kept only if its held-out nchi2 stays within a
   tolerance of the raw formula's; constants are snapped to simple values on the same rule;
4. refits the constants of the chosen formula on the original data.

Error bars of the data (``sigma_train``/``sigma_test`` of :meth:`KANLEX.set_dataset`, or
of :func:`symbolic_from_edges`) weight every step that fits the data -- the network's
training loss, the constants' refits (chi-squared) and the held-out score candidates are
judged by (chi-squared per point) -- and each :class:`KANSymbolicResult` then reports
``chi2_train``/``dof_train`` (``reduced_chi2``).  Step 1 fits the network's own curves,
not the data, and takes none.

:class:`KANLEX` wraps training (several seeds within a time budget, best by test loss) and
the steps above behind the reference library's ``get_symbolic``.

Settings
--------
The entry points keep the reference library's names: in ``kan_to_symbolic(model, client,
...)`` and ``KANLEX.get_symbolic(client, population, generations, temperature,
gpt_model, ...)``, ``model`` is the network and ``gpt_model`` the language model;
``population`` and ``generations`` size each edge's genetic search.  The univariate API's
names for the last two, ``population_size=`` and ``num_of_generations=``
(:func:`llmlex.run_genetic`), are accepted as keyword aliases; giving both spellings of
one setting is a ``TypeError``.

Layout
------
This module is the door; the work lives in private modules by concern, whose imports
point down this list (none imports this module):

- :mod:`llmlex._forms`: the one library of simple one-variable forms (``EDGE_LIBRARY``);
- :mod:`llmlex._kan_types`: ``EdgeTask``, ``EdgeFit``, ``EdgeResult``, ``KANEdges``;
- :mod:`llmlex._kan_torch`: the only module that imports torch and pykan -- reading a
  network's edges, running it, creating and training it;
- :mod:`llmlex._kan_assembly`: the exact sympy assembly and its numerical replica;
- :mod:`llmlex._kan_checkpoint`: the edge checkpoint (kind ``kan_edges_checkpoint``);
- :mod:`llmlex._kan_edges`: :func:`regress_edge`, edge alternatives and weighted errors,
  :func:`kan_to_symbolic`;
- :mod:`llmlex._kan_simplify`: the LLM's simpler forms of a formula;
- :mod:`llmlex._kan_select`: :func:`symbolic_from_edges`, the candidates and their judge;
- :mod:`llmlex._kanlex`: :class:`KANLEX`, :class:`TrainingRun`, :class:`TrainingReport`.

:mod:`llmlex._kan_sympy` (safe evaluation, constant fits and snapping) and
:mod:`llmlex._separable` (structure from a surrogate) sit below them.  torch and pykan
are imported inside the functions that need them (``pip install "llmlex[kan]"``), so
``import llmlex.kan`` needs neither; pykan's checkpoints always go to a temporary
directory.
"""

from __future__ import annotations

from llmlex._forms import EDGE_LIBRARY
from llmlex._kan_assembly import assemble_expressions
from llmlex._kan_checkpoint import EDGES_CHECKPOINT_KIND
from llmlex._kan_edges import edge_weighted_error, kan_to_symbolic, regress_edge
from llmlex._kan_results import Candidate, KANSymbolicResult
from llmlex._kan_select import EDGE_ERROR_BUDGETS, symbolic_from_edges
from llmlex._kan_torch import extract_edges
from llmlex._kan_types import (
    DEFAULT_EXIT_CONDITION,
    EDGE_PARSIMONY_RTOL,
    EdgeFit,
    EdgeRegressor,
    EdgeResult,
    EdgeStatus,
    EdgeTask,
    KANEdges,
    Key,
)
from llmlex._kanlex import KANLEX, TrainingReport, TrainingRun
from llmlex.exceptions import AssemblyError

__all__ = [
    "DEFAULT_EXIT_CONDITION",
    "EDGES_CHECKPOINT_KIND",
    "EDGE_ERROR_BUDGETS",
    "EDGE_LIBRARY",
    "EDGE_PARSIMONY_RTOL",
    "KANLEX",
    "AssemblyError",
    "Candidate",
    "EdgeFit",
    "EdgeRegressor",
    "EdgeResult",
    "EdgeStatus",
    "EdgeTask",
    "KANEdges",
    "KANSymbolicResult",
    "Key",
    "TrainingReport",
    "TrainingRun",
    "assemble_expressions",
    "edge_weighted_error",
    "extract_edges",
    "kan_to_symbolic",
    "regress_edge",
    "symbolic_from_edges",
]
