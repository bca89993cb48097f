"""The llmlex command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _child import reaped
from fake_openai import FakeReply

import llmlex
from llmlex.cli import UsageError, main, read_columns, read_table

ROOT = Path(llmlex.__file__).resolve().parents[1]


@pytest.fixture
def table(tmp_path):
    x = np.linspace(0.5, 4, 30)
    path = tmp_path / "data.csv"
    rows = "\n".join(f"{a},{3 * a + 1},{a**2}" for a in x)
    path.write_text("time,signal,other\n" + rows + "\n")
    return path


def test_read_table_with_header_by_name_and_index(table):
    x, y = read_table(table, "time", "signal")
    np.testing.assert_allclose(y, 3 * x + 1)
    x2, y2 = read_table(table, "0", "2")
    np.testing.assert_allclose(y2, x2**2)


def test_read_whitespace_table_without_header(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("# comment\n1 2\n2 4\n3 6\n")
    x, y = read_table(path, "0", "1")
    np.testing.assert_allclose(y, 2 * x)


@pytest.mark.parametrize(
    ("content", "xcol", "match"),
    [
        ("a,b\n1,2\n", "c", "no column 'c'; columns are a, b"),
        ("a,b\n1,2\n3,oops\n", "a", "non-numeric cell 'oops' at line 3"),
        ("", "a", "no data rows"),
    ],
)
def test_read_table_errors(tmp_path, content, xcol, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=match):
        read_table(path, xcol, "b")


def test_fit_command_offline_prints_formula_and_writes_json(table, tmp_path, capsys):
    out = tmp_path / "result.json"
    status = main(
        [
            "fit",
            str(table),
            "--x",
            "time",
            "--y",
            "signal",
            "--population",
            "4",
            "--generations",
            "2",
            "--out",
            str(out),
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "formula:" in captured.out
    result = json.loads(out.read_text())
    assert result["best"]["nchi2"] < 1e-10
    assert result["stats"]["calls"] == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["fit", "missing.csv", "--x", "a", "--y", "b"], "no such file"),
        (["fit", "{table}", "--x", "time", "--y", "nope"], "no column 'nope'"),
        (["fit", "{short}", "--x", "0", "--y", "1"], "at least 5 data points"),
    ],
)
def test_fit_command_errors_are_one_line(table, tmp_path, capsys, args, match):
    short = tmp_path / "short.csv"
    short.write_text("1,2\n2,3\n")
    args = [a.format(table=table, short=short) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert match in err
    assert len(err.splitlines()) == 1


# -- keys from the working directory's .env ----------------------------------------------

ENV_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENROUTER_API_KEY")


@pytest.fixture
def clean_env(monkeypatch):
    # set, then delete: monkeypatch then restores the variables load_dotenv sets.
    for name in ENV_VARS:
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    return monkeypatch


def test_dotenv_of_the_working_directory_is_read(table, tmp_path, clean_env, fake_openai):
    fake_openai.reply_with("ansatz: lambda x, *params: params[0]*x + params[1]")
    work = tmp_path / "project"
    work.mkdir()
    (work / ".env").write_text(
        f"OPENAI_BASE_URL={fake_openai.base_url}\nOPENAI_API_KEY=key-from-dotenv\n"
    )
    clean_env.chdir(work)
    args = ["fit", str(table), "--x", "time", "--y", "signal", "--model", "fake/m"]
    status = main([*args, "--population", "2", "--generations", "1", "--retries", "0", "-q"])
    assert status == 0
    assert fake_openai.calls == 2  # the endpoint came from ./.env
    headers = {k.lower(): v for k, v in fake_openai.headers[0].items()}
    assert headers["authorization"] == "Bearer key-from-dotenv"


# -- a run stopped early still prints and saves its best formula -------------------------

LINE = "ansatz: lambda x, *params: params[0]*x + params[1]\ninitial: [1.0, 0.0]"
SINE = "ansatz: lambda x, *params: params[0]*np.sin(params[1]*x)\ninitial: [1.0, 1.0]"


@pytest.fixture
def curve(tmp_path):
    x = np.linspace(0.5, 4, 30)
    path = tmp_path / "curve.csv"
    rows = "\n".join(f"{a},{np.exp(-a) * np.cos(3 * a)}" for a in x)
    path.write_text("t,v\n" + rows + "\n")
    return path


def test_fatal_error_mid_run_prints_and_saves_the_best_so_far(curve, tmp_path, capsys, fake_openai):
    def reply(body):
        # Four replies (generations of 2, 1 and 1 children: the elite takes a place from
        # the second on), then the key is revoked.
        if len(fake_openai.requests) > 4:
            return FakeReply(status=401, message="Incorrect API key provided")
        return (LINE, SINE)[len(fake_openai.requests) % 2]

    fake_openai.reply_with(reply)
    out = tmp_path / "result.json"
    args = ["fit", str(curve), "--x", "t", "--y", "v", "--model", "fake/m", "--retries", "0"]
    args += ["--base-url", fake_openai.base_url, "--population", "2", "--generations", "6"]
    status = main([*args, "--patience", "9", "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert status == 2
    assert "formula:" in captured.out and "stopped early" in captured.out
    assert "LLMAuthenticationError" in captured.err and "best found so far" in captured.err
    result = json.loads(out.read_text())
    assert result["partial"] is True
    assert result["stop_reason"].startswith("stopped by LLMAuthenticationError after 3")
    assert result["stats"]["generations"] == 3
    assert np.isfinite(result["best"]["nchi2"])


def test_complete_run_output_is_not_partial(table, tmp_path):
    out = tmp_path / "result.json"
    args = ["fit", str(table), "--x", "time", "--y", "signal", "--population", "2"]
    assert main([*args, "--generations", "1", "--out", str(out), "-q"]) == 0
    assert json.loads(out.read_text())["partial"] is False


def test_ctrl_c_prints_and_saves_the_best_so_far(curve, tmp_path, fake_openai):
    """The real thing: SIGINT to the command while its second generation waits."""
    slow = FakeReply(content=LINE, latency=60.0)  # generation 2 waits until the server stops
    fake_openai.reply_with(lambda body: SINE if len(fake_openai.requests) <= 2 else slow)
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    # This checkout's llmlex, whatever the working directory.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    args = ["fit", str(curve), "--x", "t", "--y", "v", "--model", "fake/m", "--retries", "0"]
    args += ["--base-url", fake_openai.base_url, "--population", "2", "--generations", "6"]
    args += ["--patience", "9", "--out", str(out), "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmlex.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    with reaped(proc):
        deadline = time.monotonic() + 30
        while fake_openai.calls <= 2:  # generation 1 done once generation 2 asks
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        while not out.exists():  # written at once, not after the calls in flight
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        fake_openai.stop()  # drops the calls in flight, which the process waits for at exit
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr.decode()
    assert "formula:" in stdout.decode(), stderr.decode()
    assert "interrupted" in stderr.decode() and "best found so far" in stderr.decode()
    result = json.loads(out.read_text())
    assert result["partial"] is True
    assert result["stop_reason"] == "interrupted by KeyboardInterrupt after 1 generation(s)"
    assert result["stats"]["generations"] == 1
    assert "sin" in result["best"]["ansatz"]


def test_fit_with_error_bars_reports_uncertainties(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.linspace(0.5, 4, 40)
    err = np.full(x.size, 0.05)
    y = 2.5 * np.exp(-0.7 * x) + rng.normal(0.0, 0.05, x.size)
    path = tmp_path / "decay.csv"
    path.write_text(
        "t,n,dn\n" + "\n".join(f"{a},{b},{e}" for a, b, e in zip(x, y, err, strict=True)) + "\n"
    )
    out = tmp_path / "fit.json"
    argv = ["fit", str(path), "--x", "t", "--y", "n", "--yerr", "dn", "-q", "--seed", "0"]
    assert main([*argv, "--generations", "2", "--population", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "error bars = dn" in text and "±" in text and "chi2/dof" in text
    best = json.loads(out.read_text())["best"]
    assert len(best["param_errors"]) == len(best["params"])
    assert all(0 < e < 1 for e in best["param_errors"])
    assert abs(best["reduced_chi2"] - 1) < 0.6
    assert main(["fit", str(path), "--x", "t", "--y", "n", "--yerr", "missing", "-q"]) == 2


# -- ergonomics ---------------------------------------------------------------------------


def test_version_and_bare_command_print_and_exit_cleanly(capsys):
    from llmlex import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: llmlex" in out and "fit" in out and "demo" in out


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "children per generation (default: 8)" in out
    assert "random seed (default: 0)" in out
    for option in ("--time-budget", "--hints", "--allowed-functions", "--dropna"):
        assert option in out


def test_dropna_drops_rows_with_missing_values_and_out_is_strict_json(tmp_path, capsys):
    x = np.linspace(0.5, 5.0, 12)
    rows = [f"{a},{3.0 * a + 1.0},0.1" for a in x]
    rows[3] = f"{x[3]},,0.1"
    rows[7] = f"{x[7]},NA,0.1"
    path = tmp_path / "gaps.csv"
    path.write_text("t,n,dn\n" + "\n".join(rows) + "\n")
    args = ["fit", str(path), "--x", "t", "--y", "n", "-q", "--generations", "2"]
    assert main(args) == 2
    assert "--dropna" in capsys.readouterr().err
    out = tmp_path / "r.json"
    more = ["--dropna", "--yerr", "dn", "--out", str(out), "--time-budget", "30"]
    assert main([*args, *more, "--allowed-functions", "exp", "--hints", "a line"]) == 0
    text = out.read_text()
    doc = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert doc["best"]["dof"] == 10 - len(doc["best"]["params"])
    assert doc["formula"] == "3 * x + 1"
    assert doc["columns"] == {"x": "t", "y": "n", "yerr": "dn"}
    assert doc["seed"] == 0 and doc["llmlex_version"]
    assert len(doc["best"]["param_errors"]) == len(doc["best"]["params"])


def test_a_non_numeric_cell_is_an_error_even_with_dropna(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("a,b\n1,2\n2,3x\n3,4\n")
    with pytest.raises(UsageError, match="non-numeric cell '3x'"):
        read_columns(path, "a", "b", dropna=True)


# -- llmlex batch -------------------------------------------------------------------------


@pytest.fixture
def tables(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    x = np.linspace(0.5, 4, 25)
    for name, y in (("decay", 2 * np.exp(-0.5 * x)), ("line", 3 * x + 1), ("square", x**2)):
        rows = "\n".join(f"{a},{b}" for a, b in zip(x, y, strict=True))
        (folder / f"{name}.csv").write_text("x,y\n" + rows + "\n")
    (folder / "notes.md").write_text("not a table\n")
    return folder


BATCH_OPTIONS = ["--x", "x", "--y", "y", "--population-size", "2", "--generations", "1", "-q"]


def test_batch_writes_a_summary_and_resumes(tables, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["batch", str(tables), "--out", str(out), "--workers", "2", *BATCH_OPTIONS]) == 0
    printed = capsys.readouterr().out
    assert "3 of 3 data set(s) done" in printed and "decay" in printed
    lines = (out / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("name,status,formula,nchi2")
    assert [row.split(",")[:2] for row in lines[1:]] == [
        ["decay", "done"],
        ["line", "done"],
        ["square", "done"],
    ]
    line = json.loads((out / "line.json").read_text())
    assert line["name"] == "line" and line["best"]["nchi2"] < 1e-12
    assert line["seed"] == llmlex.batch.batch_seeds(0, 3)[1] and line["batch_seed"] == 0

    # The same command again: every data set is loaded from its finished result.
    assert main(["batch", str(tables / "*.csv"), "--out", str(out), *BATCH_OPTIONS]) == 0
    lines = (out / "summary.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in lines[1:]] == ["loaded"] * 3


def test_batch_reports_a_failed_data_set_and_exits_2(tables, tmp_path, capsys):
    out = tmp_path / "results"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "line.json").write_text("{damaged")
    assert main(["batch", str(tables), "--out", str(out), "--workers", "1", *BATCH_OPTIONS]) == 2
    assert "1 of 3 data set(s) failed" in capsys.readouterr().err
    rows = (out / "summary.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["done", "failed", "done"]
    assert not (out / "line.json").exists() and (out / "decay.json").exists()


def test_batch_input_errors_are_one_line(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "none*.csv"), "--out", str(tmp_path), "--x", "a",
                 "--y", "b"]) == 2  # fmt: skip
    assert "no data files" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--x", "a",
                 "--y", "c"]) == 2  # fmt: skip
    assert "no column 'c'" in capsys.readouterr().err


def test_batch_on_a_dask_scheduler(tables, tmp_path, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    out = tmp_path / "results"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        status = main(["batch", str(tables), "--out", str(out), "--scheduler",
                       cluster.scheduler_address, *BATCH_OPTIONS])  # fmt: skip
    assert status == 0
    assert f"on Dask at {cluster.scheduler_address}" in capsys.readouterr().err
    rows = (out / "summary.csv").read_text().splitlines()[1:]
    assert [r.split(",")[:2] for r in rows] == [["decay", "done"], ["line", "done"],
                                                ["square", "done"]]  # fmt: skip
