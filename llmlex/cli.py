"""The ``llmlex`` command: ``llmlex demo``, ``llmlex fit data.csv --x COL --y COL`` and
``llmlex batch DIR_OR_GLOB --x COL --y COL --out results/`` (one search per file, on a
process pool or a Dask cluster, resumable).

Results go to stdout, progress and errors to stderr.  Errors a user can fix (a missing
file or column, non-numeric cells, too few rows) end with one line and exit status 2.
A run stopped early by Ctrl-C (exit status 130) or a fatal error such as a key rejected
mid-run (exit status 2) still prints the best formula found so far and writes ``--out``,
marked ``"partial": true`` with the stop reason.  API keys and the endpoint come from the
environment or from the ``.env`` file of the working directory.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmlex._clientspec import OPENROUTER_URL, ClientSpec
from llmlex._jsonio import write_atomic
from llmlex._uncertainty import format_value
from llmlex._validation import check_sigma, check_xy
from llmlex._version import __version__
from llmlex.batch import BatchResult, run_many
from llmlex.exceptions import LLMLExError, UsageError
from llmlex.genetic import run_genetic

__all__ = ["main", "read_columns", "read_table"]

log = logging.getLogger(__name__)


def read_table(path: str | os.PathLike[str], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Read two numeric columns from a CSV or whitespace-separated table.

    Parameters
    ----------
    path : path-like
        The file.  Delimiter is detected (comma, semicolon, tab, whitespace); a header row
        is used if the first row is not numeric.
    x, y : str
        Column names (with a header) or 0-based column indices.

    Returns
    -------
    x, y : ndarray

    Raises
    ------
    UsageError
        For a missing file, a missing column, a non-numeric cell or an empty table.
    """
    xs, ys = read_columns(path, x, y)
    return xs, ys


#: Cells that mean "no value" (``--dropna`` drops their rows; otherwise they are errors).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})


