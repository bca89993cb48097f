"""Helpers for tests that kill a child process with SIGKILL at a chosen moment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest


@contextlib.contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Yield ``proc``; on the way out, whatever happened, kill it, wait and close its pipes."""
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def kill_9_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ends first or never does."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            pytest.fail(f"child ended early: {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"not ready within {timeout} s")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
