"""The public door: __all__ is unique, every name imports, and the core stays light."""

from __future__ import annotations

import subprocess
import sys

import llmlex


def test_all_is_unique_and_every_name_resolves():
    # Ordering is ruff's job (RUF022, isort-style); here: no duplicates, nothing dangling.
    assert len(set(llmlex.__all__)) == len(llmlex.__all__)
    for name in llmlex.__all__:
        assert getattr(llmlex, name) is not None


def test_import_does_not_pull_heavy_optional_dependencies():
    code = (
        "import sys, llmlex; "
        "heavy = [m for m in ('torch', 'kan', 'sklearn', 'matplotlib.pyplot', 'openai') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError):
        llmlex.does_not_exist  # noqa: B018
