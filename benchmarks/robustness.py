"""Robustness: the hostile corpus, kill -9 trials and faulty servers, in one table.

Four kinds of attack, each with a per-attack timeout:

- **hostile ansätze**: texts an LLM could send (huge integers and special functions of
  big literals, power towers, deep nesting, dunder access, lambdas with defaults,
  f-strings, walrus, comprehensions, attribute access, huge literals), each parsed by
  ``parse_ansatz``, converted to sympy (``.canonical``), fitted, saved and loaded back;
  the most dangerous ones also go through a whole ``run_genetic`` with a time budget;
- **hostile replies**: reply texts (huge whitespace runs, nested fences, 1 MB of
  garbage) through ``extract_proposals`` and the parser, and a few through a whole run
  against the local OpenAI-compatible server;
- **kill -9 trials**: a child process running ``run_genetic(checkpoint=...)`` against the
  local server is killed at a random moment; the checkpoint must load, a resumed run
  must complete, and the resume must not pay again for a call the checkpoint recorded;
- **faulty servers**: 429, 500, 401, slow, garbage bodies, 1 MB replies, a closed port,
  through ``run_genetic`` with the real ``openai`` client.

Columns: attacks tried; hangs (over the timeout); crashes (an exception that is not an
llmlex error, or a process that died); corrupt files (a file llmlex wrote that it cannot
load back); repeated paid calls (calls made again after a resume that the checkpoint had
already recorded).  The target is zero in every column.  Each attack runs in a forked
process (a hang is killed at its timeout); the kill -9 trials run ``python -c`` children.

Run (from the repository root):

    python benchmarks/robustness.py --quick     # a smoke run: a few attacks of each kind
    python benchmarks/robustness.py             # everything (a couple of minutes)

Options: ``--timeout`` (seconds per attack; 1 with --quick, 5 by default; a run against
a faulty server gets 15 s more, a served reply 5 s more, a kill -9 trial at least 30 s),
``--trials`` (kill -9 trials; 1 / 8), ``--seed``, ``--only ansatz replies kill servers``
(some kinds only), ``-v`` (a line per attack with what it did, not only the failures).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

# The test suite's local OpenAI-compatible server, and this checkout's llmlex (whatever
# is installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fake_openai import FakeOpenAIServer, FakeReply, closed_port_url

import llmlex
from llmlex.exceptions import LLMLExError

ROOT = Path(__file__).resolve().parents[1]

CATEGORIES = ("hostile ansätze", "hostile replies", "kill -9 trials", "faulty servers")
KINDS = ("ansatz", "replies", "kill", "servers")  # --only

# -- outcomes ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one attack did.

    ``status`` is ``ok`` (completed, or refused with an llmlex error), ``hang``,
    ``crash``, ``corrupt`` or ``code`` (a marker file appeared: code was executed).
    """

    category: str
    name: str
    status: str
    seconds: float
    detail: str = ""
    repeated_calls: int = 0


class _Corrupt(Exception):
    """A file written by llmlex that llmlex cannot load back."""


def _child_main(fn: Callable[[], str], conn: Connection) -> None:
    try:
        status, detail = "ok", fn()
    except _Corrupt as err:
        status, detail = "corrupt", str(err)
    except LLMLExError as err:
        status, detail = "ok", f"{type(err).__name__}: {err}"
    except BaseException as err:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        status, detail = "crash", f"{type(err).__name__} at {where}: {err}"
    conn.send((status, detail[:300]))
    conn.close()


