"""Draw logo.png with llmlex's own plotting: data and the fits an offline run found.

Run:  python examples/make_logo.py
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

import llmlex
from llmlex.images import fits_image

x = np.linspace(0.0, 10.0, 90)
y = 2.0 * np.exp(-0.3 * x) * np.cos(2.0 * x)
run = llmlex.run_genetic(None, None, x, y, 6, 3, seed=0, progress=False)
png = fits_image(x, y, [run.best], labels=[f"llmlex: {run.best.formula(3)}"])
out = Path(__file__).resolve().parents[1] / "logo.png"
out.write_bytes(base64.b64decode(png))
print(f"wrote {out}")
