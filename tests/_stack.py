"""Calling a function under a deep stack: where recursion limits bite first.

A decoder that recurses over a nested document is fine when called near the top of the
stack and raises ``RecursionError`` when called deep inside a caller's own frames (a
notebook, a framework, a test runner).  :func:`boundary_errors` finds the shallowest
stack depth at which ``fn`` fails and returns what it raised there and just below it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def at_depth(n: int, fn: Callable[[], Any]) -> Any:
    """``fn()`` called under ``n`` extra stack frames."""
    return fn() if n <= 0 else at_depth(n - 1, fn)


def _fails(n: int, fn: Callable[[], Any]) -> bool:
    try:
        at_depth(n, fn)
    except BaseException:
        return True
    return False


def boundary_errors(fn: Callable[[], Any], span: int = 6) -> list[BaseException]:
    """What ``fn`` raises at the shallowest failing stack depth and the next ``span``.

    ``fn`` must succeed at the top of the stack.
    """
    assert not _fails(0, fn), "fn fails even at the top of the stack"
    lo, hi = 0, sys.getrecursionlimit()
    while lo < hi:  # failure is monotone in the depth: bisect for its start
        mid = (lo + hi) // 2
        if _fails(mid, fn):
            hi = mid
        else:
            lo = mid + 1
    errors = []
    for n in range(lo, lo + span):
        try:
            at_depth(n, fn)
        except BaseException as err:
            errors.append(err)
    return errors
