"""llmlex._forms: one library of simple forms, read by the edges, the slices, the estimator."""

from __future__ import annotations

import numpy as np
import pytest

from llmlex import _forms, _separable, kan
from llmlex.ansatz import parse_ansatz
from llmlex.fit import fit_ansatz


def test_every_form_parses_and_fits_its_own_shape():
    x = np.linspace(0.5, 2.0, 80)
    rows = {*_forms.EDGE_LIBRARY, *_forms.POLYNOMIAL_LIBRARY}
    for source, text in rows:
        a = parse_ansatz(text)
        assert source in ("constant", "linear", "quadratic", "cubic", "library")
        params = np.linspace(0.7, 1.3, a.n_params)
        with np.errstate(all="ignore"):
            y = np.broadcast_to(a(x, params), x.shape)
        if not np.all(np.isfinite(y)):
            continue
        assert fit_ansatz(text, x, y, seed=0, validate=False, n_starts=4).nchi2 < 1e-8, text


def test_the_libraries_are_selections_of_one_table():
    texts = {text: source for source, text in _forms.EDGE_LIBRARY}
    assert len(texts) == len(_forms.EDGE_LIBRARY)  # no form twice
    assert tuple(text for _, text in _forms.EDGE_LIBRARY) == _forms.SLICE_LIBRARY
    # Rows shared by two libraries are the same row (same label, same text).
    for source, text in _forms.POLYNOMIAL_LIBRARY:
        if text in texts:
            assert texts[text] == source
    assert [s for s, _ in _forms.POLYNOMIAL_LIBRARY] == ["constant", "linear", "quadratic", "cubic"]


def test_every_reader_reads_the_shared_library():
    assert kan.EDGE_LIBRARY is _forms.EDGE_LIBRARY
    assert _separable.SLICE_LIBRARY is _forms.SLICE_LIBRARY
    assert kan.regress_edge.__kwdefaults__["forms"] is _forms.EDGE_LIBRARY
    pytest.importorskip("sklearn")
    from llmlex import _estimator_kan

    reg = _estimator_kan.edge_regressor(search=False, time_budget=None, patience=None)
    assert reg.keywords["forms"] is _forms.POLYNOMIAL_LIBRARY
