"""Tests of llmlex._separable: structure found on plain numpy surrogates (no torch)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle

import numpy as np
import pytest
import sympy

from llmlex import _kan_sympy as ks
from llmlex._separable import decompose

x0, x1, x2 = sympy.symbols("x0 x1 x2", real=True)


def _data(lo, hi, n=600, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, size=(n, len(lo)))


def _refit_nchi2(expr, variables, X, y):
    """nchi2 after refitting the candidate's constants on exact data."""
    template, syms, p0 = ks.parameterise(expr)
    return ks.fit_constants(template, variables, syms, p0, X, y).nchi2


def _surrogate(truth, variables, rel_error=1e-5, seed=1):
    """The truth as surrogate, and data carrying a small error (a network's level)."""

    def f(Z):
        return ks.evaluate(truth, variables, Z)

    def data(X):
        y = f(X)
        rng = np.random.default_rng(seed)
        return y + rel_error * np.std(y) * rng.standard_normal(y.size)

    return f, data


@pytest.mark.parametrize(
    ("truth", "lo", "hi", "structure"),
    [
        ((x0 + 1) * x1**2, [1, 1], [3, 3], "f = g(x0) * g(x1)"),
        (sympy.sin(x0) + 1 / x1, [1, 1], [3, 3], "f = g(x0) + g(x1)"),
        # 1/f = 1/x0 + 1/x1: sum-separable only after the reciprocal transform
        (x0 * x1 / (x0 + x1), [1, 1], [5, 5], "1/f = g(x0) + g(x1)"),
        # a product whose second part depends on a ratio only, itself 1/sqrt(1 - u**2)
        (x0 / sympy.sqrt(1 - x1**2 / x2**2), [1, 1, 3], [5, 2, 10], "f = g(x0) * g(x1/x2)"),
        (2 * x0 * x1 * x2, [1, 1, 1], [2, 3, 4], "f = g(x0) * [f = g(x1) * g(x2)]"),
    ],
)
def test_decompose_finds_the_structure_and_a_formula_that_refits_exactly(truth, lo, hi, structure):
    variables = [x0, x1, x2][: len(lo)]
    X = _data(np.array(lo, float), np.array(hi, float))
    f, data = _surrogate(truth, variables)
    found = decompose(f, X, data(X), variables, seed=0, time_budget=20)
    assert found, "no structure found"
    assert {o for o, _ in found} == {f"separable: {structure}"}
    exact = f(X)
    # Some variant has the truth's structure: refitted on exact data it is exact.
    assert min(_refit_nchi2(e, variables, X, exact) for _, e in found) < 1e-12