def isolated(category: str, name: str, fn: Callable[[], str], timeout: float) -> Outcome:
    """Run ``fn`` in a forked process; kill it at ``timeout`` (a hang)."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(fn, send), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    send.close()
    if recv.poll(timeout):
        try:
            status, detail = recv.recv()
        except EOFError:  # died before answering (a segfault, os._exit)
            status, detail = "crash", "the process died"
    else:
        status, detail = "hang", f"no answer within {timeout:g} s"
    seconds = time.perf_counter() - t0
    proc.kill()
    proc.join()
    if status == "crash" and proc.exitcode not in (0, None, -signal.SIGKILL):
        detail += f" (exit code {proc.exitcode})"
    recv.close()
    return Outcome(category, name, status, seconds, detail)


# -- hostile ansätze -----------------------------------------------------------------

MARKER = Path(tempfile.gettempdir()) / f"llmlex-robustness-marker-{os.getpid()}"


def hostile_ansatze(quick: bool) -> list[tuple[str, str]]:
    """(name, text) of the hostile ansatz corpus."""
    side_effect = f"__import__('os').system('touch {MARKER}')"
    issue = [
        ("digamma of a big literal", "params[0]*x + scipy.special.digamma(999999999)"),
        ("gamma of a big literal", "params[0]*x + scipy.special.gamma(999999999)"),
        ("np.power tower", "params[0]*x + np.power(9, np.power(9, 9))"),
        ("exp2 of exp2", "params[0]*x + np.exp2(np.exp2(99))"),
        ("nested literal powers", "params[0]*x + (((9**99)**99)**99)**99"),
        ("np.power of huge negatives", "params[0]*x + np.power(-2.7e16, -2.7e16)"),
        ("double negated exponent", "params[0]*x + 2**--1000"),
        ("heaviside", "params[0]*np.heaviside(x, params[1])"),
    ]
    more = [
        ("tower of x", "x**x**x**x**x"),
        ("tower of params", "params[0]**params[1]**params[2]**x"),
        ("9**9**9", "params[0]*9**9**9"),
        ("2**2**2**2**2**2", "params[0]*x + 2**2**2**2**2**2"),
        ("factorial of a big literal", "params[0]*x + scipy.special.factorial(10**6)"),
        ("zeta of a big literal", "params[0]*x + scipy.special.zeta(999999999)"),
        ("deep sin nesting", "np.sin(" * 39 + "params[0]*x" + ")" * 39),
        ("deep parentheses", "(" * 5000 + "x" + ")" * 5000),
        ("deep unary minus", "-" * 5000 + "x"),
        ("long sum", "x" + "+x" * 3000),
        ("dunder subclasses", "x.__class__.__mro__[1].__subclasses__()"),
        ("dunder on a tuple", "().__class__.__bases__[0].__subclasses__()"),
        ("__import__", side_effect),
        ("params dunder", "params.__class__.__init__.__globals__"),
        ("np globals", "np.sin.__globals__['__builtins__']"),
        ("lambda with a default", f"lambda x, *params, y={side_effect}: y"),
        ("lambda default print", "lambda x, p=print: p(x)"),
        ("f-string", f'f"{{{side_effect}}}"'),
        ("f-string huge width", "f'{x!r:>{10**10}}'"),
        ("walrus", "(y := x) * params[0]"),
        ("list comprehension", "[x for x in range(10**9)]"),
        ("generator sum", "sum(x for x in range(10**10))"),
        ("np.random", "np.random.seed(0) or x"),
        ("np.load", "np.load('/etc/passwd')"),
        ("open", "open('/etc/passwd').read()"),
        ("attribute of x", "x.real * params[0]"),
        ("np.ctypeslib", "np.ctypeslib.ctypes.CDLL(None)"),
        ("getattr", "getattr(np, 'sys')"),
        ("huge integer literal", "params[0]*x + 1" + "0" * 1900),
        ("inf literal", "1e999*x"),
        ("huge hex literal", "0x" + "f" * 1900 + "*x"),
        ("megabyte of x", "x" * 10**6),
        ("huge param index", "params[10**100]*x"),
        ("negative param index", "params[-1]*x"),
        ("slice of params", "params[0:10**9]"),
        ("starred", "np.sin(*params)"),
        ("keyword arguments", "np.sin(x, out=params)"),
        ("null byte", "params[0]*x\x00 + 1"),
        ("where with huge branch", "np.where(x > 0, 9**99**99, params[0])"),
    ]
    if quick:  # one hang of the issue's list, one refusal, one accepted oddity
        return [issue[0], ("__import__", side_effect), issue[-1]]
    return issue + more


def ansatz_attack(text: str, x: np.ndarray, y: np.ndarray, workdir: Path) -> Callable[[], str]:
    """Parse, convert to sympy, fit, save and load back one hostile text."""

    def attack() -> str:
        from llmlex import fit_ansatz, load_result, parse_ansatz, save_result
        from llmlex.exceptions import AnsatzError, PersistError

        try:
            a = parse_ansatz(text)
        except AnsatzError as err:
            return f"rejected: {err}"
        canonical = a.canonical
        result = fit_ansatz(a, x, y, timeout=2.0)
        path = workdir / f"fit-{os.getpid()}.json"
        save_result(result, path)
        try:
            load_result(path)
        except PersistError as err:
            raise _Corrupt(f"saved fit does not load: {err}") from None
        return f"accepted ({canonical[:40]}), nchi2 {result.nchi2:.3g}"

    return attack


#: The hostile texts also offered by a proposer inside a whole run.
IN_A_RUN = ("digamma of a big literal", "np.power tower", "nested literal powers", "heaviside")


def ansatz_run_attack(text: str, x: np.ndarray, y: np.ndarray) -> Callable[[], str]:
    """A whole run whose proposer offers the hostile text (time_budget=2 s)."""

    def attack() -> str:
        from llmlex.proposer import Proposal, ProposalBatch

        class Hostile:
            name = "hostile"

            async def propose(self, request: Any) -> ProposalBatch:
                return ProposalBatch(proposals=(Proposal(text), Proposal("params[0]*x")))

        run = llmlex.run_genetic(
            None, None, x, y, 2, 2, proposer=Hostile(), progress=False, time_budget=2.0
        )
        return f"run ended: {run.stop_reason}; failures {dict(run.stats.failures)}"

    return attack


# -- hostile replies -----------------------------------------------------------------


def hostile_replies(quick: bool, seed: int) -> list[tuple[str, str]]:
    """(name, reply) of the hostile reply corpus."""
    rng = random.Random(seed)
    garbage = "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(1 << 20))
    printable = "".join(rng.choice("`'\"()[]{}:=*+-/ xparamsnp.sin\n\t") for _ in range(1 << 20))
    replies = [
        ("'ansatz' + 1500 spaces", "ansatz" + " " * 1500),
        ("'initial:' + 20k spaces", "initial:" + " " * 20_000),
        ("fence + 50k spaces", "```" + " " * 50_000),
        ("1 MB garbage", garbage),
    ]
    more = [
        ("'ansatz:' + 1500 spaces + x", "ansatz:" + " " * 1500 + "x"),
        ("'ansatz' + 5000 spaces", "ansatz" + " " * 5000),
        ("200k newlines", "ansatz:\n" + "\n" * 200_000),
        ("1000 nested fences", "```python\n" * 1000 + "params[0]*x\n" + "```\n" * 1000),
        ("fences only", "```" * 20_000),
        ("backticks and spaces", "` " * 50_000),
        ("lambda + spaces", "lambda x, *params:" + " " * 50_000),
        ("def + spaces", "def f(x, params):" + " " * 20_000 + "return"),
        ("y = + spaces", "y =" + " " * 50_000 + "x"),
        ("initial list of 100k", "ansatz: params[0]*x\ninitial: [" + "1," * 100_000 + "]"),
        ("think block unclosed", "<think>" + "ansatz: x\n" * 20_000),
        ("1 MB of expression characters", printable),
        ("1 MB one line", "ansatz: " + "x+" * (1 << 19) + "x"),
    ]
    return [replies[0], replies[-1]] if quick else replies + more


def reply_attack(reply: str) -> Callable[[], str]:
    """Extract proposals from a reply and parse each."""

    def attack() -> str:
        from llmlex import parse_ansatz
        from llmlex.exceptions import AnsatzError
        from llmlex.llm import extract_proposals

        proposals = extract_proposals(reply)
        accepted = 0
        for p in proposals[:50]:
            try:
                parse_ansatz(p.text)
                accepted += 1
            except AnsatzError:
                pass
        return f"{len(proposals)} proposal(s), {accepted} parsed"

    return attack


def served_reply_attack(reply: str, x: np.ndarray, y: np.ndarray) -> Callable[[], str]:
    """A whole run (real openai client, local server) whose every reply is ``reply``."""

    def attack() -> str:
        server = FakeOpenAIServer().start()
        try:
            server.reply_with(FakeReply(content=reply))
            client = server.client(max_retries=0, timeout=5.0)
            run = llmlex.run_genetic(
                client, "QUJD", x, y, 2, 1, progress=False, time_budget=2.0, model="fake/m"
            )
            return f"run ended: {run.stop_reason}"
        finally:
            server.stop()

    return attack


# -- faulty servers ------------------------------------------------------------------


def faulty_servers(quick: bool, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """(name, configuration) of the faulty-server runs."""
    rng = random.Random(seed)
    big = "".join(rng.choice("abc xyz()+*\n") for _ in range(1 << 20))
    servers: list[tuple[str, dict[str, Any]]] = [
        ("500 always", {"reply": FakeReply(status=500)}),
        ("closed port", {"closed": True}),
    ]
    more: list[tuple[str, dict[str, Any]]] = [
        ("429 always", {"reply": FakeReply(status=429), "retries": 1}),
        ("401", {"reply": FakeReply(status=401)}),
        ("slow (3 s, client timeout 1 s)", {"reply": FakeReply(latency=3.0), "timeout": 1.0}),
        ("garbage body", {"reply": FakeReply(body=b"\x00\xff<html>" * 1000)}),
        ("HTML error page", {"reply": FakeReply(status=502, body="<html>bad gateway</html>")}),
        ("1 MB reply", {"reply": FakeReply(content=big)}),
        ("empty content", {"reply": FakeReply(content=None)}),
        ("no choices", {"reply": FakeReply(body=json.dumps({"choices": []}))}),
    ]
    return servers[1:] if quick else servers + more


def server_attack(config: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Callable[[], str]:
    """A run against a faulty server; an llmlex error or a result are both fine."""

    def attack() -> str:
        import openai

        server = FakeOpenAIServer().start()
        try:
            if "reply" in config:
                server.reply_with(config["reply"])
            url = closed_port_url() if config.get("closed") else server.base_url
            client = openai.OpenAI(
                base_url=url,
                api_key="k",
                max_retries=config.get("retries", 0),
                timeout=config.get("timeout", 5.0),
            )
            try:
                run = llmlex.run_genetic(client, "QUJD", x, y, 3, 2, progress=False, model="m")
            finally:
                client.close()
            return f"run ended: {run.stop_reason}; {server.calls} call(s)"
        finally:
            server.stop()

    return attack


# -- kill -9 trials ------------------------------------------------------------------

POPULATION, GENERATIONS = 3, 6

CHILD = textwrap.dedent(
    f"""
    import json, sys
    import numpy as np
    import openai
    import llmlex
    from llmlex.llm import LLMProposer

    base_url, path = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=30)
    x = np.linspace(-1, 1, 40)
    y = np.sin(2.5 * x) + 0.3 * x**3
    run = llmlex.run_genetic(
        client, "QUJD", x, y, {POPULATION}, {GENERATIONS}, seed=5, progress=False,
        exit_condition=0.0, proposer=LLMProposer(client, model="fake/m", parent_plots=False),
        checkpoint=path,
    )
    print(json.dumps({{"generations": len(run), "calls": run.stats.calls}}))
    """
)

REPLIES = [
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)\ninitial: [1.0, 2.5]",
    "ansatz: lambda x, *params: params[0]*x + params[1]*x**2",
    "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x) + params[2]*x**2",
]


def kill_trial(
    n: int, server: FakeOpenAIServer, workdir: Path, rng: random.Random, timeout: float
) -> Outcome:
    """Kill a checkpointing run at a random moment, check the file, resume, count calls."""
    from llmlex import load_result
    from llmlex.exceptions import PersistError

    name = f"trial {n + 1}"
    path = workdir / f"kill-{n}" / "ckpt.json"
    path.parent.mkdir(parents=True)
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    t0 = time.perf_counter()
    start = server.calls
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.base_url, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    delay = rng.uniform(0.0, 1.0)  # a run takes about 1 s after its first call
    try:
        deadline = time.monotonic() + timeout
        while server.calls == start and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)  # somewhere in the run: between, inside or after a checkpoint write
    finally:
        proc.kill()
        _, err = proc.communicate()
    time.sleep(0.2)  # let requests already on the wire be recorded
    detail = f"killed {delay:.2f} s after the first call"
    if proc.returncode not in (-signal.SIGKILL, 0):
        return Outcome(
            "kill -9 trials",
            name,
            "crash",
            time.perf_counter() - t0,
            f"child failed: {err.decode()[-200:]}",
        )
    saved_generations = 0
    if path.exists():
        try:
            saved = load_result(path)
        except PersistError as exc:
            return Outcome("kill -9 trials", name, "corrupt", time.perf_counter() - t0, str(exc))
        saved_generations = len(saved)
    orphans = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    detail += f"; {saved_generations} generation(s) saved"
    if orphans:
        detail += f"; {len(orphans)} orphan temporary file(s)"
    before = server.calls
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, server.base_url, str(path)],
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(
            "kill -9 trials",
            name,
            "hang",
            time.perf_counter() - t0,
            f"{detail}; the resumed run took over {timeout:g} s",
        )
    if out.returncode != 0:
        tail = out.stderr.decode()[-300:]
        status = "corrupt" if "CheckpointError" in tail else "crash"
        return Outcome(
            "kill -9 trials",
            name,
            status,
            time.perf_counter() - t0,
            f"{detail}; resume failed: {tail}",
        )
    summary = json.loads(out.stdout.decode().strip().splitlines()[-1])
    new = server.calls - before
    expected = POPULATION * (GENERATIONS - saved_generations)
    repeated = max(0, new - expected)
    status = "ok" if summary["generations"] == GENERATIONS else "crash"
    detail += f"; resume made {new} call(s) (needed {expected}), {summary['generations']} gens"
    return Outcome("kill -9 trials", name, status, time.perf_counter() - t0, detail, repeated)


# -- the table -----------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    """The Markdown summary: one row per kind of attack, then the total."""
    lines = [
        "| attacks | tried | hangs | crashes | corrupt files | repeated paid calls |",
        "|---|---|---|---|---|---|",
    ]
    rows = [(c, [o for o in outcomes if o.category == c]) for c in CATEGORIES]
    rows.append(("**total**", outcomes))
    for label, group in rows:
        if not group and label != "**total**":
            continue
        hangs = sum(o.status == "hang" for o in group)
        crashes = sum(o.status in ("crash", "code") for o in group)
        corrupt = sum(o.status == "corrupt" for o in group)
        repeated = sum(o.repeated_calls for o in group)
        lines.append(f"| {label} | {len(group)} | {hangs} | {crashes} | {corrupt} | {repeated} |")
    return "\n".join(lines)


def details(outcomes: list[Outcome], everything: bool = False) -> str:
    """One line per attack that did not meet the target (per attack with ``everything``)."""
    bad = [o for o in outcomes if everything or o.status != "ok" or o.repeated_calls]
    if not bad:
        return "Every attack met the target."
    out = ["| kind | attack | outcome | time (s) | detail |", "|---|---|---|---|---|"]
    for o in bad:
        text = o.detail.replace("|", "\\|").replace("\n", " ")
        status = o.status + (f", {o.repeated_calls} repeated" if o.repeated_calls else "")
        out.append(f"| {o.category} | {o.name} | {status} | {o.seconds:.1f} | {text} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few attacks of each kind")
    parser.add_argument("--timeout", type=float, help="seconds per attack (1 quick, 5 else)")
    parser.add_argument("--trials", type=int, help="kill -9 trials (1 quick, 8 else)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=KINDS, nargs="+", default=KINDS, help="kinds to run")
    parser.add_argument("-v", "--verbose", action="store_true", help="detail every attack")
    args = parser.parse_args()
    kinds = set(args.only)
    timeout = args.timeout or (1.0 if args.quick else 5.0)
    trials = args.trials if args.trials is not None else (1 if args.quick else 8)
    t_start = time.perf_counter()
    x = np.linspace(0.1, 3.0, 60)
    y = 1.7 * np.exp(-0.4 * x) * np.sin(2.2 * x) + 0.05 * x
    outcomes: list[Outcome] = []

    def record(o: Outcome) -> None:
        if MARKER.exists():  # a hostile text executed code
            MARKER.unlink()
            o.status, o.detail = "code", f"CODE WAS EXECUTED: {o.detail}"
        outcomes.append(o)
        print(f"  {o.category:16} {o.name[:44]:44} {o.status:7} {o.seconds:6.2f} s", flush=True)

    # Import and warm up here once: every forked attack then starts at once.
    import openai  # noqa: F401

    warm = llmlex.fit_ansatz(llmlex.parse_ansatz("params[0]*np.sin(params[1]*x)"), x, y)
    assert warm.expression is not None and warm.compiled is not None
    with tempfile.TemporaryDirectory(prefix="llmlex-robustness-") as tmp:
        work = Path(tmp)
        print(f"llmlex {llmlex.__version__} from {Path(llmlex.__file__).parent}", flush=True)
        # Forked attacks first, while this process has no server threads to fork.
        for name, text in hostile_ansatze(args.quick) if "ansatz" in kinds else []:
            record(isolated(CATEGORIES[0], name, ansatz_attack(text, x, y, work), timeout))
        if not args.quick and "ansatz" in kinds:
            for name, text in [t for t in hostile_ansatze(False) if t[0] in IN_A_RUN]:
                attack = ansatz_run_attack(text, x, y)
                record(isolated(CATEGORIES[0], f"in a run: {name}", attack, timeout))
        for name, reply in hostile_replies(args.quick, args.seed) if "replies" in kinds else []:
            record(isolated(CATEGORIES[1], name, reply_attack(reply), timeout))
        served = [] if args.quick else hostile_replies(False, args.seed)[::3][:2]
        for name, reply in served if "replies" in kinds else []:
            attack = served_reply_attack(reply, x, y)
            record(isolated(CATEGORIES[1], f"served: {name}", attack, timeout + 5.0))
        for name, config in faulty_servers(args.quick, args.seed) if "servers" in kinds else []:
            attack = server_attack(config, x, y)
            record(isolated(CATEGORIES[3], name, attack, timeout + 15.0))
        if trials and "kill" in kinds:
            rng = random.Random(args.seed)
            server = FakeOpenAIServer(latency=0.1).start()
            server.reply_with(lambda body: REPLIES[len(server.requests) % len(REPLIES)])
            try:
                for n in range(trials):
                    record(kill_trial(n, server, work, rng, max(timeout, 30.0)))
            finally:
                server.stop()

    mode = "quick" if args.quick else "full"
    print(
        f"\n## llmlex robustness ({mode}, {time.perf_counter() - t_start:.0f} s, "
        f"timeout {timeout:g} s per attack)\n"
    )
    print(table(outcomes))
    print()
    print(details(outcomes, args.verbose))


if __name__ == "__main__":
    main()