def read_columns(
    path: str | os.PathLike[str], *columns: str, dropna: bool = False
) -> list[np.ndarray]:
    """Read numeric columns from a CSV or whitespace-separated table.

    Parameters
    ----------
    path : path-like
        The file (as in :func:`read_table`).
    *columns : str
        Column names (with a header) or 0-based column indices.
    dropna : bool
        Drop the rows where one of ``columns`` is missing (an empty cell, ``NA``, ``NaN``,
        ``null``, ``-``, ``?``) or not finite, instead of raising.  Other non-numeric
        cells are errors either way.

    Returns
    -------
    list of ndarray
        One per column, in order.

    Raises
    ------
    UsageError
        For a missing file, a missing column, a non-numeric cell or an empty table.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no such file: {p}")
    lines = [
        ln.strip()
        for ln in p.read_text(encoding="utf-8-sig").splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise UsageError(f"{p} has no data rows")
    first = lines[0]
    delim = next((d for d in (",", ";", "\t") if d in first), None)

    def split(line: str) -> list[str]:
        cells = line.split(delim) if delim else line.split()
        return [c.strip().strip('"').strip("'") for c in cells]

    rows = [split(ln) for ln in lines]
    header: list[str] | None = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = rows[0], rows[1:]
    cols = [_column_index(spec, header, len(rows[0]) if rows else 0, p) for spec in columns]
    out = np.empty((len(rows), len(cols)))
    for r, row in enumerate(rows):
        for k, c in enumerate(cols):
            if c >= len(row):
                if dropna:
                    out[r, k] = np.nan
                    continue
                raise UsageError(f"{p}: row {r + 1 + (header is not None)} has no column {c}")
            try:
                out[r, k] = float(row[c])
            except ValueError:
                if dropna and row[c].strip().lower() in MISSING:
                    out[r, k] = np.nan
                    continue
                line_no = r + 1 + (header is not None)
                hint = " (--dropna drops rows with missing values)" if not dropna else ""
                raise UsageError(
                    f"{p}: non-numeric cell {row[c]!r} at line {line_no}, column "
                    f"{columns[k]!r}{hint}"
                ) from None
    if dropna:
        keep = np.all(np.isfinite(out), axis=1)
        dropped = int(out.shape[0] - keep.sum())
        if dropped:
            log.warning("%s: dropped %d row(s) with missing values", p, dropped)
        out = out[keep]
    return [out[:, k] for k in range(len(cols))]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_index(spec: str, header: list[str] | None, width: int, path: Path) -> int:
    if header is not None and spec in header:
        return header.index(spec)
    if spec.lstrip("-").isdigit():
        idx = int(spec)
        if 0 <= idx < (len(header) if header else width):
            return idx
    known = f"; columns are {', '.join(header)}" if header else f" (0..{width - 1})"
    raise UsageError(f"{path}: no column {spec!r}{known}")


def _load_dotenv() -> None:
    try:
        from dotenv import find_dotenv, load_dotenv

        # The .env of the working directory (or the nearest parent that has one), as
        # .env.example says.  A bare load_dotenv() searches from this module's folder,
        # i.e. the installed package, and never finds the user's file.  It never
        # overrides a variable set in the shell.
        dotenv = find_dotenv(usecwd=True)
        if dotenv:
            load_dotenv(dotenv)
    except ImportError:  # pragma: no cover - python-dotenv is a dependency
        pass


def _client(args: argparse.Namespace) -> Any:
    """An OpenAI-compatible client when a model was asked for, else None (offline)."""
    if args.model is None:
        return None
    _load_dotenv()
    import openai

    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = None
    if base_url is None and os.environ.get("OPENROUTER_API_KEY"):
        base_url = "https://openrouter.ai/api/v1"
    if base_url and "openrouter.ai" in base_url:
        key = os.environ.get("OPENROUTER_API_KEY")
    key = key or os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENROUTER_API_KEY")
    if key is None:
        if base_url is None:
            raise UsageError(
                "--model needs an API key: set OPENROUTER_API_KEY or OPENAI_API_KEY "
                "(environment or .env), or give --base-url of a local server"
            )
        key = "not-needed"  # local servers (Ollama, vLLM, llama.cpp) ignore the key
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=args.retries)


def _report(result: Any, elapsed: float, label: str) -> str:
    errors = result.param_errors
    params = ", ".join(
        f"params[{k}] = {format_value(v, e, show_error=True)}"
        for k, (v, e) in enumerate(zip(result.params, errors, strict=True))
    )
    lines = [
        f"{label}",
        f"  formula:    {result.formula()}",
        f"  ansatz:     {result.ansatz}",
        f"  parameters: {params or '(none)'}",
        f"  nchi2:      {result.nchi2:.4g}   (score = {result.score:.4g})",
        f"  chi2/dof:   {result.chi2:.4g} / {result.dof} = {result.reduced_chi2:.3g}   "
        f"(noise {result.noise:.3g})",
        f"  complexity: {result.complexity}   (description length "
        f"{result.description_length:.4g} nats)",
        f"  time:       {elapsed:.1f} s",
    ]
    return "\n".join(lines)


def _save_plot(path: Path, x: np.ndarray, y: np.ndarray, result: Any, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(x, y, s=12, color="k", label="data")
    grid = np.linspace(x.min(), x.max(), 400)
    ax.plot(grid, result.predict(grid), color="C3", label=f"fit (nchi2={result.nchi2:.2g})")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _run(
    args: argparse.Namespace,
    x: np.ndarray,
    y: np.ndarray,
    label: str,
    sigma: np.ndarray | None = None,
) -> Any:
    client = _client(args)
    t0 = time.perf_counter()
    try:
        run = run_genetic(
            client,
            None,
            x,
            y,
            sigma=sigma,
            absolute_sigma=sigma is not None,
            population_size=args.population_size,
            num_of_generations=args.num_of_generations,
            model=args.model or "offline",
            seed=args.seed,
            progress=not args.quiet,
            patience=args.patience,
            time_budget=args.time_budget,
            hints=tuple(args.hints or ()),
            allowed_functions=args.allowed_functions,
        )
    except (KeyboardInterrupt, LLMLExError) as exc:
        # Ctrl-C or a fatal error (a key rejected mid-run): what was found is shown and
        # saved before main() reports the error, not lost with it.
        partial = getattr(exc, "partial_run", None)
        if partial is None:
            if isinstance(exc, KeyboardInterrupt):
                sys.stderr.write("llmlex: interrupted before any formula was fitted\n")
        else:
            elapsed = time.perf_counter() - t0
            _show(args, partial, elapsed, f"{label} (stopped early)", partial=True)
            saved = f"; saved to {args.out}, marked partial" if args.out else ""
            sys.stderr.write(
                f"llmlex: the run stopped early ({partial.stop_reason}); the formula above "
                f"is the best found so far{saved}\n"
            )
        raise
    _show(args, run, time.perf_counter() - t0, label)
    return run.best


def _show(
    args: argparse.Namespace, run: Any, elapsed: float, label: str, *, partial: bool = False
) -> None:
    """Print a run's best formula and write ``--out`` (``partial``: the run stopped early)."""
    best = run.best
    sys.stdout.write(_report(best, elapsed, label) + "\n")
    stats = run.stats
    sys.stdout.write(
        f"  search:     {run.proposer}, {stats.generations} generation(s), {stats.calls} API "
        f"call(s), {stats.total_tokens} tokens; {run.stop_reason}\n"
    )
    if args.out:
        payload = _payload(args, run, partial)
        # Atomic: a second Ctrl-C while writing leaves the old file or the new, not a part.
        _write_json(args.out, payload)
        sys.stdout.write(f"  result:     {args.out}\n")