def test_decompose_finds_nothing_in_a_function_without_such_structure():
    X = _data(np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    truth = sympy.tanh(x0 + x0 * x1**2 + 0.3) + sympy.sin(2 * x0 * x1 - x1)
    f, data = _surrogate(truth, [x0, x1])
    assert decompose(f, X, data(X), [x0, x1], seed=0, time_budget=10) == []


def test_decompose_refuses_a_rough_surrogate():
    X = _data(np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    f, data = _surrogate(x0 * x1, [x0, x1], rel_error=0.2)
    # 20% error: every test would pass; the surrogate is not trusted at all.
    assert decompose(f, X, data(X), [x0, x1], seed=0, max_error=0.05) == []


def test_decompose_is_deterministic_for_a_seed():
    X = _data(np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    f, data = _surrogate(sympy.exp(x0) / x1, [x0, x1])
    y = data(X)
    first = decompose(f, X, y, [x0, x1], seed=3)
    assert first
    assert decompose(f, X, y, [x0, x1], seed=3) == first


def test_decompose_single_variable_and_mismatched_names_give_nothing():
    X = _data(np.array([1.0]), np.array([2.0]))
    assert decompose(lambda Z: Z[:, 0] ** 2, X, X[:, 0] ** 2, [x0]) == []
    X2 = _data(np.array([1.0, 1.0]), np.array([2.0, 2.0]))
    assert decompose(lambda Z: Z[:, 0] * Z[:, 1], X2, X2[:, 0] * X2[:, 1], [x0]) == []


def test_a_form_sympy_cannot_build_in_time_is_skipped_not_a_crash(monkeypatch):
    # The sympy conversion is time-bounded: on a loaded machine any form may miss it.
    from llmlex.exceptions import AnsatzTooComplexError
    from llmlex.fit import FitResult

    def too_slow(self):
        raise AnsatzTooComplexError("took longer than 1 s")

    monkeypatch.setattr(FitResult, "expression", property(too_slow))
    X = _data(np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    f, data = _surrogate(sympy.exp(x0) / x1, [x0, x1])
    assert decompose(f, X, data(X), [x0, x1], seed=0, time_budget=10) == []


class _Deferred(concurrent.futures.Executor):
    """Runs a task only when its result is asked for, after a pickle round trip (as a
    process would see it), and logs "submit" and "gather" in the order they happen."""

    def __init__(self):
        self.log: list[str] = []

    def submit(self, fn, /, *args, **kwargs):
        self.log.append("submit")
        call = pickle.loads(pickle.dumps((fn, args, kwargs)))
        return _DeferredFuture(self.log, call)


class _DeferredFuture(concurrent.futures.Future):
    def __init__(self, log, call):
        super().__init__()
        self._log, self._call = log, call

    def result(self, timeout=None):
        if not self.done():
            self._log.append("gather")
            fn, args, kwargs = self._call
            self.set_result(pickle.loads(pickle.dumps(fn(*args, **kwargs))))
        return super().result(timeout)


def test_on_an_executor_both_parts_of_a_separation_are_submitted_before_either_is_gathered():
    X = _data(np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    f, data = _surrogate((x0 + 1) * x1**2, [x0, x1])
    y = data(X)
    here = decompose(f, X, y, [x0, x1], seed=0)
    pool = _Deferred()
    there = decompose(f, X, y, [x0, x1], seed=0, executor=pool)
    assert here and there == here
    assert pool.log[:3] == ["submit", "submit", "gather"]


class _Counting(concurrent.futures.Executor):
    def __init__(self, inner):
        self.inner, self.submitted = inner, 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return self.inner.submit(fn, *args, **kwargs)


def test_decompose_on_a_process_pool_finds_the_formulas_found_here():
    # cos(x0)*tanh(x0) is not in the library: its part runs the seeded offline search,
    # whose formulas change with its seed (measured), so a seed that depended on where or
    # when the work ran would show.
    X = _data(np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    f, data = _surrogate(sympy.cos(x0) * sympy.tanh(x0) + x1, [x0, x1])
    y = data(X)
    options = {"seed": 0, "population": 2, "generations": 1, "time_budget": 120}
    here = decompose(f, X, y, [x0, x1], **options)
    assert here
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        counted = _Counting(pool)
        there = decompose(f, X, y, [x0, x1], executor=counted, **options)
    assert counted.submitted >= 2  # the two parts went to the pool
    assert there == here


def test_tests_off_the_data_are_not_judged_and_say_so(caplog):
    # Samples along a thin band (x1 ~ x0, as along one trajectory): a surrogate fitted
    # there means nothing far from it, where the mixed points of a separation test and
    # the slices through the reference would go.  It is wrong there on purpose.
    rng = np.random.default_rng(0)
    t = rng.uniform(1, 3, 600)
    X = np.c_[t, t + rng.uniform(-0.02, 0.02, 600)]

    def f(Z):
        off = Z[:, 1] - Z[:, 0]
        return Z[:, 0] * Z[:, 1] + 50.0 * np.where(np.abs(off) > 0.1, off, 0.0)

    y = f(X)
    with caplog.at_level("INFO", logger="llmlex._separable"):
        found = decompose(f, X, y, [x0, x1], seed=0, time_budget=10)
    assert "not judged for lack of coverage" in caplog.text
    # Whatever is found comes from points near the data: it fits the data.
    for _, expr in found:
        assert _refit_nchi2(expr, [x0, x1], X, y) < 1e-6


def test_data_that_fill_a_box_are_covered_everywhere(caplog):
    X = _data(np.array([1.0, 1.0]), np.array([3.0, 3.0]))
    f, data = _surrogate((x0 + 1) * x1**2, [x0, x1])
    with caplog.at_level("INFO", logger="llmlex._separable"):
        found = decompose(f, X, data(X), [x0, x1], seed=0, time_budget=20)
    assert found and "not judged" not in caplog.text
