"""llmlex._kan_torch: the one door to torch and pykan; reading a network's edges.

The import checks run without torch: they are what keeps the rest of llmlex usable
without the ``kan`` extra.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from kan_helpers import dataset, needs_kan, small_kan, torch

import llmlex
from llmlex.kan import extract_edges

# The only modules allowed to import torch or pykan: the door, and the torch exporter.
TORCH_DOORS = {"_kan_torch", "export"}


def test_import_llmlex_does_not_import_torch_or_kan():
    code = (
        "import sys, llmlex, llmlex.fit, llmlex.genetic;"
        "print('torch' in sys.modules, 'kan' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@needs_kan
def test_edge_extraction_shapes_and_pruned_edges():
    X, _y, Xt, _yt = dataset(lambda X: X[:, 0] + X[:, 1] ** 2, n=200)
    model = small_kan([2, 2, 1])
    model(torch.tensor(Xt, dtype=torch.float32))  # last forward is NOT the training input
    model.remove_edge(0, 1, 0, log_history=False)
    raw = extract_edges(model, X)
    assert sorted(raw) == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 1, 0)]
    for status, xe, ye, _ in raw.values():
        assert xe.shape == ye.shape == (200,)
        assert status in ("fitted", "pruned")
    assert raw[(0, 1, 0)][0] == "pruned"
    np.testing.assert_allclose(raw[(0, 0, 0)][1], X[:, 0], rtol=1e-6)  # re-run on X


@needs_kan
def test_a_forward_pass_on_one_point_warns_nothing():
    import warnings

    from llmlex._kan_torch import network_output

    model = small_kan([2, 2, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network_output(model, np.zeros((1, 2)))  # pykan takes torch.std of one value
        extract_edges(model, np.zeros((1, 2)))
    assert not [w for w in caught if "degrees of freedom" in str(w.message)]


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_door_imports_torch_or_pykan():
    package = Path(llmlex.__file__).parent
    offenders = {
        p.stem: sorted(_imports_of(p) & {"torch", "kan"})
        for p in package.glob("*.py")
        if p.stem not in TORCH_DOORS and _imports_of(p) & {"torch", "kan"}
    }
    assert offenders == {}


def test_importing_any_llmlex_module_does_not_import_torch():
    names = sorted(m.name for m in pkgutil.iter_modules(llmlex.__path__))
    assert "_kan_torch" in names and "kan" in names
    code = (
        "import importlib, sys\n"
        "from llmlex.exceptions import MissingDependencyError\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module('llmlex.' + name)\n"
        "    except MissingDependencyError:\n"  # scikit-learn absent: llmlex.estimator
        "        pass\n"
        "heavy = [m for m in ('torch', 'kan') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_is_a_missing_dependency_error_naming_the_extra():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"  # as if torch were not installed
        "from llmlex._kan_torch import import_kan\n"
        "from llmlex.exceptions import MissingDependencyError\n"
        "try:\n"
        "    import_kan()\n"
        "except MissingDependencyError as err:\n"
        "    assert 'llmlex[kan]' in str(err), err\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
