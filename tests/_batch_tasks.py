"""Picklable callbacks for the batch tests: they run inside the workers (process pools,
Dask, Ray), which import this module by name (the tests directory is on their path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class KillOnce:
    """Kill the worker process that first calls it (one process wins the marker file).

    Used as ``run_genetic``'s ``callback``: the first generation finished anywhere in the
    batch takes its worker down with it, as a crash or an out-of-memory kill would.
    """

    def __init__(self, marker: str | os.PathLike[str]) -> None:
        self.marker = str(marker)

    def __call__(self, generation: int, population: Any) -> None:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(1)  # no cleanup, no exception: the process is gone


class InterruptAfter:
    """Raise KeyboardInterrupt at the ``n``-th generation finished in this process."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def __call__(self, generation: int, population: Any) -> None:
        self.seen += 1
        if self.seen >= self.n:
            raise KeyboardInterrupt


class Count:
    """Count the generations finished in this process."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, generation: int, population: Any) -> None:
        self.seen += 1


def where_is_llmlex() -> str:
    """The file of the llmlex package a worker imports (is it the tested one?)."""
    import llmlex

    return str(Path(llmlex.__file__).resolve())
