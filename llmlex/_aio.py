"""Running coroutines from synchronous code, also inside a running event loop (Jupyter)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_sync"]


class _Cancel:
    """Cancels a coroutine running on another thread's loop, before or after it starts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.requested = False

    def bind(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        with self.lock:
            self.loop, self.task = loop, task
            if self.requested:
                task.cancel()

    def request(self) -> None:
        with self.lock:
            self.requested = True
            if self.loop is not None and self.task is not None:
                with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                    self.loop.call_soon_threadsafe(self.task.cancel)


class _Interrupted:
    """A KeyboardInterrupt raised inside the coroutine, carried out of the loop as a value.

    asyncio re-raises a KeyboardInterrupt out of the loop *and* leaves it stored on the
    task, which then logs "Task exception was never retrieved" when collected; returned as
    a value, it is raised once, by the caller, with its attributes (``partial_run``) intact.
    """

    def __init__(self, error: KeyboardInterrupt) -> None:
        self.error = error


def _run_in_new_loop(
    coro: Coroutine[Any, Any, T], workers: int, cancel: _Cancel | None = None
) -> T:
    async def main() -> T | _Interrupted:
        # Blocking clients run in the default executor: size it for the concurrency asked,
        # not Python's cpu-count default (6 threads on a 2-core machine).
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmlex")
        )
        task = asyncio.current_task()
        if cancel is not None and task is not None:
            cancel.bind(loop, task)
        # A cancellation requested meanwhile is delivered inside coro, at its first await.
        try:
            return await coro
        except KeyboardInterrupt as err:
            return _Interrupted(err)

    out = asyncio.run(main())
    if isinstance(out, _Interrupted):
        raise out.error
    return out


def run_sync(coro: Coroutine[Any, Any, T], *, workers: int = 8) -> T:
    """Run ``coro`` to completion and return its result.

    Outside an event loop this is :func:`asyncio.run`.  Inside one (a Jupyter cell, an
    async web handler) blocking the loop's thread with ``asyncio.run`` is impossible, so
    the coroutine runs on a fresh loop in a worker thread while the caller waits.  If the
    wait is interrupted (Ctrl-C in a notebook raises ``KeyboardInterrupt`` in the
    caller's thread), the coroutine is cancelled and the interrupt re-raised once it has
    stopped: the work does not go on unseen in the background.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_new_loop(coro, workers)
    cancel = _Cancel()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(_run_in_new_loop, coro, workers, cancel)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                cancel.request()
                # The coroutine unwinds at its next await; its own outcome (a
                # CancelledError) is not the caller's: the interrupt is.
                concurrent.futures.wait([future])
            raise
    finally:
        pool.shutdown(wait=False)