def _write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically, as strict JSON: a value that is not finite (an
    undetermined error) is written as the string "nan", "inf" or "-inf", as llmlex's
    own files do."""
    text = json.dumps(_finite_json(payload), indent=2, allow_nan=False)
    write_atomic(path, text + "\n")


def _payload(args: argparse.Namespace, run: Any, partial: bool) -> dict[str, Any]:
    """What ``--out`` holds for one run: the formula, its fit, the search's record."""
    best, stats = run.best, run.stats
    return {
        "formula": best.formula(),
        "best": best.to_dict(),
        "complexity": best.complexity,
        "columns": _columns(args),
        "seed": args.seed,
        "llmlex_version": __version__,
        "pareto_front": [r.to_dict() for r in run.pareto_front],
        "stats": {
            "calls": stats.calls,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "failures": dict(stats.failures),
            "generations": stats.generations,
            "time": stats.time,
        },
        "proposer": run.proposer,
        "stop_reason": run.stop_reason,
        "partial": partial,
    }


def _columns(args: argparse.Namespace) -> dict[str, str] | None:
    if getattr(args, "x", None) is None:
        return None
    cols = {"x": args.x, "y": args.y}
    if args.yerr is not None:
        cols["yerr"] = args.yerr
    return cols


def _finite_json(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by its name."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def _demo(args: argparse.Namespace) -> int:
    # A damped oscillation with noise: the sort of curve one meets in a lab.
    rng = np.random.default_rng(args.seed)
    x = np.linspace(0.0, 10.0, 120)
    y = 2.0 * np.exp(-0.3 * x) * np.cos(2.0 * x) + 0.01 * rng.standard_normal(x.size)
    truth = "2*exp(-0.3*x)*cos(2*x) + 1% noise"
    best = _run(args, x, y, f"llmlex demo: data from {truth}")
    png = Path(args.png)
    _save_plot(png, x, y, best, f"llmlex demo: {best.formula(4)}")
    sys.stdout.write(f"  plot:       {png}\n")
    return 0


def _fit(args: argparse.Namespace) -> int:
    if args.yerr is None:
        x, y = read_columns(args.file, args.x, args.y, dropna=args.dropna)
        sigma = None
    else:
        x, y, sigma = read_columns(args.file, args.x, args.y, args.yerr, dropna=args.dropna)
    x, y = check_xy(x, y)
    if sigma is not None:
        sigma = check_sigma(sigma, x.size)
    label = f"llmlex fit {args.file}: y = {args.y}, x = {args.x}"
    if args.yerr is not None:
        label += f", error bars = {args.yerr}"
    best = _run(args, x, y, label, sigma)
    if args.png:
        _save_plot(Path(args.png), x, y, best, best.formula(4))
        sys.stdout.write(f"  plot:       {args.png}\n")
    return 0


#: Files a directory given to ``llmlex batch`` contributes (other files are ignored).
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")


def _inputs(spec: str) -> list[Path]:
    """The tables of ``llmlex batch``: a directory's, or a glob pattern's, sorted."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
    else:
        files = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
    if not files:
        raise UsageError(f"no data files in {spec!r} (a directory of tables or a glob pattern)")
    stems = [p.stem for p in files]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise UsageError(f"two input files share the name {twins[0]!r}: results go by name")
    return files


def _client_spec(args: argparse.Namespace) -> ClientSpec | None:
    """The workers' client, as a description: its key stays in each worker's environment."""
    if args.model is None:
        return None
    _load_dotenv()
    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL") or None
    if base_url is None and os.environ.get("OPENROUTER_API_KEY"):
        base_url = OPENROUTER_URL
    if base_url and "openrouter.ai" in base_url:
        env: str | None = "OPENROUTER_API_KEY"
    elif os.environ.get("OPENAI_API_KEY"):
        env = "OPENAI_API_KEY"
    elif os.environ.get("OPENROUTER_API_KEY"):
        env = "OPENROUTER_API_KEY"
    elif base_url is not None:
        env = None  # local servers (Ollama, vLLM, llama.cpp) ignore the key
    else:
        raise UsageError(
            "--model needs an API key: set OPENROUTER_API_KEY or OPENAI_API_KEY "
            "(environment or .env), or give --base-url of a local server"
        )
    return ClientSpec(base_url=base_url, api_key_env=env, max_retries=args.retries)


def _executor(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(executor, what to close)`` of ``llmlex batch``: a Dask cluster's or the default."""
    if args.scheduler is None:
        return None, None
    try:
        import distributed
    except ImportError:
        raise UsageError('--scheduler needs Dask: pip install "llmlex[dask]"') from None
    try:
        client = distributed.Client(args.scheduler, timeout=30)
    except (OSError, TimeoutError) as err:
        raise UsageError(f"cannot reach the Dask scheduler at {args.scheduler}: {err}") from None
    return client.get_executor(), client


def _batch(args: argparse.Namespace) -> int:
    files = _inputs(args.inputs)
    datasets: dict[str, dict[str, np.ndarray]] = {}
    for path in files:
        cols = [args.x, args.y] + ([args.yerr] if args.yerr is not None else [])
        values = read_columns(path, *cols, dropna=args.dropna)
        try:
            x, y = check_xy(values[0], values[1])
            sigma = None if args.yerr is None else check_sigma(values[2], x.size)
        except LLMLExError as err:
            raise UsageError(f"{path}: {err}") from None
        datasets[path.stem] = {"x": x, "y": y, "sigma": sigma}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    executor, closing = _executor(args)
    where = f"Dask at {args.scheduler}" if executor is not None else "a process pool"
    sys.stderr.write(f"llmlex batch: {len(datasets)} data set(s) on {where}\n")
    try:
        result = run_many(
            datasets,
            executor=executor,
            max_workers=args.workers,
            client=_client_spec(args),
            seed=args.seed,
            checkpoint_dir=out / "checkpoints",
            progress=not args.quiet,
            absolute_sigma=args.yerr is not None,
            population_size=args.population_size,
            num_of_generations=args.num_of_generations,
            model=args.model or "offline",
            patience=args.patience,
            time_budget=args.time_budget,
            hints=tuple(args.hints or ()),
            allowed_functions=args.allowed_functions,
        )
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "partial_result", None)
        if partial is not None:
            _batch_outputs(args, out, partial)
            sys.stderr.write("llmlex: batch interrupted; run the same command again to resume it\n")
        raise
    finally:
        if closing is not None:
            closing.close()
    _batch_outputs(args, out, result)
    if result.failed:
        sys.stderr.write(
            f"llmlex: {len(result.failed)} of {len(result)} data set(s) failed (see "
            f"{out / 'summary.csv'}); run the same command again to retry them\n"
        )
        return 2
    return 0


