"""Wall time of one generation of 8 LLM calls against a local server with 0.3 s latency.

Sequential calls would take 8 x 0.3 = 2.4 s; concurrent ones about one latency plus
drawing and fitting.  Uses the real openai client and the test suite's local
OpenAI-compatible server (tests/fake_openai.py).  Generation 0 sends the data plot;
generation 1 draws one plot of data + parents per child.

Run:  python benchmarks/concurrency.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_openai import FakeOpenAIServer

import llmlex

REPLIES = [
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)",
    "ansatz: lambda x, *params: params[0]*x + params[1]",
    "ansatz: lambda x, *params: params[0]*np.tanh(params[1]*x)",
    "ansatz: lambda x, *params: params[0]*x**3 + params[1]*x",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    server = FakeOpenAIServer(latency=args.latency).start()
    counter = iter(range(10**9))
    server.reply_with(lambda body: REPLIES[next(counter) % len(REPLIES)])
    x = np.linspace(-1, 1, 40)
    y = np.sin(2.7 * x) + 0.05 * x**2  # not reachable exactly: both generations run
    llmlex.run_genetic(server.client(), None, x, y, 2, 1, progress=False)  # warm imports
    print("| client | generation 0 (s) | two generations (s) | max in flight |")
    print("|---|---|---|---|")
    for kind in ("OpenAI", "AsyncOpenAI"):
        one, two = [], []
        for r in range(args.repeat):
            for gens, out in ((1, one), (2, two)):
                client = server.async_client() if kind == "AsyncOpenAI" else server.client()
                t0 = time.perf_counter()
                llmlex.run_genetic(client, None, x, y, 8, gens, progress=False, seed=r)
                out.append(time.perf_counter() - t0)
                if kind == "AsyncOpenAI":
                    asyncio.run(client.close())
        print(
            f"| {kind} | {statistics.median(one):.2f} | {statistics.median(two):.2f} "
            f"| {server.max_in_flight} |"
        )
    print(f"\nsequential would be {8 * args.latency:.1f} s per generation")
    server.stop()


if __name__ == "__main__":
    main()
