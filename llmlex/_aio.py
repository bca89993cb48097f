"""Running coroutines from synchronous code, also inside a running event loop (Jupyter)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_sync"]


def _run_in_new_loop(coro: Coroutine[Any, Any, T], workers: int) -> T:
    async def main() -> T:
        # Blocking clients run in the default executor: size it for the concurrency asked,
        # not Python's cpu-count default (6 threads on a 2-core machine).
        asyncio.get_running_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmlex")
        )
        return await coro

    return asyncio.run(main())


def run_sync(coro: Coroutine[Any, Any, T], *, workers: int = 8) -> T:
    """Run ``coro`` to completion and return its result.

    Outside an event loop this is :func:`asyncio.run`.  Inside one (a Jupyter cell, an
    async web handler) blocking the loop's thread with ``asyncio.run`` is impossible, so
    the coroutine runs on a fresh loop in a worker thread while the caller waits.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_new_loop(coro, workers)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_run_in_new_loop, coro, workers).result()
