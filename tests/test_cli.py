"""The llmlex command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlex.cli import UsageError, main, read_table


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
