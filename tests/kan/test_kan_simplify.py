"""llmlex._kan_simplify: the LLM's simpler forms are parsed, never evaluated, and judged."""

from __future__ import annotations

from kan_helpers import FakeChat, dataset, needs_kan, symbolic_multkan, torch

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
