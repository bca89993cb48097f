"""llmlex._kan_simplify: the LLM's simpler forms are parsed, never evaluated, and judged."""

from __future__ import annotations

from types import SimpleNamespace

import sympy
from kan_helpers import FakeChat, dataset, needs_kan, symbolic_multkan, torch

from llmlex._kan_simplify import llm_simplifications
from llmlex.kan import kan_to_symbolic, symbolic_from_edges


@needs_kan
def test_llm_simplifications_are_parsed_not_evaluated_and_judged():
    model = symbolic_multkan()
    f = lambda X: (  # noqa: E731
        model(torch.tensor(X, dtype=torch.float32)).detach().numpy()[:, 0].astype(float)
    )
    X, y, Xt, yt = dataset(f, n=200)
    edges = kan_to_symbolic(model, None, x=X)
    client = FakeChat(
        "1. __import__('os').system('echo pwned')\n"
        "2. x0 + x1\n"  # simpler but wrong: must be rejected by the score
        "3. np.sin(x0)**2 + np.cos(x0)**2\n"
    )
    (res,) = symbolic_from_edges(
        model, edges, X, y, Xt, yt, client=client, simplify_timeout=0, snap_time=2
    )
    assert len(client.prompts) == 1 and "x0" in client.prompts[0]
    llm = [c for c in res.candidates if c.origin == "llm"]
    assert len(llm) == 2  # the import line never became a candidate
    assert not any(c.accepted for c in llm)
    assert res.r2_test > 0.9999
    assert res.llm_calls == 1


def test_reply_lines_are_parsed_by_the_whitelist():
    x0, x1 = sympy.symbols("x0 x1", real=True)
    client = FakeChat(
        "1. __import__('os').system('echo pwned')\n- y = x0*x1 + 1\n```\n3) np.exp(x0) / x1\n"
    )
    forms, calls = llm_simplifications(client, "m", x0 * x1 + sympy.Float(1.0), ["x0", "x1"], 3)
    assert calls == 1 and len(client.prompts) == 1
    assert "x0*x1" in client.prompts[0] and "x0, x1" in client.prompts[0]
    assert forms == [x0 * x1 + 1, sympy.exp(x0) / x1]


def test_an_async_client_is_awaited():
    x0 = sympy.Symbol("x0", real=True)

    class AsyncChat(FakeChat):
        def __init__(self, reply):
            super().__init__(reply)
            sync_create = self.chat.completions.create

            async def create(**kw):
                return sync_create(**kw)

            self.chat.completions.create = create

    forms, _ = llm_simplifications(AsyncChat("2*x0"), "m", x0 + x0, ["x0"], 1)
    assert forms == [2 * x0]


def test_a_failed_request_costs_only_this_step():
    x0 = sympy.Symbol("x0", real=True)

    def create(**kw):
        raise ConnectionError("no network")

    broken = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    assert llm_simplifications(broken, "m", x0, ["x0"], 2) == ([], 1)
