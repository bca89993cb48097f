"""Progress bars: one factory, so that every long loop shows (or hides) progress alike.

In a terminal this is tqdm's text bar.  In a Jupyter kernel it is tqdm's widget when
ipywidgets is installed; without ipywidgets it is the text bar again, updated at most
once a second -- tqdm's notebook bar would fall back to it with a ``TqdmWarning``, and
every redraw of a text bar is one more output of the cell (a saved notebook keeps them
all).  Bars are closed when done and leave no line behind.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["progress_bar"]

#: Seconds between redraws of a text bar inside a notebook.
NOTEBOOK_INTERVAL = 1.0


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def progress_bar(total: int, enabled: bool, desc: str, *, unit: str = "it") -> Any:
    """A tqdm bar of ``total`` steps, or None when ``enabled`` is False."""
    if not enabled:
        return None
    if _in_kernel():
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.notebook import tqdm as widget

            return widget(total=total, desc=desc, unit=unit, leave=False)
        from tqdm import tqdm as text

        return text(total=total, desc=desc, unit=unit, leave=False, mininterval=NOTEBOOK_INTERVAL)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)