#: Columns of ``summary.csv`` and of the table on stdout (the table shows the first six).
SUMMARY_COLUMNS = (
    "name", "status", "formula", "nchi2", "reduced_chi2", "time",
    "complexity", "calls", "generations", "stop_reason", "error",
)  # fmt: skip


def _batch_outputs(args: argparse.Namespace, out: Path, result: BatchResult) -> None:
    """Each finished data set's JSON, ``summary.csv``, and the table on stdout."""
    for item in result:
        if item.ok and item.run is not None:
            payload = _payload(args, item.run, partial=False)
            payload.update(seed=item.seed, batch_seed=args.seed, name=item.name)
            _write_json(out / f"{item.name}.json", payload)
    rows = result.summary()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(row[k]) for k in SUMMARY_COLUMNS} for row in rows)
    write_atomic(out / "summary.csv", buffer.getvalue())
    shown = SUMMARY_COLUMNS[:6]
    table = [[_cell(row[k], short=True) for k in shown] for row in rows]
    widths = [max(len(h), *(len(r[k]) for r in table)) for k, h in enumerate(shown)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(shown, widths, strict=True)).rstrip()]
    for r in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    done = sum(1 for item in result if item.ok)
    lines.append(f"{done} of {len(result)} data set(s) done in {result.time:.1f} s")
    lines.append(f"results: {out}{os.sep} (summary.csv, one JSON per data set)")
    sys.stdout.write("\n".join(lines) + "\n")


