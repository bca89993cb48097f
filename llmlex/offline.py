"""The offline proposer: a feature-guided search that plays the language model's part.

No API key, no network: :class:`OfflineProposer` proposes ansätze in the same safe
language an LLM would, from the same information (the data and, after the first
generation, the parents with their scores).  It is a real search, not a lookup table:

* **First generation.**  A library of parametric primitives -- powers and roots, shifted
  logarithms, exponentials and gaussians, sinusoids with free frequency and phase (also of
  ``x**2``), sigmoids and ``tanh``, simple rational functions, compositions such as
  ``exp(sin(w*x))`` -- is instantiated with starting values read off the data (periodogram
  frequencies, log-log and semi-log slopes, the domain of ``x``).  Features of the data
  (:mod:`llmlex._features`) weight the primitives; full polynomials of degree 1..6,
  single primitives, sums and products of two primitives, and a primitive times a line are
  drawn from that weighted library with the request's seed.
* **Later generations.**  Structural edits of the parents on their sympy form: add a term,
  multiply by a term, compose with an affine or quadratic inner function, replace or drop a
  subtree, graft a subtree of another parent (crossover), turn literal constants into
  parameters, and *simplify*: fix parameters at negligible or simple values (0, integers,
  small fractions, multiples of pi) and refit the rest.  Simplification is ordinary model
  selection; it is what turns a fitted ``0.99999999*x**2 + 1e-13*x`` into ``x**2``.

Every candidate is fitted here with a small, count-bounded budget (never a wall-clock
budget, so that a seed fixes the output) and the best few are returned with their fitted
values as ``initial``, so the search around the proposer refits them in a millisecond.
Fits are cached per data set and ansatz; the cache never changes what is returned because
each fit is seeded by the ansatz text.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import logging
import math
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._features import DataFeatures, compute_features
from llmlex._offline_library import Prim, column, linear_start, primitives, render
from llmlex._offline_linear import Template, digits, linear_templates, short_number
from llmlex.ansatz import Ansatz, parse_ansatz
from llmlex.exceptions import AnsatzError
from llmlex.fit import FitResult, fit_ansatz, nchi2_scale
from llmlex.proposer import Proposal, ProposalBatch, ProposalRequest

if TYPE_CHECKING:
    import sympy

__all__ = ["OfflineProposer"]

log = logging.getLogger(__name__)


# Fits below this nchi2 are exact to rounding: differences under it say nothing.
_EXACT = 1e-20
# Candidates more complex than this (sympy nodes) are not proposed: an LLM would not
# write them either, and they overfit small samples.
_MAX_COMPLEXITY = 60
_MAX_PARAMS = 10
# Points used for the internal ranking fits (large data sets are thinned evenly).
_MAX_POINTS = 256
# Proposals per request chosen by description length before the nchi2 ranking.
_BY_LENGTH = 2


# --- sympy side ----------------------------------------------------------------------


def _sympy_of(text: str) -> sympy.Expr:
    """Sympy of a *checked* text, keeping the parameter indices as written."""
    from llmlex._symbolic import ast_to_sympy

    return ast_to_sympy(ast.parse(text, mode="eval").body)


def _params_of(expr: sympy.Expr) -> dict[int, sympy.Symbol]:
    out = {}
    for s in expr.free_symbols:
        name = s.name
        if name.startswith("p") and name[1:].isdigit():
            out[int(name[1:])] = s
    return out


def _simple_values(v: float, *, rel: float) -> list[float]:
    """Simple numbers within ``rel`` of ``v``: 0, integers, small fractions, pi multiples."""
    out: list[float] = []
    tol = rel * max(1.0, abs(v))
    if abs(v) <= tol:
        return [0.0]
    for den in (1, 2, 3, 4, 5, 6, 8, 10, 12):
        r = round(v * den) / den
        if abs(r - v) <= tol and r != 0:
            out.append(r)
            break
    for den in (1, 2, 3, 4, 6):
        r = round(v / math.pi * den) / den
        if r != 0 and abs(r * math.pi - v) <= tol:
            out.append(r * math.pi)
            break
    return out


def _number(value: float) -> sympy.Expr:
    import sympy

    for den in (1, 2, 3, 4, 5, 6, 8, 10, 12):
        if abs(value * den - round(value * den)) < 1e-12:
            return sympy.Rational(round(value * den), den)
        if abs(value / math.pi * den - round(value / math.pi * den)) < 1e-12:
            return sympy.Rational(round(value / math.pi * den), den) * sympy.pi
    return sympy.Float(value)


# --- the proposer --------------------------------------------------------------------


@dataclass(frozen=True)
class _Cand:
    """A candidate expression with starting values per original parameter index."""

    text: str
    initial: dict[int, float]


class _Data:
    """Per-data-set precomputation shared by the requests of a run."""

    def __init__(
        self,
        key: bytes,
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        feats: DataFeatures,
        prims: tuple[Prim, ...],
        cols: tuple[np.ndarray, ...],
        polys: tuple[_Cand, ...],
    ) -> None:
        self.key, self.x, self.y, self.w = key, x, y, w
        self.feats, self.prims, self.cols, self.polys = feats, prims, cols, polys
        # (screen residual, template, sampling weight), best screen first.
        self.combos: list[tuple[float, Template, float]] = []


def _screen(data: _Data) -> list[tuple[float, Template, float]]:
    """Every single, sum, product and line-times-primitive, scored by its linear start."""
    prims, cols, y, w = data.prims, data.cols, data.y, data.w
    out: list[tuple[float, Template, float]] = []

    def push(terms: list[Template], tcols: list[np.ndarray], weight: float) -> None:
        if any(not np.all(np.isfinite(c)) for c in tcols):
            return
        tpl, res = linear_start(terms, tcols, y, w)
        if np.isfinite(res):
            out.append((res, tpl, weight))

    n = len(prims)
    for i in range(n):
        a, ca = prims[i], cols[i]
        push([a.tokens], [ca], a.weight)
        push([a.tokens, ("x*", *a.tokens)], [ca, data.x * ca], 0.7 * a.weight)
        for j in range(i, n):
            b, cb = prims[j], cols[j]
            prod = (*a.tokens, "*", *b.tokens)
            push([prod], [ca * cb], a.weight * b.weight)
            if j > i:
                push([a.tokens, b.tokens], [ca, cb], a.weight * b.weight)
    # Rank by the screen, snapping exact-to-rounding residuals together; simpler first.
    out.sort(key=lambda t: (max(t[0], _EXACT), len(t[1])))
    return out


class OfflineProposer:
    """Propose ansätze without a language model (see the module docstring).

    Parameters
    ----------
    seed : int, optional
        Mixed into every request's seed, so that two proposers with different seeds
        explore differently on the same requests.
    candidates_per_request : int
        Proposals returned per request: the best-ranked fitted candidates, plus the best
        of a family of functions none of them uses (when there is one).
    fits_per_request : int
        Candidates fitted per request to rank them (bounds the work of one call).
    n_starts : int
        Optimiser starts of each ranking fit.
    fit_timeout : float or None
        Seconds each ranking fit may take (a safety net: they are also bounded by their
        evaluations); ``None``: no clock, so the proposals do not depend on the load.

    Notes
    -----
    ``propose`` runs its numerical work in a worker thread (:func:`asyncio.to_thread`),
    so it never blocks the event loop.  For a given ``seed`` and request (data, parents,
    ``request.seed``, allowed functions) the proposals are always the same.
    """

    name = "offline"

    def __init__(
        self,
        *,
        seed: int | None = None,
        candidates_per_request: int = 4,
        fits_per_request: int = 40,
        n_starts: int = 2,
        fit_timeout: float | None = 2.0,
    ) -> None:
        if candidates_per_request < 1:
            raise ValueError("candidates_per_request must be at least 1")
        if fits_per_request < 1:
            raise ValueError("fits_per_request must be at least 1")
        self.seed = seed
        self.candidates_per_request = int(candidates_per_request)
        self.fits_per_request = int(fits_per_request)
        self.n_starts = int(n_starts)
        self.fit_timeout = None if fit_timeout is None else float(fit_timeout)
        self._cache: dict[tuple[bytes, str, tuple[float, ...] | None], FitResult] = {}
        self._data: dict[bytes, _Data] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # The caches are rebuilt on demand (same proposals: they only save work); the
        # lock does not pickle.
        state = self.__dict__.copy()
        for name in ("_cache", "_data", "_lock"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("fit_timeout", 2.0)  # pickled before it existed
        self._cache = {}
        self._data = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OfflineProposer(seed={self.seed!r}, "
            f"candidates_per_request={self.candidates_per_request})"
        )

    async def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Propose candidate ansätze for one child (see the class docstring)."""
        proposals = await asyncio.to_thread(self.propose_sync, request)
        if not proposals:
            return ProposalBatch(failure=("parsing", "no valid candidate"), calls=0)
        return ProposalBatch(proposals=proposals, calls=0)

    # The synchronous core is public for callers without an event loop (and for tests).
    def propose_sync(self, request: ProposalRequest) -> tuple[Proposal, ...]:
        """Synchronous version of :meth:`propose`, returning the proposals."""
        data = self._prepare(request.x, request.y, request.allowed_functions, request.x_unit)
        mix = 0 if self.seed is None else int(self.seed)
        rng = np.random.default_rng([int(request.seed) & 0xFFFFFFFF, mix & 0xFFFFFFFF, 7])
        allowed = request.allowed_functions
        budget = self.fits_per_request
        cands: list[_Cand] = list(data.polys)
        parents = tuple(p for p in request.parents if p.success and np.isfinite(p.nchi2))
        if parents:
            cands += self._simplifications(parents[0])
            if len(parents) > 1:
                cands += self._simplifications(parents[1])[:4]
            cands += self._greedy(parents[0], data, budget // 5)
            cands += self._edits(parents, data.prims, rng, budget // 2)
            cands += self._fresh(data, rng, budget // 4)
        else:
            cands += self._fresh(data, rng, budget)
        results = self._fit_all(data.key, data.x, data.y, cands, allowed)
        return self._select(results)

    # -- data ---------------------------------------------------------------------

    def _prepare(
        self,
        x: np.ndarray,
        y: np.ndarray,
        allowed: tuple[str, ...] | None,
        x_unit: float = 1.0,
    ) -> _Data:
        x = np.asarray(x, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        h = hashlib.blake2b(x.tobytes() + b"|" + y.tobytes(), digest_size=16)
        h.update(repr((allowed, float(x_unit))).encode())
        key = h.digest()
        with self._lock:
            hit = self._data.get(key)
        if hit is not None:
            return hit
        if x.size > _MAX_POINTS:  # rank on an even thinning of the sorted data
            order = np.argsort(x, kind="stable")
            keep = order[np.linspace(0, x.size - 1, _MAX_POINTS).round().astype(int)]
            x, y = x[keep], y[keep]
        feats = compute_features(x, y)
        w = 1.0 / nchi2_scale(y)
        prims, cols = [], []
        for p in primitives(feats, float(x_unit)):
            if not self._valid(render(p.tokens)[0], allowed):
                continue
            col = column(p.tokens, x)
            if col is not None and np.ptp(col) > 0:
                prims.append(p)
                cols.append(col)
        data = _Data(key, x, y, w, feats, tuple(prims), tuple(cols), self._polynomials(x, y))
        data.combos = _screen(data)
        with self._lock:
            if len(self._data) > 64:
                self._data.clear()
            self._data[key] = data
        return data

    @staticmethod
    def _valid(text: str, allowed: tuple[str, ...] | None) -> bool:
        try:
            parse_ansatz(text, allowed_functions=allowed)
        except AnsatzError:
            return False
        return True

    # -- candidate sources ----------------------------------------------------------

    @staticmethod
    def _polynomials(x: np.ndarray, y: np.ndarray) -> tuple[_Cand, ...]:
        """Polynomials and rational functions from linear least squares (see
        :mod:`llmlex._offline_linear`), started at their fitted coefficients."""
        w = 1.0 / nchi2_scale(y)
        return tuple(_Cand(*_text_init(t)) for t in linear_templates(x, y, w))

    @staticmethod
    def _fresh(data: _Data, rng: np.random.Generator, n: int) -> list[_Cand]:
        """Combinations of library primitives: the best screened ones, then random ones.

        Half of the budget goes to the combinations whose linear start already fits best
        (the same in every request, so their fits are cached); the other half is drawn
        at random, weighted by the features, so that requests explore differently.
        """
        combos = data.combos
        if not combos or n <= 0:
            return []
        top = n // 2
        out = [_Cand(*_text_init(c[1])) for c in combos[:top]]
        rest = combos[top:]
        if rest:
            w = np.array([c[2] for c in rest], dtype=float)
            k = min(n - top, len(rest))
            idx = rng.choice(len(rest), size=k, replace=False, p=w / w.sum())
            out += [_Cand(*_text_init(rest[int(i)][1])) for i in sorted(idx)]
        return out

    def _greedy(self, parent: FitResult, data: _Data, n: int) -> list[_Cand]:
        """Parent plus one primitive term (forward stepwise), best residual fits first."""
        if n <= 0 or not data.prims:
            return []
        pred = parent.predict(data.x)
        if not np.all(np.isfinite(pred)):
            return []
        w = data.w
        r = (data.y - pred) * w
        scored = []
        for k, col in enumerate(data.cols):
            for mode in ("add", "mul"):
                c = (col if mode == "add" else col * pred) * w
                cc = float(c @ c)
                if cc <= 0 or not np.isfinite(cc):
                    continue
                amp = float(c @ r) / cc
                rr = r - amp * c
                scored.append((float(rr @ rr), k, mode, amp))
        scored.sort(key=lambda t: t[:3])
        m = parent.n_params
        out = []
        for _, k, mode, amp in scored[:n]:
            text, init = render(data.prims[k].tokens, offset=m + 1)
            if mode == "add":
                full = f"{parent.ansatz} + params[{m}]*{text}"
            else:
                full = f"({parent.ansatz})*(1 + params[{m}]*{text})"
            values = {i: float(v) for i, v in enumerate(parent.params)}
            values[m] = amp
            values.update({m + 1 + i: v for i, v in enumerate(init)})
            out.append(_Cand(full, values))
        return out

    def _simplifications(self, parent: FitResult) -> list[_Cand]:
        """Fix negligible or simple-valued parameters of a fitted parent (model selection)."""
        try:
            expr = parent.compiled.sympy if parent.compiled else parse_ansatz(parent.ansatz).sympy
        except Exception:  # sympy can fail on exotic input; simplification is optional
            return []
        values = {k: float(v) for k, v in enumerate(parent.params)}
        syms = _params_of(expr)
        out: list[_Cand] = []
        for rel in (1e-6, 1e-3, 3e-2):
            fixes: dict[int, float] = {}
            for k, v in values.items():
                simple = _simple_values(v, rel=rel)
                if simple and k in syms:
                    fixes[k] = simple[0]
            if not fixes:
                continue
            # All at once, then each alone (one of them may be a coincidence).
            groups = [fixes] + ([{k: v} for k, v in fixes.items()] if len(fixes) > 1 else [])
            for g in groups[:7]:
                new = expr.xreplace({syms[k]: _number(v) for k, v in g.items()})
                cand = self._from_sympy(new, values)
                if cand is not None:
                    out.append(cand)
        return out

    def _edits(
        self,
        parents: tuple[FitResult, ...],
        prims: Sequence[Prim],
        rng: np.random.Generator,
        n: int,
    ) -> list[_Cand]:
        """Structural edits of the parents (best parents are edited more often)."""
        import sympy

        from llmlex._symbolic import X, param

        exprs = []
        for p in parents[:4]:
            try:
                exprs.append((p.compiled.sympy if p.compiled else parse_ansatz(p.ansatz).sympy, p))
            except Exception:  # pragma: no cover - parents come from parse_ansatz
                continue
        if not exprs or not prims:
            return []
        pw = np.array([1.0 / (1 + k) for k in range(len(exprs))])
        pw /= pw.sum()
        prim_w = np.array([p.weight for p in prims], dtype=float)
        prim_w /= prim_w.sum()
        moves = ["add", "mul", "compose", "replace", "drop", "cross", "reparam", "scale"]
        out: list[_Cand] = []
        for _ in range(n * 3):  # some edits are no-ops or invalid; try a few more
            if len(out) >= n:
                break
            e, parent = exprs[int(rng.choice(len(exprs), p=pw))]
            values = {k: float(v) for k, v in enumerate(parent.params)}
            nxt = parent.n_params
            prim = prims[int(rng.choice(len(prims), p=prim_w))]
            text, init = render(prim.tokens, offset=nxt + 1)
            term = _sympy_of(text)
            amp = param(nxt)
            newvals = {nxt + 1 + i: v for i, v in enumerate(init)}
            move = str(rng.choice(moves))
            new: sympy.Expr | None = None
            if move == "add":
                new = e + amp * term
                newvals[nxt] = 0.0
            elif move == "mul":
                if rng.random() < 0.5:
                    new = e * (1 + amp * term)
                    newvals[nxt] = 0.0
                else:
                    new = e * term
            elif move == "compose":
                inner = [
                    amp * X,
                    X + amp,
                    amp * X**2 + X,
                ][int(rng.integers(3))]
                newvals[nxt] = 1.0 if inner == amp * X else 0.0
                new = e.xreplace({X: inner})
            elif move in ("replace", "cross", "drop"):
                subs = [
                    s
                    for s in sympy.preorder_traversal(e)
                    if s is not e and s.has(X) and not s.is_Symbol
                ]
                if move == "drop":
                    nodes = [s for s in (e, *subs) if (s.is_Add or s.is_Mul) and len(s.args) > 1]
                    if not nodes:
                        continue
                    node = nodes[int(rng.integers(len(nodes)))]
                    args = list(node.args)
                    args.pop(int(rng.integers(len(args))))
                    repl = node.func(*args)
                    new = e.xreplace({node: repl}) if node is not e else repl
                elif move == "replace":
                    if not subs:
                        continue
                    s = subs[int(rng.integers(len(subs)))]
                    newvals[nxt] = 1.0
                    new = e.xreplace({s: amp * term})
                else:  # crossover: graft a subtree of another parent
                    others = [o for o in exprs if o[1] is not parent]
                    if not others:
                        continue
                    oe, op = others[int(rng.integers(len(others)))]
                    shift = {param(k): param(nxt + 1 + k) for k in range(op.n_params)}
                    oe = oe.xreplace(shift)
                    newvals = {nxt + 1 + k: float(v) for k, v in enumerate(op.params)}
                    osubs = [s for s in sympy.preorder_traversal(oe) if s.has(X)]
                    graft = osubs[int(rng.integers(len(osubs)))]
                    if subs and rng.random() < 0.5:
                        s = subs[int(rng.integers(len(subs)))]
                        new = e.xreplace({s: graft})
                    else:
                        new = e + amp * graft
                        newvals[nxt] = 1.0
            elif move == "reparam":
                nums = [
                    s
                    for s in sympy.preorder_traversal(e)
                    if s.is_Number and abs(float(s)) not in (0.0, 1.0)
                ]
                if not nums:
                    continue
                s = nums[int(rng.integers(len(nums)))]
                new = e.xreplace({s: amp})
                newvals[nxt] = float(s)
            else:  # scale: x -> p*x inside one function call
                calls = [s for s in sympy.preorder_traversal(e) if s.is_Function and s.has(X)]
                if not calls:
                    continue
                s = calls[int(rng.integers(len(calls)))]
                new = e.xreplace({s: s.xreplace({X: amp * X})})
                newvals[nxt] = 1.0
            if new is None or not new.has(X):
                continue
            cand = self._from_sympy(new, {**values, **newvals})
            if cand is not None:
                out.append(cand)
        return out

    @staticmethod
    def _from_sympy(expr: sympy.Expr, values: dict[int, float]) -> _Cand | None:
        from llmlex._symbolic import sympy_to_text

        try:  # (redundant parameters are merged where every candidate is fitted)
            text = sympy_to_text(expr)
            a = parse_ansatz(text)  # the whitelist checks everything printed from sympy
        except Exception:  # unprintable or outside the language: not a candidate
            return None
        if a.n_params > _MAX_PARAMS:
            return None
        init = {i: values.get(i, 1.0) for i in a.source_indices}
        return _Cand(text, init)

    # -- fitting and selection -----------------------------------------------------

    def _fit_all(
        self,
        key: bytes,
        x: np.ndarray,
        y: np.ndarray,
        cands: list[_Cand],
        allowed: tuple[str, ...] | None,
    ) -> list[FitResult]:
        seen: set[str] = set()
        results = []
        for c in cands:
            try:
                a = parse_ansatz(c.text, allowed_functions=allowed)
            except AnsatzError:
                continue
            init = tuple(float(c.initial.get(i, 1.0)) for i in a.source_indices)
            if "+ params" in a.text or "* params" in a.text:  # cheap test before sympy
                a, init = _without_redundancy(a, init, allowed)
            if a.text in seen or a.n_params > _MAX_PARAMS:
                continue
            seen.add(a.text)
            r = self._fit(key, a, x, y, init)
            if r.success:
                results.append(r)
        return results

    def _fit(
        self, key: bytes, a: Ansatz, x: np.ndarray, y: np.ndarray, init: tuple[float, ...]
    ) -> FitResult:
        ck = (key, a.text, tuple(init) if init else None)
        with self._lock:
            hit = self._cache.get(ck)
        if hit is not None:
            return hit
        # Seeded by the text, so a cached and a fresh fit are identical.
        r = fit_ansatz(
            a,
            x,
            y,
            initial=init or None,
            n_starts=self.n_starts,
            max_nfev=50 * (a.n_params + 1),
            timeout=self.fit_timeout,
            seed=zlib.crc32(a.text.encode()),
            validate=False,
        )
        with self._lock:
            if len(self._cache) > 20000:
                self._cache.clear()
            self._cache[ck] = r
        return r

    def _select(self, results: list[FitResult]) -> tuple[Proposal, ...]:
        """Best-ranked distinct candidates: the shortest descriptions of the data first
        (:data:`_BY_LENGTH` of them), then by nchi2, simpler among near-equals.

        On noisy data the nchi2 of every good candidate is the noise's, and simpler among
        them means fewer nodes: a rational function with integer coefficients, shorter
        as a description than a ``tanh`` with three fitted constants, would never be
        proposed.  The description length charges constants and nodes as the run's
        selection does.
        """

        def rank(r: FitResult) -> tuple[float, int]:
            v = max(r.nchi2, _EXACT)
            # Half-decade buckets: within one, the simpler ansatz ranks first.
            return (round(2 * math.log10(v)), _complexity(r))

        # Cheap pre-order (text length stands in for complexity), then the exact order
        # on the head only: sympy conversions are the slow part of ranking.
        results.sort(key=lambda r: (round(2 * math.log10(max(r.nchi2, _EXACT))), len(r.ansatz)))
        head = results[: 4 * self.candidates_per_request + 8]
        head = [r for r in head if _complexity(r) <= _MAX_COMPLEXITY]
        head.sort(key=lambda r: (*rank(r), r.ansatz))
        scored = [r for r in results if math.isfinite(r.description_length)]
        # The shortest as fitted, and the shortest once the constants the data allow
        # at simple values are written as such (the polish will try that).
        shortest = sorted(scored, key=lambda r: (r.description_length, r.ansatz))[:_BY_LENGTH]
        hopeful = sorted(scored, key=lambda r: (_optimistic_length(r), r.ansatz))[:_BY_LENGTH]
        firsts = [r for pair in zip(shortest, hopeful, strict=False) for r in pair]
        firsts = [r for r in firsts if _complexity(r) <= _MAX_COMPLEXITY][:_BY_LENGTH]
        picked: list[FitResult] = []
        keys: set[str] = set()
        for r in [*firsts, *head]:
            k = r.compiled.canonical if r.compiled is not None else r.ansatz
            if k in keys:
                continue
            keys.add(k)
            picked.append(r)
        out = picked[: self.candidates_per_request]
        # One more: the best of another family.  On noisy data many forms fit alike and
        # the simplest family would otherwise take every place, so the true one (a pole
        # where a logarithm is shorter) would never reach the search.
        families = {_family(r.ansatz) for r in out}
        other = [r for r in picked[len(out) :] if _family(r.ansatz) not in families]
        out += other[:1]
        return tuple(Proposal(r.ansatz, tuple(float(v) for v in r.params)) for r in out)


def _without_redundancy(
    a: Ansatz, init: tuple[float, ...], allowed: tuple[str, ...] | None
) -> tuple[Ansatz, tuple[float, ...]]:
    """``a`` with redundant bare parameters merged
    (:func:`llmlex._symbolic.merge_redundant_params`), and its starts; ``a`` itself when
    there are none or sympy cannot say."""
    from llmlex._symbolic import merge_redundant_params, sympy_to_text

    try:
        expr = a.sympy
        merged, values = merge_redundant_params(expr, dict(enumerate(init)))
        if merged == expr:
            return a, init
        b = parse_ansatz(sympy_to_text(merged), allowed_functions=allowed)
    except Exception:  # sympy's bound, or outside the language: keep the candidate
        return a, init
    return b, tuple(values.get(i, 1.0) for i in b.source_indices)


def _optimistic_length(r: FitResult) -> float:
    """The description length of ``r`` without the cost of each constant within two
    standard errors of a simple value (0, an integer, a fraction p/2, p/3, p/4, a multiple
    of pi/2, a one-digit number times a power of ten): what snapping them could gain.

    A constant costs about ``ln(|theta| / sigma)`` nats (:mod:`llmlex._criterion`); the
    true form with four fitted constants can describe noisy data worse than a shorter
    fit of the noise, and better once they are snapped.
    """
    dl = r.description_length
    try:
        errors = np.asarray(r.param_errors, dtype=float)
    except Exception:  # no covariance: nothing to gain that can be told
        return dl
    gain = 0.0
    for v, e in zip(np.asarray(r.params, dtype=float), errors, strict=False):
        if not (math.isfinite(v) and math.isfinite(e) and e > 0 and v != 0):
            continue
        if _near_simple(float(v), 2.0 * float(e)):
            gain += max(0.0, math.log(abs(v) / e) - 0.5 * math.log(3.0))
    return dl - gain


def _near_simple(v: float, tol: float) -> bool:
    """Whether a simple value (:func:`_simple_values`) or a one-digit number times a power
    of ten (:func:`~llmlex._offline_linear.short_number`) is within ``tol`` of ``v``."""
    if _simple_values(v, rel=tol / max(1.0, abs(v))):
        return True
    short = short_number(v, tol)
    return short is not None and digits(short[0]) <= 1


def _family(text: str) -> frozenset[str]:
    """The functions of an ansatz text, and whether it divides or raises to a power."""
    names = set(re.findall(r"np\.(\w+)", text))
    names |= {op for op in ("/", "**") if op in text}
    return frozenset(names)


def _complexity(r: FitResult) -> int:
    try:
        return int(r.complexity)
    except Exception:  # sympy can fail on exotic input; rank it last among equals
        return 10**6


def _text_init(tpl: Template) -> tuple[str, dict[int, float]]:
    text, init = render(tpl)
    return text, dict(enumerate(init))
