"""llmlex._aio: running the search's coroutine from synchronous code."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import llmlex

    class Interrupting:
        name = "interrupting"

        async def propose(self, request):
            raise KeyboardInterrupt

    x = np.linspace(0.0, 1.0, 20)
    try:
        llmlex.run_genetic(None, None, x, x**2, proposer=Interrupting(), progress=False)
    except KeyboardInterrupt as err:
        print("interrupted; partial_run =", err.partial_run)
    """
)


def test_an_interrupt_inside_the_loop_reaches_the_caller_once_and_quietly():
    # asyncio stores a KeyboardInterrupt on the task as well as raising it: the task then
    # logged "Task exception was never retrieved" with a traceback at exit.
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "interrupted; partial_run = None" in out.stdout
    assert "never retrieved" not in out.stderr and "Traceback" not in out.stderr
