"""Tests of the offline proposer and the data features that steer it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from llmlex import run_genetic
from llmlex._features import compute_features
from llmlex._offline_library import render
from llmlex.ansatz import parse_ansatz
from llmlex.exceptions import NoValidAnsatzError
from llmlex.fit import fit_ansatz
from llmlex.offline import OfflineProposer
from llmlex.proposer import ProposalBatch, ProposalRequest, Proposer

X = np.linspace(-2.0, 2.0, 40)
XPOS = np.linspace(0.2, 4.0, 40)


def _request(x, y, **kw) -> ProposalRequest:
    return ProposalRequest(x=x, y=y, **kw)


def _search(x, y, *, seed=0, pop=4, gens=4, exit=1e-14):
    """A tiny genetic loop around the proposer: propose, fit, keep the best as parents."""
    prop = OfflineProposer(seed=seed, fits_per_request=25)
    rng = np.random.default_rng(seed)
    archive = {}
    parents = ()
    for g in range(gens):
        for _ in range(pop):
            req = _request(x, y, parents=parents, generation=g, seed=int(rng.integers(2**31)))
            for p in prop.propose_sync(req):
                r = fit_ansatz(p.text, x, y, initial=p.initial, n_starts=2)
                if r.success:
                    archive[r.ansatz] = r
        ranked = sorted(archive.values(), key=lambda r: (max(r.nchi2, exit), r.complexity))
        # As the library's stop: exact, and no simpler exact form in the next generation.
        if ranked[0].nchi2 < exit and parents and parents[0] is ranked[0]:
            break
        parents = tuple(ranked[:3])
    return parents[0]


def test_is_a_proposer_and_async_returns_batch():
    prop = OfflineProposer(seed=1)
    assert isinstance(prop, Proposer)
    assert prop.name == "offline"
    y = 2.0 * X + 1.0
    batch = asyncio.run(prop.propose(_request(X, y, seed=3)))
    assert isinstance(batch, ProposalBatch)
    assert batch.calls == 0 and batch.failure is None
    assert 1 <= len(batch.proposals) <= prop.candidates_per_request + 1


def test_deterministic_for_a_seed_and_varies_with_request_seed():
    y = np.exp(-0.5 * X) * np.cos(3 * X)
    a = OfflineProposer(seed=5).propose_sync(_request(X, y, seed=11))
    b = OfflineProposer(seed=5).propose_sync(_request(X, y, seed=11))
    assert a == b
    # A warm cache must not change the answer either.
    warm = OfflineProposer(seed=5)
    warm.propose_sync(_request(X, y, seed=99))
    assert warm.propose_sync(_request(X, y, seed=11)) == a


@pytest.mark.parametrize(
    "f",
    [
        lambda x: np.sin(x) + 0.1 * x**2,
        lambda x: 1.0 / (1.0 + np.exp(-3 * x)),
        lambda x: np.abs(x) ** 1.5 + 2,
    ],
)
def test_every_proposal_parses_and_carries_matching_initial(f):
    y = f(X)
    for seed in range(3):
        for p in OfflineProposer(seed=seed).propose_sync(_request(X, y, seed=seed)):
            a = parse_ansatz(p.text)
            assert p.initial is not None and len(p.initial) == a.n_params
            assert np.all(np.isfinite(a(X, p.initial)))


def test_allowed_functions_are_honoured():
    y = np.sin(2 * X) * np.exp(-0.3 * X)
    allowed = ("sin", "cos")
    prop = OfflineProposer(seed=0)
    props = prop.propose_sync(_request(X, y, seed=1, allowed_functions=allowed))
    assert props
    for p in props:
        assert parse_ansatz(p.text).functions <= set(allowed)
    # Also through parents' edits in a later generation.
    parents = tuple(fit_ansatz(p.text, X, y, initial=p.initial) for p in props)
    later = prop.propose_sync(
        _request(X, y, seed=2, parents=parents, generation=1, allowed_functions=allowed)
    )
    assert later
    for p in later:
        assert parse_ansatz(p.text).functions <= set(allowed)
    # No functions at all: only polynomials and rationals remain.
    none = prop.propose_sync(_request(X, y, seed=3, allowed_functions=()))
    assert none and all(not parse_ansatz(p.text).functions for p in none)


def test_features_periodic():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 10, 80))
    f = compute_features(x, 2 * np.sin(3 * x + 0.3))
    assert f.periodic
    assert abs(f.frequencies[0] - 3.0) < 0.3
    assert not compute_features(x, np.exp(0.2 * x)).periodic


def test_features_monotone_powerlaw_exponential_log():
    f = compute_features(XPOS, 3 * XPOS**1.7)
    assert f.monotone == 1 and f.loglog_slope == pytest.approx(1.7, abs=1e-6)
    assert f.x_positive and f.y_positive and f.curvature == 1
    g = compute_features(XPOS, 2 * np.exp(-0.8 * XPOS))
    assert g.monotone == -1 and g.semilog_slope == pytest.approx(-0.8, abs=1e-6)
    assert compute_features(XPOS, np.log(XPOS)).ylogx_linear
    assert compute_features(X, np.sin(X) + X**2).monotone == 0


def test_features_symmetry_and_polynomial_degree():
    f = compute_features(X, np.cos(X) + X**2)
    assert f.even and not f.odd
    g = compute_features(X, X**3 - X)
    assert g.odd and not g.even and g.poly_degree == 3


def test_parent_edits_are_valid_and_differ_from_parents():
    y = np.exp(-0.7 * X) + 0.5 * np.sin(2 * X)
    parents = (
        fit_ansatz("params[0]*np.exp(params[1]*x)", X, y),
        fit_ansatz("params[0]*np.sin(params[1]*x) + params[2]", X, y),
    )
    prop = OfflineProposer(seed=0, candidates_per_request=6)
    seen = set()
    for s in range(4):
        req = _request(X, y, seed=s, parents=parents, generation=1)
        for p in prop.propose_sync(req):
            a = parse_ansatz(p.text)
            assert p.initial is not None and len(p.initial) == a.n_params
            seen.add(a.text)
    assert seen - {r.ansatz for r in parents}
    # The edits reach a better fit than either parent.
    best = min(fit_ansatz(t, X, y, n_starts=2).nchi2 for t in seen)
    assert best < 0.1 * min(r.nchi2 for r in parents)


def test_edit_moves_produce_valid_ansatze():
    rng = np.random.default_rng(0)
    y = np.tanh(X) * X
    parents = (
        fit_ansatz("params[0]*np.tanh(params[1]*x)*x + 2.5", X, y),
        fit_ansatz("params[0]*x**2/(1 + params[1]*x**2)", X, y),
    )
    prop = OfflineProposer(seed=0)
    data = prop._prepare(X, y, None)
    cands = prop._edits(parents, data.prims, rng, 60)
    assert len(cands) >= 30
    for c in cands:
        a = parse_ansatz(c.text)
        assert set(c.initial) == set(a.source_indices)


def test_simplification_fixes_simple_constants():
    y = X**2 + 3
    parent = fit_ansatz("params[0]*x**2 + params[1]*x + params[2]", X, y)
    props = OfflineProposer(seed=0).propose_sync(
        _request(X, y, seed=0, parents=(parent,), generation=1)
    )
    texts = [parse_ansatz(p.text).text for p in props]
    # The simplest exact candidate, with 0 and 1 fixed, ranks first.
    assert parse_ansatz(texts[0]).complexity < parse_ansatz(parent.ansatz).complexity
    assert fit_ansatz(texts[0], X, y).nchi2 < 1e-20


@pytest.mark.parametrize(
    ("f", "x"),
    [
        (lambda x: 2.5 * np.exp(-0.7 * x), XPOS),
        (lambda x: 3 * np.sin(2 * x + 0.5), X),
        (lambda x: 1.3 * x**2 - 0.4 * x, X),
    ],
)
def test_small_end_to_end_recovery(f, x):
    best = _search(x, f(x))
    assert best.nchi2 < 1e-14
    assert best.n_params <= 4


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        OfflineProposer(candidates_per_request=0)
    with pytest.raises(ValueError):
        OfflineProposer(fits_per_request=0)


def test_constants_of_order_one_in_the_callers_units_are_a_prior():
    # sin(x**2) on a grid of step 0.2 over [-10, 10] is aliased: no frequency can be read
    # off the data, only a start near the truth fits it.  The search sees x / 10.
    xs = np.linspace(-10.0, 10.0, 100) / 10.0
    y = xs * 10.0 + np.sin((10.0 * xs) ** 2)

    def best(x_unit):
        props = OfflineProposer(seed=0).propose_sync(_request(xs, y, seed=1, x_unit=x_unit))
        fits = [fit_ansatz(p.text, xs, y, initial=p.initial, n_starts=2) for p in props]
        return min(r.nchi2 for r in fits)

    assert best(10.0) < 1e-20
    assert best(1.0) > 1e-3  # without the prior the aliased term is out of reach


def test_one_proposal_comes_from_a_family_the_others_do_not_use():
    rng = np.random.default_rng(3)
    x = np.linspace(0.0, 10.0, 100)
    y = 3 * x / (x + 2) + 0.2 * rng.standard_normal(x.size)
    props = OfflineProposer(seed=0).propose_sync(_request(x, y, seed=1))
    from llmlex.offline import _family

    head = {_family(p.text) for p in props[:-1]}
    assert len(props) == 5
    assert _family(props[-1].text) not in head


def test_polynomials_snapped_within_their_errors_are_candidates():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 100)
    y = x**3 + x**2 + x
    texts = [c.text for c in OfflineProposer._polynomials(x, y + 0.1 * rng.standard_normal(100))]
    assert "1*x**3 + 1*x**2 + 1*x" in texts
    # Noise-free coefficients that are not short numbers are known too well to snap.
    # (The line, which does not fit, has errors large enough to snap: not a quadratic.)
    clean = [c.text for c in OfflineProposer._polynomials(x, 1.37 * x**2 - 0.413 * x + 0.719)]
    assert all("params" in t for t in clean if "x**2" in t)
    # Short decimals do: the search sees y in units of a power of ten, where the
    # caller's integer coefficients 13, -4, 7 are 1.3, -0.4, 0.7.
    tenth = [c.text for c in OfflineProposer._polynomials(x, 1.3 * x**2 - 0.4 * x + 0.7)]
    assert "13/10*x**2 + -4/10*x + 7/10" in tenth


def test_rational_functions_come_from_the_linearised_fit():
    from llmlex._offline_linear import rational_templates
    from llmlex.fit import nchi2_scale

    y = (X + 1) ** 3 / (X**2 - X + 1)
    texts = [render(t)[0] for t in rational_templates(X, y, 1.0 / nchi2_scale(y))]
    # Noise-free integer coefficients are exact to rounding: written as integers.
    assert "(1*x**3 + 3*x**2 + 3*x + 1)/(1 + 1*x**2 + -1*x)" in texts
    fit = fit_ansatz(texts[0], X, y)
    assert fit.nchi2 < 1e-20


def test_no_rational_start_has_a_pole_among_the_data():
    from llmlex._offline_linear import rational_templates
    from llmlex.fit import nchi2_scale

    y = np.sin(3 * X) + X
    for t in rational_templates(X, y, 1.0 / nchi2_scale(y)):
        text, values = render(t)
        a = parse_ansatz(text)
        assert np.all(np.isfinite(a(X, np.array(values))))


def test_without_a_fit_clock_an_offline_run_does_not_depend_on_the_load(monkeypatch):
    # fit_timeout=None takes the clock off every fit, the offline proposer's ranking fits
    # included: on a machine 100000 times slower (a clock running that much faster: the
    # 2 s and 5 s safety nets spent in microseconds) the run gives the same formula.
    import time

    x = np.linspace(0.5, 3.0, 60)
    y = 1.5 * np.exp(-0.8 * x) + 0.3 * x
    options = {"population_size": 3, "num_of_generations": 2, "seed": 3, "progress": False}
    quiet = run_genetic(None, None, x, y, fit_timeout=None, **options)
    real = time.perf_counter
    start = real()
    monkeypatch.setattr(time, "perf_counter", lambda: start + 1e5 * (real() - start))
    loaded = run_genetic(None, None, x, y, fit_timeout=None, **options)
    try:  # the control: on the clock, the fits are cut short
        clocked = run_genetic(None, None, x, y, **options)
    except NoValidAnsatzError:
        clocked = None
    monkeypatch.undo()

    def fits(run):
        return [(r.ansatz, tuple(r.params)) for r in run.archive]

    assert fits(loaded) == fits(quiet)
    assert clocked is None or fits(clocked) != fits(quiet)


def test_redundant_bare_parameters_of_an_edit_are_merged():
    # A line added to a formula with a constant: p3 + p5 is one constant, and the split
    # between them (which the description length would charge twice) is arbitrary.
    import sympy

    from llmlex._symbolic import X, merge_redundant_params, param

    p = [param(k) for k in range(6)]
    expr = p[0] * sympy.tanh(p[1] * X - p[2]) + p[3] + p[4] * X + p[5]
    merged, values = merge_redundant_params(expr, {k: float(k + 1) for k in range(6)})
    assert merged == p[0] * sympy.tanh(p[1] * X - p[2]) + p[3] + p[4] * X
    assert values[3] == 4.0 + 6.0
    scaled, values = merge_redundant_params(
        p[0] * p[4] * sympy.exp(p[1] * X), {0: 2.0, 1: 1.0, 4: 3.0}
    )
    assert scaled == p[0] * sympy.exp(p[1] * X)
    assert values[0] == 6.0


def test_linear_coefficients_snap_one_at_a_time():
    from llmlex._offline_linear import snap_sequentially

    x = np.linspace(0.0, 1.0, 40)
    a = np.vander(x, 3)
    values, texts = snap_sequentially(a, 0.3 * x**2 - 2 * x + 7)
    assert texts == ["3/10", "-2", "7"]
    np.testing.assert_allclose(values, [0.3, -2.0, 7.0])
    # simplest first: zero and one-digit numbers only; 0.37 stays free
    values, texts = snap_sequentially(a, 0.37 * x**2 + x, simplest_first=True)
    assert texts == [None, "1", "0"]
    assert values[0] == pytest.approx(0.37)
    # noise: the correlated coefficients of x**3 + x**2 + x on [0, 1] snap together
    rng = np.random.default_rng(1)
    y = x**3 + x**2 + x + 0.01 * rng.standard_normal(x.size)
    _, texts = snap_sequentially(np.vander(x, 4), y, simplest_first=True)
    assert texts == ["1", "1", "1", "0"]


def test_the_optimistic_length_drops_the_cost_of_constants_near_simple_values():
    from llmlex.offline import _optimistic_length

    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 3.0, 100)
    y = 2.0 * np.sin(3.0 * x) + 0.01 * rng.standard_normal(x.size)
    simple = fit_ansatz("params[0] * np.sin(params[1] * x)", x, y)
    # 2 and 3 within their errors: about ln(value / error) nats each to gain
    assert simple.description_length - _optimistic_length(simple) > 10
    odd = fit_ansatz("params[0] * np.sin(params[1] * x)", x, 2.37 * np.sin(3.13 * x) + y - y)
    assert _optimistic_length(odd) == odd.description_length