def _cell(value: Any, *, short: bool = False) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if short else repr(value)
    text = str(value)
    return text[:60] + "..." if short and len(text) > 63 else text


class _DefaultsShown(argparse.HelpFormatter):
    """Help that names each option's default, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default is None or default is False or default == argparse.SUPPRESS:
            return text
        if "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmlex",
        description="Symbolic regression with vision LLMs; offline unless --model is given.",
    )
    parser.add_argument("--version", action="version", version=f"llmlex {__version__}")
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser, *, out: bool = True) -> None:
        p.add_argument("--model", help="LLM model name; omit to run offline")
        p.add_argument("--base-url", help="OpenAI-compatible endpoint (default from env)")
        # Option names follow run_genetic's keywords; the short forms stay as aliases.
        p.add_argument(
            "--population-size",
            "--population",
            dest="population_size",
            type=int,
            default=8,
            help="children per generation",
        )
        p.add_argument(
            "--num-of-generations",
            "--generations",
            dest="num_of_generations",
            type=int,
            default=6,
            help="most generations",
        )
        p.add_argument("--seed", type=int, default=0, help="random seed")
        p.add_argument(
            "--patience",
            type=int,
            default=2,
            help="stop after this many generations without improvement",
        )
        p.add_argument("--retries", type=int, default=3, help="API retries per call")
        p.add_argument(
            "--time-budget",
            type=float,
            default=None,
            metavar="SECONDS",
            help="stop the search after this many seconds (default: no limit)",
        )
        p.add_argument(
            "--hints",
            nargs="+",
            metavar="HINT",
            help='prior knowledge for the model, e.g. --hints periodic "decays to zero"',
        )
        p.add_argument(
            "--allowed-functions",
            nargs="+",
            metavar="NAME",
            help="the only functions an ansatz may use, e.g. --allowed-functions exp sin",
        )
        if out:
            p.add_argument("--out", help="write the result as JSON to this file")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    fmt = _DefaultsShown
    demo = sub.add_parser(
        "demo", help="run a built-in example end to end (offline)", formatter_class=fmt
    )
    common(demo)
    demo.add_argument("--png", default="llmlex-demo.png", help="plot of data and fit")
    demo.set_defaults(func=_demo)

    fit = sub.add_parser(
        "fit", help="find a formula y = f(x) for two columns of a table", formatter_class=fmt
    )
    fit.add_argument("file", help="CSV or whitespace-separated table (header optional)")
    fit.add_argument("--x", required=True, help="x column: header name or 0-based index")
    fit.add_argument("--y", required=True, help="y column: header name or 0-based index")
    fit.add_argument(
        "--yerr",
        help="column of the error bars of y (absolute, one standard deviation); without "
        "it the noise level is estimated from the data",
    )
    fit.add_argument(
        "--dropna",
        action="store_true",
        help="drop rows with a missing value (empty, NA, NaN, null) in these columns",
    )
    fit.add_argument("--png", help="also write a plot of data and fit")
    common(fit)
    fit.set_defaults(func=_fit)

    batch = sub.add_parser(
        "batch",
        help="find a formula for each table of a directory (or glob), resumably",
        formatter_class=fmt,
    )
    batch.add_argument("inputs", metavar="DIR_OR_GLOB", help="a directory of tables or a glob")
    batch.add_argument("--x", required=True, help="x column: header name or 0-based index")
    batch.add_argument("--y", required=True, help="y column: header name or 0-based index")
    batch.add_argument("--yerr", help="column of the error bars of y (absolute)")
    batch.add_argument("--dropna", action="store_true", help="drop rows with a missing value")
    batch.add_argument(
        "--out",
        required=True,
        help="results directory: one JSON per data set, summary.csv, checkpoints/ (run "
        "the same command again to resume: finished data sets are loaded, not rerun)",
    )
    batch.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster, e.g. tcp://host:8786 (its workers need llmlex, and "
        "the API key in their own environment)",
    )
    batch.add_argument(
        "--workers", type=int, help="processes of the local pool (default: CPU count)"
    )
    common(batch, out=False)
    batch.set_defaults(func=_batch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmlex`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `llmlex` alone: what it can do
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.WARNING, format="llmlex: %(message)s")
    try:
        return int(args.func(args))
    except (UsageError, LLMLExError) as err:
        sys.stderr.write(f"llmlex: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("llmlex: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
