"""examples/reference_style.ipynb runs in a fresh Jupyter kernel, offline and against the
local server: no error, the figures inline, progress bars that do not flood the output."""

from __future__ import annotations

from pathlib import Path

import pytest
from reference_helpers import StyledReplies

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "reference_style.ipynb"
#: Stream outputs a cell may print (a progress bar redraws at most once a second).
MOST_STREAM_OUTPUTS = 12


def _execute(monkeypatch, env: dict[str, str]) -> nbformat.NotebookNode:
    for name in ("LLMLEX_BASE_URL", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "LLMLEX_MODEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The kernel's own default (the inline backend), not CI's MPLBACKEND=Agg.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    return nb


def _check(nb: nbformat.NotebookNode) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{cell.source[:60]!r}: {errors[0].ename}: {errors[0].evalue}"
        streams = [o for o in cell.outputs if o.output_type == "stream"]
        assert len(streams) <= MOST_STREAM_OUTPUTS, f"{cell.source[:60]!r} floods its output"
        warned = [o.text for o in streams if o.name == "stderr" and "Warning" in o.text]
        assert not warned, warned
    # Both figures render inline in a fresh kernel: the scatter plot (pyplot) and
    # llmlex.plot_result's figure (the cell's value, not "<Figure size ...>").
    pngs = [c for c in code if any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert any("plt.show()" in c.source for c in pngs)
    assert any("plot_result" in c.source for c in pngs)


@pytest.mark.slow
def test_notebook_offline(monkeypatch):
    nb = _execute(monkeypatch, {})
    _check(nb)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "client: offline proposer" in text
    assert "Best function: " in text and "llmlex's choice: " in text


@pytest.mark.slow
def test_notebook_against_the_local_server(monkeypatch, fake_openai):
    fake_openai.reply_with(StyledReplies("params[0] * np.exp(-params[1] * x)"))
    env = {
        "LLMLEX_BASE_URL": fake_openai.base_url,
        "OPENROUTER_API_KEY": "test-key",
        "LLMLEX_MODEL": "openai/gpt-4o",
    }
    nb = _execute(monkeypatch, env)
    _check(nb)
    assert fake_openai.calls >= 1 + 5  # single_call, then the first generation at least
    assert {r["model"] for r in fake_openai.requests} == {"openai/gpt-4o"}
    spent = nb.cells[-1].outputs[0]["data"]["text/plain"]
    assert float(spent) == pytest.approx(fake_openai.calls * fake_openai.cost_per_call)


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
